//! [`Value`], [`Array`] (with a lock) and [`RawValue`], [`RawArray`] (without).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::layout::{Layout, layout};
use super::lock::{Acquired, Header, Holder, LockError, Locked, RawGuard, Wait, report};
use super::plain::{Plain, bytes_of, bytes_of_mut, zeroed};
use super::segment::{self, Adopted, Kind, Segment};
use flotilla_core::Error;
use flotilla_process::wire::refusal;

/// The size and alignment of `T`, as tickets carry them.
fn shape<T>() -> (usize, usize) {
    (size_of::<T>(), align_of::<T>())
}

/// The layout for `count` elements of `T`, behind a lock header or not.
fn layout_of<T>(locked: bool, count: usize) -> Result<Layout, String> {
    let header = if locked { size_of::<Header>() } else { 0 };
    layout(header, size_of::<T>(), align_of::<T>(), count).ok_or_else(|| {
        format!(
            "{count} elements of {} bytes (aligned to {}) do not fit in a shared segment",
            size_of::<T>(),
            align_of::<T>()
        )
    })
}

/// `count` elements of `T` in a locked segment: the storage of [`Value`] and [`Array`].
struct LockedCells<T> {
    locked: Locked,
    /// Offset of element 0 from the segment's base.
    data: usize,
    count: usize,
    _values: PhantomData<T>,
}

impl<T: Plain> LockedCells<T> {
    fn create(what: &str, init: &[T]) -> Result<LockedCells<T>, Error> {
        let layout =
            layout_of::<T>(true, init.len()).map_err(|reason| Error::InvalidConfig { reason })?;
        let segment = Segment::create(layout.total).map_err(|err| segment::io_error(what, err))?;
        let locked = Locked::init(segment).map_err(|err| segment::io_error(what, err))?;
        let cells = LockedCells {
            locked,
            data: layout.data,
            count: init.len(),
            _values: PhantomData,
        };
        // SAFETY: the segment is fresh and not yet shared, so nothing else accesses it; the
        // layout reserves `count` aligned elements at `data`, inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(init.as_ptr(), cells.ptr().as_ptr(), init.len()) };
        Ok(cells)
    }

    fn adopt<E: serde::de::Error>(adopted: Adopted) -> Result<LockedCells<T>, E> {
        let layout = layout_of::<T>(true, adopted.count).map_err(refusal::decoding)?;
        let segment = Segment::open(adopted.fd, layout.total).map_err(refusal::decoding)?;
        Ok(LockedCells {
            locked: Locked::adopt(segment),
            data: layout.data,
            count: adopted.count,
            _values: PhantomData,
        })
    }

    /// Element 0; the elements are valid (any bytes are a `T`) for as long as `self` lives.
    fn ptr(&self) -> NonNull<T> {
        // SAFETY: `data` is inside the mapping (the layout placed it there), so the offset
        // pointer stays in bounds of the same allocation; it is aligned for `T` because the
        // base is page-aligned and `data` a multiple of `align_of::<T>()`.
        unsafe { self.locked.segment().base().add(self.data).cast::<T>() }
    }

    fn acquire(&self, wait: Wait) -> Result<Acquired<'_>, LockError> {
        self.locked.acquire(wait, Holder::User)
    }

    /// Runs `f` on the elements with the lock held, reporting a dead holder as an error.
    fn with<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R, LockError> {
        match self.acquire(Wait::Block)? {
            Acquired {
                inconsistent: true, ..
            } => Err(LockError::OwnerDied(())),
            Acquired { guard, .. } => {
                // SAFETY: see `elements`; `guard` holds the lock for the whole borrow.
                let elements = unsafe { self.elements() };
                let result = f(elements);
                drop(guard);
                Ok(result)
            }
        }
    }

    /// The elements as a slice.
    ///
    /// # Safety
    ///
    /// The caller must hold the lock for as long as the slice lives and create no other
    /// reference to the elements meanwhile. Every access to a locked segment's elements, in
    /// every process, happens with the lock held (the segment's kind travels in its ticket,
    /// so no process treats it as a [`RawValue`] or [`RawArray`]), so holding the lock makes
    /// this reference the only access to the elements: no data race, no aliasing.
    #[allow(clippy::mut_from_ref)]
    unsafe fn elements(&self) -> &mut [T] {
        // SAFETY: `ptr` is valid and aligned for `count` elements while `self` lives, any
        // bytes are a valid `T` (Plain), and the caller guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr().as_ptr(), self.count) }
    }

    fn encode<S: Serializer>(&self, serializer: S, kind: Kind) -> Result<S::Ok, S::Error> {
        segment::encode(
            serializer,
            self.locked.segment(),
            kind,
            self.count,
            shape::<T>(),
        )
    }
}

