//! Connections that have not yet proven the authkey, bounded in number.
//!
//! A stranger may open connections and say nothing; each would hold a thread and a descriptor
//! for the whole handshake time limit. So at most [`PER_PEER`] handshakes run at once for
//! one peer (an IP address, or a local process), and at most [`AT_ONCE`] in all; a new
//! connection over either limit pushes out the oldest one waiting (that peer's, or anyone's),
//! which is shut down. An honest client answers within a round trip, so it gets through
//! unless connections arrive faster than that; silent ones can no longer use up the
//! server's descriptors.

use std::collections::VecDeque;

use super::transport::{Peer, Stream};
use flotilla_core::primitives::{Arc, Mutex, lock};

/// The most handshakes one peer may have under way.
pub(crate) const PER_PEER: usize = 16;

/// The most handshakes under way in all.
pub(crate) const AT_ONCE: usize = 128;

/// The handshakes under way, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    waiting: Mutex<Waiting>,
}

#[derive(Debug, Default)]
struct Waiting {
    queue: VecDeque<(u64, Peer, Arc<Stream>)>,
    next: u64,
}

/// A handshake under way; dropping it (the handshake ended) lets the next one in.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    gate: &'a Gate,
    id: u64,
}

impl Gate {
    /// Admits `stream`'s handshake, pushing out the oldest one waiting if a limit is reached.
    pub(crate) fn enter(&self, stream: &Arc<Stream>) -> Pass<'_> {
        let peer = stream.peer();
        let mut waiting = lock(&self.waiting);
        let theirs = waiting.queue.iter().filter(|(_, p, _)| *p == peer).count();
        let evict = if theirs >= PER_PEER {
            waiting.queue.iter().position(|(_, p, _)| *p == peer)
        } else if waiting.queue.len() >= AT_ONCE {
            Some(0)
        } else {
            None
        };
        if let Some((_, peer, stream)) = evict.and_then(|at| waiting.queue.remove(at)) {
            tracing::warn!(?peer, "manager: too many handshakes; closing the oldest");
            stream.shut_down();
        }
        let id = waiting.next;
        waiting.next += 1;
        waiting.queue.push_back((id, peer, Arc::clone(stream)));
        Pass { gate: self, id }
    }

    /// How many handshakes are under way.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.waiting).queue.len()
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut waiting = lock(&self.gate.waiting);
        if let Some(at) = waiting.queue.iter().position(|(id, ..)| *id == self.id) {
            waiting.queue.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_of_a_peer_is_pushed_out_at_its_limit() {
        let gate = Gate::default();
        let pairs: Vec<_> = (0..=PER_PEER)
            .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
            .collect();
        let streams: Vec<Arc<Stream>> = pairs
            .iter()
            .map(|(a, _)| Arc::new(Stream::Unix(a.try_clone().unwrap())))
            .collect();
        let passes: Vec<Pass<'_>> = streams.iter().map(|s| gate.enter(s)).collect();
        assert_eq!(gate.len(), PER_PEER);
        // The first was shut down: its peer reads end of file at once.
        let mut byte = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut &pairs[0].1, &mut byte).unwrap(), 0);
        drop(passes);
        assert_eq!(gate.len(), 0);
    }
}
