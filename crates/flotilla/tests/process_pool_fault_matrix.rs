//! The process pool's fault matrix: every stage a task passes through, times every way it can
//! fail there, each made to happen for real. For each cell, twice in a row: the faulty task's
//! future fails with an error that names the stage and the cause (or, where the task provably
//! never started, it runs on a fresh worker), the futures submitted around it are untouched,
//! and afterwards the pool still runs `max_workers` tasks at once (a barrier that needs all of
//! them, with a deadline).
//!
//! How each failure is made to happen:
//!
//! - Where the stage is the user's own code (the arguments' `Serialize` in the submitting
//!   process and `Deserialize` in the worker, the task, the result's `Serialize` in the worker
//!   and `Deserialize` back in the submitting process), that code misbehaves: it panics, calls
//!   `abort` or `exit(3)`, sends itself `SIGKILL`, writes junk on the worker's socket, or
//!   never returns.
//! - Where the stage is flotilla's own machinery (the request on its way to the worker, the
//!   reply on its way back), the worker's machinery is told to misbehave half-way through the
//!   message ([`flotilla::__private::Fault`]), with messages of several MiB so that the other
//!   side is in the middle of writing or reading.
//!
//! The table at the bottom lists every cell; the ones that cannot happen say why, and a test
//! checks that no cell is missing.

use std::io::Write;
use std::time::Duration;

use flotilla::__private::{Fault, FaultAction, FaultPoint};
use flotilla::{Error, Executor, ProcessPoolExecutor, Stage};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

#[path = "support/strength.rs"]
mod strength;
#[path = "support/watchdog.rs"]
mod watchdog;
#[path = "support/worker_socket.rs"]
mod worker_socket;

use worker_socket::pool_socket;

/// The pool's time limit, which turns a hang into a failure.
const LIMIT: Duration = Duration::from_secs(5);
/// How long any one future may take: far more than a cell needs.
const PATIENCE: Duration = Duration::from_secs(60);
/// Fails a cell that has not finished in this time: a hang of the pool, not slowness.
const WATCHDOG: Duration = Duration::from_secs(180);
/// Ballast for the cells whose failure strikes while a message is in transit.
const IN_TRANSIT: usize = 8 << 20;

/// How a cell's task fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Failure {
    Panic,
    Abort,
    Kill,
    Exit,
    Garbage,
    Hang,
}

/// What a cell's task does wrong, where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Plan {
    #[serde(with = "stage_index")]
    at: Stage,
    failure: Failure,
}

/// A [`Stage`] travels as its place in [`Stage::ALL`].
mod stage_index {
    use flotilla::Stage;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        stage: &Stage,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let at = Stage::ALL
            .iter()
            .position(|s| s == stage)
            .expect("every stage is listed");
        serializer.serialize_u8(at as u8)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Stage, D::Error> {
        let at = u8::deserialize(deserializer)?;
        Stage::ALL
            .get(usize::from(at))
            .copied()
            .ok_or_else(|| serde::de::Error::custom("no such stage"))
    }
}

/// Fails the way `failure` says, in a worker. Returns only for a panic's unwinding.
fn strike(failure: Failure) -> ! {
    match failure {
        Failure::Panic => panic!("deliberate panic"),
        Failure::Abort => std::process::abort(),
        Failure::Kill => {
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions; SIGKILL
            // stands in for the OOM killer.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            unreachable!("SIGKILL ends the process")
        }
        Failure::Exit => std::process::exit(3),
        Failure::Garbage => {
            // A frame of 16 bytes of junk where the pool expects a reply.
            let mut junk = 16u32.to_le_bytes().to_vec();
            junk.extend([0xff; 16]);
            let _ = pool_socket().write_all(&junk);
            loop {
                std::thread::park();
            }
        }
        Failure::Hang => loop {
            std::thread::park();
        },
    }
}

/// A task's arguments, which misbehave where their plan says.
#[derive(Clone, Debug)]
struct Trip {
    plan: Option<Plan>,
    ballast: ByteBuf,
}

impl Trip {
    fn fails(&self, at: Stage) -> Option<Failure> {
        self.plan
            .filter(|plan| plan.at == at)
            .map(|plan| plan.failure)
    }
}