impl<T> Clone for LockedCells<T> {
    fn clone(&self) -> Self {
        LockedCells {
            locked: self.locked.clone(),
            data: self.data,
            count: self.count,
            _values: PhantomData,
        }
    }
}

/// Python's `multiprocessing.Value`: one `T` in shared memory, with a lock.
///
/// Clone it to share it between threads; pass it (or a clone) as an argument of
/// [`Process::start`](flotilla_process::process::Process::start) to share it with a child. Every clone,
/// in every process, sees the same memory.
///
/// [`load`](Value::load) and [`store`](Value::store) each take the lock for one access, like
/// Python's `v.value`; a read-modify-write such as `+= 1` needs the lock held across it:
/// [`get_lock`](Value::get_lock).
///
/// # Example
///
/// ```
/// use flotilla::shared::Value;
///
/// let counter = Value::new(0u64)?;
/// *counter.get_lock().unwrap() += 5; // with counter.get_lock(): counter.value += 5
/// assert_eq!(counter.load().unwrap(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Dropping a `Value` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
pub struct Value<T> {
    cells: LockedCells<T>,
}

impl<T: Plain> Value<T> {
    /// A new shared value holding `value`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the shared segment cannot be created.
    ///
    /// ```
    /// let v = flotilla::shared::Value::new(1.5f64)?;
    /// assert_eq!(v.load().unwrap(), 1.5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new(value: T) -> Result<Value<T>, Error> {
        Ok(Value {
            cells: LockedCells::create("value", &[value])?,
        })
    }

    /// Reads the value, with the lock held for the read.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] if a holder died and nobody has marked the value consistent
    /// since ([`get_lock`](Value::get_lock) gives access to repair it).
    ///
    /// # Blocking
    ///
    /// While another thread or process holds the lock.
    ///
    /// ```
    /// let v = flotilla::shared::Value::new(7i32)?;
    /// assert_eq!(v.load()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(&self) -> Result<T, LockError> {
        self.cells.with(|cells| cells[0])
    }

    /// Replaces the value, with the lock held for the write.
    ///
    /// # Errors
    ///
    /// As [`load`](Value::load).
    ///
    /// # Blocking
    ///
    /// While another thread or process holds the lock.
    ///
    /// ```
    /// let v = flotilla::shared::Value::new(7i32)?;
    /// v.store(8)?;
    /// assert_eq!(v.load()?, 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn store(&self, value: T) -> Result<(), LockError> {
        self.cells.with(|cells| cells[0] = value)
    }

    /// Takes the value's lock and gives access to the value until the guard drops: Python's
    /// `with v.get_lock(): v.value += 1`.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the guard if a holder died (repair, then
    /// [`mark_consistent`](ValueGuard::mark_consistent)); [`LockError::WouldDeadlock`] if this
    /// thread holds the lock already.
    ///
    /// # Blocking
    ///
    /// While another thread or process holds the lock.
    ///
    /// ```
    /// let hits = flotilla::shared::Value::new(0u32)?;
    /// {
    ///     let mut hits = hits.get_lock().unwrap();
    ///     *hits += 1;
    ///     *hits *= 10;
    /// }
    /// assert_eq!(hits.load()?, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_lock(&self) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        self.lock_with(Wait::Block)
    }

    /// Like [`get_lock`](Value::get_lock), waiting at most `timeout` (measured as for
    /// [`Lock::lock_timeout`](super::Lock::lock_timeout)).
    ///
    /// # Errors
    ///
    /// [`LockError::TimedOut`] if the lock stayed held; otherwise as `get_lock`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let v = flotilla::shared::Value::new(0u8)?;
    /// *v.get_lock_timeout(Duration::from_secs(1)).unwrap() = 3;
    /// assert_eq!(v.load()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        self.lock_with(Wait::For(timeout))
    }

    /// Like [`get_lock`](Value::get_lock), but fails at once if the lock is held.
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if the lock is held; otherwise as `get_lock`.
    ///
    /// ```
    /// let v = flotilla::shared::Value::new(0u8)?;
    /// let held = v.try_get_lock().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(v.try_get_lock().unwrap_err().is_busy()));
    /// });
    /// # drop(held);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_lock(&self) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        self.lock_with(Wait::Try)
    }

    fn lock_with(&self, wait: Wait) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        report(self.cells.acquire(wait), |raw| ValueGuard {
            // SAFETY: `raw` holds the lock, and the guard keeps it (and `self`) for as long as
            // it can hand out this reference.
            value: unsafe { &mut self.cells.elements()[0] },
            raw,
        })
    }
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            cells: self.cells.clone(),
        }
    }
}

