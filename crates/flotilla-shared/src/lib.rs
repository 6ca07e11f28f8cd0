//! Python's `multiprocessing.Value`, `Array`, `Lock`, `RLock`, `Condition`, `Semaphore`,
//! `Event` and `Barrier`: data and synchronisation in real shared memory, seen by every process
//! they are passed to, with no copies.
//!
//! A [`Value`] or [`Array`] lives in a shared-memory segment (a sealed `memfd`) created by the
//! process that calls `new`. Pass it (or a clone) as an argument of
//! [`Process::start`](flotilla_process::process::Process::start) and the child maps the same memory: a
//! store in one process is a load in the other, and nothing is serialized but a descriptor.
//!
//! # A guide for Python users
//!
//! | Python `multiprocessing` | `flotilla::shared` |
//! |---|---|
//! | `Value('Q', 0)` | [`Value::new(0u64)?`](Value::new) — any [`Plain`](trait@Plain) type (`#[derive(Plain)]` for your own) |
//! | `v.value` / `v.value = x` (each takes the lock) | [`v.load()?`](Value::load) / [`v.store(x)?`](Value::store) |
//! | `with v.get_lock(): v.value += 1` | [`*v.get_lock().unwrap() += 1`](Value::get_lock) |
//! | `Array('d', 10)`, `Array('i', [1, 2])` | [`Array::<f64>::new(10)?`](Array::new), [`Array::from_slice(&[1i32, 2])?`](Array::from_slice) |
//! | `len(a)`, `a[i]`, `a[i] = x`, `a[:]` | [`len()`](Array::len), [`get(i)?`](Array::get), [`set(i, x)?`](Array::set), [`to_vec()?`](Array::to_vec) |
//! | `with a.get_lock(): a[0] += a[1]` | `let mut a = a.get_lock().unwrap(); a[0] += a[1];` ([`ArrayGuard`] is a `&mut [T]`) |
//! | `Value(.., lock=False)`, `RawValue` | [`RawValue::new(x)?`](RawValue::new) |
//! | `Array(.., lock=False)`, `RawArray` | [`RawArray::new(n)?`](RawArray::new) |
//! | `Lock()`, `acquire()`, `release()`, `with lock:` | [`Lock::new()?`](Lock::new), [`lock()`](Lock::lock) returning a [`LockGuard`] that releases on drop |
//! | `acquire(block=False)`, `acquire(timeout=t)` | [`try_lock()`](Lock::try_lock), [`lock_timeout(t)`](Lock::lock_timeout) |
//! | `RLock()`, acquired again by its holder | [`RLock::new()?`](RLock::new): each [`lock()`](RLock::lock) by the holding thread is another [`RLockGuard`] |
//! | `Condition()`, `with cond: cond.wait(t)`, `cond.wait_for(pred, t)`, `notify(n)`, `notify_all()` | [`Condition::new()?`](Condition::new), [`lock()`](Condition::lock) returning a [`ConditionGuard`] with [`wait`](ConditionGuard::wait), [`wait_for`](ConditionGuard::wait_for), [`notify`](ConditionGuard::notify), [`notify_all`](ConditionGuard::notify_all) |
//! | `Semaphore(n)`, `BoundedSemaphore(n)` | [`Semaphore::new(n)?`](Semaphore::new), [`BoundedSemaphore::new(n)?`](BoundedSemaphore::new) |
//! | `Event()`, `set()`, `clear()`, `is_set()`, `wait(t)` | [`Event::new()?`](Event::new), [`set`](Event::set), [`clear`](Event::clear), [`is_set`](Event::is_set), [`wait(Some(t))`](Event::wait) |
//! | `Barrier(n)`, `wait(t)` | [`Barrier::new(n)?`](Barrier::new), [`wait(Some(t))`](Barrier::wait) |
//! | a holder killed while holding the lock: everyone else hangs forever | [`LockError::OwnerDied`] with the guard; repair, then [`mark_consistent()`](LockGuard::mark_consistent) |
//!
//! # How it differs from Python
//!
//! - **Robust locks.** The lock is a process-shared, robust, error-checking pthread mutex. If
//!   a holder goes away while holding it — its process killed, crashed, exited or exec'd, or
//!   its thread ended — the next acquisition does not hang: it succeeds but reports
//!   [`LockError::OwnerDied`], handing the guard back. A panic that unwinds through a guard
//!   reports the same, much like a poisoned `std::sync::Mutex`. Every acquisition reports it
//!   until some holder calls `mark_consistent()`. Locking twice from one thread is
//!   [`LockError::WouldDeadlock`] rather than a hang. A thread may hold at most [`MAX_HELD`]
//!   shared locks at once ([`LockError::TooManyHeld`] beyond), the most whose holder the
//!   kernel reports when the thread dies.
//! - **Dead waiters cost nothing.** A process killed while waiting on a [`Condition`],
//!   [`Event`], [`Semaphore`] or [`Barrier`] leaves nothing that a later wake-up waits for:
//!   waiters sleep on a futex word in the shared memory, not on a process-shared
//!   `pthread_cond_t`. Whoever takes a lock over from a dead holder wakes every waiter, so
//!   that they look at what the dead holder may have changed.
//! - **Errors are values.** `load`, `store`, `get` and `set` on locked types return
//!   `Result<_, LockError>` because the lock can report a dead holder; `LockError` (without a
//!   guard) works with `?`. Out-of-range indexes panic, as slice indexing does.
//! - **Unlocked means atomic, not undefined.** [`RawValue`] and [`RawArray`] read and write each
//!   element with relaxed atomic operations (byte by byte for types no atomic fits), never
//!   through a Rust reference: racing processes can lose updates or read a wide value torn,
//!   which is why the lock exists, but never cause undefined behaviour.
//! - **Where they can travel.** Shared objects go to children as arguments of
//!   `Process::start` (like pipe [`Connection`](flotilla_process::process::Connection)s). Passing one to
//!   a process-pool task or through a queue is refused with an error.
//! - **The element type is checked.** A child that decodes a shared object as a different type,
//!   size or alignment gets a decoding error, not reinterpreted memory.
//!
//! # What dropping (or forgetting) handles and guards does
//!
//! - **A handle** (a [`Lock`], [`Value`], [`Semaphore`], ...) is one reference to the shared
//!   object. Dropping it drops that reference only: the object lives on in the other clones
//!   and in every process that has one, and this process unmaps the memory once its last
//!   handle *and* its last guard of that object are gone.
//! - **A guard** ([`LockGuard`], [`ValueGuard`], ...) holds the lock and keeps the memory
//!   mapped. Dropping it releases the lock; dropped by a panic's unwinding, it first marks the
//!   lock inconsistent, so the next holder gets [`OwnerDied`](LockError::OwnerDied). Guards
//!   are `#[must_use]`: `lock.lock().unwrap();` alone is warned about.
//! - **Forgetting a guard** (`std::mem::forget`) is safe: the lock stays held by that thread,
//!   the memory stays mapped in this process for good, and when the thread ends the next
//!   holder is told `OwnerDied`.
//!
//! # Example: N processes, one counter
//!
//! ```
//! use flotilla::process::Process;
//! use flotilla::shared::Value;
//!
//! #[flotilla::task]
//! fn count(counter: Value<u64>, times: u64) {
//!     for _ in 0..times {
//!         *counter.get_lock().unwrap() += 1;
//!     }
//! }
//!
//! let counter = Value::new(0u64)?;
//! let workers = (0..3)
//!     .map(|_| Process::new(CountTask, (counter.clone(), 1000)).start())
//!     .collect::<Result<Vec<_>, _>>()?;
//! for w in &workers {
//!     w.join();
//!     assert_eq!(w.exitcode(), Some(0));
//! }
//! assert_eq!(counter.load()?, 3000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod barrier;
mod condition;
mod data;
mod futex;
mod layout;
mod lock;
mod plain;
mod rlock;
mod segment;
mod sync;

pub use self::barrier::Barrier;
pub use self::condition::{Condition, ConditionGuard};
pub use self::data::{Array, ArrayGuard, RawArray, RawValue, Value, ValueGuard};
pub use self::lock::{Lock, LockError, LockGuard, MAX_HELD};
pub use self::plain::Plain;
pub use self::rlock::{RLock, RLockGuard};
pub use self::sync::{BoundedSemaphore, Event, Semaphore, SyncError};
/// Derives [`Plain`](trait@Plain) for a `#[repr(C)]` struct of `Plain` fields without padding,
/// checked at compile time; see the trait for what it refuses.
///
/// ```
/// #[repr(C)]
/// #[derive(Clone, Copy, flotilla::shared::Plain)]
/// struct Sample {
///     at: u64,
///     value: f32,
///     channel: u32,
/// }
///
/// let shared = flotilla::shared::Array::from_slice(&[Sample { at: 1, value: 0.5, channel: 2 }])?;
/// assert_eq!(shared.get(0)?.channel, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use flotilla_macros::Plain;
