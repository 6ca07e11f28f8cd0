//! End to end against a local HTTP server: the bundled photos plus every kind of bad input, on
//! the process pool; and the pipelining itself.

mod support;

use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;
use std::time::Duration;

use support::{Route, TestServer, check_jpeg_thumbnail, dimensions, listing, photo};
use thumbnails::{Config, Event, ResizeOn, Stage, bundled_photos, run};

#[test]
fn bundled_photos_and_bad_inputs_over_http() {
    let aqua = photo("mate_Aqua.jpg");
    let mut routes: Vec<(String, Route)> = bundled_photos()
        .iter()
        .map(|(name, bytes)| (format!("/photos/{name}"), Route::Body(bytes.to_vec())))
        .collect();
    routes.push(("/missing.jpg".into(), Route::Status(404)));
    routes.push((
        "/broken.jpg".into(),
        Route::Body(aqua[..aqua.len() / 2].to_vec()),
    ));
    routes.push((
        "/page.jpg".into(),
        Route::Body(b"<!doctype html><p>Soft 404</p>".to_vec()),
    ));
    routes.push(("/bomb.png".into(), Route::Body(support::bomb())));
    routes.push((
        "/..%2F..%2Fescape.jpg".into(),
        Route::Body(photo("mate_FreshFlower.jpg").to_vec()),
    ));
    let server = TestServer::start(routes);

    let photo_urls: Vec<String> = bundled_photos()
        .iter()
        .map(|(name, _)| server.url(&format!("/photos/{name}")))
        .collect();
    let unreachable = format!("http://127.0.0.1:{}/gone.jpg", support::closed_port());
    let bad = [
        (server.url("/missing.jpg"), Stage::Fetch, "404"),
        (server.url("/broken.jpg"), Stage::Resize, "truncated"),
        (server.url("/page.jpg"), Stage::Resize, "not an image"),
        (server.url("/bomb.png"), Stage::Resize, "20000x20000"),
        (unreachable, Stage::Fetch, "could not connect"),
    ];
    let traversal = server.url("/..%2F..%2Fescape.jpg");

    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("a/b/out");
    let config = Config::builder(&out)
        .inputs(photo_urls.iter().cloned())
        .inputs(bad.iter().map(|(url, _, _)| url.clone()))
        .input(traversal.clone())
        .resize_on(ResizeOn::Processes)
        .workers(2)
        .retries(1)
        .build()
        .unwrap();
    let report = run(&config, &()).unwrap();

    // Failures: each reported for its own image, with its reason; the rest complete.
    assert_eq!(report.images, bundled_photos().len() + bad.len() + 1);
    assert_eq!(report.succeeded, bundled_photos().len() + 1, "{report}");
    assert!(!report.all_succeeded());
    assert_eq!(report.failures.len(), bad.len(), "{report}");
    for (url, stage, reason) in &bad {
        let failure = report
            .failures
            .iter()
            .find(|f| &f.source == url)
            .unwrap_or_else(|| panic!("{url} not reported:\n{report}"));
        assert_eq!(failure.stage, *stage, "{failure:?}");
        assert!(failure.reason.contains(reason), "{failure:?}");
    }

    // Outputs: three JPEGs per good image, right sizes, nothing else (no temporary or partial
    // files, no work directory), nothing outside --out.
    let mut expected = Vec::new();
    for (name, bytes) in bundled_photos() {
        let stem = name.trim_end_matches(".jpg");
        for width in [200, 64, 32] {
            let file = format!("{stem}_{width}.jpg");
            check_jpeg_thumbnail(&out.join(&file), width, dimensions(bytes));
            expected.push(file);
        }
    }
    for width in [200, 64, 32] {
        let file = format!("escape_{width}.jpg");
        check_jpeg_thumbnail(
            &out.join(&file),
            width,
            dimensions(photo("mate_FreshFlower.jpg")),
        );
        expected.push(file);
    }
    expected.sort();
    assert_eq!(listing(&out), expected);
    assert_eq!(listing(root.path()), ["a"]);
    assert_eq!(listing(&root.path().join("a")), ["b"]);
    assert_eq!(listing(&root.path().join("a/b")), ["out"]);

    // The report's figures add up.
    assert_eq!(report.thumbnails, expected.len());
    let written: u64 = expected
        .iter()
        .map(|f| std::fs::metadata(out.join(f)).unwrap().len())
        .sum();
    assert_eq!(report.bytes_written, written);
    assert_eq!(report.resize.images, report.succeeded);
    assert_eq!(report.fetch.failed, 2);
    assert_eq!(report.resize.failed, 3);
    assert!(report.saved_ratio > 0.9, "{report}");
    let text = report.to_string();
    assert!(text.contains("5 failed:") && text.contains("404"), "{text}");
}

