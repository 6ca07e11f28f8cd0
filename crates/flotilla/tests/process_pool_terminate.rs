//! `ProcessPoolExecutor::terminate_workers()` and `kill_workers()`, Python 3.14's methods:
//! running tasks are stopped by the signal (and their futures say so), queued ones are
//! cancelled, the pool refuses new work, and dropping it afterwards does not hang. A task that
//! handles `SIGTERM` decides for itself; `kill_workers` stops it anyway.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flotilla::{Error, Executor, Future, ProcessPoolExecutor, Shutdown, WorkerExit};

#[path = "support/scratch.rs"]
mod scratch;
#[path = "support/watchdog.rs"]
mod watchdog;

/// Fails a case that has not finished within this time: a hang, not slowness.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Blocks until its worker is stopped from outside (bounded, so a stray worker cannot run for
/// ever).
#[flotilla::task]
fn forever() -> u64 {
    std::thread::sleep(Duration::from_secs(120));
    0
}

static GOT_SIGTERM: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    GOT_SIGTERM.store(true, Ordering::SeqCst);
}

/// Installs a `SIGTERM` handler, tells the test so through the FIFO at `ready`, then waits
/// (at most a minute) for the signal and returns whether it came.
#[flotilla::task]
fn handles_sigterm(ready: PathBuf) -> bool {
    // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic, which is
    // async-signal-safe, and it stays installed for the life of this worker process.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
    if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&ready) {
        let _ = fifo.write_all(b"r");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !GOT_SIGTERM.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    GOT_SIGTERM.load(Ordering::SeqCst)
}

/// Ignores `SIGTERM`, tells the test so through the FIFO at `ready`, then returns 7 once the
/// test writes a byte to the FIFO at `gate`.
#[flotilla::task]
fn ignores_sigterm(ready: PathBuf, gate: PathBuf) -> u32 {
    // SAFETY: setting a signal's disposition to SIG_IGN has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&ready) {
        let _ = fifo.write_all(b"r");
    }
    let mut byte = [0u8; 1];
    let _ = std::fs::File::open(&gate).and_then(|mut fifo| fifo.read_exact(&mut byte));
    7
}

