//! A unix-socket proxy in front of a test's `redis-server` that breaks the path on command:
//! a stall (connections stay open, nothing moves), a partition (every connection cut, new
//! ones refused), or a reply swallowed after the server acted on a request.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A reply to swallow, once.
#[derive(Clone, Debug)]
pub enum Cut {
    /// After a request containing these bytes, swallow the server's (non-error) reply and
    /// partition the path.
    PartitionAfter(Vec<u8>),
    /// On a connection that has read the task stream (`XREADGROUP`), swallow the first
    /// successful array reply to a script call (a worker's claim) and cut that connection.
    ClaimReply,
}

#[derive(Default)]
struct State {
    stalled: AtomicBool,
    partitioned: AtomicBool,
    stop: AtomicBool,
    cut: Mutex<Option<Cut>>,
}

pub struct Proxy {
    path: PathBuf,
    state: Arc<State>,
}

impl Proxy {
    /// Listens on `dir/proxy.sock` and forwards to the server socket `target`.
    pub fn start(target: &Path, dir: &Path) -> Proxy {
        let path = dir.join("proxy.sock");
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(State::default());
        let target = target.to_owned();
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || accept(&listener, &target, &accept_state));
        Proxy { path, state }
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.path.display())
    }

    /// Holds every byte in both directions while `on`.
    pub fn stall(&self, on: bool) {
        self.state.stalled.store(on, Ordering::SeqCst);
    }

    /// Cuts every connection and refuses new ones while `on`.
    pub fn partition(&self, on: bool) {
        self.state.partitioned.store(on, Ordering::SeqCst);
    }

    pub fn partitioned(&self) -> bool {
        self.state.partitioned.load(Ordering::SeqCst)
    }

    /// Arms a one-shot cut.
    pub fn cut(&self, cut: Cut) {
        *self.state.cut.lock().unwrap() = Some(cut);
    }

    /// True once the armed cut has happened.
    pub fn cut_done(&self) -> bool {
        self.state.cut.lock().unwrap().is_none()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn accept(listener: &UnixListener, target: &Path, state: &Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if state.partitioned.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = UnixStream::connect(target) else {
                    continue;
                };
                let link = Arc::new(Link::default());
                for (from, to, upstream) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        true,
                    ),
                    (server, client, false),
                ] {
                    let state = Arc::clone(state);
                    let link = Arc::clone(&link);
                    std::thread::spawn(move || pump(from, to, upstream, &state, &link));
                }
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                // The accept loop's own pace; it orders nothing in the tests.
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
}

/// What one proxied connection has seen.
#[derive(Default)]
struct Link {
    read_tasks: AtomicBool,
    /// The next reply from the server is to be swallowed, then the link cut (and, for
    /// `PartitionAfter`, the path partitioned).
    swallow: Mutex<Option<Cut>>,
    dead: AtomicBool,
}

fn pump(mut from: UnixStream, mut to: UnixStream, upstream: bool, state: &State, link: &Link) {
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if state.stop.load(Ordering::SeqCst)
            || state.partitioned.load(Ordering::SeqCst)
            || link.dead.load(Ordering::SeqCst)
        {
            break;
        }
        if state.stalled.load(Ordering::SeqCst) {
            // Nothing moves during a stall; this is the proxy's own pace.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue;
            }
            Err(_) => break,
        };
        let chunk = &buf[..n];
        if upstream {
            if contains(chunk, b"XREADGROUP") {
                link.read_tasks.store(true, Ordering::SeqCst);
            }
            let cut = state.cut.lock().unwrap();
            let hit = match &*cut {
                Some(Cut::PartitionAfter(marker)) => contains(chunk, marker),
                Some(Cut::ClaimReply) => {
                    link.read_tasks.load(Ordering::SeqCst) && contains(chunk, b"EVALSHA")
                }
                None => false,
            };
            if hit {
                *link.swallow.lock().unwrap() = cut.clone();
            }
            drop(cut);
        } else {
            let swallow = link.swallow.lock().unwrap().take();
            if let Some(kind) = swallow {
                let ok = match kind {
                    Cut::PartitionAfter(_) => chunk.first() != Some(&b'-'),
                    Cut::ClaimReply => chunk.first() == Some(&b'*'),
                };
                if ok {
                    *state.cut.lock().unwrap() = None;
                    if matches!(kind, Cut::PartitionAfter(_)) {
                        state.partitioned.store(true, Ordering::SeqCst);
                    }
                    link.dead.store(true, Ordering::SeqCst);
                    break;
                }
            }
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    link.dead.store(true, Ordering::SeqCst);
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
