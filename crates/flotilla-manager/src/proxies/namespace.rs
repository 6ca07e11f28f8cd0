//! Python's `Manager().Namespace()`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::client::unexpected;
use super::super::handle::{Handle, Proxy, encode, sealed};
use super::super::protocol::{Kind, Op, Reply};
use super::{Marker, proxy};
use flotilla_core::Error;

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
