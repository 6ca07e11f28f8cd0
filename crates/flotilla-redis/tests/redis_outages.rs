//! The path between the client, the server and the workers breaks: the server is killed and
//! comes back empty, a reply is lost after the server acted, the path stalls or is
//! partitioned. No future waits for ever, none fails for a task that succeeded, and no
//! cancel blocks its caller. The breaks are real: a SIGKILLed `redis-server`, and a proxy that
//! holds or cuts the bytes of real connections.

mod support;

use std::time::{Duration, Instant};

use flotilla::{Error, Executor, as_completed_timeout};
use flotilla_redis::{RedisError, RedisExecutor};
use support::proxy::{Cut, Proxy};
use support::{RedisServer, eventually, spawn_worker};

const LEASE: Duration = Duration::from_secs(3);

#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

#[flotilla::task]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[flotilla::task]
fn tagged(tag: String, x: u64) -> u64 {
    let _ = tag;
    x * 2
}

/// Fails unless every future settles within `limit`.
fn settle_all<T>(futures: &[flotilla::Future<T>], limit: Duration) {
    let settled = as_completed_timeout(futures, limit)
        .filter(Result::is_ok)
        .count();
    assert_eq!(
        settled,
        futures.len(),
        "{} futures still pending after {limit:?}",
        futures.len() - settled
    );
}

/// Issue #11, defect 1: redis-server killed without persistence and restarted. Before, the
/// futures of the tasks it lost waited for ever; now they fail with `ServerStateLost`, the
/// others complete, and the cluster goes on.
#[test]
fn server_killed_without_persistence_fails_only_the_lost_tasks() {
    let mut server = RedisServer::start();
    let url = server.url();
    let _worker = spawn_worker(&url, 2, LEASE);
    let cluster = RedisExecutor::connect(&url).unwrap();
    let futures: Vec<_> = (0..300u64)
        .map(|_| cluster.submit(nap, 20).unwrap())
        .collect();
    futures[0].result_timeout(Duration::from_secs(60)).unwrap();
    server.crash_and_restart();
    let started = Instant::now();
    settle_all(&futures, Duration::from_secs(30));
    let detected = started.elapsed();
    let mut lost = 0;
    for fut in &futures {
        match fut.result() {
            Ok(ms) => assert_eq!(ms, 20),
            Err(err) => {
                let cause = RedisError::of(&err).unwrap_or_else(|| panic!("{err}"));
                assert!(cause.is_server_state_lost(), "{err}");
                assert!(err.to_string().contains("lost this task's state"), "{err}");
                lost += 1;
            }
        }
    }
    assert!(lost > 0, "the restart must have lost queued tasks");
    println!("server state lost: {lost} of 300 failed, detected in {detected:?}");
    // The client and the worker go on with the new, empty server.
    assert_eq!(
        cluster
            .submit(square, 5)
            .unwrap()
            .result_timeout(Duration::from_secs(60))
            .unwrap(),
        25
    );
    assert_eq!(cluster.unmatched_results(), 0);
}

/// Issue #11, defect 9 (first part): with no worker at all, a task whose state expired in
/// the queue waited for ever; now the client notices by itself.
#[test]
fn expired_task_fails_even_with_no_worker() {
    let server = RedisServer::start();
    let cluster = RedisExecutor::builder(&server.url())
        .ttl(Duration::from_millis(300))
        .build()
        .unwrap();
    let fut = cluster.submit(square, 4).unwrap();
    let err = fut.result_timeout(Duration::from_secs(30)).unwrap_err();
    assert!(err.is_expired(), "{err}");
}

/// Issue #11, defect 2: the path is cut right after the server queued a batch, for longer
/// than the reconnect timeout. Before, those futures failed with `Disconnected` although
/// their tasks ran (and their results then arrived for nobody); now they wait and complete.
#[test]
fn partition_after_the_server_queued_a_batch_costs_nothing() {
    let server = RedisServer::start();
    let proxy = Proxy::start(&server.socket(), server.dir());
    let _worker = spawn_worker(&server.url(), 2, LEASE);
    let cluster = RedisExecutor::builder(&proxy.url())
        .reconnect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    proxy.cut(Cut::PartitionAfter(b"MARK-partition".to_vec()));
    let futures: Vec<_> = (0..300u64)
        .map(|x| {
            let tag = if x == 0 { "MARK-partition" } else { "plain" };
            cluster.submit(tagged, (tag.into(), x)).unwrap()
        })
        .collect();
    eventually("the cut", || proxy.cut_done());
    assert!(proxy.partitioned());
    // The partition lasts four reconnect timeouts.
    std::thread::sleep(Duration::from_secs(4));
    proxy.partition(false);
    settle_all(&futures, Duration::from_secs(60));
    for (x, fut) in futures.iter().enumerate() {
        assert_eq!(fut.result().unwrap(), x as u64 * 2, "task {x}");
    }
    assert_eq!(cluster.unmatched_results(), 0);
    assert_eq!(cluster.status().unwrap().completed, 300);
}

