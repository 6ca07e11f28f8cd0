//! SHA-384 of a few texts with `map` on a process pool.
//!
//! The Python original hashes texts in worker processes:
//!
//! ```python
//! def sha384(text):
//!     return hashlib.sha384(text.encode()).hexdigest()
//!
//! if __name__ == "__main__":
//!     with ProcessPoolExecutor() as pool:
//!         for text, digest in zip(texts, pool.map(sha384, texts)):
//!             print(digest, repr(text))
//! ```
//!
//! flotilla's version is the same shape. The task is a plain function marked
//! `#[flotilla::task]`; its argument (`String`) and result (`String`) cross the process
//! boundary as serde values, as Python's are pickled. `map` is lazy and yields one `Result`
//! per text in input order, so a failure in one would not hide the others; Python's `map`
//! raises at the first failed item instead. The hashing itself is the `sha2` crate.

use std::error::Error;
use std::fmt::Write as _;

use flotilla::{Executor, ProcessPoolExecutor};
use sha2::{Digest, Sha384};

/// The SHA-384 digest of `text`'s UTF-8 bytes, in lowercase hex like Python's `hexdigest()`.
#[flotilla::task]
fn sha384_hex(text: String) -> String {
    let digest = Sha384::digest(text.as_bytes());
    digest
        .iter()
        .fold(String::with_capacity(96), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The SHA-384 of "abc", from the standard's own examples (FIPS 180-2, appendix D.1).
const ABC_SHA384: &str = "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163\
                          1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7";

fn main() -> Result<(), Box<dyn Error>> {
    let texts = [
        "abc",
        "The quick brown fox jumps over the lazy dog",
        "Beautiful is better than ugly. Explicit is better than implicit.",
    ];
    let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
    let digests = pool
        .map(Sha384HexTask, texts.iter().map(|text| (*text).to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    for (text, digest) in texts.iter().zip(&digests) {
        println!("{digest}  {text:?}");
    }
    assert_eq!(digests[0], ABC_SHA384);
    println!("sha384(\"abc\") matches the FIPS 180-2 test vector");
    Ok(())
}
