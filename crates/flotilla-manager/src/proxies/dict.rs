//! Python's `Manager().dict()`.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::client::unexpected;
use super::super::handle::{Handle, Proxy, decode, encode, sealed};
use super::super::protocol::{Kind, Op, Reply};
use super::{Marker, proxy};
use flotilla_core::Error;

/// A dictionary held by a manager: Python's `Manager().dict()`.
///
/// Keys and values are serde types, encoded here and stored as bytes in the server, so two
/// keys are the same key when their encodings are equal (true of every ordinary type;
/// iteration order is unspecified). Each method is one round trip to the server and is atomic
/// there; a read-modify-write of several calls is not, so guard it with a manager
/// [`Lock`](crate::Lock), as in Python.
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let ages = manager.dict::<String, u32>()?;
/// ages.insert(&"ada".to_owned(), &36)?;
/// assert_eq!(ages.get(&"ada".to_owned())?, Some(36));
/// assert_eq!(ages.len()?, 1);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Dict<K, V> {
    handle: Handle,
    _types: Marker<(K, V)>,
}

proxy!(Dict<K, V>, Dict);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> Dict<K, V> {
    /// The value for `key`, if any: Python's `d.get(key)`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone; [`Error::Codec`] if the stored value is
    /// not a `V`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, String>()?;
    /// assert_eq!(d.get(&1)?, None);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        self.handle.value(Op::DictGet { key: &encode(key)? })
    }

    /// Sets `key` to `value` (Python's `d[key] = value`) and returns the previous value.
    ///
    /// # Errors
    ///
    /// As [`get`](Dict::get), and [`Error::Codec`] if the key or value cannot be encoded.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// assert_eq!(d.insert(&1, &10)?, None);
    /// assert_eq!(d.insert(&1, &11)?, Some(10));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>, Error> {
        let (key, value) = (encode(key)?, encode(value)?);
        self.handle.value(Op::DictInsert {
            key: &key,
            value: &value,
        })
    }

    /// Removes `key` and returns its value: Python's `d.pop(key, None)`.
    ///
    /// # Errors
    ///
    /// As [`get`](Dict::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// d.insert(&1, &10)?;
    /// assert_eq!(d.remove(&1)?, Some(10));
    /// assert_eq!(d.remove(&1)?, None);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn remove(&self, key: &K) -> Result<Option<V>, Error> {
        self.handle.value(Op::DictRemove { key: &encode(key)? })
    }

    /// Whether `key` is present: Python's `key in d`.
    ///
    /// # Errors
    ///
    /// As [`get`](Dict::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, ()>()?;
    /// d.insert(&1, &())?;
    /// assert!(d.contains_key(&1)?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool, Error> {
        self.handle.flag(Op::DictContains { key: &encode(key)? })
    }

    /// The number of entries: Python's `len(d)`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.dict::<u8, u8>()?.len()?, 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize, Error> {
        self.handle.size(Op::DictLen)
    }

    /// Whether the dictionary is empty.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(manager.dict::<u8, u8>()?.is_empty()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// The keys, in no particular order: Python's `list(d.keys())`.
    ///
    /// # Errors
    ///
    /// As [`get`](Dict::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// d.insert(&1, &10)?;
    /// assert_eq!(d.keys()?, [1]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<K>, Error> {
        self.handle.values(Op::DictKeys)
    }

    /// The values, in no particular order: Python's `list(d.values())`.
    ///
    /// # Errors
    ///
    /// As [`get`](Dict::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// d.insert(&1, &10)?;
    /// assert_eq!(d.values()?, [10]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn values(&self) -> Result<Vec<V>, Error> {
        self.handle.values(Op::DictValues)
    }

    /// A copy of the whole dictionary: Python's `d.copy()`.
    ///
    /// # Errors
    ///
    /// As [`get`](Dict::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<String, u8>()?;
    /// d.insert(&"a".into(), &1)?;
    /// assert_eq!(d.to_map()?["a"], 1);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn to_map(&self) -> Result<HashMap<K, V>, Error>
    where
        K: Eq + Hash,
    {
        Ok(self.items()?.into_iter().collect())
    }

    /// Removes every entry: Python's `d.clear()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// d.insert(&1, &1)?;
    /// d.clear()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        self.handle.done(Op::DictClear)
    }

    /// Removes `key` and returns its value: Python's `d.pop(key)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if `key` is not there (Python's `KeyError`; use
    /// [`remove`](Dict::remove) for `d.pop(key, None)`), and as [`get`](Dict::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// d.insert(&1, &10)?;
    /// assert_eq!(d.pop(&1)?, 10);
    /// assert!(d.pop(&1).is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn pop(&self, key: &K) -> Result<V, Error> {
        self.remove(key)?.ok_or_else(|| Error::InvalidOperation {
            reason: "the key is not in the dict (Python's KeyError)".to_owned(),
        })
    }

    /// The value for `key`, or `default` if there is none: Python's `d.get(key, default)`.
    ///
    /// # Errors
    ///
    /// As [`get`](Dict::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// assert_eq!(d.get_or(&1, 5)?, 5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get_or(&self, key: &K, default: V) -> Result<V, Error> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// The value for `key`, inserting `default` first if there is none, in one atomic step:
    /// Python's `d.setdefault(key, default)`.
    ///
    /// # Errors
    ///
    /// As [`insert`](Dict::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// assert_eq!(d.setdefault(&1, &5)?, 5);
    /// assert_eq!(d.setdefault(&1, &6)?, 5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn setdefault(&self, key: &K, default: &V) -> Result<V, Error> {
        let (key, value) = (encode(key)?, encode(default)?);
        self.handle
            .value(Op::DictSetDefault {
                key: &key,
                value: &value,
            })?
            .ok_or_else(|| unexpected(&Reply::Value(None)))
    }

    /// Inserts every pair, in one atomic step: Python's `d.update(pairs)`.
    ///
    /// # Errors
    ///
    /// As [`insert`](Dict::insert); nothing is inserted if a pair cannot be encoded.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, char>()?;
    /// d.update([(1, 'a'), (2, 'b')])?;
    /// assert_eq!(d.len()?, 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn update(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<(), Error> {
        let pairs = pairs
            .into_iter()
            .map(|(key, value)| Ok((encode(&key)?.into(), encode(&value)?.into())))
            .collect::<Result<_, Error>>()?;
        self.handle.done(Op::DictUpdate { pairs })
    }

    /// Every key and value, in no particular order: Python's `list(d.items())`.
    ///
    /// # Errors
    ///
    /// As [`get`](Dict::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// d.insert(&1, &10)?;
    /// assert_eq!(d.items()?, [(1, 10)]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn items(&self) -> Result<Vec<(K, V)>, Error> {
        match self.handle.op(Op::DictItems)? {
            Reply::Pairs(pairs) => pairs
                .iter()
                .map(|(key, value)| Ok((decode(key)?, decode(value)?)))
                .collect(),
            other => Err(unexpected(&other)),
        }
    }

    /// Iterates over a **snapshot** of the entries, taken in one round trip when this is
    /// called: Python's `for k, v in d.items()`, except that changes made later (by anyone)
    /// are not seen, and changing the dict while iterating is never an error.
    ///
    /// # Errors
    ///
    /// As [`items`](Dict::items), when the snapshot is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// d.update([(1, 1), (2, 4)])?;
    /// let total: u8 = d.iter()?.map(|(_, v)| v).sum();
    /// assert_eq!(total, 5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn iter(&self) -> Result<std::vec::IntoIter<(K, V)>, Error> {
        self.items().map(Vec::into_iter)
    }
}
