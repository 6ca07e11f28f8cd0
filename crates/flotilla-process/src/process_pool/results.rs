//! Turning what came back from a worker into a task's value, in the pool's own process: the
//! result's `Deserialize` runs here, so its errors and panics are caught and named, and each
//! item of a chunk is decoded on its own, so one bad item spares the others.

use std::ops::Range;

use serde::de::DeserializeOwned;

use crate::wire::{self, Item, ItemError};
use flotilla_core::__layer::Chunk;
use flotilla_core::{Error, Panic, Stage, WorkerExit};

/// What became of each item of a chunk that was sent to a worker, in order.
#[derive(Debug, Default)]
pub(super) struct Received {
    /// The records (see [`wire::push_record`]) the worker sent, one after another.
    bytes: Vec<u8>,
    items: Vec<Got>,
}

/// One item of a [`Received`] chunk.
#[derive(Debug)]
enum Got {
    /// The worker's record for it: a range of `bytes`, without the length prefix.
    Record(Range<usize>),
    /// The pool's own verdict: the worker died or was killed before the item's record came.
    Failed(Error),
}

impl Received {
    /// How many items have an outcome.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Takes the records of a batch from a worker. `Err` if they are malformed, in which case
    /// none is taken.
    pub(super) fn take_records(&mut self, payload: &[u8]) -> Result<(), String> {
        let mut ranges = Vec::new();
        let base = payload.as_ptr() as usize;
        for record in wire::records(payload) {
            let record = record?;
            let at = record.as_ptr() as usize - base;
            ranges.push(at..at + record.len());
        }
        let offset = self.bytes.len();
        self.bytes.extend_from_slice(payload);
        self.items.extend(
            ranges
                .into_iter()
                .map(|range| Got::Record(range.start + offset..range.end + offset)),
        );
        Ok(())
    }

    /// Gives the next item the pool's own verdict.
    pub(super) fn fail(&mut self, error: Error) {
        self.items.push(Got::Failed(error));
    }
}

/// Decodes a task's encoded result.
pub(super) fn decode_one<T: DeserializeOwned>(payload: &[u8], task: &str) -> Result<T, Error> {
    wire::decode_front(payload)
        .map(|(value, _)| value)
        .map_err(|why| Error::Codec {
            message: format!("could not decode the result of task `{task}`: {why}"),
        })
}

/// A task's encoded result, as it is.
pub(super) fn raw_one(payload: &[u8], _task: &str) -> Result<Vec<u8>, Error> {
    Ok(payload.to_vec())
}

/// Decodes a chunk's items; `unsent` are the items (by position) that never left the pool.
pub(super) fn decode_chunk<T: DeserializeOwned>(
    received: Received,
    unsent: Vec<(usize, Error)>,
    task: &str,
) -> Chunk<T> {
    let total = received.items.len() + unsent.len();
    let mut unsent = unsent.into_iter().peekable();
    let mut items = received.items.into_iter();
    let mut results: Vec<Result<T, Error>> = Vec::with_capacity(total);
    for position in 0..total {
        let outcome = match unsent.next_if(|(at, _)| *at == position) {
            Some((_, error)) => Err(error),
            None => match items.next() {
                Some(Got::Record(range)) => decode_item(&received.bytes[range], task, position),
                Some(Got::Failed(error)) => Err(error),
                None => Err(Error::Abandoned),
            },
        };
        results.push(outcome);
    }
    into_chunk(results)
}

/// A chunk's items as records, for a backend that decodes them elsewhere
/// ([`decode_items`]).
pub(super) fn raw_chunk(received: Received, _unsent: Vec<(usize, Error)>, _task: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(received.bytes.len());
    for item in received.items {
        let pushed = match item {
            Got::Record(range) => wire::push_raw_record(&mut out, &received.bytes[range]),
            Got::Failed(error) => wire::push_record(&mut out, &Item::<()>::Failed(to_wire(&error))),
        };
        if let Err(why) = pushed {
            let failed: Item<()> = Item::Failed(ItemError::Codec(why));
            // A failure record is small and always encodes.
            let _ = wire::push_record(&mut out, &failed);
        }
    }
    out
}

