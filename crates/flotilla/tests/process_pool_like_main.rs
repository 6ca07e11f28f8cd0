//! A process-pool task runs as it would in `main`: a write to a closed pipe is an error (not a
//! SIGPIPE death), a stack overflow is reported as one, the thread is called `main`, and a
//! program whose standard streams are closed (a daemon) can still start a pool.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flotilla::{Executor, ProcessPoolExecutor, ThreadPoolExecutor};

#[path = "support/scratch.rs"]
mod support_scratch;
use support_scratch::scratch_dir;

/// Writes to a pipe whose reading end is closed and reports the error's kind.
#[flotilla::task]
fn write_to_closed_pipe() -> String {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe(2) just returned these two descriptors, owned by nobody else.
    let (reader, mut writer) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    drop(reader);
    match writer.write_all(b"anyone there?") {
        Ok(()) => "written".to_owned(),
        Err(err) => format!("{:?}", err.kind()),
    }
}

#[test]
fn a_write_to_a_closed_pipe_is_an_error_on_both_pools() {
    let threads = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let on_threads = threads
        .submit(write_to_closed_pipe, ())
        .unwrap()
        .result()
        .unwrap();
    let processes = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let on_processes = processes
        .submit(write_to_closed_pipe, ())
        .unwrap()
        .result()
        .unwrap();
    assert_eq!(on_threads, "BrokenPipe");
    assert_eq!(on_processes, on_threads);
}

/// The calling thread's name, as `std` reports it.
#[flotilla::task]
fn thread_name() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}

#[test]
fn a_task_runs_on_a_thread_named_main() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let name = pool.submit(thread_name, ()).unwrap().result().unwrap();
    assert_eq!(name.as_deref(), Some("main"));
}

/// Recurses until the stack runs out.
#[flotilla::task]
fn overflow(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return frame[0];
    }
    overflow::call(depth + 1) + std::hint::black_box(frame[1])
}

/// Marks this worker as arrived in `dir` and waits (bounded) until `expected` workers have;
/// returns how many it saw.
#[flotilla::task]
fn rendezvous(dir: PathBuf, expected: usize) -> usize {
    std::fs::write(dir.join(std::process::id().to_string()), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let arrived = std::fs::read_dir(&dir).unwrap().count();
        if arrived >= expected || Instant::now() > deadline {
            return arrived;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Checks that `pool` runs `workers` tasks at the same time.
fn assert_full_strength(pool: &ProcessPoolExecutor, workers: usize) {
    let dir = scratch_dir("like-main");
    let futures: Vec<_> = (0..workers)
        .map(|_| pool.submit(rendezvous, (dir.clone(), workers)).unwrap())
        .collect();
    for future in futures {
        assert_eq!(
            future.result().unwrap(),
            workers,
            "not all workers ran at once"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stack_overflow_is_reported_and_the_pool_keeps_its_strength() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let err = pool.submit(overflow, 0).unwrap().result().unwrap_err();
    assert!(err.is_worker_died(), "{err}");
    assert!(err.to_string().contains("overflowed its stack"), "{err}");
    assert_full_strength(&pool, 2);
}

/// Closes this worker's standard streams, as a careless task (or a daemonising library) might.
#[flotilla::task]
fn close_stdio() {
    for fd in 0..3 {
        // SAFETY: closing a descriptor number has no memory-safety preconditions; nothing in
        // this task holds a handle to the standard streams.
        unsafe { libc::close(fd) };
    }
}

#[flotilla::task]
fn chatty(x: u32) -> u32 {
    println!("computing {x}");
    eprintln!("still computing {x}");
    x + 1
}

#[test]
fn a_task_that_closes_stdio_does_not_break_its_worker() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    pool.submit(close_stdio, ()).unwrap().result().unwrap();
    let out: Vec<u32> = pool.map(chatty, 0..50).collect::<Result<_, _>>().unwrap();
    assert_eq!(out, (1..51).collect::<Vec<_>>());
}

/// Set in the re-executed copy of this test that runs with its standard streams closed.
const CLOSED_STDIO_REPORT: &str = "FLOTILLA_TEST_CLOSED_STDIO_REPORT";

/// The body run by the copy with closed standard streams: starts a pool, runs tasks and writes
/// what it saw to `report`.
fn closed_stdio_body(report: &Path) {
    for fd in 0..3 {
        // SAFETY: as in `close_stdio`; this copy of the test only reports through a file.
        unsafe { libc::close(fd) };
    }
    let outcome = (|| -> Result<String, flotilla::Error> {
        let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
        let sum: u32 = pool
            .map(chatty, 0..100)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .sum();
        // A thread-pool task of the same program prints too, into the closed streams.
        println!("the parent prints into a closed stdout");
        let sum_again: u32 = pool
            .map(chatty, 0..100)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .sum();
        Ok(format!("{sum} {sum_again}"))
    })();
    let text = match outcome {
        Ok(text) => text,
        Err(err) => format!("error: {err}"),
    };
    std::fs::write(report, text).unwrap();
}

#[test]
fn a_program_with_closed_stdio_can_start_a_pool() {
    if let Some(report) = std::env::var_os(CLOSED_STDIO_REPORT) {
        closed_stdio_body(Path::new(&report));
        return;
    }
    let dir = scratch_dir("like-main");
    let report = dir.join("report");
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "a_program_with_closed_stdio_can_start_a_pool",
            "--test-threads=1",
        ])
        .env(CLOSED_STDIO_REPORT, &report);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: only close(2), which is async-signal-safe, runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                for fd in 0..3 {
                    libc::close(fd);
                }
                Ok(())
            });
        }
    }
    let status = command.status().unwrap();
    let text = std::fs::read_to_string(&report).unwrap_or_else(|_| "no report".to_owned());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(status.success(), "{status}: {text}");
    let expected = (1..101).sum::<u32>();
    assert_eq!(text, format!("{expected} {expected}"));
}
