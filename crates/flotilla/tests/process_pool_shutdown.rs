//! Shutdown and drop never hang, whatever the workers are doing: dying mid-task, mid-encode of
//! a result, or with a large payload in flight. Each case runs under a watchdog.

use std::time::{Duration, Instant};

use flotilla::{Executor, ProcessPoolExecutor, Shutdown};
use serde::{Serialize, Serializer};

#[path = "support/watchdog.rs"]
mod watchdog;

/// Fails any test that has not finished within this time: a hang, not slowness.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `case` under the watchdog; `name` says which case hung.
fn within_watchdog(name: &str, case: impl FnOnce() + Send + 'static) {
    let name = name.to_owned();
    watchdog::watchdog(WATCHDOG, move || {
        eprintln!("{name}: running");
        case();
    });
}

/// A result whose encoding kills the worker half-way: the worker dies mid-encode.
#[derive(Clone, Debug, serde::Deserialize)]
struct DiesWhenEncoded;

impl Serialize for DiesWhenEncoded {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        std::process::abort()
    }
}

#[flotilla::task]
fn dies_encoding() -> DiesWhenEncoded {
    DiesWhenEncoded
}

#[flotilla::task]
fn length(bytes: serde_bytes::ByteBuf) -> usize {
    bytes.len()
}

#[flotilla::task]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[flotilla::task]
fn pid() -> u32 {
    std::process::id()
}

#[test]
fn worker_dying_mid_encode_fails_its_task_and_drop_returns() {
    within_watchdog("mid-encode", || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let fut = pool.submit(DiesEncodingTask, ()).unwrap();
        let err = fut.result().unwrap_err();
        assert!(err.to_string().contains("SIGABRT"), "{err}");
        assert_eq!(
            pool.submit(LengthTask, vec![1, 2].into())
                .unwrap()
                .result()
                .unwrap(),
            2
        );
        drop(pool);
    });
}

#[test]
fn killing_workers_with_a_large_payload_in_flight_does_not_hang() {
    within_watchdog("payload in flight", || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        let big = serde_bytes::ByteBuf::from(vec![7u8; 64 << 20]);
        let futures: Vec<_> = (0..4)
            .map(|_| pool.submit(LengthTask, big.clone()).unwrap())
            .collect();
        pool.shutdown(Shutdown::new().kill_workers(true));
        for fut in futures {
            // Each either got through before the kill, failed because of it, or was still
            // queued and cancelled; none hangs.
            match fut.result() {
                Ok(n) => assert_eq!(n, 64 << 20),
                Err(err) => assert!(err.is_worker_died() || err.is_cancelled(), "{err:?}"),
            }
        }
    });
}

#[test]
fn shutdown_without_wait_returns_while_tasks_run() {
    within_watchdog("wait=false", || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let fut = pool.submit(SleepMsTask, 200).unwrap();
        pool.shutdown(Shutdown::new().wait(false));
        assert!(pool.submit(SleepMsTask, 1).unwrap_err().is_shutdown());
        assert_eq!(fut.result().unwrap(), 200);
    });
}

#[test]
fn cancelled_and_timed_out_tasks_free_their_worker_quickly() {
    within_watchdog("free worker", || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        pool.submit(PidTask, ()).unwrap().result().unwrap(); // worker started

        let running = pool.submit(SleepMsTask, 60_000).unwrap();
        while !running.running() {
            std::thread::yield_now();
        }
        let cancelled_at = Instant::now();
        assert!(running.cancel());
        pool.submit(PidTask, ()).unwrap().result().unwrap();
        let after_cancel = cancelled_at.elapsed();

        let limit = Duration::from_millis(50);
        let started = Instant::now();
        let err = pool
            .submit_with_timeout(SleepMsTask, 60_000, limit)
            .unwrap()
            .result()
            .unwrap_err();
        assert!(err.is_task_timeout());
        pool.submit(PidTask, ()).unwrap().result().unwrap();
        let after_timeout = started.elapsed().saturating_sub(limit);

        // The target is 100 ms (a kill, a reap and a fresh worker); the bound is generous
        // because CI machines are shared, but far below the 60 s the task would have taken.
        for (what, took) in [("cancel", after_cancel), ("timeout", after_timeout)] {
            eprintln!("{what}: worker free again after {took:?}");
            assert!(took < Duration::from_secs(5), "{what} took {took:?}");
        }
    });
}
