//! Encoding and decoding the user's values (items, messages, arguments), where the user's
//! own `Serialize` and `Deserialize` run: their failures, panics included, become an error
//! that names what was being encoded or decoded, for the one operation they belong to.
//!
//! A panic in a value's serde impl is caught here rather than unwinding through a queue, a
//! pipe or a manager proxy: nothing of ours is held at that point (values are encoded before
//! a connection or lock is taken and decoded after it is given back), so the call simply
//! fails, with the item handed back where there is one, and everything else goes on.

use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::refusal;
use flotilla_core::panic;

/// Appends `value`'s postcard encoding to `buffer`; `what` names the value for the message.
///
/// # Errors
///
/// Why it could not be encoded, or the panic of its `Serialize`.
pub fn encode<T: Serialize + ?Sized>(
    value: &T,
    buffer: Vec<u8>,
    what: &dyn Display,
) -> Result<Vec<u8>, String> {
    refusal::clear();
    match panic::catch(|| postcard::to_extend(value, buffer)) {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(err)) => Err(format!(
            "could not encode {what}: {}",
            refusal::explain(err)
        )),
        Err(panic) => Err(format!("encoding {what} panicked: {}", described(&panic))),
    }
}

/// Decodes a `T` from all of `bytes`; `what` names the value for the message.
///
/// # Errors
///
/// Why it could not be decoded, or the panic of its `Deserialize`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &dyn Display) -> Result<T, String> {
    refusal::clear();
    match panic::catch(|| postcard::from_bytes(bytes)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(format!(
            "could not decode {what}: {}",
            refusal::explain(err)
        )),
        Err(panic) => Err(format!("decoding {what} panicked: {}", described(&panic))),
    }
}

fn described(panic: &flotilla_core::Panic) -> String {
    match panic.location() {
        Some(at) => format!("{} (at {at})", panic.message()),
        None => panic.message().to_owned(),
    }
}
