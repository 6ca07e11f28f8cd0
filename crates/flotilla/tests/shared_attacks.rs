//! Attacks on `flotilla::shared`'s robust locks from safe code: a thread that piles up more
//! held locks than the kernel will report at its death, `fork` or starting a program while
//! holding a lock, and many segments mapped, held and forgotten at once.

use std::os::unix::process::CommandExt;
use std::sync::mpsc;

use flotilla::process::{Process, Queue};
use flotilla::shared::{Lock, LockError, Value};

#[path = "support/children.rs"]
mod children;

use children::{PATIENCE, kill, start};

/// How many locks the attacking thread tries to take: past the 2048 robust-list entries the
/// kernel walks when a thread ends.
const PILE: usize = 2300;

/// Lets this process open `PILE` more descriptors (one per lock) if the hard limit allows.
fn enough_descriptors() -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return false;
    }
    let wanted = (PILE as libc::rlim_t + 256).min(limit.rlim_max);
    if limit.rlim_cur < wanted {
        limit.rlim_cur = wanted;
        // SAFETY: as above; raising the soft limit up to the hard one is always allowed.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
    wanted >= PILE as libc::rlim_t + 256
}

#[test]
#[cfg_attr(miri, ignore = "uses process-shared pthread mutexes")]
fn every_lock_a_dead_thread_held_is_reported_however_many() {
    assert!(
        enough_descriptors(),
        "the descriptor limit is too low for {PILE} locks"
    );
    let locks: Vec<Lock> = (0..PILE).map(|_| Lock::new().unwrap()).collect();
    let theirs = locks.clone();
    let (report, taken) = mpsc::channel();
    std::thread::spawn(move || {
        for lock in &theirs {
            let got = match lock.lock() {
                Ok(guard) => {
                    std::mem::forget(guard);
                    true
                }
                Err(LockError::TooManyHeld) => false,
                Err(other) => panic!("{other}"),
            };
            report.send(got).unwrap();
        }
    })
    .join()
    .unwrap();
    let taken: Vec<bool> = taken.iter().collect();
    let held = taken.iter().filter(|&&got| got).count();
    assert!(held >= 2000, "only {held} locks could be taken");

    // The thread has ended: each lock it held is reported, each it was refused is free.
    let mut stuck = Vec::new();
    for (i, (lock, &got)) in locks.iter().zip(&taken).enumerate() {
        match (got, lock.try_lock()) {
            (true, Err(LockError::OwnerDied(_))) | (false, Ok(_)) => {}
            (_, outcome) => stuck.push((i, got, format!("{:?}", outcome.map(drop)))),
        }
    }
    assert!(
        stuck.is_empty(),
        "{} of {held} held locks were not reported: {:?}",
        stuck.len(),
        &stuck[..stuck.len().min(5)]
    );
}

#[test]
#[cfg_attr(miri, ignore = "forks")]
fn a_forked_child_neither_holds_nor_abandons_its_parents_lock() {
    let lock = Lock::new().unwrap();
    let guard = lock.lock().unwrap();
    // SAFETY: the child only tries the lock (atomics and a thread-local read, no allocation on
    // that path) and calls `_exit`, so it does nothing unsafe after forking a threaded parent.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let busy = matches!(lock.try_lock().map(drop), Err(LockError::WouldBlock));
        // SAFETY: `_exit` ends the forked child at once, running nothing of the parent's.
        unsafe { libc::_exit(if busy { 0 } else { 1 }) };
    }
    assert!(pid > 0, "fork failed");
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` a valid place for its status.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child did not see the parent's lock held ({status:#x})"
    );

    // The child's exit neither released the lock nor reported its holder dead.
    assert!(matches!(
        seen_from_another_thread(&lock),
        Err(LockError::WouldBlock)
    ));
    drop(guard);
    assert!(seen_from_another_thread(&lock).is_ok());
}

/// Whether another thread finds `lock` held (`WouldBlock`), free and clean (`Ok`), or
/// something else.
fn seen_from_another_thread(lock: &Lock) -> Result<(), LockError> {
    let other = lock.clone();
    std::thread::spawn(move || other.try_lock().map(drop).map_err(|e| e.without_guard()))
        .join()
        .unwrap()
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_program_started_while_a_lock_is_held_neither_releases_nor_abandons_it() {
    let lock = Lock::new().unwrap();
    let guard = lock.lock().unwrap();
    // The spawn path (posix_spawn), and the fork-then-exec path that `pre_exec` forces.
    let status = std::process::Command::new("/bin/true").status().unwrap();
    assert!(status.success());
    let mut forked = std::process::Command::new("/bin/true");
    // SAFETY: the closure does nothing, so it is async-signal-safe.
    unsafe { forked.pre_exec(|| Ok(())) };
    assert!(forked.status().unwrap().success());
    assert!(matches!(
        seen_from_another_thread(&lock),
        Err(LockError::WouldBlock)
    ));
    drop(guard);
    assert!(seen_from_another_thread(&lock).is_ok());
}

/// Takes every lock, says so, and waits to be killed holding them all.
#[flotilla::task]
fn hold_them_all(locks: Vec<Lock>, values: Vec<Value<u32>>, holding: Queue<()>) {
    let _locks: Vec<_> = locks.iter().map(|lock| lock.lock().unwrap()).collect();
    let _values: Vec<_> = values.iter().map(|v| v.get_lock().unwrap()).collect();
    holding.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_child_killed_holding_hundreds_of_segments_has_each_one_reported() {
    const EACH: usize = 400;
    assert!(enough_descriptors());
    let locks: Vec<Lock> = (0..EACH).map(|_| Lock::new().unwrap()).collect();
    let values: Vec<Value<u32>> = (0..EACH).map(|i| Value::new(i as u32).unwrap()).collect();
    let holding = Queue::new();
    let child = start(Process::new(
        HoldThemAllTask,
        (locks.clone(), values.clone(), holding.clone()),
    ));
    holding.get_timeout(PATIENCE).unwrap();
    kill(&child);
    for lock in &locks {
        assert!(lock.try_lock().unwrap_err().is_owner_died());
    }
    for (i, value) in values.iter().enumerate() {
        match value.try_get_lock() {
            Err(LockError::OwnerDied(guard)) => assert_eq!(*guard, i as u32),
            other => panic!("value {i}: {:?}", other.map(drop)),
        }
    }
}
