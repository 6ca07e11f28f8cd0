//! Crash isolation: every way a worker can die fails only its own task, and the pool goes on.

use std::time::{Duration, Instant};

use flotilla::{Error, Executor, ProcessPoolExecutor, Shutdown};

#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

#[flotilla::task]
fn pid() -> u32 {
    std::process::id()
}

/// How a task brings its worker down.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
enum Crash {
    Panic,
    Abort,
    Segfault,
    Exit(i32),
    SigKill,
}

#[flotilla::task]
fn crash(how: Crash) -> u64 {
    match how {
        Crash::Panic => panic!("deliberate panic"),
        Crash::Abort => std::process::abort(),
        Crash::Segfault => {
            // SAFETY: raising a signal has no memory-safety preconditions; SIGSEGV's default
            // action ends this (worker) process, which is what the test wants.
            unsafe { libc::raise(libc::SIGSEGV) };
            unreachable!("SIGSEGV ends the process")
        }
        Crash::Exit(code) => std::process::exit(code),
        Crash::SigKill => {
            // SAFETY: as above; SIGKILL stands in for the OOM killer.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            unreachable!("SIGKILL ends the process")
        }
    }
}

#[flotilla::task]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn pool(workers: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

fn thousand_more(pool: &ProcessPoolExecutor) {
    let squares: Vec<u64> = pool
        .map(square, 0..1000)
        .chunksize(50)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(squares, (0..1000u64).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn every_crash_kind_fails_only_its_task() {
    let pool = pool(2);
    let cases = [
        (Crash::Panic, "deliberate panic"),
        (Crash::Abort, "signal 6 (SIGABRT)"),
        (Crash::Segfault, "signal 11 (SIGSEGV)"),
        (Crash::Exit(3), "exited with code 3"),
        (Crash::SigKill, "signal 9 (SIGKILL)"),
    ];
    for (how, expected) in cases {
        let healthy: Vec<_> = (0..4).map(|i| pool.submit(square, i).unwrap()).collect();
        let err = pool.submit(crash, how).unwrap().result().unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{how:?}: expected {expected:?} in {err}"
        );
        match how {
            Crash::Panic => assert!(err.is_panic()),
            _ => assert!(err.is_worker_died(), "{how:?}: {err:?}"),
        }
        for (i, fut) in healthy.into_iter().enumerate() {
            assert_eq!(fut.result().unwrap(), (i * i) as u64);
        }
        thousand_more(&pool);
    }
}

#[test]
fn exitcode_follows_python_convention() {
    let pool = pool(1);
    let err = pool
        .submit(crash, Crash::Segfault)
        .unwrap()
        .result()
        .unwrap_err();
    let Error::WorkerDied(exit) = err else {
        panic!("expected WorkerDied, got {err:?}")
    };
    assert_eq!(exit.exitcode(), Some(-11));
    assert_eq!(exit.signal(), Some(11));
}

#[test]
fn timeout_kills_the_worker_and_frees_the_slot() {
    let pool = pool(1);
    let before = pool.submit(pid, ()).unwrap().result().unwrap();
    let started = Instant::now();
    let err = pool
        .submit_with_timeout(sleep_ms, 60_000, Duration::from_millis(100))
        .unwrap()
        .result()
        .unwrap_err();
    assert!(err.is_task_timeout(), "{err:?}");
    // The slot is free again: the next task runs on a new worker.
    let after = pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(before, after);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a killed task must not hold the pool (took {:?})",
        started.elapsed()
    );
}

#[test]
fn cancel_kills_a_running_task() {
    let pool = pool(1);
    let fut = pool.submit(sleep_ms, 60_000).unwrap();
    // Wait until the task is running: spin on the state, not on time.
    while !fut.running() {
        std::thread::yield_now();
    }
    let cancelled_at = Instant::now();
    assert!(fut.cancel(), "a running process task can be cancelled");
    assert!(fut.cancelled());
    assert!(fut.result().unwrap_err().is_cancelled());
    // The slot's next task gets a fresh worker promptly.
    assert_eq!(pool.submit(square, 7).unwrap().result().unwrap(), 49);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(30),
        "took {:?}",
        cancelled_at.elapsed()
    );
}

#[test]
fn max_tasks_per_child_recycles_workers() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..9)
        .map(|_| pool.submit(pid, ()).unwrap().result().unwrap())
        .collect();
    for batch in pids.chunks(3) {
        assert!(batch.iter().all(|p| *p == batch[0]), "{pids:?}");
    }
    assert_ne!(pids[0], pids[3]);
    assert_ne!(pids[3], pids[6]);
}

#[test]
fn max_tasks_per_child_with_a_backlog_does_not_deadlock() {
    // CPython gh-115634: a backlog larger than max_tasks_per_child hung the pool.
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .max_tasks_per_child(2)
        .build()
        .unwrap();
    let futures: Vec<_> = (0..50).map(|i| pool.submit(square, i).unwrap()).collect();
    for (i, fut) in futures.into_iter().enumerate() {
        assert_eq!(fut.result().unwrap(), (i * i) as u64);
    }
    pool.shutdown(Shutdown::new().wait(false));
}

#[test]
fn shutdown_kill_workers_stops_running_tasks() {
    let pool = pool(2);
    let running: Vec<_> = (0..2)
        .map(|_| pool.submit(sleep_ms, 60_000).unwrap())
        .collect();
    for fut in &running {
        while !fut.running() {
            std::thread::yield_now();
        }
    }
    pool.shutdown(Shutdown::new().kill_workers(true));
    for fut in running {
        let err = fut.result().unwrap_err();
        assert!(err.is_worker_died(), "{err:?}");
    }
}

#[test]
fn shutdown_does_not_hang_when_a_worker_dies_mid_task() {
    let pool = pool(2);
    let dying = pool.submit(crash, Crash::SigKill).unwrap();
    let others: Vec<_> = (0..10).map(|i| pool.submit(square, i).unwrap()).collect();
    drop(pool); // waits for everything
    assert!(dying.result().unwrap_err().is_worker_died());
    assert!(others.iter().all(|f| f.done()));
}
