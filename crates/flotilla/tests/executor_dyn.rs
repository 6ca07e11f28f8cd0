//! `Box<dyn DynExecutor<T>>`: the backend picked at run time, every call doing what the
//! backend's own does.

use flotilla::{DynExecutor, Error, ProcessPoolExecutor, Shutdown, ThreadPoolExecutor};

#[flotilla::task]
fn where_and_square(x: u64) -> (u32, u64) {
    (std::process::id(), x * x)
}

/// Waits until the test lets it go (an item on `gate`), then returns `n`.
#[flotilla::task]
fn held(gate: flotilla::process::Queue<()>, n: u64) -> u64 {
    gate.get().unwrap();
    n
}

fn backends<T: flotilla::Task>() -> Vec<(&'static str, Box<dyn DynExecutor<T>>)> {
    vec![
        (
            "threads",
            Box::new(
                ThreadPoolExecutor::builder()
                    .max_workers(2)
                    .build()
                    .unwrap(),
            ),
        ),
        (
            "processes",
            Box::new(
                ProcessPoolExecutor::builder()
                    .max_workers(2)
                    .build()
                    .unwrap(),
            ),
        ),
    ]
}

#[test]
fn a_thread_pool_and_a_process_pool_run_the_same_task() {
    let me = std::process::id();
    for (name, executor) in backends::<WhereAndSquareTask>() {
        assert_eq!(executor.max_workers(), 2, "{name}");
        let (pid, square) = executor
            .submit(WhereAndSquareTask, 12)
            .unwrap()
            .result()
            .unwrap();
        assert_eq!(square, 144, "{name}");
        assert_eq!(
            pid == me,
            name == "threads",
            "{name} ran in {pid}, this is {me}"
        );
        let squares: Vec<u64> = executor
            .map(WhereAndSquareTask, Box::new(0..10))
            .chunksize(3)
            .map(|r| r.unwrap().1)
            .collect();
        assert_eq!(
            squares,
            (0..10).map(|x| x * x).collect::<Vec<_>>(),
            "{name}"
        );
        executor.shutdown(Shutdown::new());
        let err = executor.submit(WhereAndSquareTask, 1).unwrap_err();
        assert!(err.is_shutdown(), "{name}: {err}");
    }
}

#[test]
fn cancelling_through_the_trait_object_is_the_backends_cancel() {
    for (name, executor) in backends::<HeldTask>() {
        // Two held tasks occupy both workers until the gate opens; a third waits in the queue
        // and is cancelled.
        let gate = flotilla::process::Queue::new();
        let busy: Vec<_> = (0..2)
            .map(|_| executor.submit(HeldTask, (gate.clone(), 200)).unwrap())
            .collect();
        let queued = executor.submit(HeldTask, (gate.clone(), 1)).unwrap();
        assert!(queued.cancel(), "{name}");
        assert!(matches!(queued.result(), Err(Error::Cancelled)), "{name}");
        gate.put(()).unwrap();
        gate.put(()).unwrap();
        for fut in busy {
            assert_eq!(fut.result().unwrap(), 200, "{name}");
        }
    }
}
