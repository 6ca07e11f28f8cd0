//! The one way flotilla starts a child: this same program, re-executed and caught before
//! `main` by flotilla's entry (`entry`), for a [`Process`](crate::process::Process) child and a
//! pool worker alike.
//!
//! [`re_exec`] builds the command: the program (`/proc/self/exe`, so a rebuild or deletion of
//! the file since start does not matter) with the parent's `argv[0]`, a flag naming the child's
//! role (for `ps`), the environment marker through which the entry finds its control
//! descriptor, standard input on `/dev/null`, and the step between fork and exec
//! ([`Prepare`]):
//!
//! - only the descriptors listed, and the standard streams, survive exec: every other one is
//!   marked close-on-exec in the child, so nothing of the parent leaks into it by accident (a
//!   descriptor some library opened without close-on-exec, say), as with Python's
//!   `close_fds=True`;
//! - optionally the child gets a signal when the thread that forked it ends
//!   (`PR_SET_PDEATHSIG`), and does not start at all if its parent died before that was armed.
//!
//! Which thread forks stays with the caller, because the death signal follows that thread: a
//! `Process` is forked by the spawner thread, which lives as long as the process; a pool worker
//! by its slot thread.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::process::fds;

/// The program a child runs: this one, as it was started.
pub(crate) const PROGRAM: &str = "/proc/self/exe";

/// The command that re-executes this program as a child: `flag` says what it is, `marker`
/// names the environment variable that hands it `control` (kept open across exec, as are
/// `passed`). With `death_signal`, the child receives that signal when the calling thread ends.
pub(crate) fn re_exec(
    flag: &str,
    marker: &str,
    control: RawFd,
    passed: &[RawFd],
    death_signal: Option<libc::c_int>,
) -> Command {
    let mut command = Command::new(PROGRAM);
    if let Some(arg0) = std::env::args_os().next() {
        command.arg0(arg0);
    }
    command
        .arg(flag)
        .env(marker, control.to_string())
        .stdin(Stdio::null());
    let mut keep = passed.to_vec();
    keep.push(control);
    let mut prepare = Prepare::keeping(keep);
    if let Some(signal) = death_signal {
        prepare = prepare.die_with_parent(signal);
    }
    prepare.install(&mut command);
    command
}

/// What a child does between fork and exec: which descriptors it keeps, and whether it dies
/// with the thread that forked it. Everything it needs is computed before the fork, so that
/// the step itself allocates nothing and takes no locks.
#[derive(Clone, Debug)]
pub(crate) struct Prepare {
    /// The descriptors (besides the standard streams) that survive exec.
    keep: Vec<RawFd>,
    /// The death signal, and the parent's pid, which the child checks once it is armed.
    death: Option<(libc::c_int, libc::pid_t)>,
}

impl Prepare {
    /// Keeps `keep` (and the standard streams) open across exec, nothing else.
    pub(crate) fn keeping(keep: Vec<RawFd>) -> Prepare {
        Prepare { keep, death: None }
    }

    /// Sends `signal` to the child when the thread that forks it ends (even when the whole
    /// process is killed with `SIGKILL`); a child whose parent is already gone by then fails
    /// to start with `ESRCH`.
    pub(crate) fn die_with_parent(mut self, signal: libc::c_int) -> Prepare {
        let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        self.death = Some((signal, parent));
        self
    }

    /// Makes `command` run this step in its child, between fork and exec.
    pub(crate) fn install(self, command: &mut Command) {
        // SAFETY: `run` only makes async-signal-safe system calls (close_range, fcntl, prctl,
        // getppid), allocates nothing (its lists were built before the fork, and its errors
        // are raw OS codes) and takes no locks, so it may run in the forked child.
        unsafe {
            command.pre_exec(move || self.run());
        }
    }

    /// The step itself, in the forked child.
    fn run(&self) -> io::Result<()> {
        // Nothing of this process goes to the child but what is kept (kernels before 5.11
        // lack close_range; there, descriptors opened without close-on-exec still leak).
        // SAFETY: close_range(CLOSE_RANGE_CLOEXEC) only sets a flag in this (the child's)
        // descriptor table; it has no memory-safety preconditions.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
        }
        fds::keep_across_exec(&self.keep)?;
        if let Some((signal, parent)) = self.death {
            // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) } == -1 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } != parent {
                // The parent died before the death signal was armed. (A raw OS error,
                // because building a custom one would allocate after fork.)
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    use super::{PROGRAM, Prepare, re_exec};
    use crate::process::sys;

    /// A descriptor above the standard streams, without close-on-exec in this process: one
    /// that would leak into every child unless the child closes it.
    fn leaky() -> OwnedFd {
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = sys::dup_above_stdio(a.as_fd()).unwrap();
        // SAFETY: fcntl(F_SETFD) on an open descriptor we own.
        assert_ne!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) }, -1);
        fd
    }

    fn cloexec(fd: &OwnedFd) -> bool {
        // SAFETY: fcntl(F_GETFD) on an open descriptor we own.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        flags & libc::FD_CLOEXEC != 0
    }

    /// Whether a shell started with `prepare` sees descriptor `fd` open.
    fn open_in_child(prepare: Prepare, fd: &OwnedFd) -> bool {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("[ -e /proc/$$/fd/{} ]", fd.as_raw_fd()));
        prepare.install(&mut command);
        command.status().unwrap().success()
    }

    #[test]
    fn only_the_listed_descriptors_survive_exec() {
        let kept = leaky();
        let other = leaky();
        let private = sys::dup_above_stdio(kept.as_fd()).unwrap();
        assert!(cloexec(&private));
        let keep = || Prepare::keeping(vec![kept.as_raw_fd(), private.as_raw_fd()]);
        assert!(open_in_child(keep(), &kept));
        assert!(
            open_in_child(keep(), &private),
            "a kept close-on-exec one survives"
        );
        assert!(!open_in_child(keep(), &other), "an inheritable one leaked");
        // The flags changed in the child's table only.
        assert!(cloexec(&private));
        assert!(!cloexec(&other));
    }

    #[test]
    fn a_child_armed_to_die_with_its_thread_dies_when_that_thread_ends() {
        let mut command = Command::new("/bin/sh");
        // Reads until the test closes its stdin: if no signal came, it exits with 7.
        command
            .args(["-c", "read line; exit 7"])
            .stdin(Stdio::piped());
        Prepare::keeping(Vec::new())
            .die_with_parent(libc::SIGKILL)
            .install(&mut command);
        let mut child = std::thread::spawn(move || command.spawn().unwrap())
            .join()
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }

    #[test]
    fn without_a_death_signal_a_child_outlives_the_thread_that_forked_it() {
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", "read line; exit 7"])
            .stdin(Stdio::piped());
        Prepare::keeping(Vec::new()).install(&mut command);
        let mut child = std::thread::spawn(move || command.spawn().unwrap())
            .join()
            .unwrap();
        // The forking thread is gone; the child still reads what comes.
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(7));
    }

    #[test]
    fn re_exec_runs_this_program_with_its_role_and_marker() {
        let command = re_exec("--flotilla-test", "FLOTILLA_TEST_FD", 9, &[10, 11], None);
        assert_eq!(command.get_program(), PROGRAM);
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["--flotilla-test"]);
        let marker: Vec<_> = command
            .get_envs()
            .filter(|(key, _)| *key == "FLOTILLA_TEST_FD")
            .collect();
        assert_eq!(marker, [("FLOTILLA_TEST_FD".as_ref(), Some("9".as_ref()))]);
    }
}
