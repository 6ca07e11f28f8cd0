//! Internal tasks (flotilla's manager server, tasks marked `#[flotilla::task(internal)]`)
//! cannot be started by name from outside the program: `submit_encoded`, the entry point of
//! backends that receive task names over the network, and `registered_signature`, which a
//! cluster worker consults, do not find them; code that names the task still runs it.

use flotilla::backend::{self, Shape};
use flotilla::{Executor, ProcessPoolExecutor, Task};

/// A task only this program's own code may start.
#[flotilla::task(internal)]
fn rotate_keys(generation: u32) -> u32 {
    generation + 1
}

#[flotilla::task]
fn public_double(x: u32) -> u32 {
    x * 2
}

const MANAGER_SERVER: &str = "flotilla_manager::server::serve_manager";

fn pool() -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

#[test]
fn the_manager_server_cannot_be_started_by_name() {
    let pool = pool();
    for shape in [Shape::One, Shape::Chunk] {
        let err = pool
            .submit_encoded(MANAGER_SERVER, shape, Vec::new(), None)
            .map(drop)
            .unwrap_err();
        assert!(err.to_string().contains("no task named"), "{err}");
    }
    assert_eq!(backend::registered_signature(MANAGER_SERVER), None);
}

#[test]
fn an_internal_task_is_unreachable_by_name_but_runs_when_named_in_code() {
    let pool = pool();
    let args = backend::encode(&1u32).unwrap();
    let err = pool
        .submit_encoded(rotate_keys::NAME, Shape::One, args, None)
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains("no task named"), "{err}");
    assert_eq!(backend::registered_signature(rotate_keys::NAME), None);
    assert_eq!(pool.submit(rotate_keys, 1).unwrap().result().unwrap(), 2);
}

#[test]
fn a_public_task_is_reachable_by_name() {
    let pool = pool();
    let args = backend::encode(&21u32).unwrap();
    let out = pool
        .submit_encoded(public_double::NAME, Shape::One, args, None)
        .unwrap()
        .result()
        .unwrap();
    assert_eq!(backend::decode::<u32>(&out).unwrap(), 42);
    assert_eq!(
        backend::registered_signature(public_double::NAME),
        Some(backend::signature::<public_double>())
    );
}
