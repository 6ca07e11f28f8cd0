//! The pool's side of one worker process: starting it, talking to it, stopping it; and the
//! worker's first steps before `main`.
//!
//! Each worker runs under a supervisor (see [`supervisor`](super::supervisor)): the process the
//! pool starts and kills is the supervisor, which forks the worker into a process group of its
//! own and, when the worker ends, kills whatever the worker's tasks started. The worker inherits
//! nothing from the pool but its standard streams and its socket, and that socket is
//! close-on-exec in the worker, so a task's children hold nothing of the pool's.

use std::io::{self, BufReader};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::supervisor;
use super::worker::WORKER_ENV;
use crate::process::sys;
use crate::runtime;
use crate::spawn;
use crate::wire::{self, ReadError, Reply};
use flotilla_core::primitives::lock;
use flotilla_core::{Error, WorkerExit};

/// How long a new worker may take to say hello (exec and start-up, on a loaded machine).
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Buffer for replies: small ones arrive whole in one read; large ones bypass it.
const READ_BUFFER: usize = 64 << 10;

/// Requests are written in pieces of at most this size, so that a time limit is checked
/// between them.
const SEND_PIECE: usize = 1 << 20;

/// How long a worker whose socket closed may take to exit before it is killed.
const LINGER: Duration = Duration::from_secs(1);

/// How long a supervisor asked to kill its worker may take to finish (it kills the tasks'
/// processes first) before it is killed itself.
const SUPERVISOR_GRACE: Duration = Duration::from_secs(15);

/// What a worker dying of a stack overflow tells the pool.
const STACK_OVERFLOW: &str = "the task overflowed its stack";

/// A running worker process and the socket to it.
pub(crate) struct WorkerProcess {
    /// The worker's supervisor, the pool's child.
    child: Child,
    /// Writes go straight to the socket; reads go through `reader`, so that a small reply
    /// (header and body) costs one `read`.
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    /// The socket's read timeout as last set, so it is only changed when it differs.
    read_timeout: Option<Duration>,
    /// The socket's write timeout as last set.
    write_timeout: Option<Duration>,
    /// The worker's own process id (its supervisor's until the worker said hello).
    pid: u32,
    switch: Arc<KillSwitch>,
    tasks_run: usize,
    body: Vec<u8>,
    /// Where the last reply's payload starts in `body`.
    payload_at: usize,
}

/// Kills a worker from another thread (a `cancel()`, a shutdown that kills) without ever
/// signalling a process id that may have been reused: the supervisor's pid is forgotten, under
/// the lock, before the supervisor is reaped.
#[derive(Debug)]
pub(crate) struct KillSwitch {
    state: Mutex<SwitchState>,
}

#[derive(Debug)]
struct SwitchState {
    /// The supervisor's pid; `None` once it is being reaped.
    pid: Option<u32>,
    /// The task the worker is running, if any.
    task: Option<u64>,
    /// A kill was sent. The supervisor acts on it a moment later, so the worker is doomed
    /// even if the task it was meant for finished meanwhile.
    fired: bool,
    /// The pool's `terminate_workers()` sent the worker `SIGTERM`: its end is reported with
    /// [`TERMINATED`] as the cause.
    terminated: bool,
}

/// The cause of a worker's end after [`KillSwitch::terminate`].
pub(crate) const TERMINATED: &str = "terminated by ProcessPoolExecutor::terminate_workers()";

impl KillSwitch {
    /// Kills the worker if it is still running task `task`; returns whether it did.
    pub(crate) fn kill_task(&self, task: u64) -> bool {
        let mut state = lock(&self.state);
        match (state.pid, state.task) {
            (Some(pid), Some(running)) if running == task => {
                state.fired = true;
                signal(pid, libc::SIGTERM)
            }
            _ => false,
        }
    }

    /// Kills the worker and every process its tasks started, whatever it is doing.
    pub(crate) fn kill(&self) -> bool {
        let mut state = lock(&self.state);
        state.fired |= state.pid.is_some();
        state.pid.is_some_and(|pid| signal(pid, libc::SIGTERM))
    }

    /// Sends the worker (not its tree) `SIGTERM`, through its supervisor, which cleans up the
    /// rest once the worker ends; the task may handle the signal. Returns whether the request
    /// was sent. The worker is not given another task.
    pub(crate) fn terminate(&self) -> bool {
        let mut state = lock(&self.state);
        let Some(pid) = state.pid else {
            return false;
        };
        state.fired = true;
        state.terminated = true;
        signal(pid, libc::SIGUSR1)
    }

