//! `floor`: the least a thread pool that hands back one result per task can do.
//!
//! N threads read `Box<dyn FnOnce() + Send>` jobs from one unbounded crossbeam channel; each
//! job sends its result back through its own crossbeam bounded(1) channel. No futures, no
//! cancellation, no panic capture, no thread-on-demand: a library pool that adds those and
//! stays close to this row is doing well.

use std::fmt;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::{Pool, recv};

type Job = Box<dyn FnOnce() + Send>;

/// The hand-written pool.
pub(crate) struct Floor {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Floor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Floor")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// A pool of `workers` threads (started at once).
pub(crate) fn build(workers: usize) -> Result<Floor, String> {
    let (jobs, queue) = unbounded::<Job>();
    let threads = (0..workers)
        .map(|index| {
            let queue = queue.clone();
            thread::Builder::new()
                .name(format!("floor_{index}"))
                .spawn(move || {
                    for job in queue {
                        job();
                    }
                })
                .map_err(|err| err.to_string())
        })
        .collect::<Result<_, _>>()?;
    Ok(Floor {
        jobs: Some(jobs),
        threads,
    })
}

impl Pool for Floor {
    type Handle<T: Send + 'static> = Receiver<T>;

    fn submit<T, F>(&self, job: F) -> Result<Receiver<T>, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = bounded(1);
        let jobs = self.jobs.as_ref().ok_or("the floor pool is shut down")?;
        jobs.send(Box::new(move || {
            let _ = tx.send(job());
        }))
        .map_err(|_| "the floor pool's threads are gone".to_owned())?;
        Ok(rx)
    }

    fn wait<T: Send + 'static>(&self, handle: Receiver<T>) -> Result<T, String> {
        recv(handle)
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        // Closing the channel ends each thread's loop once the queue is drained.
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