impl Serialize for Trip {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.fails(Stage::EncodeArgs) {
            Some(Failure::Panic) => panic!("deliberate panic"),
            // The encoder's own kind of junk: it refuses to produce bytes at all.
            Some(Failure::Garbage) => Err(serde::ser::Error::custom("deliberate refusal")),
            Some(other) => unreachable!("{other:?} while encoding is not a cell"),
            None => (self.plan, &self.ballast).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Trip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Trip, D::Error> {
        let (plan, ballast) = <(Option<Plan>, ByteBuf)>::deserialize(deserializer)?;
        let trip = Trip { plan, ballast };
        if let Some(failure) = trip.fails(Stage::DecodeArgs) {
            strike(failure);
        }
        Ok(trip)
    }
}

/// A task's result, which misbehaves where its plan says.
#[derive(Clone, Debug)]
struct Arrival {
    plan: Option<Plan>,
    ballast: ByteBuf,
}

impl Serialize for Arrival {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fails = self.plan.filter(|plan| plan.at == Stage::EncodeResult);
        if let Some(plan) = fails {
            strike(plan.failure);
        }
        let garbled = self.plan
            == Some(Plan {
                at: Stage::DecodeResult,
                failure: Failure::Garbage,
            });
        // Junk for the decoder: 7 where a `bool` belongs.
        let arrived: u8 = if garbled { 7 } else { 1 };
        (self.plan, &self.ballast, arrived).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Arrival {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Arrival, D::Error> {
        let (plan, ballast, _arrived) = <(Option<Plan>, ByteBuf, bool)>::deserialize(deserializer)?;
        match plan.filter(|plan| plan.at == Stage::DecodeResult) {
            Some(Plan {
                failure: Failure::Panic,
                ..
            }) => panic!("deliberate panic"),
            Some(Plan { failure, .. }) if failure != Failure::Garbage => {
                unreachable!("{failure:?} while decoding the result is not a cell")
            }
            _ => Ok(Arrival { plan, ballast }),
        }
    }
}

/// Carries its ballast there and back, failing on the way where its plan says.
#[flotilla::task]
fn journey(trip: Trip) -> Arrival {
    if let Some(failure) = trip.fails(Stage::Run) {
        strike(failure);
    }
    Arrival {
        plan: trip.plan,
        ballast: trip.ballast,
    }
}

/// What a cell's future must come to.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The task never started where it failed: it ran on a fresh worker.
    Value,
    /// [`Error::Codec`], whose text contains each of these.
    Codec(&'static [&'static str]),
    /// [`Error::Panicked`] with this message.
    Panicked(&'static str),
    /// [`Error::WorkerDied`] at this stage, with this exit code (Python's convention:
    /// minus the signal).
    Died(Stage, i32),
    /// [`Error::TaskTimedOut`].
    TimedOut,
}

fn pool(workers: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .task_timeout(LIMIT)
        .build()
        .unwrap()
}

fn healthy(n: u8) -> Trip {
    Trip {
        plan: None,
        ballast: ByteBuf::from(vec![n; 16]),
    }
}

/// Submits the task of cell (`at`, `failure`) to `pool`.
fn submit_cell(
    pool: &ProcessPoolExecutor,
    at: Stage,
    failure: Failure,
) -> Result<flotilla::Future<Arrival>, Error> {
    let plan = Plan { at, failure };
    let ballast = match at {
        Stage::SendArgs | Stage::SendResult => ByteBuf::from(vec![9u8; IN_TRANSIT]),
        _ => ByteBuf::from(vec![9u8; 16]),
    };
    let action = match failure {
        Failure::Panic => FaultAction::Panic,
        Failure::Abort => FaultAction::Abort,
        Failure::Kill => FaultAction::Kill,
        Failure::Exit => FaultAction::Exit,
        Failure::Garbage => FaultAction::Garbage,
        Failure::Hang => FaultAction::Hang,
    };
    let point = match at {
        Stage::SendArgs => FaultPoint::Receive,
        Stage::SendResult => FaultPoint::Reply,
        _ => {
            let trip = Trip {
                plan: Some(plan),
                ballast,
            };
            return pool.submit(journey, trip);
        }
    };
    let fault = Fault {
        point,
        action,
        every_attempt: false,
    };
    pool.submit_with_fault(
        journey,
        Trip {
            plan: None,
            ballast,
        },
        fault,
    )
}

/// Checks a cell's outcome against what it must be.
fn check(cell: &str, outcome: Result<Arrival, Error>, expect: Expect) {
    match (expect, &outcome) {
        (Expect::Value, Ok(_)) => {}
        (Expect::Codec(parts), Err(err @ Error::Codec { .. })) => {
            let text = err.to_string();
            for part in parts {
                assert!(text.contains(part), "{cell}: {part:?} not in {text:?}");
            }
        }
        (Expect::Panicked(message), Err(Error::Panicked(panic))) => {
            assert_eq!(panic.message(), message, "{cell}");
        }
        (Expect::Died(stage, code), Err(Error::WorkerDied(exit))) => {
            assert_eq!(exit.stage(), Some(stage), "{cell}: {exit}");
            assert_eq!(exit.exitcode(), Some(code), "{cell}: {exit}");
            let text = exit.to_string();
            assert!(text.contains(&stage.to_string()), "{cell}: {text}");
        }
        (Expect::TimedOut, Err(err)) if err.is_task_timeout() => {}
        _ => panic!("{cell}: expected {expect:?}, got {outcome:?}"),
    }
}

/// Runs one cell twice in a row, with healthy tasks around it, then proves full strength.
fn run_cell(cell: &'static str, at: Stage, failure: Failure, expect: Expect) {
    watchdog::watchdog(WATCHDOG, move || {
        let pool = pool(2);
        for round in 0..2 {
            let before: Vec<_> = (0..3)
                .map(|n| pool.submit(journey, healthy(n)).unwrap())
                .collect();
            let faulty = submit_cell(&pool, at, failure).unwrap();
            let after: Vec<_> = (3..6)
                .map(|n| pool.submit(journey, healthy(n)).unwrap())
                .collect();
            check(
                &format!("{cell} (round {round})"),
                faulty.result_timeout(PATIENCE),
                expect,
            );
            for (n, fut) in before.into_iter().chain(after).enumerate() {
                let arrival = fut.result_timeout(PATIENCE);
                let ballast = arrival.as_ref().map(|a| a.ballast.to_vec()).ok();
                assert_eq!(
                    ballast,
                    Some(vec![n as u8; 16]),
                    "{cell} (round {round}): a bystander was touched: {arrival:?}"
                );
            }
        }
        strength::assert_full_strength(&pool);
    });
}

/// Declares the matrix: one test per cell that can happen, and the reasons for those that
/// cannot.
macro_rules! matrix {
    ($($cell:ident: $at:ident, $failure:ident => $outcome:ident $( ( $($arg:tt)* ) )?;)*) => {
        $( matrix!(@cell $cell, $at, $failure, $outcome $( ( $($arg)* ) )?); )*

        /// Every (stage, failure) pair of the table, and why it cannot happen if it is not
        /// tested.
        const CELLS: &[(Stage, Failure, Option<&str>)] = &[
            $( (Stage::$at, Failure::$failure, matrix!(@why $outcome $( ( $($arg)* ) )?)), )*
        ];

        /// Every cell that can happen, for running them all at once.
        #[allow(clippy::vec_init_then_push)]
        fn every_cell() -> Vec<(&'static str, Stage, Failure, Expect)> {
            let mut cells = Vec::new();
            $( matrix!(@push cells, $cell, $at, $failure, $outcome $( ( $($arg)* ) )?); )*
            cells
        }
    };
    (@cell $cell:ident, $at:ident, $failure:ident, cannot($why:literal)) => {};
    (@cell $cell:ident, $at:ident, $failure:ident, $outcome:ident $( ( $($arg:tt)* ) )?) => {
        #[test]
        fn $cell() {
            run_cell(stringify!($cell), Stage::$at, Failure::$failure, Expect::$outcome $( ( $($arg)* ) )?);
        }
    };
    (@push $cells:ident, $cell:ident, $at:ident, $failure:ident, cannot($why:literal)) => {};
    (@push $cells:ident, $cell:ident, $at:ident, $failure:ident, $outcome:ident $( ( $($arg:tt)* ) )?) => {
        $cells.push((stringify!($cell), Stage::$at, Failure::$failure, Expect::$outcome $( ( $($arg)* ) )?));
    };
    (@why cannot($why:literal)) => { Some($why) };
    (@why $outcome:ident $( ( $($arg:tt)* ) )?) => { None };
}

matrix! {
    // Encoding the arguments: the caller's own `Serialize`, on the caller's thread.
    encode_args_panic: EncodeArgs, Panic => Codec(&["could not encode the arguments of task", "deliberate panic"]);
    encode_args_abort: EncodeArgs, Abort => cannot("it ends the caller's own process, pool and all: nobody is left to report to");
    encode_args_kill: EncodeArgs, Kill => cannot("it ends the caller's own process, pool and all: nobody is left to report to");
    encode_args_exit: EncodeArgs, Exit => cannot("it ends the caller's own process, pool and all: nobody is left to report to");
    encode_args_garbage: EncodeArgs, Garbage => Codec(&["could not encode the arguments of task"]);
    encode_args_hang: EncodeArgs, Hang => cannot("it is the caller's own code on the caller's thread, inside submit: the caller waits for it as for any call");

    // Sending the arguments: the worker fails half-way through reading the request, while the
    // pool is still writing it. The task never started, so it runs on a fresh worker.
    send_args_panic: SendArgs, Panic => Value;
    send_args_abort: SendArgs, Abort => Value;
    send_args_kill: SendArgs, Kill => Value;
    send_args_exit: SendArgs, Exit => Value;
    send_args_garbage: SendArgs, Garbage => Codec(&["could not read the request", "sending its arguments to the worker"]);
    send_args_hang: SendArgs, Hang => TimedOut;

    // Decoding the arguments: the task's own `Deserialize`, in the worker.
    decode_args_panic: DecodeArgs, Panic => Codec(&["could not decode the arguments of task", "in the worker", "deliberate panic"]);
    decode_args_abort: DecodeArgs, Abort => Died(Stage::DecodeArgs, -6);
    decode_args_kill: DecodeArgs, Kill => Died(Stage::DecodeArgs, -9);
    decode_args_exit: DecodeArgs, Exit => Died(Stage::DecodeArgs, 3);
    decode_args_garbage: DecodeArgs, Garbage => Codec(&["malformed reply", "decoding its arguments in the worker"]);
    decode_args_hang: DecodeArgs, Hang => TimedOut;

    // Running the task.
    run_panic: Run, Panic => Panicked("deliberate panic");
    run_abort: Run, Abort => Died(Stage::Run, -6);
    run_kill: Run, Kill => Died(Stage::Run, -9);
    run_exit: Run, Exit => Died(Stage::Run, 3);
    run_garbage: Run, Garbage => Codec(&["malformed reply", "while the task was running"]);
    run_hang: Run, Hang => TimedOut;

    // Encoding the result: the result's own `Serialize`, in the worker.
    encode_result_panic: EncodeResult, Panic => Codec(&["could not encode the result of task", "in the worker", "deliberate panic"]);
    encode_result_abort: EncodeResult, Abort => Died(Stage::EncodeResult, -6);
    encode_result_kill: EncodeResult, Kill => Died(Stage::EncodeResult, -9);
    encode_result_exit: EncodeResult, Exit => Died(Stage::EncodeResult, 3);
    encode_result_garbage: EncodeResult, Garbage => Codec(&["malformed reply", "encoding its result in the worker"]);
    encode_result_hang: EncodeResult, Hang => TimedOut;

    // Sending the result back: the worker fails half-way through writing its reply, while the
    // pool is reading it. A panic in the worker's own machinery aborts the worker.
    send_result_panic: SendResult, Panic => Died(Stage::SendResult, -6);
    send_result_abort: SendResult, Abort => Died(Stage::SendResult, -6);
    send_result_kill: SendResult, Kill => Died(Stage::SendResult, -9);
    send_result_exit: SendResult, Exit => Died(Stage::SendResult, 9);
    send_result_garbage: SendResult, Garbage => Codec(&["malformed reply", "sending its result back"]);
    send_result_hang: SendResult, Hang => TimedOut;

    // Decoding the result: the result's own `Deserialize`, in the caller's process, on a
    // thread of the pool.
    decode_result_panic: DecodeResult, Panic => Codec(&["could not decode the result of task", "deliberate panic"]);
    decode_result_abort: DecodeResult, Abort => cannot("it ends the caller's own process, pool and all: nobody is left to report to");
    decode_result_kill: DecodeResult, Kill => cannot("it ends the caller's own process, pool and all: nobody is left to report to");
    decode_result_exit: DecodeResult, Exit => cannot("it ends the caller's own process, pool and all: nobody is left to report to");
    decode_result_garbage: DecodeResult, Garbage => Codec(&["could not decode the result of task"]);
    decode_result_hang: DecodeResult, Hang => cannot("a thread cannot be stopped from outside: a result's Deserialize that never returns holds the pool thread it runs on, as a hung thread-pool task does (documented on ProcessPoolExecutor)");
}

#[test]
fn every_cell_is_tested_or_explained() {
    let stages = Stage::ALL;
    let failures = [
        Failure::Panic,
        Failure::Abort,
        Failure::Kill,
        Failure::Exit,
        Failure::Garbage,
        Failure::Hang,
    ];
    for at in stages {
        for failure in failures {
            let rows = CELLS
                .iter()
                .filter(|(a, f, _)| *a == at && *f == failure)
                .count();
            assert_eq!(rows, 1, "({at:?}, {failure:?}) must be in the table once");
        }
    }
    assert_eq!(CELLS.len(), stages.len() * failures.len());
    for (at, failure, why) in CELLS {
        assert!(
            why.is_none_or(|why| !why.is_empty()),
            "({at:?}, {failure:?}): why not?"
        );
    }
    assert_eq!(
        every_cell().len(),
        CELLS.iter().filter(|(_, _, why)| why.is_none()).count()
    );
}

#[test]
fn every_cell_at_once_from_several_threads() {
    watchdog::watchdog(WATCHDOG * 2, || {
        let pool = pool(3);
        let cells = every_cell();
        std::thread::scope(|scope| {
            for part in cells.chunks(cells.len().div_ceil(4)) {
                let pool = &pool;
                scope.spawn(move || {
                    let futures: Vec<_> = part
                        .iter()
                        .map(|(cell, at, failure, expect)| {
                            (*cell, *expect, submit_cell(pool, *at, *failure))
                        })
                        .collect();
                    let bystander = pool.submit(journey, healthy(1)).unwrap();
                    for (cell, expect, fut) in futures {
                        let outcome = fut.and_then(|fut| fut.result_timeout(PATIENCE * 4));
                        check(cell, outcome, expect);
                    }
                    let arrival = bystander.result_timeout(PATIENCE).unwrap();
                    assert_eq!(arrival.ballast.to_vec(), vec![1u8; 16]);
                });
            }
        });
        strength::assert_full_strength(&pool);
    });
}

/// Kills the worker at `point` while it handles `trip` (in each fresh worker too if `every`)
/// and waits for the outcome.
fn killed_at(
    pool: &ProcessPoolExecutor,
    point: FaultPoint,
    every_attempt: bool,
    trip: Trip,
) -> Result<Arrival, Error> {
    let fault = Fault {
        point,
        action: FaultAction::Kill,
        every_attempt,
    };
    pool.submit_with_fault(journey, trip, fault)
        .unwrap()
        .result_timeout(PATIENCE)
}

/// The worst moment to lose a worker: it has written its whole reply, and the pool has not
/// read it yet. The reply is whole, so the task succeeds; the dead worker costs the next task
/// nothing.
#[test]
fn a_worker_killed_just_after_replying_costs_nobody() {
    watchdog::watchdog(WATCHDOG, || {
        let pool = pool(1);
        for round in 0..2 {
            let arrival = killed_at(&pool, FaultPoint::AfterReply, false, healthy(7));
            assert!(arrival.is_ok(), "round {round}: {arrival:?}");
            let next = pool
                .submit(journey, healthy(8))
                .unwrap()
                .result_timeout(PATIENCE);
            assert!(next.is_ok(), "round {round}: the next task paid: {next:?}");
        }
        strength::assert_full_strength(&pool);
    });
}

/// A task whose every worker dies before reading its request (the OOM killer taking each new
/// one) is not retried for ever: after a few fresh workers it fails, naming the stage.
#[test]
fn a_task_that_can_never_be_sent_fails_after_a_few_fresh_workers() {
    watchdog::watchdog(WATCHDOG, || {
        let pool = pool(2);
        let trip = Trip {
            plan: None,
            ballast: ByteBuf::from(vec![0u8; IN_TRANSIT]),
        };
        let outcome = killed_at(&pool, FaultPoint::Receive, true, trip);
        check("never sent", outcome, Expect::Died(Stage::SendArgs, -9));
        strength::assert_full_strength(&pool);
    });
}

/// A small request fits in the socket's buffer, so the pool's write succeeds before the
/// worker dies half-way through reading it: the task still provably never started.
#[test]
fn a_small_request_lost_in_the_socket_runs_on_a_fresh_worker() {
    watchdog::watchdog(WATCHDOG, || {
        let pool = pool(1);
        let outcome = killed_at(&pool, FaultPoint::Receive, false, healthy(3));
        check("small request", outcome, Expect::Value);
        strength::assert_full_strength(&pool);
    });
}