    /// Whether a kill was sent to this worker: it must not be given another task.
    pub(crate) fn fired(&self) -> bool {
        lock(&self.state).fired
    }
}

/// Sends `signal` to a supervisor: `SIGTERM` asks it to kill its worker's whole tree,
/// `SIGUSR1` to send its worker `SIGTERM`, `SIGKILL` ends it.
fn signal(pid: u32, signal: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) has no memory-safety preconditions. The pid is that of our own child,
    // which has not been reaped yet (callers hold the switch's lock, and the pid is cleared
    // under that lock before reaping), so it cannot name a recycled process.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// The worker's side of [`WorkerProcess::spawn`], run before `main` in the re-executed
/// program: splits off the supervisor, then sets up what `main` would have (standard streams,
/// `SIGPIPE`, a thread named `main` that reports a stack overflow) and runs `serve` on the
/// socket. Returns the worker's exit code; the supervisor never returns from here.
///
/// # Safety
///
/// Must be called before `main`, while the process has a single thread.
pub(crate) unsafe fn enter(socket: RawFd, serve: fn(RawFd) -> i32) -> i32 {
    runtime::sanitize_stdio();
    // SAFETY: the caller guarantees that this runs before `main`, on the only thread.
    if let Err(err) = unsafe { supervisor::split(socket) } {
        eprintln!("flotilla: could not start a pool worker: {err}");
        return 2;
    }
    crate::process::mark_pool_worker();
    runtime::ignore_sigpipe();
    // A task's children must not hold the pool's socket: its end would not close with the
    // worker, and the pool would not see the worker die.
    if let Err(err) = sys::set_cloexec(socket) {
        eprintln!("flotilla: pool worker socket: {err}");
        return 2;
    }
    let dying = Reply::Dying {
        cause: STACK_OVERFLOW.to_owned(),
    };
    if let Ok(frame) = wire::encode(&dying) {
        runtime::set_last_words(socket, frame);
    }
    runtime::run_as_main(move || serve(socket))
}

/// Why a call to a worker did not produce a reply.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No reply within the time limit; the worker is still running.
    TimedOut,
    /// The worker died; it has been reaped.
    Died(WorkerExit),
    /// The worker sent something unreadable.
    Garbled(String),
}

impl WorkerProcess {
    /// Starts a worker: this same program, re-executed, caught before `main` by flotilla.
    pub(crate) fn spawn() -> Result<WorkerProcess, Error> {
        let spawn_error = |reason: String| Error::Spawn { reason };
        let (ours, theirs) = socket_pair().map_err(|e| spawn_error(format!("socketpair: {e}")))?;
        let their_fd = theirs.as_raw_fd();
        // The worker's end stays open across exec, at the number named in the environment
        // (moving it to a fixed number could clobber a descriptor std itself uses between fork
        // and exec); nothing else of this process goes to the worker. The supervisor kills the
        // worker's tree when the thread that started it dies, even by SIGKILL of this whole
        // process.
        let mut command = spawn::re_exec(
            "--flotilla-worker",
            WORKER_ENV,
            their_fd,
            &[],
            Some(libc::SIGTERM),
        );
        let child = command
            .spawn()
            .map_err(|e| spawn_error(format!("{}: {e}", spawn::PROGRAM)))?;
        drop(theirs);
        WorkerProcess::greet(child, ours)
    }

    /// Waits for the hello of a worker just started as `child`, on `ours`, its socket, and
    /// refuses (killing and reaping it) a worker that speaks another protocol version.
    fn greet(child: Child, ours: UnixStream) -> Result<WorkerProcess, Error> {
        let spawn_error = |reason: String| Error::Spawn { reason };
        let pid = child.id();
        let reader = match ours.try_clone() {
            Ok(clone) => BufReader::with_capacity(READ_BUFFER, clone),
            Err(err) => {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                return Err(spawn_error(format!("socket: {err}")));
            }
        };
        let mut worker = WorkerProcess {
            child,
            stream: ours,
            reader,
            read_timeout: None,
            write_timeout: None,
            pid,
            switch: Arc::new(KillSwitch {
                state: Mutex::new(SwitchState {
                    pid: Some(pid),
                    task: None,
                    fired: false,
                    terminated: false,
                }),
            }),
            tasks_run: 0,
            body: Vec::new(),
            payload_at: 0,
        };
        match worker.receive(Some(HELLO_TIMEOUT)) {
            Ok(Reply::Hello { version, pid }) if version == wire::VERSION => {
                worker.pid = pid;
                Ok(worker)
            }
            Ok(Reply::Hello { version, .. }) => {
                worker.kill_and_reap();
                Err(spawn_error(format!(
                    "the worker speaks protocol version {version}, this pool {} (is it another \
                     build of the program?)",
                    wire::VERSION
                )))
            }
            Ok(other) => {
                worker.kill_and_reap();
                Err(spawn_error(format!("expected a greeting, got {other:?}")))
            }
            Err(CallError::Died(exit)) => Err(spawn_error(format!(
                "{exit} before it was ready (was the program built with flotilla's worker \
                 entry point linked in?)"
            ))),
            Err(CallError::TimedOut) => {
                worker.kill_and_reap();
                Err(spawn_error(format!(
                    "the worker did not start within {HELLO_TIMEOUT:?}"
                )))
            }
            Err(CallError::Garbled(why)) => {
                worker.kill_and_reap();
                Err(spawn_error(why))
            }
        }
    }

