//! The built `thumbnails` binary, driven in temporary directories: the demo, reports, exit
//! codes, usage errors, a full disk and a closed standard output.

mod support;

use support::{run_command as run, stdout_json as json, thumbnails_command as thumbnails};

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use image::{DynamicImage, ImageFormat};
use support::{Route, TestServer, listing, photo};

fn write_image(path: &Path, image: DynamicImage, format: ImageFormat) {
    std::fs::write(path, support::encode(&image, format)).unwrap();
}

#[test]
fn demo_runs_offline_and_prints_the_report() {
    let out = tempfile::tempdir().unwrap();
    let output = run(thumbnails()
        .args(["demo", "--out"])
        .arg(out.path())
        .current_dir(out.path()));
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("8 of 8 images done, 24 thumbnails"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fetch") && stdout.contains("resize"),
        "{stdout}"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("Serving 8 bundled photos at http://127.0.0.1:"),
        "{stderr}"
    );
    // Not a terminal: plain log lines instead of progress bars.
    assert!(
        stderr.contains("INFO resized http://127.0.0.1:"),
        "{stderr}"
    );
    assert_eq!(listing(out.path()).len(), 24);
}

#[test]
fn local_files_json_report_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    write_image(
        &photos.join("a.png"),
        DynamicImage::from(support::picture(400, 300)),
        ImageFormat::Png,
    );
    std::fs::write(photos.join("b.jpg"), photo("mate_FreshFlower.jpg")).unwrap();
    std::fs::write(photos.join("c.jpg"), b"<html>oops</html>").unwrap();
    let out = dir.path().join("out");
    let output = run(thumbnails()
        .args([
            "make", "photos", "--out", "out", "--sizes", "100,50", "--json",
        ])
        .args(["--resize-on", "threads"])
        .current_dir(dir.path()));
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["images"], 3);
    assert_eq!(report["succeeded"], 2);
    assert_eq!(report["resize_on"], "threads");
    assert_eq!(report["bytes_downloaded"], 0);
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["source"], "photos/c.jpg");
    assert_eq!(failures[0]["stage"], "resize");
    assert!(
        failures[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not an image"),
        "{report}"
    );
    assert_eq!(
        listing(&out),
        ["a_100.jpg", "a_50.jpg", "b_100.jpg", "b_50.jpg"]
    );
    support::check_jpeg_thumbnail(&out.join("a_50.jpg"), 50, (400, 300));
}

#[test]
fn urls_file_text_report_and_exit_code_0() {
    let server = TestServer::start(vec![
        (
            "/one.jpg",
            Route::Body(photo("mate_FreshFlower.jpg").to_vec()),
        ),
        (
            "/two.jpg",
            Route::Body(photo("mate_GreenMeadow.jpg").to_vec()),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let list = format!(
        "# two photos\n{}\n\n  {}  \n",
        server.url("/one.jpg"),
        server.url("/two.jpg")
    );
    std::fs::write(dir.path().join("urls.txt"), list).unwrap();
    let output = run(thumbnails()
        .args(["make", "--urls", "urls.txt", "-o", "out", "--sizes", "64"])
        .args(["--mode", "faithful", "--max-downloads", "1"])
        .current_dir(dir.path()));
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("2 of 2 images done, 2 thumbnails"),
        "{stdout}"
    );
    assert!(stdout.contains("faithful mode"), "{stdout}");
    assert_eq!(
        listing(&dir.path().join("out")),
        ["one_64.jpg", "two_64.jpg"]
    );
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["make", "x.jpg"], "--out"),
        (&["make", "--out", "o"], "no images"),
        (&["make", "x.jpg", "--out", "o", "--sizes", "0"], "width 0"),
        (
            &["make", "x.jpg", "--out", "o", "--quality", "101"],
            "quality 101",
        ),
        (&["make", "x.jpg", "--out", "o", "--mode", "slow"], "slow"),
        (
            &["make", "x.jpg", "--out", "o", "--workers", "0"],
            "workers",
        ),
    ];
    for (args, message) in cases {
        let output = run(thumbnails().args(args).current_dir(dir.path()));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(listing(dir.path()).is_empty(), "nothing was written");
    let help = run(thumbnails().arg("--help"));
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("demo"));
}

#[test]
fn a_full_disk_fails_its_image_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    // Noise compresses badly: its 200 px thumbnail is far over the 8 KiB limit below, while
    // its 32 px one (written first) and the flat image's thumbnails are well under it.
    write_image(
        &photos.join("noisy.png"),
        DynamicImage::from(support::noise(400, 300, 7)),
        ImageFormat::Png,
    );
    write_image(
        &photos.join("flat.png"),
        DynamicImage::from(image::RgbImage::from_pixel(
            300,
            200,
            image::Rgb([90, 120, 200]),
        )),
        ImageFormat::Png,
    );
    // A download larger than the limit fills it half-way through.
    let server = TestServer::start(vec![(
        "/big.jpg",
        Route::Body(photo("mate_Aqua.jpg").to_vec()),
    )]);
    let mut command = thumbnails();
    command
        .args([
            "make", "photos", "--out", "out", "--sizes", "32,200", "--json",
        ])
        .arg(server.url("/big.jpg"))
        .args(["--resize-on", "processes", "--workers", "1"])
        .current_dir(dir.path());
    // SAFETY: the closure runs in the forked child before exec and only calls signal(2) and
    // setrlimit(2), which are async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(|| {
            // Files may not grow past 8 KiB; writes beyond fail with EFBIG instead of killing
            // the process with SIGXFSZ. Both settings are inherited by the worker processes.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 8192,
                rlim_max: 8192,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = run(&mut command);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["succeeded"], 1, "{report}");
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{report}");
    assert_eq!(failures[1]["source"], server.url("/big.jpg"));
    assert_eq!(failures[1]["stage"], "fetch");
    assert_eq!(failures[1]["kind"], "disk_full", "{report}");
    assert_eq!(failures[0]["source"], "photos/noisy.png");
    assert_eq!(failures[0]["kind"], "disk_full", "{report}");
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("noisy_200.jpg") && reason.contains("file size limit"),
        "{reason}"
    );
    // All or nothing: noisy_32.jpg was written to a temporary file first, and removed with it.
    assert_eq!(
        listing(&dir.path().join("out")),
        ["flat_200.jpg", "flat_32.jpg"]
    );
}

#[test]
fn a_closed_stdout_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.jpg"), photo("mate_FreshFlower.jpg")).unwrap();
    // Standard output is a socket whose other end is already closed: printing the report
    // fails with EPIPE.
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(ours);
    let output = run(thumbnails()
        .args(["make", "a.jpg", "--out", "out", "--sizes", "32"])
        .args(["--resize-on", "threads"])
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .current_dir(dir.path()));
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(listing(&dir.path().join("out")), ["a_32.jpg"]);
}
