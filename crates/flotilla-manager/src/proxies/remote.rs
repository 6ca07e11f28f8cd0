//! [`Remote`]: the typed proxy of an object of a user-registered [`Shared`] type.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::client::unexpected;
use super::super::handle::{Handle, Proxy, encode, sealed};
use super::super::protocol::{Kind, Op, Reply};
use super::super::shared::{Shared, type_name};
use super::{Marker, proxy};
use flotilla_core::Error;

/// A proxy for an object of a user's [`Shared`] type `O`, made by
/// [`Manager::create`](crate::Manager::create): Python's proxy of a registered typeid.
///
/// Like every proxy it is a serde value: pass it to another process, and it reaches the
/// same object. Every call names the Rust type `O`, and the server refuses a call whose
/// type is not the object's with [`Error::InvalidOperation`] (so a `Remote` of the wrong
/// type from [`Manager::get`](crate::Manager::get), which checks only that a name is
/// an object of *some* registered type, never has its requests misread).
///
/// # Examples
///
/// See [`Shared`].
pub struct Remote<O> {
    handle: Handle,
    _types: Marker<O>,
}

proxy!(Remote<O>, Shared);

impl<O: Shared> Remote<O> {
    /// Sends `request` to the object and returns its reply: one call of
    /// [`Shared::call`] in the server.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] if the server could not serve it (the object is not an
    /// `O`, the request did not decode there, or the call panicked, naming the panic); [`Error::Codec`] if the request
    /// or the reply cannot be encoded or decoded; [`Error::Disconnected`] if the manager is
    /// gone.
    ///
    /// # Examples
    ///
    /// See [`Shared`].
    pub fn call(&self, request: &O::Request) -> Result<O::Reply, Error> {
        self.handle
            .value(Op::Call {
                type_name: type_name::<O>(),
                request: &encode(request)?,
            })?
            .ok_or_else(|| unexpected(&Reply::Value(None)))
    }
}
