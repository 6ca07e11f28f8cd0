//! Colour: CMYK and YCCK JPEGs (Photoshop's inverted ones and plain ones), sources tagged with
//! an ICC profile (Adobe RGB, Display P3) converted to sRGB, greyscale kept greyscale; checked
//! on pixel values against known colours, in both modes.

mod support;

use image::{DynamicImage, ImageEncoder};
use support::colour::{ADOBE_RGB, CmykStyle, DISPLAY_P3, cmyk_jpeg, jpeg_with_icc};
use support::encode;
use thumbnails::{Mode, ResizeOptions, render_thumbnails};

const MODES: [Mode; 2] = [Mode::Fast, Mode::Faithful];

fn options(mode: Mode) -> ResizeOptions {
    ResizeOptions {
        mode,
        ..ResizeOptions::default()
    }
}

/// The only thumbnail of `bytes` at `width`, decoded.
fn thumbnail(bytes: &[u8], width: u32, mode: Mode) -> DynamicImage {
    let rendered = render_thumbnails(bytes, &[width], &options(mode))
        .unwrap_or_else(|err| panic!("{mode:?}: {err}"));
    assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
    image::load_from_memory(&rendered.thumbnails[0].data).unwrap()
}

/// Asserts `got` is within `tolerance` of `want` in every channel.
#[track_caller]
fn near(got: [u8; 3], want: [u8; 3], tolerance: u8, what: &str) {
    let off = got
        .iter()
        .zip(want)
        .map(|(&g, w)| g.abs_diff(w))
        .max()
        .unwrap();
    assert!(
        off <= tolerance,
        "{what}: got {got:?}, want {want:?} (± {tolerance})"
    );
}

/// The middle pixel of the `n`th of `parts` vertical bands.
fn band(image: &image::RgbImage, n: u32, parts: u32) -> [u8; 3] {
    let x = image.width() * (2 * n + 1) / (2 * parts);
    image.get_pixel(x, image.height() / 2).0
}

#[test]
fn cmyk_and_ycck_jpegs_have_the_right_colours_in_both_modes() {
    // Four bands, CMYK with 0 = no ink: red (M+Y), cyan (C), 50 % black, paper white.
    let bands: [([u8; 4], [u8; 3]); 4] = [
        ([0, 255, 255, 0], [255, 0, 0]),
        ([255, 0, 0, 0], [0, 255, 255]),
        ([0, 0, 0, 128], [127, 127, 127]),
        ([0, 0, 0, 0], [255, 255, 255]),
    ];
    // Wide enough that fast mode decodes at a reduced scale (400 px at 1/2 for 200 px).
    let (width, height) = (1024u16, 256u16);
    let mut cmyk = Vec::with_capacity(usize::from(width) * usize::from(height) * 4);
    for _ in 0..height {
        for x in 0..width {
            cmyk.extend_from_slice(&bands[usize::from(x) * 4 / usize::from(width)].0);
        }
    }
    for style in [CmykStyle::AdobeInverted, CmykStyle::Plain, CmykStyle::Ycck] {
        let jpeg = cmyk_jpeg(&cmyk, width, height, style);
        for mode in MODES {
            let thumb = thumbnail(&jpeg, 200, mode).to_rgb8();
            assert_eq!(thumb.dimensions(), (200, 50));
            for (n, (_, rgb)) in bands.iter().enumerate() {
                near(
                    band(&thumb, n as u32, 4),
                    *rgb,
                    8,
                    &format!("{style:?} {mode:?} band {n}"),
                );
            }
        }
    }
}

/// A flat image of `rgb`, 640x480, as JPEG and PNG, tagged with `icc`.
fn tagged(rgb: [u8; 3], icc: &[u8]) -> [Vec<u8>; 2] {
    let image = DynamicImage::from(image::RgbImage::from_pixel(640, 480, image::Rgb(rgb)));
    let jpeg = jpeg_with_icc(&encode(&image, image::ImageFormat::Jpeg), icc);
    let mut png = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
    encoder.set_icc_profile(icc.to_vec()).unwrap();
    encoder
        .write_image(image.as_bytes(), 640, 480, image::ExtendedColorType::Rgb8)
        .unwrap();
    [jpeg, png]
}

