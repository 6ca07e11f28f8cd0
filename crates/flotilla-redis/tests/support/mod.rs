//! A real `redis-server` per test, on a unix socket in a temporary directory, and workers in
//! real child processes.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla::process::{Process, StartedProcess};

pub mod foreign;
pub mod hosts;
mod log;
pub mod proxy;

pub use log::log_to_stderr;

/// A `redis-server` child, killed on drop.
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    persistent: bool,
    password: Option<String>,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server with persistence off.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false, None)
    }

    /// Starts a server; `persistent` turns on the append-only file (fsync always).
    pub fn start_with(persistent: bool, password: Option<&str>) -> RedisServer {
        RedisServer::start_configured(persistent, password, &[])
    }

    /// Starts a server with persistence off and extra `--name value` settings.
    pub fn start_with_config(extra: &[&str]) -> RedisServer {
        RedisServer::start_configured(false, None, extra)
    }

    fn start_configured(persistent: bool, password: Option<&str>, extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut server = RedisServer {
            dir,
            child: None,
            persistent,
            password: password.map(str::to_owned),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.launch();
        server
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// `redis+unix://` URL of the server, with the password if it has one.
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis+unix://{}?pass={pw}", self.socket().display()),
            None => format!("redis+unix://{}", self.socket().display()),
        }
    }

    fn launch(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .arg("--loglevel")
            .arg("warning");
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(pw) = &self.password {
            cmd.arg("--requirepass").arg(pw);
        }
        cmd.args(&self.extra);
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(err) => panic!(
                "could not start redis-server ({err}); install it (`.ci/run` does: apt-get \
                 install redis-server)"
            ),
        };
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls with PING until the server answers (it is an external process coming up).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = redis::Client::open(self.url()).expect("a valid URL");
        loop {
            if let Ok(mut conn) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("redis-server exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the server (SIGTERM: it writes its data out) and starts it again on the same
    /// socket and directory.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Kills the server with SIGKILL (it writes nothing out) and starts it again on the same
    /// socket: without persistence, everything it held is gone.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.launch();
    }

    /// The server's directory, for sockets of the test's own.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: sending a signal to our own child process has no memory-safety
            // preconditions.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// A plain connection for inspecting or tampering with the server.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("a valid URL")
            .get_connection()
            .expect("a connection to the test server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a worker until killed; started in a child process by [`spawn_worker`].
#[flotilla::task]
pub fn serve(url: String, slots: usize, visibility_ms: u64) {
    run_worker(&url, slots, visibility_ms);
}

/// Runs a worker holding at most `slots` tasks (no prefetch) until killed; started by
/// [`spawn_worker_unbuffered`].
#[flotilla::task]
pub fn serve_unbuffered(url: String, slots: usize, visibility_ms: u64) {
    let builder = flotilla_redis::Worker::builder(&url).prefetch(0);
    run_worker_with(builder, slots, visibility_ms);
}

/// Runs a worker on this process until it is killed; exits with code 3 if it cannot start.
pub fn run_worker(url: &str, slots: usize, visibility_ms: u64) {
    run_worker_with(flotilla_redis::Worker::builder(url), slots, visibility_ms);
}

fn run_worker_with(builder: flotilla_redis::WorkerBuilder, slots: usize, visibility_ms: u64) {
    log_to_stderr();
    let result = builder
        .slots(slots)
        .visibility_timeout(Duration::from_millis(visibility_ms))
        .run();
    if let Err(err) = result {
        eprintln!("worker failed: {err}");
        std::process::exit(3);
    }
}

/// Starts a worker in a child process (a daemon: it dies with the test).
pub fn spawn_worker(url: &str, slots: usize, visibility: Duration) -> StartedProcess {
    let args = (url.to_owned(), slots, visibility.as_millis() as u64);
    start_daemon(Process::new(ServeTask, args))
}

fn start_daemon(process: Process) -> StartedProcess {
    process.with_daemon(true).start().expect("a worker process")
}

/// Starts a worker that takes no task beyond its slots (so that, while they are busy, it
/// takes nothing, not even over), in a child process.
pub fn spawn_worker_unbuffered(url: &str, slots: usize, visibility: Duration) -> StartedProcess {
    let args = (url.to_owned(), slots, visibility.as_millis() as u64);
    start_daemon(Process::new(ServeUnbufferedTask, args))
}

/// Polls `ready` until it holds, failing after a generous deadline; for waiting on other
/// processes, which can signal us no other way.
pub fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Creates `dir/me`, then waits (a deadline-bounded poll of another process's file) until
/// `dir/other` exists: true only if both ran at the same time.
#[flotilla::task]
pub fn meet(dir: PathBuf, me: String, other: String) -> bool {
    std::fs::write(dir.join(&me), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join(&other).exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Asserts that `cluster` runs two tasks at once (both halves of a meeting).
pub fn runs_two_at_once(cluster: &flotilla_redis::RedisExecutor, round: &str) {
    use flotilla::Executor;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (format!("{round}-a"), format!("{round}-b"));
    let first = cluster
        .submit(MeetTask, (dir.path().to_owned(), a.clone(), b.clone()))
        .unwrap();
    let second = cluster
        .submit(MeetTask, (dir.path().to_owned(), b, a))
        .unwrap();
    let limit = Duration::from_secs(90);
    assert!(first.result_timeout(limit).unwrap() && second.result_timeout(limit).unwrap());
}

/// The Redis worker process running this task: the task runs in a pool worker, whose parent
/// is the pool's supervisor, whose parent is the Redis worker.
pub fn parent_pid() -> u32 {
    // SAFETY: getppid has no preconditions.
    let supervisor = unsafe { libc::getppid() };
    let stat = std::fs::read_to_string(format!("/proc/{supervisor}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

/// The first time, records which Redis worker runs it and hangs until that worker is killed; then returns the worker's pid.
#[flotilla::task]
pub fn hang_first_time(dir: PathBuf) -> u32 {
    let worker = parent_pid();
    let marker = dir.join("first");
    if !marker.exists() {
        let tmp = dir.join("first.tmp");
        std::fs::write(&tmp, worker.to_string()).unwrap();
        std::fs::rename(&tmp, &marker).unwrap();
        std::thread::sleep(Duration::from_secs(600));
    }
    worker
}

/// Waits until a [`hang_first_time`] task started in `dir` hangs on one of `workers`, kills
/// that worker with SIGKILL, and returns its pid.
pub fn kill_the_worker_running_it(dir: &std::path::Path, workers: &[StartedProcess]) -> u32 {
    let marker = dir.join("first");
    eventually("the task to start", || marker.exists());
    let first: u32 = std::fs::read_to_string(&marker).unwrap().parse().unwrap();
    let victim = workers
        .iter()
        .find(|w| w.pid() == first)
        .expect("the task runs on one of our workers");
    victim.kill();
    assert!(victim.join_timeout(Duration::from_secs(60)));
    first
}
