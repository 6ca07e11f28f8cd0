//! flotilla's portable core: the [`Future`]/[`Promise`] pair, the [`Executor`] trait and its
//! [`Task`]s, the lazy [`Map`], [`wait`]/[`as_completed`], the [`Error`] type, and the
//! [`ThreadPoolExecutor`].
//!
//! Use it through the [`flotilla`](https://docs.rs/flotilla-rs) facade, which re-exports all of it
//! at its root (`flotilla::ThreadPoolExecutor`, `flotilla::Future`, …) and documents it as a
//! guide for Python users. This crate is the bottom layer: it names no other flotilla crate and
//! builds on every platform std supports. The layers above it (the threading toolkit, the process
//! layer, shared memory, the manager, the Redis executor) build on what it exports here.
//!
//! ```
//! use flotilla::ThreadPoolExecutor;
//!
//! let pool = ThreadPoolExecutor::builder().max_workers(2).build()?;
//! assert_eq!(pool.spawn(|| 6 * 7)?.result()?, 42);
//! # Ok::<(), flotilla::Error>(())
//! ```

mod dyn_executor;
mod error;
mod executor;
mod future;
mod map;
mod thread_pool;
mod wait;

#[doc(hidden)]
pub mod panic;
#[doc(hidden)]
pub mod primitives;

pub use crate::dyn_executor::{DynExecutor, DynInputs};
pub use crate::error::{Error, Panic, Stage, WorkerExit};
pub use crate::executor::{Executor, Shutdown, Task};
pub use crate::future::{Future, Promise};
pub use crate::map::Map;
pub use crate::thread_pool::{Scope, ThreadPoolBuilder, ThreadPoolExecutor};
pub use crate::wait::{
    AsCompleted, AsCompletedStream, ReturnWhen, WaitAsync, as_completed, as_completed_stream,
    as_completed_timeout, wait, wait_async, wait_timeout,
};

/// What the layers above build on (the process pool's worker loop, the backend kit); not part
/// of the API.
#[doc(hidden)]
pub mod __layer {
    pub use crate::map::{Chunk, SubmitChunk};
    pub use crate::thread_pool::{Runnable, Worker};
}
