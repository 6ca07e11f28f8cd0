//! The items and counters of one process queue, held in the process that created it.
//!
//! Handles in the creating process use this state directly; handles elsewhere reach it
//! through the [`broker`](super::broker), whose per-connection threads call the same methods
//! with the connection as `peer`, so that a wait is abandoned when that peer goes away.
//!
//! Items are stored encoded, as they travel. The state also counts who holds the queue:
//! handles in this process, connections from other processes, and handles in transit
//! (encoded, not yet attached). Once the queue is known to the broker and all three reach
//! zero, nobody can reach it any more and it is forgotten.

use std::collections::VecDeque;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use super::protocol::{Token, Wait};
use super::sys;
use flotilla_core::primitives::{Arc, Condvar, Mutex, MutexGuard, lock, wait_until};

/// How often a broker thread blocked on behalf of a remote handle checks that the handle's
/// connection is still open (a closed one abandons the wait and hands any item back).
const PEER_CHECK: Duration = Duration::from_millis(250);

/// Why a waiting operation gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The wait's time limit passed.
    TimedOut,
    /// The remote handle on whose behalf the broker waited disconnected.
    PeerGone,
    /// The queue was shut down (and, for a get, is empty).
    ShutDown,
}

#[derive(Debug)]
pub(crate) struct QueueState {
    inner: Mutex<Inner>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
}

#[derive(Debug)]
struct Inner {
    items: VecDeque<Vec<u8>>,
    maxsize: Option<usize>,
    /// Items put and not yet marked done (`JoinableQueue`).
    unfinished: usize,
    /// Handles in this process.
    locals: usize,
    /// Connections from handles in other processes.
    remotes: usize,
    /// Handles encoded for another process that has not attached yet.
    in_transit: usize,
    /// The broker's name for the queue, once a handle has been encoded.
    token: Option<Token>,
    /// Forgotten by the broker; terminal.
    retired: bool,
    /// Set by `shutdown`: puts fail, gets fail once the queue is empty.
    shut_down: bool,
}

impl Inner {
    fn full(&self) -> bool {
        self.maxsize.is_some_and(|max| self.items.len() >= max)
    }

    /// Whether nobody can reach the queue any more.
    fn unreachable(&self) -> bool {
        self.token.is_some() && self.locals == 0 && self.remotes == 0 && self.in_transit == 0
    }
}

impl QueueState {
    /// A new queue, held by one local handle.
    pub(crate) fn new(maxsize: Option<usize>) -> Arc<QueueState> {
        Arc::new(QueueState {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                maxsize,
                unfinished: 0,
                locals: 1,
                remotes: 0,
                in_transit: 0,
                token: None,
                retired: false,
                shut_down: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
        })
    }

