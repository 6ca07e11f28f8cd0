//! The page a pool shares with each of its workers: how far the worker has got with its task.
//!
//! A worker that dies leaves no message behind; the page does. Before any code of a task
//! runs, the worker writes the task's id into the page, and then records each stage it enters
//! (decoding the arguments, running, encoding the result, sending it back) and, in a chunk,
//! which item it is on. After reaping a dead or killed worker, the pool reads the page: a task
//! whose id never reached it provably never started and runs again on a fresh worker;
//! otherwise the task's error names the stage, and a chunk knows which of its items to blame
//! and which never ran.
//!
//! The page also carries a fault for the worker's own machinery to act out, set by the
//! pool for a test ([`Fault`]); nothing else sets it.
//!
//! The page is a sealed memfd of one page, created by the pool and sent over the worker's
//! socket with `SCM_RIGHTS` straight after the worker's greeting, before any request.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use flotilla_core::Stage;

/// The size of the page.
const LEN: usize = 4096;

/// The seals the page carries, so that neither side can resize it under the other's mapping.
const SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;

/// The one byte that carries the page's descriptor.
const TAG: u8 = b'P';

/// What the page holds; each cell is written by one side only.
#[repr(C)]
struct Cells {
    /// The id of the task the worker last began (worker).
    task: AtomicU64,
    /// Where it is with that task: `item << 8 | stage code` (worker).
    at: AtomicU64,
    /// A [`Fault`] for the next request, encoded (pool); the worker clears it when it acts.
    fault: AtomicU64,
}

/// A shared page, mapped; unmapped on drop.
#[derive(Debug)]
pub(crate) struct Page {
    base: NonNull<Cells>,
    fd: OwnedFd,
}

// SAFETY: the mapping is only ever accessed through the atomics in `Cells`, from any thread
// and any process; the descriptor is an ordinary file descriptor.
unsafe impl Send for Page {}
// SAFETY: as for `Send`: every access is atomic.
unsafe impl Sync for Page {}

impl Page {
    /// A fresh, zeroed page (the pool's side).
    pub(crate) fn create() -> io::Result<Page> {
        // SAFETY: the name is a NUL-terminated literal that outlives the call.
        let raw = unsafe {
            libc::memfd_create(
                c"flotilla-progress".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate and fcntl on a descriptor we own have no memory-safety
        // preconditions.
        let sized = unsafe {
            libc::ftruncate(fd.as_raw_fd(), LEN as libc::off_t) == 0
                && libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) == 0
        };
        if !sized {
            return Err(io::Error::last_os_error());
        }
        Page::map(fd)
    }

    /// Maps a page received from the pool (the worker's side), once it has checked that the
    /// page is sealed at its full size.
    fn adopt(fd: OwnedFd) -> io::Result<Page> {
        // SAFETY: fcntl(F_GET_SEALS) on a descriptor we own has no memory-safety
        // preconditions.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `stat` is a valid, writable `struct stat` for the duration of the call.
        let stated = unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } == 0;
        if seals == -1 || seals & SEALS != SEALS || !stated || stat.st_size != LEN as i64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the pool sent something other than a sealed progress page",
            ));
        }
        Page::map(fd)
    }

    fn map(fd: OwnedFd) -> io::Result<Page> {
        // SAFETY: a fresh mapping chosen by the kernel (null hint, no MAP_FIXED) aliases no
        // Rust object; the memfd is sealed at `LEN` bytes, so every mapped byte stays backed.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast::<Cells>()).ok_or(io::ErrorKind::AddrNotAvailable)?;
        Ok(Page { base, fd })
    }

    fn cells(&self) -> &Cells {
        // SAFETY: the mapping is `LEN` bytes, page-aligned (more than `Cells` needs), larger
        // than `Cells`, and lives as long as `self`; its bytes start zeroed and are only ever
        // written through these atomics (here or in the peer process), and atomics have no
        // invalid bit patterns.
        unsafe { self.base.as_ref() }
    }

    /// Sends the page's descriptor over `socket`, before any request (the pool's side).
    pub(crate) fn send(&self, socket: BorrowedFd<'_>) -> io::Result<()> {
        send_fd(socket, self.fd.as_raw_fd())
    }

    /// Records that the worker has read task `task`'s request in full and is about to decode
    /// its arguments.
    pub(crate) fn begin(&self, task: u64) {
        let cells = self.cells();
        cells.at.store(code(Stage::DecodeArgs), Ordering::Release);
        cells.task.store(task, Ordering::Release);
    }

    /// Records that the current task (item `item` of a chunk) has reached `stage`.
    pub(crate) fn note(&self, stage: Stage, item: u32) {
        self.cells()
            .at
            .store(u64::from(item) << 8 | code(stage), Ordering::Release);
    }

    /// Where task `task` had got to in the worker, or `None` if the worker never began it.
    /// Read once the worker is dead (or stopped), so the page no longer moves.
    pub(crate) fn position(&self, task: u64) -> Option<(Stage, u32)> {
        let cells = self.cells();
        if cells.task.load(Ordering::Acquire) != task {
            return None;
        }
        let at = cells.at.load(Ordering::Acquire);
        let stage = match at & 0xff {
            2 => Stage::Run,
            3 => Stage::EncodeResult,
            4 => Stage::SendResult,
            _ => Stage::DecodeArgs,
        };
        Some((stage, u32::try_from(at >> 8).unwrap_or(u32::MAX)))
    }

    /// Sets (or clears) the fault the worker acts out during the next request.
    pub(crate) fn set_fault(&self, fault: Option<Fault>) {
        let encoded = fault.map_or(0, |f| (f.point as u64) << 8 | f.action as u64);
        self.cells().fault.store(encoded, Ordering::Release);
    }

    /// Takes the fault set for `point`, if there is one (the worker's side).
    pub(crate) fn take_fault(&self, point: FaultPoint) -> Option<FaultAction> {
        let cells = self.cells();
        let encoded = cells.fault.load(Ordering::Acquire);
        if encoded == 0 || encoded >> 8 != point as u64 {
            return None;
        }
        cells.fault.store(0, Ordering::Release);
        FaultAction::ALL
            .into_iter()
            .find(|action| *action as u64 == encoded & 0xff)
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: `base` and `LEN` describe the mapping made in `map`, unmapped only here;
        // every reference into it borrows `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), LEN) };
    }
}

