//! Python's `Manager().Queue()` and `JoinableQueue()`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::client::unexpected;
use super::super::handle::{Handle, Proxy, decode, encode, sealed};
use super::super::protocol::{Kind, Op, Reply};
use super::{Marker, proxy};
use flotilla_core::Error;
use flotilla_process::process::{GetError, PutError, SendError};

/// A first-in, first-out queue held by a manager: Python's `Manager().Queue(maxsize)`.
///
/// Unlike [`process::Queue`](flotilla_process::process::Queue), whose items live in the process that
/// created it, this queue lives in the manager's server: it outlives its creator's other
/// work and can be reached over TCP. Errors are the process queue's [`SendError`],
/// [`PutError`] and [`GetError`]; every failed put hands the item back.
///
/// Like Python's manager queues (a `queue.Queue` in the server), every manager queue is
/// also a [`JoinableQueue`]: each item put counts as an unfinished task until a consumer
/// calls [`task_done`](Queue::task_done), and [`join`](Queue::join) waits until none is left.
/// It can be [shut down](Queue::shutdown) (Python 3.13's `shutdown(immediate)`), with the
/// names of [`flotilla::sync::Queue`](https://docs.rs/flotilla-sync): puts then fail with
/// [`PutError::ShutDown`], gets with [`GetError::ShutDown`] once the queue is empty.
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let jobs = manager.queue::<u32>(None)?;
/// jobs.put(1)?;
/// assert_eq!(jobs.get()?, 1);
/// assert!(jobs.try_get().unwrap_err().is_empty());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Queue<T> {
    handle: Handle,
    _types: Marker<T>,
}

/// Python's `Manager().JoinableQueue()`, which is the same queue as `Manager().Queue()`:
/// every [`Queue`] has [`task_done`](Queue::task_done) and [`join`](Queue::join).
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let q: flotilla::manager::JoinableQueue<u8> = manager.joinable_queue(None)?;
/// q.join()?; // nothing was put: returns at once
/// # Ok::<(), flotilla::Error>(())
/// ```
pub type JoinableQueue<T> = Queue<T>;

/// Why a blocking `put` or `get` failed on a shut-down queue.
fn shut_down() -> Error {
    Error::InvalidOperation {
        reason: "the manager's queue has been shut down (Python's queue.ShutDown)".to_owned(),
    }
}

proxy!(Queue<T>, Queue);

impl<T: Serialize + DeserializeOwned> Queue<T> {
    fn put_waiting(&self, item: T, wait: Option<Duration>) -> Result<(), PutError<T>> {
        let bytes = match encode(&item) {
            Ok(bytes) => bytes,
            Err(err) => return Err(PutError::Failed(item, err)),
        };
        match self.handle.op(Op::QueuePut { item: &bytes, wait }) {
            Ok(Reply::Done) => Ok(()),
            Ok(Reply::TimedOut) => Err(PutError::Full(item)),
            Ok(Reply::ShutDown) => Err(PutError::ShutDown(item)),
            Ok(other) => Err(PutError::Failed(item, unexpected(&other))),
            Err(err) => Err(PutError::Failed(item, err)),
        }
    }

    fn get_waiting(&self, wait: Option<Duration>) -> Result<T, GetError> {
        match self.handle.op(Op::QueueGet { wait }) {
            Ok(Reply::Value(Some(bytes))) => decode(&bytes).map_err(GetError::Failed),
            Ok(Reply::TimedOut) => Err(GetError::Empty),
            Ok(Reply::ShutDown) => Err(GetError::ShutDown),
            Ok(other) => Err(GetError::Failed(unexpected(&other))),
            Err(err) => Err(GetError::Failed(err)),
        }
    }