impl<T> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

/// Encodes the value for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl<T: Plain> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.cells.encode(serializer, Kind::Value)
    }
}

/// Takes over a value passed to this child process; fails anywhere else.
impl<'de, T: Plain> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let adopted = segment::decode(deserializer, Kind::Value, shape::<T>())?;
        if adopted.count != 1 {
            return Err(refusal::decoding(
                "a shared value must hold exactly one element",
            ));
        }
        Ok(Value {
            cells: LockedCells::adopt(adopted)?,
        })
    }
}

/// Access to a [`Value`] with its lock held; releases the lock when dropped.
///
/// Dropped by a panic's unwinding, it marks the lock inconsistent (the next holder gets
/// [`LockError::OwnerDied`]); forgotten, it keeps the lock held until this thread ends and the
/// memory mapped, as a [`LockGuard`](super::LockGuard) does.
///
/// Not `Send`: it must be released by the thread that took it.
///
/// Dropping it straight away releases the lock straight away, so it is `#[must_use]`: a
/// statement that takes the lock and keeps nothing is warned about.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let value = flotilla::shared::Value::new(0u8).unwrap();
/// value.get_lock().unwrap(); // held for no time at all
/// ```
#[must_use = "dropping the guard releases the lock at once; bind it (`let guard = ...`) to hold the lock"]
pub struct ValueGuard<'a, T> {
    value: &'a mut T,
    raw: RawGuard<'a>,
}

impl<T> ValueGuard<'_, T> {
    /// Declares the value repaired after [`LockError::OwnerDied`]. Harmless otherwise.
    ///
    /// ```
    /// use flotilla::shared::{LockError, Value};
    /// let v = Value::new(0u32)?;
    /// let mut guard = match v.get_lock() {
    ///     Ok(guard) => guard,
    ///     Err(LockError::OwnerDied(mut guard)) => {
    ///         *guard = 0; // repair
    ///         guard.mark_consistent();
    ///         guard
    ///     }
    ///     Err(other) => panic!("{other}"),
    /// };
    /// *guard += 1;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) {
        self.raw.mark_consistent();
    }
}

impl<T> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&*self.value).finish()
    }
}

/// Python's `multiprocessing.Array`: a fixed-length array of `T` in shared memory, with a
/// lock.
///
/// [`get`](Array::get) and [`set`](Array::set) take the lock for one element, like Python's
/// `a[i]`; [`get_lock`](Array::get_lock) holds it across many and gives a `&mut [T]`.
///
/// # Example
///
/// ```
/// use flotilla::shared::Array;
///
/// let squares = Array::<u32>::new(4)?;
/// for (i, slot) in squares.get_lock().unwrap().iter_mut().enumerate() {
///     *slot = (i * i) as u32;
/// }
/// assert_eq!(squares.to_vec()?, [0, 1, 4, 9]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Dropping an `Array` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
pub struct Array<T> {
    cells: LockedCells<T>,
}

