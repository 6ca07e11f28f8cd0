//! Decoding: the format from the first bytes, the pixel limit from the header, then pixels in
//! one of three layouts (grey, RGB, RGBA), oriented as displayed, with the colour profile to
//! convert them with.
//!
//! | format | decoder |
//! |---|---|
//! | JPEG (baseline, progressive, arithmetic-coded; greyscale, YCbCr, RGB, CMYK, YCCK) | libjpeg-turbo ([`crate::jpeg`]) |
//! | PNG, WebP, GIF (first frame), TIFF, BMP | the `image` crate |
//! | HEIC/HEIF, AVIF, JPEG XL, JPEG 2000, PSD, and what `image` recognises but does not read | refused as unsupported, by name |

use std::io::{self, Cursor};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::colour::cmyk_to_rgb;
use crate::jpeg::{Jpeg, JpegColor};
use crate::resize::{Mode, ResizeError, ResizeOptions};

/// In fast mode, a JPEG is decoded at 1/4 or 1/2 only if that leaves at least this many times
/// the largest target width, so the Lanczos filter still has real pixels to work with.
const SHRINK_MARGIN: u32 = 2;

/// At 1/8 the margin is 1.5 (as a fraction): each decoded pixel is then its 8×8 block's mean
/// (the DC coefficient), a box filter over the block rather than the truncated IDCT of the
/// other scales, and for progressive files the AC scans are skipped altogether. On the
/// 39-photo corpus the lowest PSNR against faithful it gives is 31.8 dB; 1.5 at 1/4 would go
/// below 30 (`tests/resize_corpus.rs`).
const EIGHTH_MARGIN: (u32, u32) = (3, 2);

/// What a source is, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Jpeg,
    /// Read by the `image` crate.
    Other(ImageFormat),
}

/// A decoded source.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// Grey, RGB or RGBA, 8 bits, oriented.
    pub(crate) image: DynamicImage,
    /// The ICC profile the pixels are in (none: sRGB).
    pub(crate) profile: Option<Vec<u8>>,
    /// The full image's size, oriented.
    pub(crate) source_width: u32,
    pub(crate) source_height: u32,
    /// Things the user should know (an unusable colour profile).
    pub(crate) warnings: Vec<String>,
}

/// The format, from the first bytes (never from a name or a Content-Type).
pub(crate) fn sniff(bytes: &[u8]) -> Result<Format, ResizeError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if let Some(name) = unsupported_by_signature(bytes) {
        return Err(ResizeError::Unsupported {
            format: name.to_owned(),
        });
    }
    match image::guess_format(bytes) {
        Ok(
            format @ (ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Tiff
            | ImageFormat::Bmp),
        ) => Ok(Format::Other(format)),
        Ok(ImageFormat::Avif) => Err(ResizeError::Unsupported {
            format: "AVIF".into(),
        }),
        Ok(other) => Err(ResizeError::Unsupported {
            format: format!("{other:?}"),
        }),
        Err(_) => Err(ResizeError::NotAnImage {
            detail: describe_bytes(bytes),
        }),
    }
}

/// Formats `image` does not recognise, by their signatures.
fn unsupported_by_signature(bytes: &[u8]) -> Option<&'static str> {
    // ISO base media files (HEIF, AVIF): a `ftyp` box whose major brand says what it holds.
    if bytes.get(4..8) == Some(b"ftyp") {
        let brand = bytes.get(8..12)?;
        return match brand {
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" => Some("HEIC"),
            b"mif1" | b"msf1" => Some("HEIF"),
            b"avif" | b"avis" => Some("AVIF"),
            _ => None,
        };
    }
    if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(b"\0\0\0\x0CJXL \r\n\x87\n") {
        return Some("JPEG XL");
    }
    if bytes.starts_with(b"\0\0\0\x0CjP  \r\n\x87\n") || bytes.starts_with(&[0xFF, 0x4F, 0xFF]) {
        return Some("JPEG 2000");
    }
    if bytes.starts_with(b"8BPS") {
        return Some("Photoshop (PSD)");
    }
    None
}

pub(crate) fn format_name(format: Format) -> &'static str {
    match format {
        Format::Jpeg => "JPEG",
        Format::Other(ImageFormat::Png) => "PNG",
        Format::Other(ImageFormat::WebP) => "WebP",
        Format::Other(ImageFormat::Gif) => "GIF",
        Format::Other(ImageFormat::Tiff) => "TIFF",
        Format::Other(ImageFormat::Bmp) => "BMP",
        Format::Other(_) => "image",
    }
}

