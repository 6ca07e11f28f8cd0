//! flotilla's process layer (Linux): tasks that run in other processes.
//!
//! Use it through the [`flotilla`](https://docs.rs/flotilla-rs) facade with its `process` feature:
//! `flotilla::ProcessPoolExecutor`, `flotilla::process::{Process, pipe, Queue, JoinableQueue}`,
//! `flotilla::backend` and `#[flotilla::task]`.
//!
//! What it holds, from the bottom up:
//!
//! - `wire`: the one frame format every process-to-process conversation uses (a length
//!   prefix, then postcard), and the reasons a handle refused to be encoded;
//! - `fingerprint` and `registry`: the link-time table of `#[flotilla::task]` functions, each
//!   with a fingerprint of its argument and result types;
//! - [`process`]: `Process`, pipes, queues and the queue broker;
//! - `process_pool`: the [`ProcessPoolExecutor`] and its workers;
//! - `runtime`: what Rust's start-up code would have set up, for code that runs before `main`;
//! - `spawn`: the command that re-executes the program as a child (a `Process` child or a pool
//!   worker), and what that child does between fork and exec;
//! - `entry`: the constructor that runs before `main` and turns a re-executed copy of the
//!   program into a worker or a `Process` child;
//! - [`backend`]: the kit for executors outside flotilla (the Redis executor).
//!
//! It builds on `flotilla-core` alone. The shared-memory and manager layers build on it.
//!
//! ```
//! use flotilla::{Executor, ProcessPoolExecutor};
//!
//! #[flotilla::task]
//! fn square(n: u64) -> u64 {
//!     n * n
//! }
//!
//! let pool = ProcessPoolExecutor::builder().max_workers(1).build()?;
//! assert_eq!(pool.submit(SquareTask, 7)?.result()?, 49);
//! # Ok::<(), flotilla::Error>(())
//! ```

#[cfg(not(target_os = "linux"))]
compile_error!(
    "flotilla-process runs tasks in re-executed copies of the program and supports Linux only; \
     on other platforms use flotilla without its `process`, `shared` and `manager` features"
);

pub mod backend;
mod entry;
mod fingerprint;
pub mod process;
mod process_pool;
mod registry;
mod runtime;
mod spawn;
#[doc(hidden)]
pub mod wire;

pub use crate::process_pool::{ProcessPoolBuilder, ProcessPoolExecutor, cpu_count};
pub use flotilla_macros::task;

/// What `#[flotilla::task]` expands to, and what the layers above build on; not part of the
/// API.
#[doc(hidden)]
pub mod __private {
    pub use crate::process_pool::{Fault, FaultAction, FaultPoint};
    pub use crate::registry::{TASKS, TaskEntry};
    pub use flotilla_core::Task;
    pub use linkme;

    /// Registers the task type `$name` by name, so that worker processes can find it.
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __flotilla_register_task {
        ($name:ident, $entry:ident) => {
            const _: () = {
                #[$crate::__private::linkme::distributed_slice($crate::__private::TASKS)]
                #[linkme(crate = $crate::__private::linkme)]
                static ENTRY: $crate::__private::TaskEntry =
                    $crate::__private::TaskEntry::$entry::<$name>();
            };
        };
    }
    pub use crate::__flotilla_register_task as register_task;
}
