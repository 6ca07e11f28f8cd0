//! The table of `#[flotilla::task]` functions, filled in at link time, in which worker
//! processes look tasks up by name.
//!
//! Names must be unique: two tasks registered under one name (two functions of the same name
//! inside function bodies of one module, or two versions of one crate) are refused as a whole,
//! so a worker never runs the wrong one ([`check`] names them). Tasks marked internal
//! (`#[flotilla::task(internal)]`, flotilla's own manager server) are run only for code that
//! holds their type; the entry points that take a name from outside ([`lookup_public`],
//! [`registered_signature`]) do not see them.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::process_pool::run::{call, call_chunk};
use crate::wire::Outcome;
use flotilla_core::Error;
use flotilla_core::Task;
use flotilla_core::primitives::{Mutex, lock};

/// How a task's encoded arguments are to be run: once, or over a chunk (`map` with a
/// chunksize, where the arguments are each item's, as
/// [`encode_chunk`](crate::backend::encode_chunk) makes them).
///
/// # Examples
///
/// ```
/// assert_ne!(flotilla::backend::Shape::One, flotilla::backend::Shape::Chunk);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One call: the arguments are one `T::Args`, the result one `T::Output`.
    One,
    /// A chunk: the arguments are `T::Args` items encoded with [`encode_chunk`](crate::backend::encode_chunk); decode the result with [`decode_chunk`](crate::backend::decode_chunk).
    Chunk,
}

/// Runs a task from its encoded arguments. On success it appends the encoded result to the
/// buffer and returns [`Outcome::Value`]; otherwise the buffer's new contents are meaningless.
pub(crate) type Call = fn(&[u8], &mut Vec<u8>) -> Outcome;

/// One registered task; `#[flotilla::task]` creates these. Not for direct use.
#[doc(hidden)]
#[derive(Debug)]
pub struct TaskEntry {
    name: &'static str,
    call: Call,
    call_chunk: Call,
    signature: fn() -> u64,
    internal: bool,
}

impl TaskEntry {
    /// The entry for task `T`.
    pub const fn of<T: Task + Default>() -> TaskEntry {
        TaskEntry {
            name: T::NAME,
            call: call::<T>,
            call_chunk: call_chunk::<T>,
            signature: signature::<T>,
            internal: false,
        }
    }

    /// The entry for task `T`, hidden from every entry point that takes a task's name from
    /// outside the program.
    pub const fn internal<T: Task + Default>() -> TaskEntry {
        TaskEntry {
            internal: true,
            ..TaskEntry::of::<T>()
        }
    }
}

/// Every task in the program, gathered by the linker.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static TASKS: [TaskEntry];

/// A fingerprint of task `T`: its name and the schemas of its argument and result types (see
/// [`fingerprint`](crate::fingerprint)), the same in every build of the same code, whatever the
/// compiler. Computed once per task and kept.
pub(crate) fn signature<T: Task>() -> u64 {
    static KNOWN: Mutex<Option<HashMap<TypeId, u64>>> = Mutex::new(None);
    let key = TypeId::of::<T>();
    if let Some(known) = lock(&KNOWN).as_ref().and_then(|known| known.get(&key)) {
        return *known;
    }
    // Traced without the lock held: tracing runs the types' `Deserialize` impls.
    let fingerprint = crate::fingerprint::fingerprint::<T::Args, T::Output>(T::NAME);
    lock(&KNOWN)
        .get_or_insert_with(HashMap::new)
        .insert(key, fingerprint);
    fingerprint
}

/// The signature of the public task registered under `name`, if there is exactly one.
pub(crate) fn registered_signature(name: &str) -> Option<u64> {
    entry(name)
        .filter(|entry| !entry.internal)
        .map(|entry| (entry.signature)())
}

/// Finds a task by name, internal ones included: for requests made by this program's own
/// code (a typed `submit`, a `Process`), never for a name that came from outside.
pub(crate) fn lookup(name: &str, shape: Shape) -> Option<Call> {
    entry(name).map(|entry| pick(entry, shape))
}

/// Finds a public task by name: for names that come from outside the program.
pub(crate) fn lookup_public(name: &str, shape: Shape) -> Option<Call> {
    entry(name)
        .filter(|entry| !entry.internal)
        .map(|entry| pick(entry, shape))
}

fn pick(entry: &TaskEntry, shape: Shape) -> Call {
    match shape {
        Shape::One => entry.call,
        Shape::Chunk => entry.call_chunk,
    }
}

/// Fails if two tasks of this program share a name.
///
/// # Errors
///
/// [`Error::DuplicateTask`] naming the first such name (in sorted order).
pub(crate) fn check() -> Result<(), Error> {
    match index().duplicates.first() {
        Some(name) => Err(Error::DuplicateTask {
            name: (*name).to_owned(),
        }),
        None => Ok(()),
    }
}

/// Fails if another task of this program shares `name`.
///
/// # Errors
///
/// [`Error::DuplicateTask`] naming it.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    if index().duplicates.contains(&name) {
        return Err(Error::DuplicateTask {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Every task by name, and the names registered more than once (which no lookup finds).
struct Index {
    tasks: HashMap<&'static str, &'static TaskEntry>,
    duplicates: Vec<&'static str>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut tasks = HashMap::new();
        let mut duplicates = Vec::new();
        for entry in TASKS.iter() {
            if tasks.insert(entry.name, entry).is_some() {
                duplicates.push(entry.name);
            }
        }
        duplicates.sort_unstable();
        duplicates.dedup();
        for name in &duplicates {
            tasks.remove(name);
        }
        Index { tasks, duplicates }
    })
}

fn entry(name: &str) -> Option<&'static TaskEntry> {
    index().tasks.get(name).copied()
}
