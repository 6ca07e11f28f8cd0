//! `map` and `map_fn`: order, unordered mode, per-item failures, the timeout, lazy bounded
//! buffering, chunks and cancellation on drop (CPython's executor `map` tests, plus what
//! flotilla adds: laziness and `buffer`).

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use flotilla::sync::Event;
use flotilla::{Error, Executor, Map, ThreadPoolExecutor};

#[path = "support/watchdog.rs"]
mod watchdog;
use watchdog::watchdog;

const SHORT: Duration = Duration::from_millis(20);
const GENEROUS: Duration = Duration::from_secs(30);

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

/// Releases `gate` when dropped, so that a failing assertion does not leave pool threads
/// blocked (and the pool's `Drop` waiting for them).
struct OpenOnDrop(Arc<Event>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// Waits until every task queued so far on a one-worker pool has run (or was cancelled).
fn drain(pool: &ThreadPoolExecutor) {
    pool.spawn(|| ()).unwrap().result_timeout(GENEROUS).unwrap();
}

#[test]
fn results_come_in_input_order_even_when_tasks_finish_out_of_order() {
    let pool = pool(4);
    let third_done = Arc::new(Event::new());
    let _open = OpenOnDrop(Arc::clone(&third_done));
    let t = Arc::clone(&third_done);
    let results: Vec<u32> = pool
        .map_fn(
            move |i: u32| {
                match i {
                    0 => assert!(t.wait_timeout(GENEROUS), "item 3 never ran"),
                    3 => t.set(),
                    _ => {}
                }
                i * 10
            },
            0..40,
        )
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(results, (0..40).map(|i| i * 10).collect::<Vec<_>>());
}

#[test]
fn nothing_is_submitted_or_pulled_before_the_first_next() {
    let pool = pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pulled);
    let map = pool.map_fn(
        |x: u32| x,
        (0..).inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        }),
    );
    drop(map);
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
    assert_eq!(pool.num_threads(), 0);
}

#[test]
fn an_empty_input_yields_nothing() {
    let pool = pool(2);
    assert!(pool.map_fn(|x: u32| x, Vec::new()).next().is_none());
    assert!(
        pool.map_fn(|x: u32| x, Vec::new())
            .unordered()
            .next()
            .is_none()
    );
}

#[test]
fn unordered_yields_every_result_as_it_completes() {
    let pool = pool(4);
    let gate = Arc::new(Event::new());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let g = Arc::clone(&gate);
    let mut map = pool
        .map_fn(
            move |i: u32| {
                if i == 0 {
                    assert!(g.wait_timeout(GENEROUS));
                }
                i
            },
            0..30,
        )
        .unordered();
    // Item 0 cannot finish before the gate opens, so something else comes first.
    let first = map.next().unwrap().unwrap();
    assert_ne!(first, 0);
    gate.set();
    let mut seen: HashSet<u32> = map.map(Result::unwrap).collect();
    assert!(seen.insert(first));
    assert_eq!(seen, (0..30).collect());
}

#[test]
fn a_failing_item_does_not_stop_the_others() {
    let pool = pool(3);
    for chunksize in [1, 3, 4] {
        let results: Vec<Result<u32, Error>> = pool
            .map_fn(
                |i: u32| {
                    assert!(i % 3 != 1, "item {i} is bad");
                    i
                },
                0..20,
            )
            .chunksize(chunksize)
            .collect();
        assert_eq!(results.len(), 20);
        for (i, result) in (0..).zip(&results) {
            if i % 3 == 1 {
                let err = result.as_ref().unwrap_err();
                assert_eq!(err.panic().unwrap().message(), format!("item {i} is bad"));
                assert!(
                    err.panic()
                        .unwrap()
                        .location()
                        .unwrap()
                        .contains("map_lazy.rs")
                );
            } else {
                assert_eq!(*result.as_ref().unwrap(), i);
            }
        }
    }
}

