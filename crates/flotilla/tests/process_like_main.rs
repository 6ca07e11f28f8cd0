//! A `Process` child runs its task as `main` would run: on the process's first thread, with a write
//! to a closed pipe an error (not a `SIGPIPE` death) and a stack overflow reported as one; and
//! a task name that two tasks of the program share is refused when the process starts instead
//! of being looked for in vain by the child.
//!
//! The two `twin` tasks below are defined inside blocks, where `module_path!()` cannot tell
//! them apart, so this test program has one duplicate task name.

use std::path::PathBuf;

use flotilla::process::{Process, Queue};

#[path = "support/children.rs"]
mod children;
#[path = "support/scratch.rs"]
mod scratch;

use children::{PATIENCE, finish, start};

/// Reports whether it runs on its process's first thread (the one whose id is the process's),
/// and the name of its thread.
#[flotilla::task]
fn which_thread(out: Queue<(bool, Option<String>)>) {
    // SAFETY: gettid(2) has no preconditions.
    let first = unsafe { libc::gettid() } == libc::pid_t::try_from(std::process::id()).unwrap();
    out.put((first, std::thread::current().name().map(str::to_owned)))
        .unwrap();
}

/// The child's first thread: a task there that calls `exec` holding a shared lock leaves the
/// lock reported as `OwnerDied` (`shared_holders.rs`, `execs_holding_it`), which it would not
/// on any other thread. Rust names that thread `main` only when it starts `main` itself, so
/// the task sees no name: the one way in which it does not run as `main` would.
#[test]
fn a_child_runs_its_task_on_its_first_thread() {
    let out = Queue::new();
    let child = start(Process::new(WhichThreadTask, out.clone()));
    assert_eq!(out.get_timeout(PATIENCE).unwrap(), (true, None));
    finish(&child);
}

/// Writes to the standard input of a program that has exited (a pipe nobody reads any more)
/// and reports how that went.
#[flotilla::task]
fn write_to_a_closed_pipe(out: Queue<String>) {
    use std::io::Write;
    let mut reader = std::process::Command::new("true")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = reader.stdin.take().unwrap();
    assert!(reader.wait().unwrap().success());
    let outcome = match pipe.write_all(b"anyone there?") {
        Ok(()) => "written".to_owned(),
        Err(err) => format!("{:?}", err.kind()),
    };
    out.put(outcome).unwrap();
}

#[test]
fn a_write_to_a_closed_pipe_is_an_error_in_a_child() {
    let out = Queue::new();
    let child = start(Process::new(WriteToAClosedPipeTask, out.clone()));
    finish(&child); // not killed by SIGPIPE (exit code -13)
    assert_eq!(out.get_timeout(PATIENCE).unwrap(), "BrokenPipe");
}

/// Recurses until the stack runs out.
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return frame[0];
    }
    recurse(depth + 1) + std::hint::black_box(frame[1])
}

/// Sends its standard error to `path`, then overflows its stack.
#[flotilla::task]
fn overflow_into(path: PathBuf) {
    let file = std::fs::File::create(path).unwrap();
    // SAFETY: dup2(2) on a descriptor this task owns and the standard error number has no
    // memory-safety preconditions; `file` stays open until the process dies.
    let moved = unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&file), 2) };
    assert_eq!(moved, 2);
    std::hint::black_box(recurse(0));
}

#[test]
fn a_stack_overflow_in_a_child_is_reported_as_one() {
    let dir = scratch::scratch_dir("process-like-main");
    let stderr = dir.join("stderr");
    let child = start(Process::new(OverflowIntoTask, stderr.clone()));
    assert!(child.join_timeout(PATIENCE), "the child did not finish");
    let said = std::fs::read_to_string(&stderr).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // As a `main` that overflows: the message, then an abort.
    assert!(
        said.contains("thread 'main' has overflowed its stack"),
        "{said:?}"
    );
    assert_eq!(child.exitcode(), Some(-libc::SIGABRT));
}

#[test]
fn a_task_name_two_tasks_share_is_refused_at_start() {
    let first = {
        #[flotilla::task]
        fn twin() {}
        Process::new(TwinTask, ())
    };
    let second = {
        #[flotilla::task]
        fn twin(_: u8) {}
        Process::new(TwinTask, 7)
    };
    for err in [first.start().unwrap_err(), second.start().unwrap_err()] {
        assert!(err.is_duplicate_task(), "{err}");
        assert!(err.to_string().contains("::twin`"), "{err}");
    }
    // A task with a name of its own still starts in this program.
    let out = Queue::new();
    let child = start(Process::new(WhichThreadTask, out.clone()));
    assert!(out.get_timeout(PATIENCE).is_ok());
    finish(&child);
}
