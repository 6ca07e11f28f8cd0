//! The primes example from the `concurrent.futures` documentation.
//!
//! The Python original:
//!
//! ```python
//! PRIMES = [112272535095293, 112582705942171, 112272535095293,
//!           115280095190773, 115797848077099, 1099726899285419]
//!
//! def is_prime(n):
//!     if n < 2:
//!         return False
//!     if n == 2:
//!         return True
//!     if n % 2 == 0:
//!         return False
//!     sqrt_n = int(math.floor(math.sqrt(n)))
//!     for i in range(3, sqrt_n + 1, 2):
//!         if n % i == 0:
//!             return False
//!     return True
//!
//! def main():
//!     with concurrent.futures.ProcessPoolExecutor() as executor:
//!         for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
//!             print('%d is prime: %s' % (number, prime))
//!
//! if __name__ == '__main__':
//!     main()
//! ```
//!
//! Here `is_prime` is a `#[flotilla::task]`, `main` needs no `__name__` guard (worker
//! processes are this program re-executed and caught before `main`), and `map` takes the
//! `chunksize` Python's `map` also accepts: two numbers go to a worker per round trip. The
//! results come back in input order, each as its own `Result`. `u64::isqrt` is exact where
//! `math.floor(math.sqrt(n))` goes through a float.

use std::error::Error;

use flotilla::{Executor, ProcessPoolExecutor};

const PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

/// Trial division by odd numbers up to the square root, as in the Python docs.
#[flotilla::task]
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n == 2 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    (3..=n.isqrt()).step_by(2).all(|i| !n.is_multiple_of(i))
}

/// Python's `str(bool)`.
fn python_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

fn main() -> Result<(), Box<dyn Error>> {
    let executor = ProcessPoolExecutor::new();
    let results = executor.map(IsPrimeTask, PRIMES).chunksize(2);
    let mut verdicts = Vec::new();
    for (number, prime) in PRIMES.iter().zip(results) {
        let prime = prime?;
        println!("{number} is prime: {}", python_bool(prime));
        verdicts.push(prime);
    }
    assert_eq!(verdicts, [true, true, true, true, true, false]);
    Ok(())
}