    /// The payload that followed the last reply's header.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.body[self.payload_at..]
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn tasks_run(&self) -> usize {
        self.tasks_run
    }

    pub(crate) fn switch(&self) -> &Arc<KillSwitch> {
        &self.switch
    }

    /// Marks `task` as the one this worker runs (or `None`), so that
    /// [`KillSwitch::kill_task`] can stop it from then on, even before it is sent.
    pub(crate) fn arm(&self, task: Option<u64>) {
        lock(&self.switch.state).task = task;
    }

    /// Sends `frame` (which must be the task given to [`arm`](Self::arm)) and waits up to
    /// `timeout` for the reply.
    pub(crate) fn call(
        &mut self,
        frame: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Reply, CallError> {
        let outcome = self
            .send(frame, timeout)
            .and_then(|()| self.receive(timeout));
        self.finish_task();
        outcome
    }

    /// Sends `frame` (a request for the task given to [`arm`](Self::arm)), giving up when
    /// `timeout` passes. `Died` means that the request did not get through whole, so the
    /// worker cannot have begun the task; `TimedOut` that the worker stopped reading.
    pub(crate) fn send(
        &mut self,
        frame: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), CallError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        for piece in frame.chunks(SEND_PIECE) {
            let limit = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(CallError::TimedOut),
                },
                None => None,
            };
            if (limit.is_some() || self.write_timeout.is_some())
                && self.stream.set_write_timeout(limit).is_err()
            {
                return Err(CallError::Died(self.reap()));
            }
            self.write_timeout = limit;
            match sys::send_all(self.stream.as_fd(), piece) {
                Ok(()) => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(CallError::TimedOut);
                }
                Err(_) => return Err(CallError::Died(self.reap())),
            }
        }
        Ok(())
    }

    /// Ends a task begun with [`arm`](Self::arm): the kill switch no longer names it, and it
    /// counts towards `max_tasks_per_child`.
    pub(crate) fn finish_task(&mut self) {
        lock(&self.switch.state).task = None;
        self.tasks_run += 1;
    }

    /// Whether the worker has sent anything unasked or hung up, between tasks: a worker in
    /// that state cannot be trusted with a task.
    pub(crate) fn has_unsolicited_input(&self) -> bool {
        !self.reader.buffer().is_empty()
            || sys::wait_readable(self.stream.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
    }

    /// The socket to the worker.
    pub(crate) fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Gives back the read buffer's memory if a large reply grew it.
    pub(crate) fn release_buffers(&mut self) {
        wire::release(&mut self.body);
    }

    /// Waits up to `timeout` for the worker's next message.
    pub(crate) fn receive(&mut self, timeout: Option<Duration>) -> Result<Reply, CallError> {
        // The socket's read timeout is the time left to the task, so a read that times out
        // means the task ran out of time (a frame cut short by it cannot be resumed anyway).
        // A zero duration would mean "no timeout" to the socket: round it up to a microsecond.
        let limit = timeout.map(|t| t.max(Duration::from_micros(1)));
        if limit != self.read_timeout {
            if self.stream.set_read_timeout(limit).is_err() {
                return Err(CallError::Died(self.reap()));
            }
            self.read_timeout = limit;
        }
        match wire::read_frame(&mut self.reader, &mut self.body) {
            Ok(()) => match wire::decode_head::<Reply>(&self.body) {
                Ok((Reply::Dying { cause }, _)) => {
                    Err(CallError::Died(self.reap().with_cause(cause)))
                }
                Ok((reply, payload)) => {
                    self.payload_at = self.body.len() - payload.len();
                    Ok(reply)
                }
                Err(err) => Err(CallError::Garbled(err.to_string())),
            },
            Err(ReadError::Io(err))
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(CallError::TimedOut)
            }
            Err(ReadError::Malformed(why)) => Err(CallError::Garbled(why)),
            Err(ReadError::Closed | ReadError::Io(_)) => Err(CallError::Died(self.reap())),
        }
    }

    /// Kills the worker and waits for it to end.
    pub(crate) fn kill_and_reap(&mut self) -> WorkerExit {
        self.switch.kill();
        self.reap()
    }

    /// Asks the worker to exit and waits for it; kills it if it does not go within a second.
    pub(crate) fn retire(mut self) {
        if lock(&self.switch.state).pid.is_none() {
            return; // already reaped
        }
        if let Ok(frame) = wire::encode(&wire::Request::Exit) {
            let _ = wire::write_frame(&mut self.stream, &frame);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut body = Vec::new();
        // Exit closes the socket; wait for that (or the timeout) before reaping.
        while wire::read_frame(&mut self.reader, &mut body).is_ok() {}
        self.reap();
    }

    /// Waits for the worker to end. A worker whose socket closed is exiting, so this is short;
    /// one that lingers past [`LINGER`] (a task that closed the socket itself) is killed, and a
    /// supervisor that does not finish within [`SUPERVISOR_GRACE`] after that is killed too.
    fn reap(&mut self) -> WorkerExit {
        let started = Instant::now();
        let mut asked = false;
        let mut pause = Duration::from_micros(50);
        let status = loop {
            let mut state = lock(&self.switch.state);
            // Reaping and forgetting the pid happen under one lock, so a concurrent kill
            // either precedes the reaping or finds no pid.
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    state.pid = None;
                    break Some(status);
                }
                Ok(None) if started.elapsed() < LINGER + SUPERVISOR_GRACE => {
                    if !asked
                        && started.elapsed() >= LINGER
                        && let Some(pid) = state.pid
                    {
                        signal(pid, libc::SIGTERM);
                        asked = true;
                    }
                    drop(state);
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Ok(None) => {
                    if let Some(pid) = state.pid.take() {
                        signal(pid, libc::SIGKILL);
                    }
                    drop(state);
                    break self.child.wait().ok();
                }
                Err(_) => {
                    state.pid = None;
                    break None;
                }
            }
        };
        let exit = match status {
            Some(status) => WorkerExit::new(self.pid, status.code(), status.signal()),
            None => WorkerExit::new(self.pid, None, None),
        };
        if lock(&self.switch.state).terminated {
            exit.with_cause(TERMINATED)
        } else {
            exit
        }
    }
}

