//! Photo thumbnails, the same on the device (its screens, offline) and on
//! the server (the review pages): the photo scaled to fit a square, as JPEG.

/// Why a photo has no thumbnail (it is kept all the same).
#[derive(Debug, thiserror::Error)]
#[error("vignette impossible : {0}")]
pub struct ThumbnailError(String);

/// A JPEG of `bytes` scaled to fit `size` × `size` pixels.
pub fn thumbnail_jpeg(bytes: &[u8], size: u32) -> Result<Vec<u8>, ThumbnailError> {
    let img = image::load_from_memory(bytes).map_err(|e| ThumbnailError(e.to_string()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.thumbnail(size, size)
        .to_rgb8()
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .map_err(|e| ThumbnailError(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_is_scaled_to_fit_and_a_non_image_has_no_thumbnail() {
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(800, 400, image::Rgb([200, 30, 30]))
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        let thumb = thumbnail_jpeg(png.get_ref(), 240).unwrap();
        let back = image::load_from_memory(&thumb).unwrap();
        assert_eq!((back.width(), back.height()), (240, 120));
        assert!(thumbnail_jpeg(b"pas une image", 240).is_err());
    }
}
