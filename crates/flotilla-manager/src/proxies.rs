//! The typed proxies: each encodes its arguments, sends one request and decodes the reply.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::client::unexpected;
use super::handle::{Handle, Proxy, decode, encode, sealed};
use super::protocol::{Kind, Op, Reply};
use flotilla_core::Error;
use flotilla_process::process::{GetError, PutError, SendError};
use flotilla_shared::LockError;

/// Ties a proxy to its item types without owning any (so proxies are `Send` and `Sync`
/// whatever the types).
type Marker<T> = PhantomData<fn(T) -> T>;

/// Implements what every proxy has: `Clone`, `Debug`, serde (as its handle), [`Proxy`].
macro_rules! proxy {
    ($name:ident $(<$($param:ident),*>)?, $kind:ident) => {
        impl$(<$($param),*>)? Clone for $name$(<$($param),*>)? {
            fn clone(&self) -> Self {
                $name { handle: self.handle.clone(), _types: PhantomData }
            }
        }

        impl$(<$($param),*>)? fmt::Debug for $name$(<$($param),*>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("address", self.handle.client.address())
                    .field("id", &self.handle.id)
                    .finish()
            }
        }

        impl$(<$($param),*>)? Serialize for $name$(<$($param),*>)? {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.handle.serialize(serializer)
            }
        }

        impl<'de $($(, $param)*)?> Deserialize<'de> for $name$(<$($param),*>)? {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Handle::deserialize(deserializer).map(|handle| $name { handle, _types: PhantomData })
            }
        }

        impl$(<$($param),*>)? sealed::Sealed for $name$(<$($param),*>)? {
            fn kind() -> Kind {
                Kind::$kind
            }
            fn handle(&self) -> &Handle {
                &self.handle
            }
            fn from_handle(handle: Handle) -> Self {
                $name { handle, _types: PhantomData }
            }
        }

        impl$(<$($param: 'static),*>)? Proxy for $name$(<$($param),*>)? {}
    };
}

/// A dictionary held by a manager: Python's `Manager().dict()`.
///
/// Keys and values are serde types, encoded here and stored as bytes in the server, so two
/// keys are the same key when their encodings are equal (true of every ordinary type;
/// iteration order is unspecified). Each method is one round trip to the server and is atomic
/// there; a read-modify-write of several calls is not, so guard it with a manager
/// [`Lock`](super::Lock), as in Python.
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
        match self.handle.op(Op::DictItems)? {
            Reply::Pairs(pairs) => pairs
                .iter()
                .map(|(key, value)| Ok((decode(key)?, decode(value)?)))
                .collect(),
            other => Err(unexpected(&other)),
        }
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
}

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
}

/// Named values of any serde types, held by a manager: Python's `Manager().Namespace()`,
/// whose attributes become names here.
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let ns = manager.namespace()?;
/// ns.set("threshold", &0.5f64)?;     // ns.threshold = 0.5
/// ns.set("label", &"cats")?;
/// assert_eq!(ns.get::<f64>("threshold")?, Some(0.5));
/// assert_eq!(ns.get::<String>("label")?.as_deref(), Some("cats"));
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Namespace {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Namespace, Namespace);

impl Namespace {
    /// The value named `name`, decoded as a `T`: Python's `ns.name` (`None` where Python raises
    /// `AttributeError`).
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
    /// let ns = manager.namespace()?;
    /// assert_eq!(ns.get::<u32>("missing")?, None);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        self.handle.value(Op::NsGet { name })
    }

    /// Sets `name` to `value`: Python's `ns.name = value`.
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
    /// let ns = manager.namespace()?;
    /// ns.set("done", &true)?;
    /// assert_eq!(ns.get("done")?, Some(true));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), Error> {
        self.handle.done(Op::NsSet {
            name,
            value: &encode(value)?,
        })
    }

    /// Removes `name`; returns whether it was there: Python's `del ns.name`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let ns = manager.namespace()?;
    /// ns.set("x", &1)?;
    /// assert!(ns.remove("x")?);
    /// assert!(!ns.remove("x")?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn remove(&self, name: &str) -> Result<bool, Error> {
        self.handle.flag(Op::NsRemove { name })
    }

    /// The names set, in no particular order: Python's `vars(ns).keys()`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let ns = manager.namespace()?;
    /// ns.set("x", &1)?;
    /// assert_eq!(ns.names()?, ["x"]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn names(&self) -> Result<Vec<String>, Error> {
        match self.handle.op(Op::NsNames)? {
            Reply::Values(names) => names
                .into_iter()
                .map(|name| {
                    String::from_utf8(name.into_vec()).map_err(|err| Error::Codec {
                        message: format!("a namespace name is not UTF-8: {err}"),
                    })
                })
                .collect(),
            other => Err(unexpected(&other)),
        }
    }
}

