//! Python's `Manager().list()`.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::handle::{Handle, Proxy, encode, sealed};
use super::super::protocol::{Kind, Op};
use super::{Marker, proxy};
use flotilla_core::Error;

/// A list held by a manager: Python's `Manager().list()`.
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let log = manager.list::<String>()?;
/// log.push(&"started".to_owned())?;
/// assert_eq!(log.to_vec()?, ["started"]);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct List<T> {
    handle: Handle,
    _types: Marker<T>,
}

proxy!(List<T>, List);

impl<T: Serialize + DeserializeOwned> List<T> {
    /// Appends `value`: Python's `l.append(value)`.
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
    /// let l = manager.list::<u8>()?;
    /// l.push(&7)?;
    /// assert_eq!(l.len()?, 1);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn push(&self, value: &T) -> Result<(), Error> {
        self.handle.done(Op::ListPush {
            value: &encode(value)?,
        })
    }

    /// The item at `index`, or `None` past the end: Python's `l[index]`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone, [`Error::Codec`] if the item is not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.push(&7)?;
    /// assert_eq!(l.get(0)?, Some(7));
    /// assert_eq!(l.get(1)?, None);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<Option<T>, Error> {
        self.handle.value(Op::ListGet {
            index: index as u64,
        })
    }

    /// Replaces the item at `index`: Python's `l[index] = value`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if `index` is out of range (Python's `IndexError`), and as
    /// [`push`](List::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.push(&7)?;
    /// l.set(0, &8)?;
    /// assert_eq!(l.get(0)?, Some(8));
    /// assert!(l.set(5, &9).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn set(&self, index: usize, value: &T) -> Result<(), Error> {
        self.handle.done(Op::ListSet {
            index: index as u64,
            value: &encode(value)?,
        })
    }

    /// Inserts `value` before `index` (at the end if `index` is past it): Python's
    /// `l.insert(index, value)`.
    ///
    /// # Errors
    ///
    /// As [`push`](List::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.push(&2)?;
    /// l.insert(0, &1)?;
    /// assert_eq!(l.to_vec()?, [1, 2]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn insert(&self, index: usize, value: &T) -> Result<(), Error> {
        self.handle.done(Op::ListInsert {
            index: index as u64,
            value: &encode(value)?,
        })
    }

    /// Removes and returns the last item: Python's `l.pop()` (`None` where Python raises).
    ///
    /// # Errors
    ///
    /// As [`get`](List::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.push(&1)?;
    /// assert_eq!(l.pop()?, Some(1));
    /// assert_eq!(l.pop()?, None);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn pop(&self) -> Result<Option<T>, Error> {
        self.handle.value(Op::ListPop)
    }

    /// The number of items: Python's `len(l)`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.list::<u8>()?.len()?, 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize, Error> {
        self.handle.size(Op::ListLen)
    }

    /// Whether the list is empty.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(manager.list::<u8>()?.is_empty()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// A copy of every item: Python's `l[:]`.
    ///
    /// # Errors
    ///
    /// As [`get`](List::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<char>()?;
    /// l.push(&'a')?;
    /// l.push(&'b')?;
    /// assert_eq!(l.to_vec()?, ['a', 'b']);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        self.handle.values(Op::ListAll)
    }

    /// Removes every item: Python's `l.clear()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.push(&1)?;
    /// l.clear()?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        self.handle.done(Op::ListClear)
    }

    /// Appends every item, in one atomic step: Python's `l.extend(items)`.
    ///
    /// # Errors
    ///
    /// As [`push`](List::push); nothing is appended if an item cannot be encoded.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.to_vec()?, [1, 2, 3]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<(), Error> {
        let values = items
            .into_iter()
            .map(|item| encode(&item).map(Into::into))
            .collect::<Result<_, _>>()?;
        self.handle.done(Op::ListExtend { values })
    }

    /// The first position of `value` within `range` (clamped to the list): Python's
    /// `l.index(value, start, stop)`. Items are compared by their encodings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if it is not there (Python's `ValueError`), and as
    /// [`push`](List::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<char>()?;
    /// l.extend(['a', 'b', 'a'])?;
    /// assert_eq!(l.index(&'a', ..)?, 0);
    /// assert_eq!(l.index(&'a', 1..)?, 2);
    /// assert!(l.index(&'z', ..).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn index(&self, value: &T, range: impl RangeBounds<usize>) -> Result<usize, Error> {
        let (start, stop) = bounds(range);
        self.handle.size(Op::ListIndex {
            value: &encode(value)?,
            start,
            stop,
        })
    }

    /// How many items equal `value` (by their encodings): Python's `l.count(value)`.
    ///
    /// # Errors
    ///
    /// As [`push`](List::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.extend([1, 2, 1])?;
    /// assert_eq!(l.count(&1)?, 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn count(&self, value: &T) -> Result<usize, Error> {
        self.handle.size(Op::ListCount {
            value: &encode(value)?,
        })
    }

    /// Removes the first item equal to `value`: Python's `l.remove(value)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if there is none (Python's `ValueError`), and as
    /// [`push`](List::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.extend([1, 2, 1])?;
    /// l.remove(&1)?;
    /// assert_eq!(l.to_vec()?, [2, 1]);
    /// assert!(l.remove(&9).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn remove(&self, value: &T) -> Result<(), Error> {
        self.handle.done(Op::ListRemove {
            value: &encode(value)?,
        })
    }

    /// Removes and returns the item at `index`, or `None` past the end: Python's
    /// `l.pop(index)` (`None` where Python raises `IndexError`).
    ///
    /// # Errors
    ///
    /// As [`get`](List::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.pop_at(0)?, Some(1));
    /// assert_eq!(l.pop_at(5)?, None);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn pop_at(&self, index: usize) -> Result<Option<T>, Error> {
        self.handle.value(Op::ListPopAt {
            index: index as u64,
        })
    }

    /// A copy of the items in `range`, clamped to the list: Python's `l[start:stop]`.
    ///
    /// # Errors
    ///
    /// As [`get`](List::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.extend([1, 2, 3, 4])?;
    /// assert_eq!(l.get_range(1..3)?, [2, 3]);
    /// assert_eq!(l.get_range(2..)?, [3, 4]);
    /// assert_eq!(l.get_range(9..)?, []);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get_range(&self, range: impl RangeBounds<usize>) -> Result<Vec<T>, Error> {
        let (start, end) = bounds(range);
        self.handle.values(Op::ListRange { start, end })
    }

    /// Iterates over a **snapshot** of the list, taken in one round trip when this is
    /// called (Python iterates live, one round trip per item): later changes, by anyone,
    /// are not seen. Use [`get_range`](List::get_range) to page through a long list.
    ///
    /// There is no `sort`: the server compares items by their encodings, whose order is not
    /// `T`'s, so sort a copy here ([`to_vec`](List::to_vec), sort, then
    /// [`clear`](List::clear) and [`extend`](List::extend) under a [`Lock`](crate::Lock)).
    ///
    /// # Errors
    ///
    /// As [`to_vec`](List::to_vec), when the snapshot is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.iter()?.sum::<u8>(), 6);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn iter(&self) -> Result<std::vec::IntoIter<T>, Error> {
        self.to_vec().map(Vec::into_iter)
    }
}

/// A range of positions as the server's `start..end` (clamped there).
fn bounds(range: impl RangeBounds<usize>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&n) => n as u64,
        Bound::Excluded(&n) => n as u64 + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&n) => n as u64 + 1,
        Bound::Excluded(&n) => n as u64,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}
