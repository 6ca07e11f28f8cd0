//! `flotilla::process::Process`: starting children, their names and pids, exit codes, joins
//! with timeouts, signals, and `current_process`.

use std::time::{Duration, Instant};

use flotilla::process::{
    Connection, CurrentProcess, GetError, JoinableQueue, Process, PutError, Queue, StartedProcess,
    current_process,
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
    let child = Process::new(HelloTask, out.clone()).start().unwrap();
    child.join();
    hello(out);
}

fn run(process: Process) -> Option<i32> {
    let process = process.start().unwrap();
    process.join();
    assert!(!process.is_alive());
    process.exitcode()
}

#[test]
fn hello_from_four_processes() {
    let out = Queue::new();
    let processes: Vec<Process> = (0..4)
        .map(|i| Process::new(HelloTask, out.clone()).with_name(format!("hello-{i}")))
        .collect();
    let processes = processes
        .into_iter()
        .map(Process::start)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut greetings: Vec<(String, u32, bool)> = (0..4).map(|_| out.get().unwrap()).collect();
    greetings.sort();
    for (i, p) in processes.iter().enumerate() {
        p.join();
        assert_eq!(p.exitcode(), Some(0));
        let pid = p.pid();
        assert_ne!(pid, std::process::id());
        assert_eq!(greetings[i], (format!("hello-{i}"), pid, false));
    }
}

#[test]
fn exit_codes_follow_python() {
    assert_eq!(run(Process::new(SucceedTask, ())), Some(0));
    assert_eq!(run(Process::new(FailTask, ())), Some(1));
    assert_eq!(run(Process::new(ExitWithTask, 3)), Some(3));
}

#[test]
fn killed_and_terminated_children_report_minus_the_signal() {
    for (stop, expected) in [
        (StartedProcess::kill as fn(&StartedProcess), -libc::SIGKILL),
        (
            StartedProcess::terminate as fn(&StartedProcess),
            -libc::SIGTERM,
        ),
    ] {
        let ready = Queue::new();
        let p = Process::new(ForeverTask, ready.clone()).start().unwrap();
        ready.get().unwrap();
        stop(&p);
        p.join();
        assert_eq!(p.exitcode(), Some(expected));
    }
}

#[test]
fn join_with_timeout_returns_false_then_kill_ends_it() {
    let ready = Queue::new();
    let p = Process::new(ForeverTask, ready.clone()).start().unwrap();
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
    assert_ne!(p.pid(), 0);
}

/// Starting twice, and joining or signalling a process never started, do not compile (see
/// the `compile_fail` examples on `StartedProcess`); what is left to check is that a started
/// handle reports a fresh child.
#[test]
fn a_started_process_is_running_until_it_ends() {
    let p = Process::new(SucceedTask, ()).start().unwrap();
    p.join();
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn names_and_current_process() {
    let me = current_process();
    assert_eq!(me.name(), "MainProcess");
    assert_eq!(me.pid(), std::process::id());
    assert!(!me.daemon());

    let p = Process::new(SucceedTask, ());
    assert!(p.name().starts_with("Process-"), "{}", p.name());
    let named = Process::new(SucceedTask, ())
        .with_name("worker")
        .with_daemon(true);
    assert_eq!(named.name(), "worker");
    assert!(named.daemon());

    // A daemon child sees its flag; a grandchild gets a nested default name.
    let out = Queue::new();
    assert_eq!(
        run(Process::new(HelloTask, out.clone())
            .with_daemon(true)
            .with_name("d")),
        Some(0)
    );
    let (name, _, daemon) = out.get().unwrap();
    assert_eq!((name.as_str(), daemon), ("d", true));

    let parent = Process::new(NestTask, out.clone())
        .with_name("parent")
        .start()
        .unwrap();
    let (grandchild, grandchild_pid, _) = out.get().unwrap();
    let (child, child_pid, _) = out.get().unwrap();
    parent.join();
    assert_eq!(child, "parent");
    assert_eq!(child_pid, parent.pid());
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
