//! Mistakes that compile quietly unless the types say otherwise, each checked by the doc tests
//! (this module exists only for them: `cfg(doctest)`).
//!
//! Every case comes twice: denying `unused_must_use` it must fail to compile, and allowing it
//! the same code must compile, so the first fails for the lint and for nothing else.
//!
//! A `map` whose result is not consumed runs nothing:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! # use flotilla::{Executor, ThreadPoolExecutor};
//! #[flotilla::task]
//! fn double(x: u32) -> u32 { x * 2 }
//! let pool = ThreadPoolExecutor::new();
//! pool.map(double, 0..4);
//! ```
//!
//! ```
//! #![allow(unused_must_use)]
//! # use flotilla::{Executor, ThreadPoolExecutor};
//! #[flotilla::task]
//! fn double(x: u32) -> u32 { x * 2 }
//! let pool = ThreadPoolExecutor::new();
//! pool.map(double, 0..4);
//! ```
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! let pool = flotilla::ThreadPoolExecutor::new();
//! pool.map_fn(|x: u32| x * 2, 0..4).chunksize(2);
//! ```
//!
//! ```
//! #![allow(unused_must_use)]
//! let pool = flotilla::ThreadPoolExecutor::new();
//! pool.map_fn(|x: u32| x * 2, 0..4).chunksize(2);
//! ```
//!
//! A future dropped at once cancels its task:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! let pool = flotilla::ThreadPoolExecutor::new();
//! pool.spawn(|| 1)?;
//! # Ok::<(), flotilla::Error>(())
//! ```
//!
//! ```
//! #![allow(unused_must_use)]
//! let pool = flotilla::ThreadPoolExecutor::new();
//! pool.spawn(|| 1)?;
//! # Ok::<(), flotilla::Error>(())
//! ```
//!
//! `Shutdown` is a value: its methods return new options and leave the receiver as it was.
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! let how = flotilla::Shutdown::new();
//! how.cancel_futures(true);
//! ```
//!
//! ```
//! #![allow(unused_must_use)]
//! let how = flotilla::Shutdown::new();
//! how.cancel_futures(true);
//! ```
//!
//! A guard dropped at once gives its permit back at once:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! let sem = flotilla::sync::Semaphore::new(1);
//! sem.acquire();
//! ```
//!
//! ```
//! #![allow(unused_must_use)]
//! let sem = flotilla::sync::Semaphore::new(1);
//! sem.acquire();
//! ```
//!
//! Waiting helpers that are not consumed wait for nothing:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! let pool = flotilla::ThreadPoolExecutor::new();
//! let futures = vec![pool.spawn(|| 1)?];
//! flotilla::as_completed(&futures);
//! # Ok::<(), flotilla::Error>(())
//! ```
//!
//! ```
//! #![allow(unused_must_use)]
//! let pool = flotilla::ThreadPoolExecutor::new();
//! let futures = vec![pool.spawn(|| 1)?];
//! flotilla::as_completed(&futures);
//! # Ok::<(), flotilla::Error>(())
//! ```
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! let pool = flotilla::ThreadPoolExecutor::new();
//! let futures = vec![pool.spawn(|| 1)?];
//! flotilla::wait_async(&futures, flotilla::ReturnWhen::AllCompleted);
//! # Ok::<(), flotilla::Error>(())
//! ```
//!
//! ```
//! #![allow(unused_must_use)]
//! let pool = flotilla::ThreadPoolExecutor::new();
//! let futures = vec![pool.spawn(|| 1)?];
//! flotilla::wait_async(&futures, flotilla::ReturnWhen::AllCompleted);
//! # Ok::<(), flotilla::Error>(())
//! ```
