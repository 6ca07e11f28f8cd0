//! Running shell commands on the pool, capturing output and return codes.
//!
//! The Python original submits `subprocess.run(cmd, shell=True, capture_output=True,
//! text=True)` to a `ThreadPoolExecutor` and reads `stdout`, `stderr` and `returncode` from
//! the `CompletedProcess` each future returns.
//!
//! In Rust that is `std::process::Command::new("sh").args(["-c", cmd]).output()`, run in a
//! pool task. A non-zero exit is not an error (as with `subprocess.run` without
//! `check=True`); failing to start the shell is, and it travels back through the future as an
//! `io::Error`. `output()` is not `Clone`, so the value is moved out with `into_result`.
//! A command killed by a signal has no exit code: `code()` is `None` there.

use std::error::Error;
use std::io;
use std::process::Command;

use flotilla::ThreadPoolExecutor;

/// What Python's `CompletedProcess` holds.
#[derive(Debug)]
struct Completed {
    command: &'static str,
    stdout: String,
    stderr: String,
    returncode: Option<i32>,
}

fn run(command: &'static str) -> io::Result<Completed> {
    let output = Command::new("sh").args(["-c", command]).output()?;
    Ok(Completed {
        command,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        returncode: output.status.code(),
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let pool = ThreadPoolExecutor::builder().max_workers(2).build()?;
    let commands = ["echo out; echo err >&2; exit 3", "echo hello from sh"];
    let futures = commands
        .into_iter()
        .map(|command| pool.spawn(move || run(command)))
        .collect::<Result<Vec<_>, _>>()?;

    let mut results = Vec::new();
    for future in futures {
        // The outer `?` is the pool's error (a panic, say), the inner one the command's.
        let done = future.into_result()??;
        println!("$ {}", done.command);
        println!("  stdout: {:?}", done.stdout.trim_end());
        println!("  stderr: {:?}", done.stderr.trim_end());
        match done.returncode {
            Some(code) => println!("  return code: {code}"),
            None => println!("  killed by a signal"),
        }
        results.push(done);
    }
    assert_eq!(results[0].stdout, "out\n");
    assert_eq!(results[0].stderr, "err\n");
    assert_eq!(results[0].returncode, Some(3));
    assert_eq!(results[1].returncode, Some(0));
    Ok(())
}
