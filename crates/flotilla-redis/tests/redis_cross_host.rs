//! The cluster across real network stacks: `redis-server`, the client and two workers each on
//! their own host (a network namespace of this machine, see `support::hosts`), with faults on
//! the links between them. For each fault, 10,000 tasks: every future settles with its
//! task's result, none fails, no task's result is accepted twice. Each test prints its
//! figures (submitted, settled, run twice, time to detect or to resume).
//!
//! They need root (CI runs as root) and run alone (`.config/nextest.toml`, and a lock here for
//! `cargo test`); where namespaces cannot be made they skip, saying why.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flotilla::{Executor, as_completed_timeout};
use flotilla_redis::RedisExecutor;
use support::hosts::{Host, Hosts};

const TASKS: u64 = 10_000;
/// The workers' lease: a frozen or cut-off worker loses its tasks after this.
const LEASE: Duration = Duration::from_secs(2);
/// How long each fault lasts: well past the lease, and past the reconnect timeout.
const FAULT: Duration = Duration::from_secs(6);

/// One cross-host test at a time, under `cargo test` too.
static ALONE: Mutex<()> = Mutex::new(());

/// Takes 2 ms (so that every worker always holds tasks when a fault strikes), records that it
/// ran (one line per run, in a file per pool process), and returns `x`.
#[flotilla::task]
fn work(dir: PathBuf, x: u64) -> u64 {
    use std::io::Write;
    std::thread::sleep(Duration::from_millis(2));
    let path = dir.join(format!("runs-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{x}").unwrap();
    x
}

/// Which fault, on which host.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The host's link down, then up.
    Partition(Host),
    /// Every process of the host stopped with SIGSTOP, then resumed.
    Freeze(Host),
    /// The host's link throttled to 8 bit/s both ways (htb), then freed.
    Stall(Host),
}

impl Fault {
    fn host(self) -> Host {
        match self {
            Fault::Partition(host) | Fault::Freeze(host) | Fault::Stall(host) => host,
        }
    }

    fn apply(self, hosts: &Hosts, on: bool) {
        match self {
            Fault::Partition(host) => hosts.link(host, !on),
            Fault::Freeze(host) => hosts.freeze(host, on),
            Fault::Stall(host) => hosts.stall(host, on).unwrap(),
        }
    }
}

/// Creates the hosts, or prints why the test is skipped.
fn hosts(tag: &str) -> Option<Hosts> {
    match Hosts::create(tag) {
        Ok(hosts) => Some(hosts),
        Err(why) => {
            println!("skipped: cannot create the test hosts: {why}");
            None
        }
    }
}

