//! The few raw system calls this module needs, each wrapped once with its safety argument.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Writes all of `bytes` to the socket `fd` without raising `SIGPIPE` when the peer is gone
/// (the error comes back as `EPIPE` instead). A child process runs its task before Rust's
/// `main` would have ignored `SIGPIPE`, so a plain `write` could kill it.
pub fn send_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: `fd` is an open descriptor borrowed for the duration of the call, and the
        // pointer and length describe the live slice `bytes`.
        let sent = unsafe {
            libc::send(
                fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        match usize::try_from(sent) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(_) => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
    Ok(())
}

/// Waits until `fd` is readable, at end of file or in error, for at most `timeout` (forever
/// when `None`, or too far ahead to represent). Returns whether it is.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    wait_any(&[fd], timeout).map(|ready| !ready.is_empty())
}

/// Waits until at least one of `fds` is readable, at end of file or in error, for at most
/// `timeout` (forever when `None`). Returns the positions in `fds` of those that are, in
/// order; empty if the time ran out (or `fds` is empty, which returns at once).
pub fn wait_any(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    if fds.is_empty() {
        return Ok(Vec::new());
    }
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        })
        .collect();
    let count = libc::nfds_t::try_from(polls.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let deadline = timeout.map(|t| std::time::Instant::now().checked_add(t));
    loop {
        let millis = match deadline {
            None | Some(None) => -1,
            Some(Some(deadline)) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                // Round up so that a sub-millisecond remainder still waits.
                let millis = left.as_micros().div_ceil(1000);
                libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX)
            }
        };
        // SAFETY: `polls` holds `count` valid, initialised pollfd structs for the duration of
        // the call, and each descriptor is borrowed (open) for as long as `fds` is.
        let ready = unsafe { libc::poll(polls.as_mut_ptr(), count, millis) };
        match ready {
            1.. => {
                return Ok(polls
                    .iter()
                    .enumerate()
                    .filter(|(_, poll)| poll.revents != 0)
                    .map(|(at, _)| at)
                    .collect());
            }
            0 if millis == 0 => return Ok(Vec::new()),
            0 => {} // woke early; the deadline decides
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
        if let Some(Some(deadline)) = deadline
            && std::time::Instant::now() >= deadline
        {
            return Ok(Vec::new());
        }
    }
}

/// A pipe whose two ends are close-on-exec: `(read end, write end)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut ends = [0 as RawFd; 2];
    // SAFETY: `ends` is a valid, writable array of two descriptors, as pipe2(2) requires.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two new descriptors, which nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) })
}

/// A close-on-exec descriptor for process `pid` that becomes readable when the process ends
/// (`pidfd_open(2)`, Linux 5.3). The caller must know that `pid` names the process it means
/// (its child not yet reaped, or its parent while `getppid()` still returns it).
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a pid and flags and has no memory-safety preconditions.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the system call just returned this new descriptor, which nothing else owns
    // (pidfds are always close-on-exec).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The id of this process's parent right now (after the parent dies, its adopter's).
pub fn parent_pid() -> u32 {
    // SAFETY: getppid(2) has no preconditions and cannot fail.
    u32::try_from(unsafe { libc::getppid() }).unwrap_or(0)
}

/// Fills `N` bytes from the kernel's random number generator.
pub fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: the pointer and length describe the unfilled tail of `bytes`, which lives
        // for the duration of the call.
        let got = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), N - filled, 0) };
        match usize::try_from(got) {
            Ok(n) => filled += n,
            Err(_) => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
    Ok(bytes)
}

/// Duplicates `fd` as a close-on-exec descriptor numbered 3 or above, clear of the standard
/// streams, which a child's stdio setup overwrites (this process may have closed one).
pub fn dup_above_stdio(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a borrowed, open descriptor has no memory-safety
    // preconditions.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if copy == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl just returned this new descriptor, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Sets close-on-exec on `fd`, so that grandchildren do not inherit it by accident.
pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) on a descriptor number has no memory-safety preconditions; at
    // worst it fails with EBADF.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The process id and user id of the process at the other end of the Unix socket `fd`, as
/// they were when the connection was made (`SO_PEERCRED`).
pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid, writable ucred and `len` holds its size, as SO_PEERCRED
    // requires; `fd` is open for the duration of the call.
    let got = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if got == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok((u32::try_from(cred.pid).unwrap_or(0), cred.uid))
}

/// Turns on TCP keepalive for the socket `fd`: after `idle` without traffic, a probe every
/// `interval`, and the connection fails after `count` unanswered ones; and data left
/// unacknowledged for `idle + interval * count` fails it too (`TCP_USER_TIMEOUT`). So a peer
/// whose host or network went silent is noticed within that time, instead of never.
pub fn keep_alive(
    fd: BorrowedFd<'_>,
    idle: Duration,
    interval: Duration,
    count: u32,
) -> io::Result<()> {
    let seconds =
        |d: Duration| libc::c_int::try_from(d.as_secs().max(1)).unwrap_or(libc::c_int::MAX);
    let give_up = idle + interval * count;
    let millis = libc::c_int::try_from(give_up.as_millis()).unwrap_or(libc::c_int::MAX);
    let options = [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, seconds(idle)),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, seconds(interval)),
        (
            libc::IPPROTO_TCP,
            libc::TCP_KEEPCNT,
            libc::c_int::try_from(count).unwrap_or(libc::c_int::MAX),
        ),
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, millis),
    ];
    for (level, name, value) in options {
        // SAFETY: the option value is a live c_int and the length is its size; `fd` is open
        // for the duration of the call.
        let set = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&raw const value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