#[test]
fn resizing_starts_before_the_last_download_ends() {
    let small = |seed| {
        support::encode(
            &image::DynamicImage::from(support::noise(300, 200, seed)),
            image::ImageFormat::Jpeg,
        )
    };
    let (open, gate) = mpsc::channel();
    let server = TestServer::start(vec![
        ("/1.jpg", Route::Body(small(1))),
        ("/2.jpg", Route::Body(small(2))),
        ("/3.jpg", Route::Body(small(3))),
        // Held until the first thumbnail is written: a pipeline that waited for every download
        // before resizing would see it only after the 30 s fallback, and fail below.
        ("/slow.jpg", Route::Gated(small(4), Mutex::new(gate))),
    ]);
    let out = tempfile::tempdir().unwrap();
    let config = Config::builder(out.path())
        .inputs(["/slow.jpg", "/1.jpg", "/2.jpg", "/3.jpg"].map(|p| server.url(p)))
        .resize_on(ResizeOn::Threads)
        .workers(1)
        .build()
        .unwrap();
    let open = Mutex::new(Some(open));
    let events = Mutex::new(Vec::new());
    let observer = |event: &Event<'_>| {
        let label = match event {
            Event::Fetched { source, .. } => format!("fetched {source}"),
            Event::Resized { source, .. } => {
                if let Some(open) = open.lock().unwrap().take() {
                    let _ = open.send(());
                }
                format!("resized {source}")
            }
            Event::Failed { source, reason, .. } => format!("failed {source}: {reason}"),
            _ => return,
        };
        events.lock().unwrap().push(label);
    };
    let report = run(&config, &observer).unwrap();
    assert!(report.all_succeeded(), "{report}");
    assert!(report.overlapped, "{report}");
    let events = events.into_inner().unwrap();
    let slow_fetched = events
        .iter()
        .position(|e| *e == format!("fetched {}", server.url("/slow.jpg")))
        .unwrap();
    let first_resized = events
        .iter()
        .position(|e| e.starts_with("resized"))
        .unwrap();
    assert!(first_resized < slow_fetched, "{events:#?}");
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let bytes = photo("mate_FreshFlower.jpg").to_vec();
    let server = TestServer::start(vec![
        (
            "/flaky.jpg",
            Route::FailFirst(2, bytes.clone(), AtomicUsize::new(0)),
        ),
        (
            "/down.jpg",
            Route::FailFirst(usize::MAX, bytes, AtomicUsize::new(0)),
        ),
    ]);
    let out = tempfile::tempdir().unwrap();
    let config = Config::builder(out.path())
        .inputs([server.url("/flaky.jpg"), server.url("/down.jpg")])
        .sizes([32])
        .retries(2)
        .resize_on(ResizeOn::Threads)
        .build()
        .unwrap();
    let report = run(&config, &()).unwrap();
    assert_eq!(report.succeeded, 1, "{report}");
    assert_eq!(report.failures.len(), 1, "{report}");
    assert_eq!(report.failures[0].source, server.url("/down.jpg"));
    assert!(
        report.failures[0].reason.contains("503"),
        "{:?}",
        report.failures[0]
    );
    assert_eq!(listing(out.path()), ["flaky_32.jpg"]);
}

#[test]
fn a_stalled_download_times_out() {
    let (_never, gate) = mpsc::channel();
    let server = TestServer::start(vec![
        ("/stalled.jpg", Route::Gated(Vec::new(), Mutex::new(gate))),
        (
            "/fine.jpg",
            Route::Body(photo("mate_FreshFlower.jpg").to_vec()),
        ),
    ]);
    let out = tempfile::tempdir().unwrap();
    let config = Config::builder(out.path())
        .inputs([server.url("/stalled.jpg"), server.url("/fine.jpg")])
        .sizes([32])
        .retries(0)
        .timeout(Duration::from_secs(1))
        .resize_on(ResizeOn::Threads)
        .build()
        .unwrap();
    let report = run(&config, &()).unwrap();
    assert_eq!(report.succeeded, 1, "{report}");
    let failure = &report.failures[0];
    assert_eq!(failure.source, server.url("/stalled.jpg"));
    assert_eq!(failure.stage, Stage::Fetch);
    assert!(failure.reason.contains("timed out"), "{failure:?}");
    assert_eq!(listing(out.path()), ["fine_32.jpg"]);
}
