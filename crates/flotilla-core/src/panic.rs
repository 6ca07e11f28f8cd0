//! Running user code so that a panic becomes a [`Panic`] value with its location.
//!
//! `catch_unwind` gives the payload but not where the panic happened, so the first executor
//! installs a process-wide panic hook. While a thread runs user code through [`catch`], the
//! hook records the location in a thread-local and stays quiet (the panic is reported through
//! the future, as Python reports a task's exception through `Future.exception()`); on every
//! other thread, and outside `catch`, it defers to the hook that was installed before it.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::error::Panic;

thread_local! {
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the location-recording hook once per process.
pub fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) > 0 {
                let location = info.location().map(ToString::to_string);
                tracing::debug!(location = ?location, "task panicked");
                LOCATION.with(|slot| *slot.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into a [`Panic`] with the message and, if the hook is installed,
/// the location.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Panic> {
    LOCATION.with(|slot| slot.borrow_mut().take());
    CATCHING.with(|depth| depth.set(depth.get() + 1));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|depth| depth.set(depth.get() - 1));
    outcome.map_err(|payload| {
        let message = payload_message(payload.as_ref());
        // The payload may itself panic when dropped; a panic in our machinery must not unwind
        // through the worker, so drop it under another catch and forget a second failure.
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
        let location = LOCATION.with(|slot| slot.borrow_mut().take());
        Panic::new(message, location)
    })
}

/// The text of a panic payload (`panic!` produces `&str` or `String`).
pub fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