/// A first-in, first-out queue held by a manager: Python's `Manager().Queue(maxsize)`.
///
/// Unlike [`process::Queue`](flotilla_process::process::Queue), whose items live in the process that
/// created it, this queue lives in the manager's server: it outlives its creator's other
/// work and can be reached over TCP. Errors are the process queue's [`SendError`],
/// [`PutError`] and [`GetError`]; every failed put hands the item back.
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
            Ok(other) => Err(PutError::Failed(item, unexpected(&other))),
            Err(err) => Err(PutError::Failed(item, err)),
        }
    }

    fn get_waiting(&self, wait: Option<Duration>) -> Result<T, GetError> {
        match self.handle.op(Op::QueueGet { wait }) {
            Ok(Reply::Value(Some(bytes))) => decode(&bytes).map_err(GetError::Failed),
            Ok(Reply::TimedOut) => Err(GetError::Empty),
            Ok(other) => Err(GetError::Failed(unexpected(&other))),
            Err(err) => Err(GetError::Failed(err)),
        }
    }

    /// Adds `item`, waiting for room in a bounded queue as long as it takes.
    ///
    /// # Errors
    ///
    /// A [`SendError`] handing the item back, with [`Error::Disconnected`] if the manager is
    /// gone (also when it goes while this put waits for room) or [`Error::Codec`] if the item
    /// cannot be encoded. `?` turns it into the [`Error`].
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
            // A manager's queue is never shut down.
            PutError::Full(item) | PutError::ShutDown(item) => SendError {
                item,
                error: unexpected(&Reply::TimedOut),
            },
        })
    }

    /// Adds `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] with the item if there was no room in time, [`PutError::Failed`] with
    /// the item and the reason otherwise.
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
    /// [`Error::Disconnected`] if the manager is gone, [`Error::Codec`] if the item is not a `T`.
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
            _ => unexpected(&Reply::TimedOut),
        })
    }

    /// Removes and returns the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] if nothing arrived in time, [`GetError::Failed`] otherwise.
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
}

/// A lock held by a manager: Python's `Manager().Lock()`, with a guard that releases it.
///
/// The lock belongs to the process that took it (all of a process's proxies share one
/// session with the manager), not to a thread. If that process dies, or drops every proxy
/// of the manager, while holding it, the server releases it and the next acquisition
/// succeeds but reports [`LockError::OwnerDied`] with the guard, like the
/// [shared-memory lock](flotilla_shared::Lock): repair the data, then
/// [`mark_consistent`](LockGuard::mark_consistent). Nobody hangs. The same happens when the
/// holder goes silent (stopped, or cut off from the server) for longer than the manager's
/// [lease](super::ManagerBuilder::lease): a guard can outlive its hold, and a holder that
/// comes back is told so by its next operation's [`Error::Disconnected`]. Connection
/// failures are [`LockError::Os`], wrapping the [`Error`].
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let lock = manager.lock()?;
/// {
///     let _guard = lock.lock().unwrap();
///     assert!(lock.try_lock().unwrap_err().is_busy());
/// }
/// assert!(lock.try_lock().is_ok());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Lock {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Lock, Lock);

