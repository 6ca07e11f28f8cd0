//! Python's `threading` and `queue` toolkits: semaphores, locks, conditions, barriers, events,
//! timers and queues for threads.
//!
//! Everything here blocks the calling thread, takes `&self`, and is shared between threads with
//! an [`Arc`](std::sync::Arc). Only what Rust's standard library lacks is written here; for the
//! rest of Python's `threading`, this guide shows the standard type to use.
//!
//! # From Python to Rust
//!
//! | Python | Rust | notes |
//! |---|---|---|
//! | `threading.Semaphore(n)` | [`Semaphore::new(n)`](Semaphore::new) | `with sem:` is the guard returned by [`acquire`](Semaphore::acquire) |
//! | `threading.BoundedSemaphore(n)` | [`BoundedSemaphore::new(n)`](BoundedSemaphore::new) | over-release is the error [`OverRelease`] instead of `ValueError` |
//! | `sem.acquire(blocking=False)` / `acquire(timeout=t)` | [`try_acquire`](Semaphore::try_acquire) / [`acquire_timeout`](Semaphore::acquire_timeout) | `None` instead of `False` |
//! | `threading.Event()` | [`Event::new()`](Event::new) | `set`, `clear`, `is_set`, `wait(timeout)` |
//! | `threading.Timer(delay, fn).start()` | [`Timer::start(delay, f)`](Timer::start) | `cancel`, `join`; dropping it does not cancel it |
//! | `queue.Queue(maxsize)` | [`Queue::new()`](Queue::new), [`Queue::bounded(maxsize).unwrap()`](Queue::bounded) | `maxsize=0` (unbounded) is `new()` |
//! | `queue.LifoQueue`, `queue.PriorityQueue` | [`LifoQueue`], [`PriorityQueue`] | the priority queue hands out its smallest item first, like `heapq` |
//! | `q.put(x)`, `put(x, timeout=t)`, `put_nowait(x)` | [`put`](Queue::put), [`put_timeout`](Queue::put_timeout), [`try_put`](Queue::try_put) | [`Full`] hands the item back |
//! | `q.get()`, `get(timeout=t)`, `get_nowait()` | [`get`](Queue::get), [`get_timeout`](Queue::get_timeout), [`try_get`](Queue::try_get) | [`Empty`] instead of `queue.Empty` |
//! | `q.task_done()`, `q.join()` | [`task_done`](Queue::task_done), [`join`](Queue::join) | an extra `task_done` is the error [`TaskDoneError`] |
//! | `sem.release(n)` | [`release_n(n)`](Semaphore::release_n) | a bounded semaphore adds all `n` or nothing ([`OverRelease`]) |
//! | `q.shutdown(immediate)`, `queue.ShutDown` (3.13) | [`shutdown(immediate)`](Queue::shutdown), [`send`](Queue::send) / [`recv`](Queue::recv) with [`PutError::ShutDown`] / [`GetError::ShutDown`] | `put`/`get` cannot fail, so they panic on a shut-down queue |
//! | `queue.SimpleQueue()` | [`SimpleQueue::new()`](SimpleQueue::new) | |
//! | `threading.Lock()` guarding data | [`std::sync::Mutex`] | the lock owns the data it protects; unlocking is dropping the guard |
//! | `threading.Lock()` as a signal, `lock.locked()` | [`Lock`], [`locked`](Lock::locked) | released by any thread; a second `release` is [`OverRelease`] |
//! | `threading.RLock()` | `parking_lot::ReentrantMutex` (crate `parking_lot`) | rarely needed: a Rust function taking `&mut` data cannot re-lock by accident |
//! | `threading.Condition()`, `wait(t)`, `wait_for(pred, t)`, `notify(n)` | [`Condition::new(data)`](Condition::new), [`ConditionGuard`] | the condition owns its data; or std's [`Condvar`](std::sync::Condvar) with a [`Mutex`](std::sync::Mutex), see below |
//! | `threading.Barrier(n, action, timeout)`, `reset()`, `abort()` | [`Barrier::new(n).unwrap()`](Barrier::new)`.with_action(f).with_timeout(t)` | [`BrokenBarrier`] is `BrokenBarrierError`; [`std::sync::Barrier`] when none of these is needed |
//! | `threading.Thread(target=f, name=n)` | [`std::thread::Builder`]`::new().name(n).spawn(f)` | `join()` returns the closure's value (or its panic) |
//! | `Thread(daemon=True)` | nothing to set | threads are never "daemon" in Rust and never keep the process alive: it exits when `main` returns, whatever they are doing |
//! | `threading.local()` | [`thread_local!`] | |
//!
//! # How these compare with their neighbours
//!
//! - [`Queue`] and a channel (`std::sync::mpsc`, `crossbeam-channel`) both move items between
//!   threads. A queue is one shared object (no sender/receiver halves, no disconnection), and
//!   adds [`task_done`](Queue::task_done)/[`join`](Queue::join), LIFO and priority orders, and
//!   Python's semantics. For raw speed, or `select!` over several channels, use
//!   crossbeam-channel.
//! - [`Semaphore`] blocks threads; in async code use `tokio::sync::Semaphore`. A `Mutex<()>` is
//!   a semaphore of one that must be released by the thread that took it; a semaphore can be
//!   released by any thread.
//! - [`Event`] is a resettable signal for any number of waiters; a [`std::sync::Barrier`] waits
//!   for a number of threads, and a one-shot channel carries a value to a single receiver.
//! - [`Timer`] spends a thread per timer. It suits a handful of timeouts or delayed actions;
//!   thousands of timers belong in a scheduler such as `tokio::time`.
//!
//! # Example: a queue of jobs and a pool of workers
//!
//! ```
//! use flotilla::sync::{Queue, Semaphore};
//! use std::sync::Arc;
//! use std::thread;
//!
//! let jobs = Arc::new(Queue::bounded(8).unwrap()); // producers wait while 8 jobs are pending
//! let downloads = Arc::new(Semaphore::new(2)); // at most 2 "downloads" at once
//!
//! let workers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let (jobs, downloads) = (Arc::clone(&jobs), Arc::clone(&downloads));
//!         thread::spawn(move || {
//!             let mut handled = 0;
//!             while let Some(url) = jobs.get() {
//!                 let _permit = downloads.acquire();
//!                 let _page = format!("contents of {url}");
//!                 handled += 1;
//!                 jobs.task_done().unwrap();
//!             }
//!             handled
//!         })
//!     })
//!     .collect();
//!
//! for i in 0..50 {
//!     jobs.put(Some(format!("https://example.invalid/{i}")));
//! }
//! jobs.join(); // every job has been handled
//! for _ in &workers {
//!     jobs.put(None); // one stop signal per worker
//! }
//! let handled: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
//! assert_eq!(handled, 50);
//! ```
//!
//! # Example: `threading.Condition` with std's `Mutex` and `Condvar`
//!
//! [`Condition`] is the whole of Python's condition in one object; where std's types suffice,
//! this is the same program with them. Python:
//!
//! ```python
//! cond = threading.Condition()
//! items = []
//! # consumer
//! with cond:
//!     cond.wait_for(lambda: items)
//!     item = items.pop()
//! # producer
//! with cond:
//!     items.append(42)
//!     cond.notify()
//! ```
//!
//! Rust: the mutex owns the list, and `wait_while` is `wait_for` with the condition negated.
//!
//! ```
//! use std::sync::{Arc, Condvar, Mutex};
//! use std::thread;
//!
//! let shared = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
//!
//! let consumer = {
//!     let shared = Arc::clone(&shared);
//!     thread::spawn(move || {
//!         let (items, cond) = &*shared;
//!         let mut items = cond
//!             .wait_while(items.lock().unwrap(), |items| items.is_empty())
//!             .unwrap();
//!         items.pop()
//!     })
//! };
//!
//! let (items, cond) = &*shared;
//! items.lock().unwrap().push(42);
//! cond.notify_one();
//! assert_eq!(consumer.join().unwrap(), Some(42));
//! ```

// The locks the state machines are built on (the model-checking tests swap in their own).
use flotilla_core::primitives;

mod barrier;
mod condition;
mod event;
mod lock;
mod queue;
mod semaphore;
mod timer;

pub use self::barrier::{Barrier, BrokenBarrier};
pub use self::condition::{Condition, ConditionGuard};
pub use self::event::Event;
pub use self::lock::{Lock, LockGuard};
pub use self::queue::{
    Empty, Full, GetError, LifoQueue, PriorityQueue, PutError, Queue, SimpleQueue, TaskDoneError,
};
pub use self::semaphore::{
    BoundedSemaphore, BoundedSemaphoreGuard, OverRelease, Semaphore, SemaphoreGuard,
};
pub use self::timer::Timer;