#[test]
fn icc_profiles_are_converted_to_srgb() {
    // sRGB's pure red and green written in each space (what a camera or phone would store for
    // them; the colour-space maths of the profiles above give these values), which must come
    // back as sRGB red and green. Left unconverted they read 219,0,0 and 234,51,35.
    type Case = (&'static str, Vec<u8>, [u8; 3], [u8; 3]);
    let cases: [Case; 4] = [
        ("Adobe RGB red", ADOBE_RGB.icc(), [219, 0, 0], [255, 0, 0]),
        (
            "Adobe RGB green",
            ADOBE_RGB.icc(),
            [144, 255, 60],
            [0, 255, 0],
        ),
        (
            "Display P3 red",
            DISPLAY_P3.icc(),
            [234, 51, 35],
            [255, 0, 0],
        ),
        (
            "Display P3 green",
            DISPLAY_P3.icc(),
            [117, 251, 76],
            [0, 255, 0],
        ),
    ];
    for (what, icc, stored, srgb) in cases {
        for (bytes, format) in tagged(stored, &icc).iter().zip(["JPEG", "PNG"]) {
            for mode in MODES {
                let thumb = thumbnail(bytes, 64, mode).to_rgb8();
                near(
                    thumb.get_pixel(32, 24).0,
                    srgb,
                    6,
                    &format!("{what} {format} {mode:?}"),
                );
            }
        }
    }
    // Untagged pixels are sRGB already and stay as they are.
    let untagged = encode(
        &DynamicImage::from(image::RgbImage::from_pixel(
            640,
            480,
            image::Rgb([219, 0, 0]),
        )),
        image::ImageFormat::Png,
    );
    for mode in MODES {
        near(
            thumbnail(&untagged, 64, mode).to_rgb8().get_pixel(32, 24).0,
            [219, 0, 0],
            3,
            "untagged",
        );
    }
}

#[test]
fn greyscale_stays_greyscale() {
    let gray = DynamicImage::from(image::GrayImage::from_fn(600, 400, |x, _| {
        image::Luma([(x * 255 / 599) as u8])
    }));
    let sixteen = DynamicImage::ImageLuma16(gray.to_luma16());
    for (what, bytes) in [
        ("JPEG", encode(&gray, image::ImageFormat::Jpeg)),
        ("PNG", encode(&gray, image::ImageFormat::Png)),
        ("16-bit PNG", encode(&sixteen, image::ImageFormat::Png)),
    ] {
        for mode in MODES {
            let thumb = thumbnail(&bytes, 100, mode);
            assert_eq!(thumb.color(), image::ColorType::L8, "{what} {mode:?}");
            let luma = thumb.to_luma8();
            assert!(luma.get_pixel(5, 30).0[0] < 30, "{what} {mode:?}");
            assert!(luma.get_pixel(95, 30).0[0] > 225, "{what} {mode:?}");
        }
    }
}

#[test]
fn an_unusable_profile_is_a_warning_not_a_failure() {
    let image = DynamicImage::from(image::RgbImage::from_pixel(
        300,
        200,
        image::Rgb([10, 20, 30]),
    ));
    let jpeg = jpeg_with_icc(
        &encode(&image, image::ImageFormat::Jpeg),
        b"certainly not an ICC profile, just some bytes of text",
    );
    for mode in MODES {
        let rendered = render_thumbnails(&jpeg, &[100], &options(mode)).unwrap();
        assert_eq!(rendered.warnings.len(), 1, "{mode:?}");
        assert!(
            rendered.warnings[0].contains("colour profile"),
            "{:?}",
            rendered.warnings
        );
    }
}
