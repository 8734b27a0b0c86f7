//! Photos sized for the network: the CS's setting for the largest side and
//! the JPEG quality of the photos devices upload, and the reduction itself
//! (the camera's EXIF orientation applied to the pixels, the rest of its
//! EXIF, GPS position and time included, kept). A 12-megapixel camera photo
//! of 4 to 12 MB becomes one of a few hundred kilobytes at 2,560 pixels,
//! which is what a rural LTE link can carry in a day's sync.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use serde::{Deserialize, Serialize};

/// How devices size photos before uploading them (a CS setting, sent with
/// the reference data).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhotoSettings {
    /// Largest side of an uploaded photo, in pixels.
    pub max_px: u32,
    /// JPEG quality of a reduced photo (1 to 100).
    pub quality: u8,
    /// Keep the camera's original on the device once the reduced copy is
    /// on the server (otherwise its space is freed then).
    pub keep_originals: bool,
}

impl Default for PhotoSettings {
    fn default() -> Self {
        Self {
            max_px: 2560,
            quality: 85,
            keep_originals: false,
        }
    }
}

/// Bounds a manager may choose within.
pub const MAX_PX_RANGE: std::ops::RangeInclusive<u32> = 640..=8192;
pub const QUALITY_RANGE: std::ops::RangeInclusive<u8> = 40..=100;

impl PhotoSettings {
    /// Why these settings cannot be saved, in words a manager can act on.
    pub fn check(&self) -> Result<(), String> {
        if !MAX_PX_RANGE.contains(&self.max_px) || !QUALITY_RANGE.contains(&self.quality) {
            return Err(format!(
                "taille des photos invalide : un plus grand côté entre {} et {} pixels, une qualité JPEG entre {} et {}",
                MAX_PX_RANGE.start(),
                MAX_PX_RANGE.end(),
                QUALITY_RANGE.start(),
                QUALITY_RANGE.end()
            ));
        }
        Ok(())
    }
}

/// Why a photo could not be reduced (it is then sent as it is).
#[derive(Debug, thiserror::Error)]
#[error("réduction de la photo impossible : {0}")]
pub struct ReduceError(String);

fn err(e: impl std::fmt::Display) -> ReduceError {
    ReduceError(e.to_string())
}

