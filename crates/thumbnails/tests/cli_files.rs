//! The built binary and the user's files: thumbnails already in `--out` (and things in their
//! way) are never lost, `--out` is checked before any download, two runs share one `--out`,
//! names in any script are kept.

mod support;

use support::{run_command as run, stdout_json as json, thumbnails_command as thumbnails};

use std::path::Path;

use support::{Route, TestServer, listing, photo};

/// Every file under `dir` (not following links) with its bytes, or its link target.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for name in listing(dir) {
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let bytes = if meta.file_type().is_symlink() {
            std::fs::read_link(&path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else if meta.is_dir() {
            b"<dir>".to_vec()
        } else {
            std::fs::read(&path).unwrap()
        };
        files.push((name, bytes));
    }
    files
}

/// What `--out` holds after each run of the test below: nothing else (no temporary file, no
/// work directory).
const EXPECTED: [&str; 6] = [
    "x_200.jpg",
    "x_32.jpg",
    "x_64.jpg",
    "y_200.jpg",
    "y_32.jpg",
    "y_64.jpg",
];

/// Asserts the files `names` of `before` are in `after`, byte for byte.
#[track_caller]
fn unchanged(before: &[(String, Vec<u8>)], after: &[(String, Vec<u8>)], names: &[&str]) {
    for name in names {
        let old = before.iter().find(|(n, _)| n == name).unwrap();
        let new = after.iter().find(|(n, _)| n == name);
        assert_eq!(Some(&old.1), new.map(|(_, b)| b), "{name} changed");
    }
}

#[test]
fn files_in_the_way_are_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.jpg"), photo("mate_FreshFlower.jpg")).unwrap();
    std::fs::write(dir.path().join("y.jpg"), photo("mate_Aqua.jpg")).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // The user's own files under two of x's names; a directory under the third, which no
    // thumbnail can replace; and under y's largest name a link to a file outside --out.
    std::fs::write(out.join("x_200.jpg"), b"the user's x_200").unwrap();
    std::fs::write(out.join("x_64.jpg"), b"the user's x_64").unwrap();
    std::fs::create_dir(out.join("x_32.jpg")).unwrap();
    std::fs::write(out.join("x_32.jpg/inside"), b"inside").unwrap();
    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, b"not to be touched").unwrap();
    std::os::unix::fs::symlink(&outside, out.join("y_200.jpg")).unwrap();
    let before = snapshot(&out);

    // The default: whatever is there is kept; x is all there (nothing done), y gets its
    // two missing sizes.
    let output = run(thumbnails()
        .args(["make", "x.jpg", "y.jpg", "--out", "out", "--json"])
        .args(["--resize-on", "threads"])
        .current_dir(dir.path()));
    assert_eq!(output.status.code(), Some(0));
    let report = json(&output);
    assert_eq!(report["skipped"], serde_json::json!(["x.jpg"]), "{report}");
    assert_eq!(report["done"][0]["kept"].as_array().unwrap().len(), 1);
    let names: Vec<&str> = before.iter().map(|(n, _)| n.as_str()).collect();
    unchanged(&before, &snapshot(&out), &names);
    assert_eq!(listing(&out), EXPECTED);
    assert_eq!(std::fs::read(&outside).unwrap(), b"not to be touched");

    // --overwrite: x's third size cannot replace a directory, so x fails and its two old
    // files are put back as they were; y's link is replaced by a thumbnail (the link itself,
    // never the file it points to).
    let before = snapshot(&out);
    let output = run(thumbnails()
        .args([
            "make",
            "x.jpg",
            "y.jpg",
            "--out",
            "out",
            "--json",
            "--overwrite",
        ])
        .args(["--resize-on", "processes", "--workers", "1"])
        .current_dir(dir.path()));
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let failure = &report["failures"][0];
    assert_eq!(failure["source"], "x.jpg", "{report}");
    assert_eq!(failure["kind"], "io", "{report}");
    assert!(
        failure["reason"].as_str().unwrap().contains("x_32.jpg"),
        "{report}"
    );
    unchanged(
        &before,
        &snapshot(&out),
        &["x_200.jpg", "x_64.jpg", "x_32.jpg"],
    );
    assert_eq!(
        std::fs::read(out.join("x_32.jpg/inside")).unwrap(),
        b"inside"
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"not to be touched");
    let y_200 = std::fs::symlink_metadata(out.join("y_200.jpg")).unwrap();
    assert!(y_200.is_file(), "the link was replaced by the thumbnail");
    support::check_jpeg_thumbnail(&out.join("y_200.jpg"), 200, (2560, 1600));
    assert_eq!(listing(&out), EXPECTED);
}