/// A short description of what some non-image bytes look like.
pub(crate) fn describe_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the data is empty".into();
    }
    let head = &bytes[..bytes.len().min(24)];
    let printable = head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if printable {
        let text: String = String::from_utf8_lossy(head)
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        format!(
            "{} bytes of text starting {:?}",
            bytes.len(),
            text.trim_end()
        )
    } else {
        let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!(
            "{} bytes starting {} (no known image signature)",
            bytes.len(),
            hex.join(" ")
        )
    }
}

fn check_pixels(width: u32, height: u32, limit: u64) -> Result<(), ResizeError> {
    if u64::from(width) * u64::from(height) > limit {
        return Err(ResizeError::TooManyPixels {
            width,
            height,
            limit,
        });
    }
    if width == 0 || height == 0 {
        return Err(ResizeError::Corrupt {
            format: "image".into(),
            reason: format!("it declares a size of {width}x{height}"),
        });
    }
    Ok(())
}

fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn oriented(width: u32, height: u32, orientation: Orientation) -> (u32, u32) {
    if swaps_axes(orientation) {
        (height, width)
    } else {
        (width, height)
    }
}

/// Decodes `bytes` for thumbnails at most `largest` wide.
pub(crate) fn decode(
    bytes: &[u8],
    format: Format,
    largest: u32,
    options: &ResizeOptions,
) -> Result<Decoded, ResizeError> {
    match format {
        Format::Jpeg => decode_jpeg(bytes, largest, options),
        Format::Other(format) => decode_other(bytes, format, options.max_pixels),
    }
}

/// The DCT scale for a JPEG: in fast mode the smallest that keeps [`EIGHTH_MARGIN`] (at 1/8)
/// or [`SHRINK_MARGIN`] (at 1/4 and 1/2) × `largest` pixels across the displayed width; in
/// faithful mode 1.
pub(crate) fn jpeg_scale(mode: Mode, across: u32, largest: u32) -> u32 {
    if mode == Mode::Faithful {
        return 1;
    }
    let eighth = largest
        .saturating_mul(EIGHTH_MARGIN.0)
        .div_ceil(EIGHTH_MARGIN.1)
        .min(across);
    if across.div_ceil(8) >= eighth {
        return 8;
    }
    let need = largest.saturating_mul(SHRINK_MARGIN).min(across);
    [4u32, 2]
        .into_iter()
        .find(|d| across.div_ceil(*d) >= need)
        .unwrap_or(1)
}

/// The DCT scale fast mode decodes a JPEG at for thumbnails at most `largest` wide: 1, 2, 4 or
/// 8 (as in `djpeg -scale 1/N`); `None` if `bytes` is not a JPEG whose header can be read.
///
/// # Examples
///
/// ```
/// let jpeg = thumbnails::bundled_photos()[0].1; // 1600 px wide
/// assert_eq!(thumbnails::fast_jpeg_scale(jpeg, 200), Some(4));
/// assert_eq!(thumbnails::fast_jpeg_scale(jpeg, 1000), Some(1));
/// assert_eq!(thumbnails::fast_jpeg_scale(b"not a jpeg", 200), None);
/// ```
pub fn fast_jpeg_scale(bytes: &[u8], largest: u32) -> Option<u32> {
    if sniff(bytes).ok()? != Format::Jpeg {
        return None;
    }
    let jpeg = Jpeg::open(bytes).ok()?;
    let header = jpeg.header();
    let orientation = header
        .exif
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let across = if swaps_axes(orientation) {
        header.height
    } else {
        header.width
    };
    Some(jpeg_scale(Mode::Fast, across, largest))
}

