//! The worker side: a re-executed copy of the program that runs tasks sent over a socket.
//!
//! A pool starts a worker by executing the program's own binary with [`WORKER_ENV`] naming the
//! file descriptor of its socket. The constructor in [`entry`](crate::entry) sees the variable
//! before `main` and calls [`serve`], which serves tasks until told to exit (or until the pool
//! goes away); the process then exits, so the user's `main` never runs in a worker and needs no
//! guard. Tasks are found by name in the link-time registry, which is complete before any code
//! runs.

use std::io::{BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;

use crate::registry;
use crate::registry::Shape;
use crate::wire::{self, Outcome, Reply, Request};
use flotilla_core::panic;

/// Set in a worker's environment to the file descriptor of its socket.
pub(crate) const WORKER_ENV: &str = "FLOTILLA_WORKER_FD";

/// Serves tasks on `fd` until the pool says exit or disconnects; returns the exit code.
pub(crate) fn serve(fd: RawFd) -> i32 {
    // SAFETY: the pool placed the worker's end of a socketpair at this descriptor just before
    // exec, and nothing else in this fresh process knows of it, so we take sole ownership.
    let mut stream = unsafe { UnixStream::from_raw_fd(fd) };
    panic::install_hook();
    let hello = Reply::Hello {
        version: wire::VERSION,
        pid: std::process::id(),
    };
    if send(&mut stream, &hello).is_err() {
        return 3;
    }
    let mut reader = match stream.try_clone() {
        Ok(clone) => BufReader::with_capacity(64 << 10, clone),
        Err(_) => return 3,
    };
    // Both buffers are reused from task to task, so a large payload does not pay for fresh
    // pages every time (recycle workers with `max_tasks_per_child` to return the memory).
    let mut body = Vec::new();
    let mut reply = Vec::new();
    loop {
        match wire::read_frame(&mut reader, &mut body) {
            Ok(()) => {}
            Err(wire::ReadError::Closed) => return 0,
            Err(err) => {
                eprintln!("flotilla worker {}: {err}", std::process::id());
                return 4;
            }
        }
        let frame = match wire::decode_head::<Request<'_>>(&body) {
            Ok((Request::Run { id, task }, args)) => run(id, task, Shape::One, args, &mut reply),
            Ok((Request::RunChunk { id, task }, items)) => {
                run(id, task, Shape::Chunk, items, &mut reply)
            }
            Ok((Request::Exit, _)) => return 0,
            Err(err) => {
                eprintln!("flotilla worker {}: {err}", std::process::id());
                return 4;
            }
        };
        let sent = match frame {
            Ok(()) => stream.write_all(&reply),
            Err(why) => send(
                &mut stream,
                &Reply::Done {
                    id: 0,
                    outcome: Outcome::Failed(why),
                },
            ),
        };
        if sent.is_err() {
            // The pool is gone; nobody is left to report to.
            return 0;
        }
    }
}

/// Runs one task and builds the reply frame in `out`, with the result encoded straight into
/// it.
fn run(id: u64, task: &str, shape: Shape, args: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let outcome = match lookup(task, shape) {
        Ok(call) => {
            let header = Reply::Done {
                id,
                outcome: Outcome::Value,
            };
            *out = wire::start_in(std::mem::take(out), &header)?;
            match call(args, out) {
                Outcome::Value => match wire::finish(out) {
                    Ok(()) => return Ok(()),
                    Err(why) => Outcome::Failed(format!("the result of task `{task}`: {why}")),
                },
                failure => failure,
            }
        }
        Err(unknown) => unknown,
    };
    *out = wire::start_in(std::mem::take(out), &Reply::Done { id, outcome })?;
    wire::finish(out)
}

fn lookup(task: &str, shape: Shape) -> Result<registry::Call, Outcome> {
    registry::lookup(task, shape).ok_or_else(|| Outcome::UnknownTask(task.to_owned()))
}

fn send(stream: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let frame = wire::encode(reply).map_err(std::io::Error::other)?;
    stream.write_all(&frame)
}
