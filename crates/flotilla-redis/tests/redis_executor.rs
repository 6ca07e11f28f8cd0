//! The Executor API on Redis: submit, lazy map, failures, cancel, status, against a real
//! `redis-server` and workers in real child processes.

mod support;

use std::time::Duration;

use flotilla::{Executor, Shutdown, as_completed_timeout};
use flotilla_redis::{RedisExecutor, Status};
use support::{RedisServer, eventually, spawn_worker};

const LEASE: Duration = Duration::from_secs(5);

#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

#[flotilla::task]
fn fail(message: String) -> u32 {
    panic!("{message}")
}

#[flotilla::task]
fn odd_fails(x: u64) -> u64 {
    assert!(x.is_multiple_of(2), "odd input {x}");
    x
}

#[flotilla::task]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn submit_map_and_failures() {
    let server = RedisServer::start();
    let url = server.url();
    let _workers = [spawn_worker(&url, 2, LEASE), spawn_worker(&url, 2, LEASE)];
    let cluster = RedisExecutor::connect(&url).unwrap();

    assert_eq!(cluster.submit(square, 12).unwrap().result().unwrap(), 144);

    let squares: Vec<u64> = cluster
        .map(square, 0..200u64)
        .chunksize(7)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(squares, (0..200u64).map(|x| x * x).collect::<Vec<_>>());

    // A panic in one item of a chunk fails that item only.
    let mixed: Vec<_> = cluster.map(odd_fails, 0..6u64).chunksize(3).collect();
    assert_eq!(mixed.iter().filter(|r| r.is_ok()).count(), 3);
    let err = mixed[1].as_ref().unwrap_err();
    assert!(
        err.is_panic() && err.to_string().contains("odd input 1"),
        "{err}"
    );

    let err = cluster
        .submit(fail, "boom".into())
        .unwrap()
        .result()
        .unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert_eq!(err.panic().unwrap().message(), "boom");

    // as_completed and .await work on these futures.
    let futures: Vec<_> = (0..20u64)
        .map(|x| cluster.submit(square, x).unwrap())
        .collect();
    let mut sum = 0;
    for fut in as_completed_timeout(&futures, Duration::from_secs(120)) {
        sum += fut.unwrap().result().unwrap();
    }
    assert_eq!(sum, (0..20u64).map(|x| x * x).sum::<u64>());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let fut = cluster.submit(square, 9).unwrap();
    assert_eq!(rt.block_on(fut).unwrap(), 81);

    let status = cluster.status().unwrap();
    assert_eq!(status.workers.len(), 2, "{status}");
    assert_eq!(status.queued, 0, "{status}");
    assert_eq!(status.running, 0, "{status}");
    assert_eq!(status.completed, 1 + 29 + 2 + 20 + 1, "{status}");
    assert_eq!(status.failed, 1, "{status}");
    assert_eq!(cluster.unmatched_results(), 0);

    cluster.shutdown(Shutdown::new());
    assert!(cluster.submit(square, 1).unwrap_err().is_shutdown());
}

#[test]
fn cancel_is_exact() {
    let server = RedisServer::start();
    let url = server.url();
    let cluster = RedisExecutor::connect(&url).unwrap();

    // No worker yet: the task is queued, and cancelling it is an atomic change on the server.
    let queued = cluster.submit(square, 3).unwrap();
    assert!(queued.cancel());
    assert!(queued.result().unwrap_err().is_cancelled());
    let status = Status::fetch(&url, "flotilla").unwrap();
    assert_eq!((status.cancelled, status.queued), (1, 0), "{status}");

    let _worker = spawn_worker(&url, 1, LEASE);
    // A running task is stopped on its worker (its process is killed).
    let long = cluster.submit(nap, 600_000).unwrap();
    // The worker's claim tells the client: the future says it is running, as Python's does.
    eventually("the future to say it runs", || long.running());
    assert_eq!(cluster.status().unwrap().running, 1);
    assert!(long.cancel());
    assert!(long.result().unwrap_err().is_cancelled());
    // The worker is free again at once, not after ten minutes.
    assert_eq!(cluster.submit(square, 5).unwrap().result().unwrap(), 25);
    eventually("the cancel to be counted", || {
        cluster.status().unwrap().cancelled == 2
    });

    // A finished task cannot be cancelled.
    let done = cluster.submit(square, 6).unwrap();
    assert_eq!(done.result().unwrap(), 36);
    assert!(!done.cancel());
    assert_eq!(cluster.unmatched_results(), 0);
}

