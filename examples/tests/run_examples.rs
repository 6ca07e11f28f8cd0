//! Runs every example binary and checks that it exits 0 and prints its key line.
//!
//! `cargo test` builds the examples before the tests; they sit in `target/<profile>/examples/`,
//! next to the `deps/` folder holding this test binary. If one is missing (the test was run
//! with `--test run_examples`, which builds no examples), the failure says how to build them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use wait_timeout::ChildExt;

/// Every example, with a line (or part of one) its output must contain. The test also checks
/// that this list matches the `[[example]]` entries of `Cargo.toml`.
const EXAMPLES: &[(&str, &str)] = &[
    ("hello_threads", "hello from task 3 on hello_"),
    ("bank_race", "with a Mutex total: 40000 (expected 40000)"),
    ("semaphore_cap", "(semaphore of 3, 5 workers)"),
    ("event_release", "released 3 of 3 threads"),
    ("priority_condvar", "consumed 20 of 20 items"),
    (
        "producer_consumer",
        "queue.join() returned: every item is done",
    ),
    (
        "deadlock",
        "global lock order: 10000 transfers completed, no deadlock",
    ),
    ("reentrant_monitor", "total stock conserved: 100"),
    (
        "thread_pool_template",
        "map(sum_of_squares, 1..=8) = [1, 5, 14, 30, 55, 91, 140, 204]",
    ),
    ("fetch_pages", "/missing  failed: http://127.0.0.1:"),
    (
        "done_callbacks",
        "sensor: failed: task panicked: sensor offline",
    ),
    ("tokio_interop", "wait(FIRST_COMPLETED): 1 done, 2 pending"),
    (
        "round_robin",
        "scheduler: all 3 tasks finished after 10 steps",
    ),
    ("shell_command", "return code: 3"),
    (
        "gil_demo",
        "all three runs agree: fib(30) = 832040, 8 times each",
    ),
    (
        "sha384_map",
        "sha384(\"abc\") matches the FIPS 180-2 test vector",
    ),
    ("primes", "1099726899285419 is prime: False"),
    (
        "redis_primes",
        "1099726899285419 is prime: False (on Redis)",
    ),
    ("segfault_among_healthy", "healthy tasks: 8 of 8 returned"),
    ("fib_server", "20 of 20 clients got the right answer"),
    (
        "resized_bytes_counter",
        "shared total equals the serial sum",
    ),
    (
        "shared_array",
        "4 processes filled 20 squares; their sum is 2470",
    ),
    ("hello_processes", "all 4 processes exited with code 0"),
    (
        "parmap",
        "parmap(self_power, 1..=8) = [1, 4, 27, 256, 3125, 46656, 823543, 16777216]",
    ),
    ("pipe_ping_pong", "ping-pong: 1000 rounds, counter = 2000"),
    (
        "process_producer_consumer",
        "consumed 300 of 300 items across 3 consumer processes, none lost",
    ),
    (
        "kill_runaways",
        "all 10 runaways are dead: 7 by SIGTERM (-15), 3 by SIGKILL (-9)",
    ),
    (
        "manager_dict",
        "manager dict: 4 processes wrote 24 entries, none lost",
    ),
    (
        "remote_manager",
        "a wrong key is refused before any request is read",
    ),
    ("tour", "tour complete"),
];

/// Generous: each example finishes in well under two seconds on an idle machine.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `target/<profile>/examples`, found from this test binary's own path.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let deps = exe
        .parent()
        .expect("the test binary is in target/<profile>/deps");
    let profile = deps.parent().expect("deps is in target/<profile>");
    profile.join("examples")
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Reads a child's pipe to the end on its own thread, so a full pipe never blocks the child.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

fn run(binary: &Path) -> Run {
    let mut child = Command::new(binary)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let status = match child.wait_timeout(TIMEOUT).expect("can wait for the child") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish within {TIMEOUT:?}; killed it. Output so far:\n{}",
                binary.display(),
                stdout.join().unwrap_or_default()
            );
        }
    };
    Run {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

#[test]
fn every_example_runs_and_prints_its_key_line() {
    let dir = examples_dir();
    let missing: Vec<&str> = EXAMPLES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !dir.join(name).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "example binaries {missing:?} are missing from {}; build them with \
         `cargo build -p flotilla-examples --examples` (plain `cargo test -p flotilla-examples` \
         does it)",
        dir.display()
    );

    let mut failures = Vec::new();
    for (name, key_line) in EXAMPLES {
        let output = run(&dir.join(name));
        let ok = output.code == Some(0) && output.stdout.contains(key_line);
        println!(
            "{name}: exit {:?}, {}",
            output.code,
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failures.push(format!(
                "{name}: exit code {:?}, expected 0 and a line containing {key_line:?}\n\
                 --- stdout ---\n{}--- stderr ---\n{}",
                output.code, output.stdout, output.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The `name = "..."` of every `[[example]]` table in the package's `Cargo.toml`.
fn manifest_examples() -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("Cargo.toml is readable");
    let mut names = Vec::new();
    let mut in_example = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_example = line == "[[example]]";
        } else if in_example {
            let value = line
                .strip_prefix("name")
                .and_then(|rest| rest.trim_start().strip_prefix('='));
            if let Some(value) = value {
                names.push(value.trim().trim_matches('"').to_owned());
            }
        }
    }
    names
}

#[test]
fn the_list_matches_cargo_toml() {
    let mut listed: Vec<&str> = EXAMPLES.iter().map(|(name, _)| *name).collect();
    let mut declared = manifest_examples();
    listed.sort_unstable();
    declared.sort_unstable();
    assert_eq!(
        declared, listed,
        "the [[example]] entries of examples/Cargo.toml and EXAMPLES in this test differ"
    );
}
