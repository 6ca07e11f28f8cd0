//! Starting, finishing and killing child processes in tests, each bounded by [`PATIENCE`].

#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use flotilla::process::{Process, StartedProcess};

/// Upper bound for anything that must not hang; tests finish far sooner.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Starts `child` and hands it back.
pub(crate) fn start(child: Process) -> StartedProcess {
    child.start().unwrap()
}

/// Joins `child` and checks that it exited cleanly.
pub(crate) fn finish(child: &StartedProcess) {
    assert!(child.join_timeout(PATIENCE), "the child did not finish");
    assert_eq!(child.exitcode(), Some(0));
}

/// Starts every child, then waits for each and checks that it exited cleanly.
pub(crate) fn run_all(children: Vec<Process>) {
    let started: Vec<_> = children.into_iter().map(start).collect();
    for child in &started {
        assert!(
            child.join_timeout(PATIENCE),
            "{} did not finish",
            child.name()
        );
        assert_eq!(child.exitcode(), Some(0), "{} failed", child.name());
    }
}

/// SIGKILLs `child` and waits until it is reaped.
pub(crate) fn kill(child: &StartedProcess) {
    child.kill();
    assert!(
        child.join_timeout(PATIENCE),
        "the killed child was not reaped"
    );
    assert_eq!(child.exitcode(), Some(-9));
}

/// Waits until nothing process `pid` made for its sockets is left, and panics if something
/// still is after [`PATIENCE`]: no socket named after it in `/proc/net/unix`, no file or
/// directory named after it made in the temporary directory since `since` (older ones belong
/// to earlier processes that had the same pid). A killed process's last threads may still be
/// closing its descriptors when it already shows as a zombie, so this polls, with a deadline.
pub(crate) fn assert_nothing_left_by(pid: u32, since: std::time::SystemTime) {
    let mark = format!("-{pid}-");
    // File times come from a coarse clock that lags the one `since` was read from.
    let since = since - std::time::Duration::from_secs(1);
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let sockets = std::fs::read_to_string("/proc/net/unix").unwrap();
        let files: Vec<String> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .metadata()
                    .and_then(|meta| meta.modified())
                    .is_ok_and(|made| made >= since)
            })
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        let left: Vec<&str> = sockets
            .lines()
            .chain(files.iter().map(String::as_str))
            .filter(|name| name.contains("flotilla") && name.contains(&mark))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} left behind {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