#[test]
fn task_timeout_kills_only_that_task() {
    let server = RedisServer::start();
    let url = server.url();
    let _worker = spawn_worker(&url, 1, LEASE);
    let cluster = RedisExecutor::connect(&url).unwrap();
    let err = cluster
        .submit_with_timeout(nap, 600_000, Duration::from_millis(300))
        .unwrap()
        .result()
        .unwrap_err();
    assert!(err.is_task_timeout(), "{err}");
    assert_eq!(cluster.submit(nap, 1).unwrap().result().unwrap(), 1);
}

#[test]
fn shutdown_cancels_queued_tasks() {
    let server = RedisServer::start();
    let cluster = RedisExecutor::connect(&server.url()).unwrap();
    let futures: Vec<_> = (0..10)
        .map(|x| cluster.submit(square, x).unwrap())
        .collect();
    cluster.shutdown(Shutdown::new().cancel_futures(true));
    assert!(futures.iter().all(|f| f.cancelled()), "{futures:?}");
    let status = cluster.status().unwrap();
    assert_eq!((status.queued, status.cancelled), (0, 10), "{status}");
}

#[test]
fn in_process_worker_runs_and_stops() {
    let server = RedisServer::start();
    let url = server.url();
    let worker = flotilla_redis::Worker::builder(&url)
        .slots(1)
        .start()
        .unwrap();
    assert!(!worker.id().is_empty());
    let cluster = RedisExecutor::connect(&url).unwrap();
    assert_eq!(cluster.submit(square, 4).unwrap().result().unwrap(), 16);
    let held = cluster.submit(nap, 200).unwrap();
    eventually("the task to start", || {
        cluster.status().unwrap().running == 1
    });
    // stop() finishes and reports the task it holds before returning.
    worker.stop();
    assert_eq!(held.result().unwrap(), 200);
    assert!(cluster.status().unwrap().workers.is_empty());
    assert!(
        flotilla_redis::Worker::builder(&url)
            .slots(0)
            .start()
            .unwrap_err()
            .to_string()
            .contains("slot")
    );
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<RedisExecutor>();
    check::<flotilla_redis::RedisBuilder>();
    check::<flotilla_redis::Worker>();
    check::<flotilla_redis::WorkerBuilder>();
    check::<Status>();
}

#[test]
fn a_task_that_outlives_its_ttl_in_the_queue_fails_as_expired() {
    let server = RedisServer::start();
    let url = server.url();
    let cluster = RedisExecutor::builder(&url)
        .ttl(Duration::from_millis(200))
        .build()
        .unwrap();
    // No worker yet: the task waits in the queue until its state expires on the server.
    let stale = cluster.submit(square, 4).unwrap();
    let mut conn = server.conn();
    let mut task_keys = move || -> usize {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("flotilla:task:*")
            .query(&mut conn)
            .unwrap();
        keys.len()
    };
    // `submit` hands the task to a sender thread: first it reaches the server, then it expires.
    eventually("the task to reach the server", || {
        cluster.status().unwrap().submitted == 1
    });
    eventually("the task's state to expire", || task_keys() == 0);
    assert!(!stale.done());

    // The first worker to see the entry retires it and tells the client, instead of leaving
    // the future waiting forever; a fresh task still runs.
    let _worker = spawn_worker(&url, 1, LEASE);
    let err = stale.result().unwrap_err();
    assert!(err.is_expired(), "{err}");
    assert!(err.to_string().contains("time to live"), "{err}");
    assert_eq!(cluster.submit(square, 5).unwrap().result().unwrap(), 25);
    let status = cluster.status().unwrap();
    assert_eq!((status.expired, status.queued), (1, 0), "{status}");
    assert!(status.to_string().contains("expired 1"), "{status}");
}
