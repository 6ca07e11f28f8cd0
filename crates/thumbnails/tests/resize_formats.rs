//! Formats beyond baseline JPEG, PNG, WebP and GIF: TIFF and BMP read; arithmetic-coded and
//! progressive JPEGs read in both modes; damaged scans refused in both modes (never a picture
//! half grey); formats not read named.

mod support;

use std::path::Path;

use image::DynamicImage;
use support::{encode, picture};
use thumbnails::{Mode, ResizeError, ResizeOptions, render_thumbnails};

const MODES: [Mode; 2] = [Mode::Fast, Mode::Faithful];

fn options(mode: Mode) -> ResizeOptions {
    ResizeOptions {
        mode,
        ..ResizeOptions::default()
    }
}

fn sizes(bytes: &[u8], mode: Mode) -> Vec<(u32, u32)> {
    render_thumbnails(bytes, &[200, 32], &options(mode))
        .unwrap_or_else(|err| panic!("{mode:?}: {err}"))
        .thumbnails
        .iter()
        .map(|t| (t.width, t.height))
        .collect()
}

#[test]
fn tiff_and_bmp_are_read() {
    let image = DynamicImage::from(picture(320, 240));
    for format in [image::ImageFormat::Tiff, image::ImageFormat::Bmp] {
        let bytes = encode(&image, format);
        for mode in MODES {
            assert_eq!(sizes(&bytes, mode), [(200, 150), (32, 24)], "{format:?}");
        }
    }
}

#[test]
fn arithmetic_coded_jpegs_are_read_in_both_modes() {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/arithmetic_320x200.jpg"),
    )
    .unwrap();
    for mode in MODES {
        assert_eq!(sizes(&bytes, mode), [(200, 125), (32, 20)]);
    }
}

/// A detailed 3200x1200 photo-like picture, progressive (so fast mode decodes it from its DC
/// scans at 1/8) or baseline.
fn jpeg(progressive: bool) -> Vec<u8> {
    let image = support::noise(3200, 1200, 3);
    let smooth = picture(3200, 1200);
    let mixed: Vec<u8> = image
        .as_raw()
        .iter()
        .zip(smooth.as_raw())
        .map(|(&n, &s)| (u16::from(s) * 3 / 4 + u16::from(n) / 4) as u8)
        .collect();
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 85);
    encoder.set_progressive(progressive);
    encoder
        .encode(&mixed, 3200, 1200, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

#[test]
fn progressive_jpegs_in_fast_mode_match_faithful() {
    let bytes = jpeg(true);
    let fast = render_thumbnails(&bytes, &[200, 64, 32], &options(Mode::Fast)).unwrap();
    let faithful = render_thumbnails(&bytes, &[200, 64, 32], &options(Mode::Faithful)).unwrap();
    assert_eq!(
        (fast.decoded_width, fast.decoded_height),
        (400, 150),
        "1/8 scale"
    );
    for (f, g) in fast.thumbnails.iter().zip(&faithful.thumbnails) {
        let a = image::load_from_memory(&f.data).unwrap().to_rgb8();
        let b = image::load_from_memory(&g.data).unwrap().to_rgb8();
        let db = support::psnr(&a, &b);
        assert!(db >= 30.0, "{} px: {db:.1} dB", f.width);
    }
}

#[test]
fn damaged_scans_fail_in_both_modes() {
    for progressive in [false, true] {
        let good = jpeg(progressive);
        // Cut in the middle of the image data: for the progressive file that is in its AC
        // scans, which fast mode does not decode, and still a failure.
        let truncated = &good[..good.len() / 2];
        // Bytes overwritten in the middle of the first scan's entropy-coded data.
        let sos = good
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .expect("a scan");
        let mut corrupt = good.clone();
        let at = sos + 200;
        for (i, byte) in corrupt[at..at + 64].iter_mut().enumerate() {
            *byte = if i % 2 == 0 { 0xFF } else { 0xD3 };
        }
        for mode in MODES {
            let what = format!("progressive {progressive}, {mode:?}");
            match render_thumbnails(truncated, &[200, 64], &options(mode)) {
                Err(ResizeError::Corrupt { reason, .. }) => {
                    assert!(reason.contains("truncated"), "{what}: {reason}")
                }
                Err(other) => panic!("{what}: a truncated file gave {other}"),
                Ok(_) => panic!("{what}: a truncated file gave thumbnails"),
            }
            match render_thumbnails(&corrupt, &[200, 64], &options(mode)) {
                Err(ResizeError::Corrupt { .. }) => {}
                Err(other) => panic!("{what}: a corrupt scan gave {other}"),
                Ok(_) => panic!("{what}: a corrupt scan gave thumbnails"),
            }
        }
    }
}
