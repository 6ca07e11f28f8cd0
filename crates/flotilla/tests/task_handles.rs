//! `#[flotilla::task]` leaves the function a plain function, callable as itself (recursion
//! included), and declares its task handle beside it (`fib` → `FibTask`): the handle runs
//! the same function on a thread pool and in worker processes, under a registry name that is
//! the function's, whatever the handle is called.

use flotilla::{Executor, ProcessPoolExecutor, Task, ThreadPoolExecutor};

/// Calls itself directly: the body sees the plain function.
#[flotilla::task]
fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

#[flotilla::task]
fn resize_image(path: String, width: u32) -> String {
    format!("{path}@{width}")
}

/// A handle name picked by hand: the registry name stays the function's.
#[flotilla::task(handle = Thumbnail)]
fn make_thumbnail(width: u32) -> u32 {
    width / 2
}

mod renamed {
    // A crate that renames the `flotilla` dependency names it with `crate = path`.
    use flotilla as fl;

    #[fl::task(crate = fl)]
    pub(crate) fn triple(x: u32) -> u32 {
        x * 3
    }
}

fn pool() -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

#[test]
fn the_function_is_a_plain_function() {
    assert_eq!(fib(3), 2);
    assert_eq!(fib(10), 55);
    assert_eq!(resize_image("a.jpg".into(), 200), "a.jpg@200");
    // A function item, usable wherever a function is: no closure needed.
    let fibs: Vec<u64> = (0..6).map(fib).collect();
    assert_eq!(fibs, [0, 1, 1, 2, 3, 5]);
    let as_pointer: fn(u64) -> u64 = fib;
    assert_eq!(as_pointer(7), 13);
    assert_eq!(renamed::triple(2), 6);
}

#[test]
fn the_handle_runs_the_function_on_a_thread_pool() {
    let threads = ThreadPoolExecutor::new();
    assert_eq!(threads.submit(FibTask, 20).unwrap().result().unwrap(), 6765);
    assert_eq!(FibTask.run(12), fib(12));
    assert_eq!(
        threads
            .submit(ResizeImageTask, ("b.png".into(), 64))
            .unwrap()
            .result()
            .unwrap(),
        "b.png@64"
    );
}

#[test]
fn the_handle_runs_the_function_in_a_worker_process() {
    let pool = pool();
    assert_eq!(pool.submit(FibTask, 20).unwrap().result().unwrap(), 6765);
    let fibs: Vec<u64> = pool.map(FibTask, 0..8).collect::<Result<_, _>>().unwrap();
    assert_eq!(fibs, [0, 1, 1, 2, 3, 5, 8, 13]);
    assert_eq!(pool.submit(Thumbnail, 300).unwrap().result().unwrap(), 150);
    assert_eq!(
        pool.submit(renamed::TripleTask, 5)
            .unwrap()
            .result()
            .unwrap(),
        15
    );
}

#[test]
fn a_task_in_a_function_body_is_both_too() {
    #[flotilla::task]
    fn countdown(n: u32) -> u32 {
        if n == 0 { 0 } else { countdown(n - 1) }
    }
    assert_eq!(countdown(3), 0);
    let pool = pool();
    assert_eq!(pool.submit(CountdownTask, 4).unwrap().result().unwrap(), 0);
}

#[test]
fn registry_names_are_the_functions_not_the_handles() {
    assert_eq!(FibTask::NAME, "task_handles::fib");
    assert_eq!(ResizeImageTask::NAME, "task_handles::resize_image");
    assert_eq!(Thumbnail::NAME, "task_handles::make_thumbnail");
    assert_eq!(renamed::TripleTask::NAME, "task_handles::renamed::triple");
    assert_eq!(
        flotilla::backend::registered_signature(FibTask::NAME),
        Some(flotilla::backend::signature::<FibTask>())
    );
}
