//! Processes that process-pool tasks start end with their worker: after a `cancel()`, a
//! `terminate_workers()`, a timeout, a crash, a retirement, or a `SIGKILL` of the pool's own
//! process, none of them is left, even one that moved to a session of its own or ignores
//! `SIGTERM`; and none of them holds the pool's socket, so a worker's death is seen at once.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flotilla::{Executor, ProcessPoolExecutor};

#[path = "support/scratch.rs"]
mod support_scratch;
use support_scratch::scratch_dir;

/// Upper bound for anything that must not hang.
const PATIENCE: Duration = Duration::from_secs(20);

/// What a task does once it has started its processes.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
enum Then {
    /// Waits to be killed.
    Hang,
    /// Aborts the worker once the test created `go` in the task's directory.
    Abort,
    /// Returns normally.
    Return,
}

/// Starts `children` plain `sleep 1000` children, one that ignores `SIGTERM`, one that leaves
/// for a session of its own after its parent exits (the double fork of a daemon), and one
/// forked copy of the worker that keeps every descriptor the worker had; writes their pids (and
/// the worker's and its parent's) to `dir/pids`, then does `then`.
#[flotilla::task]
#[allow(clippy::zombie_processes)] // left running on purpose: the pool must clean them up
fn start_tree(dir: PathBuf, children: usize, then: Then) {
    let mut pids = vec![std::process::id(), parent_pid()];
    for _ in 0..children {
        let child = quiet(Command::new("sleep").arg("1000")).spawn().unwrap();
        pids.push(child.id());
    }
    let deaf = quiet(Command::new("sh").args(["-c", "trap '' TERM; exec sleep 1000"]))
        .spawn()
        .unwrap();
    pids.push(deaf.id());
    let mut daemon = quiet(Command::new("sh").args([
        "-c",
        "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!",
    ]))
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut said = String::new();
    daemon
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    daemon.wait().unwrap();
    pids.push(said.trim().parse().unwrap());
    pids.push(fork_sleeper());
    let text: Vec<String> = pids.iter().map(u32::to_string).collect();
    std::fs::write(dir.join("pids.tmp"), text.join("\n")).unwrap();
    std::fs::rename(dir.join("pids.tmp"), dir.join("pids")).unwrap();
    match then {
        Then::Hang => loop {
            std::thread::park();
        },
        Then::Abort => {
            // Once the test has seen every process (it creates `go`), or after a while.
            let deadline = Instant::now() + PATIENCE;
            while !dir.join("go").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::process::abort()
        }
        Then::Return => {}
    }
}

fn quiet(command: &mut Command) -> &mut Command {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

fn parent_pid() -> u32 {
    // SAFETY: getppid has no preconditions.
    u32::try_from(unsafe { libc::getppid() }).unwrap()
}

/// Forks a copy of this process that sleeps for ever, holding every descriptor it inherited.
fn fork_sleeper() -> u32 {
    // SAFETY: the child only calls pause(2), which is async-signal-safe, so forking this
    // threaded process is sound.
    match unsafe { libc::fork() } {
        0 => loop {
            // SAFETY: as above.
            unsafe { libc::pause() };
        },
        pid => u32::try_from(pid).unwrap(),
    }
}

/// A process seen alive: its pid and start time, so that a recycled pid is not mistaken for it.
#[derive(Debug)]
struct Seen {
    pid: u32,
    started: String,
}

/// The start time of `pid` and whether it is running (not a zombie), from `/proc`.
fn stat(pid: u32) -> Option<(String, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    // After the command: state is field 3 of the line, start time field 22.
    Some((fields[19].to_owned(), !matches!(fields[0], "Z" | "X")))
}

impl Seen {
    fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|(started, running)| running && started == self.started)
    }
}

/// Waits for the task's list of pids and records each process, checking it is alive.
fn read_pids(dir: &Path) -> Vec<Seen> {
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("pids")) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the task never listed its processes"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    text.lines()
        .map(|line| {
            let pid: u32 = line.parse().unwrap();
            let (started, running) = stat(pid).unwrap();
            assert!(running, "process {pid} is not running");
            Seen { pid, started }
        })
        .collect()
}

