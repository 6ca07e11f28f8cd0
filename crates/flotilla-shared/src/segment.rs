//! A shared-memory segment: a sealed memfd mapped `MAP_SHARED`, and how it travels to a child
//! process inside the arguments of `Process::start`.
//!
//! The memfd is sealed against growing and shrinking before it is first shared, so no process
//! can truncate it under another's mapping (which would turn every access into `SIGBUS`); a
//! process that adopts one checks the seals and the size before mapping it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use flotilla_core::Error;
use flotilla_process::process::fds;
use flotilla_process::wire::refusal;

/// The seals every segment carries.
const SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;

/// A mapping of a whole sealed memfd, unmapped on drop.
///
/// It hands out only a raw base pointer: who may read or write which bytes, and how, is the
/// business of the types built on it.
#[derive(Debug)]
pub(crate) struct Segment {
    base: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: a `Segment` is an address range and a descriptor, both usable from any thread;
// every access to the bytes behind `base` goes through the types of this module, each of
// which synchronises its own accesses (a process-shared mutex or atomics).
unsafe impl Send for Segment {}
// SAFETY: as for `Send`; `&Segment` only exposes the base pointer, the length and the fd.
unsafe impl Sync for Segment {}

impl Segment {
    /// A fresh, zero-filled segment of `len` bytes (at least 1).
    pub(crate) fn create(len: usize) -> io::Result<Segment> {
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // SAFETY: the name is a NUL-terminated string literal that outlives the call.
        let raw = unsafe { libc::memfd_create(c"flotilla-shared".as_ptr(), flags) };
        if raw == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create just returned this descriptor to us; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let size = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: ftruncate on a descriptor we own has no memory-safety preconditions.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fcntl(F_ADD_SEALS) on a descriptor we own has no memory-safety preconditions.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Segment::map(fd, len)
    }

    /// Maps a segment another process created, after checking that it is sealed and exactly
    /// `len` bytes long.
    pub(crate) fn open(fd: OwnedFd, len: usize) -> io::Result<Segment> {
        // SAFETY: fcntl(F_GET_SEALS) on a descriptor we own has no memory-safety preconditions.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        if seals == -1 || seals & SEALS != SEALS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the descriptor is not a sealed flotilla shared-memory segment",
            ));
        }
        // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `stat` is a valid, writable `struct stat` for the duration of the call.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } == -1 {
            return Err(io::Error::last_os_error());
        }
        if usize::try_from(stat.st_size).ok() != Some(len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the shared-memory segment is {} bytes, {len} were expected (do the parent \
                     and the child agree on the element type?)",
                    stat.st_size
                ),
            ));
        }
        Segment::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Segment> {
        // SAFETY: a fresh mapping chosen by the kernel (null hint, no MAP_FIXED) cannot alias
        // any existing Rust object; the descriptor is open and at least `len` bytes long
        // (sealed at that size), so every mapped page is backed.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or(io::ErrorKind::AddrNotAvailable)?;
        Ok(Segment { base, len, fd })
    }

    /// The first byte of the mapping, page-aligned; valid for `len` bytes while `self` lives.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` describe the mapping made in `map`, unmapped only here; the
        // types built on the segment hold it (through an `Arc`) for as long as they or any
        // guard borrowed from them can touch the memory, and every lock guard holds its own
        // `Arc`, so a mutex still held (on some thread's robust list, which glibc and the
        // kernel write and read through) is never unmapped, even if its guard was forgotten.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Which shared type a ticket describes, so that a child decoding it as another is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Lock,
    RLock,
    Condition,
    Value,
    RawValue,
    Array,
    RawArray,
    Semaphore,
    BoundedSemaphore,
    Event,
    Barrier,
}

/// How a shared object is encoded in a child's arguments.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Shared")]
struct Ticket {
    /// Which of the descriptors passed to the child.
    slot: u32,
    kind: Kind,
    /// Number of elements.
    count: u64,
    /// Size and alignment of one element, as the parent saw them.
    size: u64,
    align: u64,
}

/// What a decoded ticket describes.
pub(crate) struct Adopted {
    pub(crate) fd: OwnedFd,
    pub(crate) count: usize,
}

/// Encodes `segment` for a child process; only valid inside `Process::start`.
pub(crate) fn encode<S: Serializer>(
    serializer: S,
    segment: &Segment,
    kind: Kind,
    count: usize,
    (size, align): (usize, usize),
) -> Result<S::Ok, S::Error> {
    if !fds::is_collecting() {
        return Err(refusal::encoding(
            "a flotilla::shared object can only be passed to a child process as an argument of \
             Process::start; it cannot travel to a process pool, through a queue or over a \
             connection",
        ));
    }
    let slot = fds::export(segment.fd.as_fd()).map_err(refusal::encoding)?;
    Ticket {
        slot,
        kind,
        count: count as u64,
        size: size as u64,
        align: align as u64,
    }
    .serialize(serializer)
}

/// Decodes a ticket for `kind` with elements of `size` and `align` bytes and claims its
/// descriptor.
pub(crate) fn decode<'de, D: Deserializer<'de>>(
    deserializer: D,
    kind: Kind,
    (size, align): (usize, usize),
) -> Result<Adopted, D::Error> {
    let ticket = Ticket::deserialize(deserializer)?;
    if ticket.kind != kind {
        return Err(refusal::decoding(format!(
            "a shared {:?} was passed where a {kind:?} was expected",
            ticket.kind
        )));
    }
    if (ticket.size, ticket.align) != (size as u64, align as u64) {
        return Err(refusal::decoding(format!(
            "a shared {kind:?} of {}-byte elements (aligned to {}) was passed where elements of \
             {size} bytes (aligned to {align}) were expected",
            ticket.size, ticket.align
        )));
    }
    let count = usize::try_from(ticket.count)
        .map_err(|_| refusal::decoding("the shared array is too long for this process"))?;
    let fd = fds::claim(ticket.slot).map_err(refusal::decoding)?;
    Ok(Adopted { fd, count })
}

/// The error for a segment that could not be created or mapped.
pub(crate) fn io_error(what: &str, err: io::Error) -> Error {
    Error::Io {
        reason: format!("could not create a shared {what}: {err}"),
    }
}
