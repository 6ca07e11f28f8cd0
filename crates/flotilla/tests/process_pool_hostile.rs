//! A worker that writes hostile bytes on its socket: the pool reports a clear error for that
//! task, never panics or allocates without bound, and keeps serving the others.

use std::io::Write;

use flotilla::{Executor, ProcessPoolExecutor};

#[path = "support/worker_socket.rs"]
mod worker_socket;

use worker_socket::pool_socket;

/// Writes `bytes` straight onto the worker's socket to the pool, then waits to be killed, as a
/// buggy or compromised worker might.
#[flotilla::task]
fn scribble(bytes: Vec<u8>) -> u8 {
    let _ = pool_socket().write_all(&bytes);
    loop {
        std::thread::park();
    }
}

/// Writes a truncated frame and exits.
#[flotilla::task]
fn truncate(bytes: Vec<u8>) -> u8 {
    let _ = pool_socket().write_all(&bytes);
    std::process::exit(0)
}

#[flotilla::task]
fn double(x: u32) -> u32 {
    x * 2
}

fn check_pool_still_serves(pool: &ProcessPoolExecutor) {
    let doubled: Vec<u32> = pool.map(double, 0..100).collect::<Result<_, _>>().unwrap();
    assert_eq!(doubled, (0..100).map(|x| x * 2).collect::<Vec<_>>());
}

#[test]
fn huge_length_prefix_is_refused() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let err = pool
        .submit(scribble, u32::MAX.to_le_bytes().to_vec())
        .unwrap()
        .result()
        .unwrap_err();
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
    check_pool_still_serves(&pool);
}

#[test]
fn garbage_frame_is_a_codec_error() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let mut frame = 16u32.to_le_bytes().to_vec();
    frame.extend([0xff; 16]);
    let err = pool.submit(scribble, frame).unwrap().result().unwrap_err();
    assert!(matches!(err, flotilla::Error::Codec { .. }), "{err:?}");
    check_pool_still_serves(&pool);
}

#[test]
fn truncated_frame_then_exit_is_a_dead_worker() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let mut frame = 1000u32.to_le_bytes().to_vec();
    frame.extend([1; 10]);
    let err = pool.submit(truncate, frame).unwrap().result().unwrap_err();
    assert!(err.is_worker_died(), "{err:?}");
    check_pool_still_serves(&pool);
}
