//! The fault matrix of a task's trip through the cluster: each stage (encode on the client,
//! the queueing call, decode on the worker, run in the worker's process pool, posting the
//! result, decoding it on the client) × each failure that can happen there (panic, abort,
//! SIGKILL, `exit`, garbage, a hang, a value over the server's limit). The faulty task's
//! future fails with an error naming the stage and the cause; the tasks around it are
//! untouched; afterwards the worker still runs both its slots at once.
//!
//! Stages made to fail elsewhere: a claim whose reply is lost (redis_outages), garbage in the
//! task stream and in a client's result stream (redis_faults), a worker SIGKILLed mid-task
//! (redis_faults).

mod support;

use std::time::Duration;

use flotilla::{Error, Executor};
use flotilla_redis::{RedisError, RedisExecutor};
use serde::de::{Deserializer, Error as _};
use serde::ser::{Error as _, Serializer};
use serde::{Deserialize, Serialize};
use support::{RedisServer, runs_two_at_once, spawn_worker};

/// Where and how a task fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    EncodePanic,
    EncodeGarbage,
    ArgumentsTooLarge,
    DecodePanic,
    DecodeAbort,
    DecodeGarbage,
    DecodeHang,
    RunPanic,
    RunAbort,
    RunKill,
    RunExit,
    RunHang,
    ResultTooLarge,
    ResultDecodePanic,
    ResultDecodeGarbage,
    ResultDecodeHang,
}

const FAULTS: [Fault; 17] = [
    Fault::None,
    Fault::EncodePanic,
    Fault::EncodeGarbage,
    Fault::ArgumentsTooLarge,
    Fault::DecodePanic,
    Fault::DecodeAbort,
    Fault::DecodeGarbage,
    Fault::DecodeHang,
    Fault::RunPanic,
    Fault::RunAbort,
    Fault::RunKill,
    Fault::RunExit,
    Fault::RunHang,
    Fault::ResultTooLarge,
    Fault::ResultDecodePanic,
    Fault::ResultDecodeGarbage,
    Fault::ResultDecodeHang,
];

fn code(fault: Fault) -> u8 {
    FAULTS.iter().position(|f| *f == fault).unwrap() as u8
}

/// A task's argument that fails on command when encoded (on the client) or decoded (on the
/// worker).
#[derive(Debug)]
struct Arg(Fault);

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Fault::EncodePanic => panic!("Serialize panics on the client"),
            Fault::EncodeGarbage => Err(S::Error::custom("this value cannot be encoded")),
            Fault::ArgumentsTooLarge => (code(self.0), vec![0u8; 2 << 20]).serialize(s),
            fault => (code(fault), Vec::<u8>::new()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Arg, D::Error> {
        let (code, _): (u8, Vec<u8>) = Deserialize::deserialize(d)?;
        let fault = FAULTS[usize::from(code)];
        match fault {
            Fault::DecodePanic => panic!("Deserialize panics on the worker"),
            Fault::DecodeAbort => std::process::abort(),
            Fault::DecodeGarbage => Err(D::Error::custom("garbage arguments")),
            Fault::DecodeHang => {
                std::thread::sleep(Duration::from_secs(600));
                Ok(Arg(fault))
            }
            _ => Ok(Arg(fault)),
        }
    }
}

/// A task's result that fails on command when decoded on the client.
#[derive(Debug, Clone)]
struct Out(Fault, usize);