/// The photo to upload for a camera JPEG: turned upright, scaled so its
/// largest side is at most `settings.max_px`, encoded at
/// `settings.quality`, with the camera's EXIF (orientation reset to
/// upright, everything else as it was). `None` when the photo is better
/// sent as it is: not a JPEG, or already upright within the size and
/// either asked at quality 100 or no larger than its reduction.
pub fn reduce(bytes: &[u8], settings: &PhotoSettings) -> Result<Option<Vec<u8>>, ReduceError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(err)?;
    if reader.format() != Some(ImageFormat::Jpeg) {
        return Ok(None);
    }
    let mut decoder = reader.into_decoder().map_err(err)?;
    let mut exif = decoder.exif_metadata().map_err(err)?;
    let orientation = decoder.orientation().map_err(err)?;
    let (w, h) = decoder.dimensions();
    // Quality 100 keeps the camera's own encoding of a photo that needs
    // neither scaling nor turning.
    if settings.quality >= 100
        && w.max(h) <= settings.max_px
        && orientation == Orientation::NoTransforms
    {
        return Ok(None);
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(err)?;
    img.apply_orientation(orientation);
    let too_big = img.width().max(img.height()) > settings.max_px;
    if too_big {
        img = img.resize(settings.max_px, settings.max_px, FilterType::Triangle);
    }
    if let Some(e) = exif.as_mut() {
        let _ = Orientation::remove_from_exif_chunk(e);
    }
    let mut out = Vec::with_capacity(bytes.len() / 4);
    let mut encoder = JpegEncoder::new_with_quality(&mut out, settings.quality.clamp(1, 100));
    if let Some(e) = exif {
        use image::ImageEncoder;
        encoder.set_exif_metadata(e).map_err(err)?;
    }
    img.to_rgb8().write_with_encoder(encoder).map_err(err)?;
    let turned = orientation != Orientation::NoTransforms;
    if !too_big && !turned && out.len() >= bytes.len() {
        return Ok(None);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian EXIF (TIFF) block: orientation, the time the photo
    /// was taken, and a GPS block with the latitude's hemisphere.
    fn exif(orientation: u16) -> Vec<u8> {
        let mut t = b"II*\0".to_vec();
        t.extend(8u32.to_le_bytes()); // IFD0 at 8
        // IFD0: 3 entries (12 bytes each), then the next-IFD offset.
        let ifd0_len = 2 + 3 * 12 + 4;
        let date_at = 8 + ifd0_len as u32;
        let date = b"2026:06:15 10:30:00\0";
        let gps_at = date_at + date.len() as u32;
        t.extend(3u16.to_le_bytes());
        // Orientation, SHORT, 1 value.
        t.extend(0x0112u16.to_le_bytes());
        t.extend(3u16.to_le_bytes());
        t.extend(1u32.to_le_bytes());
        t.extend(u32::from(orientation).to_le_bytes());
        // DateTime, ASCII, 20 bytes at date_at.
        t.extend(0x0132u16.to_le_bytes());
        t.extend(2u16.to_le_bytes());
        t.extend((date.len() as u32).to_le_bytes());
        t.extend(date_at.to_le_bytes());
        // GPS IFD pointer, LONG.
        t.extend(0x8825u16.to_le_bytes());
        t.extend(4u16.to_le_bytes());
        t.extend(1u32.to_le_bytes());
        t.extend(gps_at.to_le_bytes());
        t.extend(0u32.to_le_bytes());
        t.extend(date);
        // GPS IFD: GPSLatitudeRef "N".
        t.extend(1u16.to_le_bytes());
        t.extend(0x0001u16.to_le_bytes());
        t.extend(2u16.to_le_bytes());
        t.extend(2u32.to_le_bytes());
        t.extend(b"N\0\0\0");
        t.extend(0u32.to_le_bytes());
        t
    }

    /// A camera-like photo: textured (not flat colour), `w` × `h` as
    /// stored, with `exif`.
    fn camera_jpeg(w: u32, h: u32, exif: Option<Vec<u8>>) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7;
            image::Rgb([
                (x / 7 + (n & 31)) as u8,
                (y / 5 + ((n >> 5) & 31)) as u8,
                ((x + y) / 9 + ((n >> 10) & 31)) as u8,
            ])
        });
        let mut out = Vec::new();
        let mut enc = JpegEncoder::new_with_quality(&mut out, 95);
        if let Some(e) = exif {
            use image::ImageEncoder;
            enc.set_exif_metadata(e).unwrap();
        }
        img.write_with_encoder(enc).unwrap();
        out
    }

    fn exif_of(jpeg: &[u8]) -> Option<Vec<u8>> {
        let mut d = ImageReader::new(Cursor::new(jpeg))
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        d.exif_metadata().unwrap()
    }

    /// A photo taken with the phone on its side (stored landscape, EXIF
    /// orientation 6): reduced upright to 2,560 pixels, smaller, with its
    /// time and GPS kept and its orientation reset.
    #[test]
    fn a_sideways_camera_photo_is_turned_upright_scaled_and_keeps_its_time_and_gps() {
        let original = camera_jpeg(3000, 2000, Some(exif(6)));
        let reduced = reduce(&original, &PhotoSettings::default())
            .unwrap()
            .expect("reduced");
        assert!(
            reduced.len() < original.len(),
            "{} >= {}",
            reduced.len(),
            original.len()
        );
        let img = image::load_from_memory(&reduced).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (1707, 2560),
            "upright, largest side 2,560"
        );
        let kept = exif_of(&reduced).expect("EXIF kept");
        assert_eq!(
            Orientation::from_exif_chunk(&kept),
            Some(Orientation::NoTransforms)
        );
        let find = |needle: &[u8]| kept.windows(needle.len()).any(|w| w == needle);
        assert!(find(b"2026:06:15 10:30:00"), "the time it was taken");
        assert!(
            find(&0x8825u16.to_le_bytes()) && find(b"N\0\0\0"),
            "the GPS block"
        );
    }

    #[test]
    fn a_small_upright_photo_or_a_non_jpeg_goes_as_it_is() {
        let small = camera_jpeg(800, 600, None);
        let strict = PhotoSettings {
            quality: 100,
            ..Default::default()
        };
        assert_eq!(reduce(&small, &strict).unwrap(), None, "no gain");
        assert_eq!(reduce(b"pas une image", &strict).unwrap(), None);
        let mut png = Cursor::new(Vec::new());
        image::RgbImage::new(4000, 10)
            .write_to(&mut png, ImageFormat::Png)
            .unwrap();
        assert_eq!(
            reduce(png.get_ref(), &strict).unwrap(),
            None,
            "not a camera JPEG"
        );
    }

    #[test]
    fn settings_out_of_bounds_are_refused_in_french() {
        assert!(PhotoSettings::default().check().is_ok());
        let e = PhotoSettings {
            max_px: 100,
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert!(e.contains("pixels"), "{e}");
        assert!(
            PhotoSettings {
                quality: 10,
                ..Default::default()
            }
            .check()
            .is_err()
        );
    }
}
