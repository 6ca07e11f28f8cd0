//! For crates that implement [`Executor`](flotilla_core::Executor) outside flotilla, such as
//! `flotilla-redis`: the few pieces of machinery a backend needs and cannot build itself.
//!
//! Application code never needs this module. A backend that moves tasks to other processes or
//! machines uses it to:
//!
//! - build the lazy [`Map`] for its [`Executor::map`](flotilla_core::Executor::map) from a closure that
//!   submits one chunk of inputs ([`map`], [`Chunk`]);
//! - encode a task's arguments and decode its result exactly as flotilla's own workers do
//!   ([`encode`], [`decode`], [`encode_chunk`], [`decode_chunk`], [`PAYLOAD_VERSION`]);
//! - check that a worker runs the same code as the client ([`signature`],
//!   [`registered_signature`]) and that the program's task names are unique
//!   ([`check_tasks`]);
//! - run a registered task by name, from encoded arguments, in a crash-isolated worker process
//!   ([`ProcessPoolExecutor::submit_encoded`](crate::ProcessPoolExecutor::submit_encoded)), and
//!   let `cancel()` ask a server ([`Promise::on_cancel_request`](flotilla_core::Promise::on_cancel_request)).
//!
//! In Python terms this is what `concurrent.futures` leaves to each executor subclass: how a
//! callable and its arguments are pickled, and how `map` is built on `submit`.
//!
//! # Examples
//!
//! A toy backend whose `map` runs each chunk on the calling thread:
//!
//! ```
//! use flotilla::backend::{self, Chunk};
//! use flotilla::{Error, Promise};
//!
//! let submit = |chunk: Vec<u32>| -> Result<flotilla::Future<Chunk<u32>>, Error> {
//!     let promise = Promise::new();
//!     let future = promise.future();
//!     promise.complete(Ok(Chunk::Values(chunk.into_iter().map(|x| x + 1).collect())));
//!     Ok(future)
//! };
//! let out: Vec<u32> = backend::map(0..4, 1, submit).chunksize(3).collect::<Result<_, _>>()?;
//! assert_eq!(out, [1, 2, 3, 4]);
//! # Ok::<(), flotilla::Error>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::registry::Shape;
pub use flotilla_core::__layer::Chunk;
use flotilla_core::Error;
use flotilla_core::Future;
use flotilla_core::Map;
use flotilla_core::Task;

/// The version of the encoding of tasks' arguments and results and of flotilla's own worker
/// protocol; a backend puts it in its messages and refuses messages with another.
///
/// # Examples
///
/// ```
/// assert!(flotilla::backend::PAYLOAD_VERSION >= 1);
/// ```
pub const PAYLOAD_VERSION: u32 = crate::wire::VERSION;

/// Builds the lazy [`Map`] that [`Executor::map`](flotilla_core::Executor::map) returns, from a closure
/// that submits one chunk of inputs and returns the future of its results. `workers` sets the
/// default number of chunks in flight (twice that).
///
/// # Examples
///
/// See the [module documentation](self).
pub fn map<'a, I, R, F>(inputs: I, workers: usize, submit: F) -> Map<'a, I, R>
where
    I: Iterator,
    R: Send + 'static,
    F: FnMut(Vec<I::Item>) -> Result<Future<Chunk<R>>, Error> + Send + 'a,
{
    Map::new(inputs, workers, Box::new(submit))
}

/// Encodes a task's arguments (or anything else) as flotilla's workers expect them.
///
/// # Errors
///
/// [`Error::Codec`] if the value refuses to be serialized.
///
/// # Examples
///
/// ```
/// let bytes = flotilla::backend::encode(&(1u8, "a"))?;
/// assert_eq!(flotilla::backend::decode::<(u8, String)>(&bytes)?, (1, "a".to_owned()));
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(value).map_err(|err| Error::Codec {
        message: format!("could not encode a value: {err}"),
    })
}

/// Decodes a value encoded by [`encode`] or by a worker (a task's result).
///
/// # Errors
///
/// [`Error::Codec`] if the bytes are not an encoding of a `T`.
///
/// # Examples
///
/// ```
/// assert!(flotilla::backend::decode::<String>(&[200]).is_err());
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(|err| Error::Codec {
        message: format!("could not decode a task's result: {err}"),
    })
}