impl Serialize for Out {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (code(self.0), vec![0u8; self.1]).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Out {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Out, D::Error> {
        let (code, bytes): (u8, Vec<u8>) = Deserialize::deserialize(d)?;
        match FAULTS[usize::from(code)] {
            Fault::ResultDecodePanic => panic!("Deserialize of the result panics on the client"),
            Fault::ResultDecodeGarbage => Err(D::Error::custom("garbage result")),
            Fault::ResultDecodeHang => {
                std::thread::sleep(Duration::from_secs(600));
                Ok(Out(Fault::ResultDecodeHang, bytes.len()))
            }
            fault => Ok(Out(fault, bytes.len())),
        }
    }
}

#[flotilla::task]
fn trap(arg: Arg) -> Out {
    match arg.0 {
        Fault::RunPanic => panic!("the task panics"),
        Fault::RunAbort => std::process::abort(),
        Fault::RunKill => {
            // SAFETY: signalling our own process has no memory-safety preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            unreachable!("killed")
        }
        Fault::RunExit => std::process::exit(3),
        Fault::RunHang => {
            std::thread::sleep(Duration::from_secs(600));
            Out(arg.0, 0)
        }
        Fault::ResultTooLarge => Out(arg.0, 2 << 20),
        fault => Out(fault, 0),
    }
}

/// What the faulty future must say: a check, and words its message must contain.
fn expect(fault: Fault, err: &Error) {
    let text = err.to_string();
    let redis = RedisError::of(err);
    let (ok, words): (bool, &[&str]) = match fault {
        Fault::None => (false, &[]),
        Fault::EncodePanic => (
            matches!(err, Error::Codec { .. }),
            &[
                "encoding the arguments",
                "on the client panicked",
                "Serialize panics",
            ],
        ),
        Fault::EncodeGarbage => (
            matches!(err, Error::Codec { .. }),
            &["could not encode the arguments", "on the client"],
        ),
        Fault::ArgumentsTooLarge => (
            redis.is_some_and(|r| matches!(r, RedisError::ArgumentsTooLarge { .. })),
            &["arguments", "not sent"],
        ),
        // A panic of the arguments' `Deserialize` in the pool's worker process is caught
        // there: the error names the stage, and the worker process lives on.
        Fault::DecodePanic => (
            matches!(err, Error::Codec { .. }),
            &[
                "could not decode the arguments of task",
                "in the worker",
                "Deserialize panics on the worker",
            ],
        ),
        Fault::DecodeAbort | Fault::RunAbort => {
            (err.is_worker_died(), &["killed by signal 6", "SIGABRT"])
        }
        Fault::DecodeGarbage => (
            matches!(err, Error::Codec { .. } | Error::Broken { .. }),
            &["could not decode the arguments of task"],
        ),
        Fault::DecodeHang | Fault::RunHang => (err.is_task_timeout(), &["time limit"]),
        Fault::RunPanic => (err.is_panic(), &["the task panics"]),
        Fault::RunKill => (err.is_worker_died(), &["signal 9", "SIGKILL"]),
        Fault::RunExit => (err.is_worker_died(), &["exited with code 3"]),
        Fault::ResultTooLarge => (
            redis.is_some_and(|r| matches!(r, RedisError::ResultTooLarge { .. })),
            &["result", "exceeds"],
        ),
        Fault::ResultDecodePanic => (
            matches!(err, Error::Codec { .. }),
            &[
                "decoding the task's result on the client panicked",
                "panics on the client",
            ],
        ),
        Fault::ResultDecodeGarbage => (
            matches!(err, Error::Codec { .. }),
            &["could not decode a task's result"],
        ),
        // It used to hold up the thread that reads every result: no future settled.
        Fault::ResultDecodeHang => (
            matches!(err, Error::Codec { .. }),
            &[
                "decoding the task's result on the client did not finish within 2s",
                "given up",
            ],
        ),
    };
    assert!(ok, "{fault:?}: wrong error: {err:?}");
    for word in words {
        assert!(
            text.contains(word),
            "{fault:?}: {text:?} does not say {word:?}"
        );
    }
}

#[test]
fn every_stage_times_every_failure() {
    let server = RedisServer::start_with_config(&["--proto-max-bulk-len", "1mb"]);
    let url = server.url();
    let _worker = spawn_worker(&url, 2, Duration::from_secs(3));
    let limit = Duration::from_secs(2);
    let cluster = RedisExecutor::builder(&url)
        .result_decode_timeout(limit)
        .build()
        .unwrap();
    for fault in FAULTS.into_iter().skip(1) {
        let before: Vec<_> = (0..3)
            .map(|_| cluster.submit(trap, Arg(Fault::None)).unwrap())
            .collect();
        let faulty = cluster
            .submit_with_timeout(trap, Arg(fault), limit)
            .unwrap();
        let after: Vec<_> = (0..3)
            .map(|_| cluster.submit(trap, Arg(Fault::None)).unwrap())
            .collect();
        let err = faulty
            .result_timeout(Duration::from_secs(60))
            .expect_err("the faulty task must fail");
        println!("{fault:?}: {err}");
        expect(fault, &err);
        for fut in before.iter().chain(&after) {
            let out = fut.result_timeout(Duration::from_secs(60)).unwrap();
            assert_eq!(out.0, Fault::None, "{fault:?} touched another task");
        }
    }
    // The worker is at full strength after all of that.
    runs_two_at_once(&cluster, "after-the-matrix");
    assert_eq!(cluster.unmatched_results(), 0);
}