    /// Adds `item`, waiting for room in a bounded queue as long as it takes.
    ///
    /// # Errors
    ///
    /// A [`SendError`] handing the item back, with [`Error::Disconnected`] if the manager is
    /// gone (also when it goes while this put waits for room), [`Error::Codec`] if the item
    /// cannot be encoded, or [`Error::InvalidOperation`] if the queue is shut down (before or
    /// while this waits; [`try_put`](Queue::try_put) tells it apart as
    /// [`PutError::ShutDown`]). `?` turns it into the [`Error`].
    ///
    /// # Blocking
    ///
    /// While a bounded queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue(Some(1))?;
    /// q.put("x".to_owned())?;
    /// assert_eq!(q.qsize()?, 1);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), SendError<T>> {
        self.put_waiting(item, None).map_err(|err| match err {
            PutError::Failed(item, error) => SendError { item, error },
            PutError::ShutDown(item) => SendError {
                item,
                error: shut_down(),
            },
            PutError::Full(item) => SendError {
                item,
                error: unexpected(&Reply::TimedOut),
            },
        })
    }

    /// Adds `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] with the item if there was no room in time, [`PutError::ShutDown`]
    /// with the item if the queue is shut down, [`PutError::Failed`] with the item and the
    /// reason otherwise.
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue(Some(1))?;
    /// q.put(1)?;
    /// let err = q.put_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_full());
    /// assert_eq!(err.into_inner(), 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_waiting(item, Some(timeout))
    }

    /// Adds `item` only if there is room now: Python's `put_nowait`.
    ///
    /// # Errors
    ///
    /// As [`put_timeout`](Queue::put_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue(Some(1))?;
    /// assert!(q.try_put('a').is_ok());
    /// assert!(q.try_put('b').unwrap_err().is_full());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_waiting(item, Some(Duration::ZERO))
    }

    /// Removes and returns the oldest item, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone, [`Error::Codec`] if the item is not a `T`,
    /// [`Error::InvalidOperation`] if the queue is shut down and empty (before or while this
    /// waits; [`get_timeout`](Queue::get_timeout) tells it apart as [`GetError::ShutDown`]).
    ///
    /// # Blocking
    ///
    /// While the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue(None)?;
    /// q.put(5u64)?;
    /// assert_eq!(q.get()?, 5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        self.get_waiting(None).map_err(|err| match err {
            GetError::Failed(err) => err,
            GetError::ShutDown => shut_down(),
            GetError::Empty => unexpected(&Reply::TimedOut),
        })
    }

    /// Removes and returns the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] if nothing arrived in time, [`GetError::ShutDown`] if the queue is
    /// shut down and empty, [`GetError::Failed`] otherwise.
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue::<u8>(None)?;
    /// assert!(q.get_timeout(Duration::from_millis(10)).unwrap_err().is_empty());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_waiting(Some(timeout))
    }

    /// Removes and returns the oldest item if there is one now: Python's `get_nowait`.
    ///
    /// # Errors
    ///
    /// As [`get_timeout`](Queue::get_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue(None)?;
    /// q.put(1)?;
    /// assert_eq!(q.try_get().unwrap(), 1);
    /// assert!(q.try_get().unwrap_err().is_empty());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_waiting(Some(Duration::ZERO))
    }

    /// The number of items now: Python's `qsize()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue::<u8>(None)?;
    /// assert_eq!(q.qsize()?, 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn qsize(&self) -> Result<usize, Error> {
        self.handle.size(Op::QueueSize)
    }

    /// Marks one item taken from the queue as processed: Python's `task_done()`.
    ///
    /// Any process may mark any item done (the count is the queue's, not a consumer's), so
    /// an item taken by a process that dies before marking it stays unfinished, as in
    /// Python: bound the wait with [`join_timeout`](Queue::join_timeout) where consumers may
    /// die, and mark the lost item done once it is dealt with.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if it is called more times than items were put (Python's
    /// `ValueError`; the count stays at zero), [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.joinable_queue(None)?;
    /// q.put(1u8)?;
    /// q.get()?;
    /// assert!(q.task_done().is_ok());
    /// assert!(q.task_done().is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), Error> {
        self.handle.done(Op::QueueTaskDone)
    }

    /// Waits until every item put has been marked done with [`task_done`](Queue::task_done):
    /// Python's `join()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Blocking
    ///
    /// Until the count of unfinished items is zero; returns at once if it is.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.joinable_queue::<u8>(None)?;
    /// q.join()?;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        self.handle.flag(Op::QueueJoin { wait: None }).map(drop)
    }

    /// As [`join`](Queue::join), waiting at most `timeout`; returns whether every item was
    /// marked done.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Blocking
    ///
    /// Up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.joinable_queue(None)?;
    /// q.put(1u8)?;
    /// assert!(!q.join_timeout(Duration::from_millis(10))?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.handle.flag(Op::QueueJoin {
            wait: Some(timeout),
        })
    }

    /// Shuts the queue down for every process: Python 3.13's `shutdown(immediate)`.
    ///
    /// From now on every put fails ([`PutError::ShutDown`] with the item), and gets fail
    /// once the queue is empty ([`GetError::ShutDown`]); puts and gets blocked in any
    /// process are woken to see it. With `immediate`, the queued items are dropped at once,
    /// each counting as done for [`join`](Queue::join). Shutting down twice is allowed.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use flotilla::process::GetError;
    ///
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue(None)?;
    /// q.put(1)?;
    /// q.shutdown(false)?;
    /// assert!(q.try_put(2).unwrap_err().is_shut_down());
    /// assert_eq!(q.try_get().unwrap(), 1); // what was queued can be drained
    /// assert!(matches!(q.try_get(), Err(GetError::ShutDown)));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn shutdown(&self, immediate: bool) -> Result<(), Error> {
        self.handle.done(Op::QueueShutdown { immediate })
    }

    /// Whether the queue has been shut down: Python's `is_shutdown`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let q = manager.queue::<u8>(None)?;
    /// assert!(!q.is_shut_down()?);
    /// q.shutdown(true)?;
    /// assert!(q.is_shut_down()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_shut_down(&self) -> Result<bool, Error> {
        self.handle.flag(Op::QueueIsShutDown)
    }
}
