//! Fresh scratch directories for tests whose processes talk through files.

#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A new empty directory under the system's temporary directory, unique to this process and
/// call; the test removes it when done.
pub(crate) fn scratch_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("flotilla-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
