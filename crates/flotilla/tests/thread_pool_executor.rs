//! `ThreadPoolExecutor`: threads and their names, reuse, saturation, initializers, panics,
//! the bounded queue and the portable `Executor` surface (CPython's `test_thread_pool.py` and
//! the executor tests it shares).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use flotilla::sync::Event;
use flotilla::{Error, Executor, Future, ThreadPoolExecutor};

const GENEROUS: Duration = Duration::from_secs(30);

fn thread_name() -> String {
    thread::current().name().unwrap_or_default().to_owned()
}

/// Releases `gate` when dropped, so that a failing assertion does not leave pool threads
/// blocked (and the pool's `Drop` waiting for them).
struct OpenOnDrop(Arc<Event>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

#[test]
fn threads_are_named_prefix_and_index() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .thread_name_prefix("fetch")
        .build()
        .unwrap();
    // The barrier holds each task until all three run at once, on three threads.
    let barrier = Arc::new(Barrier::new(3));
    let futures: Vec<_> = (0..3)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            pool.spawn(move || {
                barrier.wait();
                thread_name()
            })
        })
        .collect::<Result<_, _>>()
        .unwrap();
    let mut names: Vec<String> = futures.iter().map(|f| f.result().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["fetch_0", "fetch_1", "fetch_2"]);
}

#[test]
fn the_default_prefix_names_the_pool() {
    let pool = ThreadPoolExecutor::new();
    let name = pool.spawn(thread_name).unwrap().result().unwrap();
    assert!(name.starts_with("ThreadPoolExecutor-"), "{name}");
    assert!(name.ends_with("_0"), "{name}");
}

#[test]
fn default_max_workers_is_pythons() {
    let cpus = thread::available_parallelism().map_or(1, usize::from);
    let expected = (cpus + 4).min(32);
    assert_eq!(ThreadPoolExecutor::new().max_workers(), expected);
    assert_eq!(ThreadPoolExecutor::default().max_workers(), expected);
    assert_eq!(
        ThreadPoolExecutor::builder().build().unwrap().max_workers(),
        expected
    );
    let pool = ThreadPoolExecutor::builder()
        .max_workers(7)
        .build()
        .unwrap();
    assert_eq!(pool.max_workers(), 7);
}

#[test]
fn invalid_configurations_are_refused() {
    let err = ThreadPoolExecutor::builder()
        .max_workers(0)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    let err = ThreadPoolExecutor::builder()
        .max_queued(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("max_queued"), "{err}");
}

#[test]
fn no_thread_starts_before_the_first_task() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    assert_eq!(pool.num_threads(), 0);
    pool.spawn(|| ()).unwrap().result().unwrap();
    assert_eq!(pool.num_threads(), 1);
}

#[test]
fn an_idle_thread_is_reused() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(8)
        .build()
        .unwrap();
    let names: HashSet<String> = (0..20)
        .map(|_| pool.spawn(thread_name).unwrap().result().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(pool.num_threads(), 1);
}

#[test]
fn saturation_starts_max_workers_threads_and_no_more() {
    const WORKERS: usize = 3;
    let pool = ThreadPoolExecutor::builder()
        .max_workers(WORKERS)
        .build()
        .unwrap();
    let gate = Arc::new(Event::new());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started) = mpsc::channel();
    let futures: Vec<_> = (0..WORKERS * 3)
        .map(|i| {
            let gate = Arc::clone(&gate);
            let started_tx = started_tx.clone();
            pool.spawn(move || {
                started_tx.send(i).unwrap();
                assert!(gate.wait_timeout(GENEROUS));
                thread_name()
            })
        })
        .collect::<Result<_, _>>()
        .unwrap();
    // All workers are busy: exactly `WORKERS` tasks have started, on `WORKERS` threads.
    let first: HashSet<usize> = (0..WORKERS)
        .map(|_| started.recv_timeout(GENEROUS).unwrap())
        .collect();
    assert_eq!(first, (0..WORKERS).collect());
    assert!(
        started.try_recv().is_err(),
        "a task started on an extra thread"
    );
    assert_eq!(pool.num_threads(), WORKERS);
    assert_eq!(futures.iter().filter(|f| f.running()).count(), WORKERS);
    gate.set();
    let names: HashSet<String> = futures.iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(names.len(), WORKERS);
    assert_eq!(pool.num_threads(), WORKERS);
}