impl<T: Plain> Array<T> {
    /// A shared array of `len` zeroes.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the shared segment cannot be created; [`Error::InvalidConfig`] if it
    /// would not fit in memory.
    ///
    /// ```
    /// let a = flotilla::shared::Array::<i64>::new(3)?;
    /// assert_eq!(a.to_vec()?, [0, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(len: usize) -> Result<Array<T>, Error> {
        // Checked before allocating the zeroes, so a huge `len` is an error, not an abort.
        layout_of::<T>(true, len).map_err(|reason| Error::InvalidConfig { reason })?;
        Array::from_slice(&vec![zeroed::<T>(); len])
    }

    /// A shared array holding a copy of `values`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the shared segment cannot be created.
    ///
    /// ```
    /// let a = flotilla::shared::Array::from_slice(&[1u8, 2, 3])?;
    /// assert_eq!(a.len(), 3);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<Array<T>, Error> {
        Ok(Array {
            cells: LockedCells::create("array", values)?,
        })
    }

    /// The number of elements (fixed at creation).
    ///
    /// ```
    /// assert_eq!(flotilla::shared::Array::<u16>::new(5)?.len(), 5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.cells.count
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(flotilla::shared::Array::<u16>::new(0)?.is_empty());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.cells.count == 0
    }

    /// Element `index`, read with the lock held.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] if a holder died and nobody has marked the array consistent.
    ///
    /// # Panics
    ///
    /// If `index >= len()`, like slice indexing (Python's `IndexError`).
    ///
    /// ```
    /// let a = flotilla::shared::Array::from_slice(&[10u8, 20])?;
    /// assert_eq!(a.get(1)?, 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<T, LockError> {
        self.check(index);
        self.cells.with(|cells| cells[index])
    }

    /// Sets element `index`, with the lock held.
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    ///
    /// ```
    /// let a = flotilla::shared::Array::<u8>::new(2)?;
    /// a.set(0, 9)?;
    /// assert_eq!(a.to_vec()?, [9, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<(), LockError> {
        self.check(index);
        self.cells.with(|cells| cells[index] = value)
    }

    /// A copy of every element, taken with the lock held (a consistent snapshot).
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    ///
    /// ```
    /// let a = flotilla::shared::Array::from_slice(&[1.0f32, 2.0])?;
    /// assert_eq!(a.to_vec()?, [1.0, 2.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>, LockError> {
        self.cells.with(|cells| cells.to_vec())
    }

    /// Takes the array's lock and gives access to all elements until the guard drops.
    ///
    /// # Errors
    ///
    /// As [`Value::get_lock`].
    ///
    /// # Blocking
    ///
    /// While another thread or process holds the lock.
    ///
    /// ```
    /// let a = flotilla::shared::Array::<u32>::new(3)?;
    /// a.get_lock().unwrap().fill(7);
    /// assert_eq!(a.to_vec()?, [7, 7, 7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_lock(&self) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        self.lock_with(Wait::Block)
    }

    /// Like [`get_lock`](Array::get_lock), waiting at most `timeout` (measured as for
    /// [`Lock::lock_timeout`](super::Lock::lock_timeout)).
    ///
    /// # Errors
    ///
    /// [`LockError::TimedOut`] if the lock stayed held; otherwise as `get_lock`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let a = flotilla::shared::Array::<u32>::new(1)?;
    /// a.get_lock_timeout(Duration::from_secs(1)).unwrap()[0] = 1;
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get_lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        self.lock_with(Wait::For(timeout))
    }

    /// Like [`get_lock`](Array::get_lock), but fails at once if the lock is held.
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if the lock is held; otherwise as `get_lock`.
    ///
    /// ```
    /// let a = flotilla::shared::Array::<u32>::new(1)?;
    /// let held = a.try_get_lock().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(a.try_get_lock().unwrap_err().is_busy()));
    /// });
    /// # drop(held);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn try_get_lock(&self) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        self.lock_with(Wait::Try)
    }

    fn lock_with(&self, wait: Wait) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        report(self.cells.acquire(wait), |raw| ArrayGuard {
            // SAFETY: `raw` holds the lock, and the guard keeps it (and `self`) for as long as
            // it can hand out this reference.
            elements: unsafe { self.cells.elements() },
            raw,
        })
    }

    fn check(&self, index: usize) {
        assert!(
            index < self.cells.count,
            "index {index} out of range for a shared array of length {}",
            self.cells.count
        );
    }
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            cells: self.cells.clone(),
        }
    }
}

