//! How a worker runs a registered task from its encoded arguments, stage by stage: decode the
//! arguments, run, encode the result. A failure at any stage, a panic of the arguments' or the
//! result's serde code included, is caught and reported with the stage named, and each stage
//! is recorded in the worker's progress page ([`progress`]) before it starts.
//!
//! A chunk runs item by item, each with its own outcome, and its results leave the worker in
//! batches as they are ready ([`chunk`]), so a worker that dies mid-chunk takes little with
//! it.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::progress;
use crate::wire::{self, Item, ItemError, Outcome};
use flotilla_core::Stage;
use flotilla_core::Task;
use flotilla_core::panic;

/// Runs one task: decodes its arguments from `args`, runs it and appends its encoded result to
/// `out`. On failure the buffer's new contents are meaningless.
pub(crate) fn call<T: Task + Default>(args: &[u8], out: &mut Vec<u8>) -> Outcome {
    progress::note(Stage::DecodeArgs, 0);
    let args: T::Args = match wire::decode_front(args) {
        Ok((args, _)) => args,
        Err(why) => {
            return Outcome::Failed(format!(
                "could not decode the arguments of task `{}` in the worker: {why}",
                T::NAME
            ));
        }
    };
    progress::note(Stage::Run, 0);
    let output = match panic::catch(|| T::default().run(args)) {
        Ok(output) => output,
        Err(panic) => {
            return Outcome::Panicked {
                message: panic.message().to_owned(),
                location: panic.location().map(str::to_owned),
            };
        }
    };
    progress::note(Stage::EncodeResult, 0);
    match wire::encode_onto(out, &output) {
        Ok(()) => Outcome::Value,
        Err(why) => Outcome::Failed(format!(
            "could not encode the result of task `{}` in the worker: {why}",
            T::NAME
        )),
    }
}

/// Runs a task on each item of a chunk, whose encoded arguments are records (see
/// [`wire::push_record`]), each item with its own outcome, appending one record per item run
/// to `out` and handing them on as [`chunk`] says. An item whose arguments cannot be decoded
/// (its `Deserialize` fails or panics, or leaves bytes of its record unread) or whose result
/// cannot be encoded fails alone: the items after it still run. Only records cut short end the
/// chunk, since the place of the items after them is lost; the short one is the last item.
pub(crate) fn call_chunk<T: Task + Default>(items: &[u8], out: &mut Vec<u8>) -> Outcome {
    let skip = chunk::skip();
    let task = T::default();
    for (index, record) in wire::records(items).enumerate() {
        if index < skip as usize {
            continue;
        }
        let item = u32::try_from(index).unwrap_or(u32::MAX);
        progress::note(Stage::DecodeArgs, item);
        let outcome: Item<T::Output> = match record.and_then(decode_args::<T::Args>) {
            Ok(args) => {
                progress::note(Stage::Run, item);
                match panic::catch(|| task.run(args)) {
                    Ok(value) => Item::Value(value),
                    Err(panic) => Item::Panicked {
                        message: panic.message().to_owned(),
                        location: panic.location().map(str::to_owned),
                    },
                }
            }
            Err(why) => Item::Failed(ItemError::Args(why)),
        };
        progress::note(Stage::EncodeResult, item);
        if let Err(why) = wire::push_record(out, &outcome) {
            let failed: Item<()> = Item::Failed(ItemError::Result(why));
            if let Err(why) = wire::push_record(out, &failed) {
                return Outcome::Failed(why);
            }
        }
        drop(outcome);
        if let Err(why) = chunk::item_done(out, item) {
            return Outcome::Failed(why);
        }
    }
    Outcome::Value
}

/// Decodes one item's arguments from the whole of its record.
fn decode_args<'a, A: serde::Deserialize<'a>>(record: &'a [u8]) -> Result<A, String> {
    match wire::decode_front::<A>(record)? {
        (args, []) => Ok(args),
        (_, rest) => Err(format!(
            "its `Deserialize` left {} of the {} bytes its `Serialize` wrote unread",
            rest.len(),
            record.len()
        )),
    }
}

/// The chunk a worker is running: which items to skip and where finished items' results go.
/// Set by the worker's loop around each chunk; outside one, items are kept until the end.
pub(crate) mod chunk {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// How long finished items' results may wait in the worker before they are sent, unless
    /// the chunk asked for each to be sent at once. Short enough that a worker dying mid-chunk
    /// loses little, long enough that small items travel in batches.
    const BATCH_FOR: Duration = Duration::from_millis(2);

    struct Running {
        skip: u32,
        each: bool,
        /// The size of the frame's header in the buffer: a batch is pending when it holds
        /// more.
        header: usize,
        since: Instant,
        socket: &'static UnixStream,
    }

    thread_local! {
        static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
    }

    /// Runs `body`, which runs a chunk into a buffer that starts with a
    /// [`wire::Reply::Items`] header of `header` bytes, skipping `skip` items and sending
    /// batches on `socket`.
    pub(crate) fn running<R>(
        skip: u32,
        each: bool,
        header: usize,
        socket: &'static UnixStream,
        body: impl FnOnce() -> R,
    ) -> R {
        /// Clears the chunk even if `body` unwinds.
        struct Clear;
        impl Drop for Clear {
            fn drop(&mut self) {
                RUNNING.with(|slot| slot.borrow_mut().take());
            }
        }
        RUNNING.with(|slot| {
            *slot.borrow_mut() = Some(Running {
                skip,
                each,
                header,
                since: Instant::now(),
                socket,
            })
        });
        let _clear = Clear;
        body()
    }

    pub(super) fn skip() -> u32 {
        RUNNING.with(|slot| slot.borrow().as_ref().map_or(0, |run| run.skip))
    }

    /// Called after each item's record is in `out`: sends the batch if it is due, leaving
    /// only the header in `out`.
    pub(super) fn item_done(out: &mut Vec<u8>, item: u32) -> Result<(), String> {
        RUNNING.with(|slot| match slot.borrow_mut().as_mut() {
            Some(run) if run.each || run.since.elapsed() >= BATCH_FOR => {
                progress::note(Stage::SendResult, item);
                wire::finish(out)?;
                let mut socket = run.socket;
                let sent = socket.write_all(out).map_err(|err| err.to_string());
                out.truncate(run.header);
                run.since = Instant::now();
                sent
            }
            _ => Ok(()),
        })
    }
}
