//! What a child inherits. A `Process` child and a pool worker are started by the same spawn
//! step (flotilla-process's `spawn` module), which keeps open across exec the descriptors
//! flotilla passes (the control socket, a `Process`'s connections) and the standard streams,
//! and nothing else: a descriptor this process left inheritable by mistake (no close-on-exec)
//! leaks into neither, as with Python's `close_fds=True`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;

use flotilla::process::{Process, pipe};
use flotilla::{Executor, ProcessPoolExecutor};

/// Whether descriptor `fd` is open in this process.
#[flotilla::task]
fn is_open(fd: i32) -> bool {
    std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists()
}

/// Exits with 10 if `fd` is closed here, 11 if it is open.
#[flotilla::task]
fn exit_with_open(fd: i32) {
    std::process::exit(10 + i32::from(is_open(fd)));
}

/// Sends whether `fd` is open back over the connection it was given.
#[flotilla::task]
fn report_open(fd: i32, back: flotilla::process::Connection<bool>) {
    back.send(&is_open(fd)).unwrap();
}

/// A descriptor above the standard streams without close-on-exec: every child that does not
/// close it inherits it. Checked with a plain `Command`, so the tests below prove something.
fn leaky() -> OwnedFd {
    let file = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: F_DUPFD on an open descriptor returns a new one (no close-on-exec) or -1.
    let fd = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD, 3) };
    assert!(fd > 2, "{}", std::io::Error::last_os_error());
    // SAFETY: fcntl just returned this descriptor, which nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let plain = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("[ -e /proc/$$/fd/{} ]", fd.as_raw_fd()))
        .status()
        .unwrap();
    assert!(
        plain.success(),
        "a plain child inherits the leaky descriptor"
    );
    fd
}

#[test]
fn a_process_child_does_not_inherit_a_leaky_descriptor() {
    let fd = leaky();
    for daemon in [false, true] {
        let child = Process::new(ExitWithOpenTask, fd.as_raw_fd())
            .with_daemon(daemon)
            .start()
            .unwrap();
        child.join();
        assert_eq!(child.exitcode(), Some(10), "daemon: {daemon}");
    }
}

#[test]
fn a_process_child_keeps_the_connections_it_was_passed_and_nothing_else() {
    let fd = leaky();
    let (ours, theirs) = pipe::<bool>().unwrap();
    let child = Process::new(ReportOpenTask, (fd.as_raw_fd(), theirs))
        .start()
        .unwrap();
    assert!(
        !ours.recv().unwrap(),
        "the leaky descriptor reached the child"
    );
    child.join();
    assert_eq!(child.exitcode(), Some(0));
}

#[test]
fn a_pool_worker_does_not_inherit_a_leaky_descriptor() {
    let fd = leaky();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    assert!(
        !pool
            .submit(IsOpenTask, fd.as_raw_fd())
            .unwrap()
            .result()
            .unwrap()
    );
}