/// Holds a manager [`Lock`]; dropping it releases the lock. So a guard that is not kept
/// releases the lock at once, which is a warning:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// fn take(lock: &flotilla::manager::Lock) {
///     lock.lock().unwrap(); // taken and released
/// }
/// ```
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Lock {
    fn acquire(&self, wait: Option<Duration>) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        match self.handle.op(Op::LockAcquire { wait }) {
            Ok(Reply::Acquired { owner_died: false }) => Ok(LockGuard { lock: self }),
            Ok(Reply::Acquired { owner_died: true }) => {
                Err(LockError::OwnerDied(LockGuard { lock: self }))
            }
            Ok(Reply::TimedOut) if wait == Some(Duration::ZERO) => Err(LockError::WouldBlock),
            Ok(Reply::TimedOut) => Err(LockError::TimedOut),
            Ok(other) => Err(LockError::Os(std::io::Error::other(unexpected(&other)))),
            Err(err) => Err(LockError::Os(std::io::Error::other(err))),
        }
    }

    /// Takes the lock, waiting as long as it takes: Python's `with lock:`.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the guard if a holder died (the lock *is* taken);
    /// [`LockError::Os`] if the manager cannot be reached.
    ///
    /// # Blocking
    ///
    /// While another process holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let lock = manager.lock()?;
    /// let guard = lock.lock().unwrap();
    /// drop(guard); // released
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.acquire(None)
    }

    /// Takes the lock only if it is free now: Python's `acquire(blocking=False)`.
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if it is held; otherwise as [`lock`](Lock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let lock = manager.lock()?;
    /// let _held = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_err());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.acquire(Some(Duration::ZERO))
    }

    /// Takes the lock, waiting at most `timeout`: Python's `acquire(timeout=t)`.
    ///
    /// # Errors
    ///
    /// [`LockError::TimedOut`] if it stayed held; otherwise as [`lock`](Lock::lock).
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
    /// let lock = manager.lock()?;
    /// let _held = lock.lock().unwrap();
    /// let err = lock.lock_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_busy());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.acquire(Some(timeout))
    }
}

impl LockGuard<'_> {
    /// Declares the data the lock protects repaired after [`LockError::OwnerDied`]; later
    /// acquisitions no longer report the death.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let lock = manager.lock()?;
    /// let guard = lock.lock().unwrap();
    /// guard.mark_consistent()?; // harmless when nobody died
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn mark_consistent(&self) -> Result<(), Error> {
        self.lock.handle.done(Op::LockMarkConsistent)
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.lock.handle.done(Op::LockRelease) {
            // The manager is gone (and the lock with it), or it released the lock already.
            tracing::debug!(%err, "manager lock: release failed");
        }
    }
}

/// An event flag held by a manager: Python's `Manager().Event()`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let manager = flotilla::manager::Manager::new()?;
/// let ready = manager.event()?;
/// assert!(!ready.wait_timeout(Duration::from_millis(10))?);
/// ready.set()?;
/// ready.wait()?;
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Event {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Event, Event);

impl Event {
    /// Sets the flag, waking every waiter.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let e = manager.event()?;
    /// e.set()?;
    /// assert!(e.is_set()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn set(&self) -> Result<(), Error> {
        self.handle.done(Op::EventSet)
    }

    /// Clears the flag.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let e = manager.event()?;
    /// e.set()?;
    /// e.clear()?;
    /// assert!(!e.is_set()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        self.handle.done(Op::EventClear)
    }

    /// Whether the flag is set.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(!manager.event()?.is_set()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_set(&self) -> Result<bool, Error> {
        self.handle.flag(Op::EventIsSet)
    }

    /// Waits as long as it takes for the event to be set.
    /// [`wait_timeout`](Event::wait_timeout) waits at most a given time.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Blocking
    ///
    /// Until some client sets the event.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let e = manager.event()?;
    /// e.set()?;
    /// e.wait()?; // set already: returns at once
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_within(None).map(drop)
    }

    /// Waits until the flag is set, for at most `timeout` (forever when `None`); returns
    /// whether it is set.
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
    /// let e = manager.event()?;
    /// assert!(!e.wait_timeout(Duration::ZERO)?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.handle.flag(Op::EventWait { wait: timeout })
    }
}

/// A counting semaphore held by a manager: Python's `Manager().Semaphore(value)`.
///
/// Permits are counted per process: if a process dies (or drops every proxy of the manager)
/// holding permits it took, the server gives them back, so the others do not wait forever.
/// A release from a process that took nothing still adds a permit, as in Python.
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let slots = manager.semaphore(2)?;
/// slots.acquire()?;
/// assert_eq!(slots.value()?, 1);
/// slots.release()?;
/// assert_eq!(slots.value()?, 2);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Semaphore {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Semaphore, Semaphore);

