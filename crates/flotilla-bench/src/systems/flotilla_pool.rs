//! `flotilla`: `flotilla::ThreadPoolExecutor`, the system every ratio is measured against.

use flotilla::{Future, ThreadPoolExecutor};

use super::Pool;
use crate::work::work;

/// A flotilla thread pool.
#[derive(Debug)]
pub(crate) struct Flotilla(ThreadPoolExecutor);

/// A pool of `workers` threads (flotilla starts them on demand).
pub(crate) fn build(workers: usize) -> Result<Flotilla, String> {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .map(Flotilla)
        .map_err(|err| err.to_string())
}

impl Pool for Flotilla {
    type Handle<T: Send + 'static> = Future<T>;

    fn submit<T, F>(&self, job: F) -> Result<Future<T>, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.0.spawn(job).map_err(|err| err.to_string())
    }

    fn wait<T: Send + 'static>(&self, handle: Future<T>) -> Result<T, String> {
        handle.into_result().map_err(|err| err.to_string())
    }

    /// `map_fn(work, 0..n).chunksize(c)`: flotilla's own lazy, bounded map.
    fn map_work(&self, n: u64, chunksize: usize) -> Result<Vec<u64>, String> {
        self.0
            .map_fn(work, 0..n)
            .chunksize(chunksize)
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|err| err.to_string())
    }
}
