//! The primes example from the `concurrent.futures` documentation, on a cluster: the same
//! `map`, through Redis, with two worker processes.
//!
//! Run as is, it starts a throwaway `redis-server` (which must be installed: `apt-get install
//! redis-server`) on a unix socket in a temporary directory, starts two workers — this same
//! program with the `worker` argument — and maps `is_prime` over the numbers:
//!
//! ```text
//! cargo run --example redis_primes
//! ```
//!
//! On several machines, point everything at one Redis server. On each worker machine:
//!
//! ```text
//! redis_primes worker redis://redis-host:6379
//! ```
//!
//! and wherever you want the results:
//!
//! ```text
//! redis_primes redis://redis-host:6379
//! ```
//!
//! Workers must be built from the same code as the client; one built from other code refuses
//! the tasks with an error that says so. A worker killed mid-task loses its lease, and another
//! worker runs the task again.

use std::error::Error;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla::Executor;
use flotilla_redis::{RedisExecutor, Worker};

const PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

/// Trial division by odd numbers up to the square root, as in the Python docs.
#[flotilla::task]
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n == 2 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    (3..=n.isqrt()).step_by(2).all(|i| !n.is_multiple_of(i))
}

fn python_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, url] if mode == "worker" => {
            // Worker mode: serve until killed. Two slots: two tasks at once, each in its own
            // process.
            Worker::builder(url).slots(2).run()?;
            Ok(())
        }
        [url] => compute(url),
        [] => {
            let server = LocalRedis::start()?;
            let url = server.url();
            let exe = std::env::current_exe()?;
            let mut workers = Vec::new();
            for _ in 0..2 {
                workers.push(Reaped(
                    Command::new(&exe)
                        .arg("worker")
                        .arg(&url)
                        .stdin(Stdio::null())
                        .spawn()?,
                ));
            }
            let outcome = compute(&url);
            drop(workers);
            outcome
        }
        _ => Err("usage: redis_primes [worker] [REDIS_URL]".into()),
    }
}

fn compute(url: &str) -> Result<(), Box<dyn Error>> {
    let cluster = RedisExecutor::connect(url)?;
    let results = cluster.map(IsPrimeTask, PRIMES).chunksize(2);
    let mut verdicts = Vec::new();
    for (number, prime) in PRIMES.iter().zip(results) {
        let prime = prime?;
        println!("{number} is prime: {} (on Redis)", python_bool(prime));
        verdicts.push(prime);
    }
    assert_eq!(verdicts, [true, true, true, true, true, false]);
    let status = cluster.status()?;
    println!(
        "{} tasks completed by {} live workers",
        status.completed,
        status.workers.len()
    );
    Ok(())
}

/// A child process killed when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A throwaway `redis-server` on a unix socket, without persistence.
struct LocalRedis {
    dir: PathBuf,
    _server: Reaped,
}

impl LocalRedis {
    fn start() -> Result<LocalRedis, Box<dyn Error>> {
        let dir = std::env::temp_dir().join(format!("redis_primes-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("redis.sock");
        let server = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|err| {
                format!(
                    "could not start redis-server ({err}); install it: apt-get install redis-server"
                )
            })?;
        let local = LocalRedis {
            dir,
            _server: Reaped(server),
        };
        // Wait for the server to answer: it is another process, so poll, with a deadline.
        let deadline = Instant::now() + Duration::from_secs(30);
        while flotilla_redis::Status::fetch(&local.url(), "flotilla").is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(local)
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.dir.join("redis.sock").display())
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