#[test]
fn the_timeout_yields_one_error_then_ends_and_cancels_the_rest() {
    let pool = pool(1);
    let gate = Arc::new(Event::new());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (g, r) = (Arc::clone(&gate), Arc::clone(&ran));
    let start = Instant::now();
    let mut map = pool
        .map_fn(
            move |i: u32| {
                r.lock().unwrap().push(i);
                assert!(g.wait_timeout(GENEROUS));
                i
            },
            0..100,
        )
        .buffer(4)
        .timeout(SHORT);
    let err = map.next().unwrap().unwrap_err();
    assert!(start.elapsed() >= SHORT);
    assert!(
        matches!(err, Error::Timeout { waited, .. } if waited == SHORT),
        "{err:?}"
    );
    assert!(map.next().is_none());
    assert!(map.next().is_none());
    gate.set();
    drain(&pool);
    // Item 0 may or may not have started before the timeout; nothing queued ran after it.
    let ran = ran.lock().unwrap().clone();
    assert!(
        ran.is_empty() || ran == [0],
        "queued chunks ran after the timeout: {ran:?}"
    );
}

#[test]
fn the_timeout_is_measured_from_the_call_to_map() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let pool = pool(1);
    let gate = Arc::new(Event::new());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let g = Arc::clone(&gate);
    let mut map = pool
        .map_fn(
            move |i: u32| {
                assert!(g.wait_timeout(GENEROUS));
                i
            },
            0..10,
        )
        .timeout(TIMEOUT);
    // Let the whole timeout pass before the first `next`.
    let (_tx, rx) = mpsc::channel::<()>();
    assert!(rx.recv_timeout(TIMEOUT).is_err());
    let start = Instant::now();
    assert!(map.next().unwrap().unwrap_err().is_timeout());
    assert!(
        start.elapsed() < TIMEOUT,
        "next() waited a second full timeout"
    );
    assert!(map.next().is_none());
}

