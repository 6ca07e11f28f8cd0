//! A chunk of a process pool's `map` fails item by item in the worker too: an item whose
//! arguments the worker cannot decode (their `Deserialize` refuses or panics, or leaves bytes
//! their `Serialize` wrote unread) or whose result it cannot encode fails alone, with an error
//! naming the item's position in its chunk; the chunk's other items keep their values, and the
//! pool keeps its strength. Python users expect this of `Pool.imap` and `Executor.map`: one
//! failure does not end the iteration.
//!
//! The failures are real: the types below encode fine in the test process and refuse (or
//! panic) on marker values only once they reach the worker (arguments) or leave it (results).

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla::backend::{self, Chunk, Shape};
use flotilla::{Error, Executor, ProcessPoolExecutor, Task};
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[path = "support/strength.rs"]
mod strength;

/// What an input does, by its value modulo [`PERIOD`].
const PERIOD: u32 = 25;
/// Its `Deserialize` returns an error in the worker.
const REFUSED: u32 = 13;
/// Its `Deserialize` panics in the worker.
const PANICS: u32 = 14;
/// Its `Serialize` writes a byte more than its `Deserialize` reads.
const UNREAD: u32 = 15;
/// Its result's `Serialize` returns an error in the worker.
const RESULT_REFUSED: u32 = 20;
/// Its result's `Serialize` panics in the worker.
const RESULT_PANICS: u32 = 21;

/// A task's argument that the test process encodes without complaint.
#[derive(Clone, Copy, Debug)]
struct Arg(u32);

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % PERIOD == UNREAD {
            (self.0, 0xa5u8).serialize(serializer)
        } else {
            serializer.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Arg, D::Error> {
        let n = u32::deserialize(deserializer)?;
        match n % PERIOD {
            REFUSED => Err(D::Error::custom(format!("{n} is refused in the worker"))),
            PANICS => panic!("{n} panics while decoded in the worker"),
            _ => Ok(Arg(n)),
        }
    }
}

/// A task's result that the worker may fail to encode.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
struct Out(u32);

impl Serialize for Out {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 % PERIOD {
            RESULT_REFUSED => Err(S::Error::custom("refuses to leave the worker")),
            RESULT_PANICS => panic!("{} panics while encoded in the worker", self.0),
            _ => serializer.serialize_u32(self.0),
        }
    }
}

#[flotilla::task]
fn touch(arg: Arg) -> Out {
    Out(arg.0)
}

/// How an item's failure shows, or `None` for an item that keeps its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fails {
    Decode,
    Encode,
}

fn fails(n: u32) -> Option<Fails> {
    match n % PERIOD {
        REFUSED | PANICS | UNREAD => Some(Fails::Decode),
        RESULT_REFUSED | RESULT_PANICS => Some(Fails::Encode),
        _ => None,
    }
}

/// Which failure `err` reports, and the position in its chunk that it names.
fn failure(err: &Error) -> (Fails, usize) {
    assert!(matches!(err, Error::Codec { .. }), "{err:?}");
    let text = err.to_string();
    let kind = if text.contains("could not decode the arguments of task") {
        Fails::Decode
    } else if text.contains("could not encode the result of task") {
        Fails::Encode
    } else {
        panic!("neither a decode nor an encode failure: {text}")
    };
    assert!(
        text.contains("touch") && text.contains("in the worker"),
        "{text}"
    );
    let position = text
        .split("(item ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no position in: {text}"));
    (kind, position)
}

/// What the error of input `n` must also say: the panic's message where there was one.
fn check_detail(n: u32, err: &Error) {
    let text = err.to_string();
    match n % PERIOD {
        PANICS => assert!(
            text.contains("panics while decoded in the worker"),
            "{text}"
        ),
        UNREAD => assert!(text.contains("unread"), "{text}"),
        RESULT_PANICS => assert!(
            text.contains("panics while encoded in the worker"),
            "{text}"
        ),
        _ => {}
    }
}

const INPUTS: u32 = 200;

fn pool(limit: Option<Duration>) -> ProcessPoolExecutor {
    let builder = ProcessPoolExecutor::builder().max_workers(2);
    match limit {
        // With a time limit, each item's result leaves the worker on its own.
        Some(limit) => builder.task_timeout(limit),
        None => builder,
    }
    .build()
    .unwrap()
}

