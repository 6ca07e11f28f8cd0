//! Lock holders that go silent instead of dying: a process stopped with SIGSTOP (its sockets
//! stay open, so no end of file ever tells the server it is gone) and a process whose network
//! is cut (its TCP connections are half-open). Each loses the lock to the next acquirer, as
//! `OwnerDied`, within a bound the docs state: the session lease for the first, TCP
//! keepalive for the second.

use std::process::Command;
use std::time::{Duration, Instant};

use flotilla::manager::{Event, Lock, Manager};
use flotilla::process::{Process, Queue, StartedProcess};
use flotilla::shared::LockError;

#[path = "support/children.rs"]
mod children;

use children::{PATIENCE, kill, start};

/// The lease of the managers in these tests.
const LEASE: Duration = Duration::from_secs(2);

/// Room for a loaded machine on top of each documented bound.
const SLACK: Duration = Duration::from_secs(3);

/// How soon TCP keepalive notices a peer that went silent (5 s idle, 3 probes 1 s apart).
const KEEPALIVE: Duration = Duration::from_secs(8);

fn signal(child: &StartedProcess, signal: libc::c_int) {
    let pid = child.pid() as libc::pid_t;
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our live child's.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Takes the lock, says so, then, once resumed and told to, reports how its next two
/// operations went.
#[flotilla::task]
fn hold_then_report(lock: Lock, holding: Event, go: Queue<()>, report: Queue<Vec<String>>) {
    let guard = lock.lock().unwrap();
    holding.set().unwrap();
    go.get().unwrap();
    let outcomes = (0..2)
        .map(|_| match holding.is_set() {
            Ok(set) => format!("ok {set}"),
            Err(err) => err.to_string(),
        })
        .collect();
    report.put(outcomes).unwrap();
    std::mem::forget(guard); // its release would fail: the lock is no longer ours
    loop {
        std::thread::park();
    }
}

/// Waits at most `bound` for `lock`, which must come with `OwnerDied`.
fn owner_died_within(lock: &Lock, bound: Duration) {
    let started = Instant::now();
    match lock.lock_timeout(bound) {
        Err(LockError::OwnerDied(guard)) => guard.mark_consistent().unwrap(),
        Ok(_) => panic!("the silent holder's loss was not reported"),
        Err(err) => panic!("not released within {bound:?} ({err})"),
    }
    println!("released as OwnerDied after {:?}", started.elapsed());
}

#[test]
fn a_stopped_holder_loses_the_lock_within_its_lease() -> Result<(), flotilla::Error> {
    let manager = Manager::builder().lease(LEASE).start()?;
    let (lock, holding) = (manager.lock()?, manager.event()?);
    let (go, report) = (Queue::new(), Queue::new());
    let holder = start(
        Process::new(
            HoldThenReportTask,
            (lock.clone(), holding.clone(), go.clone(), report.clone()),
        )
        .with_daemon(true), // gone with this test even if an assertion fails
    );
    assert!(holding.wait_timeout(PATIENCE)?);
    assert!(lock.try_lock().unwrap_err().is_busy());
    signal(&holder, libc::SIGSTOP);
    // The documented bound: the lease and an eighth of it.
    owner_died_within(&lock, LEASE + LEASE / 8 + SLACK);
    // Resumed, the holder is told once that its session ended, then carries on.
    signal(&holder, libc::SIGCONT);
    go.put(())?;
    let outcomes = report.get_timeout(PATIENCE).unwrap();
    assert!(
        outcomes[0].contains("heard nothing from it for longer than its lease"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], "ok true");
    kill(&holder);
    Ok(())
}

/// A network namespace with a veth pair to this one: `10.77.x.1` here, `10.77.x.2` there.
struct Namespace {
    name: String,
    host: String,
    guest: String,
    here: std::net::Ipv4Addr,
}

/// Runs `ip` with `args`; whether it succeeded.
fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|status| status.success())
}

impl Namespace {
    /// Creates the namespace and its link, or says why it cannot.
    fn create() -> Result<Namespace, String> {
        let pid = std::process::id();
        let name = format!("flotilla-{pid}");
        let (host, guest) = (format!("fh{pid}"), format!("fg{pid}"));
        let subnet = (pid % 16_000) * 4;
        let (a, b) = ((subnet >> 8) as u8, (subnet & 0xff) as u8);
        let here = std::net::Ipv4Addr::new(10, 77, a, b + 1);
        let there = std::net::Ipv4Addr::new(10, 77, a, b + 2);
        if !ip(&["netns", "add", &name]) {
            return Err("`ip netns add` failed (not root, or no iproute2)".to_owned());
        }
        let ns = Namespace {
            name: name.clone(),
            host: host.clone(),
            guest: guest.clone(),
            here,
        };
        let steps: [&[&str]; 7] = [
            &["link", "add", &host, "type", "veth", "peer", "name", &guest],
            &["link", "set", &guest, "netns", &name],
            &["addr", "add", &format!("{here}/30"), "dev", &host],
            &["link", "set", &host, "up"],
            &[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{there}/30"),
                "dev",
                &guest,
            ],
            &["-n", &name, "link", "set", &guest, "up"],
            &["-n", &name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if !ip(step) {
                return Err(format!("`ip {}` failed", step.join(" ")));
            }
        }
        Ok(ns)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Cuts the link on the far side, as if that host had gone: from now on nothing passes
    /// either way, and nobody here is told (our end only loses its carrier; its address and
    /// routes stay).
    fn cut(&self) {
        assert!(ip(&["-n", &self.name, "link", "set", &self.guest, "down"]));
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace destroys its end of the pair, and with it ours.
        let _ = ip(&["link", "del", &self.host]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Moves this thread (and the threads it starts) into the namespace at `path`, then takes the
/// lock, says so, and waits.
#[flotilla::task]
fn hold_from(path: String, lock: Lock, holding: Event) {
    let ns = std::fs::File::open(&path).unwrap();
    // SAFETY: setns(2) on an open namespace file has no memory-safety preconditions; it
    // changes only this thread's network namespace, before this thread opens any socket.
    let entered = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
    assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
    let _held = lock.lock().unwrap();
    holding.set().unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_holder_cut_off_by_the_network_loses_the_lock_within_the_keepalive_bound()
-> Result<(), flotilla::Error> {
    let ns = match Namespace::create() {
        Ok(ns) => ns,
        Err(why) => {
            println!("skipped: cannot create a network namespace: {why}");
            return Ok(());
        }
    };
    // A long lease, so that only keepalive can notice the silence in time.
    let manager = Manager::builder()
        .listen((ns.here, 0).into())
        .lease(Duration::from_secs(600))
        .start()?;
    let (lock, holding) = (manager.lock()?, manager.event()?);
    let holder = start(
        Process::new(HoldFromTask, (ns.path(), lock.clone(), holding.clone())).with_daemon(true),
    );
    assert!(holding.wait_timeout(PATIENCE)?);
    assert!(lock.try_lock().unwrap_err().is_busy());
    ns.cut();
    owner_died_within(&lock, KEEPALIVE + SLACK);
    kill(&holder);
    Ok(())
}
