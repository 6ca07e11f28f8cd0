//! A process killed in the middle of *waking* others — inside `Event::set`,
//! `Semaphore::release`, `BoundedSemaphore::release`, the `Barrier::wait` that trips the
//! barrier, or `ConditionGuard::notify` — never leaves a live waiter asleep through a change
//! it made: either the change is not there, or the waiter sees it without anyone else having
//! to touch the primitive.
//!
//! The kill lands at the worst moment there is, chosen by a seccomp filter that kills the
//! waker the instant it makes the system call that wakes the sleepers (`futex(FUTEX_WAKE,
//! INT_MAX)` on a shared word: only a `flotilla::shared` wake-up makes it). Before this was
//! fixed, the change (the flag set, the permit added, the barrier tripped, the notify
//! recorded) was already made at that point, and the waiters slept on until some other
//! process happened to take the primitive's mutex.

use std::fmt::Debug;
use std::sync::mpsc;
use std::time::Duration;

use flotilla::process::Process;
use flotilla::shared::{Barrier, BoundedSemaphore, Condition, Event, LockError, Semaphore};

#[path = "support/asleep.rs"]
mod asleep;
#[path = "support/children.rs"]
mod children;
#[path = "support/watchdog.rs"]
mod watchdog;

use asleep::waiting_thread;
use children::{PATIENCE, start};
use watchdog::watchdog;

/// A waiter woken by a change sees it within this (at once, really); one that has not is
/// asleep through it, unless the change was never made.
const SEES_IT_WITHIN: Duration = Duration::from_secs(2);

/// The whole of a test ends within this or fails with "hang".
const LIMIT: Duration = Duration::from_secs(60);

/// One BPF instruction.
fn bpf(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: u16::try_from(code).expect("BPF codes fit in 16 bits"),
        jt,
        jf,
        k,
    }
}

/// Where the low 32 bits of system-call argument `i` sit in `struct seccomp_data`.
fn arg_low(i: usize) -> u32 {
    let at = std::mem::offset_of!(libc::seccomp_data, args) + 8 * i;
    let at = if cfg!(target_endian = "little") {
        at
    } else {
        at + 4
    };
    u32::try_from(at).unwrap()
}

