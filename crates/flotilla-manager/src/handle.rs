//! What every proxy is underneath: a manager's client and an object id, encoded for other
//! processes as the manager's address, its authkey and the id.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::client::{Client, unexpected};
use super::protocol::{Address, Kind, Op, Reply, Request};
use flotilla_core::Error;
use flotilla_core::primitives::Arc;
use flotilla_process::wire::codec;

/// A reference to one object in a manager's server.
#[derive(Clone)]
pub struct Handle {
    pub(crate) client: Arc<Client>,
    pub(crate) id: u64,
}

impl Handle {
    /// Runs `op` on the object.
    pub(crate) fn op(&self, op: Op<'_>) -> Result<Reply, Error> {
        self.client.call(&Request::Op { id: self.id, op })
    }

    /// Runs `op`, expecting [`Reply::Done`].
    pub(crate) fn done(&self, op: Op<'_>) -> Result<(), Error> {
        match self.op(op)? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs `op`, expecting [`Reply::Value`], and decodes the value.
    pub(crate) fn value<T: DeserializeOwned>(&self, op: Op<'_>) -> Result<Option<T>, Error> {
        match self.op(op)? {
            Reply::Value(value) => value.as_deref().map(decode).transpose(),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs `op`, expecting [`Reply::Values`], and decodes them.
    pub(crate) fn values<T: DeserializeOwned>(&self, op: Op<'_>) -> Result<Vec<T>, Error> {
        match self.op(op)? {
            Reply::Values(values) => values.iter().map(|bytes| decode(bytes)).collect(),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs `op`, expecting [`Reply::Size`].
    pub(crate) fn size(&self, op: Op<'_>) -> Result<usize, Error> {
        match self.op(op)? {
            Reply::Size(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs `op`, expecting [`Reply::Flag`].
    pub(crate) fn flag(&self, op: Op<'_>) -> Result<bool, Error> {
        match self.op(op)? {
            Reply::Flag(flag) => Ok(flag),
            other => Err(unexpected(&other)),
        }
    }
}

/// Encodes a key, value or item for the server.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    codec::encode(value, Vec::new(), &"a value for a manager")
        .map_err(|message| Error::Codec { message })
}

/// Decodes a key, value or item from the server.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let what = format_args!("a value from a manager as {}", std::any::type_name::<T>());
    codec::decode(bytes, &what).map_err(|message| Error::Codec { message })
}

/// How a handle travels.
#[derive(Serialize, Deserialize)]
#[serde(rename = "ManagerProxy")]
struct Ticket {
    address: Address,
    #[serde(with = "serde_bytes")]
    authkey: Vec<u8>,
    id: u64,
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Ticket {
            address: self.client.address().clone(),
            authkey: self.client.authkey().to_vec(),
            id: self.id,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Handle, D::Error> {
        let ticket = Ticket::deserialize(deserializer)?;
        let client = Client::shared(ticket.address, ticket.authkey)
            .map_err(flotilla_process::wire::refusal::decoding)?;
        Ok(Handle {
            client,
            id: ticket.id,
        })
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("address", self.client.address())
            .field("id", &self.id)
            .finish()
    }
}

/// The methods every proxy has for the manager's use; sealed.
pub(crate) mod sealed {
    use super::{Handle, Kind};

    /// Implemented by the proxy types only.
    pub trait Sealed {
        /// The kind of object the proxy stands for.
        #[doc(hidden)]
        fn kind() -> Kind;
        /// The proxy's handle.
        #[doc(hidden)]
        fn handle(&self) -> &Handle;
        /// A proxy for the object behind `handle`.
        #[doc(hidden)]
        fn from_handle(handle: Handle) -> Self;
    }
}

/// A proxy for an object held by a [`Manager`](super::Manager): [`Dict`](super::Dict),
/// [`List`](super::List), [`Namespace`](super::Namespace), [`Queue`](super::Queue),
/// [`Lock`](super::Lock), [`RLock`](super::RLock), [`Condition`](super::Condition),
/// [`Event`](super::Event), [`Semaphore`](super::Semaphore),
/// [`BoundedSemaphore`](super::BoundedSemaphore), [`Barrier`](super::Barrier),
/// [`Value`](super::Value), [`Array`](super::Array) or [`Remote`](super::Remote). Used to [`register`](super::Manager::register) objects by name
/// and [`get`](super::Manager::get) them back in another process. Sealed.
pub trait Proxy: sealed::Sealed + Clone + Send + Sync + 'static {}
