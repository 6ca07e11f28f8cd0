//! What dropping a `RedisExecutor` means, and how long a task's state lives.

mod support;

use std::time::Duration;

use flotilla::{Executor, Shutdown};
use flotilla_redis::{RedisExecutor, Status};
use support::{RedisServer, hang_first_time, kill_the_worker_running_it, spawn_worker};

const LEASE: Duration = Duration::from_secs(3);

#[flotilla::task]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Issue #11, defect 5 / issue #10, item 6: dropping a `RedisExecutor` with 1,000 tasks
/// pending returned at once, its futures `Abandoned` while every task ran anyway and left its
/// result for nobody. Now it waits, as the thread and process pools do.
#[test]
fn dropping_the_executor_waits_for_its_tasks() {
    let server = RedisServer::start();
    let url = server.url();
    let _workers = [spawn_worker(&url, 2, LEASE), spawn_worker(&url, 2, LEASE)];
    let cluster = RedisExecutor::connect(&url).unwrap();
    let futures: Vec<_> = (0..1000u64)
        .map(|_| cluster.submit(nap, 1).unwrap())
        .collect();
    drop(cluster);
    let unfinished = futures.iter().filter(|f| !f.done()).count();
    assert_eq!(unfinished, 0, "drop returned with tasks unfinished");
    for fut in &futures {
        assert_eq!(fut.result().unwrap(), 1);
    }
    let status = Status::fetch(&url, "flotilla").unwrap();
    assert_eq!(
        (status.completed, status.queued, status.running),
        (1000, 0, 0),
        "{status}"
    );
    // Nothing is left behind for nobody: the result stream and the client's mark are gone.
    let mut conn = server.conn();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg("flotilla:results:*")
        .query(&mut conn)
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// After `shutdown(wait(false))` dropping does not block, and the futures still complete.
#[test]
fn drop_after_a_shutdown_that_does_not_wait_leaves_the_futures_completing() {
    let server = RedisServer::start();
    let url = server.url();
    let cluster = RedisExecutor::connect(&url).unwrap();
    let futures: Vec<_> = (0..200u64)
        .map(|_| cluster.submit(nap, 1).unwrap())
        .collect();
    cluster.shutdown(Shutdown::new().wait(false));
    // No worker yet: waiting here could not end; the drop must return all the same.
    drop(cluster);
    let _worker = spawn_worker(&url, 2, LEASE);
    for fut in &futures {
        assert_eq!(fut.result_timeout(Duration::from_secs(60)).unwrap(), 1);
    }
}

/// Issue #11, defect 9 (second part): a task running longer than its TTL lost its state
/// while it ran and was reported as expired; taken over after its worker died past the TTL,
/// it was reported as expired too.
#[test]
fn a_task_may_run_longer_than_its_ttl() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let workers = [
        spawn_worker(&url, 1, Duration::from_secs(1)),
        spawn_worker(&url, 1, Duration::from_secs(1)),
    ];
    let cluster = RedisExecutor::builder(&url)
        .ttl(Duration::from_millis(500))
        .build()
        .unwrap();
    let long = cluster.submit(nap, 2500).unwrap();
    assert_eq!(long.result_timeout(Duration::from_secs(60)).unwrap(), 2500);

    let taken_over = cluster
        .submit(hang_first_time, dir.path().to_owned())
        .unwrap();
    // Killed for longer than the TTL before another worker takes the task over.
    let first = kill_the_worker_running_it(dir.path(), &workers);
    let second = taken_over.result_timeout(Duration::from_secs(60)).unwrap();
    assert_ne!(second, first);
}