/// Issue #11, defect 3: cancels during a stall blocked their caller (30 s for one, more than
/// 100 s for a `Map`'s 16 chunks). Now they return at once; the requests reach the server
/// when the path heals, and the running task is stopped there.
#[test]
fn cancels_during_a_stall_do_not_block() {
    let server = RedisServer::start();
    let proxy = Proxy::start(&server.socket(), server.dir());
    let _worker = spawn_worker(&server.url(), 1, LEASE);
    let cluster = RedisExecutor::connect(&proxy.url()).unwrap();
    let long = cluster.submit(nap, 600_000).unwrap();
    eventually("the task to start", || long.running());
    proxy.stall(true);

    let started = Instant::now();
    assert!(long.cancel(), "a running task is cancelled");
    let one = started.elapsed();
    let mut chunks = cluster
        .map(nap, vec![600_000u64; 32])
        .timeout(Duration::from_millis(200));
    assert!(chunks.next().unwrap().unwrap_err().is_timeout());
    drop(chunks);
    let all = started.elapsed();
    println!("during a stall: cancel() took {one:?}, a map's timeout and drop {all:?}");
    assert!(one < Duration::from_secs(3), "cancel() blocked {one:?}");
    assert!(
        all < Duration::from_secs(6),
        "cancelling a map blocked {all:?}"
    );
    assert!(long.result().unwrap_err().is_cancelled());

    proxy.stall(false);
    // The worker was told: its slot is free for the next task, not after ten minutes.
    assert_eq!(
        cluster
            .submit(square, 3)
            .unwrap()
            .result_timeout(Duration::from_secs(60))
            .unwrap(),
        9
    );
    eventually("the cancel to reach the worker", || {
        cluster.status().unwrap().running == 0
    });
}

/// Issue #11, defect 4: the reply to a worker's claim was lost after the server ran it; the
/// retried claim counted a second delivery, so a task with `max_retries(0)` failed as
/// worker-lost without ever running.
#[test]
fn lost_claim_reply_costs_no_attempt() {
    let server = RedisServer::start();
    let proxy = Proxy::start(&server.socket(), server.dir());
    proxy.cut(Cut::ClaimReply);
    let _worker = spawn_worker(&proxy.url(), 1, LEASE);
    let cluster = RedisExecutor::builder(&server.url())
        .max_retries(0)
        .build()
        .unwrap();
    let outcome = cluster
        .submit(square, 7)
        .unwrap()
        .result_timeout(Duration::from_secs(60));
    assert!(proxy.cut_done(), "the claim's reply was swallowed");
    match outcome {
        Ok(value) => assert_eq!(value, 49),
        Err(Error::WorkerLost { attempts }) => {
            panic!("given up as worker-lost after {attempts} attempts without running")
        }
        Err(err) => panic!("{err}"),
    }
    let status = cluster.status().unwrap();
    assert_eq!((status.completed, status.lost), (1, 0), "{status}");
}

/// A server silent for longer than a task's state is kept: nothing more can be learnt, so the
/// future fails with `LostContact`, saying the task had reached the server.
#[test]
fn a_server_silent_longer_than_the_ttl_fails_with_lost_contact() {
    let server = RedisServer::start();
    let proxy = Proxy::start(&server.socket(), server.dir());
    let cluster = RedisExecutor::builder(&proxy.url())
        .ttl(Duration::from_millis(1500))
        .build()
        .unwrap();
    let fut = cluster.submit(square, 2).unwrap();
    eventually("the task to reach the server", || {
        cluster.status().unwrap().submitted == 1
    });
    proxy.partition(true);
    let err = fut.result_timeout(Duration::from_secs(30)).unwrap_err();
    let cause = RedisError::of(&err).unwrap_or_else(|| panic!("{err}"));
    assert!(cause.is_lost_contact() && cause.may_have_run(), "{err}");
    assert!(err.to_string().contains("may have run"), "{err}");
    proxy.partition(false);
}