fn code(stage: Stage) -> u64 {
    match stage {
        Stage::Run => 2,
        Stage::EncodeResult => 3,
        Stage::SendResult => 4,
        _ => 1,
    }
}

/// This worker's page, once received.
static WORKER_PAGE: OnceLock<Page> = OnceLock::new();

/// Receives the page the pool sends after the greeting and keeps it for [`note`] (the
/// worker's side).
pub(crate) fn receive(socket: BorrowedFd<'_>) -> io::Result<&'static Page> {
    let page = Page::adopt(receive_fd(socket)?)?;
    Ok(WORKER_PAGE.get_or_init(|| page))
}

/// Records in this worker's page, if it has one, that the current task (item `item` of a
/// chunk) has reached `stage`. Outside a pool worker it does nothing.
pub(crate) fn note(stage: Stage, item: u32) {
    if let Some(page) = WORKER_PAGE.get() {
        page.note(stage, item);
    }
}

/// Where in a worker's own machinery a [`Fault`] strikes.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// Half-way through reading the request: the pool is sending the arguments.
    Receive = 1,
    /// Half-way through writing the reply: the result is on its way back.
    Reply = 2,
    /// Just after the reply was written, before the pool has read it.
    AfterReply = 3,
}

/// What a [`Fault`] does.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Panics (in the worker's machinery, which aborts on a panic).
    Panic = 1,
    /// Calls `abort`.
    Abort = 2,
    /// Sends itself `SIGKILL`.
    Kill = 3,
    /// Calls `exit(9)`.
    Exit = 4,
    /// Garbles the message: the request read, or the reply written.
    Garbage = 5,
    /// Stops making progress, for ever.
    Hang = 6,
}

impl FaultAction {
    const ALL: [FaultAction; 6] = [
        FaultAction::Panic,
        FaultAction::Abort,
        FaultAction::Kill,
        FaultAction::Exit,
        FaultAction::Garbage,
        FaultAction::Hang,
    ];

