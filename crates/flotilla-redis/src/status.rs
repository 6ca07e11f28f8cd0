//! [`Status`]: what a namespace holds right now, for operators.

use std::fmt;

use flotilla::Error;

use crate::conn::Conn;
use crate::protocol;

/// Counters and live workers of one key namespace: `flotilla-redis status`, or
/// [`RedisExecutor::status`](crate::RedisExecutor::status).
///
/// Counters are kept by the server-side scripts as tasks change state; they count since the
/// namespace was first used (delete `{prefix}:stats` to reset them).
///
/// # Examples
///
/// ```no_run
/// let status = flotilla_redis::Status::fetch("redis://127.0.0.1", "flotilla")?;
/// println!("{} queued, {} running, {} workers", status.queued, status.running, status.workers.len());
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Tasks waiting for a worker.
    pub queued: i64,
    /// Tasks held by a worker.
    pub running: i64,
    /// Deliveries after a worker was lost (each retry counts once).
    pub retried: i64,
    /// Tasks that finished with an error, including worker-lost and refused ones.
    pub failed: i64,
    /// Tasks given up after `max_retries` lost workers (also counted in `failed`).
    pub lost: i64,
    /// Tasks that finished with a value.
    pub completed: i64,
    /// Tasks cancelled.
    pub cancelled: i64,
    /// Tasks dropped unrun because their time to live ran out in the queue (also counted in
    /// `failed`).
    pub expired: i64,
    /// Stream entries refused as malformed or from another build.
    pub malformed: i64,
    /// Tasks ever submitted.
    pub submitted: i64,
    /// Live workers, by name, with what each last said about itself (slots, tasks held, pid,
    /// host).
    pub workers: Vec<(String, String)>,
}

impl Status {
    /// Connects to `url` and reads the status of namespace `prefix`.
    ///
    /// # Errors
    ///
    /// As [`RedisExecutor::connect`](crate::RedisExecutor::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(flotilla_redis::Status::fetch("redis://127.0.0.1:1", "flotilla").is_err());
    /// ```
    pub fn fetch(url: &str, prefix: &str) -> Result<Status, Error> {
        let mut conn = Conn::open(url)?;
        Status::fetch_with(&mut conn, prefix)
    }

    pub(crate) fn fetch_with(conn: &mut Conn, prefix: &str) -> Result<Status, Error> {
        let stats_key = protocol::stats_key(prefix);
        let never = std::sync::atomic::AtomicBool::new(false);
        let result = conn.retry(&never, Some(std::time::Duration::from_secs(30)), |c| {
            let counters: Vec<(String, i64)> = redis::cmd("HGETALL").arg(&stats_key).query(c)?;
            let mut workers = Vec::new();
            for name in protocol::live_workers(c, prefix)? {
                let info: Option<String> = redis::cmd("GET")
                    .arg(protocol::worker_key(prefix, &name))
                    .query(c)?;
                if let Some(info) = info {
                    workers.push((name, info));
                }
            }
            Ok((counters, workers))
        });
        let (counters, workers) = result?;
        let mut status = Status {
            workers,
            ..Status::default()
        };
        for (name, value) in counters {
            let slot = match name.as_str() {
                "queued" => &mut status.queued,
                "running" => &mut status.running,
                "retried" => &mut status.retried,
                "failed" => &mut status.failed,
                "lost" => &mut status.lost,
                "completed" => &mut status.completed,
                "cancelled" => &mut status.cancelled,
                "expired" => &mut status.expired,
                "malformed" => &mut status.malformed,
                "submitted" => &mut status.submitted,
                _ => continue,
            };
            *slot = value;
        }
        Ok(status)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "queued {}  running {}  retried {}  failed {} (worker lost {}, expired {})  completed {}  cancelled {}  malformed {}  submitted {}",
            self.queued,
            self.running,
            self.retried,
            self.failed,
            self.lost,
            self.expired,
            self.completed,
            self.cancelled,
            self.malformed,
            self.submitted
        )?;
        writeln!(f, "live workers: {}", self.workers.len())?;
        for (name, info) in &self.workers {
            writeln!(f, "  {name}  {info}")?;
        }
        Ok(())
    }
}