#[test]
fn an_initializer_runs_once_per_thread_before_its_tasks() {
    let inits = Arc::new(AtomicUsize::new(0));
    let i = Arc::clone(&inits);
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(move || {
            i.fetch_add(1, Ordering::SeqCst);
            Ok::<(), String>(())
        })
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let futures: Vec<_> = (0..2)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let inits = Arc::clone(&inits);
            pool.spawn(move || {
                barrier.wait();
                inits.load(Ordering::SeqCst)
            })
        })
        .collect::<Result<_, _>>()
        .unwrap();
    for future in futures {
        assert_eq!(future.result().unwrap(), 2);
    }
    for _ in 0..10 {
        pool.spawn(|| ()).unwrap().result().unwrap();
    }
    assert_eq!(inits.load(Ordering::SeqCst), 2);
}

/// A pool with one worker whose initializer fails (by `Err` or by panicking) once `go` is set.
fn breaking_pool(panics: bool, go: &Arc<Event>) -> ThreadPoolExecutor {
    let go = Arc::clone(go);
    ThreadPoolExecutor::builder()
        .max_workers(1)
        .initializer(move || {
            assert!(go.wait_timeout(GENEROUS));
            if panics {
                panic!("no database either");
            }
            Err("no database")
        })
        .build()
        .unwrap()
}

fn check_broken<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(err @ Error::Broken { .. }) => {
            assert!(err.is_shutdown());
            let message = err.to_string();
            assert!(message.contains("initializer"), "{message}");
            assert!(message.contains("no database"), "{message}");
        }
        other => panic!("expected a broken pool, got {other:?}"),
    }
}

#[test]
fn a_failing_initializer_breaks_the_pool() {
    for panics in [false, true] {
        let go = Arc::new(Event::new());
        let _open = OpenOnDrop(Arc::clone(&go));
        let pool = breaking_pool(panics, &go);
        let ran = Arc::new(AtomicBool::new(false));
        // Queued while the initializer runs.
        let queued: Vec<Future<()>> = (0..3)
            .map(|_| {
                let ran = Arc::clone(&ran);
                pool.spawn(move || ran.store(true, Ordering::SeqCst))
            })
            .collect::<Result<_, _>>()
            .unwrap();
        go.set();
        for future in &queued {
            check_broken(future.result_timeout(GENEROUS));
        }
        assert!(!ran.load(Ordering::SeqCst), "a task ran on a broken pool");
        // Later submits are refused with the same reason.
        check_broken(pool.spawn(|| ()));
        check_broken(pool.submit(no_args, ()));
        let first: Vec<_> = pool.map_fn(|x: u32| x, 0..3).collect();
        assert_eq!(first.len(), 1, "map reports the refusal once");
        check_broken(first.into_iter().next().unwrap());
    }
}

#[test]
fn a_panic_carries_its_message_and_location() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let err = pool
        .spawn(|| -> u8 { panic!("index {} out of range", 7) })
        .unwrap()
        .result()
        .unwrap_err();
    assert!(err.is_panic());
    let panic = err.panic().unwrap();
    assert_eq!(panic.message(), "index 7 out of range");
    let location = panic.location().expect("a location");
    assert!(location.contains("thread_pool_executor.rs:"), "{location}");
    assert!(err.to_string().contains("index 7 out of range"));
    let exception = pool
        .spawn(|| -> u8 { std::panic::panic_any(42_u32) })
        .unwrap()
        .exception()
        .unwrap()
        .unwrap();
    assert_eq!(
        exception.panic().unwrap().message(),
        "<non-string panic payload>"
    );
    // The worker survived both panics.
    assert_eq!(pool.spawn(|| 5).unwrap().result().unwrap(), 5);
    assert_eq!(pool.num_threads(), 1);
}

/// A one-worker pool with a queue of one: `busy` runs, blocked on the returned gate, and then
/// returns what `flag` says; `queued` fills the queue.
fn full_pool(
    block_when_full: bool,
    flag: &Arc<AtomicBool>,
) -> (
    Arc<ThreadPoolExecutor>,
    Arc<Event>,
    Future<bool>,
    Future<u8>,
) {
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(1)
            .max_queued(1)
            .block_when_full(block_when_full)
            .build()
            .unwrap(),
    );
    let gate = Arc::new(Event::new());
    let (started_tx, started) = mpsc::channel();
    let (g, flag) = (Arc::clone(&gate), Arc::clone(flag));
    let busy = pool
        .spawn(move || {
            started_tx.send(()).unwrap();
            assert!(g.wait_timeout(GENEROUS));
            flag.load(Ordering::SeqCst)
        })
        .unwrap();
    started.recv_timeout(GENEROUS).unwrap();
    let queued = pool.spawn(|| 2).unwrap();
    (pool, gate, busy, queued)
}

