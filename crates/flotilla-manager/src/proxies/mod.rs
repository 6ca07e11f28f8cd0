//! The typed proxies: each encodes its arguments, sends one request and decodes the reply.

//!
//! One file per family: [`dict`] and [`list`] (containers), [`namespace`], [`queue`], [`lock`]
//! (Lock, RLock, Condition), [`sync`] (Event, Semaphore, BoundedSemaphore, Barrier),
//! [`value`] (Value, Array) and [`remote`] (user-registered types).

use std::marker::PhantomData;

mod dict;
mod list;
mod lock;
mod namespace;
mod queue;
mod remote;
mod sync;
mod value;

pub use self::dict::Dict;
pub use self::list::List;
pub use self::lock::{Condition, ConditionGuard, Lock, LockGuard, RLock, RLockGuard};
pub use self::namespace::Namespace;
pub use self::queue::{JoinableQueue, Queue};
pub use self::remote::Remote;
pub use self::sync::{Barrier, BoundedSemaphore, Event, Semaphore};
pub use self::value::{Array, Value};

/// Ties a proxy to its item types without owning any (so proxies are `Send` and `Sync`
/// whatever the types).
pub(crate) type Marker<T> = PhantomData<fn(T) -> T>;

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

pub(crate) use proxy;
