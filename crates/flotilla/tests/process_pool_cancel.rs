//! `cancel()` of a running task stops that task and no other. Its kill is a signal to the
//! worker's supervisor, which acts on it a moment later; if the task finished meanwhile, the
//! worker it ran on is doomed all the same, and must not be given the next task.

#[path = "support/scratch.rs"]
mod scratch;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flotilla::{Executor, ProcessPoolExecutor};

/// Says it started (`dir/{name}.started` holds its worker's pid and its supervisor's), waits
/// until `dir/{name}.go` exists (a deadline-bounded poll of a file the test creates), and
/// returns its worker's pid.
#[flotilla::task]
fn gated(dir: PathBuf, name: String) -> u32 {
    // SAFETY: getppid has no preconditions.
    let supervisor = unsafe { libc::getppid() };
    let pids = format!("{} {supervisor}", std::process::id());
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, pids).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.started"))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dir.join(format!("{name}.go")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::process::id()
}

/// Polls another process's doing until `ready`, for at most a minute.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for task `name` to start; returns its worker's pid and its supervisor's.
fn started(dir: &Path, name: &str) -> (u32, i32) {
    let marker = dir.join(format!("{name}.started"));
    wait_for(&format!("{name} to start"), || marker.exists());
    let text = std::fs::read_to_string(marker).unwrap();
    let (worker, supervisor) = text.split_once(' ').unwrap();
    (worker.parse().unwrap(), supervisor.parse().unwrap())
}

fn go(dir: &Path, name: &str) {
    std::fs::write(dir.join(format!("{name}.go")), b"").unwrap();
}

/// The state letter and parent of process `pid`, if it still exists.
fn state(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

/// A cancel whose kill reaches the worker after its task finished killed the next task on
/// that worker, which failed as "killed by signal 9" although nobody cancelled it (seen on a
/// Redis worker whose host was frozen: it cancels the tasks taken over meanwhile, and some
/// had just finished). It failed before the fix; the doomed worker is now replaced.
///
/// The race is made to happen by stopping the supervisor (SIGSTOP), which holds the kill
/// until it is resumed.
#[test]
fn a_kill_that_lands_after_its_task_finished_costs_no_other_task() {
    let dir = scratch::scratch_dir("cancel-race");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let first = pool.submit(gated, (dir.clone(), "first".into())).unwrap();
    let second = pool.submit(gated, (dir.clone(), "second".into())).unwrap();
    let (worker, supervisor) = started(&dir, "first");
    // SAFETY: signalling our own pool's supervisor (our child, not reaped: the pool reaps
    // it only after it ends) has no memory-safety preconditions.
    unsafe { libc::kill(supervisor, libc::SIGSTOP) };
    wait_for("the supervisor to stop", || {
        state(supervisor).is_some_and(|(s, _)| s == 'T')
    });
    assert!(first.cancel(), "a running task is cancelled");
    // The first task finishes, its reply reaches the pool; the kill waits in the supervisor.
    go(&dir, "first");
    // The second task starts: on the doomed worker (before the fix), or on a fresh one once
    // the pool has given up waiting for the stopped supervisor and killed it.
    let (second_worker, _) = started(&dir, "second");
    let ours = |pid| state(pid).is_some_and(|(_, parent)| parent as u32 == std::process::id());
    if ours(supervisor) {
        // SAFETY: as above; the parent check makes sure the pid is still our child.
        unsafe { libc::kill(supervisor, libc::SIGCONT) };
    }
    wait_for("the supervisor to act on the kill and end", || {
        state(supervisor).is_none_or(|(s, parent)| s == 'Z' || parent as u32 != std::process::id())
    });
    go(&dir, "second");
    let ran_on = second.result_timeout(Duration::from_secs(60));
    assert_eq!(ran_on.as_ref().ok(), Some(&second_worker), "{ran_on:?}");
    assert_ne!(
        second_worker, worker,
        "the doomed worker was given the next task"
    );
    assert!(first.cancelled());
    drop(pool);
    let _ = std::fs::remove_dir_all(&dir);
}