fn decode_jpeg(
    bytes: &[u8],
    largest: u32,
    options: &ResizeOptions,
) -> Result<Decoded, ResizeError> {
    let jpeg = Jpeg::open(bytes)?;
    let header = jpeg.header();
    let (width, height, color) = (header.width, header.height, header.color);
    check_pixels(width, height, options.max_pixels)?;
    let orientation = header
        .exif
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let profile = header.icc.clone();
    let across = if swaps_axes(orientation) {
        height
    } else {
        width
    };
    let scale = jpeg_scale(options.mode, across, largest);
    let pixels = jpeg.decode(scale, options.mode == Mode::Fast)?;
    if pixels.dc_only {
        tracing::debug!(scale, "progressive JPEG decoded from its DC scans alone");
    }
    let (w, h) = (pixels.width, pixels.height);
    let short = || ResizeError::Corrupt {
        format: "JPEG".into(),
        reason: "the decoder returned too few pixels".into(),
    };
    let mut warnings = Vec::new();
    let (image, profile) = match color {
        JpegColor::Gray => (
            image::GrayImage::from_raw(w, h, pixels.data).map(DynamicImage::from),
            profile,
        ),
        JpegColor::Rgb => (
            image::RgbImage::from_raw(w, h, pixels.data).map(DynamicImage::from),
            profile,
        ),
        JpegColor::Cmyk { .. } => {
            let (rgb, warning) = cmyk_to_rgb(&pixels.data, profile.as_deref());
            warnings.extend(warning);
            (
                image::RgbImage::from_raw(w, h, rgb).map(DynamicImage::from),
                None,
            )
        }
    };
    let mut image = image.ok_or_else(short)?;
    image.apply_orientation(orientation);
    let (source_width, source_height) = oriented(width, height, orientation);
    Ok(Decoded {
        image,
        profile,
        source_width,
        source_height,
        warnings,
    })
}

/// PNG, WebP, GIF (first frame), TIFF and BMP through `image`, with the pixel limit checked on
/// the header and an allocation limit as a second guard.
fn decode_other(bytes: &[u8], format: ImageFormat, limit: u64) -> Result<Decoded, ResizeError> {
    let name = format_name(Format::Other(format));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    // 16-bit RGBA is the widest layout a decoder produces: 8 bytes a pixel.
    limits.max_alloc = Some(limit.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|err| image_error(name, err))?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, limit)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let profile = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|err| image_error(name, err))?;
    image.apply_orientation(orientation);
    let color = image.color();
    let image = if color.has_alpha() {
        let rgba = image.to_rgba8();
        if rgba.pixels().all(|p| p.0[3] == 255) {
            // Alpha that is 255 everywhere is no transparency: written as JPEG.
            if color.has_color() {
                DynamicImage::from(DynamicImage::ImageRgba8(rgba).to_rgb8())
            } else {
                DynamicImage::from(DynamicImage::ImageRgba8(rgba).to_luma8())
            }
        } else {
            DynamicImage::from(rgba)
        }
    } else if color.has_color() {
        DynamicImage::from(image.to_rgb8())
    } else {
        DynamicImage::from(image.to_luma8())
    };
    Ok(Decoded {
        source_width: image.width(),
        source_height: image.height(),
        image,
        profile,
        warnings: Vec::new(),
    })
}

fn image_error(format: &str, err: image::ImageError) -> ResizeError {
    let corrupt = |reason: String| ResizeError::Corrupt {
        format: format.into(),
        reason,
    };
    match err {
        image::ImageError::Unsupported(what) => ResizeError::Unsupported {
            format: format!("{format}: {what}"),
        },
        image::ImageError::Limits(what) => corrupt(format!(
            "{what} (the decoder needed more memory than the pixel limit allows)"
        )),
        image::ImageError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            corrupt("the file ends before the image data does (truncated)".into())
        }
        other => corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_described() {
        assert_eq!(describe_bytes(b""), "the data is empty");
        assert!(describe_bytes(b"<!doctype html>").contains("text starting \"<!doctype html>\""));
        assert!(describe_bytes(&[0, 1, 2, 250]).contains("00 01 02 fa"));
    }

    #[test]
    fn unsupported_formats_are_named() {
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        let avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf";
        for (bytes, name) in [
            (&heic[..], "HEIC"),
            (&avif[..], "AVIF"),
            (&b"\xFF\x0A\xFA\x7F"[..], "JPEG XL"),
            (&b"8BPS\0\x01"[..], "Photoshop (PSD)"),
        ] {
            assert_eq!(
                sniff(bytes),
                Err(ResizeError::Unsupported {
                    format: name.into()
                })
            );
        }
    }

    #[test]
    fn fast_mode_scales() {
        assert_eq!(jpeg_scale(Mode::Fast, 4000, 200), 8);
        assert_eq!(jpeg_scale(Mode::Fast, 2400, 200), 8);
        assert_eq!(jpeg_scale(Mode::Fast, 2390, 200), 4);
        assert_eq!(jpeg_scale(Mode::Fast, 1600, 200), 4);
        assert_eq!(jpeg_scale(Mode::Fast, 1365, 200), 2);
        assert_eq!(jpeg_scale(Mode::Fast, 500, 200), 1);
        assert_eq!(jpeg_scale(Mode::Faithful, 4000, 200), 1);
    }
}
