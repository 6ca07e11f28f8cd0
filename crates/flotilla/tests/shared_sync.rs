//! `flotilla::shared::{Semaphore, BoundedSemaphore, Event, Barrier}` across processes: the
//! semaphore caps concurrency, bounded over-release is an error, events wake waiters in other
//! processes, timeouts say `false`, and a process killed inside a semaphore operation (holding
//! its internal mutex) never hangs the others.

use std::time::{Duration, Instant};

use flotilla::process::{Process, Queue, StartedProcess};
use flotilla::shared::{Array, Barrier, BoundedSemaphore, Event, Semaphore, SyncError};

#[path = "support/asleep.rs"]
mod asleep;
#[path = "support/children.rs"]
mod children;

use asleep::waiting_thread;
use children::{PATIENCE, finish, start};

/// Repeatedly enters the section guarded by `sem`, recording in `stats` how many processes
/// are inside (`stats[0]`) and the most ever seen (`stats[1]`).
#[flotilla::task]
fn enter_often(sem: Semaphore, stats: Array<u64>, rounds: u32) {
    for _ in 0..rounds {
        assert!(sem.acquire_timeout(PATIENCE));
        {
            let mut s = stats.get_lock().unwrap();
            s[0] += 1;
            s[1] = s[1].max(s[0]);
        }
        // Stay inside a little, so that others pile up at the semaphore.
        for _ in 0..200 {
            std::thread::yield_now();
        }
        stats.get_lock().unwrap()[0] -= 1;
        sem.release();
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_semaphore_caps_concurrency_across_processes() {
    const LIMIT: u64 = 2;
    let sem = Semaphore::new(LIMIT).unwrap();
    let stats = Array::<u64>::new(2).unwrap();
    let children: Vec<StartedProcess> = (0..4)
        .map(|_| {
            start(Process::new(
                EnterOftenTask,
                (sem.clone(), stats.clone(), 50),
            ))
        })
        .collect();
    children.iter().for_each(finish);
    let stats = stats.to_vec().unwrap();
    assert_eq!(stats[0], 0);
    assert!(
        (1..=LIMIT).contains(&stats[1]),
        "{} processes were inside at once",
        stats[1]
    );
    assert_eq!(sem.get_value(), LIMIT);
}

/// Acquires once, releases twice; reports both results.
#[flotilla::task]
fn over_release(sem: BoundedSemaphore, out: Queue<(bool, bool)>) {
    sem.acquire();
    let first = sem.release().is_ok();
    let second = matches!(sem.release(), Err(SyncError::OverReleased { limit: 2 }));
    out.put((first, second)).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_bounded_semaphore_refuses_over_release() {
    let sem = BoundedSemaphore::new(2).unwrap();
    let err = sem.release().unwrap_err();
    assert!(matches!(err, SyncError::OverReleased { limit: 2 }));
    assert_eq!(sem.get_value(), 2);

    let out = Queue::new();
    let child = start(Process::new(OverReleaseTask, (sem.clone(), out.clone())));
    assert_eq!(out.get_timeout(PATIENCE).unwrap(), (true, true));
    finish(&child);
    assert_eq!(sem.get_value(), 2);
    assert!(sem.try_acquire() && sem.try_acquire() && !sem.try_acquire());
    sem.release().unwrap();
    sem.release().unwrap();
    assert!(sem.release().is_err());
}

/// Waits for `ping`, then sets `pong`; reports whether the wait succeeded.
#[flotilla::task]
fn ping_pong(ping: Event, pong: Event, out: Queue<bool>) {
    let woke = ping.wait_timeout(PATIENCE);
    pong.set();
    out.put(woke).unwrap();
}

/// Sets `event` straight away.
#[flotilla::task]
fn set_it(event: Event) {
    event.set();
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn events_wake_waiters_in_either_direction() {
    // Child sets, parent waits.
    let event = Event::new().unwrap();
    let child = start(Process::new(SetItTask, event.clone()));
    assert!(event.wait_timeout(PATIENCE));
    assert!(event.is_set());
    finish(&child);

    // Parent sets, child waits (and answers through a second event).
    let (ping, pong) = (Event::new().unwrap(), Event::new().unwrap());
    let out = Queue::new();
    let child = start(Process::new(
        PingPongTask,
        (ping.clone(), pong.clone(), out.clone()),
    ));
    assert!(!pong.is_set());
    ping.set();
    assert!(pong.wait_timeout(PATIENCE));
    assert!(out.get_timeout(PATIENCE).unwrap());
    finish(&child);

    pong.clear();
    assert!(!pong.is_set());
}

/// Reports how timed waits on an empty semaphore and an unset event end, and how long each
/// took in milliseconds.
#[flotilla::task]
fn time_out(sem: Semaphore, event: Event, out: Queue<(bool, u128, bool, u128)>) {
    let start = Instant::now();
    let got = sem.acquire_timeout(Duration::from_millis(50));
    let sem_ms = start.elapsed().as_millis();
    let start = Instant::now();
    let set = event.wait_timeout(Duration::from_millis(50));
    out.put((got, sem_ms, set, start.elapsed().as_millis()))
        .unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn timeouts_return_false() {
    let sem = Semaphore::new(0).unwrap();
    let event = Event::new().unwrap();

    let start = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(50)));
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert!(!sem.try_acquire());
    let start = Instant::now();
    assert!(!event.wait_timeout(Duration::from_millis(50)));
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert!(!event.wait_timeout(Duration::ZERO));

    let out = Queue::new();
    let child = start_child_timing(&sem, &event, &out);
    let (got, sem_ms, set, event_ms) = out.get_timeout(PATIENCE).unwrap();
    assert!(!got && sem_ms >= 50, "semaphore: {got} after {sem_ms} ms");
    assert!(!set && event_ms >= 50, "event: {set} after {event_ms} ms");
    finish(&child);

    let barrier = Barrier::new(2).unwrap();
    assert!(matches!(
        barrier.wait_timeout(Duration::from_millis(20)),
        Err(SyncError::TimedOut)
    ));
    assert!(matches!(
        barrier.wait_timeout(Duration::ZERO),
        Err(SyncError::BrokenBarrier)
    ));
}

fn start_child_timing(
    sem: &Semaphore,
    event: &Event,
    out: &Queue<(bool, u128, bool, u128)>,
) -> StartedProcess {
    start(Process::new(
        TimeOutTask,
        (sem.clone(), event.clone(), out.clone()),
    ))
}

/// Takes the semaphore's internal mutex, says so, and waits to be killed.
#[flotilla::task]
fn die_inside(sem: Semaphore, holding: Queue<()>) {
    sem.__with_internal_mutex_held(|| {
        holding.put(()).unwrap();
        loop {
            std::thread::park();
        }
    });
}

/// Acquires a permit (blocking on the internal mutex first) and reports whether it got one.
#[flotilla::task]
fn acquire_and_report(sem: Semaphore, out: Queue<bool>) {
    out.put(sem.acquire_timeout(PATIENCE)).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_process_killed_inside_the_semaphore_does_not_hang_others() {
    let sem = Semaphore::new(2).unwrap();
    let holding = Queue::new();
    let holder = start(Process::new(DieInsideTask, (sem.clone(), holding.clone())));
    holding.get_timeout(PATIENCE).unwrap();
    assert!(
        !sem.acquire_timeout(Duration::from_millis(20)),
        "the mutex is held"
    );

    // Others pile up behind the dead-to-be holder: a process and a thread.
    let out = Queue::new();
    let waiter = start(Process::new(
        AcquireAndReportTask,
        (sem.clone(), out.clone()),
    ));
    let in_thread = {
        let sem = sem.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            (sem.acquire_timeout(PATIENCE), start.elapsed())
        })
    };

    let killed_at = Instant::now();
    holder.kill();
    assert!(holder.join_timeout(PATIENCE));
    assert_eq!(holder.exitcode(), Some(-9));

    assert!(out.get_timeout(PATIENCE).unwrap());
    let (got, _) = in_thread.join().unwrap();
    assert!(got);
    assert!(killed_at.elapsed() < Duration::from_secs(2));
    finish(&waiter);

    // Both permits are taken; the semaphore works normally again.
    assert_eq!(sem.get_value(), 0);
    sem.release();
    assert!(sem.try_acquire());
}

/// Waits at the barrier and reports its index.
#[flotilla::task]
fn meet(barrier: Barrier, out: Queue<u64>) {
    out.put(barrier.wait_timeout(PATIENCE).unwrap()).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_barrier_releases_all_parties_together() {
    let barrier = Barrier::new(4).unwrap();
    let out = Queue::new();
    let children: Vec<StartedProcess> = (0..3)
        .map(|_| start(Process::new(MeetTask, (barrier.clone(), out.clone()))))
        .collect();
    let mut indexes = vec![barrier.wait_timeout(PATIENCE).unwrap()];
    for _ in 0..3 {
        indexes.push(out.get_timeout(PATIENCE).unwrap());
    }
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2, 3]);
    children.iter().for_each(finish);
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.is_broken());
}