impl Semaphore {
    /// Takes a permit, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Blocking
    ///
    /// While no permit is free.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let s = manager.semaphore(1)?;
    /// s.acquire()?;
    /// assert!(!s.try_acquire()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<(), Error> {
        self.handle.flag(Op::SemAcquire { wait: None }).map(drop)
    }

    /// Takes a permit if one is free now; returns whether it did.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let s = manager.semaphore(0)?;
    /// assert!(!s.try_acquire()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<bool, Error> {
        self.acquire_timeout(Duration::ZERO)
    }

    /// Takes a permit, waiting at most `timeout`; returns whether it did.
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
    /// let s = manager.semaphore(0)?;
    /// assert!(!s.acquire_timeout(Duration::from_millis(10))?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.handle.flag(Op::SemAcquire {
            wait: Some(timeout),
        })
    }

    /// Gives a permit back, waking one waiter.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let s = manager.semaphore(0)?;
    /// s.release()?;
    /// assert!(s.try_acquire()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        self.handle.done(Op::SemRelease)
    }

    /// The number of free permits now.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.semaphore(3)?.value()?, 3);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn value(&self) -> Result<u64, Error> {
        self.handle.size(Op::SemValue).map(|n| n as u64)
    }
}

/// A barrier for a fixed number of parties, held by a manager: Python's
/// `Manager().Barrier(parties)`.
///
/// The barrier breaks, for everyone waiting and everyone who comes later, when a waiter's
/// timeout expires, when [`abort`](Barrier::abort) is called, or when a waiting process dies;
/// waiters then get [`Error::BrokenBarrier`] instead of hanging.
///
/// # Examples
///
/// ```
/// let manager = flotilla::manager::Manager::new()?;
/// let alone = manager.barrier(1)?;
/// assert_eq!(alone.wait()?, 0);
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Barrier {
    handle: Handle,
    _types: Marker<()>,
}

proxy!(Barrier, Barrier);

impl Barrier {
    /// Waits as long as it takes until all parties have called `wait`; returns this caller's
    /// arrival index. [`wait_timeout`](Barrier::wait_timeout) waits at most a given time.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken while waiting;
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Blocking
    ///
    /// Until every party arrives.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let b = manager.barrier(1)?;
    /// assert_eq!(b.wait()?, 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait(&self) -> Result<u64, Error> {
        self.wait_within(None)
    }

    /// Waits until all parties have called `wait`, for at most `timeout` (forever when
    /// `None`); returns this caller's arrival index (`0..parties`), as Python does.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken; [`Error::Timeout`] if this
    /// caller's wait ran out (which breaks the barrier for the others);
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
    /// let b = manager.barrier(2)?;
    /// assert!(b.wait_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// assert!(b.is_broken()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u64, Error> {
        self.wait_within(Some(timeout))
    }

    fn wait_within(&self, timeout: Option<Duration>) -> Result<u64, Error> {
        match self.handle.op(Op::BarrierWait { wait: timeout })? {
            Reply::Index(index) => Ok(index),
            Reply::Broken => Err(Error::BrokenBarrier),
            Reply::TimedOut => Err(Error::Timeout {
                waited: timeout.unwrap_or_default(),
                unfinished: None,
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// Breaks the barrier: current and future waiters get [`Error::BrokenBarrier`].
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// let b = manager.barrier(3)?;
    /// b.abort()?;
    /// assert!(matches!(b.wait(), Err(flotilla::Error::BrokenBarrier)));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn abort(&self) -> Result<(), Error> {
        self.handle.done(Op::BarrierAbort)
    }

    fn state(&self) -> Result<(u64, u64, bool), Error> {
        match self.handle.op(Op::BarrierState)? {
            Reply::BarrierState {
                parties,
                waiting,
                broken,
            } => Ok((parties, waiting, broken)),
            other => Err(unexpected(&other)),
        }
    }

    /// The number of parties.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.barrier(4)?.parties()?, 4);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn parties(&self) -> Result<u64, Error> {
        Ok(self.state()?.0)
    }

    /// The number of parties waiting now: Python's `n_waiting`.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert_eq!(manager.barrier(4)?.n_waiting()?, 0);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn n_waiting(&self) -> Result<u64, Error> {
        Ok(self.state()?.1)
    }

    /// Whether the barrier is broken.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] if the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = flotilla::manager::Manager::new()?;
    /// assert!(!manager.barrier(4)?.is_broken()?);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_broken(&self) -> Result<bool, Error> {
        Ok(self.state()?.2)
    }
}
