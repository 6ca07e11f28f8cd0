//! The resize step on its own: dimensions, fast against faithful, formats, orientation, and
//! damaged or hostile input.

mod support;

use image::{DynamicImage, ImageFormat};
use support::{dimensions, encode, photo, picture, psnr};
use thumbnails::{
    Mode, OutputFormat, ResizeError, ResizeOptions, render_thumbnails, thumbnail_size,
};

fn options(mode: Mode) -> ResizeOptions {
    ResizeOptions {
        mode,
        ..ResizeOptions::default()
    }
}

fn decode(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes).unwrap().to_rgb8()
}

#[test]
fn known_dimensions_in_both_modes() {
    // (source size, widths, expected sizes): the course's floor(h * w_new / w_old), and no
    // enlarging.
    type Case = ((u32, u32), &'static [u32], &'static [(u32, u32)]);
    let cases: [Case; 4] = [
        (
            (600, 450),
            &[200, 64, 32],
            &[(200, 150), (64, 48), (32, 24)],
        ),
        ((250, 750), &[200, 64], &[(200, 600), (64, 192)]),
        ((2000, 6), &[200, 32], &[(200, 1), (32, 1)]),
        ((150, 100), &[200, 64], &[(150, 100), (64, 42)]),
    ];
    for ((w, h), widths, expected) in cases {
        let png = encode(&DynamicImage::from(picture(w, h)), ImageFormat::Png);
        let jpeg = encode(&DynamicImage::from(picture(w, h)), ImageFormat::Jpeg);
        for bytes in [&png, &jpeg] {
            for mode in [Mode::Fast, Mode::Faithful] {
                let rendered = render_thumbnails(bytes, widths, &options(mode)).unwrap();
                assert_eq!((rendered.source_width, rendered.source_height), (w, h));
                let got: Vec<_> = rendered
                    .thumbnails
                    .iter()
                    .map(|t| {
                        assert_eq!(t.format, OutputFormat::Jpeg);
                        assert_eq!(dimensions(&t.data), (t.width, t.height));
                        (t.width, t.height)
                    })
                    .collect();
                assert_eq!(got, expected, "{w}x{h} {mode:?}");
                for (t, &(ew, eh)) in rendered.thumbnails.iter().zip(expected) {
                    assert_eq!(thumbnail_size(w, h, t.requested_width), (ew, eh));
                }
            }
        }
    }
}

#[test]
fn fast_is_close_to_faithful_on_real_photos() {
    // A progressive JPEG at every size; a baseline one at 200 px (a debug build is slow).
    let cases: [(&str, &[u32]); 2] = [
        ("mate_FreshFlower.jpg", &[200, 64, 32]),
        ("mate_Aqua.jpg", &[200]),
    ];
    for (name, widths) in cases {
        let bytes = photo(name);
        let fast = render_thumbnails(bytes, widths, &options(Mode::Fast)).unwrap();
        let faithful = render_thumbnails(bytes, widths, &options(Mode::Faithful)).unwrap();
        // Fast mode decoded at a reduced scale; faithful in full.
        assert!(fast.decoded_width < faithful.decoded_width, "{name}");
        assert!(fast.decoded_width >= 300, "{name}");
        assert_eq!(
            (faithful.decoded_width, faithful.decoded_height),
            dimensions(bytes)
        );
        for (f, g) in fast.thumbnails.iter().zip(&faithful.thumbnails) {
            assert_eq!((f.width, f.height), (g.width, g.height));
            let db = psnr(&decode(&f.data), &decode(&g.data));
            eprintln!("{name} at {} px: fast vs faithful PSNR {db:.1} dB", f.width);
            // 30 dB is the bar at 200 px; the smaller sizes (made from the larger ones) hold
            // it too.
            assert!(db >= 30.0, "{name} at {} px: PSNR {db:.1} dB", f.width);
        }
    }
}

