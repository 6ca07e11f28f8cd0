//! What goes wrong on a cluster, made to happen: workers killed with SIGKILL mid-task, a task
//! that kills every worker it lands on, a Redis restart, bad passwords, no server, garbage in
//! the stream.

mod support;

use std::time::Duration;

use flotilla::process::StartedProcess;
use flotilla::{Error, Executor, as_completed_timeout};
use flotilla_redis::{RedisExecutor, Status};
use support::{
    HangFirstTimeTask, RedisServer, eventually, kill_the_worker_running_it, parent_pid,
    spawn_worker,
};

/// Short leases, so that lost tasks come back quickly (long enough that a busy CI machine
/// does not lose a live worker's lease).
const LEASE: Duration = Duration::from_secs(3);

/// Kills the Redis worker process that runs it.
#[flotilla::task]
fn kill_my_worker() -> u32 {
    // SAFETY: sending a signal has no memory-safety preconditions.
    unsafe { libc::kill(parent_pid() as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_secs(600));
    0
}

#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

#[flotilla::task]
fn nap_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    x * x
}

#[test]
fn killed_worker_task_completes_elsewhere_once() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let workers = [spawn_worker(&url, 1, LEASE), spawn_worker(&url, 1, LEASE)];
    let cluster = RedisExecutor::connect(&url).unwrap();

    let fut = cluster
        .submit(HangFirstTimeTask, dir.path().to_owned())
        .unwrap();
    let first = kill_the_worker_running_it(dir.path(), &workers);

    let second = fut.result_timeout(Duration::from_secs(120)).unwrap();
    assert_ne!(second, first, "the task must finish on the other worker");
    let status = cluster.status().unwrap();
    assert!(status.retried >= 1, "the retry is counted: {status}");
    assert_eq!(status.completed, 1, "exactly one result: {status}");
    assert_eq!((status.running, status.queued), (0, 0), "{status}");
    assert_eq!(cluster.unmatched_results(), 0);
}

#[test]
fn task_that_kills_every_worker_ends_as_worker_lost() {
    let server = RedisServer::start();
    let url = server.url();
    let cluster = RedisExecutor::builder(&url).max_retries(2).build().unwrap();
    let fut = cluster.submit(KillMyWorkerTask, ()).unwrap();
    let mut worker = spawn_worker(&url, 1, LEASE);
    let mut started = 1;
    // Supervise: replace each worker the task kills, as a process manager would.
    let err = loop {
        match fut.result_timeout(Duration::from_millis(50)) {
            Err(err) if err.is_timeout() => {}
            Ok(value) => panic!("the task cannot succeed, got {value}"),
            Err(err) => break err,
        }
        if !worker.is_alive() {
            assert!(started < 10, "too many workers died");
            worker = spawn_worker(&url, 1, LEASE);
            started += 1;
        }
    };
    assert!(matches!(err, Error::WorkerLost { attempts: 3 }), "{err}");
    assert!(err.is_worker_lost());
    let status = cluster.status().unwrap();
    assert_eq!(
        (status.lost, status.retried, status.failed),
        (1, 2, 1),
        "{status}"
    );
    assert_eq!(status.running, 0, "{status}");
}

#[test]
fn redis_restart_with_tasks_queued() {
    let mut server = RedisServer::start_with(true, None);
    let url = server.url();
    let _worker = spawn_worker(&url, 1, LEASE);
    let cluster = RedisExecutor::connect(&url).unwrap();
    let mut futures: Vec<_> = (0..100u64)
        .map(|x| cluster.submit(NapSquareTask, x).unwrap())
        .collect();
    futures[0].result_timeout(Duration::from_secs(120)).unwrap();
    assert!(
        cluster.status().unwrap().queued > 0,
        "tasks must still be queued"
    );
    server.restart();
    // The client submits again through the restarted server too.
    futures.extend((100..120u64).map(|x| cluster.submit(NapSquareTask, x).unwrap()));
    for (x, fut) in futures.iter().enumerate() {
        let x = x as u64;
        assert_eq!(fut.result_timeout(Duration::from_secs(120)).unwrap(), x * x);
    }
    let status = cluster.status().unwrap();
    assert_eq!(status.completed, 120, "{status}");
    assert_eq!(cluster.unmatched_results(), 0);
}

