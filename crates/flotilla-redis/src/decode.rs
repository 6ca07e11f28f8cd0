//! Decoding results off the reader's thread.
//!
//! A result's `Deserialize` is the user's code: it may panic (caught where it runs, failing
//! its own future) or never return. The reader hands each result to a decoding thread and
//! goes on reading; a decode that takes longer than its limit is given up — its own future
//! fails — and a fresh thread takes over the queue. The stuck thread is left to finish (its
//! value is then dropped) or not, on its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::executor::lock;

/// Settles a future whose decode was given up; the argument says why.
pub(crate) type GiveUp = Box<dyn FnOnce(String) + Send>;

/// One result to decode.
pub(crate) struct Job {
    /// Decodes the result and settles its future, unless `give_up` did first.
    pub(crate) run: Box<dyn FnOnce() + Send>,
    pub(crate) give_up: GiveUp,
}

/// The decoding threads of one client. Dropping it lets them end once the queue is empty.
pub(crate) struct Decoder {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the decoding threads (a job or the end) and the watchdog (a job started).
    wake: Condvar,
    limit: Duration,
}

struct State {
    jobs: VecDeque<Job>,
    /// What each decoding thread is decoding: since when, and how to give it up.
    running: HashMap<u64, (Instant, GiveUp)>,
    next_thread: u64,
    closed: bool,
}

impl Decoder {
    /// Starts one decoding thread and the watchdog that gives up decodes older than `limit`.
    pub(crate) fn start(limit: Duration) -> std::io::Result<Decoder> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                running: HashMap::new(),
                next_thread: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            limit,
        });
        let first = lock(&shared.state).next_thread;
        spawn_decoder(&shared, first)?;
        let watched = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("flotilla-redis-decode-watch".into())
            .spawn(move || watch(&watched))?;
        Ok(Decoder { shared })
    }

    /// Queues a result to decode.
    pub(crate) fn decode(&self, job: Job) {
        lock(&self.shared.state).jobs.push_back(job);
        self.shared.wake.notify_all();
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake.notify_all();
    }
}

fn spawn_decoder(shared: &Arc<Shared>, me: u64) -> std::io::Result<()> {
    lock(&shared.state).next_thread = me + 1;
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("flotilla-redis-decode".into())
        .spawn(move || decode_jobs(&shared, me))
        .map(drop)
}

/// A decoding thread: runs jobs until the decoder is dropped, or until it was given up on.
fn decode_jobs(shared: &Shared, me: u64) {
    let mut state = lock(&shared.state);
    loop {
        if let Some(job) = state.jobs.pop_front() {
            state.running.insert(me, (Instant::now(), job.give_up));
            drop(state);
            shared.wake.notify_all();
            (job.run)();
            state = lock(&shared.state);
            if state.running.remove(&me).is_none() {
                return; // given up: another thread serves the queue now
            }
        } else if state.closed {
            return;
        } else {
            state = match shared.wake.wait(state) {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }
}

/// Gives up decodes older than the limit, each replaced by a fresh decoding thread.
fn watch(shared: &Arc<Shared>) {
    let mut state = lock(&shared.state);
    loop {
        if state.closed && state.jobs.is_empty() && state.running.is_empty() {
            return;
        }
        let now = Instant::now();
        let late: Vec<u64> = state
            .running
            .iter()
            .filter(|(_, (since, _))| now.duration_since(*since) >= shared.limit)
            .map(|(thread, _)| *thread)
            .collect();
        let mut given_up = Vec::with_capacity(late.len());
        for thread in late {
            if let Some((_, give_up)) = state.running.remove(&thread) {
                given_up.push(give_up);
            }
        }
        if !given_up.is_empty() {
            let next = state.next_thread;
            drop(state);
            let why = format!(
                "decoding the task's result on the client did not finish within {:?}; it was \
                 given up (the decoding thread is left to end on its own)",
                shared.limit
            );
            for give_up in given_up {
                give_up(why.clone());
            }
            if let Err(err) = spawn_decoder(shared, next) {
                // Nothing can decode the rest: they fail rather than wait for ever.
                tracing::error!(%err, "could not start a decoding thread");
                let jobs: Vec<Job> = lock(&shared.state).jobs.drain(..).collect();
                for job in jobs {
                    (job.give_up)(format!(
                        "could not start a thread to decode the result: {err}"
                    ));
                }
            }
            state = lock(&shared.state);
            continue;
        }
        let next = state
            .running
            .values()
            .map(|(since, _)| shared.limit.saturating_sub(now.duration_since(*since)))
            .min();
        state = match next {
            Some(wait) => match shared.wake.wait_timeout(state, wait) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            },
            None => match shared.wake.wait(state) {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            },
        };
    }
}
