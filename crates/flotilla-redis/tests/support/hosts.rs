//! Hosts on this machine, each in its own network namespace: a `redis-server`, the client (the
//! test's own thread) and two workers, joined by a bridge in a fifth namespace, with addresses
//! that exist only inside those namespaces. Faults are made with the kernel's own tools: a
//! link taken down, `tc` qdiscs, a host's processes stopped with SIGSTOP.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla::process::{Process, StartedProcess};

/// The hosts, by the last byte of their address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    Server = 1,
    Client = 2,
    Worker1 = 3,
    Worker2 = 4,
}

const HOSTS: [Host; 4] = [Host::Server, Host::Client, Host::Worker1, Host::Worker2];
/// A private range, used only inside the namespaces these tests create.
const NET: &str = "10.213.47";

pub struct Hosts {
    tag: String,
    /// The worker processes started on each host.
    workers: std::sync::Mutex<Vec<(Host, i32)>>,
    server: Option<Child>,
    dir: tempfile::TempDir,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("{}: {err}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hosts {
    /// Creates the namespaces, links and addresses and starts `redis-server` on its host, or
    /// says why it cannot (no privilege, no `ip`).
    pub fn create(tag: &str) -> Result<Hosts, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root".into());
        }
        let tag = format!("fl{}{tag}", std::process::id() % 100_000);
        let mut hosts = Hosts {
            tag,
            workers: std::sync::Mutex::new(Vec::new()),
            server: None,
            dir: tempfile::tempdir().map_err(|err| err.to_string())?,
        };
        hosts.wire()?;
        hosts.start_server()?;
        Ok(hosts)
    }

    pub fn ns(&self, host: Host) -> String {
        format!("{}h{}", self.tag, host as u8)
    }

    fn bridge_ns(&self) -> String {
        format!("{}br", self.tag)
    }

    /// The host's end of its link (inside the host's namespace).
    pub fn dev(&self, host: Host) -> String {
        format!("{}v{}", self.tag, host as u8)
    }

    /// The bridge's end of the host's link (inside the bridge's namespace).
    fn port(&self, host: Host) -> String {
        format!("{}p{}", self.tag, host as u8)
    }

    fn wire(&self) -> Result<(), String> {
        let br = self.bridge_ns();
        run(&["ip", "netns", "add", &br])?;
        run(&["ip", "-n", &br, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &br, "link", "set", "br0", "up"])?;
        for host in HOSTS {
            let (ns, dev, port) = (self.ns(host), self.dev(host), self.port(host));
            let addr = format!("{NET}.{}/24", host as u8);
            run(&["ip", "netns", "add", &ns])?;
            run(&[
                "ip", "link", "add", &dev, "type", "veth", "peer", "name", &port,
            ])?;
            run(&["ip", "link", "set", &dev, "netns", &ns])?;
            run(&["ip", "link", "set", &port, "netns", &br])?;
            run(&["ip", "-n", &br, "link", "set", &port, "master", "br0", "up"])?;
            run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", &dev])?;
            run(&["ip", "-n", &ns, "link", "set", &dev, "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn start_server(&mut self) -> Result<(), String> {
        let ns = self.ns(Host::Server);
        let bind = format!("{NET}.1");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "redis-server",
                "--bind",
                &bind,
                "--port",
                "6379",
            ])
            .args(["--protected-mode", "no", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|err| format!("could not start redis-server: {err}"))?;
        self.server = Some(child);
        // Wait until it answers, from the client's host (an external process coming up).
        let url = self.url();
        let path = self.ns_path(Host::Client);
        std::thread::scope(|s| {
            s.spawn(|| {
                enter(&path);
                let client = redis::Client::open(url.as_str()).unwrap();
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if let Ok(mut conn) = client.get_connection()
                        && redis::cmd("PING").query::<String>(&mut conn).is_ok()
                    {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err("redis-server did not answer in its namespace".to_owned());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .join()
            .unwrap()
        })
    }

    pub fn url(&self) -> String {
        format!("redis://{NET}.1:6379")
    }

    pub fn ns_path(&self, host: Host) -> PathBuf {
        PathBuf::from("/var/run/netns").join(self.ns(host))
    }

    /// Moves the calling thread (and the threads and processes it starts from now on) to
    /// `host`.
    pub fn enter(&self, host: Host) {
        enter(&self.ns_path(host));
    }

    /// Starts a worker process on `host`.
    pub fn spawn_worker(&self, host: Host, slots: usize, visibility: Duration) -> StartedProcess {
        let args = (
            self.ns_path(host),
            self.url(),
            slots,
            visibility.as_millis() as u64,
        );
        let process = Process::new(ServeInTask, args)
            .with_daemon(true)
            .start()
            .expect("a worker process");
        let pid = process.pid() as i32;
        self.workers.lock().unwrap().push((host, pid));
        process
    }

    /// Takes `host`'s link down (a partition) or brings it back.
    pub fn link(&self, host: Host, up: bool) {
        let state = if up { "up" } else { "down" };
        run(&[
            "ip",
            "-n",
            &self.ns(host),
            "link",
            "set",
            &self.dev(host),
            state,
        ])
        .unwrap();
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) every process of `host`: the workers started there
    /// with all their descendants, parents first when stopping and last when resuming (so that
    /// no running process sees another stopped), then anything else in its namespace.
    pub fn freeze(&self, host: Host, frozen: bool) {
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        let mut all = Vec::new();
        for (on, pid) in self.workers.lock().unwrap().iter() {
            if *on == host {
                all.extend(descendants(*pid));
            }
        }
        for pid in pids(&self.ns(host)) {
            if !all.contains(&pid) {
                all.push(pid);
            }
        }
        if !frozen {
            all.reverse();
        }
        for pid in all {
            // SAFETY: sending a signal has no memory-safety preconditions.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Throttles both directions of `host`'s link to 8 bit/s with an `htb` class (a stall),
    /// or lifts it. `Err` if this kernel has no `htb`.
    pub fn stall(&self, host: Host, on: bool) -> Result<(), String> {
        let (ns, dev, port, br) = (
            self.ns(host),
            self.dev(host),
            self.port(host),
            self.bridge_ns(),
        );
        for (ns, dev) in [(ns, dev), (br, port)] {
            let base = ["ip", "netns", "exec", &ns, "tc"];
            if on {
                let qdisc = ["qdisc", "add", "dev", &dev, "root", "handle", "1:", "htb"];
                run(&[&base[..], &qdisc[..], &["default", "10"]].concat())?;
                let class = [
                    "class", "add", "dev", &dev, "parent", "1:", "classid", "1:10",
                ];
                run(&[
                    &base[..],
                    &class[..],
                    &["htb", "rate", "8bit", "ceil", "8bit"],
                ]
                .concat())?;
            } else {
                run(&[&base[..], &["qdisc", "del", "dev", &dev, "root"]].concat())?;
            }
        }
        Ok(())
    }

    /// Puts a `netem` qdisc (`spec`: "delay 5ms loss 1%"...) on `host`'s link, or `Err` if
    /// this kernel has no `sch_netem`.
    pub fn netem(&self, host: Host, spec: &str) -> Result<(), String> {
        let (ns, dev) = (self.ns(host), self.dev(host));
        let mut args = vec![
            "ip", "netns", "exec", &ns, "tc", "qdisc", "add", "dev", &dev,
        ];
        args.extend(["root", "netem"]);
        args.extend(spec.split_whitespace());
        run(&args)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // The client's namespace holds this test process itself: its processes are left.
        for host in [Host::Worker1, Host::Worker2, Host::Server] {
            for pid in pids(&self.ns(host)) {
                // SAFETY: sending signals has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGCONT);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        for host in HOSTS {
            let _ = run(&["ip", "netns", "del", &self.ns(host)]);
        }
        let _ = run(&["ip", "netns", "del", &self.bridge_ns()]);
    }
}

/// `pid` and all its descendants, from `/proc`.
fn descendants(pid: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|entry| {
                let name = entry.ok()?.file_name();
                let child: i32 = name.to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
                // The parent is the second field after the command, which is in parentheses.
                let after = stat.rsplit_once(')')?.1;
                let parent = after.split_whitespace().nth(1)?.parse().ok()?;
                Some((child, parent))
            })
            .collect()
        })
        .unwrap_or_default();
    let mut found = vec![pid];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        next += 1;
    }
    found
}

/// The processes in namespace `ns`.
fn pids(ns: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &Path) {
    let file = std::fs::File::open(path).expect("the namespace exists");
    // SAFETY: `file` is an open descriptor of a network namespace, kept open for the call;
    // setns changes only the calling thread's namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Runs a worker on the host whose namespace is at `netns`; started by
/// [`Hosts::spawn_worker`].
#[flotilla::task]
pub fn serve_in(netns: PathBuf, url: String, slots: usize, visibility_ms: u64) {
    enter(&netns);
    super::run_worker(&url, slots, visibility_ms);
}