impl<T> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.cells.count)
            .finish_non_exhaustive()
    }
}

/// Encodes the array for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl<T: Plain> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.cells.encode(serializer, Kind::Array)
    }
}

/// Takes over an array passed to this child process; fails anywhere else.
impl<'de, T: Plain> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let adopted = segment::decode(deserializer, Kind::Array, shape::<T>())?;
        Ok(Array {
            cells: LockedCells::adopt(adopted)?,
        })
    }
}

/// Access to an [`Array`]'s elements with its lock held; releases the lock when dropped.
///
/// Dropped by a panic's unwinding, it marks the lock inconsistent (the next holder gets
/// [`LockError::OwnerDied`]); forgotten, it keeps the lock held until this thread ends and the
/// memory mapped, as a [`LockGuard`](super::LockGuard) does.
///
/// Not `Send`: it must be released by the thread that took it.
///
/// Dropping it straight away releases the lock straight away, so it is `#[must_use]`: a
/// statement that takes the lock and keeps nothing is warned about.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let array = flotilla::shared::Array::<u8>::new(2).unwrap();
/// array.get_lock().unwrap(); // held for no time at all
/// ```
#[must_use = "dropping the guard releases the lock at once; bind it (`let guard = ...`) to hold the lock"]
pub struct ArrayGuard<'a, T> {
    elements: &'a mut [T],
    raw: RawGuard<'a>,
}

impl<T> ArrayGuard<'_, T> {
    /// Declares the array repaired after [`LockError::OwnerDied`]. Harmless otherwise.
    ///
    /// ```
    /// let a = flotilla::shared::Array::<u8>::new(1)?;
    /// a.get_lock().unwrap().mark_consistent();
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) {
        self.raw.mark_consistent();
    }
}

impl<T> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.elements
    }
}

impl<T> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.elements
    }
}

impl<T: fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&*self.elements).finish()
    }
}

/// Reads one `T` at `src` with relaxed atomic loads: one load for a 1-, 2-, 4- or 8-byte `T`
/// aligned like the atomic of its size, one per byte otherwise (so a racing write can tear
/// it, but every mix of bytes is still a valid `T`).
///
/// # Safety
///
/// `src` must be valid for reads of a `T` and aligned for it for the duration of the call,
/// and every concurrent access to those bytes, in any process, must be made by
/// [`atomic_read`] or [`atomic_write`] for the same `T` (so accesses never mix sizes).
unsafe fn atomic_read<T: Plain>(src: *const T) -> T {
    let mut out = zeroed::<T>();
    let bytes = bytes_of_mut(&mut out);
    let src = src.cast::<u8>().cast_mut();
    // SAFETY: (every arm) the caller guarantees `src` is valid and aligned for a `T`; the
    // guard of each arm checks the atomic's size and alignment fit exactly, and all
    // concurrent accesses are atomic and of the same size, so there is no data race.
    unsafe {
        match size_of::<T>() {
            8 if align_of::<T>() >= align_of::<AtomicU64>() => bytes.copy_from_slice(
                &AtomicU64::from_ptr(src.cast())
                    .load(Ordering::Relaxed)
                    .to_ne_bytes(),
            ),
            4 if align_of::<T>() >= align_of::<AtomicU32>() => bytes.copy_from_slice(
                &AtomicU32::from_ptr(src.cast())
                    .load(Ordering::Relaxed)
                    .to_ne_bytes(),
            ),
            2 if align_of::<T>() >= align_of::<AtomicU16>() => bytes.copy_from_slice(
                &AtomicU16::from_ptr(src.cast())
                    .load(Ordering::Relaxed)
                    .to_ne_bytes(),
            ),
            _ => {
                for (i, byte) in bytes.iter_mut().enumerate() {
                    *byte = AtomicU8::from_ptr(src.add(i)).load(Ordering::Relaxed);
                }
            }
        }
    }
    out
}

