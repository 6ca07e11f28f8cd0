//! Interrupting the built binary with real signals: SIGTERM to the process, SIGINT to its
//! whole process group (what Ctrl-C in a terminal does, reaching the resize workers too), and
//! SIGKILL, whose leftovers the next run removes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Route, TestServer, listing, photo};

/// A child killed on drop, so that a failed assertion leaves no process behind.
struct Reaped(Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The partial download of a stalled image, once it has data: polled, with a deadline (the
/// binary is another process).
fn wait_for_partial_download(out: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = std::fs::read_dir(out).ok().and_then(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| std::fs::read_dir(e.path()).ok())
                .flat_map(|files| files.flatten())
                .map(|f| f.path())
                .find(|p| {
                    p.extension().is_some_and(|x| x == "download")
                        && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
                })
        });
        if let Some(path) = found {
            return path;
        }
        assert!(Instant::now() < deadline, "no partial download appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (with a deadline) until `path` exists.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` to exit, at most `limit`.
fn wait_exit(child: &mut Reaped, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        let running = child.0.as_mut().unwrap().try_wait().unwrap().is_none();
        if !running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not stop within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.0.take().unwrap().wait_with_output().unwrap();
    support::show(&output);
    output
}

/// A server with two quick photos and one download that stalls half-way until `gate` opens.
fn server(gate: mpsc::Receiver<()>) -> TestServer {
    let big = photo("seeding_by_Clements_Engelhardt.jpg");
    TestServer::start(vec![
        (
            "/a.jpg",
            Route::Body(photo("mate_FreshFlower.jpg").to_vec()),
        ),
        ("/b.jpg", Route::Body(photo("mate_Aqua.jpg").to_vec())),
        (
            "/stalled.jpg",
            Route::Stalled(big[..big.len() / 3].to_vec(), big.len(), Mutex::new(gate)),
        ),
    ])
}

fn start(server: &TestServer, out: &Path, resize_on: &str, group: bool) -> Reaped {
    let mut command = Command::new(env!("CARGO_BIN_EXE_thumbnails"));
    command
        .env_remove("THUMBNAILS_LOG")
        .args(["make", "--json", "--sizes", "64", "--resize-on", resize_on])
        .args([
            server.url("/a.jpg"),
            server.url("/stalled.jpg"),
            server.url("/b.jpg"),
        ])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if group {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    Reaped(Some(command.spawn().unwrap()))
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory effects; `pid` is our own child (or, negated, its own
    // process group).
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[test]
fn sigterm_stops_cleanly_with_the_report_so_far() {
    let (_open, gate) = mpsc::channel();
    let server = server(gate);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for (resize_on, sig, group, code) in [
        ("threads", libc::SIGTERM, false, 143),
        ("processes", libc::SIGINT, true, 130),
    ] {
        let _ = std::fs::remove_dir_all(&out);
        let mut child = start(&server, &out, resize_on, group);
        let partial = wait_for_partial_download(&out);
        wait_for_file(&out.join("a_64.jpg"));
        wait_for_file(&out.join("b_64.jpg"));
        let pid = i32::try_from(child.0.as_ref().unwrap().id()).unwrap();
        let stopped = Instant::now();
        signal(if group { -pid } else { pid }, sig);
        let output = wait_exit(&mut child, Duration::from_secs(20));
        eprintln!("stopped in {:?}", stopped.elapsed());
        assert_eq!(output.status.code(), Some(code), "{resize_on}");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["interrupted"], true, "{report}");
        assert_eq!(
            report["unfinished"],
            serde_json::json!([server.url("/stalled.jpg")]),
            "{report}"
        );
        assert!(
            report["failures"].as_array().unwrap().is_empty(),
            "{report}"
        );
        // The partial download and the work directory are gone; what was finished stays.
        assert!(!partial.exists());
        let names = listing(&out);
        let done = report["succeeded"].as_u64().unwrap() as usize;
        assert_eq!(done, 2, "{report}");
        assert_eq!(names, ["a_64.jpg", "b_64.jpg"]);
        assert!(names.iter().all(|n| n.ends_with("_64.jpg")), "{names:?}");
    }
}

#[test]
fn a_killed_run_leaves_work_files_that_the_next_run_removes() {
    let (_open, gate) = mpsc::channel();
    let server = server(gate);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = start(&server, &out, "threads", false);
    let partial = wait_for_partial_download(&out);
    child.0.as_mut().unwrap().kill().unwrap();
    let _ = wait_exit(&mut child, Duration::from_secs(20));
    assert!(partial.exists(), "SIGKILL leaves the partial download");
    let leftovers: Vec<_> = listing(&out)
        .into_iter()
        .filter(|n| n.starts_with(".thumbnails-work-"))
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "a work directory and its lock: {leftovers:?}"
    );

    // The next run (of other images) removes them; its own work directory goes too.
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::write(photos.join("c.jpg"), photo("mate_Garden.jpg")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_thumbnails"))
        .args([
            "make",
            "-q",
            "--sizes",
            "64",
            "--resize-on",
            "threads",
            "--out",
        ])
        .arg(&out)
        .arg(&photos)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(!partial.exists());
    assert!(
        listing(&out).iter().all(|n| !n.starts_with(".thumbnails-")),
        "{:?}",
        listing(&out)
    );
}
