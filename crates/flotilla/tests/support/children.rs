//! Starting, finishing and killing child processes in tests, each bounded by [`PATIENCE`].

#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use flotilla::process::Process;

/// Upper bound for anything that must not hang; tests finish far sooner.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Starts `child` and hands it back.
pub(crate) fn start(mut child: Process) -> Process {
    child.start().unwrap();
    child
}

/// Joins `child` and checks that it exited cleanly.
pub(crate) fn finish(child: &Process) {
    assert!(child.join(Some(PATIENCE)), "the child did not finish");
    assert_eq!(child.exitcode(), Some(0));
}

/// SIGKILLs `child` and waits until it is reaped.
pub(crate) fn kill(child: &Process) {
    child.kill();
    assert!(
        child.join(Some(PATIENCE)),
        "the killed child was not reaped"
    );
    assert_eq!(child.exitcode(), Some(-9));
}
