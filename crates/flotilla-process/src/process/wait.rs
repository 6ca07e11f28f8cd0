//! [`wait`] and [`wait_timeout`]: Python's `multiprocessing.connection.wait`.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use super::sys;

/// Waits until at least one of `objects` is ready and returns the positions of those that
/// are, in order: Python's `multiprocessing.connection.wait(objects)`.
///
/// An object is anything with a file descriptor ([`AsFd`]); it is ready when its descriptor
/// is readable or at end of file:
///
/// - a [`Connection`](super::Connection) or [`Receiver`](super::Receiver): when a message is
///   waiting or the other end was closed (its next receive does not block for long);
/// - a [`StartedProcess::sentinel`](super::StartedProcess::sentinel) or
///   [`ParentProcess::sentinel`](super::ParentProcess::sentinel): when that process has
///   ended;
/// - any other descriptor: a socket, a pipe, an `eventfd`, as `poll(2)` sees it.
///
/// Python returns the ready objects themselves; Rust returns their positions, so that a
/// mixed list (`&[a.as_fd(), p.sentinel()]`) still tells you which one is which. Waiting on
/// no objects returns an empty list at once (nothing could ever become ready).
///
/// # Errors
///
/// The operating system's error from `poll(2)` (for example more descriptors than the
/// process may have open).
///
/// # Blocking
///
/// Until one of the objects is ready, however long that takes.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// use flotilla::process::{pipe_oneway, wait, Process, Sender};
///
/// #[flotilla::task]
/// fn report(n: u32, out: Sender<u32>) {
///     out.send(&(n * 10)).unwrap();
/// }
///
/// let mut readers = Vec::new();
/// let mut children = Vec::new();
/// for n in 0..3 {
///     let (rx, tx) = pipe_oneway::<u32>()?;
///     children.push(Process::new(ReportTask, (n, tx)).start()?);
///     readers.push(rx);
/// }
/// let mut got = Vec::new();
/// while !readers.is_empty() {
///     for at in wait(&readers)?.into_iter().rev() {
///         match readers[at].recv() {
///             Ok(value) => got.push(value),
///             Err(_) => drop(readers.remove(at)), // that child is done and hung up
///         }
///     }
/// }
/// got.sort();
/// assert_eq!(got, [0, 10, 20]);
///
/// // A child's sentinel is ready once it has ended.
/// let p = &children[0];
/// assert_eq!(wait(&[p.sentinel()])?, [0]);
/// assert!(p.exitcode().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait<O: AsFd>(objects: &[O]) -> io::Result<Vec<usize>> {
    wait_for(objects, None)
}

/// Like [`wait`], but waits at most `timeout`: Python's `wait(objects, timeout)`. An empty
/// list means nothing became ready in time (`Duration::ZERO` only looks).
///
/// # Errors
///
/// As [`wait`].
///
/// # Blocking
///
/// Up to `timeout`.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use flotilla::process::{pipe, wait_timeout};
///
/// let (a, b) = pipe::<u8>()?;
/// assert!(wait_timeout(&[&a, &b], Duration::from_millis(10))?.is_empty());
/// b.send(&1)?;
/// assert_eq!(wait_timeout(&[&a, &b], Duration::from_secs(5))?, [0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait_timeout<O: AsFd>(objects: &[O], timeout: Duration) -> io::Result<Vec<usize>> {
    wait_for(objects, Some(timeout))
}

fn wait_for<O: AsFd>(objects: &[O], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    let fds: Vec<_> = objects.iter().map(AsFd::as_fd).collect();
    sys::wait_any(&fds, timeout)
}
