//! A task on its way to a worker process and back: [`RemoteCall`] runs on a slot thread,
//! sends the task to the slot's worker, waits for the reply and turns it into the future's
//! outcome, whatever happens on the way.
//!
//! The rules it keeps:
//!
//! - A task that provably never started (the request did not get through, or the worker died
//!   before it had read it all: see [`progress`](super::progress)) runs again on a fresh
//!   worker, a bounded number of times; a worker that died idle costs nobody.
//! - A failure names the stage the task was at ([`Stage`]) and the cause, and touches only
//!   this task's future.
//! - Whatever fails, the slot ends with a healthy worker or none (the next task starts one),
//!   so the pool keeps its strength.
//! - A time limit applies to each item of a chunk; when an item times out or kills its worker,
//!   the items after it run on a fresh worker.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::child::{CallError, KillSwitch};
use super::progress::Fault;
use super::results::Received;
use super::{SLOT, Shared, Slot};
use crate::wire::{self, Outcome, Reply, Request};
use flotilla_core::__layer::{Runnable, Worker};
use flotilla_core::Promise;
use flotilla_core::primitives::lock;
use flotilla_core::{Error, Panic, Stage};

/// How many times a task that never started is tried before it fails: each try is on a fresh
/// worker, so only a worker that dies again and again before reading a request (the OOM killer
/// taking each new one) exhausts them.
const ATTEMPTS: u32 = 3;

/// A task on its way to a worker process.
pub(super) struct RemoteCall<R> {
    pub(super) promise: Promise<R>,
    pub(super) id: u64,
    /// The task's name, for errors.
    pub(super) task: Cow<'static, str>,
    /// The whole request.
    pub(super) frame: Vec<u8>,
    pub(super) timeout: Option<Duration>,
    pub(super) fault: Option<Fault>,
    /// Taken when the call runs.
    pub(super) shape: Option<Shaped<R>>,
    pub(super) shared: Arc<Shared>,
}

/// How a reply becomes the future's value.
pub(super) enum Shaped<R> {
    /// One task: decodes its result.
    One(fn(&[u8], &str) -> Result<R, Error>),
    /// A chunk of items.
    Chunk(ChunkCall<R>),
}

/// The parts of a chunk's request and what to make of its results.
pub(super) struct ChunkCall<R> {
    /// Where the items' records start in the frame (after the header).
    pub(super) payload_at: usize,
    /// How many items it holds.
    pub(super) sent: usize,
    /// Items that could not be encoded, by position in the chunk; they were not sent.
    pub(super) unsent: Vec<(usize, Error)>,
    pub(super) finish: fn(Received, Vec<(usize, Error)>, &str) -> R,
}

/// What `cancel()` kills: the worker running the task now, which changes when it is retried.
type Running = Arc<Mutex<Option<Arc<KillSwitch>>>>;

impl<R: Send> Runnable for RemoteCall<R> {
    fn run(mut self: Box<Self>, worker: &Worker<'_>) {
        if self.promise.is_cancelled() {
            worker.idle();
            return;
        }
        // Run inline (by a slot thread waiting for this future), the call uses the waiting
        // slot's worker, unless the wait comes from inside another call on this thread (a
        // result's `Deserialize`): that call holds the worker, and no other slot may be free
        // to take this one, so it fails at once rather than hang.
        let outcome = SLOT.with(|slot| match slot.try_borrow_mut() {
            Ok(mut slot) => self.execute(&mut slot, worker),
            Err(_) => Some(Err(self.reentered())),
        });
        worker.idle();
        if let Some(outcome) = outcome {
            self.promise.complete(outcome);
        }
    }

    fn discard(self: Box<Self>, error: Option<Error>) {
        match error {
            None => self.promise.cancel(),
            Some(error) => self.promise.complete(Err(error)),
        }
    }
}