/// Waits (bounded) until none of `seen` is alive; kills the survivors and fails if some are.
fn assert_all_gone(seen: &[Seen]) {
    let deadline = Instant::now() + PATIENCE;
    while seen.iter().any(Seen::alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors: Vec<u32> = seen.iter().filter(|s| s.alive()).map(|s| s.pid).collect();
    for &pid in &survivors {
        // SAFETY: kill has no memory-safety preconditions; the start time was just checked.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    assert!(
        survivors.is_empty(),
        "still running: {survivors:?} of {seen:?}"
    );
}

fn pool() -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

#[flotilla::task]
fn add_one(x: u32) -> u32 {
    x + 1
}

#[test]
fn cancel_kills_everything_the_task_started() {
    let dir = scratch_dir("trees");
    let pool = pool();
    let future = pool
        .submit(start_tree, (dir.clone(), 20, Then::Hang))
        .unwrap();
    let seen = read_pids(&dir);
    assert!(future.cancel());
    assert_all_gone(&seen);
    assert_eq!(pool.submit(add_one, 1).unwrap().result().unwrap(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn terminate_workers_kills_everything_the_task_started() {
    // SIGTERM goes to the worker alone; its supervisor then kills the rest of the tree.
    let dir = scratch_dir("trees");
    let pool = pool();
    let future = pool
        .submit(start_tree, (dir.clone(), 20, Then::Hang))
        .unwrap();
    let seen = read_pids(&dir);
    pool.terminate_workers();
    let err = future.result().unwrap_err();
    assert!(err.to_string().contains("SIGTERM"), "{err}");
    assert_all_gone(&seen);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_timeout_kills_everything_the_task_started() {
    let dir = scratch_dir("trees");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .task_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let future = pool
        .submit(start_tree, (dir.clone(), 50, Then::Hang))
        .unwrap();
    let seen = read_pids(&dir);
    let err = future.result().unwrap_err();
    assert!(err.is_task_timeout(), "{err}");
    assert_all_gone(&seen);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_crash_is_reported_at_once_although_children_live_on() {
    let dir = scratch_dir("trees");
    let pool = pool();
    let future = pool
        .submit(start_tree, (dir.clone(), 3, Then::Abort))
        .unwrap();
    let seen = read_pids(&dir);
    std::fs::write(dir.join("go"), b"").unwrap();
    // The forked child still has every descriptor the worker had when the worker aborts.
    let err = future.result_timeout(PATIENCE).unwrap_err();
    assert!(err.is_worker_died(), "{err}");
    assert!(err.to_string().contains("SIGABRT"), "{err}");
    assert_all_gone(&seen);
    assert_eq!(pool.submit(add_one, 1).unwrap().result().unwrap(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_tasks_children_inherit_no_socket_of_the_pool() {
    let dir = scratch_dir("trees");
    let pool = pool();
    let future = pool
        .submit(start_tree, (dir.clone(), 1, Then::Hang))
        .unwrap();
    let seen = read_pids(&dir);
    // seen[2] is the first `sleep`, started by the standard library's spawn.
    let sockets: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", seen[2].pid))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.starts_with("socket:"))
        .collect();
    assert!(future.cancel());
    assert_all_gone(&seen);
    assert!(sockets.is_empty(), "the task's child holds {sockets:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn what_a_task_leaves_running_ends_with_its_worker() {
    let dir = scratch_dir("trees");
    let pool = pool();
    pool.submit(start_tree, (dir.clone(), 5, Then::Return))
        .unwrap()
        .result()
        .unwrap();
    let seen = read_pids(&dir);
    drop(pool);
    assert_all_gone(&seen);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Set in the re-executed copy of this test whose process is killed.
const KILLED_POOL_DIR: &str = "FLOTILLA_TEST_KILLED_POOL_DIR";

#[test]
fn a_sigkill_of_the_pools_process_leaves_nothing_behind() {
    if let Some(dir) = std::env::var_os(KILLED_POOL_DIR) {
        let pool = pool();
        let future = pool.submit(start_tree, (PathBuf::from(dir), 10, Then::Hang));
        let _keep = (pool, future);
        loop {
            std::thread::park(); // until the SIGKILL
        }
    }
    let dir = scratch_dir("trees");
    let mut victim = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_sigkill_of_the_pools_process_leaves_nothing_behind",
            "--test-threads=1",
        ])
        .env(KILLED_POOL_DIR, &dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let seen = read_pids(&dir);
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert_all_gone(&seen);
    std::fs::remove_dir_all(&dir).unwrap();
}
