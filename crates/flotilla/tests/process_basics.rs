//! `flotilla::process::Process`: starting children, their names and pids, exit codes, joins
//! with timeouts, signals, and `current_process`.

use std::time::{Duration, Instant};

use flotilla::process::{
    Connection, CurrentProcess, GetError, JoinableQueue, Process, PutError, Queue, current_process,
};

/// Reports who the child is.
#[flotilla::task]
fn hello(out: Queue<(String, u32, bool)>) {
    let me = current_process();
    out.put((me.name().to_owned(), me.pid(), me.daemon()))
        .unwrap();
}

#[flotilla::task]
fn succeed() {}

#[flotilla::task]
fn fail() {
    panic!("deliberate failure");
}

#[flotilla::task]
fn exit_with(code: i32) {
    std::process::exit(code);
}

/// Runs until killed; says so first, so the test never signals a child still starting up.
#[flotilla::task]
fn forever(ready: Queue<()>) {
    ready.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

/// Starts a grandchild and reports the names both see.
#[flotilla::task]
fn nest(out: Queue<(String, u32, bool)>) {
    let mut child = Process::new(hello, out.clone());
    child.start().unwrap();
    assert!(child.join());
    hello::call(out);
}

fn run(mut process: Process) -> Option<i32> {
    process.start().unwrap();
    assert!(process.join());
    assert!(!process.is_alive());
    process.exitcode()
}

#[test]
fn hello_from_four_processes() {
    let out = Queue::new();
    let mut processes: Vec<Process> = (0..4)
        .map(|i| Process::new(hello, out.clone()).with_name(format!("hello-{i}")))
        .collect();
    for p in &mut processes {
        p.start().unwrap();
    }
    let mut greetings: Vec<(String, u32, bool)> = (0..4).map(|_| out.get().unwrap()).collect();
    greetings.sort();
    for (i, p) in processes.iter().enumerate() {
        assert!(p.join());
        assert_eq!(p.exitcode(), Some(0));
        let pid = p.pid().unwrap();
        assert_ne!(pid, std::process::id());
        assert_eq!(greetings[i], (format!("hello-{i}"), pid, false));
    }
}

#[test]
fn exit_codes_follow_python() {
    assert_eq!(run(Process::new(succeed, ())), Some(0));
    assert_eq!(run(Process::new(fail, ())), Some(1));
    assert_eq!(run(Process::new(exit_with, 3)), Some(3));
}

#[test]
fn killed_and_terminated_children_report_minus_the_signal() {
    for (stop, expected) in [
        (Process::kill as fn(&Process), -libc::SIGKILL),
        (Process::terminate as fn(&Process), -libc::SIGTERM),
    ] {
        let ready = Queue::new();
        let mut p = Process::new(forever, ready.clone());
        p.start().unwrap();
        ready.get().unwrap();
        stop(&p);
        assert!(p.join());
        assert_eq!(p.exitcode(), Some(expected));
    }
}

#[test]
fn join_with_timeout_returns_false_then_kill_ends_it() {
    let ready = Queue::new();
    let mut p = Process::new(forever, ready.clone());
    p.start().unwrap();
    ready.get().unwrap();
    let started = Instant::now();
    assert!(!p.join_timeout(Duration::from_millis(100)));
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    p.kill();
    assert!(p.join_timeout(Duration::from_secs(30)));
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(-9));
    // After reaping, signals are no-ops: the pid may already belong to someone else.
    p.kill();
    p.terminate();
    assert_eq!(p.exitcode(), Some(-9));
    assert!(p.pid().is_some());
}

#[test]
fn a_process_starts_once_and_unstarted_ones_are_inert() {
    let mut p = Process::new(succeed, ());
    assert_eq!(p.pid(), None);
    assert_eq!(p.exitcode(), None);
    assert!(!p.is_alive());
    assert!(!p.join_timeout(Duration::ZERO));
    p.kill(); // nothing to kill
    p.start().unwrap();
    let err = p.start().unwrap_err();
    assert!(
        matches!(err, flotilla::Error::InvalidOperation { .. }),
        "{err}"
    );
    assert!(p.join());
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn names_and_current_process() {
    let me = current_process();
    assert_eq!(me.name(), "MainProcess");
    assert_eq!(me.pid(), std::process::id());
    assert!(!me.daemon());

    let p = Process::new(succeed, ());
    assert!(p.name().starts_with("Process-"), "{}", p.name());
    let named = Process::new(succeed, ())
        .with_name("worker")
        .with_daemon(true);
    assert_eq!(named.name(), "worker");
    assert!(named.daemon());

    // A daemon child sees its flag; a grandchild gets a nested default name.
    let out = Queue::new();
    assert_eq!(
        run(Process::new(hello, out.clone())
            .with_daemon(true)
            .with_name("d")),
        Some(0)
    );
    let (name, _, daemon) = out.get().unwrap();
    assert_eq!((name.as_str(), daemon), ("d", true));

    let mut parent = Process::new(nest, out.clone()).with_name("parent");
    parent.start().unwrap();
    let (grandchild, grandchild_pid, _) = out.get().unwrap();
    let (child, child_pid, _) = out.get().unwrap();
    assert!(parent.join());
    assert_eq!(child, "parent");
    assert_eq!(child_pid, parent.pid().unwrap());
    assert_ne!(grandchild_pid, child_pid);
    assert!(
        grandchild.starts_with("Process-") && grandchild.contains(':'),
        "{grandchild}"
    );
}

#[test]
fn public_types_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Process>();
    both::<Connection<String>>();
    both::<Queue<String>>();
    both::<JoinableQueue<String>>();
    both::<CurrentProcess>();
    both::<GetError>();
    both::<PutError<String>>();
}
