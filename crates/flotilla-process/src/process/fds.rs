//! File descriptors that travel to a child process inside its task arguments.
//!
//! A [`Connection`](super::Connection) cannot be turned into bytes: it is an open socket. When
//! [`Process::start`](super::Process::start) encodes the task's arguments it turns collection
//! on for the calling thread ([`collecting`]); each connection serialized meanwhile hands a
//! duplicate of its descriptor to the collector and is encoded as its slot number. Between
//! fork and exec the child keeps those descriptors open ([`keep_across_exec`]); its start
//! message lists their numbers by slot, it [`adopt`]s them before decoding its arguments, and
//! each connection [`claim`]s its slot. Outside a `Process::start` there is no collector, so serializing a connection fails
//! with an error; in a process that inherited nothing, decoding one fails too.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use super::sys;
use flotilla_core::primitives::lock;

thread_local! {
    /// The descriptors serialized on this thread since collection was turned on.
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
}

/// Descriptors this process inherited, by slot; `None` once claimed.
static INHERITED: Mutex<Vec<Option<OwnedFd>>> = Mutex::new(Vec::new());

/// Runs `encode` with collection on for this thread and returns its result with the
/// descriptors serialized meanwhile, in slot order.
pub fn collecting<R>(encode: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    /// Restores the previous collector even if `encode` panics.
    struct Restore(Option<Option<Vec<OwnedFd>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                OUTGOING.with(|slot| *slot.borrow_mut() = previous);
            }
        }
    }
    let previous = OUTGOING.with(|slot| slot.replace(Some(Vec::new())));
    let mut restore = Restore(Some(previous));
    let result = encode();
    let previous = restore.0.take().unwrap_or_default();
    let collected = OUTGOING.with(|slot| slot.replace(previous));
    (result, collected.unwrap_or_default())
}

/// Whether a `Process::start` is encoding arguments on this thread, so that [`export`] would
/// succeed; lets other descriptor-carrying types refuse with their own message.
pub fn is_collecting() -> bool {
    OUTGOING.with(|slot| slot.borrow().is_some())
}

/// Hands a duplicate of `fd` to the active collector and returns its slot.
///
/// # Errors
///
/// A message for the serializer if no `Process::start` is encoding on this thread, or if the
/// descriptor cannot be duplicated.
pub fn export(fd: BorrowedFd<'_>) -> Result<u32, String> {
    OUTGOING.with(|slot| {
        let mut slot = slot.borrow_mut();
        let Some(collected) = slot.as_mut() else {
            return Err(
                "a flotilla::process::Connection can only be passed to a child process \
                        as an argument of Process::start; it cannot travel to a process pool, \
                        through a queue or over another connection"
                    .to_owned(),
            );
        };
        let copy = sys::dup_above_stdio(fd)
            .map_err(|err| format!("could not duplicate a connection's descriptor: {err}"))?;
        collected.push(copy);
        u32::try_from(collected.len() - 1).map_err(|_| "too many connections".to_owned())
    })
}

/// Takes ownership of the descriptors a parent left open for this process, in slot order,
/// marking them close-on-exec again.
///
/// # Safety
///
/// Each of `fds` must be an open descriptor owned by no other object in this process, and
/// none may appear twice.
pub unsafe fn adopt(fds: &[RawFd]) {
    let mut inherited = lock(&INHERITED);
    for &fd in fds {
        // Failure leaves it inheritable by grandchildren, which only delays end-of-file.
        let _ = sys::set_cloexec(fd);
        // SAFETY: the caller guarantees that this descriptor is open, unowned and listed
        // once; from here on the table owns it.
        inherited.push(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
}

/// Takes the descriptor inherited in `slot`.
///
/// # Errors
///
/// A message for the deserializer if this process inherited no such descriptor or it was
/// already claimed.
pub fn claim(slot: u32) -> Result<OwnedFd, String> {
    if crate::fingerprint::tracing() {
        return Err("a connection is not taken over while a task's schema is traced".to_owned());
    }
    let mut inherited = lock(&INHERITED);
    usize::try_from(slot)
        .ok()
        .and_then(|slot| inherited.get_mut(slot))
        .and_then(Option::take)
        .ok_or_else(|| {
            format!(
                "no connection was passed to this process in slot {slot} (connections can only \
                 be decoded from the arguments of a task started by Process::start, once each)"
            )
        })
}

/// Closes every inherited descriptor that no argument claimed, so that unused connection ends
/// do not keep their peers waiting.
pub fn release_unclaimed() {
    lock(&INHERITED).clear();
}

/// The raw numbers of `fds`, for use between fork and exec.
pub fn raw(fds: &[OwnedFd]) -> Vec<RawFd> {
    fds.iter().map(AsRawFd::as_raw_fd).collect()
}

/// Lets the descriptors `fds` survive exec in a freshly forked child by clearing their
/// close-on-exec flag there (the flag belongs to the child's own descriptor table, so the
/// parent's copies keep it). The child learns their numbers from its start message.
///
/// The descriptors keep their numbers rather than being moved to fixed ones: `dup2` onto a
/// fixed number could overwrite a descriptor the standard library's `spawn` itself uses
/// between fork and exec. Only async-signal-safe calls are made and nothing is allocated, so
/// this may run between fork and exec.
pub fn keep_across_exec(fds: &[RawFd]) -> io::Result<()> {
    for &fd in fds {
        // SAFETY: fcntl(F_SETFD) on a descriptor number has no memory-safety preconditions.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