/// What became of one attempt to get a request through.
enum Start {
    /// The request is with the worker.
    Sent,
    /// It never got there: try again.
    NotStarted(Error),
    /// No worker could be started.
    NoWorker(Error),
    /// The task is over, with this outcome (`None`: it was cancelled).
    Over(Option<Error>),
}

impl<R> RemoteCall<R> {
    fn execute(
        &mut self,
        slot: &mut Option<Slot>,
        worker: &Worker<'_>,
    ) -> Option<Result<R, Error>> {
        let running: Running = Arc::new(Mutex::new(None));
        match self.shape.take()? {
            Shaped::One(decode) => self.run_one(decode, slot, worker, &running),
            Shaped::Chunk(chunk) => self.run_chunk(chunk, slot, worker, &running),
        }
    }

    /// Readies this slot's worker for attempt `attempt` and sends `frame` to it.
    fn start(
        &self,
        slot: &mut Option<Slot>,
        worker: &Worker<'_>,
        running: &Running,
        attempt: u32,
        frame: &[u8],
    ) -> Start {
        // A worker that sent something unasked, or hung up, while idle is unusable. So is one
        // that was sent a kill, even if the task it was meant for finished (or never started)
        // meanwhile: its supervisor acts on the signal a moment later, and would take this
        // task down with it.
        if slot.as_ref().is_some_and(|current| {
            current.process().switch().fired() || current.process().has_unsolicited_input()
        }) {
            if let Some(current) = slot.as_mut() {
                current.process_mut().kill_and_reap();
            }
            *slot = None;
        }
        if slot.is_none() {
            match self.shared.start_worker() {
                Ok(started) => *slot = Some(started),
                Err(err) => {
                    if let Error::Broken { reason } = &err {
                        worker.break_pool(reason.clone());
                    }
                    if attempt == 0 && !self.promise.set_running() {
                        return Start::Over(None);
                    }
                    return Start::NoWorker(err);
                }
            }
        }
        let Some(current) = slot.as_mut() else {
            unreachable!("a worker was just started")
        };
        // Arm the kill switch before the task counts as running, so that a cancel() that sees
        // it running always stops it, even before the request is sent.
        let id = self.id;
        current.process().arm(Some(id));
        *lock(running) = Some(Arc::clone(current.process().switch()));
        if attempt == 0 {
            let running = Arc::clone(running);
            self.promise.on_cancel(move || {
                if let Some(switch) = lock(&running).as_ref() {
                    switch.kill_task(id);
                }
            });
            if !self.promise.set_running() {
                current.process().arm(None);
                return Start::Over(None);
            }
        } else if self.promise.is_cancelled() {
            // cancel() may have killed this fresh worker already: start afresh next time.
            current.process_mut().kill_and_reap();
            *slot = None;
            return Start::Over(None);
        }
        let fault = self
            .fault
            .filter(|fault| attempt == 0 || fault.every_attempt);
        current.page.set_fault(fault);
        let process = current.process_mut();
        match process.send(frame, self.timeout) {
            Ok(()) => Start::Sent,
            Err(CallError::Died(exit)) => {
                process.finish_task();
                *slot = None;
                if self.promise.is_cancelled() {
                    return Start::Over(None);
                }
                let error = Error::WorkerDied(exit.at(Stage::SendArgs));
                if lock(&self.shared.live).killing {
                    return Start::Over(Some(error));
                }
                Start::NotStarted(error)
            }
            Err(CallError::TimedOut) => {
                process.kill_and_reap();
                process.finish_task();
                *slot = None;
                tracing::warn!(task = %self.task, stage = %Stage::SendArgs, "task timed out");
                Start::Over(Some(self.timed_out()))
            }
            Err(CallError::Garbled(why)) => {
                process.kill_and_reap();
                process.finish_task();
                *slot = None;
                Start::Over(Some(super::results::malformed(Some(Stage::SendArgs), &why)))
            }
        }
    }

