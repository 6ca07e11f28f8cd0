//! Colour: thumbnails are sRGB (or sRGB greyscale), whatever the source's colour space.
//!
//! - An embedded ICC profile (Adobe RGB, Display P3 from a phone, a scanner's, a greyscale
//!   print profile) is converted to sRGB with `moxcms`, a pure-Rust colour-management engine
//!   (the one the `image` crate itself uses for its colour-space conversions, so it adds no new
//!   dependency and no system library). The profile is not embedded in the thumbnail:
//!   converted pixels look right in every viewer, including the many that ignore profiles,
//!   and a profile (3 KB for a matrix profile, often 500 KB for CMYK) would outweigh a 5 KB
//!   thumbnail.
//! - CMYK and YCCK JPEGs arrive here as CMYK with 0 meaning no ink (the decoder undoes
//!   Photoshop's inversion); with a CMYK profile they go through it, without one through the
//!   naive `R = (1 - C)(1 - K)`.
//! - Greyscale stays greyscale.
//!
//! A profile that cannot be read or used is reported as a warning and the pixels are kept as
//! they are.

use image::DynamicImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, Transform8BitExecutor, TransformOptions};

/// A conversion from a source profile to sRGB for images of one layout.
pub(crate) struct ToSrgb {
    transform: Box<Transform8BitExecutor>,
    channels: usize,
}

impl std::fmt::Debug for ToSrgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToSrgb")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// sRGB's greyscale: sRGB's tone curve, D50 white.
fn srgb_gray() -> ColorProfile {
    let srgb = ColorProfile::new_srgb();
    let mut gray = ColorProfile::new_gray_with_gamma(2.2);
    gray.gray_trc = srgb.green_trc.clone();
    gray
}

impl ToSrgb {
    /// The conversion from `icc` for images with `channels` channels (1 grey, 3 RGB, 4 RGBA),
    /// or why there is none.
    pub(crate) fn new(icc: &[u8], channels: usize) -> Result<ToSrgb, String> {
        let source = ColorProfile::new_from_slice(icc)
            .map_err(|err| format!("its colour profile cannot be read ({err})"))?;
        let (layout, target) = match (source.color_space, channels) {
            (DataColorSpace::Gray, 1) => (Layout::Gray, srgb_gray()),
            (DataColorSpace::Rgb, 3) => (Layout::Rgb, ColorProfile::new_srgb()),
            (DataColorSpace::Rgb, 4) => (Layout::Rgba, ColorProfile::new_srgb()),
            (space, _) => {
                return Err(format!(
                    "its colour profile is for {space:?} data, not for this image's {channels} \
                     channels"
                ));
            }
        };
        let transform = source
            .create_transform_8bit(layout, &target, layout, TransformOptions::default())
            .map_err(|err| format!("its colour profile cannot be used ({err})"))?;
        Ok(ToSrgb {
            transform,
            channels,
        })
    }

    /// Converts `image` (of the layout this conversion was made for) in place.
    pub(crate) fn apply(&self, image: &mut DynamicImage) -> Result<(), String> {
        let channels = usize::from(image.color().channel_count());
        if channels != self.channels {
            return Err(format!(
                "a {channels}-channel image given to a {}-channel colour conversion",
                self.channels
            ));
        }
        let source = image.as_bytes().to_vec();
        let target = match image {
            DynamicImage::ImageLuma8(buffer) => &mut **buffer,
            DynamicImage::ImageRgb8(buffer) => &mut **buffer,
            DynamicImage::ImageRgba8(buffer) => &mut **buffer,
            _ => return Err("an image that is not 8-bit".to_owned()),
        };
        self.transform
            .transform(&source, target)
            .map_err(|err| format!("the colour conversion failed ({err})"))
    }
}

/// CMYK (0 = no ink, 4 bytes a pixel) to RGB: through `icc` when it is a usable CMYK profile,
/// else the naive formula. The second value is a warning when the profile was not usable.
pub(crate) fn cmyk_to_rgb(cmyk: &[u8], icc: Option<&[u8]>) -> (Vec<u8>, Option<String>) {
    let mut warning = None;
    if let Some(icc) = icc {
        match cmyk_transform(icc) {
            Ok(transform) => {
                let mut rgb = vec![0u8; cmyk.len() / 4 * 3];
                match transform.transform(cmyk, &mut rgb) {
                    Ok(()) => return (rgb, None),
                    Err(err) => warning = Some(format!("the CMYK conversion failed ({err})")),
                }
            }
            Err(err) => warning = Some(err),
        }
    }
    let rgb = cmyk
        .chunks_exact(4)
        .flat_map(|p| {
            let k = 255 - u32::from(p[3]);
            [0, 1, 2].map(|c| ((255 - u32::from(p[c])) * k / 255) as u8)
        })
        .collect();
    (rgb, warning)
}

fn cmyk_transform(icc: &[u8]) -> Result<Box<Transform8BitExecutor>, String> {
    let source = ColorProfile::new_from_slice(icc)
        .map_err(|err| format!("its colour profile cannot be read ({err})"))?;
    if source.color_space != DataColorSpace::Cmyk {
        return Err(format!(
            "its colour profile is for {:?} data, not CMYK",
            source.color_space
        ));
    }
    // moxcms reads CMYK through the four-channel layout.
    source
        .create_transform_8bit(
            Layout::Rgba,
            &ColorProfile::new_srgb(),
            Layout::Rgb,
            TransformOptions::default(),
        )
        .map_err(|err| format!("its CMYK colour profile cannot be used ({err})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_cmyk() {
        let (rgb, warning) = cmyk_to_rgb(&[0, 255, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0], None);
        assert_eq!(rgb, [255, 0, 0, 0, 0, 0, 255, 255, 255]);
        assert!(warning.is_none());
    }

    #[test]
    fn an_unreadable_profile_is_a_reason_not_a_panic() {
        assert!(ToSrgb::new(b"not a profile", 3).is_err());
        let srgb = ColorProfile::new_srgb().encode().unwrap();
        assert!(
            ToSrgb::new(&srgb, 1).is_err(),
            "an RGB profile on grey data"
        );
        let (rgb, warning) = cmyk_to_rgb(&[0, 0, 0, 0], Some(&srgb));
        assert_eq!(rgb, [255, 255, 255]);
        assert!(warning.unwrap().contains("not CMYK"));
    }
}