/// Encodes the items of a chunk, for a task run with [`Shape::Chunk`]: each item's encoding
/// behind its own length, so that the worker decodes every item on its own and one it cannot
/// decode fails alone (see [`decode_chunk`]).
///
/// # Errors
///
/// [`Error::Codec`] naming the first item (by position) whose `Serialize` fails or panics.
///
/// # Examples
///
/// ```
/// let items = flotilla::backend::encode_chunk(&[1u32, 2, 3])?;
/// assert!(!items.is_empty());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn encode_chunk<T: Serialize>(items: &[T]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for (position, item) in items.iter().enumerate() {
        crate::wire::push_record(&mut out, item).map_err(|why| Error::Codec {
            message: format!("could not encode item {position} of a chunk: {why}"),
        })?;
    }
    Ok(out)
}

/// Decodes the result of a task run with [`Shape::Chunk`]: one result per input, a panic in one
/// item, or arguments the worker could not decode, failing only that item.
///
/// # Errors
///
/// [`Error::Codec`] if the bytes are not a chunk's results of `T`.
///
/// # Examples
///
/// ```
/// use flotilla::backend::{self, Shape};
/// use flotilla::{ProcessPoolExecutor, Task};
///
/// #[flotilla::task]
/// fn halve(x: u32) -> u32 {
///     assert!(x % 2 == 0, "odd");
///     x / 2
/// }
///
/// let pool = ProcessPoolExecutor::builder().max_workers(1).build()?;
/// let args = backend::encode_chunk(&[2u32, 3, 4])?;
/// let out = pool.submit_encoded(HalveTask::NAME, Shape::Chunk, args, None)?.result()?;
/// match backend::decode_chunk::<u32>(&out)? {
///     backend::Chunk::Mixed(items) => {
///         assert_eq!(items[0].as_ref().ok(), Some(&1));
///         assert!(items[1].as_ref().unwrap_err().is_panic());
///     }
///     backend::Chunk::Values(_) => unreachable!("item 1 panicked"),
/// }
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn decode_chunk<T: DeserializeOwned>(bytes: &[u8]) -> Result<Chunk<T>, Error> {
    crate::process_pool::decode_items(bytes)
}

/// A fingerprint of task `T`: its name and the schemas of its argument and result types. Two
/// builds of the same code agree on it, whatever compiler built them; a worker built from code
/// that encodes the task differently gives another one for the same name, so a backend can
/// refuse the task instead of misreading its arguments.
///
/// The schema is what the types' `Deserialize` asks for, traced once per task (and kept): for
/// each struct its field names, their order and their types; for each enum its variants in
/// order and what each holds; options, sequences, maps, tuples and primitives. Nothing else
/// counts: renaming a type or moving it to another module keeps the fingerprint; reordering,
/// renaming, adding or retyping a field or a variant changes it.
///
/// Where a type cannot be traced (its `Deserialize` needs a self-describing format, which
/// flotilla's encoding is not either, or refuses the placeholder values the tracer feeds it,
/// such as `1` for integers and empty strings), the fingerprint uses that type's
/// `std::any::type_name` instead: then only builds by the same compiler are sure to agree.
///
/// # Examples
///
/// ```
/// use flotilla::Task;
///
/// #[flotilla::task]
/// fn inc(x: u64) -> u64 {
///     x + 1
/// }
///
/// let sig = flotilla::backend::signature::<IncTask>();
/// assert_eq!(flotilla::backend::registered_signature(IncTask::NAME), Some(sig));
/// ```
pub fn signature<T: Task>() -> u64 {
    crate::registry::signature::<T>()
}

/// The [`signature`] of the task registered under `name` in this program, or `None` if this
/// program has no such task that may be started by name (internal tasks, like the manager's
/// server, and names registered twice are not).
///
/// # Examples
///
/// ```
/// assert_eq!(flotilla::backend::registered_signature("no such task"), None);
/// ```
pub fn registered_signature(name: &str) -> Option<u64> {
    crate::registry::registered_signature(name)
}

/// Checks that no two tasks of this program share a name, so that a name received from
/// elsewhere names one task. Process pools check this when they are built; a backend's worker
/// should check it before it serves.
///
/// # Errors
///
/// [`Error::DuplicateTask`] naming a task name registered twice.
///
/// # Examples
///
/// ```
/// flotilla::backend::check_tasks()?;
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn check_tasks() -> Result<(), Error> {
    crate::registry::check()
}