/// Arrives at the barrier, says so, and waits to be killed there.
#[flotilla::task]
fn die_at_barrier(barrier: Barrier, arrived: Queue<()>) {
    let waiting = barrier.clone();
    std::thread::spawn(move || waiting.wait());
    while barrier.n_waiting() == 0 {
        std::thread::yield_now();
    }
    arrived.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn a_party_killed_at_the_barrier_breaks_it_for_the_others_instead_of_hanging_them() {
    let barrier = Barrier::new(4).unwrap();
    let arrived = Queue::new();
    let doomed = start(Process::new(
        DieAtBarrierTask,
        (barrier.clone(), arrived.clone()),
    ));
    arrived.get_timeout(PATIENCE).unwrap();
    children::kill(&doomed);

    // The dead party counts as arrived but will never leave, and the fourth party never
    // comes: the barrier cannot trip, and the live parties' timed waits end in an error
    // rather than a hang.
    let other = {
        let barrier = barrier.clone();
        std::thread::spawn(move || barrier.wait_timeout(PATIENCE))
    };
    let mine = barrier.wait_timeout(Duration::from_millis(100));
    assert!(matches!(mine, Err(SyncError::TimedOut)), "{mine:?}");
    let theirs = other.join().unwrap();
    assert!(
        matches!(theirs, Err(SyncError::BrokenBarrier)),
        "{theirs:?}"
    );
    assert!(barrier.is_broken());
    barrier.reset();
    assert!(!barrier.is_broken());
}

/// After CPython's `lock_tests.BarrierTests.test_reset`: a reset breaks the barrier for the
/// parties waiting at it, and only for them; the generations after it trip normally.
#[test]
#[cfg_attr(miri, ignore = "uses process-shared pthread mutexes")]
fn a_reset_breaks_the_waiting_generation_only() {
    let barrier = Barrier::new(2).unwrap();
    let theirs = barrier.clone();
    let waiting = waiting_thread(PATIENCE, move || theirs.wait_timeout(PATIENCE));
    barrier.reset();
    let reset = waiting.join().unwrap();
    assert!(matches!(reset, Err(SyncError::BrokenBarrier)), "{reset:?}");
    assert!(!barrier.is_broken());
    assert_eq!(barrier.n_waiting(), 0);
    for round in 0..3 {
        let theirs = barrier.clone();
        let other = waiting_thread(PATIENCE, move || theirs.wait_timeout(PATIENCE));
        let mine = barrier.wait_timeout(PATIENCE).unwrap();
        let other = other.join().unwrap().unwrap();
        assert_eq!((other, mine), (0, 1), "round {round}");
    }
    barrier.abort();
    assert!(matches!(barrier.wait(), Err(SyncError::BrokenBarrier)));
    barrier.reset();
    assert!(!barrier.is_broken());
}
