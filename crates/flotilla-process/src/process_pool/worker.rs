//! The worker side: a re-executed copy of the program that runs tasks sent over a socket.
//!
//! A pool starts a worker by executing the program's own binary with [`WORKER_ENV`] naming the
//! file descriptor of its socket. The constructor in [`entry`](crate::entry) sees the variable
//! before `main` and calls [`serve`], which serves tasks until told to exit (or until the pool
//! goes away); the process then exits, so the user's `main` never runs in a worker and needs no
//! guard. Tasks are found by name in the link-time registry, which is complete before any code
//! runs.

use std::io::{BufReader, Write};
use std::os::fd::{AsFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;

use super::progress::{self, FaultAction, FaultPoint, Page};
use super::run;
use crate::registry;
use crate::registry::Shape;
use crate::wire::{self, Outcome, Reply, Request};
use flotilla_core::Stage;
use flotilla_core::panic;

/// Set in a worker's environment to the file descriptor of its socket.
pub(crate) const WORKER_ENV: &str = "FLOTILLA_WORKER_FD";

/// Serves tasks on `fd` until the pool says exit or disconnects; returns the exit code.
///
/// A panic here is a bug in flotilla's own machinery (tasks' panics are caught where they
/// run): the worker aborts, and the pool reports it like any other crash.
pub(crate) fn serve(fd: RawFd) -> i32 {
    match std::panic::catch_unwind(|| serve_on(fd)) {
        Ok(code) => code,
        Err(_) => std::process::abort(),
    }
}

fn serve_on(fd: RawFd) -> i32 {
    // SAFETY: the pool placed the worker's end of a socketpair at this descriptor just before
    // exec, and nothing else in this fresh process knows of it, so we take sole ownership.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let stream: &'static UnixStream = SOCKET.get_or_init(|| stream);
    panic::install_hook();
    let hello = Reply::Hello {
        version: wire::VERSION,
        pid: std::process::id(),
    };
    if send(stream, &hello).is_err() {
        return 3;
    }
    let page = match progress::receive(stream.as_fd()) {
        Ok(page) => page,
        Err(err) => {
            eprintln!("flotilla worker {}: {err}", std::process::id());
            return 3;
        }
    };
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    // Both buffers are reused from task to task, so a payload does not pay for fresh pages
    // every time; one grown by an unusually large message is given back.
    let mut body = Vec::new();
    let mut reply = Vec::new();
    loop {
        let mut garble = false;
        let read = wire::read_frame_pausing(&mut reader, &mut body, wire::MAX_FRAME, || {
            if let Some(fault) = page.take_fault(FaultPoint::Receive) {
                fault.strike();
                garble = true;
            }
        });
        match read {
            Ok(()) => {}
            Err(wire::ReadError::Closed) => return 0,
            Err(err) => {
                eprintln!("flotilla worker {}: {err}", std::process::id());
                return 4;
            }
        }
        if garble {
            body.fill(0xff);
        }
        let built = match wire::decode_head::<Request<'_>>(&body) {
            Ok((Request::Run { id, task }, args)) => {
                page.begin(id);
                run(id, task, args, &mut reply)
            }
            Ok((
                Request::RunChunk {
                    id,
                    task,
                    skip,
                    each,
                },
                items,
            )) => {
                page.begin(id);
                run_chunk(id, task, skip, each, items, stream, &mut reply)
            }
            Ok((Request::Exit, _)) => return 0,
            Err(err) => {
                reply = wire::encode(&Reply::Refused(err.to_string())).unwrap_or_default();
                Ok(())
            }
        };
        let sent = match built {
            Ok(()) => send_reply(stream, page, &reply),
            Err(why) => send(
                stream,
                &Reply::Refused(format!("the reply could not be built: {why}")),
            ),
        };
        if sent.is_err() {
            // The pool is gone; nobody is left to report to.
            return 0;
        }
        if let Some(fault) = page.take_fault(FaultPoint::AfterReply) {
            fault.strike();
        }
        wire::release(&mut body);
        wire::release(&mut reply);
    }
}

/// The socket to the pool, kept for the process's life so that a chunk can send its results
/// as they come.
static SOCKET: OnceLock<UnixStream> = OnceLock::new();

/// Sends a reply frame, acting out a fault set for [`FaultPoint::Reply`] half-way.
fn send_reply(mut stream: &UnixStream, page: &Page, reply: &[u8]) -> std::io::Result<()> {
    page.note(Stage::SendResult, u32::MAX);
    let Some(fault) = page.take_fault(FaultPoint::Reply) else {
        return stream.write_all(reply);
    };
    let (first, _) = reply.split_at(reply.len() / 2);
    if fault == FaultAction::Garbage {
        // A frame whose header is junk, in place of the reply; then nothing more.
        let mut junk = 16u32.to_le_bytes().to_vec();
        junk.extend([0xff; 16]);
        stream.write_all(&junk)?;
        FaultAction::Hang.strike();
    }
    stream.write_all(first)?;
    fault.strike();
    unreachable!("every fault but garbage ends the worker or never returns")
}

/// Runs one task and builds the reply frame in `out`, with the result encoded straight into
/// it.
fn run(id: u64, task: &str, args: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let outcome = match lookup(task, Shape::One) {
        Ok(call) => {
            let header = Reply::Done {
                id,
                outcome: Outcome::Value,
            };
            *out = wire::start_in(std::mem::take(out), &header)?;
            match call(args, out) {
                Outcome::Value => match wire::finish(out) {
                    Ok(()) => return Ok(()),
                    Err(why) => Outcome::Failed(format!(
                        "could not send the result of task `{task}`: {why}"
                    )),
                },
                failure => failure,
            }
        }
        Err(unknown) => unknown,
    };
    *out = wire::start_in(std::mem::take(out), &Reply::Done { id, outcome })?;
    wire::finish(out)
}

/// Runs a chunk and builds its last reply frame in `out`; batches of results before it are
/// sent on `stream` as the chunk runs.
fn run_chunk(
    id: u64,
    task: &str,
    skip: u32,
    each: bool,
    items: &[u8],
    stream: &'static UnixStream,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let outcome = match lookup(task, Shape::Chunk) {
        Ok(call) => {
            *out = wire::start_in(std::mem::take(out), &Reply::Items { id, last: false })?;
            let header = out.len();
            match run::chunk::running(skip, each, header, stream, || call(items, out)) {
                Outcome::Value => {
                    let last = wire::start(&Reply::Items { id, last: true })?;
                    if last.len() != header {
                        return Err("the last header differs in size".to_owned());
                    }
                    out[..header].copy_from_slice(&last);
                    return wire::finish(out);
                }
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

fn send(mut stream: &UnixStream, reply: &Reply) -> std::io::Result<()> {
    let frame = wire::encode(reply).map_err(std::io::Error::other)?;
    stream.write_all(&frame)
}
