//! `serial`: no pool at all. `submit` runs the job on the calling thread at once; the baseline
//! of `cpu-scaling`'s speed-up.

use super::Pool;

/// Runs every job inline.
#[derive(Debug)]
pub(crate) struct Serial;

/// The serial "pool"; `workers` is ignored.
pub(crate) fn build(_workers: usize) -> Result<Serial, String> {
    Ok(Serial)
}

impl Pool for Serial {
    /// The job's result itself: it has already run.
    type Handle<T: Send + 'static> = T;

    fn submit<T, F>(&self, job: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        Ok(job())
    }

    fn wait<T: Send + 'static>(&self, handle: T) -> Result<T, String> {
        Ok(handle)
    }
}