/// Runs 10,000 tasks from the client's host with `fault` applied for [`FAULT`] once 2,000
/// have completed (`None`: throughout, already applied), and checks and prints the figures.
fn ten_thousand_tasks(name: &str, hosts: &Hosts, fault: Option<Fault>) {
    hosts.enter(Host::Client);
    let _workers = [
        hosts.spawn_worker(Host::Worker1, 2, LEASE),
        hosts.spawn_worker(Host::Worker2, 2, LEASE),
    ];
    let cluster = RedisExecutor::builder(&hosts.url())
        .reconnect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    support::eventually("both workers to be live", || {
        cluster.status().is_ok_and(|s| s.workers.len() == 2)
    });
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let futures: Vec<_> = (0..TASKS)
        .map(|x| cluster.submit(work, (dir.path().to_owned(), x)).unwrap())
        .collect();
    let mut seen = vec![false; TASKS as usize];
    let mut done_at = Vec::with_capacity(TASKS as usize);
    let (mut ok, mut failed) = (0u64, Vec::new());
    let (mut detect, mut healed) = (None, None);
    std::thread::scope(|s| {
        let mut window = None;
        for (i, fut) in as_completed_timeout(&futures, Duration::from_secs(300)).enumerate() {
            let fut = fut.expect("every future settles within 300 s");
            done_at.push(Instant::now());
            match fut.result() {
                Ok(x) => {
                    assert!(!seen[x as usize], "task {x}'s result accepted twice");
                    seen[x as usize] = true;
                    ok += 1;
                }
                Err(err) => {
                    let x = futures.iter().position(|f| *f == fut).unwrap() as u64;
                    failed.push((x, err));
                }
            }
            if i == 2_000
                && let Some(fault) = fault
            {
                let cluster = &cluster;
                window = Some(s.spawn(move || {
                    let retried = cluster.status().map_or(0, |s| s.retried);
                    let at = Instant::now();
                    fault.apply(hosts, true);
                    let mut detect = None;
                    if fault.host() != Host::Client {
                        // Deadline-bounded poll of the server: when did another worker take
                        // the lost tasks over?
                        while at.elapsed() < FAULT * 3 {
                            if cluster.status().is_ok_and(|s| s.retried > retried) {
                                detect = Some(at.elapsed());
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    // The fault lasts its time, then heals.
                    std::thread::sleep(FAULT.saturating_sub(at.elapsed()));
                    fault.apply(hosts, false);
                    (detect, Instant::now())
                }));
            }
        }
        if let Some(window) = window {
            let (d, h) = window.join().unwrap();
            detect = d;
            healed = Some(h);
        }
    });
    let total = started.elapsed();
    let mut runs: HashMap<u64, u32> = HashMap::new();
    let mut per_process = Vec::new();
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        per_process.push(text.lines().count());
        for line in text.lines() {
            *runs.entry(line.parse().unwrap()).or_default() += 1;
        }
    }
    let twice = runs.values().filter(|n| **n > 1).count();
    let resumed = healed.and_then(|h| done_at.iter().find(|at| **at > h).map(|at| *at - h));
    println!(
        "{name}: submitted {TASKS}, settled {}, ok {ok}, failed {}, run twice {twice}, \
         unmatched results {}, detected after {}, resumed {} after the fault ended, total {total:.1?}",
        done_at.len(),
        failed.len(),
        cluster.unmatched_results(),
        detect.map_or("-".into(), |d| format!("{d:.1?}")),
        resumed.map_or("-".into(), |d| format!("{d:.1?}")),
    );
    println!("{name}: runs per pool process {per_process:?}");
    for (x, err) in &failed {
        println!("{name}: task {x} failed: {err}");
    }
    assert_eq!(done_at.len() as u64, TASKS, "every future settles");
    // Nothing fails: a task whose worker was cut off or frozen is completed by whoever took
    // it over (or by its first worker, if that finished first); its future gets the result
    // of the attempt that finished. (A frozen worker's process pool used to report a task as
    // "killed by SIGKILL": a cancel of a task taken over meanwhile killed its worker after it
    // had moved on to the next task.)
    assert!(failed.is_empty(), "{} tasks failed", failed.len());
    assert_eq!(ok, TASKS);
    assert_eq!(runs.len() as u64, TASKS, "every task ran");
    assert_eq!(cluster.unmatched_results(), 0, "a result arrived twice");
    if fault.is_some_and(|f| f.host() != Host::Client) {
        let status = cluster.status().unwrap();
        assert!(
            detect.is_some(),
            "the lost worker's tasks were taken over: {status}"
        );
    }
}

#[test]
fn partition_of_a_worker_past_its_lease() {
    let _alone = ALONE.lock();
    let Some(hosts) = hosts("a") else { return };
    ten_thousand_tasks(
        "worker partitioned",
        &hosts,
        Some(Fault::Partition(Host::Worker1)),
    );
}

#[test]
fn worker_host_frozen_past_its_lease() {
    let _alone = ALONE.lock();
    let Some(hosts) = hosts("b") else { return };
    ten_thousand_tasks("worker frozen", &hosts, Some(Fault::Freeze(Host::Worker1)));
}

#[test]
fn partition_of_the_client() {
    let _alone = ALONE.lock();
    let Some(hosts) = hosts("c") else { return };
    ten_thousand_tasks(
        "client partitioned",
        &hosts,
        Some(Fault::Partition(Host::Client)),
    );
}

#[test]
fn stall_of_the_client_link() {
    let _alone = ALONE.lock();
    let Some(hosts) = hosts("d") else { return };
    if let Err(why) = hosts
        .stall(Host::Client, true)
        .and_then(|()| hosts.stall(Host::Client, false))
    {
        println!("skipped: no htb qdisc to stall a link with: {why}");
        return;
    }
    ten_thousand_tasks(
        "client link stalled",
        &hosts,
        Some(Fault::Stall(Host::Client)),
    );
}

#[test]
fn delay_and_loss_on_every_link() {
    let _alone = ALONE.lock();
    let Some(hosts) = hosts("e") else { return };
    for host in [Host::Client, Host::Worker1, Host::Worker2] {
        if let Err(why) = hosts.netem(host, "delay 2ms 1ms loss 1%") {
            println!("skipped: this kernel has no sch_netem for delay and loss: {why}");
            return;
        }
    }
    ten_thousand_tasks("delay 2±1 ms, loss 1%", &hosts, None);
}