/// Writes `value` at `dst` with relaxed atomic stores, as [`atomic_read`] reads.
///
/// # Safety
///
/// As [`atomic_read`], with `dst` valid for writes.
unsafe fn atomic_write<T: Plain>(dst: *mut T, value: T) {
    let bytes = bytes_of(&value);
    let dst = dst.cast::<u8>();
    // SAFETY: (every arm) as in `atomic_read`.
    unsafe {
        match size_of::<T>() {
            8 if align_of::<T>() >= align_of::<AtomicU64>() => AtomicU64::from_ptr(dst.cast())
                .store(u64::from_ne_bytes(to_array(bytes)), Ordering::Relaxed),
            4 if align_of::<T>() >= align_of::<AtomicU32>() => AtomicU32::from_ptr(dst.cast())
                .store(u32::from_ne_bytes(to_array(bytes)), Ordering::Relaxed),
            2 if align_of::<T>() >= align_of::<AtomicU16>() => AtomicU16::from_ptr(dst.cast())
                .store(u16::from_ne_bytes(to_array(bytes)), Ordering::Relaxed),
            _ => {
                for (i, &byte) in bytes.iter().enumerate() {
                    AtomicU8::from_ptr(dst.add(i)).store(byte, Ordering::Relaxed);
                }
            }
        }
    }
}

/// `bytes` as an array; only called where the length was matched.
fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    out
}

/// `count` elements of `T` in an unlocked segment: the storage of [`RawValue`] and
/// [`RawArray`]. Never referenced, only read and written atomically.
struct RawCells<T> {
    segment: Arc<Segment>,
    count: usize,
    _values: PhantomData<T>,
}

impl<T: Plain> RawCells<T> {
    fn create(what: &str, init: &[T]) -> Result<RawCells<T>, Error> {
        let layout =
            layout_of::<T>(false, init.len()).map_err(|reason| Error::InvalidConfig { reason })?;
        let segment = Segment::create(layout.total).map_err(|err| segment::io_error(what, err))?;
        let cells = RawCells {
            segment: Arc::new(segment),
            count: init.len(),
            _values: PhantomData,
        };
        // SAFETY: the segment is fresh and not yet shared, so nothing else accesses it; it
        // holds `count` elements of `T` at its page-aligned base.
        unsafe { std::ptr::copy_nonoverlapping(init.as_ptr(), cells.ptr(), init.len()) };
        Ok(cells)
    }

    fn adopt<E: serde::de::Error>(adopted: Adopted) -> Result<RawCells<T>, E> {
        let layout = layout_of::<T>(false, adopted.count).map_err(refusal::decoding)?;
        let segment = Segment::open(adopted.fd, layout.total).map_err(refusal::decoding)?;
        Ok(RawCells {
            segment: Arc::new(segment),
            count: adopted.count,
            _values: PhantomData,
        })
    }

    fn ptr(&self) -> *mut T {
        self.segment.base().as_ptr().cast()
    }

    fn load(&self, index: usize) -> T {
        assert!(
            index < self.count,
            "index {index} out of range for a shared array of length {}",
            self.count
        );
        // SAFETY: `index < count`, so the element lies in the mapping, which `self` keeps
        // alive; it is aligned (page-aligned base, whole elements). Every process accesses an
        // unlocked segment's elements only through `atomic_read`/`atomic_write` for this same
        // `T` (the ticket carries kind, size and alignment, checked on adoption), and no
        // reference to them is ever made.
        unsafe { atomic_read(self.ptr().add(index)) }
    }

