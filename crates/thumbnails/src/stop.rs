//! [`StopHandle`]: ends a run early, cleanly, from another thread (the command line's signal
//! handler calls it on SIGINT and SIGTERM).

use std::sync::Arc;

use tokio::sync::watch;

/// Asks a run to stop: downloads in progress are abandoned (their partial files removed),
/// resizes in progress are cancelled (a process task is killed; a thread task, which cannot be
/// stopped from outside, finishes and counts), nothing new starts, and the run returns its
/// [`Report`](crate::Report) so far with [`interrupted`](crate::Report::interrupted) set.
///
/// The report says what is in the output directory: a process task killed after it put its
/// thumbnails in place, before its result came back, counts as done (the thumbnails are read
/// back from the directory); one killed while putting them in place is a failure of kind
/// [`Interrupted`](crate::FailureKind::Interrupted) naming the widths written; only images of
/// which nothing was written are [`unfinished`](crate::Report::unfinished).
///
/// Clones share one state; give one to [`ConfigBuilder::stop_handle`](crate::ConfigBuilder::stop_handle)
/// and keep another. Dropping a handle does nothing.
///
/// # Examples
///
/// ```
/// use thumbnails::{run, Config, PhotoServer, ResizeOn, StopHandle};
///
/// let server = PhotoServer::bundled()?;
/// let out = tempfile::tempdir().unwrap();
/// let stop = StopHandle::new();
/// stop.stop(); // before the run even starts: nothing is done
/// let config = Config::builder(out.path())
///     .inputs(server.urls())
///     .resize_on(ResizeOn::Threads)
///     .stop_handle(stop.clone())
///     .build()?;
/// let report = run(&config, &())?;
/// assert!(report.interrupted);
/// assert_eq!(report.succeeded, 0);
/// assert_eq!(report.unfinished.len(), server.urls().len());
/// # Ok::<(), thumbnails::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct StopHandle {
    stopped: Arc<watch::Sender<bool>>,
}

impl Default for StopHandle {
    fn default() -> StopHandle {
        StopHandle::new()
    }
}

impl StopHandle {
    /// A handle that has not been stopped.
    pub fn new() -> StopHandle {
        StopHandle {
            stopped: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Asks the runs holding this handle to stop. Returns at once; calling it again does
    /// nothing more.
    pub fn stop(&self) {
        self.stopped.send_replace(true);
    }

    /// Whether [`stop`](StopHandle::stop) was called.
    pub fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    /// Completes when [`stop`](StopHandle::stop) is called (at once if it was).
    pub(crate) async fn stopped(&self) {
        let mut receiver = self.stopped.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = receiver.wait_for(|stopped| *stopped).await;
    }
}