/// From here on, the calling thread is killed (with its process, by SIGSYS, no core dump) the
/// moment it calls `futex(_, FUTEX_WAKE, INT_MAX, ..)`: the wake-up of every sleeper on a
/// shared futex word. glibc's process-shared mutexes wake one sleeper at a time and std's
/// futexes are private (`FUTEX_WAKE_PRIVATE`), so only a `flotilla::shared` wake-up matches.
fn die_at_the_next_wake_up() {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads a valid rlimit that outlives the call.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) }, 0);
    let nr = u32::try_from(std::mem::offset_of!(libc::seccomp_data, nr)).unwrap();
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let equals = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let mut program = [
        bpf(load, nr, 0, 0),
        bpf(equals, u32::try_from(libc::SYS_futex).unwrap(), 0, 5),
        bpf(load, arg_low(1), 0, 0),
        bpf(equals, u32::try_from(libc::FUTEX_WAKE).unwrap(), 0, 3),
        bpf(load, arg_low(2), 0, 0),
        bpf(equals, u32::try_from(i32::MAX).unwrap(), 0, 1),
        bpf(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_KILL_PROCESS,
            0,
            0,
        ),
        bpf(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    let filter = libc::sock_fprog {
        len: u16::try_from(program.len()).unwrap(),
        filter: program.as_mut_ptr(),
    };
    // SAFETY: prctl with these options reads only `filter` and the program it points to, both
    // alive for the call; the kernel copies the program.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &filter as *const libc::sock_fprog,
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[flotilla::task]
fn set_and_die(event: Event) {
    die_at_the_next_wake_up();
    event.set();
}

#[flotilla::task]
fn release_and_die(sem: Semaphore) {
    die_at_the_next_wake_up();
    sem.release();
}

#[flotilla::task]
fn release_bounded_and_die(sem: BoundedSemaphore) {
    die_at_the_next_wake_up();
    sem.release().unwrap();
}

#[flotilla::task]
fn trip_and_die(barrier: Barrier) {
    die_at_the_next_wake_up();
    let _ = barrier.wait();
}

#[flotilla::task]
fn notify_and_die(cond: Condition) {
    let mut guard = cond.lock().unwrap();
    die_at_the_next_wake_up();
    guard.notify(1);
}

/// How the live waiter fared after the waker was killed.
enum Outcome<R> {
    /// It returned, with this.
    Woken(R),
    /// It still sleeps; its answer will come on this.
    Asleep(mpsc::Receiver<R>),
}

/// Puts `wait` to sleep on a thread here, then runs `waker` (which must be killed at its
/// wake-up) and gives the waiter [`SEES_IT_WITHIN`] to return.
fn kill_the_waker<R: Send + 'static>(
    wait: impl FnOnce() -> R + Send + 'static,
    waker: Process,
) -> Outcome<R> {
    let (answer_tx, answer) = mpsc::channel();
    let _waiter = waiting_thread(PATIENCE, move || {
        let _ = answer_tx.send(wait());
    });
    let waker = start(waker);
    assert!(waker.join_timeout(PATIENCE), "the waker did not end");
    assert_eq!(
        waker.exitcode(),
        Some(-libc::SIGSYS),
        "the waker was not killed at its wake-up system call"
    );
    match answer.recv_timeout(SEES_IT_WITHIN) {
        Ok(answer) => Outcome::Woken(answer),
        Err(mpsc::RecvTimeoutError::Timeout) => Outcome::Asleep(answer),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the waiter panicked"),
    }
}

/// Checks a waiter still asleep after the kill: the killed waker's change must not be there
/// (`made()`, which takes the primitive's mutex over from the dead waker); then `wake()`, a
/// live wake-up, must wake it.
fn still_asleep_only_if_unchanged<R: Debug>(
    answer: mpsc::Receiver<R>,
    made: impl FnOnce() -> bool,
    wake: impl FnOnce(),
) -> R {
    assert!(
        !made(),
        "the waiter slept through a change that a waker killed mid-wake-up had made"
    );
    wake();
    answer
        .recv_timeout(PATIENCE)
        .expect("a live wake-up did not wake the waiter")
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_setter_killed_mid_wake_up_leaves_no_waiter_asleep_on_a_set_event() {
    watchdog(LIMIT, || {
        let event = Event::new().unwrap();
        let theirs = event.clone();
        let woken = match kill_the_waker(
            move || theirs.wait_timeout(PATIENCE),
            Process::new(set_and_die, event.clone()),
        ) {
            Outcome::Woken(woken) => woken,
            Outcome::Asleep(answer) => {
                still_asleep_only_if_unchanged(answer, || event.is_set(), || event.set())
            }
        };
        assert!(woken, "the waiter timed out");
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_releaser_killed_mid_wake_up_leaves_no_waiter_asleep_on_a_permit() {
    watchdog(LIMIT, || {
        let sem = Semaphore::new(0).unwrap();
        let theirs = sem.clone();
        let acquired = match kill_the_waker(
            move || theirs.acquire_timeout(PATIENCE),
            Process::new(release_and_die, sem.clone()),
        ) {
            Outcome::Woken(acquired) => acquired,
            Outcome::Asleep(answer) => {
                still_asleep_only_if_unchanged(answer, || sem.get_value() > 0, || sem.release())
            }
        };
        assert!(acquired, "the waiter timed out");
        assert_eq!(sem.get_value(), 0);
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_bounded_releaser_killed_mid_wake_up_leaves_no_waiter_asleep_on_a_permit() {
    watchdog(LIMIT, || {
        let sem = BoundedSemaphore::new(1).unwrap();
        assert!(sem.try_acquire());
        let theirs = sem.clone();
        let acquired = match kill_the_waker(
            move || theirs.acquire_timeout(PATIENCE),
            Process::new(release_bounded_and_die, sem.clone()),
        ) {
            Outcome::Woken(acquired) => acquired,
            Outcome::Asleep(answer) => still_asleep_only_if_unchanged(
                answer,
                || sem.get_value() > 0,
                || sem.release().unwrap(),
            ),
        };
        assert!(acquired, "the waiter timed out");
        assert_eq!(sem.get_value(), 0);
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn the_last_party_killed_mid_wake_up_leaves_no_party_asleep_at_a_tripped_barrier() {
    watchdog(LIMIT, || {
        let barrier = Barrier::new(2).unwrap();
        let theirs = barrier.clone();
        let passed = match kill_the_waker(
            move || theirs.wait_timeout(PATIENCE),
            Process::new(trip_and_die, barrier.clone()),
        ) {
            Outcome::Woken(passed) => passed,
            // Tripping empties the barrier; untripped, the waiter is still counted.
            Outcome::Asleep(answer) => still_asleep_only_if_unchanged(
                answer,
                || barrier.n_waiting() == 0,
                || assert_eq!(barrier.wait_timeout(PATIENCE).unwrap(), 1),
            ),
        };
        assert_eq!(passed.unwrap(), 0);
        assert!(!barrier.is_broken());
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_notifier_killed_mid_wake_up_leaves_no_waiter_asleep_on_its_notify() {
    watchdog(LIMIT, || {
        let cond = Condition::new().unwrap();
        let theirs = cond.clone();
        let outcome = kill_the_waker(
            move || theirs.lock().unwrap().wait_timeout(PATIENCE),
            Process::new(notify_and_die, cond.clone()),
        );
        match outcome {
            // Woken by the notify: the notifier died holding the lock, which is reported.
            Outcome::Woken(woken) => assert!(
                matches!(woken, Err(LockError::OwnerDied(true))),
                "{woken:?}"
            ),
            // Still asleep: taking the lock over from the dead notifier wakes it, and it must
            // find no notify, which it would have slept through.
            Outcome::Asleep(answer) => {
                drop(cond.lock().unwrap_err().into_guard().unwrap());
                let woken = answer.recv_timeout(PATIENCE).unwrap();
                assert!(
                    matches!(woken, Err(LockError::OwnerDied(false))),
                    "the waiter slept through a notify that a notifier killed mid-wake-up had \
                     made: {woken:?}"
                );
            }
        }
    });
}
