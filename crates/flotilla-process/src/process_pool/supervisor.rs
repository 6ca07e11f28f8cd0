//! The supervisor of one pool worker: the process that makes sure nothing a task started
//! outlives the worker.
//!
//! A pool starts each worker in two steps. The process the pool executes becomes the
//! supervisor: it makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`), forks the worker
//! into a process group of its own, drops its copy of the pool's socket and waits. It never runs
//! user code, so its signal handling and its children are its own:
//!
//! - when the worker ends, however it ends, the supervisor kills the worker's process group
//!   (before reaping the worker, so the group's number cannot have been reused), then kills
//!   every process that was reparented to it: a task's children and grandchildren, even those
//!   that double-forked or moved to a session of their own, come to the subreaper when their
//!   parents die. Then it exits the way the worker did (the same code, or the same signal), so
//!   the pool reports the worker's end unchanged;
//! - `SIGTERM` (the pool's way of killing a worker: for a timeout, `cancel()`, a shutdown that
//!   kills), `SIGINT`, `SIGHUP` and `SIGQUIT` make it kill the worker's group at once, and clean
//!   up as above;
//! - `SIGUSR1` (the pool's `terminate_workers()`) makes it send `SIGTERM` to the worker alone,
//!   which may handle it; when the worker ends, it cleans up as above;
//! - its parent-death signal is `SIGTERM`, so when the pool's process dies, even by `SIGKILL`,
//!   the worker and everything it started are killed.
//!
//! Only the supervisor reaps its children, so a process id it reads as its child's stays that
//! child's until it reaps it: killing by process id cannot hit a recycled id.
//!
//! What escapes: a process that a task's children hand to another subreaper or to a PID
//! namespace of its own, and everything the worker started if the supervisor itself is killed
//! with `SIGKILL` (the worker then dies with it, its children are orphaned to init).

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// How long the supervisor keeps killing reparented processes before it gives up on the
/// ones that will not die (stuck in the kernel) and exits anyway.
const CLEANUP_LIMIT: Duration = Duration::from_secs(10);

/// The signals the supervisor waits for, blocked so that they queue instead of acting.
fn watched() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset adds valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
        ] {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Splits this process into the supervisor and the worker. Returns in the worker, as the
/// leader of a new process group whose parent is the supervisor; the supervisor never returns.
///
/// # Errors
///
/// The operating system's error if the worker cannot be forked, or if the supervisor died
/// before the worker could arrange to die with it.
///
/// # Safety
///
/// Must be called before `main`, while the process has a single thread: the forked worker
/// goes on running Rust code, which is only sound if no other thread held a lock at the fork.
pub(crate) unsafe fn split(socket: RawFd) -> io::Result<()> {
    let set = watched();
    // SAFETY: a zeroed sigset_t is a valid value for sigprocmask to overwrite.
    let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are valid; blocking signals has no memory-safety preconditions.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut previous) };
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes an integer flag and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    // SAFETY: getpid has no preconditions.
    let supervisor = unsafe { libc::getpid() };
    // SAFETY: the caller guarantees a single thread, so the child inherits no held lock.
    match unsafe { libc::fork() } {
        -1 => {
            let err = io::Error::last_os_error();
            // SAFETY: restores the mask saved above.
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) };
            Err(err)
        }
        0 => {
            // SAFETY: these calls take plain integers (and the saved mask) and touch no other
            // memory. The group is set here and by the supervisor, whichever runs first.
            unsafe {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != supervisor {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                libc::sigprocmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
            }
            Ok(())
        }
        worker => {
            // SAFETY: `worker` is our unreaped child; `socket` is this process's copy of the
            // pool's socket, which only the worker may keep (so that its end is seen at once).
            unsafe {
                libc::setpgid(worker, worker);
                libc::close(socket);
            }
            supervise(worker, &set)
        }
    }
}