#[test]
fn a_full_queue_refuses_when_told_not_to_block() {
    let (pool, gate, busy, queued) = full_pool(false, &Arc::new(AtomicBool::new(false)));
    let _open = OpenOnDrop(Arc::clone(&gate));
    let err = pool.spawn(|| 3).unwrap_err();
    assert!(matches!(err, Error::QueueFull), "{err:?}");
    assert!(!err.is_shutdown());
    assert!(matches!(pool.submit(no_args, ()), Err(Error::QueueFull)));
    gate.set();
    assert!(!busy.result().unwrap());
    assert_eq!(queued.result().unwrap(), 2);
    assert_eq!(pool.spawn(|| 4).unwrap().result().unwrap(), 4);
}

#[test]
fn a_full_queue_blocks_the_submitter_until_there_is_room() {
    let submitted = Arc::new(AtomicBool::new(false));
    let (pool, gate, busy, queued) = full_pool(true, &submitted);
    let _open = OpenOnDrop(Arc::clone(&gate));
    let (about_to_submit, ready) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let submitter = {
        let pool = Arc::clone(&pool);
        let submitted = Arc::clone(&submitted);
        thread::spawn(move || {
            about_to_submit.send(()).unwrap();
            let future = pool.spawn(|| 3);
            submitted.store(true, Ordering::SeqCst);
            done_tx.send(()).unwrap();
            future
        })
    };
    ready.recv().unwrap();
    // No room until `busy` finishes and `queued` leaves the queue: the submitter is stuck.
    assert!(
        done.recv_timeout(Duration::from_millis(50)).is_err(),
        "submit returned while the queue was full"
    );
    assert!(!submitted.load(Ordering::SeqCst));
    gate.set();
    // `busy` read the flag after being released, before freeing its thread: still blocked.
    assert!(
        !busy.result().unwrap(),
        "submit returned before there was room"
    );
    let late = submitter.join().unwrap().unwrap();
    assert!(submitted.load(Ordering::SeqCst));
    assert_eq!(queued.result().unwrap(), 2);
    assert_eq!(late.result().unwrap(), 3);
}

#[flotilla::task]
fn square(x: u64) -> u64 {
    x * x
}

#[flotilla::task]
fn describe(name: String, count: u32, loud: bool) -> String {
    let text = format!("{count} {name}");
    if loud { text.to_uppercase() } else { text }
}

#[flotilla::task]
fn no_args() -> String {
    "nothing needed".to_owned()
}

#[flotilla::task]
fn fails(message: String) -> u8 {
    panic!("{message}")
}

/// Written against the trait only, as portable code would be.
fn run_portably(executor: &impl Executor) -> Result<(u64, String, String), Error> {
    let one = executor.submit(square, 12)?;
    let several = executor.submit(describe, ("boats".to_owned(), 3, true))?;
    let none = executor.submit(no_args, ())?;
    Ok((one.result()?, several.result()?, none.result()?))
}

#[test]
fn the_executor_trait_runs_tasks() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let (one, several, none) = run_portably(&pool).unwrap();
    assert_eq!(one, 144);
    assert_eq!(several, "3 BOATS");
    assert_eq!(none, "nothing needed");
    let err = pool
        .submit(fails, "bad input".to_owned())
        .unwrap()
        .result()
        .unwrap_err();
    assert_eq!(err.panic().unwrap().message(), "bad input");
    assert!(
        err.panic()
            .unwrap()
            .location()
            .unwrap()
            .contains("thread_pool_executor.rs")
    );
    assert_eq!(square::call(3), 9);
}

#[test]
fn many_tasks_from_many_threads() {
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(4)
            .build()
            .unwrap(),
    );
    let total = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..4)
        .map(|_| {
            let pool = Arc::clone(&pool);
            let total = Arc::clone(&total);
            thread::spawn(move || {
                let futures: Vec<_> = (0..250)
                    .map(|_| {
                        let total = Arc::clone(&total);
                        pool.spawn(move || total.fetch_add(1, Ordering::Relaxed))
                    })
                    .collect::<Result<_, _>>()
                    .unwrap();
                for future in futures {
                    future.result().unwrap();
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().unwrap();
    }
    assert_eq!(total.load(Ordering::Relaxed), 1000);
    assert!(pool.num_threads() <= 4);
}
