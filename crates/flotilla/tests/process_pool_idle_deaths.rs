//! A worker that dies while idle (killed from outside, as the OOM killer does) costs nobody:
//! the next tasks run on fresh workers instead of failing with `WorkerDied`.

use std::time::{Duration, Instant};

use flotilla::{Executor, ProcessPoolExecutor};

#[path = "support/strength.rs"]
mod strength;

const PATIENCE: Duration = Duration::from_secs(60);

#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

/// SIGKILLs `pid` and waits (bounded) until it is a zombie: dead, not yet reaped by the pool.
fn kill_and_wait_dead(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is an unreaped child of this
    // process (a pool worker), so it cannot name another process.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the parenthesised command name.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        if matches!(state, Some("Z") | None) {
            return;
        }
        assert!(Instant::now() < deadline, "worker {pid} did not die");
        std::thread::yield_now();
    }
}

/// The pids of the pool's workers, all started, learnt by meeting at a barrier.
fn worker_pids(pool: &ProcessPoolExecutor) -> Vec<u32> {
    strength::assert_full_strength(pool)
}

#[test]
fn tasks_after_idle_workers_were_killed_all_run() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    // Twice in a row: a replacement that dies idle costs nobody either.
    for round in 0..2 {
        for pid in worker_pids(&pool) {
            kill_and_wait_dead(pid);
        }
        let futures: Vec<_> = (0..20).map(|i| pool.submit(square, i).unwrap()).collect();
        for (i, fut) in futures.into_iter().enumerate() {
            let got = fut.result_timeout(PATIENCE);
            assert_eq!(
                got.as_ref().ok(),
                Some(&((i * i) as u64)),
                "round {round}, task {i}: {got:?}"
            );
        }
        strength::assert_full_strength(&pool);
    }
}

#[test]
fn idle_deaths_cost_nobody_when_tasks_come_from_several_threads() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    for pid in worker_pids(&pool) {
        kill_and_wait_dead(pid);
    }
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let pool = &pool;
            scope.spawn(move || {
                for i in 0..10 {
                    let x = thread * 10 + i;
                    let got = pool.submit(square, x).unwrap().result_timeout(PATIENCE);
                    assert_eq!(
                        got.as_ref().ok(),
                        Some(&(x * x)),
                        "thread {thread}, task {i}: {got:?}"
                    );
                }
            });
        }
    });
    strength::assert_full_strength(&pool);
}
