//! What Rust's runtime sets up before `main`, done for processes flotilla catches before `main`.
//!
//! A re-executed worker runs inside a constructor, before the standard library's start-up code,
//! so it lacks what every `main` can count on. This module supplies it:
//!
//! - [`sanitize_stdio`]: descriptors 0, 1 and 2 are open (on `/dev/null` if they were closed),
//!   so that nothing the process opens later lands on a standard stream's number;
//! - [`ignore_sigpipe`]: a write to a closed pipe fails with `BrokenPipe` instead of killing the
//!   process;
//! - [`run_as_main`]: the work runs on a thread named `main`, with the stack `main` would have,
//!   and a stack overflow there is reported as one (on standard error, and through the
//!   process's "last words", see [`set_last_words`]) before the process aborts.

use std::io;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Opens `/dev/null` on each of the descriptors 0, 1 and 2 that is closed, as the standard
/// library does before `main`.
pub(crate) fn sanitize_stdio() {
    for fd in 0..3 {
        // SAFETY: fcntl(F_GETFD) on a descriptor number has no memory-safety preconditions.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        if !closed {
            continue;
        }
        // SAFETY: the path is a NUL-terminated string literal. open(2) returns the lowest free
        // descriptor, which is `fd`: every lower one is open (checked or opened just before).
        let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if opened != fd && opened >= 0 {
            // Some other thread raced us to the number; leave the stream closed.
            // SAFETY: `opened` was just returned by open(2) and is owned by nobody else.
            unsafe { libc::close(opened) };
        }
    }
}

/// Makes writes to closed pipes and sockets fail with `EPIPE` instead of raising `SIGPIPE`.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition to "ignore" has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// The stack size `main` gets: the soft `RLIMIT_STACK`, or 8 MiB when that is unlimited or
/// too large to reserve for one thread.
fn main_stack_size() -> usize {
    const DEFAULT: usize = 8 << 20;
    const LARGEST: libc::rlim_t = 1 << 30;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit(2) to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
        || limit.rlim_cur > LARGEST
    {
        return DEFAULT;
    }
    usize::try_from(limit.rlim_cur).map_or(DEFAULT, |size| size.max(DEFAULT / 4))
}

/// Runs `body` on the calling thread, reporting a stack overflow on it as `main` would, and
/// returns its exit code.
///
/// A `Process` child runs its task this way, on the process's first thread, and not on a
/// thread of its own as [`run_as_main`] does: a thread other than the first one that calls
/// `exec` takes over the first one's thread id, so the kernel no longer recognises the robust
/// locks it holds as its own and never marks them as their owner's death; on the first
/// thread, a task that execs holding a `flotilla::shared` lock leaves it reported as
/// `OwnerDied`. The price is the thread's name: Rust's runtime names the first thread `main`
/// only when it starts `main` itself, so the task sees `thread::current().name()` as `None`.
pub(crate) fn run_here(body: impl FnOnce() -> i32) -> i32 {
    watch_this_thread();
    body()
}

/// Runs `body` on a thread named `main` with `main`'s stack size, reporting a stack overflow
/// on it, and returns its exit code (101, as for a panic escaping `main`, if it panics).
pub(crate) fn run_as_main(body: impl FnOnce() -> i32 + Send + 'static) -> i32 {
    let body = move || {
        watch_this_thread();
        body()
    };
    let spawned = std::thread::Builder::new()
        .name("main".to_owned())
        .stack_size(main_stack_size())
        .spawn(body);
    match spawned {
        Ok(thread) => thread.join().unwrap_or(101),
        Err(err) => {
            eprintln!("flotilla: could not start a worker's main thread: {err}");
            2
        }
    }
}

/// The guard area of the watched thread's stack: a fault there is a stack overflow.
static GUARD_START: AtomicUsize = AtomicUsize::new(0);
static GUARD_END: AtomicUsize = AtomicUsize::new(0);

/// A descriptor and the bytes written to it when the process dies of a stack overflow.
static LAST_WORDS: OnceLock<(RawFd, Vec<u8>)> = OnceLock::new();

/// Sets what is sent on `fd` if this process dies of a stack overflow (a frame telling the
/// pool why). Only the first call counts.
pub(crate) fn set_last_words(fd: RawFd, frame: Vec<u8>) {
    let _ = LAST_WORDS.set((fd, frame));
}

