//! The pool's side of one worker process: starting it, talking to it, stopping it.

use std::io::{self, BufReader};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::wire::{self, ReadError, Reply};
use super::worker::WORKER_ENV;
use crate::error::{Error, WorkerExit};
use crate::primitives::lock;
use crate::process::sys;

/// How long a new worker may take to say hello (exec and start-up, on a loaded machine).
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Buffer for replies: small ones arrive whole in one read; large ones bypass it.
const READ_BUFFER: usize = 64 << 10;

/// Requests are written in pieces of at most this size, so that a time limit is checked
/// between them.
const SEND_PIECE: usize = 1 << 20;

/// A running worker process and the socket to it.
pub(crate) struct WorkerProcess {
    child: Child,
    /// Writes go straight to the socket; reads go through `reader`, so that a small reply
    /// (header and body) costs one `read`.
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    /// The socket's read timeout as last set, so it is only changed when it differs.
    read_timeout: Option<Duration>,
    /// The socket's write timeout as last set.
    write_timeout: Option<Duration>,
    pid: u32,
    switch: Arc<KillSwitch>,
    tasks_run: usize,
    body: Vec<u8>,
    /// Where the last reply's payload starts in `body`.
    payload_at: usize,
}

/// Kills a worker from another thread (a `cancel()`, a shutdown that kills) without ever
/// signalling a process id that may have been reused: the pid is forgotten, under the lock,
/// before the process is reaped.
#[derive(Debug)]
pub(crate) struct KillSwitch {
    state: Mutex<SwitchState>,
}

#[derive(Debug)]
struct SwitchState {
    /// `None` once the process is being reaped.
    pid: Option<u32>,
    /// The task the worker is running, if any.
    task: Option<u64>,
}

impl KillSwitch {
    /// Kills the worker if it is still running task `task`; returns whether it did.
    pub(crate) fn kill_task(&self, task: u64) -> bool {
        let state = lock(&self.state);
        match (state.pid, state.task) {
            (Some(pid), Some(running)) if running == task => kill(pid),
            _ => false,
        }
    }

    /// Kills the worker, whatever it is doing.
    pub(crate) fn kill(&self) -> bool {
        lock(&self.state).pid.is_some_and(kill)
    }
}

fn kill(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) has no memory-safety preconditions. The pid is that of our own child,
    // which has not been reaped yet (callers hold the switch's lock, and the pid is cleared
    // under that lock before reaping), so it cannot name a recycled process.
    unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
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
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| spawn_error(format!("socketpair: {e}")))?;
        let their_fd = theirs.as_raw_fd();
        let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        let mut command = Command::new(program());
        if let Some(arg0) = std::env::args_os().next() {
            command.arg0(arg0);
        }
        command
            .arg("--flotilla-worker")
            .env(WORKER_ENV, their_fd.to_string())
            .stdin(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (fcntl, prctl, getppid); it allocates nothing (errors
        // are raw OS codes) and takes no locks.
        unsafe {
            command.pre_exec(move || {
                // Keep the worker's end open across exec, at the number named in the
                // environment. (Moving it to a fixed number could clobber a descriptor std
                // itself uses between fork and exec.)
                if libc::fcntl(their_fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // Die with the thread that started us, even if it is killed with SIGKILL.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // The pool's process exited during start-up.
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| spawn_error(format!("{}: {e}", program())))?;
        drop(theirs);
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
                }),
            }),
            tasks_run: 0,
            body: Vec::new(),
            payload_at: 0,
        };
        match worker.receive(Some(HELLO_TIMEOUT)) {
            Ok(Reply::Hello { version, .. }) if version == wire::VERSION => Ok(worker),
            Ok(Reply::Hello { version, .. }) => {
                worker.kill_and_reap();
                Err(spawn_error(format!(
                    "the worker speaks protocol version {version}, this pool {}",
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

    /// Waits for the process to end. A worker whose socket closed is exiting, so this is short;
    /// one that lingers past a second (a task that closed the socket itself) is killed.
    fn reap(&mut self) -> WorkerExit {
        let started = Instant::now();
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
                Ok(None) if started.elapsed() < Duration::from_secs(1) => {
                    drop(state);
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Ok(None) => {
                    if let Some(pid) = state.pid.take() {
                        kill(pid);
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
        match status {
            Some(status) => WorkerExit::new(self.pid, status.code(), status.signal()),
            None => WorkerExit::new(self.pid, None, None),
        }
    }
}

impl std::fmt::Debug for WorkerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerProcess")
            .field("pid", &self.pid)
            .field("tasks_run", &self.tasks_run)
            .finish_non_exhaustive()
    }
}

/// The program to re-execute: the running binary itself.
fn program() -> String {
    if cfg!(target_os = "linux") {
        // Works even if the file was replaced or deleted since start (a rebuild mid-run).
        "/proc/self/exe".to_owned()
    } else {
        std::env::current_exe()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}