/// An endless input that counts how many items were pulled from it.
fn counted(pulled: &Arc<AtomicUsize>) -> impl Iterator<Item = u64> + Send + use<> {
    let pulled = Arc::clone(pulled);
    (0..).inspect(move |_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn an_endless_input_is_pulled_only_as_results_are_taken() {
    let pool = pool(2);
    for (buffer, chunksize) in [(1, 1), (3, 1), (2, 4), (3, 5)] {
        let pulled = Arc::new(AtomicUsize::new(0));
        let mut map = pool
            .map_fn(|x: u64| x * 2, counted(&pulled))
            .buffer(buffer)
            .chunksize(chunksize);
        for k in 1..=25 {
            let expected = 2 * (u64::try_from(k).unwrap() - 1);
            assert_eq!(map.next().unwrap().unwrap(), expected);
            let now = pulled.load(Ordering::SeqCst);
            assert!(now >= k, "yielded more than was pulled");
            assert!(
                now <= k + buffer * chunksize,
                "buffer {buffer}, chunksize {chunksize}: pulled {now} after {k} results"
            );
        }
    }
}

#[test]
fn the_default_buffer_is_twice_the_workers() {
    let pool = pool(3);
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut map = pool.map_fn(|x: u64| x, counted(&pulled));
    assert_eq!(map.next().unwrap().unwrap(), 0);
    assert!(pulled.load(Ordering::SeqCst) <= 1 + 6);
    let taken: Vec<u64> = map.by_ref().take(99).map(Result::unwrap).collect();
    assert_eq!(taken, (1..100).collect::<Vec<_>>());
    assert!(pulled.load(Ordering::SeqCst) <= 100 + 6);
}

#[test]
fn chunks_split_and_join_correctly_at_every_boundary() {
    let pool = pool(3);
    for chunksize in [1, 2, 3, 4, 8] {
        for n in [0_u32, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33] {
            let expected: Vec<u32> = (0..n).map(|i| i + 1000).collect();
            let ordered: Vec<u32> = pool
                .map_fn(|i: u32| i + 1000, 0..n)
                .chunksize(chunksize)
                .buffer(2)
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(ordered, expected, "chunksize {chunksize}, {n} inputs");
            let mut unordered: Vec<u32> = pool
                .map_fn(|i: u32| i + 1000, 0..n)
                .chunksize(chunksize)
                .unordered()
                .collect::<Result<_, _>>()
                .unwrap();
            unordered.sort_unstable();
            assert_eq!(unordered, expected, "unordered, chunksize {chunksize}, {n}");
        }
    }
}

#[test]
fn chunksize_and_buffer_of_zero_mean_one() {
    let pool = pool(2);
    let results: Vec<u32> = pool
        .map_fn(|i: u32| i, 0..5)
        .chunksize(0)
        .buffer(0)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(results, [0, 1, 2, 3, 4]);
}

#[test]
fn dropping_the_iterator_cancels_the_queued_chunks() {
    let pool = pool(1);
    let gate = Arc::new(Event::new());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let ran = Arc::new(Mutex::new(Vec::new()));
    let pulled = Arc::new(AtomicUsize::new(0));
    let (started_tx, started) = mpsc::channel();
    let (g, r) = (Arc::clone(&gate), Arc::clone(&ran));
    let mut map = pool
        .map_fn(
            move |i: u64| {
                r.lock().unwrap().push(i);
                if i == 1 {
                    // Holds the only worker: every later chunk waits in the queue.
                    started_tx.send(()).unwrap();
                    assert!(g.wait_timeout(GENEROUS));
                }
                i
            },
            counted(&pulled),
        )
        .buffer(5);
    assert_eq!(map.next().unwrap().unwrap(), 0);
    assert_eq!(pulled.load(Ordering::SeqCst), 5);
    started.recv_timeout(GENEROUS).unwrap();
    drop(map);
    gate.set();
    drain(&pool);
    let ran = ran.lock().unwrap().clone();
    assert_eq!(ran, [0, 1], "cancelled chunks ran");
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        5,
        "input pulled after the drop"
    );
}

#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

#[flotilla::task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[flotilla::task]
fn checked(x: u64) -> u64 {
    assert!(x != 3, "three is not allowed");
    x
}

fn sum_of_squares(executor: &impl Executor, n: u64) -> Result<u64, Error> {
    executor.map(square, 0..n).chunksize(16).sum()
}

#[test]
fn map_through_the_executor_trait() {
    let pool = pool(3);
    assert_eq!(
        sum_of_squares(&pool, 100).unwrap(),
        (0..100).map(|x| x * x).sum()
    );
    let sums: Vec<u64> = pool
        .map(add, (0..50).map(|i| (i, 1)))
        .chunksize(7)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sums, (1..=50).collect::<Vec<_>>());
    let results: Vec<_> = pool.map(checked, 0..6).chunksize(2).collect();
    assert_eq!(results.len(), 6);
    assert!(results[3].as_ref().unwrap_err().is_panic());
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
    // Lazy through the trait too.
    let pulled = Arc::new(AtomicUsize::new(0));
    let first: Vec<u64> = pool
        .map(square, counted(&pulled))
        .buffer(2)
        .take(3)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(first, [0, 1, 4]);
    assert!(pulled.load(Ordering::SeqCst) <= 3 + 2);
}

/// Configuring a map after its first `next()` applies to what is left, in every combination
/// (it used to hang for ever once `unordered` was set on a started map: the chunks already in
/// flight never reported their completion).
#[test]
fn configuring_after_the_first_next_applies_to_the_rest() {
    type Configure = for<'a> fn(Map<'a, Range<u32>, u32>) -> Map<'a, Range<u32>, u32>;
    let cases: [(&str, Configure); 5] = [
        ("unordered", |m| m.unordered()),
        ("chunksize", |m| m.chunksize(3)),
        ("buffer", |m| m.buffer(1)),
        ("timeout", |m| m.timeout(GENEROUS)),
        ("all", |m| {
            m.chunksize(2).buffer(3).timeout(GENEROUS).unordered()
        }),
    ];
    for (name, configure) in cases {
        let mut rest: Vec<u32> = watchdog(GENEROUS, move || {
            let pool = pool(2);
            let mut map = pool.map_fn(|i: u32| i * 10, 0..8);
            let first = map.next().unwrap().unwrap();
            let mut all: Vec<u32> = configure(map).collect::<Result<_, _>>().unwrap();
            all.push(first);
            all
        });
        rest.sort_unstable();
        assert_eq!(rest, (0..8).map(|i| i * 10).collect::<Vec<_>>(), "{name}");
    }
}
