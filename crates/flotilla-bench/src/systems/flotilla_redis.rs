//! `flotilla` on a cluster: `flotilla_redis::RedisExecutor`, with a `redis-server` on loopback
//! and two worker processes on this machine, for `redis-overhead`.
//!
//! The server is started here, in a temporary directory, on a free port of 127.0.0.1, with
//! persistence off; the workers are this program, re-executed through `flotilla::process`,
//! each running `flotilla_redis::Worker` with one slot. Both are stopped when the row is done.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla::process::Process;
use flotilla_redis::{RedisExecutor, Status, Worker};

use super::{Failure, Measurement, System};
use crate::scenarios::{self, Plan, Scenario};

/// The cluster row of `redis-overhead`.
#[derive(Debug)]
pub(crate) struct FlotillaRedis;

/// A worker of one slot, run in a child process until it is killed.
#[flotilla::task]
fn serve_redis(url: String) {
    if let Err(err) = Worker::builder(&url).slots(1).run() {
        eprintln!("flotilla-bench: redis worker: {err}");
        std::process::exit(3);
    }
}

/// A `redis-server` on 127.0.0.1 (shared with the `python rq` row), killed and cleaned up on drop.
pub(crate) struct Server {
    child: Child,
    dir: PathBuf,
    pub(crate) url: String,
}

impl Server {
    pub(crate) fn start() -> Result<Server, Failure> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| Failure::Failed(format!("no free port on 127.0.0.1: {err}")))?
            .port();
        let dir = std::env::temp_dir().join(format!("flotilla-bench-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|err| Failure::Failed(err.to_string()))?;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|err| {
                Failure::Unavailable(format!(
                    "redis-server cannot start ({err}): apt-get install redis-server"
                ))
            })?;
        let server = Server {
            child,
            dir,
            url: format!("redis://127.0.0.1:{port}"),
        };
        // The server is another process: poll it, with a deadline, until it answers.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Status::fetch(&server.url, "flotilla").is_err() {
            if Instant::now() > deadline {
                return Err(Failure::Failed(
                    "redis-server did not answer within 30 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl System for FlotillaRedis {
    fn name(&self) -> &'static str {
        "flotilla"
    }

    fn takes_part(&self, scenario: Scenario) -> bool {
        scenario == Scenario::RedisOverhead
    }

    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure> {
        let server = Server::start()?;
        let mut workers = Vec::new();
        for _ in 0..plan.workers {
            let worker = Process::new(ServeRedisTask, server.url.clone())
                .with_daemon(true)
                .start()
                .map_err(|err| Failure::Failed(err.to_string()))?;
            workers.push(worker);
        }
        let cluster =
            RedisExecutor::connect(&server.url).map_err(|err| Failure::Failed(err.to_string()))?;
        let samples =
            scenarios::repeat(plan.reps, || scenarios::task_overhead(&cluster, plan.items));
        drop(cluster);
        for worker in &workers {
            worker.kill();
            worker.join();
        }
        drop(server);
        Ok(Measurement::from_samples(plan.items, &samples?))
    }

    fn idle_memory_here(&self, _workers: usize) -> Result<i64, String> {
        Err("the cluster row has no idle-memory scenario".to_owned())
    }
}

/// RQ's row of `redis-overhead`: `python/rq_bench.py` against a server of its own.
#[derive(Debug)]
pub(crate) struct PythonRq;

/// The RQ script, run with `python3 -c`.
const RQ_SCRIPT: &str = include_str!("../../python/rq_bench.py");

/// RQ forks a process per job: it runs fewer items, compared per item.
const RQ_ITEMS: usize = 500;

impl System for PythonRq {
    fn name(&self) -> &'static str {
        "python rq"
    }

    fn takes_part(&self, scenario: Scenario) -> bool {
        scenario == Scenario::RedisOverhead
    }

    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure> {
        let has_rq = Command::new("python3")
            .args(["-c", "import rq"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !has_rq {
            return Err(Failure::Unavailable(
                "RQ is not installed for python3: pip install rq".into(),
            ));
        }
        let server = Server::start()?;
        let items = RQ_ITEMS.min(plan.python_items);
        let output = Command::new("python3")
            .arg("-c")
            .arg(RQ_SCRIPT)
            .arg(&server.url)
            .arg(items.to_string())
            .arg(plan.workers.to_string())
            .arg(plan.reps.to_string())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|err| Failure::Failed(format!("cannot run python3: {err}")))?;
        drop(server);
        if !output.status.success() {
            return Err(Failure::Failed(format!(
                "rq_bench.py failed: {}",
                String::from_utf8_lossy(&output.stdout)
            )));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            items: usize,
            seconds: Vec<f64>,
        }
        let answer: Answer = serde_json::from_slice(&output.stdout)
            .map_err(|err| Failure::Failed(format!("rq_bench.py answered badly: {err}")))?;
        Ok(Measurement::from_samples(answer.items, &answer.seconds))
    }

    fn idle_memory_here(&self, _workers: usize) -> Result<i64, String> {
        Err("RQ has no idle-memory row".to_owned())
    }
}
