//! A client of another build, written out by hand: task entries queued the way this crate's
//! submit script queues them (one atomic step), and their results read back raw.

use serde::{Deserialize, Serialize};

use super::eventually;

/// The task message as it travels in the `m` field of a task entry (this crate's wire format,
/// written out here as a client of another build would send it).
#[derive(Serialize)]
pub struct ForeignTask {
    pub name: String,
    pub signature: u64,
    pub chunk: bool,
    pub timeout_ms: Option<u64>,
    pub max_attempts: u32,
    pub ttl_ms: u64,
    #[serde(with = "serde_bytes")]
    pub args: Vec<u8>,
}

/// What the submit script does: the entry and the task's state in one step, so that no worker
/// can read the entry of a task whose state is not there yet.
const QUEUE: &str = r"
local entry = redis.call('XADD', 'flotilla:tasks', '*', 'id', ARGV[1], 'v', ARGV[2], 'c', ARGV[3], 'm', ARGV[4])
redis.call('HSET', 'flotilla:task:' .. ARGV[1], 'status', 'queued', 'attempts', 0, 'entry', entry, 'client', ARGV[3])
return entry
";

/// Queues a task as a client named `client` of another build would, and returns its id.
pub fn queue(conn: &mut redis::Connection, client: &str, n: u32, task: &ForeignTask) -> String {
    let id = format!("{client}-{n}");
    let version = format!("1.{}", flotilla::backend::PAYLOAD_VERSION);
    let _: String = redis::cmd("EVAL")
        .arg(QUEUE)
        .arg(0)
        .arg(&id)
        .arg(&version)
        .arg(client)
        .arg(postcard::to_allocvec(task).unwrap())
        .query(conn)
        .unwrap();
    id
}

/// Waits for the final result of task `id` in `client`'s result stream: (kind, payload).
pub fn result(conn: &mut redis::Connection, client: &str, id: &str) -> (String, Vec<u8>) {
    let key = format!("flotilla:results:{client}");
    let mut found = None;
    eventually("the task's result", || {
        let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query(conn)
            .unwrap();
        found = entries.ids.into_iter().find_map(|entry| {
            let field = |name: &str| entry.get::<Vec<u8>>(name).unwrap_or_default();
            let kind = String::from_utf8_lossy(&field("k")).into_owned();
            (field("id") == id.as_bytes() && kind != "started").then(|| (kind, field("r")))
        });
        found.is_some()
    });
    found.unwrap()
}

/// The workers that passed task `id` on, by name.
pub fn passers(conn: &mut redis::Connection, id: &str) -> Vec<String> {
    let mut workers: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("flotilla:task:{id}:passed"))
        .query(conn)
        .unwrap();
    workers.sort();
    workers
}

/// A task's failure as it travels in the `r` field of an `err` result (this crate's wire
/// format, variant for variant), for reading what a worker posted.
#[derive(Debug, Deserialize)]
pub enum WireError {
    Panicked {
        message: String,
        location: Option<String>,
    },
    WorkerDied {
        pid: u32,
        code: Option<i32>,
        signal: Option<i32>,
    },
    TaskTimedOut {
        limit_ms: u64,
    },
    UnknownTask {
        name: String,
    },
    Codec {
        message: String,
    },
    Other {
        message: String,
    },
    Redis(flotilla_redis::RedisError),
}

/// The Redis failure in the payload of an `err` result.
pub fn redis_failure(payload: &[u8]) -> flotilla_redis::RedisError {
    match postcard::from_bytes(payload) {
        Ok(WireError::Redis(err)) => err,
        other => panic!("not a Redis failure: {other:?}"),
    }
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
