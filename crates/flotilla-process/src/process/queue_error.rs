//! [`PutError`] and [`GetError`]: why a timed or non-blocking queue operation did not happen.

use std::fmt;

use flotilla_core::Error;

/// Why [`Queue::try_put`](super::Queue::try_put) or
/// [`put_timeout`](super::Queue::put_timeout) did not add the item, which it hands back.
///
/// The in-process queues' `flotilla::sync::Full` plus one case a queue shared
/// between processes adds: [`Failed`](PutError::Failed), when its owner is unreachable.
///
/// # Examples
///
/// ```
/// use flotilla::process::{PutError, Queue};
///
/// let q = Queue::bounded(1);
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
    /// let q = flotilla::process::Queue::bounded(1);
    /// q.put('a')?;
    /// assert_eq!(q.try_put('b').unwrap_err().into_inner(), 'b');
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::Failed(item, _) => item,
        }
    }

    /// True if the queue was full.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flotilla::process::Queue::bounded(1);
    /// q.put(1)?;
    /// assert!(q.try_put(2).unwrap_err().is_full());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Failed(_, err) => f.debug_tuple("Failed").field(&"..").field(err).finish(),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full"),
            PutError::Failed(_, err) => write!(f, "could not put the item: {err}"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PutError::Full(_) => None,
            PutError::Failed(_, err) => Some(err),
        }
    }
}

/// Why [`Queue::try_get`](super::Queue::try_get) or
/// [`get_timeout`](super::Queue::get_timeout) returned no item.
///
/// The in-process queues' `flotilla::sync::Empty` plus one case a queue shared
/// between processes adds: [`Failed`](GetError::Failed), when its owner is unreachable.
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
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty"),
            GetError::Failed(err) => write!(f, "could not get an item: {err}"),
        }
    }
}

impl std::error::Error for GetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::Empty => None,
            GetError::Failed(err) => Some(err),
        }
    }
}
