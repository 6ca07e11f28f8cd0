//! The table of `#[flotilla::task]` functions, filled in at link time, in which worker
//! processes look tasks up by name.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::executor::Task;
use crate::panic;
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
}

impl TaskEntry {
    /// The entry for task `T`.
    pub const fn of<T: Task + Default>() -> TaskEntry {
        TaskEntry {
            name: T::NAME,
            call: call::<T>,
        }
    }
}

/// Every task in the program, gathered by the linker.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static TASKS: [TaskEntry];

fn call<T: Task + Default>(args: &[u8], out: &mut Vec<u8>) -> Outcome {
    let args: T::Args = match postcard::from_bytes(args) {
        Ok(args) => args,
        Err(err) => {
            return Outcome::Failed(format!(
                "could not decode the arguments of task `{}`: {err}",
                T::NAME
            ));
        }
    };
    match panic::catch(|| T::default().run(args)) {
        Ok(output) => match postcard::to_extend(&output, std::mem::take(out)) {
            Ok(bytes) => {
                *out = bytes;
                Outcome::Value
            }
            Err(err) => Outcome::Failed(format!(
                "could not encode the result of task `{}`: {err}",
                T::NAME
            )),
        },
        Err(panic) => Outcome::Panicked {
            message: panic.message().to_owned(),
            location: panic.location().map(str::to_owned),
        },
    }
}

/// Finds a task by name.
pub(crate) fn lookup(name: &str) -> Option<Call> {
    static INDEX: OnceLock<HashMap<&'static str, Call>> = OnceLock::new();
    INDEX
        .get_or_init(|| TASKS.iter().map(|entry| (entry.name, entry.call)).collect())
        .get(name)
        .copied()
}
