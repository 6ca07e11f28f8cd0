//! The work every system runs, defined once so that it is the same everywhere.
//!
//! [`work`] is the per-item CPU work of `thread-map` (about 0.2 µs on the 2-core machines this
//! project runs on) and [`fib`] the task of `cpu-scaling`. `python/bench.py` has the same two
//! functions as pure-Python loops, with the constants passed on its command line, and its
//! `thread-map` answer carries a checksum that [`checksum`] must reproduce: the Python row does
//! the same work, not merely similar work.
//!
//! The process scenarios need their work as `#[flotilla::task]` functions, which worker
//! processes find by name: [`noop`], [`double`], [`fib_task`], [`echo_bytes`], [`echo_vec`] and
//! [`worker_pid`], and `shared-counter`'s processes run [`count_up`]. Workers are this very program re-executed (flotilla catches them before
//! `main`), so defining the tasks here is all it takes.

use std::hint::black_box;

use serde_bytes::ByteBuf;

/// Rounds of [`work`] per item; passed to the Python script as `--rounds`.
pub(crate) const WORK_ROUNDS: u32 = 128;

/// The multiplier of [`work`]'s linear congruential step (PCG's).
pub(crate) const WORK_MUL: u64 = 0x5851_F42D_4C95_7F2D;

/// The increment of [`work`]'s linear congruential step.
pub(crate) const WORK_ADD: u64 = 0x1405_7B7E_F767_814F;

/// About 0.2 µs of CPU work on one input: [`WORK_ROUNDS`] dependent multiply-add-xorshift
/// steps. `black_box` keeps the compiler from folding or vectorising the loop.
pub(crate) fn work(x: u64) -> u64 {
    let mut acc = x;
    for _ in 0..WORK_ROUNDS {
        acc = black_box(acc.wrapping_mul(WORK_MUL).wrapping_add(WORK_ADD));
        acc ^= acc >> 29;
    }
    acc
}

/// The naive, exponential Fibonacci: a task of pure CPU work with no memory traffic.
pub(crate) fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(black_box(n - 1)) + fib(n - 2)
    }
}

/// The wrapping sum of [`work`] over `0..items`, as `python/bench.py` reports it.
pub(crate) fn checksum(items: u64) -> u64 {
    (0..items).map(work).fold(0, u64::wrapping_add)
}

/// A no-op task: hands its argument back (`process-overhead`, `process-roundtrip`,
/// `process-startup`).
#[flotilla::task]
pub(crate) fn noop(x: u64) -> u64 {
    x
}

/// The trivial function of `process-map-chunked`: `x * 2`.
#[flotilla::task]
pub(crate) fn double(x: u64) -> u64 {
    x.wrapping_mul(2)
}

/// [`fib`] as a task, for `cpu-scaling`'s process row; its handle is `FibTask`.
#[flotilla::task(handle = FibTask)]
pub(crate) fn fib_task(n: u32) -> u64 {
    fib(n)
}

/// Sends a byte buffer back (`process-large-arg`). `ByteBuf` serializes as one byte string,
/// so serde hands the codec the whole slice at once: the fast path for bytes.
#[flotilla::task]
pub(crate) fn echo_bytes(bytes: ByteBuf) -> ByteBuf {
    bytes
}

/// The same as [`echo_bytes`] with a plain `Vec<u8>`, which serde treats as a sequence of
/// `u8`s: every byte is encoded and decoded on its own (the slow path, reported as a row of
/// its own).
#[flotilla::task]
pub(crate) fn echo_vec(bytes: Vec<u8>) -> Vec<u8> {
    bytes
}

/// The worker's process id (`process-idle-memory` reads the worker's `/proc/<pid>/status`).
#[flotilla::task]
pub(crate) fn worker_pid() -> u32 {
    std::process::id()
}

/// The wrapping sum of [`double`] over `0..items`, as `python/bench.py` reports it for
/// `process-map-chunked`.
pub(crate) fn double_checksum(items: u64) -> u64 {
    (0..items).map(double).fold(0, u64::wrapping_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fib_is_fibonacci() {
        assert_eq!(
            (0..10).map(fib).collect::<Vec<_>>(),
            [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
        );
    }

    #[test]
    fn work_mixes_its_input() {
        assert_ne!(work(0), work(1));
        assert_eq!(checksum(2), work(0).wrapping_add(work(1)));
    }

    #[test]
    fn tasks_called_directly() {
        assert_eq!(noop(7), 7);
        assert_eq!(double(21), 42);
        assert_eq!(fib_task(10), 55);
        assert_eq!(echo_bytes(ByteBuf::from(vec![1, 2])).len(), 2);
        assert_eq!(echo_vec(vec![3]), [3]);
        assert_eq!(worker_pid(), std::process::id());
        assert_eq!(double_checksum(4), 12);
    }
}

/// `shared-counter`'s process: adds 1 to `counter` `n` times, each time under its lock.
#[flotilla::task]
pub(crate) fn count_up(counter: flotilla::shared::Value<u64>, n: u64) {
    for _ in 0..n {
        *counter.get_lock().expect("no counting process dies") += 1;
    }
}
