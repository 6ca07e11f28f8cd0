//! Shared helpers for the examples.
//!
//! The examples themselves live beside `Cargo.toml` (`hello_threads.rs`, `fetch_pages.rs`, ...),
//! one per scenario of the Python concurrency course; run one with
//! `cargo run -p flotilla-examples --example NAME`.

/// The name of the calling thread, or `"<unnamed>"` for a thread started without one.
///
/// # Examples
///
/// ```
/// let name = std::thread::Builder::new()
///     .name("worker-1".into())
///     .spawn(flotilla_examples::thread_name)
///     .unwrap()
///     .join()
///     .unwrap();
/// assert_eq!(name, "worker-1");
/// ```
pub fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}
