//! `rayon`: a `rayon::ThreadPool` with the same number of threads.
//!
//! Tasks go through `ThreadPool::spawn` with a crossbeam bounded(1) channel for the result;
//! `thread-map` uses rayon's own `into_par_iter().map(work).collect()`, which splits the input
//! adaptively instead of in fixed chunks.

use crossbeam_channel::{Receiver, bounded};
use rayon::prelude::*;

use super::{Pool, recv};
use crate::work::work;

/// A rayon pool.
#[derive(Debug)]
pub(crate) struct Rayon(rayon::ThreadPool);

/// A pool of `workers` threads (rayon starts them at once).
pub(crate) fn build(workers: usize) -> Result<Rayon, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .map(Rayon)
        .map_err(|err| err.to_string())
}

impl Pool for Rayon {
    type Handle<T: Send + 'static> = Receiver<T>;

    fn submit<T, F>(&self, job: F) -> Result<Receiver<T>, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = bounded(1);
        self.0.spawn(move || {
            // The receiver may be gone if the bench body gave up; nothing to do then.
            let _ = tx.send(job());
        });
        Ok(rx)
    }

    fn wait<T: Send + 'static>(&self, handle: Receiver<T>) -> Result<T, String> {
        recv(handle)
    }

    /// `(0..n).into_par_iter().map(work).collect()` inside the pool; `chunksize` is rayon's
    /// business.
    fn map_work(&self, n: u64, _chunksize: usize) -> Result<Vec<u64>, String> {
        Ok(self
            .0
            .install(|| (0..n).into_par_iter().map(work).collect()))
    }
}
