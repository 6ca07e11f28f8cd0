//! Inside a pool worker: the socket to the pool, for tasks that play a hostile worker.

#![allow(dead_code)] // each test file uses its own subset

/// The worker's socket to the pool: the only socket a fresh worker has open.
pub(crate) fn pool_socket() -> std::fs::File {
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
    // SAFETY: the descriptor is open (just listed), and the calling task is the only code
    // using it from now on: it writes to it and then never returns to the worker's loop.
    unsafe { std::fs::File::from_raw_fd(fd) }
}