fn in_order(limit: Option<Duration>) {
    let pool = pool(limit);
    for chunksize in [1, 7, 100] {
        let results: Vec<_> = pool
            .map(TouchTask, (0..INPUTS).map(Arg))
            .chunksize(chunksize)
            .collect();
        assert_eq!(results.len(), INPUTS as usize);
        for (n, result) in (0..INPUTS).zip(&results) {
            match (fails(n), result) {
                (None, Ok(out)) => assert_eq!(*out, Out(n)),
                (Some(kind), Err(err)) => {
                    let position = n as usize % chunksize;
                    assert_eq!(failure(err), (kind, position), "item {n}: {err}");
                    check_detail(n, err);
                }
                (expected, got) => {
                    panic!("chunksize {chunksize}, item {n}: expected {expected:?}, got {got:?}")
                }
            }
        }
        strength::assert_full_strength(&pool);
    }
}

fn out_of_order(limit: Option<Duration>) {
    let pool = pool(limit);
    for chunksize in [1, 7, 100] {
        let mut want_values: Vec<u32> = (0..INPUTS).filter(|n| fails(*n).is_none()).collect();
        let mut want_failures: BTreeMap<(Fails, usize), usize> = BTreeMap::new();
        for n in (0..INPUTS).filter(|n| fails(*n).is_some()) {
            let key = (fails(n).unwrap(), n as usize % chunksize);
            *want_failures.entry(key).or_default() += 1;
        }
        let mut values = Vec::new();
        let mut failures: BTreeMap<(Fails, usize), usize> = BTreeMap::new();
        for result in pool
            .map(TouchTask, (0..INPUTS).map(Arg))
            .chunksize(chunksize)
            .unordered()
        {
            match result {
                Ok(Out(n)) => values.push(n),
                Err(err) => *failures.entry(failure(&err)).or_default() += 1,
            }
        }
        values.sort_unstable();
        want_values.sort_unstable();
        assert_eq!(values, want_values, "chunksize {chunksize}");
        assert_eq!(failures, want_failures, "chunksize {chunksize}");
        strength::assert_full_strength(&pool);
    }
}

#[test]
fn an_item_the_worker_cannot_decode_or_encode_fails_alone_in_order() {
    in_order(None);
}

#[test]
fn an_item_the_worker_cannot_decode_or_encode_fails_alone_out_of_order() {
    out_of_order(None);
}

#[test]
fn an_item_the_worker_cannot_decode_or_encode_fails_alone_with_a_time_limit() {
    in_order(Some(Duration::from_secs(60)));
    out_of_order(Some(Duration::from_secs(60)));
}

#[test]
fn a_backends_chunk_fails_item_by_item_too() {
    let pool = pool(None);
    let items = [Arg(1), Arg(REFUSED), Arg(2), Arg(RESULT_PANICS), Arg(3)];
    let mut args = backend::encode_chunk(&items).unwrap();
    // A last record that announces 9 bytes and brings 1: it fails, and only it.
    args.extend_from_slice(&[9, 0, 0, 0, 1]);
    let out = pool
        .submit_encoded(TouchTask::NAME, Shape::Chunk, args, None)
        .unwrap()
        .result()
        .unwrap();
    let Chunk::Mixed(results) = backend::decode_chunk::<Out>(&out).unwrap() else {
        panic!("three items failed")
    };
    assert_eq!(results.len(), 6, "{results:?}");
    for (position, want) in [(0, 1), (2, 2), (4, 3)] {
        assert_eq!(
            results[position].as_ref().ok(),
            Some(&Out(want)),
            "{results:?}"
        );
    }
    for (position, kind) in [(1, Fails::Decode), (3, Fails::Encode)] {
        let text = results[position].as_ref().unwrap_err().to_string();
        let named = format!("(item {position} of its chunk)");
        let what = match kind {
            Fails::Decode => "could not decode the arguments",
            Fails::Encode => "could not encode the result",
        };
        assert!(text.contains(what) && text.contains(&named), "{text}");
    }
    let cut = results[5].as_ref().unwrap_err();
    assert!(
        matches!(cut, Error::Codec { .. }) && cut.to_string().contains("cut short"),
        "{cut:?}"
    );
    strength::assert_full_strength(&pool);
}
