//! [`Shared`]: a user's type that a manager's server holds, Python's
//! `BaseManager.register(typeid, callable)`, and its type-erased form in the server.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::{decode, encode};

/// A type whose values a manager's server holds and serves, one request at a time: what
/// Python registers with `BaseManager.register(typeid, callable)`.
///
/// The server is built with the types it can make ([`Setup::register`](super::Setup::register),
/// under a *typeid*); a client makes one with [`Manager::create`](super::Manager::create) and
/// talks to it through its typed proxy, a [`Remote`](super::Remote). Requests, replies and
/// constructor arguments are serde types; the object itself never leaves the server, so it
/// need not be serde at all.
///
/// Calls on one object are serialised by the server (one at a time, each `call` sees the
/// last one's effects), like every other manager object's operations, so a `call` that
/// blocks holds up every other call on that object (only that object: other objects and
/// connections go on). Keep `call` short; a wait belongs in the client, on a manager
/// [`Condition`](super::Condition) or [`Event`](super::Event). A client expects the reply
/// within the manager's [lease](super::ManagerBuilder::lease) (10 s by default), as for
/// every request that does not wait, and reports
/// [`Error::Disconnected`](flotilla_core::Error::Disconnected) after that (the call still
/// finishes in the server). A `call` that panics
/// fails that request with [`Error::InvalidOperation`](flotilla_core::Error::InvalidOperation)
/// naming the panic; the object stays in the server as the panic left it, and the server and
/// every other connection go on.
///
/// # Examples
///
/// ```
/// use flotilla::manager::{Manager, Setup, Shared};
///
/// /// A counter, Python's `class Counter: def add(self, n): ...`.
/// struct Counter(i64);
///
/// impl Shared for Counter {
///     type Args = i64;
///     type Request = i64;
///     type Reply = i64;
///     fn new(start: i64) -> Counter {
///         Counter(start)
///     }
///     fn call(&mut self, add: i64) -> i64 {
///         self.0 += add;
///         self.0
///     }
/// }
///
/// #[flotilla::task]
/// fn my_server(setup: Setup) {
///     setup.register::<Counter>("Counter").serve();
/// }
///
/// let manager = Manager::builder().server(MyServerTask).start()?;
/// let counter = manager.create::<Counter>("Counter", &10)?;
/// assert_eq!(counter.call(&5)?, 15);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub trait Shared: Send + 'static {
    /// What [`Manager::create`](super::Manager::create) passes to [`new`](Shared::new): Python's
    /// constructor arguments.
    type Args: Serialize + DeserializeOwned;
    /// What a client asks of the object (typically an enum of its methods and their
    /// arguments).
    type Request: Serialize + DeserializeOwned;
    /// What the object answers.
    type Reply: Serialize + DeserializeOwned;

    /// Makes a new object in the server.
    fn new(args: Self::Args) -> Self;

    /// Serves one request.
    fn call(&mut self, request: Self::Request) -> Self::Reply;
}

/// A [`Shared`] object in the server, with its types erased: encoded requests in, encoded
/// replies out.
pub(crate) trait Erased: Send {
    /// Decodes `request`, serves it and encodes the reply; a request that does not decode, a
    /// reply that does not encode or a panic is an error message instead.
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, String>;
}

struct Holder<S>(S);

impl<S: Shared> Erased for Holder<S> {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, String> {
        let request: S::Request = decode(request).map_err(|err| err.to_string())?;
        let reply = catch_unwind(AssertUnwindSafe(|| self.0.call(request)))
            .map_err(|panic| format!("{} panicked: {}", type_name::<S>(), message(&*panic)))?;
        encode(&reply).map_err(|err| err.to_string())
    }
}

/// Makes an object from its encoded constructor arguments, or says why it could not.
type Make = fn(&[u8]) -> Result<Box<dyn Erased>, String>;

/// How the server makes objects of one registered type.
#[derive(Clone, Copy)]
pub(crate) struct Factory {
    /// The Rust type's name, which a client's create must match.
    pub(crate) type_name: &'static str,
    pub(crate) make: Make,
}

impl Factory {
    pub(crate) fn of<S: Shared>() -> Factory {
        Factory {
            type_name: type_name::<S>(),
            make: make::<S>,
        }
    }
}

impl fmt::Debug for Factory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Factory")
            .field("type_name", &self.type_name)
            .finish_non_exhaustive()
    }
}

fn make<S: Shared>(args: &[u8]) -> Result<Box<dyn Erased>, String> {
    let args: S::Args = decode(args).map_err(|err| err.to_string())?;
    let object = catch_unwind(AssertUnwindSafe(|| S::new(args)))
        .map_err(|panic| format!("{}::new panicked: {}", type_name::<S>(), message(&*panic)))?;
    Ok(Box::new(Holder(object)))
}

/// The name a client and the server compare to check that they mean the same type.
pub(crate) fn type_name<S: ?Sized>() -> &'static str {
    std::any::type_name::<S>()
}

/// A panic's message, if it has one.
fn message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

impl fmt::Debug for dyn Erased {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shared(..)")
    }
}
