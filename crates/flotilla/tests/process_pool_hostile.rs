//! A worker that writes hostile bytes on its socket: the pool reports a clear error for that
//! task, never panics or allocates without bound, and keeps serving the others.

use std::io::Write;

use flotilla::{Executor, ProcessPoolExecutor};

/// The worker's socket to the pool: the only socket a fresh worker has open.
fn pool_socket() -> std::fs::File {
    use std::os::fd::FromRawFd;
    let fd = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            let fd: i32 = entry.file_name().to_str()?.parse().ok()?;
            target.to_str()?.starts_with("socket:").then_some(fd)
        })
        .next()
        .expect("a worker has a socket to its pool");
    // SAFETY: the descriptor is open (just listed) and this task is the only code using it
    // from now on: it writes to it and then never returns to the worker loop.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

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
        .result(None)
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
    let err = pool
        .submit(scribble, frame)
        .unwrap()
        .result(None)
        .unwrap_err();
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
    let err = pool
        .submit(truncate, frame)
        .unwrap()
        .result(None)
        .unwrap_err();
    assert!(err.is_worker_died(), "{err:?}");
    check_pool_still_serves(&pool);
}
