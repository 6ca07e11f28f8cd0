//! Interrupting the built binary with real signals: SIGTERM to the process, SIGINT to its
//! whole process group (what Ctrl-C in a terminal does, reaching the resize workers too), and
//! SIGKILL, whose leftovers the next run removes.

mod support;

use std::io::Write;
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
    spawn(command(server, out, resize_on), group)
}

/// The run of [`start`], not yet started.
fn command(server: &TestServer, out: &Path, resize_on: &str) -> Command {
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
    command
}

/// Starts `command`, in a process group of its own if `group`.
fn spawn(mut command: Command, group: bool) -> Reaped {
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

/// The JSON report of a run stopped by a signal (exit code `code`) that finished both quick
/// images and left only the stalled one unfinished, without failures.
fn stopped_report(
    output: &std::process::Output,
    code: i32,
    server: &TestServer,
    case: &str,
) -> serde_json::Value {
    assert_eq!(output.status.code(), Some(code), "{case}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["interrupted"], true, "{case}: {report}");
    assert_eq!(
        report["unfinished"],
        serde_json::json!([server.url("/stalled.jpg")]),
        "{case}: {report}"
    );
    assert_eq!(
        report["failures"],
        serde_json::json!([]),
        "{case}: {report}"
    );
    assert_eq!(report["succeeded"], 2, "{case}: {report}");
    report
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
        stopped_report(&output, code, &server, resize_on);
        // The partial download and the work directory are gone; what was finished stays.
        assert!(!partial.exists());
        let names = listing(&out);
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

/// A FIFO that holds every resize after its thumbnails are in place (the binary's test hook,
/// `THUMBNAILS_TEST_HOLD_AFTER_COMMIT`) until bytes are written to it. Kept open for reading
/// and writing here, so that neither side's open blocks; dropping it releases the resizes.
struct Gate {
    path: PathBuf,
    fifo: std::fs::File,
}

impl Gate {
    fn new(path: PathBuf) -> Gate {
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path, which lives until the call returns.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        Gate { path, fifo }
    }

    /// Lets the held resizes (and any later ones) return.
    fn open(&mut self) {
        self.fifo.write_all(&[0; 64]).unwrap();
    }
}

/// Waits (with a deadline) until `path` holds something other than `old`.
fn wait_for_replaced(path: &Path, old: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(path).is_ok_and(|now| now == old) {
        assert!(
            Instant::now() < deadline,
            "{} was not replaced",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stop that lands after a resize put its thumbnails in place but before its result reached
/// the run (the resize is held there by the test's gate): a thread task finishes; a process
/// task is killed (by the run's cancel, and by the Ctrl-C that reaches the whole group), and
/// its result is lost. Either way the thumbnails are in `--out`, so the report must count the
/// image as made — not as unfinished, which says nothing of it was written.
#[test]
fn a_stop_after_the_thumbnails_are_written_reports_them_made() {
    let (_open, gate) = mpsc::channel();
    let server = server(gate);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mine = b"the user's own thumbnail";
    let mut made_on_threads = None;
    for (case, (resize_on, sig, group, code, overwrite)) in [
        ("threads", libc::SIGTERM, false, 143, false),
        ("processes", libc::SIGINT, true, 130, false),
        ("processes", libc::SIGINT, true, 130, true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut gate = Gate::new(dir.path().join(format!("gate-{case}")));
        let case = format!("{resize_on}, overwrite: {overwrite}");
        let _ = std::fs::remove_dir_all(&out);
        let mut command = command(&server, &out, resize_on);
        command
            .env("THUMBNAILS_TEST_HOLD_AFTER_COMMIT", &gate.path)
            .args(["--workers", "2"]);
        if overwrite {
            std::fs::create_dir(&out).unwrap();
            for name in ["a_64.jpg", "b_64.jpg"] {
                std::fs::write(out.join(name), mine).unwrap();
            }
            command.arg("--overwrite");
        }
        let mut child = spawn(command, group);
        wait_for_partial_download(&out);
        // Both quick images are now held between their commit and their result.
        for name in ["a_64.jpg", "b_64.jpg"] {
            wait_for_file(&out.join(name));
            wait_for_replaced(&out.join(name), mine);
        }
        let pid = i32::try_from(child.0.as_ref().unwrap().id()).unwrap();
        signal(if group { -pid } else { pid }, sig);
        if resize_on == "threads" {
            // A thread task cannot be stopped: the run waits for it.
            gate.open();
        }
        let output = wait_exit(&mut child, Duration::from_secs(20));
        gate.open();
        let report = stopped_report(&output, code, &server, &case);
        assert_eq!(report["thumbnails"], 2, "{case}: {report}");
        assert_eq!(listing(&out), ["a_64.jpg", "b_64.jpg"], "{case}");
        // What a process run read back from `--out` is what a thread run got from its tasks.
        let made = report["done"].clone();
        for done in made.as_array().unwrap() {
            let thumbnail = &done["thumbnails"][0];
            let path = Path::new(thumbnail["path"].as_str().unwrap());
            assert_eq!(
                thumbnail["bytes"],
                std::fs::metadata(path).unwrap().len(),
                "{case}: {report}"
            );
            assert_ne!(std::fs::read(path).unwrap(), mine, "{case}");
        }
        match &made_on_threads {
            None => made_on_threads = Some(made),
            Some(expected) => assert_eq!(&made, expected, "{case}"),
        }
    }
}