/// A connected pair of sockets, both numbered above the standard streams: in a program that
/// closed its standard streams, a new socket would otherwise take one of their numbers, where
/// the worker's stdio set-up would overwrite it (and a `println!` here would write into it).
fn socket_pair() -> io::Result<(UnixStream, UnixStream)> {
    let (a, b) = UnixStream::pair()?;
    let lift = |stream: UnixStream| -> io::Result<UnixStream> {
        if stream.as_raw_fd() > 2 {
            return Ok(stream);
        }
        let lifted: OwnedFd = sys::dup_above_stdio(stream.as_fd())?;
        Ok(UnixStream::from(lifted))
    };
    Ok((lift(a)?, lift(b)?))
}

impl std::fmt::Debug for WorkerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerProcess")
            .field("pid", &self.pid)
            .field("tasks_run", &self.tasks_run)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker of another protocol version (here a process that stays silent, with its
    /// greeting written for it) is refused with an error naming both versions, and reaped.
    #[test]
    fn a_worker_of_another_protocol_version_is_refused() {
        for version in [wire::VERSION - 1, wire::VERSION + 1] {
            let (ours, mut theirs) = socket_pair().unwrap();
            let child = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            let pid = child.id();
            let hello = wire::encode(&Reply::Hello { version, pid }).unwrap();
            wire::write_frame(&mut theirs, &hello).unwrap();
            let err = WorkerProcess::greet(child, ours).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
            assert!(
                text.contains(&format!(
                    "the worker speaks protocol version {version}, this pool {}",
                    wire::VERSION
                )),
                "{text}"
            );
            // Reaped: the pid names no child of ours any more.
            // SAFETY: waitpid(2) with WNOHANG on a pid has no memory-safety preconditions.
            let reaped =
                unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) };
            assert_eq!(reaped, -1);
        }
    }
}
