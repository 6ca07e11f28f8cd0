//! Fast mode against faithful on every photo of the benchmark corpus, at every size: PSNR at
//! least 30 dB.
//!
//! The corpus is not part of the repository: it is read from `$FLOTILLA_BENCH_PHOTOS`, else
//! from `../shared/corpus/photos` beside the workspace (where the benchmark harness reads it
//! too). Without it the test says so and passes; the bundled photos are checked in
//! `resize_quality.rs` either way.

mod support;

use std::path::PathBuf;

use thumbnails::{Mode, ResizeOptions, render_thumbnails};

fn corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("FLOTILLA_BENCH_PHOTOS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/photos"),
    };
    dir.is_dir().then_some(dir)
}

/// The corpus' JPEGs, sorted; `None` (and a note) without a corpus.
fn corpus_photos() -> Option<Vec<PathBuf>> {
    let Some(dir) = corpus() else {
        eprintln!("skipped: no corpus (set FLOTILLA_BENCH_PHOTOS to a directory of photos)");
        return None;
    };
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
        .collect();
    photos.sort();
    assert!(!photos.is_empty(), "no photos in {}", dir.display());
    Some(photos)
}

#[test]
fn fast_is_within_30_db_of_faithful_on_every_corpus_photo() {
    let Some(photos) = corpus_photos() else {
        return;
    };
    let sizes = [200, 64, 32];
    let mut worst = (f64::INFINITY, String::new());
    for photo in &photos {
        let bytes = std::fs::read(photo).unwrap();
        let options = |mode| ResizeOptions {
            mode,
            ..ResizeOptions::default()
        };
        let fast = render_thumbnails(&bytes, &sizes, &options(Mode::Fast)).unwrap();
        let faithful = render_thumbnails(&bytes, &sizes, &options(Mode::Faithful)).unwrap();
        for (f, g) in fast.thumbnails.iter().zip(&faithful.thumbnails) {
            let a = image::load_from_memory(&f.data).unwrap().to_rgb8();
            let b = image::load_from_memory(&g.data).unwrap().to_rgb8();
            let db = support::psnr(&a, &b);
            let name = format!("{} at {} px", photo.display(), f.width);
            eprintln!("{name}: {db:.1} dB");
            assert!(db >= 30.0, "{name}: {db:.1} dB");
            if db < worst.0 {
                worst = (db, name);
            }
        }
    }
    eprintln!("lowest: {:.1} dB, {}", worst.0, worst.1);
}

/// Faithful makes 64 and 32 from its 200 rather than from the full image again: the 200 must be
/// exactly the one made alone, and the smaller ones within 45 dB of those made alone from the
/// full image (measured: 46.7 dB at the lowest). Quality 100, so that the comparison sees the
/// pixels rather than JPEG's quantisation.
#[test]
fn faithful_small_sizes_from_the_largest_are_within_45_db_of_direct_ones() {
    let Some(photos) = corpus_photos() else {
        return;
    };
    let options = ResizeOptions {
        mode: Mode::Faithful,
        quality: 100,
        ..ResizeOptions::default()
    };
    let mut worst = (f64::INFINITY, String::new());
    for photo in &photos {
        let bytes = std::fs::read(photo).unwrap();
        let together = render_thumbnails(&bytes, &[200, 64, 32], &options).unwrap();
        for made in &together.thumbnails {
            let alone = render_thumbnails(&bytes, &[made.requested_width], &options).unwrap();
            let alone = &alone.thumbnails[0];
            let name = format!("{} at {} px", photo.display(), made.width);
            assert_eq!(
                (made.width, made.height),
                (alone.width, alone.height),
                "{name}"
            );
            if made.requested_width == 200 {
                assert!(made.data == alone.data, "{name}: the largest size changed");
                continue;
            }
            let a = image::load_from_memory(&made.data).unwrap().to_rgb8();
            let b = image::load_from_memory(&alone.data).unwrap().to_rgb8();
            let db = support::psnr(&a, &b);
            eprintln!("{name}: {db:.1} dB from the direct one");
            assert!(db >= 45.0, "{name}: {db:.1} dB");
            if db < worst.0 {
                worst = (db, name);
            }
        }
    }
    eprintln!("lowest: {:.1} dB, {}", worst.0, worst.1);
}
