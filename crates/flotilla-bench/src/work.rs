//! The work every system runs, defined once so that it is the same everywhere.
//!
//! [`work`] is the per-item CPU work of `thread-map` (about 0.2 µs on the 2-core machines this
//! project runs on) and [`fib`] the task of `cpu-scaling`. `python/bench.py` has the same two
//! functions as pure-Python loops, with the constants passed on its command line, and its
//! `thread-map` answer carries a checksum that [`checksum`] must reproduce: the Python row does
//! the same work, not merely similar work.

use std::hint::black_box;

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
}