/// Waits for the worker to end (killing its group on request), cleans up, and exits as the
/// worker did.
fn supervise(worker: libc::pid_t, set: &libc::sigset_t) -> ! {
    let status = loop {
        // SAFETY: `set` is a valid signal set; a null info pointer is allowed.
        let signal = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if signal == libc::SIGUSR1 {
            terminate(worker);
        } else if signal > 0 && signal != libc::SIGCHLD {
            kill_group(worker);
        }
        if let Some(status) = collect(worker) {
            break status;
        }
    };
    clear_orphans(set);
    exit_as(status)
}

/// Kills the worker's process group. Only called while the worker is unreaped, so its id,
/// which is the group's, still names that group.
fn kill_group(worker: libc::pid_t) {
    // SAFETY: killpg has no memory-safety preconditions; see above for why the id is right.
    unsafe { libc::killpg(worker, libc::SIGKILL) };
}

/// Sends `SIGTERM` to the worker alone, as `multiprocessing`'s `terminate()` does: the task may
/// handle it. Only called while the worker is unreaped, so its id is still its own.
fn terminate(worker: libc::pid_t) {
    // SAFETY: kill has no memory-safety preconditions; see above for why the id is right.
    unsafe { libc::kill(worker, libc::SIGTERM) };
}

/// Reaps every exited child except the worker; if the worker has exited, kills what is left
/// of its group, reaps it and returns its wait status.
fn collect(worker: libc::pid_t) -> Option<libc::c_int> {
    // Bounded by the number of children: each pass reaps one.
    loop {
        // SAFETY: a zeroed siginfo_t is valid for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is valid for writing; WNOWAIT leaves the child waitable.
        let found = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: waitid filled `info` (or left it zeroed, which reads as pid 0).
        let pid = unsafe { info.si_pid() };
        if found != 0 || pid == 0 {
            return None;
        }
        let mut status = 0;
        if pid == worker {
            kill_group(worker);
            // SAFETY: `status` is valid for writing; `worker` is our exited child.
            unsafe { libc::waitpid(worker, &mut status, 0) };
            return Some(status);
        }
        // SAFETY: as above, for a reparented descendant that exited.
        unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    }
}

/// Kills and reaps every child this supervisor still has (processes the worker's tasks
/// started, reparented here as their parents died), until none is left or the time is up.
fn clear_orphans(set: &libc::sigset_t) {
    let deadline = Instant::now() + CLEANUP_LIMIT;
    loop {
        // Reap every child that has exited; stop once there is none at all.
        loop {
            let mut status = 0;
            // SAFETY: `status` is valid for writing.
            let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if reaped > 0 {
                continue;
            }
            if reaped == 0 {
                break;
            }
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return; // ECHILD: no children left
        }
        for child in children() {
            // SAFETY: kill has no memory-safety preconditions, and `child` is an unreaped
            // child of this process, which alone reaps its children, so the id is its own.
            unsafe { libc::kill(child, libc::SIGKILL) };
        }
        if Instant::now() >= deadline {
            return;
        }
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        // SAFETY: `set` and `pause` are valid; a null info pointer is allowed.
        unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &pause) };
    }
}

/// The ids of this process's children, read from `/proc`.
fn children() -> Vec<libc::pid_t> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: libc::pid_t = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold anything, so split after its end.
            let rest = &stat[stat.rfind(')')? + 1..];
            let ppid: libc::pid_t = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == me).then_some(pid)
        })
        .collect()
}

/// Ends this process the way the worker ended: with its exit code, or killed by its signal
/// (without a core dump: the crash was the worker's, not the supervisor's).
fn exit_as(status: libc::c_int) -> ! {
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: these calls take plain values and valid pointers to locals; raising the
        // signal with its default action ends the process (the mask no longer blocks it).
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(signal, libc::SIG_DFL);
            let mut only: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut only);
            libc::sigaddset(&mut only, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
            libc::raise(signal);
        }
        std::process::exit(128 + signal);
    }
    std::process::exit(1)
}
