//! Python's `Manager().Value()` and `Manager().Array()`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::client::unexpected;
use super::super::handle::{Handle, Proxy, encode, sealed};
use super::super::protocol::{Kind, Op, Reply};
use super::{Lock, Marker, proxy};
use flotilla_core::Error;

/// The lock that comes with a value or an array.
fn lock_of(handle: &Handle) -> Result<Lock, Error> {
    match handle.op(Op::GetLock)? {
        Reply::Created(id) => Ok(<Lock as sealed::Sealed>::from_handle(Handle {
            client: handle.client.clone(),
            id,
        })),
        other => Err(unexpected(&other)),
    }
}

/// One value of a serde type held by a manager, with a lock: Python's
/// `Manager().Value(typecode, value)`, whose `value` attribute is [`get`](Value::get) and
/// [`set`](Value::set) here.
///
/// Each `get` and `set` is atomic on its own; a read-modify-write (`v.value += 1`) is not,
/// in Python as here: take [`get_lock`](Value::get_lock)'s lock around it (the lock
/// guards nothing by itself; every process must take it).
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let hits = manager.value(&0u64)?;
/// {
///     let lock = hits.get_lock()?;
///     let _held = lock.lock().unwrap();
///     hits.set(&(hits.get()? + 1))?;
/// }
/// assert_eq!(hits.get()?, 1);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Value<T> {
    handle: Handle,
    _types: Marker<T>,
}

proxy!(Value<T>, Value);

impl<T: Serialize + DeserializeOwned> Value<T> {
    /// The value now: Python's `v.value` (or `v.get()`).
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone, [`Error::Codec`] if the value is not a
    /// `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.value(&"hi".to_owned())?.get()?, "hi");
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        self.handle
            .value(Op::ValueGet)?
            .ok_or_else(|| unexpected(&Reply::Value(None)))
    }

    /// Replaces the value: Python's `v.value = x` (or `v.set(x)`).
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone, [`Error::Codec`] if `value` cannot be
    /// encoded.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let v = manager.value(&1i32)?;
    /// v.set(&-1)?;
    /// assert_eq!(v.get()?, -1);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn set(&self, value: &T) -> Result<(), Error> {
        self.handle.done(Op::ValueSet {
            value: &encode(value)?,
        })
    }

    /// The lock that comes with this value (the same lock for every proxy of it):
    /// `multiprocessing.Value`'s `get_lock()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let v = manager.value(&0u8)?;
    /// let lock = v.get_lock()?;
    /// let _held = lock.lock().unwrap();
    /// assert!(v.get_lock()?.try_lock().is_err()); // the same lock
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get_lock(&self) -> Result<Lock, Error> {
        lock_of(&self.handle)
    }
}

/// A fixed-length array of a serde type held by a manager, with a lock: Python's
/// `Manager().Array(typecode, sequence)`.
///
/// Its length is fixed when it is made; [`set`](Array::set) past it fails. Items are
/// compared by their encodings (for [`index`](Array::index) and [`count`](Array::count)).
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let a = manager.array(&[0i32; 4])?;
/// a.set(2, &7)?;
/// assert_eq!(a.to_vec()?, [0, 0, 7, 0]);
/// assert!(a.set(4, &1).is_err());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Array<T> {
    handle: Handle,
    _types: Marker<T>,
}

proxy!(Array<T>, Array);

impl<T: Serialize + DeserializeOwned> Array<T> {
    /// The item at `index`, or `None` past the end: Python's `a[index]`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone, [`Error::Codec`] if the item is not a
    /// `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let a = manager.array(&['x'])?;
    /// assert_eq!(a.get(0)?, Some('x'));
    /// assert_eq!(a.get(1)?, None);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<Option<T>, Error> {
        self.handle.value(Op::ListGet {
            index: index as u64,
        })
    }

    /// Replaces the item at `index`: Python's `a[index] = value`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if `index` is out of range (Python's `IndexError`),
    /// [`Error::Disconnected`] if the manager is gone, [`Error::Codec`] if `value` cannot be
    /// encoded.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let a = manager.array(&[1u8])?;
    /// a.set(0, &2)?;
    /// assert_eq!(a.get(0)?, Some(2));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn set(&self, index: usize, value: &T) -> Result<(), Error> {
        self.handle.done(Op::ListSet {
            index: index as u64,
            value: &encode(value)?,
        })
    }

    /// The length, fixed when the array was made: Python's `len(a)`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.array(&[1u8, 2])?.len()?, 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize, Error> {
        self.handle.size(Op::ListLen)
    }

    /// Whether the array has no items.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(manager.array::<u8>(&[])?.is_empty()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// A copy of every item: Python's `a[:]`.
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.array(&[1u8, 2])?.to_vec()?, [1, 2]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        self.handle.values(Op::ListAll)
    }

    /// A copy of the items in `start..end` (clamped to the array): Python's `a[start:end]`.
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let a = manager.array(&[1u8, 2, 3])?;
    /// assert_eq!(a.get_range(1..9)?, [2, 3]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get_range(&self, range: std::ops::Range<usize>) -> Result<Vec<T>, Error> {
        self.handle.values(Op::ListRange {
            start: range.start as u64,
            end: range.end as u64,
        })
    }

    /// The first position of `value`: Python's `a.index(value)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if it is not there (Python's `ValueError`), and as
    /// [`set`](Array::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let a = manager.array(&[5u8, 6])?;
    /// assert_eq!(a.index(&6)?, 1);
    /// assert!(a.index(&7).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn index(&self, value: &T) -> Result<usize, Error> {
        self.handle.size(Op::ListIndex {
            value: &encode(value)?,
            start: 0,
            stop: u64::MAX,
        })
    }

    /// How many items equal `value`: Python's `a.count(value)`.
    ///
    /// # Errors
    ///
    /// As [`set`](Array::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.array(&[1u8, 1, 2])?.count(&1)?, 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn count(&self, value: &T) -> Result<usize, Error> {
        self.handle.size(Op::ListCount {
            value: &encode(value)?,
        })
    }

    /// The lock that comes with this array: `multiprocessing.Array`'s `get_lock()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let a = manager.array(&[0u8; 2])?;
    /// let lock = a.get_lock()?;
    /// let _held = lock.lock().unwrap();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get_lock(&self) -> Result<Lock, Error> {
        lock_of(&self.handle)
    }
}
