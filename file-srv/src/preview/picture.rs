//! A preview's image: decoded under limits, shrunk and re-encoded as PNG, so
//! what file-srv serves is pixels it wrote itself, never the site's bytes.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// Largest width and height of a picture the decoder accepts at all.
pub const MAX_SOURCE_SIDE: u32 = 8192;
/// Most memory the decoder may allocate for one picture.
pub const MAX_DECODE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("the image could not be decoded: {0}")]
    Decode(#[from] image::ImageError),
    #[error("the image format is not recognised")]
    Unknown(#[from] std::io::Error),
}

/// Decodes `bytes` (PNG, JPEG, GIF or WebP; the first frame of an animation),
/// scales it to fit in `max_side`×`max_side` and returns it as a PNG.
/// CPU-bound: call it from `spawn_blocking`.
pub fn reencode(bytes: &[u8], max_side: u32) -> Result<Vec<u8>, PictureError> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    if reader.format().is_none() {
        return Err(PictureError::Unknown(std::io::ErrorKind::InvalidData.into()));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut picture = reader.decode()?;
    if picture.width() > max_side || picture.height() > max_side {
        picture = picture.thumbnail(max_side, max_side);
    }
    let mut png = Vec::new();
    picture.to_rgba8().write_to(&mut Cursor::new(&mut png), ImageFormat::Png)?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let picture = RgbImage::from_pixel(width, height, Rgb([200, 30, 30]));
        let mut out = Vec::new();
        picture.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn big_pictures_are_shrunk_and_become_png() {
        let png = reencode(&encoded(1200, 600, ImageFormat::Jpeg), 300).unwrap();
        let back = image::load_from_memory_with_format(&png, ImageFormat::Png).unwrap();
        assert_eq!((back.width(), back.height()), (300, 150));
    }

    #[test]
    fn small_pictures_keep_their_size() {
        let png = reencode(&encoded(40, 20, ImageFormat::Gif), 300).unwrap();
        let back = image::load_from_memory(&png).unwrap();
        assert_eq!((back.width(), back.height()), (40, 20));
    }

    #[test]
    fn garbage_and_oversized_headers_are_refused() {
        assert!(reencode(b"<html>not an image</html>", 300).is_err());
        // A valid PNG header declaring 100000×100000 pixels: refused by the
        // limits before any pixel memory is allocated.
        let mut png = encoded(1, 1, ImageFormat::Png);
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(reencode(&png, 300).is_err());
    }
}
