//! The child's side of a [`Process`](super::Process): run one task, then exit.
//!
//! [`Process::start`](super::Process::start) re-executes the program with [`CHILD_ENV`]
//! naming the descriptor of a socket. flotilla's constructor, which runs before `main`, calls
//! [`enter`]: it sets up what Rust's runtime would have before `main` (see
//! [`runtime`](crate::runtime)), reads one [`Start`] message and the task's
//! encoded arguments from that socket, takes over the connections passed in the arguments,
//! runs the task on the process's first thread (see [`runtime::run_here`] for why), and exits with Python's codes: 0 when the task
//! returns, 1 when it panics (an uncaught exception in Python). The user's `main` never runs
//! in the child.

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

use super::{current, fds};
use crate::registry;
use crate::runtime;
use crate::wire::refusal;
use crate::wire::{self, Outcome};
use flotilla_core::panic;

/// Set in a child's environment to the number of the descriptor its start message arrives on.
pub(crate) const CHILD_ENV: &str = "FLOTILLA_PROCESS_FD";

/// The exit code of a child that could not even read what to run.
const START_FAILED: i32 = 2;

/// The first and only message to a child, followed by the task's encoded arguments.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Start<'a> {
    /// The registered name of the task to run.
    pub(crate) task: &'a str,
    /// The process's name, for [`current_process`](super::current_process).
    pub(crate) name: &'a str,
    /// Its place in the process tree (see [`current::Identity`]).
    pub(crate) path: &'a str,
    /// Whether it dies with its parent.
    pub(crate) daemon: bool,
    /// The starting process's pid and name, for
    /// [`parent_process`](super::parent_process).
    pub(crate) parent: (u32, &'a str),
    /// The descriptors passed in the arguments, by slot; open in the child at these numbers.
    pub(crate) fds: Vec<RawFd>,
}

/// Runs the task if this process was started as a child by [`Process::start`](super::Process::start)
/// and returns the exit code; `None` in any other process.
///
/// # Safety
///
/// Must be called before `main`, while the process has a single thread (from flotilla's
/// constructor), because it edits the environment.
pub(crate) unsafe fn enter() -> Option<i32> {
    let value = std::env::var_os(CHILD_ENV)?;
    // SAFETY: the caller guarantees that no other thread exists to read the environment
    // concurrently; removing the variable keeps it from grandchildren.
    unsafe { std::env::remove_var(CHILD_ENV) };
    let Some(fd) = value
        .to_str()
        .and_then(|fd| fd.parse::<RawFd>().ok())
        .filter(|&fd| fd > 2)
    else {
        eprintln!("flotilla: {CHILD_ENV} does not name a descriptor; not running a task");
        return Some(START_FAILED);
    };
    // SAFETY: `Process::start` left its end of a socketpair open at this number across exec
    // and named it in the variable we just consumed; nothing else in this fresh process knows
    // of it, so we take sole ownership.
    let control = unsafe { UnixStream::from_raw_fd(fd) };
    runtime::sanitize_stdio();
    runtime::ignore_sigpipe();
    Some(runtime::run_here(move || run(control)))
}

fn run(mut control: UnixStream) -> i32 {
    let mut body = Vec::new();
    if let Err(err) = wire::read_frame(&mut control, &mut body) {
        eprintln!("flotilla: child process could not read its task: {err}");
        return START_FAILED;
    }
    drop(control);
    let (start, args) = match wire::decode_head::<Start<'_>>(&body) {
        Ok(decoded) => decoded,
        Err(err) => {
            eprintln!("flotilla: child process could not read its task: {err}");
            return START_FAILED;
        }
    };
    current::set(current::Identity {
        name: start.name.to_owned(),
        path: start.path.to_owned(),
        daemon: start.daemon,
        parent: Some((start.parent.0, start.parent.1.to_owned())),
    });
    // SAFETY: the parent cleared close-on-exec on exactly these descriptors between fork and
    // exec (after duplicating them for this child alone) and lists each once; nothing in this
    // process has touched them yet.
    unsafe { fds::adopt(&start.fds) };
    panic::install_hook();
    let mut out = Vec::new();
    refusal::clear();
    let outcome = match registry::lookup(start.task, crate::registry::Shape::One) {
        // The task's own panics come back as an outcome; one in its arguments' `Deserialize`
        // or its result's `Serialize` would otherwise unwind out of this pre-`main` entry
        // point, which aborts.
        Some(call) => panic::catch(|| call(args, &mut out)).unwrap_or_else(|panic| {
            Outcome::Failed(format!(
                "panicked while decoding its arguments or encoding its result: {}{}",
                panic.message(),
                panic
                    .location()
                    .map(|at| format!(" (at {at})"))
                    .unwrap_or_default()
            ))
        }),
        None => Outcome::UnknownTask(start.task.to_owned()),
    };
    drop(out);
    fds::release_unclaimed();
    let who = format!("process {:?} (pid {})", start.name, std::process::id());
    match outcome {
        Outcome::Value => 0,
        Outcome::Panicked { message, location } => {
            match location {
                Some(at) => eprintln!("flotilla: {who} panicked at {at}: {message}"),
                None => eprintln!("flotilla: {who} panicked: {message}"),
            }
            1
        }
        Outcome::UnknownTask(name) => {
            eprintln!(
                "flotilla: {who}: no task named `{name}` is registered (is this the same build?)"
            );
            1
        }
        Outcome::Failed(why) => {
            // The registry reports postcard's text; a handle that refused to decode left
            // the real reason behind.
            let reason = refusal::explain("");
            if reason.is_empty() {
                eprintln!("flotilla: {who}: {why}");
            } else {
                eprintln!("flotilla: {who}: {why} ({reason})");
            }
            1
        }
    }
}
