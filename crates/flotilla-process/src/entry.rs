//! The pre-`main` entry: what a re-executed copy of the program does before its `main` runs.
//!
//! A process pool starts a worker, and [`Process::start`](crate::process::Process::start) a
//! child, by executing the program's own binary with a variable in its environment. The
//! constructor here runs before `main` in every copy of the program: in a worker it serves the
//! pool's tasks, in a child it runs the target, and then it exits, so the user's `main` runs
//! only in the parent. With neither variable set it returns and `main` runs as usual.

use std::os::fd::RawFd;

use crate::process_pool::worker::WORKER_ENV;
use crate::{process, process_pool};

/// Catches a re-executed copy of the program before `main`: a pool worker or
/// a `flotilla::process::Process` child; an ordinary start returns at once.
#[ctor::ctor(unsafe)]
fn enter_worker_mode() {
    let Some(fd) = std::env::var_os(WORKER_ENV) else {
        // SAFETY: constructors run before `main`, while the process has a single thread.
        if let Some(code) = unsafe { process::child::enter() } {
            std::process::exit(code);
        }
        return;
    };
    // SAFETY: constructors run before `main`, while the process has a single thread, so no
    // other thread can be reading the environment concurrently.
    unsafe { std::env::remove_var(WORKER_ENV) };
    let code = match fd.to_str().and_then(|fd| fd.parse::<RawFd>().ok()) {
        // 0, 1 and 2 are standard streams; a socket from the pool is always above them.
        // SAFETY: still before `main`, with a single thread.
        Some(fd) if fd > 2 => unsafe {
            process_pool::child::enter(fd, process_pool::worker::serve)
        },
        _ => {
            eprintln!(
                "flotilla: {WORKER_ENV} must name a socket descriptor; not starting a worker"
            );
            2
        }
    };
    std::process::exit(code);
}