#[test]
fn an_unusable_out_is_refused_before_any_download() {
    let server = TestServer::start(vec![(
        "/a.jpg",
        Route::Body(photo("mate_FreshFlower.jpg").to_vec()),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    // A plain file; a path below a plain file; /proc, which refuses new files even to root.
    for (out, says) in [
        (file.clone(), "not a directory"),
        (file.join("below"), "cannot use output directory"),
        (Path::new("/proc").to_owned(), "cannot use output directory"),
    ] {
        for json_flag in [false, true] {
            let mut command = thumbnails();
            command
                .args(["make", &server.url("/a.jpg"), "--out"])
                .arg(&out);
            if json_flag {
                command.arg("--json");
            }
            let output = run(&mut command);
            assert_eq!(output.status.code(), Some(2), "{}", out.display());
            let stderr = String::from_utf8(output.stderr.clone()).unwrap();
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(says), "{stderr}");
            assert!(
                stderr.matches("os error").count() <= 1,
                "the cause once: {stderr}"
            );
            if json_flag {
                let error = json(&output);
                assert_eq!(error["error"]["kind"], "out_dir", "{error}");
                assert!(error["error"]["message"].as_str().unwrap().contains(says));
            } else {
                assert!(output.stdout.is_empty());
            }
        }
    }
    assert_eq!(server.requests(), 0, "nothing was downloaded");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn two_runs_at_once_share_one_out() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for (name, bytes) in thumbnails::bundled_photos().iter().take(4) {
        std::fs::write(photos.join(name), bytes).unwrap();
    }
    let start = || {
        thumbnails()
            .args(["make", "photos", "--out", "out", "--json", "--sizes", "64"])
            .args(["--resize-on", "threads", "--workers", "1"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for output in [&a, &b] {
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    // Each image was made by one run, or by both (one wrote it, the other kept it).
    let (ra, rb) = (json(&a), json(&b));
    let made = |r: &serde_json::Value| {
        r["done"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["thumbnails"].as_array().unwrap().len())
            .sum::<usize>()
    };
    assert_eq!(made(&ra) + made(&rb), 4, "{ra}\n{rb}");
    let out = dir.path().join("out");
    let names = listing(&out);
    assert_eq!(names.len(), 4, "{names:?}: no work directory or lock left");
    for (name, bytes) in thumbnails::bundled_photos().iter().take(4) {
        let stem = name.trim_end_matches(".jpg");
        support::check_jpeg_thumbnail(
            &out.join(format!("{stem}_64.jpg")),
            64,
            support::dimensions(bytes),
        );
    }
}

#[test]
fn names_in_any_script_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("写真.jpg"), photo("mate_FreshFlower.jpg")).unwrap();
    std::fs::write(dir.path().join("Ölberg.jpg"), photo("mate_Aqua.jpg")).unwrap();
    let output = run(thumbnails()
        .args([
            "make",
            "写真.jpg",
            "Ölberg.jpg",
            "--out",
            "out",
            "--sizes",
            "32",
        ])
        .args(["--resize-on", "threads"])
        .current_dir(dir.path()));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        listing(&dir.path().join("out")),
        ["Ölberg_32.jpg", "写真_32.jpg"]
    );
}
