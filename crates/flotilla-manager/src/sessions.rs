//! Who is connected to a manager's server, and the lease that ends a silent session.
//!
//! A session is one client process (all its connections). Every request on any of its
//! connections renews its lease, and an idle client renews it on its own every quarter lease
//! ([`Request::Renew`](super::protocol::Request::Renew)). A session not heard from for a whole
//! lease is expired: a process that was stopped (`SIGSTOP`), or whose host or network went
//! silent, so that no end of file will ever tell us it is gone. Its connections are shut down,
//! which ends their threads and any wait they were in, and the server gives back what the
//! session held, as when a client's last connection closes. A later hello with an expired
//! session's id is told so, and the client starts a new session.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::protocol::Session;
use super::transport::Stream;
use flotilla_core::primitives::{Arc, Mutex, lock};

/// How many expired sessions are remembered, to tell their clients (older ones are told
/// nothing, and simply start afresh).
const REMEMBERED: usize = 1024;

/// The sessions of one server.
#[derive(Debug)]
pub(crate) struct Sessions {
    lease: Duration,
    /// When [`expire_silent`](Sessions::expire_silent) last looked.
    looked: Mutex<Instant>,
    /// The origin of the millisecond clock in [`Entry::heard`].
    epoch: Instant,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    live: HashMap<Session, Entry>,
    /// Recently expired sessions, oldest first.
    expired: VecDeque<Session>,
    /// Numbers the connections.
    next: u64,
}

#[derive(Debug)]
struct Entry {
    /// When the session was last heard from, in milliseconds since [`Sessions::epoch`].
    heard: Arc<AtomicU64>,
    /// Its open connections, to shut down if it expires.
    conns: HashMap<u64, Arc<Stream>>,
}

/// One connection's place in its session; renews the lease.
#[derive(Debug)]
pub(crate) struct Member {
    session: Session,
    id: u64,
    heard: Arc<AtomicU64>,
}

/// A hello named a session that has expired.
#[derive(Debug)]
pub(crate) struct Expired;

impl Sessions {
    pub(crate) fn new(lease: Duration) -> Sessions {
        Sessions {
            lease,
            looked: Mutex::new(Instant::now()),
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
        }
    }

    /// How long a session may stay silent.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// How often to look for expired sessions: a silent session ends at most a lease and
    /// this long after it was last heard from.
    pub(crate) fn check_every(&self) -> Duration {
        (self.lease / 8).max(Duration::from_millis(10))
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Counts `stream` into `session` and renews it; refuses a session that has expired.
    pub(crate) fn join(&self, session: Session, stream: Arc<Stream>) -> Result<Member, Expired> {
        let now = self.now();
        let mut table = lock(&self.table);
        if table.expired.contains(&session) {
            return Err(Expired);
        }
        let id = table.next;
        table.next += 1;
        let entry = table.live.entry(session).or_insert_with(|| Entry {
            heard: Arc::new(AtomicU64::new(now)),
            conns: HashMap::new(),
        });
        entry.heard.store(now, Ordering::Relaxed);
        entry.conns.insert(id, stream);
        Ok(Member {
            session,
            id,
            heard: Arc::clone(&entry.heard),
        })
    }

    /// The session was heard from.
    pub(crate) fn renew(&self, member: &Member) {
        member.heard.store(self.now(), Ordering::Relaxed);
    }

    /// Counts a connection out. Returns whether the session's holdings must be given back:
    /// when this was its last connection, or when it expired (a connection of an expired
    /// session may have taken something after the expiry gave everything back).
    pub(crate) fn leave(&self, member: &Member) -> bool {
        let mut table = lock(&self.table);
        let Some(entry) = table.live.get_mut(&member.session) else {
            return true;
        };
        entry.conns.remove(&member.id);
        if !entry.conns.is_empty() {
            return false;
        }
        table.live.remove(&member.session);
        true
    }

    /// Expires every session silent for longer than the lease: shuts its connections down
    /// (their threads end, and so do their waits) and returns it, for its holdings to be
    /// given back.
    ///
    /// If this server itself was silent (stopped, or starved) for half a lease since it last
    /// looked, its clients could not have been heard meanwhile: it renews them all instead.
    pub(crate) fn expire_silent(&self) -> Vec<Session> {
        let limit = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let now = self.now();
        let mut table = lock(&self.table);
        let paused = {
            let mut looked = lock(&self.looked);
            let paused = looked.elapsed() > self.lease / 2;
            *looked = Instant::now();
            paused
        };
        if paused {
            for entry in table.live.values() {
                entry.heard.store(now, Ordering::Relaxed);
            }
            return Vec::new();
        }
        let silent: Vec<Session> = table
            .live
            .iter()
            .filter(|(_, entry)| now.saturating_sub(entry.heard.load(Ordering::Relaxed)) > limit)
            .map(|(session, _)| *session)
            .collect();
        for session in &silent {
            if let Some(entry) = table.live.remove(session) {
                for stream in entry.conns.values() {
                    stream.shut_down();
                }
            }
            if table.expired.len() == REMEMBERED {
                table.expired.pop_front();
            }
            table.expired.push_back(*session);
        }
        silent
    }
}

impl Member {
    /// The session this connection belongs to.
    pub(crate) fn session(&self) -> Session {
        self.session
    }
}
