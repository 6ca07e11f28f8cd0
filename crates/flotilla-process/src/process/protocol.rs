//! The messages between a queue handle in another process and the queue's broker.
//!
//! Frames are the process pool's ([`wire`](crate::wire)): a `u32` length, then a
//! postcard header, then for `Put` requests and `Item` replies the encoded item. A connection
//! starts with one [`Request::Attach`] naming the queue by its secret token; the broker reads
//! that first frame with a small size limit, so an unauthenticated peer cannot make it
//! allocate. Each later request gets exactly one reply.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Bumped whenever the messages change.
pub(crate) const VERSION: u32 = 2;

/// The largest first frame the broker reads from a peer that has not yet named a queue.
pub(crate) const MAX_ATTACH_FRAME: usize = 256;

/// A queue's secret name: whoever knows it may use the queue.
pub(crate) type Token = [u8; 16];

/// How long an operation may wait.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Wait {
    /// Until it can proceed.
    Forever,
    /// Up to this long (zero: not at all).
    For(Duration),
}

impl Wait {
    /// The instant the wait ends, if it ends.
    pub(crate) fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Forever => None,
            Wait::For(limit) => Some(
                Instant::now()
                    .checked_add(limit)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)),
            ),
        }
    }
}

/// From a queue handle to the broker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The first message on a connection: which queue, proven by its token.
    Attach { version: u32, token: Token },
    /// Add the item that follows the header.
    Put { wait: Wait },
    /// Remove and return an item.
    Get { wait: Wait },
    /// `JoinableQueue::task_done`.
    TaskDone,
    /// `JoinableQueue::join`.
    Join,
    /// `qsize`, `is_empty`, `is_full`, `is_shut_down`.
    Status,
    /// The handle is being passed on to another process: keep the queue alive until that
    /// process attaches.
    Export,
    /// `shutdown(immediate)`.
    Shutdown { immediate: bool },
}

/// From the broker to a queue handle.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The connection is attached to the queue.
    Attached,
    /// The request succeeded.
    Done,
    /// An item, which follows the header.
    Item,
    /// The queue stayed full for the whole wait.
    Full,
    /// The queue stayed empty for the whole wait.
    Empty,
    /// The number of items, and whether the queue was shut down.
    Status { size: u64, shut_down: bool },
    /// The request is not allowed (like `task_done` without a matching item).
    Invalid(String),
    /// The request could not be understood; the broker closes the connection.
    Refused(String),
    /// The queue was shut down: a put fails, and so does a get once it is empty.
    ShutDown,
}
