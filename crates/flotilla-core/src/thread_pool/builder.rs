//! [`ThreadPoolBuilder`]: the options of Python's `ThreadPoolExecutor(...)`, and a few more.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ThreadPoolExecutor;
use crate::error::Error;

pub(super) type Initializer = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Configures a [`ThreadPoolExecutor`].
///
/// | Python `ThreadPoolExecutor(...)` | builder method |
/// |---|---|
/// | `max_workers` (default `min(32, cpu_count + 4)`) | [`max_workers`](ThreadPoolBuilder::max_workers) |
/// | `thread_name_prefix` | [`thread_name_prefix`](ThreadPoolBuilder::thread_name_prefix) |
/// | `initializer`, `initargs` | [`initializer`](ThreadPoolBuilder::initializer) (a closure) |
/// | — | [`max_queued`](ThreadPoolBuilder::max_queued), [`block_when_full`](ThreadPoolBuilder::block_when_full), [`stack_size`](ThreadPoolBuilder::stack_size) |
///
/// # Examples
///
/// ```
/// use flotilla::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::builder()
///     .max_workers(2)
///     .max_queued(100) // submit blocks while 100 tasks wait
///     .initializer(|| {
///         // per-thread set-up; an Err breaks the pool with this message
///         Ok::<(), String>(())
///     })
///     .build()?;
/// assert_eq!(pool.spawn(|| 1)?.result()?, 1);
/// # Ok::<(), flotilla::Error>(())
/// ```
#[must_use = "a builder does nothing until .build() is called"]
pub struct ThreadPoolBuilder {
    max_workers: Option<usize>,
    prefix: Option<String>,
    initializer: Option<Initializer>,
    max_queued: Option<usize>,
    block_when_full: bool,
    stack_size: Option<usize>,
}

/// A validated configuration.
pub(super) struct Config {
    pub(super) max_workers: usize,
    pub(super) prefix: String,
    pub(super) initializer: Option<Initializer>,
    pub(super) max_queued: Option<usize>,
    pub(super) block_when_full: bool,
    pub(super) stack_size: Option<usize>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_workers: default_max_workers(),
            prefix: default_prefix(),
            initializer: None,
            max_queued: None,
            block_when_full: true,
            stack_size: None,
        }
    }
}

/// Python's default: `min(32, os.cpu_count() + 4)`, enough threads for I/O-bound work without
/// exhausting resources on big machines.
fn default_max_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    (cpus + 4).min(32)
}

fn default_prefix() -> String {
    static POOLS: AtomicU64 = AtomicU64::new(0);
    format!(
        "ThreadPoolExecutor-{}",
        POOLS.fetch_add(1, Ordering::Relaxed)
    )
}

impl ThreadPoolBuilder {
    /// A builder with Python's defaults.
    pub fn new() -> ThreadPoolBuilder {
        ThreadPoolBuilder {
            max_workers: None,
            prefix: None,
            initializer: None,
            max_queued: None,
            block_when_full: true,
            stack_size: None,
        }
    }

    /// The most threads the pool runs at once (must be at least 1).
    pub fn max_workers(mut self, max_workers: usize) -> ThreadPoolBuilder {
        self.max_workers = Some(max_workers);
        self
    }

    /// Names threads `PREFIX_0`, `PREFIX_1`, ... (default `ThreadPoolExecutor-N`).
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> ThreadPoolBuilder {
        self.prefix = Some(prefix.into());
        self
    }

    /// Runs `init` on each new thread before its first task. If it returns `Err` or panics,
    /// the pool is broken: queued tasks and later submits fail with [`Error::Broken`] carrying
    /// the message.
    pub fn initializer<F, E>(mut self, init: F) -> ThreadPoolBuilder
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        self.initializer = Some(Arc::new(move || init().map_err(|e| e.to_string())));
        self
    }

    /// Bounds the queue of tasks waiting for a thread (unbounded by default, as in Python).
    pub fn max_queued(mut self, max_queued: usize) -> ThreadPoolBuilder {
        self.max_queued = Some(max_queued);
        self
    }

    /// With a bounded queue, whether a submit to a full queue waits for room (the default) or
    /// fails at once with [`Error::QueueFull`].
    ///
    /// A task that submits to its own full pool and waits would wait forever if every worker
    /// did the same; build such pools with `block_when_full(false)`.
    pub fn block_when_full(mut self, block: bool) -> ThreadPoolBuilder {
        self.block_when_full = block;
        self
    }

    /// The stack size of each worker thread, in bytes (the standard library's default
    /// otherwise).
    pub fn stack_size(mut self, bytes: usize) -> ThreadPoolBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// Builds the pool. No thread starts until the first task is submitted.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `max_workers` or `max_queued` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flotilla::ThreadPoolExecutor::builder().max_workers(0).build().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid configuration: max_workers must be greater than 0");
    /// ```
    pub fn build(self) -> Result<ThreadPoolExecutor, Error> {
        if self.max_workers == Some(0) {
            return Err(Error::InvalidConfig {
                reason: "max_workers must be greater than 0".into(),
            });
        }
        if self.max_queued == Some(0) {
            return Err(Error::InvalidConfig {
                reason: "max_queued must be greater than 0".into(),
            });
        }
        Ok(ThreadPoolExecutor::from_config(Config {
            max_workers: self.max_workers.unwrap_or_else(default_max_workers),
            prefix: self.prefix.unwrap_or_else(default_prefix),
            initializer: self.initializer,
            max_queued: self.max_queued,
            block_when_full: self.block_when_full,
            stack_size: self.stack_size,
        }))
    }
}

impl Default for ThreadPoolBuilder {
    fn default() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("thread_name_prefix", &self.prefix)
            .field("initializer", &self.initializer.is_some())
            .field("max_queued", &self.max_queued)
            .field("block_when_full", &self.block_when_full)
            .field("stack_size", &self.stack_size)
            .finish()
    }
}