fn pool(workers: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

/// Waits until each future's task is running (handed to a worker); bounded by the watchdog.
fn until_running<T>(futures: &[Future<T>]) {
    for fut in futures {
        while !fut.running() {
            std::thread::yield_now();
        }
    }
}

/// A FIFO in a fresh scratch directory.
fn fifo(tag: &str) -> PathBuf {
    let path = scratch::scratch_dir(tag).join("ready");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: the path is a valid NUL-terminated string that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    path
}

/// Blocks until the task at the other end of `path` has written its byte.
fn wait_ready(path: &Path) {
    let mut byte = [0u8; 1];
    std::fs::File::open(path)
        .unwrap()
        .read_exact(&mut byte)
        .unwrap();
}

/// The exit of the worker behind `err`, which must have been killed by `signal`.
fn died_by(err: &Error, signal: i32) -> &WorkerExit {
    let Error::WorkerDied(exit) = err else {
        panic!("expected WorkerDied, got {err:?}");
    };
    assert_eq!(exit.exitcode(), Some(-signal), "{err}");
    exit
}

fn refuses_new_work(pool: &ProcessPoolExecutor) {
    assert!(pool.submit(ForeverTask, ()).unwrap_err().is_shutdown());
    let mapped: Vec<_> = pool.map(ForeverTask, [(), ()]).collect();
    assert!(
        mapped
            .iter()
            .all(|r| r.as_ref().is_err_and(Error::is_shutdown)),
        "{mapped:?}"
    );
}

#[test]
fn terminate_workers_fails_running_tasks_cancels_queued_and_refuses_new_work() {
    watchdog::watchdog(WATCHDOG, || {
        let pool = pool(2);
        let running: Vec<_> = (0..2)
            .map(|_| pool.submit(ForeverTask, ()).unwrap())
            .collect();
        let queued: Vec<_> = (0..3)
            .map(|_| pool.submit(ForeverTask, ()).unwrap())
            .collect();
        until_running(&running);
        pool.terminate_workers();
        for fut in running {
            let err = fut.result().unwrap_err();
            let exit = died_by(&err, libc::SIGTERM);
            assert!(err.to_string().contains("SIGTERM"), "{err}");
            assert_eq!(
                exit.cause(),
                Some("terminated by ProcessPoolExecutor::terminate_workers()")
            );
        }
        for fut in queued {
            assert!(fut.cancelled());
            assert!(fut.result().unwrap_err().is_cancelled());
        }
        refuses_new_work(&pool);
        // Twice is harmless, and so is dropping the pool.
        pool.terminate_workers();
        drop(pool);
    });
}

#[test]
fn shutdown_kill_workers_cancels_every_queued_task_before_it_kills() {
    // Killing before cancelling let a slot whose worker had just died take a queued task,
    // which then failed with `WorkerDied` instead of `Cancelled`: a race, so many rounds with
    // a long queue.
    watchdog::watchdog(WATCHDOG * 5, || {
        for round in 0..20 {
            let pool = pool(2);
            let running: Vec<_> = (0..2)
                .map(|_| pool.submit(ForeverTask, ()).unwrap())
                .collect();
            until_running(&running);
            let queued: Vec<_> = (0..200)
                .map(|_| pool.submit(ForeverTask, ()).unwrap())
                .collect();
            pool.shutdown(Shutdown::new().kill_workers(true));
            for fut in running {
                let err = fut.result().unwrap_err();
                assert!(err.is_worker_died(), "round {round}: {err:?}");
            }
            for (n, fut) in queued.into_iter().enumerate() {
                let err = fut.result().unwrap_err();
                assert!(
                    err.is_cancelled(),
                    "round {round}, queued task {n}: {err:?}"
                );
            }
            refuses_new_work(&pool);
        }
    });
}

#[test]
fn terminate_workers_lets_a_task_that_handles_sigterm_finish() {
    watchdog::watchdog(WATCHDOG, || {
        let pool = pool(1);
        let ready = fifo("terminate-handled");
        let fut = pool.submit(HandlesSigtermTask, ready.clone()).unwrap();
        let queued = pool.submit(ForeverTask, ()).unwrap();
        wait_ready(&ready);
        pool.terminate_workers();
        // The signal reached the task (not SIGKILL, not its supervisor's group kill), and a task
        // that survives it completes as usual.
        assert!(fut.result().unwrap());
        assert!(queued.cancelled());
        refuses_new_work(&pool);
        drop(pool);
        let _ = std::fs::remove_dir_all(ready.parent().unwrap());
    });
}

#[test]
fn kill_workers_stops_even_a_task_that_handles_sigterm() {
    watchdog::watchdog(WATCHDOG, || {
        let pool = pool(2);
        let ready = fifo("kill-handled");
        let handled = pool.submit(HandlesSigtermTask, ready.clone()).unwrap();
        let plain = pool.submit(ForeverTask, ()).unwrap();
        let queued = pool.submit(ForeverTask, ()).unwrap();
        wait_ready(&ready);
        until_running(std::slice::from_ref(&plain));
        pool.kill_workers();
        for err in [
            handled.result().map(|_| ()).unwrap_err(),
            plain.result().map(|_| ()).unwrap_err(),
        ] {
            assert_eq!(died_by(&err, libc::SIGKILL).cause(), None, "{err}");
        }
        assert!(queued.cancelled());
        refuses_new_work(&pool);
        drop(pool);
        let _ = std::fs::remove_dir_all(ready.parent().unwrap());
    });
}

#[test]
fn terminate_workers_on_an_idle_or_unstarted_pool_just_shuts_it_down() {
    watchdog::watchdog(WATCHDOG, || {
        let never_started = pool(2);
        never_started.terminate_workers();
        refuses_new_work(&never_started);

        let idle = pool(2);
        assert_eq!(idle.submit(ForeverNotTask, 7).unwrap().result().unwrap(), 7);
        idle.terminate_workers();
        refuses_new_work(&idle);
        drop(idle);
    });
}

#[flotilla::task]
fn forever_not(x: u64) -> u64 {
    x
}

#[test]
fn dropping_the_pool_after_terminate_workers_does_not_wait_for_a_task_that_ignores_sigterm() {
    watchdog::watchdog(WATCHDOG, || {
        let pool = pool(1);
        let ready = fifo("terminate-ignored");
        let gate = ready.with_file_name("gate");
        let c_gate = std::ffi::CString::new(gate.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: the path is a valid NUL-terminated string that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c_gate.as_ptr(), 0o600) }, 0);
        let fut = pool
            .submit(IgnoresSigtermTask, (ready.clone(), gate.clone()))
            .unwrap();
        wait_ready(&ready);
        pool.terminate_workers();
        drop(pool); // returns at once: the task is still blocked at the gate
        assert!(!fut.done());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&gate)
            .and_then(|mut fifo| fifo.write_all(b"g"))
            .unwrap();
        // SIGTERM was ignored: the task ran to its end and its future has its value.
        assert_eq!(fut.result().unwrap(), 7);
        let _ = std::fs::remove_dir_all(ready.parent().unwrap());
    });
}
