//! Camera-like generated photos: JPEGs with natural texture (light
//! gradients, blotches, brick courses and fine grain), not flat colour, so
//! that their size and compression look like a site photo's. Deterministic
//! by seed. The demo's findings carry small ones; the benchmarks and tests
//! use camera-sized ones.

use image::{Rgb, RgbImage};

/// A `width` × `height` JPEG at `quality`, the same bytes for the same seed.
pub fn photo(seed: u64, width: u32, height: u32, quality: u8) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut grain = move || {
        // xorshift64*: fast, good enough for grain.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as i32 - 128
    };
    let phase = (seed % 628) as f32 / 100.0;
    let (w, h) = (width as f32, height as f32);
    let img = RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        // Sky-to-ground light, walls and blotches of weathering.
        let light = 150.0 - 70.0 * fy + 25.0 * (fx * 9.0 + phase).sin();
        let blotch = 30.0 * ((fx * 23.0 + phase).sin() * (fy * 17.0 - phase).cos());
        let brick = if (y / 12 + (x / 40) % 2) % 3 == 0 {
            -18.0
        } else {
            6.0
        };
        let n = grain() as f32 / 6.0;
        let v = light + blotch + brick + n;
        let c = |k: f32| (v * k).clamp(0.0, 255.0) as u8;
        Rgb([c(1.05), c(0.92), c(0.80)])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&img)
        .expect("a JPEG in memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_photo_is_a_textured_jpeg_the_same_for_the_same_seed() {
        let a = photo(7, 640, 480, 85);
        assert_eq!(&a[..2], &[0xFF, 0xD8], "a JPEG");
        assert_eq!(a, photo(7, 640, 480, 85));
        assert_ne!(a, photo(8, 640, 480, 85));
        // Texture: far bigger than a flat image of the same size (~5 KB).
        assert!(a.len() > 40_000, "{} bytes", a.len());
    }
}
