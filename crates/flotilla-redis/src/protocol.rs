//! What lives in Redis, under one key prefix, and the Lua scripts that change it atomically.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:tasks` | stream, consumer group `workers` | one entry per queued task: `id`, `v` (version), `c` (the submitting client), `m` (the [`TaskMsg`]) |
//! | `{p}:task:{id}` | hash, expires after the TTL | `status` (queued, running, cancelling, done, failed, cancelled, lost), `attempts`, `client`, `worker`, `entry` |
//! | `{p}:task:{id}:passed` | hash, expires with the task | the workers that passed the task on (they do not have it), each with the failure its client hears if nobody has it |
//! | `{p}:results:{client}` | stream, expires after the TTL | one entry when a task starts (kind `started`) and one when it finishes: `id`, `k` (kind), `a` (attempts), `v`, `r` (payload) |
//! | `{p}:stats` | hash | counters for [`Status`](crate::Status) |
//! | `{p}:worker:{id}` | string, expires unless renewed | a live worker's heartbeat |
//!
//! Every change of a task's status goes through one of the scripts below, so a claim and a
//! cancel can never both win.

use serde::{Deserialize, Serialize};

use crate::error::RedisError;

/// The version of the messages in the streams (task entries and results). Entries with another
/// version are refused with a message naming both, never decoded.
pub(crate) const VERSION: u32 = 1;

/// The version written into entries: this crate's messages and flotilla's payload encoding.
pub(crate) fn version() -> String {
    format!("{VERSION}.{}", flotilla::backend::PAYLOAD_VERSION)
}

/// The consumer group of the task stream.
pub(crate) const GROUP: &str = "workers";

pub(crate) fn tasks_key(prefix: &str) -> String {
    format!("{prefix}:tasks")
}

pub(crate) fn results_key(prefix: &str, client: &str) -> String {
    format!("{prefix}:results:{client}")
}

pub(crate) fn stats_key(prefix: &str) -> String {
    format!("{prefix}:stats")
}

pub(crate) fn worker_key(prefix: &str, worker: &str) -> String {
    format!("{prefix}:worker:{worker}")
}

pub(crate) fn client_key(prefix: &str, client: &str) -> String {
    format!("{prefix}:client:{client}")
}

pub(crate) fn task_key(prefix: &str, id: &str) -> String {
    format!("{prefix}:task:{id}")
}

/// The names of the live workers (those whose heartbeat has not expired), sorted.
pub(crate) fn live_workers(
    c: &mut redis::Connection,
    prefix: &str,
) -> redis::RedisResult<Vec<String>> {
    let pattern = worker_key(prefix, "*");
    let key_prefix = worker_key(prefix, "");
    let mut names = Vec::new();
    let mut cursor = 0u64;
    // Bounded: a SCAN ends when its cursor comes back to 0; 10,000 rounds of 1,000 keys is
    // far beyond any real namespace.
    for _ in 0..10_000 {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(c)?;
        names.extend(
            keys.iter()
                .filter_map(|key| key.strip_prefix(&key_prefix).map(str::to_owned)),
        );
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// A task as it travels in the `m` field of a task entry.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskMsg {
    /// The registered task's name.
    pub(crate) name: String,
    /// [`flotilla::backend::signature`] of the task in the client's build.
    pub(crate) signature: u64,
    /// Whether `args` is one call's arguments or a chunk's.
    pub(crate) chunk: bool,
    /// Kill the task if it runs longer (milliseconds).
    pub(crate) timeout_ms: Option<u64>,
    /// How many deliveries before the task is given up as worker-lost.
    pub(crate) max_attempts: u32,
    /// How long the task's state and result are kept (milliseconds).
    pub(crate) ttl_ms: u64,
    /// The encoded arguments.
    #[serde(with = "serde_bytes")]
    pub(crate) args: Vec<u8>,
}

/// A task's failure, as it travels in the `r` field of an `err` result.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
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
    /// A failure of the cluster itself (appended last: older variants keep their numbers).
    Redis(RedisError),
}

