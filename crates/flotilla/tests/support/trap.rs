//! [`Trap`]: a value whose `Serialize` or `Deserialize` fails on purpose (panics, aborts,
//! exits, hangs, or writes the wrong bytes), for the fault matrices; [`capture_stderr`], to
//! read what a child process said about its failure; and `cells!`, which declares a matrix's
//! tests, one per cell.

#![allow(dead_code)] // each test file uses its own subset

/// Declares one test per `cell: body;` (a row of a fault matrix).
macro_rules! cells {
    ($($name:ident: $body:expr;)*) => {
        $(
            #[test]
            fn $name() {
                $body;
            }
        )*
    };
}

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use flotilla::process::{Connection, Process, StartedProcess};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a [`Trap`] does when it is encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Fault {
    /// Nothing: it travels as it should.
    None,
    /// `panic!("planted panic")`.
    Panic,
    /// `std::process::abort()`.
    Abort,
    /// `std::process::exit(code)`.
    Exit(i32),
    /// Waits until [`release`]d (for ever, in a child process), after saying so on the
    /// reporter installed with [`report_hangs_to`], if any.
    Hang,
    /// Encodes as bytes that no `Trap` decodes from (only meaningful when encoding).
    Garbage,
}

/// A value that strikes `on_encode` in its `Serialize` and `on_decode` in its
/// `Deserialize`, carrying `n` to tell values apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Trap {
    pub(crate) on_encode: Fault,
    pub(crate) on_decode: Fault,
    pub(crate) n: u32,
}

impl Trap {
    /// A value that travels without trouble.
    pub(crate) fn fine(n: u32) -> Trap {
        Trap {
            on_encode: Fault::None,
            on_decode: Fault::None,
            n,
        }
    }

    /// A value that strikes `fault` when encoded.
    pub(crate) fn encoding(fault: Fault) -> Trap {
        Trap {
            on_encode: fault,
            ..Trap::fine(0)
        }
    }

    /// A value that strikes `fault` when decoded.
    pub(crate) fn decoding(fault: Fault) -> Trap {
        Trap {
            on_decode: fault,
            ..Trap::fine(0)
        }
    }
}

impl Serialize for Trap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        strike(self.on_encode);
        if self.on_encode == Fault::Garbage {
            // Where a `Fault` is expected: no such variant.
            return serializer.serialize_u32(0xdead_beef);
        }
        (self.on_decode, self.n).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Trap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Trap, D::Error> {
        let (on_decode, n) = <(Fault, u32)>::deserialize(deserializer)?;
        strike(on_decode);
        Ok(Trap {
            on_encode: Fault::None,
            on_decode,
            n,
        })
    }
}

fn strike(fault: Fault) {
    match fault {
        Fault::None | Fault::Garbage => {}
        Fault::Panic => panic!("planted panic"),
        Fault::Abort => std::process::abort(),
        Fault::Exit(code) => std::process::exit(code),
        Fault::Hang => hang(),
    }
}

/// How many threads are hanging in a trap, and whether they may go.
static HANGING: Mutex<(usize, bool)> = Mutex::new((0, false));
static HANGING_CHANGED: Condvar = Condvar::new();
/// Told once per hang, in a child process, so that its parent knows it is hanging.
static REPORTER: Mutex<Option<Connection<()>>> = Mutex::new(None);
/// Serializes the tests of one process that hang traps in that same process.
static IN_PROCESS_HANGS: Mutex<()> = Mutex::new(());

/// In a child process: say on `reporter` whenever a trap starts hanging.
pub(crate) fn report_hangs_to(reporter: Connection<()>) {
    *REPORTER.lock().unwrap() = Some(reporter);
}

fn hang() {
    if let Some(reporter) = &*REPORTER.lock().unwrap() {
        reporter.send(&()).unwrap();
    }
    let mut state = HANGING.lock().unwrap();
    state.0 += 1;
    HANGING_CHANGED.notify_all();
    while !state.1 {
        state = HANGING_CHANGED.wait(state).unwrap();
    }
    state.0 -= 1;
    HANGING_CHANGED.notify_all();
}

/// For a test that hangs traps in this process: waits for any other such test to finish,
/// and resets the hang state; hold the guard for the whole test.
pub(crate) fn hang_here() -> std::sync::MutexGuard<'static, ()> {
    let guard = IN_PROCESS_HANGS.lock().unwrap_or_else(|p| p.into_inner());
    *HANGING.lock().unwrap() = (0, false);
    guard
}

/// Waits, at most `limit`, until `threads` threads of this process hang in traps.
pub(crate) fn await_hanging(threads: usize, limit: Duration) {
    let state = HANGING.lock().unwrap();
    let (state, waited) = HANGING_CHANGED
        .wait_timeout_while(state, limit, |state| state.0 < threads)
        .unwrap();
    assert!(!waited.timed_out(), "only {} threads hang", state.0);
}

/// Lets every trap hanging in this process go on.
pub(crate) fn release() {
    HANGING.lock().unwrap().1 = true;
    HANGING_CHANGED.notify_all();
}

static STDERR: Mutex<()> = Mutex::new(());

/// Starts `child` with its standard error going to a new file, whose path is returned (this
/// process's own standard error is untouched once the child has started).
pub(crate) fn capture_stderr(child: Process) -> (StartedProcess, PathBuf) {
    let _one_at_a_time = STDERR.lock().unwrap_or_else(|p| p.into_inner());
    let path = std::env::temp_dir().join(format!(
        "flotilla-test-stderr-{}-{}",
        std::process::id(),
        child.name()
    ));
    let file = std::fs::File::create(&path).unwrap();
    // SAFETY: dup and dup2 on descriptors this process owns (2, the file, the copy) have no
    // memory-safety preconditions; the copy is owned by the OwnedFd just made from it.
    let saved = unsafe {
        let saved = libc::dup(2);
        assert!(saved >= 0);
        assert_eq!(libc::dup2(file.as_raw_fd(), 2), 2);
        OwnedFd::from_raw_fd(saved)
    };
    let started = child.start();
    // SAFETY: as above.
    unsafe { assert_eq!(libc::dup2(saved.as_raw_fd(), 2), 2) };
    (started.unwrap(), path)
}

/// What the child wrote to the standard error captured at `path` (once it has ended).
pub(crate) fn captured(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let _ = std::fs::remove_file(path);
    text
}
