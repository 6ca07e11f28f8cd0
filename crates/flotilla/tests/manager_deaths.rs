//! Deaths around a manager: the server exits when its owner drops it, shuts it down or is
//! killed; a client process killed while holding a lock, a semaphore permit, a barrier wait or
//! a blocked queue `get` leaves the others able to go on, never hanging.

use std::time::{Duration, Instant};

use flotilla::manager::{Address, Barrier, Event, Lock, Manager, Queue, Semaphore};
use flotilla::process::{Process, pipe};
use flotilla::shared::LockError;

#[path = "support/children.rs"]
mod children;

use children::assert_nothing_left_by;

/// A generous bound on any single wait (CI is a noisy 2-core machine).
const PATIENCE: Duration = Duration::from_secs(60);

/// Whether process `pid` is gone: no such process, or a zombie nobody has reaped yet (an
/// orphaned server is reparented, and its new parent reaps it in its own time).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Polls, with a deadline, until `pid` is gone; an external process's exit has no other
/// signal to wait on.
fn await_gone(pid: u32) {
    let deadline = Instant::now() + PATIENCE;
    while !gone(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_server_exits_when_its_manager_is_dropped() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let pid = manager.pid().expect("an owner knows its server");
    let dict = manager.dict::<u8, u8>()?;
    dict.insert(&1, &1)?;
    assert!(!gone(pid));
    drop(manager);
    await_gone(pid);
    assert!(dict.get(&1).unwrap_err().is_disconnected());
    Ok(())
}

#[test]
fn shutdown_stops_the_server_and_only_the_owner_may_call_it() -> Result<(), flotilla::Error> {
    let mut owner = Manager::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .start()?;
    let mut client = Manager::connect(owner.address().clone(), owner.authkey())?;
    assert!(matches!(
        client.shutdown(),
        Err(flotilla::Error::InvalidOperation { .. })
    ));
    let pid = owner.pid().unwrap();
    owner.shutdown()?;
    owner.shutdown()?; // twice is harmless
    await_gone(pid);
    assert!(client.event().unwrap_err().is_disconnected());
    Ok(())
}

/// An owner that reports its server's pid and address, then waits to be killed.
#[flotilla::task]
fn owner_then_wait(report: flotilla::process::Connection<(u32, Address)>) {
    let manager = Manager::new().unwrap();
    report
        .send(&(manager.pid().unwrap(), manager.address().clone()))
        .unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn the_server_exits_when_its_owner_is_killed() -> Result<(), flotilla::Error> {
    let started = std::time::SystemTime::now();
    let (ours, theirs) = pipe::<(u32, Address)>()?;
    let owner = Process::new(OwnerThenWaitTask, theirs).start()?;
    let (server, address) = ours.recv_timeout(PATIENCE)?;
    assert!(!gone(server));
    assert!(Manager::connect(address.clone(), b"not the key").is_err());
    owner.kill();
    assert!(owner.join_timeout(PATIENCE));
    await_gone(server);
    assert_nothing_left_by(server, started);
    Ok(())
}

#[test]
fn a_server_killed_with_sigkill_leaves_nothing_behind() -> Result<(), flotilla::Error> {
    let started = std::time::SystemTime::now();
    let manager = Manager::new()?;
    let pid = manager.pid().expect("an owner knows its server");
    manager.dict::<u8, u8>()?.insert(&1, &1)?;
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our live child's.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    await_gone(pid);
    assert_nothing_left_by(pid, started);
    assert!(manager.event().unwrap_err().is_disconnected());
    Ok(())
}

/// Takes the lock, says so, and waits to be killed with it held.
#[flotilla::task]
fn hold_lock(lock: Lock, holding: Event) {
    let _held = lock.lock().unwrap();
    holding.set().unwrap();
    loop {
        std::thread::park();
    }
}

/// A manager lock whose holder, a child process, has been started, took it, and was killed.
/// `while_held` runs while the child still holds it.
fn lock_of_a_killed_holder(
    manager: &Manager,
    while_held: impl FnOnce(&Lock),
) -> Result<Lock, flotilla::Error> {
    let lock = manager.lock()?;
    let holding = manager.event()?;
    let holder = Process::new(HoldLockTask, (lock.clone(), holding.clone())).start()?;
    assert!(holding.wait_timeout(PATIENCE)?);
    while_held(&lock);
    holder.kill();
    Ok(lock)
}

#[test]
fn a_client_killed_holding_the_lock_is_reported_to_the_next_holder() -> Result<(), flotilla::Error>
{
    let manager = Manager::new()?;
    let lock = lock_of_a_killed_holder(&manager, |lock| {
        assert!(lock.try_lock().unwrap_err().is_busy());
    })?;
    match lock.lock_timeout(PATIENCE) {
        Err(LockError::OwnerDied(guard)) => {
            // Repaired: later holders are not told again.
            guard.mark_consistent()?;
        }
        Ok(_) => panic!("the holder's death was not reported"),
        Err(err) => panic!("unexpected {err}"),
    }
    assert!(lock.lock_timeout(PATIENCE).is_ok());
    Ok(())
}

#[test]
fn a_lock_death_is_reported_until_marked_consistent() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let lock = lock_of_a_killed_holder(&manager, |_| {})?;
    for _ in 0..2 {
        let err = lock.lock_timeout(PATIENCE).map(drop).unwrap_err();
        assert!(err.is_owner_died(), "{err}");
    }
    Ok(())
}

#[flotilla::task]
fn hold_permit(semaphore: Semaphore, holding: Event) {
    semaphore.acquire().unwrap();
    holding.set().unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_client_killed_holding_a_permit_gives_it_back() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let semaphore = manager.semaphore(1)?;
    let holding = manager.event()?;
    let holder = Process::new(HoldPermitTask, (semaphore.clone(), holding.clone())).start()?;
    assert!(holding.wait_timeout(PATIENCE)?);
    assert!(!semaphore.try_acquire()?);
    holder.kill();
    assert!(semaphore.acquire_timeout(PATIENCE)?);
    Ok(())
}

#[flotilla::task]
fn wait_at(barrier: Barrier) {
    let _ = barrier.wait();
}

#[test]
fn a_party_killed_at_the_barrier_breaks_it_for_the_others() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let barrier = manager.barrier(3)?;
    let party = Process::new(WaitAtTask, barrier.clone()).start()?;
    // Wait for the child to arrive (an external process: poll with a deadline).
    let deadline = Instant::now() + PATIENCE;
    while barrier.n_waiting()? == 0 {
        assert!(
            Instant::now() < deadline,
            "the child never reached the barrier"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    party.kill();
    assert!(matches!(
        barrier.wait_timeout(PATIENCE),
        Err(flotilla::Error::BrokenBarrier)
    ));
    assert!(barrier.is_broken()?);
    Ok(())
}

#[flotilla::task]
fn blocked_get(queue: Queue<String>, waiting: Event) {
    waiting.set().unwrap();
    let _ = queue.get();
}

#[test]
fn an_item_is_not_lost_to_a_reader_killed_while_waiting() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let queue = manager.queue::<String>(None)?;
    let waiting = manager.event()?;
    let reader = Process::new(BlockedGetTask, (queue.clone(), waiting.clone())).start()?;
    assert!(waiting.wait_timeout(PATIENCE)?);
    reader.kill();
    assert!(reader.join_timeout(PATIENCE));
    queue.put("precious".to_owned())?;
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), "precious");
    Ok(())
}
