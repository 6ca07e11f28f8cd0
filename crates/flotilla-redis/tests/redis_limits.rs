//! Values over the server's limit for one value (`proto-max-bulk-len`, set to 1 MiB here; 512
//! MiB by default) fail their own task with an error that says so, and nothing else.

mod support;

use std::time::Duration;

use flotilla::Executor;
use flotilla_redis::{RedisError, RedisExecutor};
use support::{RedisServer, runs_two_at_once, spawn_worker};

const LEASE: Duration = Duration::from_secs(3);
const LIMIT: &[&str] = &["--proto-max-bulk-len", "1mb"];

#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

#[flotilla::task]
fn bytes_of(len: usize) -> Vec<u8> {
    vec![7; len]
}

#[flotilla::task]
fn length(bytes: Vec<u8>) -> usize {
    bytes.len()
}

/// Issue #11, defect 6: a 2 MiB result wedged its worker for good (its future never settled,
/// later tasks starved, the worker retried a request the server would never take).
#[test]
fn result_over_the_limit_fails_its_task_and_the_worker_goes_on() {
    let server = RedisServer::start_with_config(LIMIT);
    let url = server.url();
    let _worker = spawn_worker(&url, 2, LEASE);
    let cluster = RedisExecutor::connect(&url).unwrap();
    let big = cluster.submit(bytes_of, 2 << 20).unwrap();
    let small: Vec<_> = (0..20u64)
        .map(|x| cluster.submit(square, x).unwrap())
        .collect();
    let err = big.result_timeout(Duration::from_secs(30)).unwrap_err();
    let cause = RedisError::of(&err).unwrap_or_else(|| panic!("{err}"));
    assert!(
        matches!(
            cause,
            RedisError::ResultTooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err}"
    );
    assert!(cause.may_have_run());
    for (x, fut) in small.iter().enumerate() {
        let x = x as u64;
        assert_eq!(fut.result_timeout(Duration::from_secs(30)).unwrap(), x * x);
    }
    // A result just under the limit still travels.
    let fits = cluster.submit(bytes_of, 1_000_000).unwrap();
    assert_eq!(
        fits.result_timeout(Duration::from_secs(30)).unwrap().len(),
        1_000_000
    );
    runs_two_at_once(&cluster, "after-big-result");
    assert_eq!(cluster.status().unwrap().running, 0);
}

/// Issue #11, defect 7: one 2 MiB argument among 1,300 small tasks failed hundreds of
/// innocent tasks of its batch with "Broken pipe", naming neither cause nor culprit.
#[test]
fn argument_over_the_limit_fails_only_its_own_task() {
    let server = RedisServer::start_with_config(LIMIT);
    let url = server.url();
    let _worker = spawn_worker(&url, 2, LEASE);
    let cluster = RedisExecutor::builder(&url)
        .reconnect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let futures: Vec<_> = (0..1300usize)
        .map(|i| {
            let len = if i == 650 { 2 << 20 } else { i };
            cluster.submit(length, vec![1u8; len]).unwrap()
        })
        .collect();
    for (i, fut) in futures.iter().enumerate() {
        let outcome = fut.result_timeout(Duration::from_secs(60));
        if i == 650 {
            let err = outcome.unwrap_err();
            let cause = RedisError::of(&err).unwrap_or_else(|| panic!("{err}"));
            assert!(
                matches!(
                    cause,
                    RedisError::ArgumentsTooLarge {
                        limit: 1_048_576,
                        ..
                    }
                ),
                "{err}"
            );
            assert!(!cause.may_have_run() && err.to_string().contains("not sent"));
        } else {
            assert_eq!(outcome.unwrap(), i, "task {i}");
        }
    }
    let status = cluster.status().unwrap();
    assert_eq!(
        (status.submitted, status.completed),
        (1299, 1299),
        "{status}"
    );
}
