//! Why a connection or queue handle refused to be encoded or decoded, kept for the message.
//!
//! postcard turns a serde `custom` error into a fixed text ("Serde Serialization Error"),
//! dropping the reason. So the handles' `Serialize` and `Deserialize` impls also leave the
//! reason here, on the thread doing the work, and this module's encoding paths report it
//! instead of postcard's text.

use std::cell::RefCell;
use std::fmt::Display;

thread_local! {
    static REASON: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// An encoding error carrying `reason`, which is also kept for [`explain`].
pub fn encoding<E: serde::ser::Error>(reason: impl Display) -> E {
    let reason = reason.to_string();
    let err = E::custom(&reason);
    REASON.with(|slot| *slot.borrow_mut() = Some(reason));
    err
}

/// A decoding error carrying `reason`, which is also kept for [`explain`].
pub fn decoding<E: serde::de::Error>(reason: impl Display) -> E {
    let reason = reason.to_string();
    let err = E::custom(&reason);
    REASON.with(|slot| *slot.borrow_mut() = Some(reason));
    err
}

/// Forgets any reason left by an earlier failure, before encoding or decoding afresh.
pub fn clear() {
    REASON.with(|slot| slot.borrow_mut().take());
}

/// The reason a handle gave for the failure just reported as `err`, or `err` itself.
pub fn explain(err: impl Display) -> String {
    REASON
        .with(|slot| slot.borrow_mut().take())
        .unwrap_or_else(|| err.to_string())
}
