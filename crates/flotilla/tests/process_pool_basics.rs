//! The process pool's everyday behaviour: results, panics, map, and many tasks.

use flotilla::{Executor, ProcessPoolExecutor};

#[flotilla::task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[flotilla::task]
fn pid() -> u32 {
    std::process::id()
}

#[flotilla::task]
fn fails(message: String) -> u8 {
    panic!("{message}")
}

#[test]
fn runs_tasks_in_other_processes() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    assert_eq!(pool.submit(add, (2, 3)).unwrap().result().unwrap(), 5);
    let worker = pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(worker, std::process::id());
}

#[test]
fn a_panic_fails_only_its_task() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let err = pool
        .submit(fails, "bad input".into())
        .unwrap()
        .result()
        .unwrap_err();
    let panic = err.panic().expect("a panic");
    assert_eq!(panic.message(), "bad input");
    assert!(panic.location().unwrap().contains("process_pool_basics.rs"));
    assert_eq!(pool.submit(add, (1, 1)).unwrap().result().unwrap(), 2);
}

#[test]
fn map_with_chunks() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let sums: Vec<u64> = pool
        .map(add, (0..1000).map(|i| (i, 1)))
        .chunksize(64)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sums, (1..=1000).collect::<Vec<_>>());
}