    /// Why a call run inline from inside another call on the same slot fails.
    fn reentered(&self) -> Error {
        Error::InvalidOperation {
            reason: format!(
                "deadlock: task `{}` was waited for, while still queued, by code running inside \
                 another call of the same process pool on the slot that would run it (a \
                 result's `Deserialize`); that slot's worker is busy, and waiting could hang \
                 for ever",
                self.task
            ),
        }
    }

    fn timed_out(&self) -> Error {
        Error::TaskTimedOut {
            limit: self.timeout.unwrap_or_default(),
        }
    }

    fn run_one(
        &self,
        decode: fn(&[u8], &str) -> Result<R, Error>,
        slot: &mut Option<Slot>,
        worker: &Worker<'_>,
        running: &Running,
    ) -> Option<Result<R, Error>> {
        let mut attempt = 0;
        let mut last = None;
        while attempt < ATTEMPTS {
            let began = Instant::now();
            match self.start(slot, worker, running, attempt, &self.frame) {
                Start::Sent => {}
                Start::NotStarted(error) => {
                    last = Some(error);
                    attempt += 1;
                    continue;
                }
                Start::NoWorker(error) => return Some(Err(error)),
                Start::Over(outcome) => return outcome.map(Err),
            }
            let current = slot.as_mut()?;
            let left = self.timeout.map(|t| t.saturating_sub(began.elapsed()));
            let received = current.process_mut().receive(left);
            current.process_mut().finish_task();
            match received {
                Ok(reply) => {
                    let value = self.decode_one(reply, current, decode);
                    let healthy = current.healthy;
                    let process = current.process_mut();
                    process.release_buffers();
                    let worn_out = self
                        .shared
                        .max_tasks_per_child
                        .is_some_and(|limit| process.tasks_run() >= limit);
                    if !healthy {
                        process.kill_and_reap();
                        *slot = None;
                    } else if worn_out {
                        *slot = None; // retires the worker
                    }
                    return Some(value);
                }
                Err(failure) => {
                    match self.lost(failure, slot, 0) {
                        Lost::NotStarted(error) => last = Some(error),
                        Lost::Over(outcome) => return outcome.map(|(error, _)| Err(error)),
                    }
                    attempt += 1;
                }
            }
        }
        last.map(Err)
    }

    /// Turns a single task's reply into its outcome. Marks the worker unhealthy if the reply
    /// is not one a worker in step with the pool sends.
    fn decode_one(
        &self,
        reply: Reply,
        current: &mut Slot,
        decode: fn(&[u8], &str) -> Result<R, Error>,
    ) -> Result<R, Error> {
        match reply {
            Reply::Done { id, outcome } if id == self.id => {
                self.outcome(outcome, || decode(current.process().payload(), &self.task))
            }
            Reply::Refused(why) => Err(self.refused(&why)),
            other => {
                current.healthy = false;
                Err(super::results::malformed(
                    Some(Stage::SendResult),
                    &format!("it answered task {} with {other:?}", self.id),
                ))
            }
        }
    }

    fn outcome(
        &self,
        outcome: Outcome,
        value: impl FnOnce() -> Result<R, Error>,
    ) -> Result<R, Error> {
        match outcome {
            Outcome::Value => value(),
            Outcome::Panicked { message, location } => {
                Err(Error::Panicked(Panic::new(message, location)))
            }
            Outcome::UnknownTask(name) => Err(Error::UnknownTask { name }),
            Outcome::Failed(message) => Err(Error::Codec { message }),
        }
    }

    fn refused(&self, why: &str) -> Error {
        Error::Codec {
            message: format!(
                "the worker could not read the request for task `{}` while the task was {}: {why}",
                self.task,
                Stage::SendArgs
            ),
        }
    }

