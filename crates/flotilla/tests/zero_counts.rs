//! Zero, passed to every constructor and builder that takes a count or a size (the rule is in
//! the crate docs, "Counts and zero"): a count that must be positive is refused once, with
//! [`Error::InvalidConfig`], where the object is built; where Python gives zero a meaning and
//! it makes sense here, flotilla keeps it (a semaphore of zero permits, an empty array).

use flotilla::manager::Manager;
use flotilla::shared::{Array, RawArray};
use flotilla::{Error, Executor, ProcessPoolExecutor, ThreadPoolExecutor};

fn invalid<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::InvalidConfig { reason }) => reason,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn thread_pool_max_workers_max_queued_and_stack_size() {
    let reason = invalid(ThreadPoolExecutor::builder().max_workers(0).build());
    assert!(reason.contains("max_workers"), "{reason}");
    let reason = invalid(ThreadPoolExecutor::builder().max_queued(0).build());
    assert!(reason.contains("max_queued"), "{reason}");
    let reason = invalid(ThreadPoolExecutor::builder().stack_size(0).build());
    assert!(reason.contains("stack_size"), "{reason}");
}

#[test]
fn process_pool_max_workers_and_max_tasks_per_child() {
    let reason = invalid(ProcessPoolExecutor::builder().max_workers(0).build());
    assert!(reason.contains("max_workers"), "{reason}");
    let reason = invalid(
        ProcessPoolExecutor::builder()
            .max_tasks_per_child(0)
            .build(),
    );
    assert!(reason.contains("max_tasks_per_child"), "{reason}");
}

#[flotilla::task]
fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn map_chunksize_and_buffer_on_every_backend() {
    let threads = ThreadPoolExecutor::new();
    let processes = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    for results in [
        threads
            .map(DoubleTask, 0..10)
            .chunksize(0)
            .collect::<Vec<_>>(),
        threads.map(DoubleTask, 0..10).buffer(0).collect(),
        threads.map_fn(|x: u32| x, 0..10).chunksize(0).collect(),
        processes.map(DoubleTask, 0..10).chunksize(0).collect(),
        processes.map(DoubleTask, 0..10).buffer(0).collect(),
    ] {
        assert!(
            matches!(results[..], [Err(Error::InvalidConfig { .. })]),
            "{results:?}"
        );
    }
}

#[test]
fn map_refuses_zero_set_after_results_were_taken() {
    let threads = ThreadPoolExecutor::new();
    let mut map = threads.map(DoubleTask, 0..10);
    assert_eq!(map.next().unwrap().unwrap(), 0);
    let mut map = map.chunksize(0);
    assert!(matches!(map.next(), Some(Err(Error::InvalidConfig { .. }))));
    assert!(map.next().is_none());
}

#[test]
fn shared_barrier_refuses_zero_parties() {
    let reason = invalid(flotilla::shared::Barrier::new(0));
    assert!(reason.contains("parties"), "{reason}");
}

#[test]
fn semaphores_of_zero_permits_are_python_semaphores() {
    // Python's Semaphore(0): every acquire waits for a release.
    let sem = flotilla::sync::Semaphore::new(0);
    assert!(sem.try_acquire().is_none());
    let shared = flotilla::shared::Semaphore::new(0).unwrap();
    assert!(!shared.try_acquire());
}

#[test]
fn shared_arrays_of_zero_elements_are_empty() {
    // Python's Array('i', 0) is an empty array, not an error.
    let array = Array::<u32>::new(0).unwrap();
    assert!(array.is_empty());
    assert_eq!(array.to_vec().unwrap(), Vec::<u32>::new());
    let raw = RawArray::<u32>::new(0).unwrap();
    assert!(raw.is_empty());
    assert_eq!(raw.to_vec(), Vec::<u32>::new());
}

#[test]
fn manager_queue_and_barrier() {
    let manager = Manager::new().unwrap();
    // `Some(0)` is refused; Python's maxsize 0 ("unbounded") is `None` here.
    let reason = invalid(manager.queue::<u32>(Some(0)));
    assert!(reason.contains("at least one"), "{reason}");
    assert!(manager.queue::<u32>(None).is_ok());
    assert!(manager.barrier(0).is_err());
    let sem = manager.semaphore(0).unwrap();
    drop(sem);
}

#[test]
fn sync_barrier_refuses_zero_parties() {
    let reason = invalid(flotilla::sync::Barrier::new(0));
    assert!(reason.contains("at least one party"), "{reason}");
    assert_eq!(flotilla::sync::Barrier::new(1).unwrap().wait(), Ok(0));
}

#[test]
fn thread_queues_refuse_a_zero_bound() {
    // Python's Queue(maxsize=0) is unbounded; flotilla refuses `bounded(0)` rather than guess
    // and spells unbounded `new()`.
    use flotilla::sync::{LifoQueue, PriorityQueue, Queue};
    invalid(Queue::<u32>::bounded(0));
    invalid(LifoQueue::<u32>::bounded(0));
    invalid(PriorityQueue::<u32>::bounded(0));
    assert_eq!(Queue::<u32>::new().maxsize(), None);
    assert_eq!(Queue::<u32>::bounded(1).unwrap().maxsize(), Some(1));
}

#[test]
fn process_queues_refuse_a_zero_bound() {
    use flotilla::process::{JoinableQueue, Queue};
    invalid(Queue::<u32>::bounded(0));
    invalid(JoinableQueue::<u32>::bounded(0));
    let q = Queue::<u32>::bounded(1).unwrap();
    q.put(1).unwrap();
    assert!(q.try_put(2).unwrap_err().is_full());
}
