//! The table of `#[flotilla::task]` functions, filled in at link time, in which worker
//! processes look tasks up by name.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::backend::Shape;
use crate::executor::Task;
use crate::process_pool::run::{call, call_chunk};
use crate::process_pool::wire::Outcome;

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
}

impl TaskEntry {
    /// The entry for task `T`.
    pub const fn of<T: Task + Default>() -> TaskEntry {
        TaskEntry {
            name: T::NAME,
            call: call::<T>,
            call_chunk: call_chunk::<T>,
            signature: signature::<T>,
        }
    }
}

/// Every task in the program, gathered by the linker.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static TASKS: [TaskEntry];

/// A fingerprint of task `T`'s name and argument and result types, the same in every build of
/// the same code: a task sent to a program built from other code is recognised by it.
pub(crate) fn signature<T: Task>() -> u64 {
    // FNV-1a: stable across builds and platforms, unlike `std`'s hashers.
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for part in [
        T::NAME,
        std::any::type_name::<T::Args>(),
        std::any::type_name::<T::Output>(),
    ] {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The signature of the task registered under `name`, if there is one.
pub(crate) fn registered_signature(name: &str) -> Option<u64> {
    entry(name).map(|entry| (entry.signature)())
}

/// Finds a task by name.
pub(crate) fn lookup(name: &str, shape: Shape) -> Option<Call> {
    let entry = entry(name)?;
    Some(match shape {
        Shape::One => entry.call,
        Shape::Chunk => entry.call_chunk,
    })
}

fn entry(name: &str) -> Option<&'static TaskEntry> {
    static INDEX: OnceLock<HashMap<&'static str, &'static TaskEntry>> = OnceLock::new();
    INDEX
        .get_or_init(|| TASKS.iter().map(|entry| (entry.name, entry)).collect())
        .get(name)
        .copied()
}
