//! Hello from four processes.
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process, current_process
//! import os
//!
//! def hello():
//!     me = current_process()
//!     print(f"hello from {me.name} (pid {os.getpid()}, parent {os.getppid()})")
//!
//! if __name__ == '__main__':
//!     processes = [Process(target=hello) for _ in range(4)]
//!     for p in processes:
//!         p.start()
//!     for p in processes:
//!         p.join()
//!     for p in processes:
//!         print(f"{p.name} (pid {p.pid}) exited with code {p.exitcode}")
//! ```
//!
//! Here the target is a `#[flotilla::task]` and `main` needs no `__name__` guard: a child is
//! this same program started again and caught by flotilla before `main` runs (never a `fork`
//! of the running program), so `main` below runs once, in the parent. The children get
//! Python's default names, `Process-1` to `Process-4`, which they read back with
//! [`current_process`]; they share the parent's standard output, so their greetings
//! interleave with its lines in whatever order the children run. `join(None)` returns whether
//! the child ended (Python's `join` returns nothing), and `exitcode()` follows Python: 0 for a
//! task that returned.

use std::error::Error;

use flotilla::process::{Process, current_process};

/// Says who and where it is, from inside a child process.
#[flotilla::task]
fn hello() {
    let me = current_process();
    println!(
        "hello from {} (pid {}, parent {})",
        me.name(),
        me.pid(),
        std::os::unix::process::parent_id()
    );
}

fn main() -> Result<(), Box<dyn Error>> {
    let me = current_process();
    println!("{} (pid {}) starts 4 processes", me.name(), me.pid());

    let processes: Vec<Process> = (0..4).map(|_| Process::new(HelloTask, ())).collect();
    let processes = processes
        .into_iter()
        .map(Process::start)
        .collect::<Result<Vec<_>, _>>()?;
    for p in &processes {
        p.join();
    }

    for p in &processes {
        let pid = p.pid();
        let code = p.exitcode().ok_or("a joined process has an exit code")?;
        println!("{} (pid {pid}) exited with code {code}", p.name());
        assert_ne!(pid, me.pid());
        assert_eq!(code, 0);
    }
    println!("all 4 processes exited with code 0");
    Ok(())
}