    fn store(&self, index: usize, value: T) {
        assert!(
            index < self.count,
            "index {index} out of range for a shared array of length {}",
            self.count
        );
        // SAFETY: as in `load`.
        unsafe { atomic_write(self.ptr().add(index), value) }
    }

    fn encode<S: Serializer>(&self, serializer: S, kind: Kind) -> Result<S::Ok, S::Error> {
        segment::encode(serializer, &self.segment, kind, self.count, shape::<T>())
    }
}

impl<T> Clone for RawCells<T> {
    fn clone(&self) -> Self {
        RawCells {
            segment: Arc::clone(&self.segment),
            count: self.count,
            _values: PhantomData,
        }
    }
}

/// Python's `multiprocessing.RawValue` (and `Value(..., lock=False)`): one `T` in shared
/// memory with no lock.
///
/// Each [`load`](RawValue::load) and [`store`](RawValue::store) is a relaxed atomic access
/// (per byte for a `T` no atomic fits), so concurrent use is racy but memory-safe: a
/// read-modify-write from two processes can lose updates, and a `T` wider than 8 bytes can be
/// read torn (half old, half new). Use a [`Value`] when that matters.
///
/// ```
/// let flag = flotilla::shared::RawValue::new(0u32)?;
/// flag.store(1);
/// assert_eq!(flag.load(), 1);
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// Dropping a `RawValue` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
pub struct RawValue<T> {
    cells: RawCells<T>,
}

impl<T: Plain> RawValue<T> {
    /// A new unlocked shared value holding `value`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the shared segment cannot be created.
    ///
    /// ```
    /// let v = flotilla::shared::RawValue::new([1u8; 3])?;
    /// assert_eq!(v.load(), [1, 1, 1]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new(value: T) -> Result<RawValue<T>, Error> {
        Ok(RawValue {
            cells: RawCells::create("value", &[value])?,
        })
    }

    /// Reads the value (no lock).
    ///
    /// ```
    /// assert_eq!(flotilla::shared::RawValue::new(5i8)?.load(), 5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn load(&self) -> T {
        self.cells.load(0)
    }

    /// Replaces the value (no lock).
    ///
    /// ```
    /// let v = flotilla::shared::RawValue::new(5i8)?;
    /// v.store(-5);
    /// assert_eq!(v.load(), -5);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn store(&self, value: T) {
        self.cells.store(0, value);
    }
}

impl<T> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue {
            cells: self.cells.clone(),
        }
    }
}

impl<T> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawValue")
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

/// Encodes the value for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl<T: Plain> Serialize for RawValue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.cells.encode(serializer, Kind::RawValue)
    }
}

/// Takes over a value passed to this child process; fails anywhere else.
impl<'de, T: Plain> Deserialize<'de> for RawValue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let adopted = segment::decode(deserializer, Kind::RawValue, shape::<T>())?;
        if adopted.count != 1 {
            return Err(refusal::decoding(
                "a shared value must hold exactly one element",
            ));
        }
        Ok(RawValue {
            cells: RawCells::adopt(adopted)?,
        })
    }
}

/// Python's `multiprocessing.RawArray` (and `Array(..., lock=False)`): a fixed-length array
/// of `T` in shared memory with no lock; each element access is atomic as in [`RawValue`].
///
/// ```
/// let a = flotilla::shared::RawArray::<u16>::new(3)?;
/// a.set(2, 9);
/// assert_eq!(a.to_vec(), [0, 0, 9]);
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// Dropping a `RawArray` drops this handle only: the object lives on in its clones and in other
/// processes (see [what dropping does](super#what-dropping-or-forgetting-handles-and-guards-does)).
pub struct RawArray<T> {
    cells: RawCells<T>,
}