    /// Acts out every action but [`FaultAction::Garbage`], which the caller garbles itself;
    /// returns only for that one.
    pub(crate) fn strike(self) {
        match self {
            FaultAction::Panic => panic!("a fault injected into the worker's machinery"),
            FaultAction::Abort => std::process::abort(),
            FaultAction::Kill => {
                // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
            FaultAction::Exit => std::process::exit(9),
            FaultAction::Garbage => {}
            FaultAction::Hang => loop {
                std::thread::park();
            },
        }
    }
}

/// A failure for a worker's own machinery to act out on one task, so that tests can make
/// every stage of a task's journey fail for real. Not part of the API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Where it strikes.
    pub point: FaultPoint,
    /// What it does.
    pub action: FaultAction,
    /// Strike again in each fresh worker the task is retried on, not only the first.
    pub every_attempt: bool,
}

/// Room for one `cmsghdr` carrying one descriptor, aligned as `cmsghdr` requires.
#[repr(C, align(8))]
struct Control([u8; 32]);

fn send_fd(socket: BorrowedFd<'_>, fd: RawFd) -> io::Result<()> {
    let tag = [TAG];
    let mut iov = libc::iovec {
        iov_base: tag.as_ptr().cast_mut().cast(),
        iov_len: 1,
    };
    let mut control = Control([0; 32]);
    // SAFETY: an all-zero `msghdr` is a valid value of this plain C struct.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    // SAFETY: `msg` points at `control`, which is aligned for `cmsghdr` and large enough for
    // one header and one descriptor (CMSG_SPACE(4) is 24 bytes here), so the first header is
    // in bounds and writable, and so is its data.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<RawFd>(), fd);
    }
    loop {
        // SAFETY: `msg` and everything it points to (`iov`, `tag`, `control`) live across the
        // call; sendmsg only reads them.
        let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        match sent {
            1 => return Ok(()),
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            -1 => return Err(io::Error::last_os_error()),
            _ => return Err(io::ErrorKind::WriteZero.into()),
        }
    }
}

fn receive_fd(socket: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut tag = [0u8];
    let mut iov = libc::iovec {
        iov_base: tag.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = Control([0; 32]);
    // SAFETY: an all-zero `msghdr` is a valid value of this plain C struct.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len();
    let received = loop {
        // SAFETY: `msg` points at `iov` (one writable byte) and `control` (32 writable
        // bytes), all alive across the call.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n != -1 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break n;
        }
    };
    let refused = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    match received {
        -1 => return Err(io::Error::last_os_error()),
        0 => return Err(io::ErrorKind::UnexpectedEof.into()),
        _ if tag[0] != TAG || msg.msg_flags & libc::MSG_CTRUNC != 0 => {
            return Err(refused("the pool's first message is not a progress page"));
        }
        _ => {}
    }
    // SAFETY: recvmsg filled `control` with at most `msg_controllen` bytes and set that
    // length; CMSG_FIRSTHDR returns null or a header inside it, and the length check makes
    // the data read in bounds.
    let fd = unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        if header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
            || (*header).cmsg_len != libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize
        {
            return Err(refused(
                "the pool's progress page came without its descriptor",
            ));
        }
        std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<RawFd>())
    };
    // SAFETY: the kernel just installed this descriptor in this process for us (close-on-exec,
    // thanks to MSG_CMSG_CLOEXEC); nothing else knows of it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_page_sent_over_a_socket_is_shared() {
        let (pool, worker) = UnixStream::pair().unwrap();
        let ours = Page::create().unwrap();
        ours.send(pool.as_fd()).unwrap();
        let theirs = Page::adopt(receive_fd(worker.as_fd()).unwrap()).unwrap();
        assert_eq!(ours.position(7), None);
        theirs.begin(7);
        assert_eq!(ours.position(7), Some((Stage::DecodeArgs, 0)));
        theirs.note(Stage::EncodeResult, 41);
        assert_eq!(ours.position(7), Some((Stage::EncodeResult, 41)));
        assert_eq!(ours.position(8), None);
        let fault = Fault {
            point: FaultPoint::Reply,
            action: FaultAction::Hang,
            every_attempt: false,
        };
        ours.set_fault(Some(fault));
        assert_eq!(theirs.take_fault(FaultPoint::Receive), None);
        assert_eq!(
            theirs.take_fault(FaultPoint::Reply),
            Some(FaultAction::Hang)
        );
        assert_eq!(theirs.take_fault(FaultPoint::Reply), None);
    }

    #[test]
    fn anything_but_a_page_is_refused() {
        let (pool, worker) = UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut &pool, b"P").unwrap();
        assert!(receive_fd(worker.as_fd()).is_err());
        drop(pool);
        assert!(receive_fd(worker.as_fd()).is_err());
    }
}