#[test]
fn ten_thousand_tasks_with_a_worker_restarted_halfway() {
    const TASKS: u64 = 10_000;
    let server = RedisServer::start();
    let url = server.url();
    let mut workers: Vec<StartedProcess> =
        vec![spawn_worker(&url, 2, LEASE), spawn_worker(&url, 2, LEASE)];
    let cluster = RedisExecutor::connect(&url).unwrap();
    let futures: Vec<_> = (0..TASKS)
        .map(|x| cluster.submit(SquareTask, x).unwrap())
        .collect();
    let mut seen = vec![false; TASKS as usize];
    for (done, fut) in as_completed_timeout(&futures, Duration::from_secs(600)).enumerate() {
        let value = fut.unwrap().result().unwrap();
        let x = (value as f64).sqrt().round() as usize;
        assert!(!seen[x], "task {x} reported twice");
        seen[x] = true;
        if done == TASKS as usize / 2 {
            workers[0].kill();
            assert!(workers[0].join_timeout(Duration::from_secs(60)));
            workers[0] = spawn_worker(&url, 2, LEASE);
        }
    }
    assert!(seen.iter().all(|s| *s), "a task was lost");
    let status = cluster.status().unwrap();
    assert_eq!(status.completed, TASKS as i64, "{status}");
    assert_eq!((status.queued, status.running), (0, 0), "{status}");
    assert_eq!(cluster.unmatched_results(), 0);
}

#[test]
fn bad_passwords_and_missing_servers_are_clear_errors() {
    let server = RedisServer::start_with(false, Some("s3cret"));
    let socket = server.socket();
    let wrong = format!("redis+unix://{}?pass=nope", socket.display());
    let err = RedisExecutor::connect(&wrong).unwrap_err();
    assert!(err.to_string().contains("authentication failed"), "{err}");
    assert!(
        !err.to_string().contains("nope"),
        "the password must not be shown: {err}"
    );
    let none = format!("redis+unix://{}", socket.display());
    let err = RedisExecutor::connect(&none).unwrap_err();
    assert!(err.to_string().contains("authentication"), "{err}");
    let err = flotilla_redis::Worker::builder(&wrong).start().unwrap_err();
    assert!(err.to_string().contains("authentication failed"), "{err}");
    // The right password works.
    assert!(RedisExecutor::connect(&server.url()).is_ok());

    let err = RedisExecutor::connect("redis+unix:///nonexistent/redis.sock").unwrap_err();
    assert!(err.to_string().contains("no server is listening"), "{err}");
    let err = RedisExecutor::connect("redis://127.0.0.1:1").unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    let err = RedisExecutor::connect("http://example").unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    let err = Status::fetch("redis+unix:///nonexistent/redis.sock", "flotilla").unwrap_err();
    assert!(err.to_string().contains("no server is listening"), "{err}");
}

#[test]
fn malformed_entries_are_refused_and_nothing_crashes() {
    let server = RedisServer::start();
    let url = server.url();
    let worker = spawn_worker(&url, 1, LEASE);
    let cluster = RedisExecutor::connect(&url).unwrap();
    assert_eq!(cluster.submit(SquareTask, 2).unwrap().result().unwrap(), 4);

    let mut conn = server.conn();
    let version = format!("1.{}", flotilla::backend::PAYLOAD_VERSION);
    let junk: [&[(&str, &[u8])]; 4] = [
        &[("foo", b"bar")],
        &[
            ("id", b"x1"),
            ("v", version.as_bytes()),
            ("m", b"\xff\xff\xff"),
        ],
        &[("id", b"x2"), ("v", b"999.1"), ("m", b"whatever")],
        &[("id", b""), ("v", version.as_bytes()), ("m", b"")],
    ];
    for fields in junk {
        let mut cmd = redis::cmd("XADD");
        cmd.arg("flotilla:tasks").arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(*v);
        }
        cmd.query::<String>(&mut conn).unwrap();
    }
    // Garbage in this client's result stream, too.
    let results: Vec<String> = redis::cmd("KEYS")
        .arg("flotilla:results:*")
        .query(&mut conn)
        .unwrap();
    assert_eq!(results.len(), 1);
    redis::cmd("XADD")
        .arg(&results[0])
        .arg("*")
        .arg("junk")
        .arg("1")
        .query::<String>(&mut conn)
        .unwrap();

    eventually("the entries to be refused", || {
        cluster.status().unwrap().malformed == 4
    });
    assert_eq!(cluster.submit(SquareTask, 3).unwrap().result().unwrap(), 9);
    assert!(worker.is_alive());
    assert_eq!(cluster.unmatched_results(), 1);
    let len: i64 = redis::cmd("XLEN")
        .arg("flotilla:tasks")
        .query(&mut conn)
        .unwrap();
    assert_eq!(len, 0, "refused entries are removed");
}
