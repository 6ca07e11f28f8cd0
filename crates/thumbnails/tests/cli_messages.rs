//! The built binary's messages: failures under `-q`, machine-readable kinds in the JSON report,
//! unsupported formats named (given one by one and found in directories), compressed answers.

mod support;

use support::{run_command as run, thumbnails_command as thumbnails};

use std::sync::atomic::AtomicUsize;

use support::{Route, TestServer, listing, photo};

const HEIC: &[u8] = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0";

#[test]
fn quiet_json_reports_every_failure_with_its_kind() {
    let server = TestServer::start(vec![
        ("/gone.jpg", Route::Status(404)),
        (
            "/busy.jpg",
            Route::FailFirst(usize::MAX, Vec::new(), AtomicUsize::new(0)),
        ),
        ("/page.jpg", Route::Body(b"<html>soft 404</html>".to_vec())),
        (
            "/zipped.jpg",
            Route::Gzip(photo("mate_FreshFlower.jpg").to_vec()),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::write(photos.join("phone.heic"), HEIC).unwrap();
    std::fs::write(photos.join("ok.jpg"), photo("mate_Aqua.jpg")).unwrap();
    std::fs::write(
        dir.path().join("single.avif"),
        b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf",
    )
    .unwrap();
    let output = run(thumbnails()
        .args(["make", "-q", "--json", "--out", "out", "--sizes", "64"])
        .args(["--retries", "1", "--resize-on", "threads"])
        .args([
            server.url("/gone.jpg"),
            server.url("/busy.jpg"),
            server.url("/page.jpg"),
            server.url("/zipped.jpg"),
        ])
        .args(["photos", "single.avif", "missing.jpg"])
        .current_dir(dir.path()));
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let failures = report["failures"].as_array().unwrap();
    let find = |source: &str| {
        failures
            .iter()
            .find(|f| f["source"].as_str().unwrap().ends_with(source))
            .unwrap_or_else(|| panic!("{source} not in {report}"))
    };
    let gone = find("/gone.jpg");
    assert_eq!(gone["kind"], "http_status");
    assert_eq!(gone["http_status"], 404);
    assert_eq!(gone["attempts"], 1, "a 404 is not retried");
    let busy = find("/busy.jpg");
    assert_eq!(busy["kind"], "http_status");
    assert_eq!(busy["http_status"], 503);
    assert_eq!(busy["attempts"], 2, "a 503 is retried once (--retries 1)");
    assert_eq!(find("/page.jpg")["kind"], "not_an_image");
    let heic = find("phone.heic");
    assert_eq!(heic["kind"], "unsupported_format");
    assert!(heic["reason"].as_str().unwrap().contains("HEIC"), "{heic}");
    let avif = find("single.avif");
    assert_eq!(avif["kind"], "unsupported_format");
    assert!(avif["reason"].as_str().unwrap().contains("AVIF"), "{avif}");
    assert_eq!(find("missing.jpg")["kind"], "not_found");
    assert_eq!(failures.len(), 6, "{report}");
    assert!(
        failures
            .iter()
            .all(|f| f.get("http_status").is_none() || f["kind"] == "http_status")
    );
    // The gzip-compressed answer was decoded like any other.
    assert_eq!(report["succeeded"], 2, "{report}");
    assert_eq!(
        listing(&dir.path().join("out")),
        ["ok_64.jpg", "zipped_64.jpg"]
    );
    // -q: no progress and no text report, but every failure, one line each, on stderr.
    let stderr = String::from_utf8(output.stderr).unwrap();
    for failure in failures {
        let source = failure["source"].as_str().unwrap();
        let lines = stderr.lines().filter(|l| l.contains(source)).count();
        assert_eq!(lines, 1, "{source} in:\n{stderr}");
    }
    assert_eq!(stderr.lines().count(), failures.len(), "{stderr}");
}

#[test]
fn a_run_that_cannot_start_prints_a_json_error() {
    let dir = tempfile::tempdir().unwrap();
    for (args, kind) in [
        (&["make", "--json", "--out", "o"][..], "config"),
        (
            &["make", "--json", "x.jpg", "--out", "o", "--sizes", "0"][..],
            "config",
        ),
        (
            &["make", "--json", "--urls", "nope.txt", "--out", "o"][..],
            "input",
        ),
        (&["make", "--json", "x.jpg"][..], "usage"),
    ] {
        let output = run(thumbnails().args(args).current_dir(dir.path()));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let error: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("{args:?}: stdout is not JSON: {err}"));
        assert_eq!(error["error"]["kind"], kind, "{args:?}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    }
}