    /// Handles a reply that did not come: the worker timed out, died or sent junk. Leaves the
    /// slot without a worker. Returns the error and, when the worker had begun the task, where
    /// it was.
    /// `skip` is where this attempt began in a chunk: a worker that had not got past it had
    /// not begun this attempt.
    fn lost(&self, failure: CallError, slot: &mut Option<Slot>, skip: usize) -> Lost {
        let Some(mut current) = slot.take() else {
            return Lost::Over(Some((Error::Abandoned, None)));
        };
        let position = |current: &Slot| {
            current
                .page
                .position(self.id)
                .filter(|(_, item)| *item as usize >= skip)
        };
        let process = current.process_mut();
        let (position, error) = match failure {
            CallError::TimedOut => {
                process.kill_and_reap();
                let position = position(&current);
                if let Some((stage, _)) = position {
                    tracing::warn!(task = %self.task, %stage, "task timed out");
                }
                (position, self.timed_out())
            }
            CallError::Died(exit) => {
                let position = position(&current);
                if self.promise.is_cancelled() {
                    return Lost::Over(None);
                }
                match position {
                    None if !lock(&self.shared.live).killing => {
                        return Lost::NotStarted(Error::WorkerDied(exit.at(Stage::SendArgs)));
                    }
                    None => (None, Error::WorkerDied(exit.at(Stage::SendArgs))),
                    Some((stage, item)) => (Some((stage, item)), Error::WorkerDied(exit.at(stage))),
                }
            }
            CallError::Garbled(why) => {
                process.kill_and_reap();
                let position = position(&current);
                let stage = position.map_or(Stage::SendArgs, |(stage, _)| stage);
                (position, super::results::malformed(Some(stage), &why))
            }
        };
        drop(current);
        Lost::Over(Some((error, position)))
    }

