//! `thumbnails demo --executor redis+unix://...` with a `thumbnails worker`: the resize step on
//! a Redis executor, against a real `redis-server` (`.ci/run` installs it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_resizes_on_redis_workers() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let server = Command::new("redis-server")
        .args(["--port", "0", "--unixsocket"])
        .arg(&socket)
        .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("redis-server cannot start ({err}); `.ci/run` installs it (apt-get install redis-server)")
        });
    let _server = Reaped(server);
    let url = format!("redis+unix://{}", socket.display());
    // redis-server is another process: poll until it answers, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    while flotilla_redis::Status::fetch(&url, "flotilla").is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let worker = Command::new(env!("CARGO_BIN_EXE_thumbnails"))
        .args(["worker", &url, "--slots", "2"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _worker = Reaped(worker);

    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_thumbnails"))
        .env_remove("THUMBNAILS_LOG")
        .args(["demo", "--quiet", "--json", "--executor", &url, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["thumbnails"], 24, "{report}");
    let status = flotilla_redis::Status::fetch(&url, "flotilla").unwrap();
    assert_eq!(status.completed, 8, "{status}");
    assert_eq!(status.workers.len(), 1, "{status}");
}
