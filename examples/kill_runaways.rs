//! Ten runaway processes, stopped: `terminate()`, a grace period, then `kill()`.
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process
//! import signal, time
//!
//! def runaway(stubborn):
//!     if stubborn:
//!         signal.signal(signal.SIGTERM, signal.SIG_IGN)
//!     while True:
//!         pass
//!
//! if __name__ == '__main__':
//!     procs = [Process(target=runaway, args=(i % 3 == 2,)) for i in range(10)]
//!     for p in procs:
//!         p.start()
//!     time.sleep(0.1)                   # hope the children got as far as their loop
//!     for p in procs:
//!         p.terminate()                 # SIGTERM
//!     deadline = time.monotonic() + 0.5
//!     for p in procs:
//!         p.join(max(0, deadline - time.monotonic()))
//!     for p in procs:
//!         if p.is_alive():
//!             p.kill()                  # SIGKILL cannot be ignored
//!             p.join()
//!     for p in procs:
//!         print(p.name, p.exitcode)     # -15 or -9
//! ```
//!
//! The same steps with [`Process::terminate`], [`Process::join`] with a timeout (it returns
//! whether the child ended, where Python's returns nothing and you ask `is_alive()`) and
//! [`Process::kill`]; `exitcode()` is minus the signal number, as in Python. Three of the
//! ten runaways ignore `SIGTERM`, so both paths run.
//!
//! No `sleep`: each child puts its number on a [`Queue`] once it has set up its signals, and
//! the parent takes ten numbers before it sends anything, so a stubborn child is never
//! terminated before it had the chance to ignore `SIGTERM`. The runaways are daemons: were
//! this program to crash before killing them, the kernel would kill them with it (Python's
//! daemons only die in an exit handler, which a crash skips).

use std::error::Error;
use std::time::{Duration, Instant};

use flotilla::process::{Process, Queue};

const RUNAWAYS: usize = 10;
const GRACE: Duration = Duration::from_millis(500);

/// Reports in, then spins for ever; a stubborn one first makes itself deaf to `SIGTERM`.
#[flotilla::task]
fn runaway(index: usize, stubborn: bool, ready: Queue<usize>) {
    if stubborn {
        // SAFETY: setting a signal's disposition to "ignore" runs no code on delivery and has
        // no memory-safety preconditions; this child process has no handler to replace.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    ready.put(index).expect("the parent owns the queue");
    loop {
        std::hint::spin_loop();
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let ready = Queue::new();
    let runaways: Vec<Process> = (0..RUNAWAYS)
        .map(|i| {
            Process::new(RunawayTask, (i, i % 3 == 2, ready.clone()))
                .with_name(format!("runaway-{i}"))
                .with_daemon(true)
        })
        .collect();
    let runaways = runaways
        .into_iter()
        .map(Process::start)
        .collect::<Result<Vec<_>, _>>()?;
    for _ in 0..RUNAWAYS {
        ready.get()?;
    }
    let running = runaways.iter().filter(|p| p.is_alive()).count();
    println!("{running} runaways are spinning");
    assert_eq!(running, RUNAWAYS);

    for p in &runaways {
        p.terminate();
    }
    let deadline = Instant::now() + GRACE;
    let mut survivors = Vec::new();
    for p in &runaways {
        if !p.join_timeout(deadline.saturating_duration_since(Instant::now())) {
            survivors.push(p);
        }
    }
    println!(
        "terminate(): {} ended within {GRACE:?}, {} ignored SIGTERM",
        RUNAWAYS - survivors.len(),
        survivors.len()
    );
    for p in &survivors {
        p.kill();
        assert!(
            p.join_timeout(Duration::from_secs(10)),
            "SIGKILL cannot be ignored"
        );
    }

    let mut by_signal = [0; 2];
    for p in &runaways {
        let code = p.exitcode().ok_or("a joined process has an exit code")?;
        let pid = p.pid();
        println!("{} (pid {pid}): exitcode {code}", p.name());
        assert!(!p.is_alive());
        match -code {
            libc::SIGTERM => by_signal[0] += 1,
            libc::SIGKILL => by_signal[1] += 1,
            _ => return Err(format!("{} ended with exit code {code}", p.name()).into()),
        }
    }
    assert_eq!(by_signal, [7, 3]);
    println!(
        "all {RUNAWAYS} runaways are dead: {} by SIGTERM (-15), {} by SIGKILL (-9)",
        by_signal[0], by_signal[1]
    );
    Ok(())
}