    fn run_chunk(
        &self,
        chunk: ChunkCall<R>,
        slot: &mut Option<Slot>,
        worker: &Worker<'_>,
        running: &Running,
    ) -> Option<Result<R, Error>> {
        let each = self.timeout.is_some();
        let mut received = Received::default();
        let mut not_started = 0;
        let mut attempt = 0;
        while received.len() < chunk.sent {
            let skip = received.len();
            let frame: Cow<'_, [u8]> = if skip == 0 {
                Cow::Borrowed(&self.frame)
            } else {
                match self.chunk_frame(skip, each, &chunk) {
                    Ok(frame) => Cow::Owned(frame),
                    Err(error) => return Some(Err(error)),
                }
            };
            let began = Instant::now();
            match self.start(slot, worker, running, attempt, &frame) {
                Start::Sent => {}
                Start::NotStarted(error) => {
                    attempt += 1;
                    not_started += 1;
                    if not_started >= ATTEMPTS {
                        while received.len() < chunk.sent {
                            received.fail(error.clone());
                        }
                    }
                    continue;
                }
                Start::Over(None) => return None,
                Start::NoWorker(error) if received.len() == 0 => return Some(Err(error)),
                Start::NoWorker(error) | Start::Over(Some(error)) => {
                    // This attempt's first item takes the blame; the rest are tried again.
                    received.fail(error);
                    attempt += 1;
                    continue;
                }
            }
            attempt += 1;
            let mut deadline = self.timeout.map(|t| began + t);
            loop {
                let Some(current) = slot.as_mut() else {
                    return Some(Err(Error::Abandoned));
                };
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let failure = match current.process_mut().receive(left) {
                    Ok(Reply::Items { id, last }) if id == self.id => {
                        match received.take_records(current.process().payload()) {
                            Ok(()) if received.len() <= chunk.sent => {
                                if last {
                                    current.process_mut().finish_task();
                                    current.process_mut().release_buffers();
                                    self.retire_if_worn_out(slot);
                                    // A worker that read fewer items than were sent (it
                                    // cannot, in step with the pool) would only be asked
                                    // again for the rest: they fail here instead.
                                    let short = received.len();
                                    while received.len() < chunk.sent {
                                        received.fail(super::results::malformed(
                                            Some(Stage::SendResult),
                                            &format!(
                                                "it answered {short} of the {} items of chunk {}",
                                                chunk.sent, self.id
                                            ),
                                        ));
                                    }
                                    break;
                                }
                                deadline = self.timeout.map(|t| Instant::now() + t);
                                continue;
                            }
                            Ok(()) => CallError::Garbled("more results than items".into()),
                            Err(why) => CallError::Garbled(why),
                        }
                    }
                    Ok(Reply::Done { id, outcome }) if id == self.id => {
                        current.process_mut().finish_task();
                        let error = match self.outcome(outcome, || Err(Error::Abandoned)) {
                            Err(error) => error,
                            Ok(_) => Error::Abandoned,
                        };
                        if received.len() == 0 {
                            return Some(Err(error));
                        }
                        while received.len() < chunk.sent {
                            received.fail(error.clone());
                        }
                        break;
                    }
                    Ok(Reply::Refused(why)) => {
                        current.process_mut().finish_task();
                        return Some(Err(self.refused(&why)));
                    }
                    Ok(other) => {
                        CallError::Garbled(format!("it answered chunk {} with {other:?}", self.id))
                    }
                    Err(failure) => failure,
                };
                current.process_mut().finish_task();
                match self.lost(failure, slot, skip) {
                    Lost::NotStarted(error) => {
                        not_started += 1;
                        if not_started >= ATTEMPTS {
                            while received.len() < chunk.sent {
                                received.fail(error.clone());
                            }
                        }
                    }
                    Lost::Over(None) => return None,
                    Lost::Over(Some((error, position))) => {
                        blame(&mut received, chunk.sent, error, position);
                    }
                }
                break;
            }
        }
        Some(Ok((chunk.finish)(received, chunk.unsent, &self.task)))
    }

    /// The request for the items of a chunk from `skip` on.
    fn chunk_frame(&self, skip: usize, each: bool, chunk: &ChunkCall<R>) -> Result<Vec<u8>, Error> {
        let header = Request::RunChunk {
            id: self.id,
            task: &self.task,
            skip: u32::try_from(skip).unwrap_or(u32::MAX),
            each,
        };
        wire::with_payload(&header, &self.frame[chunk.payload_at..])
            .map_err(|message| Error::Codec { message })
    }

    fn retire_if_worn_out(&self, slot: &mut Option<Slot>) {
        let worn_out = slot.as_ref().is_some_and(|current| {
            self.shared
                .max_tasks_per_child
                .is_some_and(|limit| current.process().tasks_run() >= limit)
        });
        if worn_out {
            *slot = None;
        }
    }
}

/// What [`RemoteCall::lost`] found.
enum Lost {
    /// The worker never began the task: try again.
    NotStarted(Error),
    /// The task failed (`None`: it was cancelled), at the position the worker recorded.
    Over(Option<(Error, Option<(Stage, u32)>)>),
}

/// Gives the items of a chunk whose worker was lost their outcomes: those whose results were
/// finished but not yet sent fail as lost with the worker, the item it was on takes `error`,
/// and the items after it are left to be tried again.
fn blame(received: &mut Received, sent: usize, error: Error, position: Option<(Stage, u32)>) {
    let first = received.len();
    let lost = |error: &Error| match error {
        Error::WorkerDied(exit) => Error::WorkerDied(exit.clone().at(Stage::SendResult)),
        other => other.clone(),
    };
    match position {
        // The worker was sending a batch ending at `item`: the batch is lost, the rest can
        // run.
        Some((Stage::SendResult, item)) => {
            let end = (item as usize).saturating_add(1).clamp(first + 1, sent);
            while received.len() < end {
                received.fail(lost(&error));
            }
        }
        Some((_, item)) => {
            let at = (item as usize).clamp(first, sent - 1);
            while received.len() < at {
                received.fail(lost(&error));
            }
            received.fail(error);
        }
        // Timed out or garbled before the worker recorded anything for this chunk: the first
        // item not yet answered takes the blame.
        None => received.fail(error),
    }
}