impl<T: Plain> RawArray<T> {
    /// A shared array of `len` zeroes, without a lock.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the shared segment cannot be created; [`Error::InvalidConfig`] if it
    /// would not fit in memory.
    ///
    /// ```
    /// assert_eq!(flotilla::shared::RawArray::<u8>::new(2)?.to_vec(), [0, 0]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn new(len: usize) -> Result<RawArray<T>, Error> {
        layout_of::<T>(false, len).map_err(|reason| Error::InvalidConfig { reason })?;
        RawArray::from_slice(&vec![zeroed::<T>(); len])
    }

    /// A shared array holding a copy of `values`, without a lock.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the shared segment cannot be created.
    ///
    /// ```
    /// let a = flotilla::shared::RawArray::from_slice(&[3u64, 4])?;
    /// assert_eq!(a.get(1), 4);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<RawArray<T>, Error> {
        Ok(RawArray {
            cells: RawCells::create("array", values)?,
        })
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(flotilla::shared::RawArray::<u8>::new(2)?.len(), 2);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.cells.count
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(!flotilla::shared::RawArray::<u8>::new(2)?.is_empty());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.cells.count == 0
    }

    /// Element `index` (no lock).
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    ///
    /// ```
    /// assert_eq!(flotilla::shared::RawArray::from_slice(&[7u8])?.get(0), 7);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn get(&self, index: usize) -> T {
        self.cells.load(index)
    }

    /// Sets element `index` (no lock).
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    ///
    /// ```
    /// let a = flotilla::shared::RawArray::<u8>::new(1)?;
    /// a.set(0, 1);
    /// assert_eq!(a.get(0), 1);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn set(&self, index: usize, value: T) {
        self.cells.store(index, value);
    }

    /// A copy of every element, read one by one (not a snapshot if others are writing).
    ///
    /// ```
    /// assert_eq!(flotilla::shared::RawArray::from_slice(&[1i32, 2])?.to_vec(), [1, 2]);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.cells.count).map(|i| self.cells.load(i)).collect()
    }
}

impl<T> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray {
            cells: self.cells.clone(),
        }
    }
}

impl<T> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArray")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.cells.count)
            .finish_non_exhaustive()
    }
}

/// Encodes the array for a child process; only valid inside
/// [`Process::start`](flotilla_process::process::Process::start).
impl<T: Plain> Serialize for RawArray<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.cells.encode(serializer, Kind::RawArray)
    }
}

/// Takes over an array passed to this child process; fails anywhere else.
impl<'de, T: Plain> Deserialize<'de> for RawArray<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let adopted = segment::decode(deserializer, Kind::RawArray, shape::<T>())?;
        Ok(RawArray {
            cells: RawCells::adopt(adopted)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The atomic copies round-trip every size class, on ordinary memory (Miri-checkable).
    #[test]
    fn atomic_copies_round_trip() {
        fn round_trip<T: Plain + PartialEq + fmt::Debug>(value: T) {
            let mut slot = zeroed::<T>();
            // SAFETY: `slot` is a live, aligned local that nothing else touches.
            unsafe { atomic_write(&mut slot, value) };
            // SAFETY: as above.
            assert_eq!(unsafe { atomic_read(&slot) }, value);
        }
        round_trip(0xA5u8);
        round_trip(0xBEEFu16);
        round_trip(0xDEAD_BEEFu32);
        round_trip(u64::MAX - 7);
        round_trip(-1.5f64);
        round_trip([1u8, 2, 3]);
        round_trip([7u32; 5]);
        round_trip(u128::MAX / 3);
    }

    #[test]
    fn layouts_put_data_after_the_lock() {
        let with_lock = layout_of::<u64>(true, 2).unwrap();
        assert!(with_lock.data >= size_of::<Header>());
        assert_eq!(with_lock.data % 8, 0);
        assert_eq!(with_lock.total, with_lock.data + 16);
        assert_eq!(layout_of::<u64>(false, 2).unwrap().data, 0);
        assert!(layout_of::<u64>(false, usize::MAX).is_err());
    }
}
