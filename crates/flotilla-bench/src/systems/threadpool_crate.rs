//! `threadpool`: the `threadpool` crate, with a crossbeam bounded(1) channel per task for its
//! result. `thread-map` submits fixed chunks (the default [`Pool::map_work`]).

use crossbeam_channel::{Receiver, bounded};
use threadpool::ThreadPool;

use super::{Pool, recv};

/// A `threadpool` pool.
#[derive(Debug)]
pub(crate) struct Threadpool(ThreadPool);

/// A pool of `workers` threads (started at once).
pub(crate) fn build(workers: usize) -> Result<Threadpool, String> {
    Ok(Threadpool(ThreadPool::new(workers)))
}

impl Pool for Threadpool {
    type Handle<T: Send + 'static> = Receiver<T>;

    fn submit<T, F>(&self, job: F) -> Result<Receiver<T>, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = bounded(1);
        self.0.execute(move || {
            let _ = tx.send(job());
        });
        Ok(rx)
    }

    fn wait<T: Send + 'static>(&self, handle: Receiver<T>) -> Result<T, String> {
        recv(handle)
    }
}

impl Drop for Threadpool {
    fn drop(&mut self) {
        // Like flotilla's Drop, wait for the threads to finish.
        self.0.join();
    }
}