#[test]
fn png_webp_and_gif_inputs() {
    let opaque = DynamicImage::from(picture(320, 240));
    for format in [ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
        let bytes = encode(&opaque, format);
        for mode in [Mode::Fast, Mode::Faithful] {
            let rendered = render_thumbnails(&bytes, &[200, 32], &options(mode))
                .unwrap_or_else(|e| panic!("{format:?} {mode:?}: {e}"));
            let sizes: Vec<_> = rendered
                .thumbnails
                .iter()
                .map(|t| (t.width, t.height))
                .collect();
            assert_eq!(sizes, [(200, 150), (32, 24)], "{format:?}");
            // GIF is palette-based and RGBA when decoded, but opaque: still JPEG out.
            assert!(
                rendered
                    .thumbnails
                    .iter()
                    .all(|t| t.format == OutputFormat::Jpeg),
                "{format:?}"
            );
        }
    }
    // Real transparency is kept: PNG out.
    let mut translucent = image::RgbaImage::from_pixel(100, 50, image::Rgba([10, 200, 10, 255]));
    for x in 0..50 {
        for y in 0..50 {
            translucent.put_pixel(x, y, image::Rgba([0, 0, 0, 0]));
        }
    }
    let bytes = encode(&DynamicImage::from(translucent), ImageFormat::Png);
    let rendered = render_thumbnails(&bytes, &[40], &options(Mode::Fast)).unwrap();
    let thumb = &rendered.thumbnails[0];
    assert_eq!(thumb.format, OutputFormat::Png);
    let decoded = image::load_from_memory(&thumb.data).unwrap().to_rgba8();
    assert_eq!(decoded.dimensions(), (40, 20));
    assert_eq!(
        decoded.get_pixel(2, 10).0[3],
        0,
        "left half stays transparent"
    );
    assert_eq!(
        decoded.get_pixel(37, 10).0[3],
        255,
        "right half stays opaque"
    );
}

/// A JPEG whose EXIF says "rotate 90° clockwise to display" (orientation 6).
fn rotated_jpeg(image: &DynamicImage) -> Vec<u8> {
    let plain = encode(image, ImageFormat::Jpeg);
    // APP1: "Exif\0\0", a big-endian TIFF header, one IFD with one entry: 0x0112 SHORT 1 = 6.
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0, 6, 0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = plain[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn exif_orientation_is_honoured() {
    // Stored 300x200: left half red, right half blue. Displayed (turned 90° clockwise) it is
    // 200x300 with red on top.
    let stored = image::RgbImage::from_fn(300, 200, |x, _| {
        if x < 150 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    let bytes = rotated_jpeg(&DynamicImage::from(stored));
    assert_eq!(dimensions(&bytes), (300, 200));
    for mode in [Mode::Fast, Mode::Faithful] {
        let rendered = render_thumbnails(&bytes, &[100], &options(mode)).unwrap();
        assert_eq!((rendered.source_width, rendered.source_height), (200, 300));
        let thumb = decode(&rendered.thumbnails[0].data);
        assert_eq!(thumb.dimensions(), (100, 150), "{mode:?}");
        let top = thumb.get_pixel(50, 20).0;
        let bottom = thumb.get_pixel(50, 130).0;
        assert!(top[0] > 150 && top[2] < 100, "{mode:?}: top is {top:?}");
        assert!(
            bottom[2] > 150 && bottom[0] < 100,
            "{mode:?}: bottom is {bottom:?}"
        );
    }
}

#[test]
fn damaged_and_hostile_input_is_refused_clearly() {
    let jpeg = photo("mate_FreshFlower.jpg");
    for mode in [Mode::Fast, Mode::Faithful] {
        let truncated = render_thumbnails(&jpeg[..jpeg.len() * 2 / 3], &[64], &options(mode));
        let err = truncated.unwrap_err();
        assert!(
            matches!(err, ResizeError::Corrupt { .. }),
            "{mode:?}: {err}"
        );
        assert!(err.to_string().contains("truncated"), "{mode:?}: {err}");

        let header_only = render_thumbnails(&jpeg[..400], &[64], &options(mode)).unwrap_err();
        assert!(
            matches!(header_only, ResizeError::Corrupt { .. }),
            "{header_only}"
        );

        let bomb = render_thumbnails(&support::bomb(), &[64], &options(mode)).unwrap_err();
        assert_eq!(
            bomb,
            ResizeError::TooManyPixels {
                width: 20_000,
                height: 20_000,
                limit: thumbnails::DEFAULT_MAX_PIXELS
            }
        );
        assert!(bomb.to_string().contains("--max-pixels"), "{bomb}");

        // The limit is configurable, for JPEGs too: this 1.9-megapixel photo is over a
        // 1-megapixel limit.
        let strict = ResizeOptions {
            max_pixels: 1_000_000,
            ..options(mode)
        };
        let err = render_thumbnails(jpeg, &[64], &strict).unwrap_err();
        assert!(matches!(err, ResizeError::TooManyPixels { .. }), "{err}");

        let html = render_thumbnails(b"<html>404</html>", &[64], &options(mode)).unwrap_err();
        assert!(matches!(html, ResizeError::NotAnImage { .. }), "{html}");

        // A HEIC header: a real format, but not one this tool reads; named as such.
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0";
        let err = render_thumbnails(heic, &[64], &options(mode)).unwrap_err();
        assert_eq!(
            err,
            ResizeError::Unsupported {
                format: "HEIC".into()
            }
        );
        assert!(err.to_string().contains("HEIC"), "{err}");
    }
}