/// Decodes the records a chunk run through [`raw_chunk`] produced.
pub(crate) fn decode_items<T: DeserializeOwned>(payload: &[u8]) -> Result<Chunk<T>, Error> {
    let results = wire::records(payload)
        .enumerate()
        .map(|(position, record)| match record {
            Ok(record) => Ok(decode_item(record, "", position)),
            Err(why) => Err(Error::Codec {
                message: format!("could not decode a chunk's results: {why}"),
            }),
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(into_chunk(results))
}

/// Decodes the record of the item at `position` in its chunk; `task` names the task (empty
/// for a backend's chunk, whose task is not known here).
fn decode_item<T: DeserializeOwned>(
    record: &[u8],
    task: &str,
    position: usize,
) -> Result<T, Error> {
    match wire::decode_front::<Item<T>>(record) {
        Ok((Item::Value(value), _)) => Ok(value),
        Ok((Item::Panicked { message, location }, _)) => {
            Err(Error::Panicked(Panic::new(message, location)))
        }
        Ok((Item::Failed(ItemError::Args(why)), _)) => {
            Err(in_worker("decode the arguments", task, position, &why))
        }
        Ok((Item::Failed(ItemError::Result(why)), _)) => {
            Err(in_worker("encode the result", task, position, &why))
        }
        Ok((Item::Failed(error), _)) => Err(from_wire(error)),
        Err(why) if task.is_empty() => Err(Error::Codec {
            message: format!("could not decode a task's result: {why}"),
        }),
        Err(why) => Err(Error::Codec {
            message: format!("could not decode the result of task `{task}`: {why}"),
        }),
    }
}

/// The error of an item that the worker could not `what` (decode the arguments, encode the
/// result) of, naming the task and the item's position in its chunk.
fn in_worker(what: &str, task: &str, position: usize, why: &str) -> Error {
    let task = if task.is_empty() {
        "a task".to_owned()
    } else {
        format!("task `{task}`")
    };
    Error::Codec {
        message: format!(
            "could not {what} of {task} in the worker (item {position} of its chunk): {why}"
        ),
    }
}

fn into_chunk<T>(results: Vec<Result<T, Error>>) -> Chunk<T> {
    if results.iter().all(Result::is_ok) {
        Chunk::Values(results.into_iter().filter_map(Result::ok).collect())
    } else {
        Chunk::Mixed(results)
    }
}

/// How a pool-side failure of an item travels inside a chunk's records.
fn to_wire(error: &Error) -> ItemError {
    match error {
        Error::WorkerDied(exit) => ItemError::WorkerDied {
            pid: exit.pid(),
            code: exit.code(),
            signal: exit.signal(),
            stage: exit.stage().map(wire::stage_code),
            cause: exit.cause().map(str::to_owned),
        },
        Error::TaskTimedOut { limit } => {
            ItemError::TimedOut(u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX))
        }
        Error::Spawn { reason } => ItemError::Spawn(reason.clone()),
        Error::Broken { reason } => ItemError::Broken(reason.clone()),
        Error::Codec { message } => ItemError::Codec(message.clone()),
        other => ItemError::Codec(other.to_string()),
    }
}

fn from_wire(error: ItemError) -> Error {
    match error {
        ItemError::Codec(message) | ItemError::Args(message) | ItemError::Result(message) => {
            Error::Codec { message }
        }
        ItemError::WorkerDied {
            pid,
            code,
            signal,
            stage,
            cause,
        } => {
            let mut exit = WorkerExit::new(pid, code, signal);
            if let Some(stage) = stage.and_then(wire::stage_of) {
                exit = exit.at(stage);
            }
            if let Some(cause) = cause {
                exit = exit.with_cause(cause);
            }
            Error::WorkerDied(exit)
        }
        ItemError::TimedOut(nanos) => Error::TaskTimedOut {
            limit: std::time::Duration::from_nanos(nanos),
        },
        ItemError::Spawn(reason) => Error::Spawn { reason },
        ItemError::Broken(reason) => Error::Broken { reason },
    }
}

/// The error for a worker's reply that could not be read while the task was at `stage`.
pub(super) fn malformed(stage: Option<Stage>, why: &str) -> Error {
    Error::Codec {
        message: match stage {
            Some(stage) => {
                format!("the worker sent a malformed reply while the task was {stage}: {why}")
            }
            None => format!("the worker sent a malformed reply: {why}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_survives_the_trip_through_raw_records() {
        let mut batch = Vec::new();
        wire::push_record(&mut batch, &Item::Value(5u32)).unwrap();
        wire::push_record(
            &mut batch,
            &Item::<u32>::Panicked {
                message: "boom".into(),
                location: None,
            },
        )
        .unwrap();
        let mut received = Received::default();
        received.take_records(&batch).unwrap();
        let exit = WorkerExit::new(7, None, Some(6))
            .at(Stage::Run)
            .with_cause("the task overflowed its stack");
        received.fail(Error::WorkerDied(exit.clone()));
        let raw = raw_chunk(received, Vec::new(), "t");
        let Chunk::Mixed(items) = decode_items::<u32>(&raw).unwrap() else {
            panic!("two items failed")
        };
        assert_eq!(items[0].as_ref().ok(), Some(&5));
        assert!(items[1].as_ref().unwrap_err().is_panic());
        match &items[2] {
            Err(Error::WorkerDied(back)) => assert_eq!(*back, exit),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_records_are_refused_whole() {
        let mut received = Received::default();
        assert!(received.take_records(&[9, 0, 0, 0, 1]).is_err());
        assert_eq!(received.len(), 0);
    }
}