/// The size of the alternate signal stack the overflow handler runs on.
fn signal_stack_size() -> usize {
    // SAFETY: getauxval has no preconditions; it returns 0 for an unknown entry.
    let minimum = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) };
    usize::try_from(minimum)
        .unwrap_or(0)
        .max(libc::SIGSTKSZ)
        .max(64 << 10)
}

/// Gives the calling thread an alternate signal stack, records its stack's guard area and
/// installs the overflow handler. Failures leave a plain `SIGSEGV` death, as before.
fn watch_this_thread() {
    let Some(guard) = current_guard() else {
        return;
    };
    let size = signal_stack_size();
    // SAFETY: an anonymous private mapping of `size` bytes; no existing memory is affected.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return;
    }
    let alternate = libc::stack_t {
        ss_sp: stack,
        ss_flags: 0,
        ss_size: size,
    };
    // SAFETY: `alternate` describes the mapping just made, which is never unmapped: it stays
    // this thread's signal stack for as long as the thread runs (the process's lifetime).
    if unsafe { libc::sigaltstack(&alternate, std::ptr::null_mut()) } != 0 {
        return;
    }
    GUARD_START.store(guard.0, Ordering::Relaxed);
    GUARD_END.store(guard.1, Ordering::Release);
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value, filled in below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_fault as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    for signal in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: `action` is fully initialised and `on_fault` only makes async-signal-safe
        // calls; the previous action is not needed.
        unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
    }
}

/// The address range, around the low end of the calling thread's stack, in which a fault
/// means the stack ran out. glibc has placed the guard pages both inside and below the
/// reported stack over the years, so a page size either side counts.
fn current_guard() -> Option<(usize, usize)> {
    // SAFETY: a zeroed pthread_attr_t is only written by pthread_getattr_np, then read and
    // destroyed below.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is valid for writing; pthread_self() is the calling, running thread.
    if unsafe { libc::pthread_getattr_np(libc::pthread_self(), &mut attr) } != 0 {
        return None;
    }
    let mut guard_size = 0;
    let mut stack = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: `attr` was initialised by pthread_getattr_np; the out-pointers are valid.
    let ok = unsafe {
        libc::pthread_attr_getguardsize(&attr, &mut guard_size) == 0
            && libc::pthread_attr_getstack(&attr, &mut stack, &mut size) == 0
    };
    // SAFETY: `attr` was initialised by pthread_getattr_np and is not used after this.
    unsafe { libc::pthread_attr_destroy(&mut attr) };
    if !ok {
        return None;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let reach = guard_size.max(page);
    let low = stack as usize;
    Some((low.saturating_sub(reach), low + reach))
}

/// What a stack overflow prints, as `main` would print it.
const OVERFLOW_MESSAGE: &[u8] =
    b"\nthread 'main' has overflowed its stack\nfatal runtime error: stack overflow, aborting\n";

/// Handles `SIGSEGV` and `SIGBUS`: a fault in the watched thread's guard area is a stack
/// overflow, reported before the process aborts; any other fault gets the default action back
/// and happens again, so the process dies of it as it would have. A signal that was sent
/// rather than caused by a fault (`raise`, `kill`) is sent again for the same reason (where the
/// standard library's handler would let the program carry on).
extern "C" fn on_fault(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler; for SIGSEGV and
    // SIGBUS its address field is the faulting address.
    let address = unsafe { (*info).si_addr() } as usize;
    let end = GUARD_END.load(Ordering::Acquire);
    let start = GUARD_START.load(Ordering::Relaxed);
    if start <= address && address < end {
        // SAFETY: write(2), send(2) and abort(3) are async-signal-safe; the buffers are a
        // static and the contents of a `OnceLock` that, once set, is never changed or freed.
        unsafe {
            libc::write(2, OVERFLOW_MESSAGE.as_ptr().cast(), OVERFLOW_MESSAGE.len());
            if let Some((fd, frame)) = LAST_WORDS.get() {
                libc::send(
                    *fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                );
            }
            libc::abort();
        }
    }
    // SAFETY: a zeroed sigaction with SIG_DFL restores the default action; sigaction(2) and
    // raise(3) are async-signal-safe, and `info` is valid as above. The raised signal stays
    // pending until this handler returns, and then acts by default.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &action, std::ptr::null_mut());
        if (*info).si_code <= 0 {
            libc::raise(signal);
        }
    }
}
