//! Python's `multiprocessing` building blocks: [`Process`], [`pipe`], [`pipe_oneway`],
//! [`wait`], [`Queue`], [`JoinableQueue`], [`current_process`], [`parent_process`] and
//! [`active_children`].
//!
//! Use these when you want to run a few long-lived processes of your own and talk to them;
//! for "run this function on many inputs", a [`ProcessPoolExecutor`](crate::ProcessPoolExecutor)
//! is simpler and survives crashes.
//!
//! # A guide for Python users
//!
//! | Python `multiprocessing` | `flotilla::process` |
//! |---|---|
//! | `Process(target=f, args=(a, b), name="w", daemon=True)` | [`Process::new(f, (a, b))`](Process::new)[`.with_name("w")`](Process::with_name)[`.with_daemon(true)`](Process::with_daemon), with `f` a `#[flotilla::task]` |
//! | `p.start()` | [`let p = p.start()?`](Process::start): a [`StartedProcess`]; a second start does not compile |
//! | `p.join()`, `p.join(timeout)` then `p.is_alive()` | [`join()`](StartedProcess::join), [`join_timeout(d)`](StartedProcess::join_timeout) returns whether it ended |
//! | `p.terminate()`, `p.kill()` | [`terminate`](StartedProcess::terminate) (`SIGTERM`), [`kill`](StartedProcess::kill) (`SIGKILL`) |
//! | `p.exitcode`, `p.pid`, `p.name`, `p.daemon` | [`exitcode()`](StartedProcess::exitcode) (`-N` for signal `N`, 1 for a panic), [`pid()`](StartedProcess::pid), [`name()`](StartedProcess::name), [`daemon()`](StartedProcess::daemon) |
//! | `p.sentinel`, `p.close()` | [`sentinel()`](StartedProcess::sentinel) (a [`BorrowedFd`](std::os::fd::BorrowedFd)), [`close()`](StartedProcess::close) (fails with the handle back while the child runs) |
//! | `active_children()`, `parent_process()` | [`active_children()`], [`parent_process()`] |
//! | `p.authkey`, `current_process().authkey` | none: nothing in `flotilla::process` authenticates with it (children and queues trust the same user through the kernel; see [`Queue`]); a manager's key is its own (`flotilla::manager`) |
//! | `a, b = Pipe()`, `Pipe(duplex=False)` | [`let (a, b) = pipe::<T>()?`](pipe), [`let (rx, tx) = pipe_oneway::<T>()?`](pipe_oneway): a [`Receiver`] and a [`Sender`], so the wrong end has no such method |
//! | `conn.send(x)`, `conn.recv()` | [`send(&x)`](Connection::send), [`recv()`](Connection::recv), [`recv_timeout(d)`](Connection::recv_timeout) |
//! | `conn.poll()`, `conn.poll(timeout)` | [`poll()`](Connection::poll) (never waits), [`poll_timeout(d)`](Connection::poll_timeout) |
//! | `conn.send_bytes(buf, offset, size)` | [`send_bytes(&buf[offset..offset + size])`](Connection::send_bytes) |
//! | `conn.recv_bytes()`, `recv_bytes(maxlength)`, `recv_bytes_into(buf, offset)` | [`recv_bytes()`](Connection::recv_bytes), [`recv_bytes_max(n)`](Connection::recv_bytes_max), [`recv_bytes_into(&mut buf[offset..])`](Connection::recv_bytes_into); a too-long message is refused and left in the pipe ([`RecvBytesError::TooLong`]) |
//! | `conn.fileno()`, `conn.close()` | [`AsFd`](std::os::fd::AsFd) / [`AsRawFd`](std::os::fd::AsRawFd), `drop(conn)` |
//! | `connection.wait(objects, timeout)` | [`wait(&objects)`](wait), [`wait_timeout(&objects, d)`](wait_timeout): the positions of the ready ones |
//! | `EOFError` from `recv` on a closed pipe | [`Error::Disconnected`](flotilla_core::Error::Disconnected) |
//! | `Queue(maxsize)` | [`Queue::new()`](Queue::new), [`Queue::bounded(n).unwrap()`](Queue::bounded) |
//! | `q.put(x)`, `q.get()` | [`put`](Queue::put) (a failure hands the item back in a [`SendError`]), [`get`](Queue::get) |
//! | `q.put(x, timeout=t)`, `q.put_nowait(x)`, `queue.Full` | [`put_timeout`](Queue::put_timeout), [`try_put`](Queue::try_put), [`PutError::Full`] (the item comes back) |
//! | `q.get(timeout=t)`, `q.get_nowait()`, `queue.Empty` | [`get_timeout`](Queue::get_timeout), [`try_get`](Queue::try_get), [`GetError::Empty`] |
//! | `q.qsize()`, `q.empty()`, `q.full()` | [`qsize()`](Queue::qsize), [`is_empty()`](Queue::is_empty), [`is_full()`](Queue::is_full) (exact, read in the owning process) |
//! | `q.shutdown(immediate)`, `queue.ShutDown` | [`shutdown(immediate)`](Queue::shutdown), [`PutError::ShutDown`], [`GetError::ShutDown`], [`Error::QueueShutDown`](flotilla_core::Error::QueueShutDown) |
//! | `q.close()`, `q.join_thread()`, `q.cancel_join_thread()` | [`close()`](Queue::close) (drops the handle); the other two are not needed: nothing is buffered (see [`Queue::close`]) |
//! | `JoinableQueue`, `task_done()`, `join()` | [`JoinableQueue`], [`task_done`](JoinableQueue::task_done), [`join`](JoinableQueue::join) |
//! | `current_process().name`, `.pid`, `.daemon` | [`current_process()`](current_process)`.name()`, `.pid()`, `.daemon()` |
//!
//! # How it differs from Python
//!
//! - **Targets are registered tasks.** A child process is this same program started again
//!   and caught by flotilla before `main` (never a `fork` of the running program), so its
//!   target must be findable by name: a function marked `#[flotilla::task]`. Its arguments
//!   and the items of queues and pipes are serde types. No `if __name__ == '__main__'` guard
//!   is needed, and it works from tests and doc tests. The task still runs as `main` would:
//!   on the process's first thread with `main`'s stack, with `SIGPIPE` ignored (a write to a
//!   closed pipe is an `Err(BrokenPipe)`), and a stack overflow reported as one before the
//!   child aborts; only the thread has no name (`thread::current().name()` is `None`: Rust
//!   names it `main` only when it starts `main` itself, and a task on any other thread would
//!   lose its robust locks if it called `exec`). Two tasks registered under one name cannot be told apart, so
//!   [`start`](Process::start) refuses either with [`Error::DuplicateTask`](flotilla_core::Error).
//! - **Arguments move.** What you pass to [`Process::new`] is encoded at
//!   [`start`](Process::start) and dropped here: a [`Connection`] passed to a child is that
//!   child's alone, so when it exits its peer sees the pipe close (Python needs an explicit
//!   `close()` in the parent for that). Connections can only travel this way; queues travel
//!   anywhere, including to process-pool tasks and through other queues.
//! - **Misuse does not compile.** A [`Process`] is started by a `start` that consumes it, and
//!   only the [`StartedProcess`] it returns can be joined or signalled; the ends of a one-way
//!   pipe are a [`Receiver`] and a [`Sender`]; a closed process or queue handle is gone. Python
//!   raises at run time for all of these.
//! - **Daemons die with their parent, however it dies.** Python terminates daemon children
//!   in an exit handler, which `SIGKILL` skips; here the kernel kills them
//!   (`PR_SET_PDEATHSIG`). Non-daemon children are left running, and `Drop` neither waits
//!   for nor kills a child (but it is always reaped, never left a zombie).
//! - **Queues live in the process that created them.** Other processes reach them through a
//!   small broker in that process; see [`Queue`] for the trade-off. Bounds, timeouts and
//!   `qsize` are exact.
//! - **Errors are values.** A closed pipe or a vanished queue owner returns an
//!   [`Error`](flotilla_core::Error); nothing panics or hangs.
//!
//! # Example: a producer and two consumers
//!
//! ```
//! use flotilla::process::{current_process, JoinableQueue, Process, Queue};
//!
//! #[flotilla::task]
//! fn consumer(jobs: JoinableQueue<Option<u64>>, results: Queue<(String, u64)>) {
//!     let me = current_process().name().to_owned();
//!     while let Some(n) = jobs.get().unwrap() {
//!         results.put((me.clone(), n * n)).unwrap();
//!         jobs.task_done().unwrap();
//!     }
//!     jobs.task_done().unwrap();
//! }
//!
//! let (jobs, results) = (JoinableQueue::new(), Queue::new());
//! let consumers = (0..2)
//!     .map(|i| {
//!         Process::new(ConsumerTask, (jobs.clone(), results.clone()))
//!             .with_name(format!("c{i}"))
//!             .start()
//!     })
//!     .collect::<Result<Vec<_>, _>>()?;
//! for n in 0..10 {
//!     jobs.put(Some(n))?;
//! }
//! for _ in &consumers {
//!     jobs.put(None)?; // one poison pill each
//! }
//! jobs.join()?;
//! let mut squares: Vec<u64> = (0..10).map(|_| Ok(results.get()?.1)).collect::<Result<_, flotilla::Error>>()?;
//! squares.sort();
//! assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
//! for c in &consumers {
//!     c.join();
//!     assert_eq!(c.exitcode(), Some(0));
//! }
//! # Ok::<(), flotilla::Error>(())
//! ```

mod broker;
pub(crate) mod child;
mod current;
#[doc(hidden)]
pub mod fds;
mod handle;
mod parent;
mod pipe;
mod protocol;
mod queue;
mod queue_error;
mod reaper;
#[doc(hidden)]
pub mod socket;
mod spawner;
mod started;
mod state;
#[doc(hidden)]
pub mod sys;
mod wait;

pub use self::current::{CurrentProcess, current_process};
pub use self::handle::Process;
pub use self::parent::{ParentProcess, parent_process};
pub use self::pipe::{Connection, Receiver, RecvBytesError, Sender, pipe, pipe_oneway};
pub use self::queue::{JoinableQueue, Queue};
pub use self::queue_error::{GetError, PutError, SendError};
pub use self::started::{CloseError, StartedProcess, active_children};
pub use self::wait::{wait, wait_timeout};

/// Records that this process is a process-pool worker, for [`current_process`].
pub(crate) fn mark_pool_worker() {
    current::set(current::Identity {
        name: format!("PoolWorker-{}", std::process::id()),
        path: String::new(),
        daemon: true,
        parent: None,
    });
}