    /// Waits on `cond` until `ready`, the deadline, or (when waiting for a remote handle)
    /// that handle's disconnection.
    fn wait_for<'a>(
        cond: &Condvar,
        mut inner: MutexGuard<'a, Inner>,
        ready: impl Fn(&Inner) -> bool,
        deadline: Option<Instant>,
        peer: Option<BorrowedFd<'_>>,
    ) -> (MutexGuard<'a, Inner>, Result<(), Stop>) {
        let mut waited = false;
        loop {
            if ready(&inner) {
                // A remote handle that died while it waited must not have its operation
                // done for it now: its put would add an item nobody will know was added.
                if waited && peer.is_some_and(peer_gone) {
                    // Pass on the wake-up this waiter may have taken from a live one.
                    cond.notify_one();
                    return (inner, Err(Stop::PeerGone));
                }
                return (inner, Ok(()));
            }
            waited = true;
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return (inner, Err(Stop::TimedOut));
            }
            let until = match peer {
                Some(_) => Some(deadline.map_or(now + PEER_CHECK, |d| d.min(now + PEER_CHECK))),
                None => deadline,
            };
            let (next, expired) = wait_until(cond, inner, until);
            inner = next;
            if expired && !ready(&inner) && peer.is_some_and(peer_gone) {
                return (inner, Err(Stop::PeerGone));
            }
        }
    }

    /// Adds `item`, waiting for room as `wait` allows; hands it back if there was none.
    pub(crate) fn put(
        &self,
        item: Vec<u8>,
        wait: Wait,
        peer: Option<BorrowedFd<'_>>,
    ) -> Result<(), (Vec<u8>, Stop)> {
        let inner = lock(&self.inner);
        let (mut inner, outcome) = Self::wait_for(
            &self.not_full,
            inner,
            |i| !i.full() || i.shut_down,
            wait.deadline(),
            peer,
        );
        if let Err(stop) = outcome {
            return Err((item, stop));
        }
        if inner.shut_down {
            return Err((item, Stop::ShutDown));
        }
        inner.items.push_back(item);
        inner.unfinished += 1;
        drop(inner);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Removes the oldest item, waiting for one as `wait` allows.
    pub(crate) fn get(&self, wait: Wait, peer: Option<BorrowedFd<'_>>) -> Result<Vec<u8>, Stop> {
        let inner = lock(&self.inner);
        let (mut inner, outcome) = Self::wait_for(
            &self.not_empty,
            inner,
            |i| !i.items.is_empty() || i.shut_down,
            wait.deadline(),
            peer,
        );
        outcome?;
        // After a shutdown the items still queued are handed out first.
        let Some(item) = inner.items.pop_front() else {
            return Err(Stop::ShutDown);
        };
        drop(inner);
        self.not_full.notify_one();
        Ok(item)
    }

    /// Puts back, at the front, an item that [`get`](Self::get) removed but could not
    /// deliver (its remote handle disconnected); it may briefly exceed the bound.
    pub(crate) fn unget(&self, item: Vec<u8>) {
        lock(&self.inner).items.push_front(item);
        self.not_empty.notify_one();
    }

    /// Marks one item as processed.
    pub(crate) fn task_done(&self) -> Result<(), String> {
        let mut inner = lock(&self.inner);
        if inner.unfinished == 0 {
            return Err("task_done() called more times than items were put".to_owned());
        }
        inner.unfinished -= 1;
        let all_done = inner.unfinished == 0;
        drop(inner);
        if all_done {
            self.all_done.notify_all();
        }
        Ok(())
    }

    /// Waits until every item put has been marked done.
    pub(crate) fn wait_all_done(&self, peer: Option<BorrowedFd<'_>>) -> Result<(), Stop> {
        let inner = lock(&self.inner);
        Self::wait_for(&self.all_done, inner, |i| i.unfinished == 0, None, peer).1
    }

    /// The number of items waiting and whether the queue was shut down, read together.
    pub(crate) fn status(&self) -> (usize, bool) {
        let inner = lock(&self.inner);
        (inner.items.len(), inner.shut_down)
    }

    /// The bound, if any.
    pub(crate) fn maxsize(&self) -> Option<usize> {
        lock(&self.inner).maxsize
    }

    /// Python 3.13's `shutdown(immediate)`: from now on puts fail and gets fail once the
    /// queue is empty; with `immediate` the queue is emptied now, each removed item counting
    /// as done for `join`. Every waiter is woken to see it. Returns the removed items, for
    /// the caller to drop outside the lock.
    pub(crate) fn shutdown(&self, immediate: bool) -> Vec<Vec<u8>> {
        let mut inner = lock(&self.inner);
        inner.shut_down = true;
        let removed: Vec<Vec<u8>> = if immediate {
            inner.items.drain(..).collect()
        } else {
            Vec::new()
        };
        inner.unfinished = inner.unfinished.saturating_sub(removed.len());
        let all_done = inner.unfinished == 0;
        drop(inner);
        self.not_empty.notify_all();
        self.not_full.notify_all();
        if all_done {
            self.all_done.notify_all();
        }
        removed
    }

    /// Another handle in this process, decoded from an exported one (which it consumes).
    /// `false` if the queue is already gone.
    pub(crate) fn arrive_local(&self) -> bool {
        let mut inner = lock(&self.inner);
        if inner.retired {
            return false;
        }
        inner.locals += 1;
        inner.in_transit = inner.in_transit.saturating_sub(1);
        true
    }

    /// A connection from another process attaches. `false` if the queue is already gone.
    pub(crate) fn attach_remote(&self) -> bool {
        let mut inner = lock(&self.inner);
        if inner.retired {
            return false;
        }
        inner.remotes += 1;
        inner.in_transit = inner.in_transit.saturating_sub(1);
        true
    }

    /// A remote handle is being passed on to yet another process. `false` if the queue is
    /// already gone.
    pub(crate) fn add_in_transit(&self) -> bool {
        let mut inner = lock(&self.inner);
        if inner.retired {
            return false;
        }
        inner.in_transit += 1;
        true
    }

    /// A handle in this process was dropped. Returns the queue's token if nothing can reach
    /// the queue any more: the caller takes it off the broker.
    #[must_use]
    pub(crate) fn release_local(&self) -> Option<Token> {
        self.release(|inner| inner.locals = inner.locals.saturating_sub(1))
    }

    /// A connection from another process closed. Returns the queue's token as
    /// [`release_local`](Self::release_local) does.
    #[must_use]
    pub(crate) fn detach_remote(&self) -> Option<Token> {
        self.release(|inner| inner.remotes = inner.remotes.saturating_sub(1))
    }

    fn release(&self, change: impl FnOnce(&mut Inner)) -> Option<Token> {
        let mut inner = lock(&self.inner);
        change(&mut inner);
        if inner.unreachable() && !inner.retired {
            inner.retired = true;
            return inner.token;
        }
        None
    }

    /// A handle is being encoded for another process: gives the queue a token and passes both
    /// to `register` (the broker) the first time, counts the handle as in transit, and returns
    /// the token under which the queue can be reached.
    pub(crate) fn export(
        self: &Arc<Self>,
        register: impl FnOnce(Token, Arc<QueueState>),
    ) -> Result<Token, String> {
        let mut inner = lock(&self.inner);
        if inner.retired {
            return Err("the queue no longer exists".to_owned());
        }
        let token = match inner.token {
            Some(token) => token,
            None => {
                let token = sys::random_bytes()
                    .map_err(|err| format!("could not create a queue token: {err}"))?;
                // Registered under our lock (the broker never takes a queue's lock while
                // holding its own), so that no copy of the token is usable before this.
                register(token, Arc::clone(self));
                inner.token = Some(token);
                token
            }
        };
        inner.in_transit += 1;
        Ok(token)
    }
}

/// Whether a remote handle's connection, on which nothing should arrive while it waits for a
/// reply, has closed (or broken the protocol by sending early).
fn peer_gone(peer: BorrowedFd<'_>) -> bool {
    sys::wait_readable(peer, Some(Duration::ZERO)).unwrap_or(true)
}
