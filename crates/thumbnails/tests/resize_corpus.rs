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

#[test]
fn fast_is_within_30_db_of_faithful_on_every_corpus_photo() {
    let Some(dir) = corpus() else {
        eprintln!("skipped: no corpus (set FLOTILLA_BENCH_PHOTOS to a directory of photos)");
        return;
    };
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
        .collect();
    photos.sort();
    assert!(!photos.is_empty(), "no photos in {}", dir.display());
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
