//! Daemon children die with their parent, even when it is killed with `SIGKILL`; others live
//! on.

use std::time::{Duration, Instant};

use flotilla::process::{Process, Queue};

/// Waits to be released, then reports that it is still alive.
#[flotilla::task]
fn wait_for_release(release: Queue<()>, report: Queue<u32>) {
    release.get().unwrap();
    report.put(std::process::id()).unwrap();
}

/// Starts a child of the given kind, reports its pid, then waits to be killed.
#[flotilla::task]
fn parent(daemon: bool, release: Queue<()>, report: Queue<u32>) {
    let child = Process::new(WaitForReleaseTask, (release, report.clone()))
        .with_daemon(daemon)
        .start()
        .unwrap();
    report.put(child.pid()).unwrap();
    loop {
        std::thread::park();
    }
}

/// Whether `pid` has ended: gone from /proc, or a zombie nobody has reaped yet (an orphan's
/// new parent may be slow to reap, or never do it in a minimal container).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X')),
    }
}

/// Polls the operating system (an external event: nothing here can be notified of another
/// process's death) until `pid` has ended or the deadline passes.
fn wait_until_ended(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ended(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ended(pid)
}

/// Starts `parent`, learns its child's pid, and kills the parent with SIGKILL.
fn orphan(daemon: bool) -> (u32, Queue<()>, Queue<u32>) {
    let (release, report) = (Queue::new(), Queue::new());
    let p = Process::new(ParentTask, (daemon, release.clone(), report.clone()))
        .start()
        .unwrap();
    let child = report.get().unwrap();
    assert_ne!(child, p.pid());
    assert!(!ended(child));
    p.kill();
    p.join();
    assert_eq!(p.exitcode(), Some(-9));
    (child, release, report)
}

#[test]
fn daemon_child_dies_with_a_killed_parent() {
    let (child, _release, _report) = orphan(true);
    assert!(
        wait_until_ended(child, Duration::from_secs(10)),
        "daemon child {child} outlived its SIGKILLed parent"
    );
}

#[test]
fn non_daemon_child_outlives_a_killed_parent() {
    let (child, release, report) = orphan(false);
    // Released only after its parent is dead and reaped, it still answers.
    release.put(()).unwrap();
    assert_eq!(report.get().unwrap(), child);
    assert!(wait_until_ended(child, Duration::from_secs(10)));
}

#[test]
fn daemon_child_outlives_the_thread_that_started_it() {
    // PR_SET_PDEATHSIG fires when the forking *thread* exits; flotilla forks from a
    // long-lived thread so that a short-lived caller does not take its daemons with it.
    let (release, report) = (Queue::new(), Queue::new());
    let (r, q) = (release.clone(), report.clone());
    let p = std::thread::spawn(move || {
        Process::new(WaitForReleaseTask, (r, q))
            .with_daemon(true)
            .start()
            .unwrap()
    })
    .join()
    .unwrap();
    release.put(()).unwrap();
    let answer = report.get_timeout(Duration::from_secs(30));
    assert_eq!(
        answer.ok(),
        Some(p.pid()),
        "the daemon died with its starting thread"
    );
    p.join();
    assert_eq!(p.exitcode(), Some(0));
}