impl WireError {
    pub(crate) fn from_error(err: &flotilla::Error) -> WireError {
        use flotilla::Error;
        match err {
            Error::Panicked(panic) => WireError::Panicked {
                message: panic.message().to_owned(),
                location: panic.location().map(str::to_owned),
            },
            Error::WorkerDied(exit) => WireError::WorkerDied {
                pid: exit.pid(),
                code: exit.code(),
                signal: exit.signal(),
            },
            Error::TaskTimedOut { limit } => WireError::TaskTimedOut {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            Error::UnknownTask { name } => WireError::UnknownTask { name: name.clone() },
            Error::Codec { message } => WireError::Codec {
                message: message.clone(),
            },
            other if RedisError::of(other).is_some() => match RedisError::of(other) {
                Some(err) => WireError::Redis(err.clone()),
                None => unreachable!("checked by the guard"),
            },
            other => WireError::Other {
                message: other.to_string(),
            },
        }
    }

    pub(crate) fn into_error(self) -> flotilla::Error {
        use flotilla::{Error, Panic, WorkerExit};
        match self {
            WireError::Panicked { message, location } => {
                Error::Panicked(Panic::new(message, location))
            }
            WireError::WorkerDied { pid, code, signal } => {
                Error::WorkerDied(WorkerExit::new(pid, code, signal))
            }
            WireError::TaskTimedOut { limit_ms } => Error::TaskTimedOut {
                limit: std::time::Duration::from_millis(limit_ms),
            },
            WireError::UnknownTask { name } => Error::UnknownTask { name },
            WireError::Codec { message } => Error::Codec { message },
            WireError::Other { message } => Error::Broken { reason: message },
            WireError::Redis(err) => err.into(),
        }
    }
}

/// Queues tasks, idempotently (a retried submit finds a task already there).
///
/// ARGV: prefix, version, client, then for each task: task id, message, ttl (ms). Returns how
/// many were queued anew.
pub(crate) const SUBMIT: &str = r#"
local p, version, client = ARGV[1], ARGV[2], ARGV[3]
local queued = 0
for i = 4, #ARGV, 3 do
  local id, msg, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = p .. ':task:' .. id
  if redis.call('EXISTS', key) == 0 then
    local entry = redis.call('XADD', p .. ':tasks', '*', 'id', id, 'v', version, 'c', client, 'm', msg)
    redis.call('HSET', key, 'status', 'queued', 'attempts', 0, 'entry', entry, 'client', client)
    redis.call('PEXPIRE', key, ttl)
    queued = queued + 1
  end
end
redis.call('HINCRBY', p .. ':stats', 'queued', queued)
redis.call('HINCRBY', p .. ':stats', 'submitted', queued)
return queued
"#;

/// Cancels a task: exactly when it is still queued, or asks its worker to stop it.
///
/// ARGV: prefix, task id, '1' to stop it if running. Returns 1 if it was queued and is now
/// cancelled for good, 2 if it is running and its worker will stop it, 3 if it was already
/// cancelled, 4 if it is running and was left alone, 0 if it has finished.
pub(crate) const CANCEL: &str = r#"
local p = ARGV[1]
local key = p .. ':task:' .. ARGV[2]
local status = redis.call('HGET', key, 'status')
if status == 'queued' then
  redis.call('HSET', key, 'status', 'cancelled')
  local entry = redis.call('HGET', key, 'entry')
  redis.call('XDEL', p .. ':tasks', entry)
  redis.call('HINCRBY', p .. ':stats', 'queued', -1)
  redis.call('HINCRBY', p .. ':stats', 'cancelled', 1)
  return 1
elseif status == 'running' and ARGV[3] == '1' then
  redis.call('HSET', key, 'status', 'cancelling')
  return 2
elseif status == 'running' then
  return 4
elseif status == 'cancelling' or status == 'cancelled' then
  return 3
end
return 0
"#;

/// Posts a final result for a task and retires its entry. Shared by CLAIM and FINISH.
const POST: &str = r#"
local function post(p, id, key, entry, kind, attempts, payload, ttl, version)
  local client = redis.call('HGET', key, 'client')
  local status = ({ok = 'done', err = 'failed', refused = 'failed', lost = 'lost', cancelled = 'cancelled'})[kind]
  redis.call('HSET', key, 'status', status)
  redis.call('PEXPIRE', key, ttl)
  if client then
    local results = p .. ':results:' .. client
    redis.call('XADD', results, '*', 'id', id, 'k', kind, 'a', attempts, 'v', version, 'r', payload)
    redis.call('PEXPIRE', results, ttl)
  end
  local stats = p .. ':stats'
  local counter = ({ok = 'completed', err = 'failed', refused = 'failed', lost = 'lost', cancelled = 'cancelled'})[kind]
  redis.call('HINCRBY', stats, counter, 1)
  if kind == 'lost' then redis.call('HINCRBY', stats, 'failed', 1) end
  redis.call('XACK', p .. ':tasks', 'workers', entry)
  redis.call('XDEL', p .. ':tasks', entry)
end
"#;

/// Retires an entry whose task is not to run any more: cancelled while it was held (its
/// client is told), its state expired before a worker took it (its client is told, by the `c`
/// field of the entry: it will never run), or finished, cancelled or lost meanwhile. Shared
/// by CLAIM and PASS; needs POST.
const RETIRE: &str = r#"
local function retire(p, id, key, entry, status, ttl, version)
  local stats = p .. ':stats'
  if status == 'cancelling' then
    redis.call('HINCRBY', stats, 'running', -1)
    local attempts = redis.call('HGET', key, 'attempts')
    post(p, id, key, entry, 'cancelled', attempts, '', ttl, version)
    return
  end
  if not status then
    local found = redis.call('XRANGE', p .. ':tasks', entry, entry)
    if found[1] then
      local fields = found[1][2]
      for j = 1, #fields - 1, 2 do
        if fields[j] == 'c' then
          local results = p .. ':results:' .. fields[j + 1]
          redis.call('XADD', results, '*', 'id', id, 'k', 'expired', 'a', 0, 'v', version, 'r', '')
          redis.call('PEXPIRE', results, ttl)
        end
      end
      redis.call('HINCRBY', stats, 'queued', -1)
      redis.call('HINCRBY', stats, 'expired', 1)
      redis.call('HINCRBY', stats, 'failed', 1)
    end
  end
  redis.call('XACK', p .. ':tasks', 'workers', entry)
  redis.call('XDEL', p .. ':tasks', entry)
end
"#;

/// Claims delivered entries for a worker, idempotently: a claim retried after its reply was
/// lost (same token) returns the same attempts instead of counting another delivery.
///
/// ARGV: prefix, worker, version, token, then for each entry: task id, entry id, max
/// attempts, ttl.
/// Returns, per entry, the attempt number to run it as, 0 if it is not to run (see RETIRE),
/// or -1 if it was given up as worker-lost (its result is posted).
pub(crate) fn claim_script() -> String {
    format!(
        "{POST}{RETIRE}{}",
        r#"
local p, worker, version, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local stats = p .. ':stats'
local out = {}
for i = 5, #ARGV, 4 do
  local id, entry, max_attempts, ttl = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local key = p .. ':task:' .. id
  local state = redis.call('HMGET', key, 'status', 'worker', 'claim', 'attempts')
  local status = state[1]
  if status == 'running' and state[2] == worker and state[3] == token then
    -- This very claim ran before and its reply was lost: the same answer again.
    out[#out + 1] = tonumber(state[4])
  elseif status == 'queued' or status == 'running' then
    local attempts = redis.call('HINCRBY', key, 'attempts', 1)
    if status == 'running' and attempts > max_attempts then
      redis.call('HINCRBY', stats, 'running', -1)
      post(p, id, key, entry, 'lost', attempts - 1, '', ttl, version)
      out[#out + 1] = -1
    else
      if status == 'queued' then
        redis.call('HINCRBY', stats, 'queued', -1)
        redis.call('HINCRBY', stats, 'running', 1)
        -- Tell the client, so that its future says it is running.
        local client = redis.call('HGET', key, 'client')
        if client then
          local results = p .. ':results:' .. client
          redis.call('XADD', results, '*', 'id', id, 'k', 'started', 'a', attempts, 'v', version, 'r', '')
          redis.call('PEXPIRE', results, ttl)
        end
      else
        redis.call('HINCRBY', stats, 'retried', 1)
      end
      redis.call('HSET', key, 'status', 'running', 'worker', worker, 'claim', token)
      redis.call('PEXPIRE', key, ttl)
      out[#out + 1] = attempts
    end
  else
    retire(p, id, key, entry, status, ttl, version)
    out[#out + 1] = 0
  end
end
return out
"#
    )
}

/// Posts the results of tasks this worker ran, unless another worker has taken them over.
///
/// ARGV: prefix, worker, version, then for each task: task id, entry id, attempt, kind,
/// payload, ttl. Returns per task 1 if the result was posted, 0 if it was stale and dropped.
pub(crate) fn finish_script() -> String {
    format!(
        "{POST}{}",
        r#"
local p, worker, version = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 6 do
  local id, entry, attempt, kind, payload, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local key = p .. ':task:' .. id
  local state = redis.call('HMGET', key, 'status', 'worker', 'attempts')
  if (state[1] == 'running' or state[1] == 'cancelling') and state[2] == worker and state[3] == attempt then
    redis.call('HINCRBY', p .. ':stats', 'running', -1)
    post(p, id, key, entry, kind, attempt, payload, ttl, version)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"#
    )
}

/// Retires a malformed or mismatched entry and, when it names a task whose owner is known,
/// tells the owner.
///
/// ARGV: prefix, version, entry id, task id (or ''), kind (`refused`: the payload is a
/// message; `err`: an encoded [`WireError`]), payload, ttl. Returns 1 if a client was told.
pub(crate) fn refuse_script() -> String {
    format!(
        "{POST}{}",
        r#"
local p, version, entry, id, kind, message, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
redis.call('HINCRBY', p .. ':stats', 'malformed', 1)
if id ~= '' then
  local key = p .. ':task:' .. id
  local status = redis.call('HGET', key, 'status')
  if status == 'queued' or status == 'running' or status == 'cancelling' then
    if status == 'queued' then
      redis.call('HINCRBY', p .. ':stats', 'queued', -1)
    else
      redis.call('HINCRBY', p .. ':stats', 'running', -1)
    end
    local attempts = redis.call('HGET', key, 'attempts')
    post(p, id, key, entry, kind, attempts, message, ttl, version)
    return 1
  end
end
redis.call('XACK', p .. ':tasks', 'workers', entry)
redis.call('XDEL', p .. ':tasks', entry)
return 0
"#
    )
}

/// Passes on an entry whose task this worker does not have (no task of that name, or one
/// with another fingerprint), leaving it to the workers that have it; when every live worker
/// has passed it, its client is told.
///
/// The passer is recorded in the hash `{p}:task:{id}:passed` (worker → why: `n` and a
/// `NoWorkerHasTask` failure, or `m` and a `WorkerMismatch`). The task is given up only when
/// every worker of the live list (the heartbeats the passer just read) is in it: a worker
/// that passed and died does not stand in for a live one that has not been offered the task.
/// Otherwise the entry is left in the consumer group as idle since the epoch (`TIME 0`), so
/// that the next takeover by any other worker, whatever its own lease, picks it up at once.
///
/// Given up, a task still queued fails with the recorded failure (a `WorkerMismatch` if any
/// passer had the task under another fingerprint, as it says most); a task that was running
/// (its worker lost its lease, and no live worker can run it again) fails as worker-lost.
///
/// ARGV: prefix, version, worker, entry id, task id, ttl, this worker's reason (`n` or `m`,
/// then the encoded failure), '1' if the live list is complete ('0': the heartbeats could not
/// be read, never give up), then the live workers. Returns 1 if the task was given up, 2 if
/// it was passed on, 0 if it is not to run any more (see RETIRE).
pub(crate) fn pass_script() -> String {
    format!(
        "{POST}{RETIRE}{}",
        r#"
local p, version, worker, entry, id, ttl, reason, complete = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local key = p .. ':task:' .. id
local state = redis.call('HMGET', key, 'status', 'attempts')
local status = state[1]
if status ~= 'queued' and status ~= 'running' then
  retire(p, id, key, entry, status, ttl, version)
  return 0
end
local passed = key .. ':passed'
redis.call('HSET', passed, worker, reason)
redis.call('PEXPIRE', passed, ttl)
local everyone = complete == '1'
for i = 9, #ARGV do
  if redis.call('HEXISTS', passed, ARGV[i]) == 0 then
    everyone = false
    break
  end
end
if not everyone then
  redis.call('XCLAIM', p .. ':tasks', 'workers', worker, 0, entry, 'TIME', 0, 'JUSTID')
  return 2
end
local stats = p .. ':stats'
if status == 'running' then
  redis.call('HINCRBY', stats, 'running', -1)
  post(p, id, key, entry, 'lost', state[2], '', ttl, version)
  return 1
end
for _, why in ipairs(redis.call('HVALS', passed)) do
  if string.sub(why, 1, 1) == 'm' then
    reason = why
    break
  end
end
redis.call('HINCRBY', stats, 'queued', -1)
redis.call('HINCRBY', stats, 'malformed', 1)
post(p, id, key, entry, 'err', 0, string.sub(reason, 2), ttl, version)
return 1
"#
    )
}
