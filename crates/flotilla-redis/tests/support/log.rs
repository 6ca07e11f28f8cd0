//! Logs for the tests' worker processes, on request: shared by the tests (through `support`)
//! and by the `flotilla-redis-other-build` worker.

/// With `FLOTILLA_REDIS_LOG` set (an `EnvFilter`, e.g. `flotilla_redis=debug`), this
/// process logs to stderr: how to see what the workers of a failing test did.
pub fn log_to_stderr() {
    if let Ok(filter) = std::env::var("FLOTILLA_REDIS_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
}
