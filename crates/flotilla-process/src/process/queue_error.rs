//! [`SendError`], [`PutError`] and [`GetError`]: why a queue operation did not happen. Every
//! error of a `put` hands the item back.

use std::fmt;

use flotilla_core::Error;

/// Why [`Queue::put`](super::Queue::put) did not add the item, which it hands back: the
/// error of the blocking `put`, as crossbeam's `SendError` is of the blocking `send`.
///
/// A blocking put has no time limit, so it only fails when the queue cannot be reached (its
/// owning process is gone: [`Error::Disconnected`]) or the item cannot be encoded
/// ([`Error::Codec`]). The item is never lost: take it back with
/// [`into_inner`](SendError::into_inner) or the public field. `SendError` is `Debug` for every
/// `T` (it does not print the item), and `?` turns it into an [`Error`], dropping the item.
///
/// When the owner disappears while the request is on its way, the item may have reached the
/// queue before the connection broke: the copy handed back then is a duplicate, as with any
/// send whose acknowledgement is lost.
///
/// # Examples
///
/// ```
/// use flotilla::process::{pipe, Connection, Queue, SendError};
///
/// // A pipe's end cannot travel through a queue: the put fails and hands it back.
/// let q: Queue<Connection<u8>> = Queue::new();
/// let (a, b) = pipe::<u8>()?;
/// let SendError { item, error } = q.put(a).unwrap_err();
/// assert!(matches!(error, flotilla::Error::Codec { .. }));
/// item.send(&7)?; // still usable
/// assert_eq!(b.recv()?, 7);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct SendError<T> {
    /// The item that was not added.
    pub item: T,
    /// Why.
    pub error: Error,
}

impl<T> SendError<T> {
    /// The item that was not added.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::{pipe, Connection, Queue};
    ///
    /// let q: Queue<Option<Connection<u8>>> = Queue::new();
    /// let (a, _b) = pipe::<u8>()?;
    /// let back = q.put(Some(a)).unwrap_err().into_inner();
    /// assert!(back.is_some());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        self.item
    }

    /// Why the item was not added.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::{pipe, Connection, Queue};
    ///
    /// let q: Queue<Connection<u8>> = Queue::new();
    /// let (a, _b) = pipe::<u8>()?;
    /// assert!(matches!(q.put(a).unwrap_err().error(), flotilla::Error::Codec { .. }));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn error(&self) -> &Error {
        &self.error
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("item", &"..")
            .field("error", &self.error)
            .finish()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not put the item: {}", self.error)
    }
}

impl<T> std::error::Error for SendError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The reason, without the item (which is dropped): lets `?` pass a failed
/// [`put`](super::Queue::put) on in a function returning [`Error`].
impl<T> From<SendError<T>> for Error {
    fn from(err: SendError<T>) -> Error {
        err.error
    }
}

/// Why [`Queue::try_put`](super::Queue::try_put) or
/// [`put_timeout`](super::Queue::put_timeout) did not add the item, which it hands back.
///
/// The in-process queues' `flotilla::sync::PutError` (`Full`, `ShutDown`) plus one case a
/// queue shared between processes adds: [`Failed`](PutError::Failed), when its owner is
/// unreachable.
///
/// # Examples
///
/// ```
/// use flotilla::process::{PutError, Queue};
///
/// let q = Queue::bounded(1)?;
/// q.put(1)?;
/// match q.try_put(2) {
///     Err(PutError::Full(item)) => assert_eq!(item, 2), // Python's `queue.Full`
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), flotilla::Error>(())
/// ```
pub enum PutError<T> {
    /// The queue stayed full for the whole wait: Python's `queue.Full`.
    Full(T),
    /// The queue was [shut down](super::Queue::shutdown), before or during the wait:
    /// Python 3.13's `queue.ShutDown`.
    ShutDown(T),
    /// The queue could not be reached (its process is gone) or the item could not be
    /// encoded.
    Failed(T, Error),
}

impl<T> PutError<T> {
    /// The item that was not added.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::bounded(1)?;
    /// q.put('a')?;
    /// assert_eq!(q.try_put('b').unwrap_err().into_inner(), 'b');
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::ShutDown(item) | PutError::Failed(item, _) => item,
        }
    }

    /// True if the queue was full.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::bounded(1)?;
    /// q.put(1)?;
    /// assert!(q.try_put(2).unwrap_err().is_full());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }

    /// True if the queue was shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::new();
    /// q.shutdown(false)?;
    /// assert!(q.try_put(1).unwrap_err().is_shut_down());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
            PutError::Failed(_, err) => f.debug_tuple("Failed").field(&"..").field(err).finish(),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full"),
            PutError::ShutDown(_) => f.write_str("the queue has been shut down"),
            PutError::Failed(_, err) => write!(f, "could not put the item: {err}"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PutError::Full(_) | PutError::ShutDown(_) => None,
            PutError::Failed(_, err) => Some(err),
        }
    }
}

/// Why [`Queue::try_get`](super::Queue::try_get) or
/// [`get_timeout`](super::Queue::get_timeout) returned no item.
///
/// The in-process queues' `flotilla::sync::GetError` (`Empty`, `ShutDown`) plus one case a
/// queue shared between processes adds: [`Failed`](GetError::Failed), when its owner is
/// unreachable.
///
/// # Examples
///
/// ```
/// use flotilla::process::{GetError, Queue};
///
/// let q = Queue::<u32>::new();
/// assert!(matches!(q.try_get(), Err(GetError::Empty))); // Python's `queue.Empty`
/// ```
#[derive(Debug)]
pub enum GetError {
    /// The queue stayed empty for the whole wait: Python's `queue.Empty`.
    Empty,
    /// The queue was [shut down](super::Queue::shutdown) and is empty: Python 3.13's
    /// `queue.ShutDown`.
    ShutDown,
    /// The queue could not be reached (its process is gone) or the item could not be
    /// decoded.
    Failed(Error),
}

impl GetError {
    /// True if the queue was empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::<u8>::new();
    /// assert!(q.try_get().unwrap_err().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty)
    }

    /// True if the queue was shut down and is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::<u8>::new();
    /// q.shutdown(false)?;
    /// assert!(q.try_get().unwrap_err().is_shut_down());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_shut_down(&self) -> bool {
        matches!(self, GetError::ShutDown)
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty"),
            GetError::ShutDown => f.write_str("the queue has been shut down"),
            GetError::Failed(err) => write!(f, "could not get an item: {err}"),
        }
    }
}

impl std::error::Error for GetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::Empty | GetError::ShutDown => None,
            GetError::Failed(err) => Some(err),
        }
    }
}
