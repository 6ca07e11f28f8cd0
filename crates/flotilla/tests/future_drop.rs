//! What dropping a `Future` does: a handle that polled the future leaves no waker behind when
//! it is dropped.
//!
//! A `Promise` drives every state by hand, so nothing here depends on thread timing.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};

use flotilla::Future;

#[path = "support/futures.rs"]
mod futures;
use futures::pending;

/// A waker that counts its wake-ups; `Weak`s to it show whether the future still holds it.
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Counting>, Waker) {
    let counter = Arc::new(Counting(AtomicUsize::new(0)));
    (Arc::clone(&counter), Waker::from(counter))
}

fn poll_once(future: &mut Future<u32>, waker: &Waker) -> Poll<Result<u32, flotilla::Error>> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// 200,000 pollers that each gave up on one pending future leave none of their wakers behind.
#[test]
fn pollers_that_gave_up_leave_no_waker_behind() {
    const POLLERS: usize = 200_000;
    let (promise, future) = pending();
    let mut held: Vec<Weak<Counting>> = Vec::with_capacity(POLLERS);
    for _ in 0..POLLERS {
        let (counter, waker) = counting();
        let mut poller = future.clone();
        assert!(poll_once(&mut poller, &waker).is_pending());
        drop((poller, waker));
        held.push(Arc::downgrade(&counter));
    }
    let alive = held.iter().filter(|w| w.strong_count() > 0).count();
    assert_eq!(alive, 0, "wakers kept by the pending future");
    promise.complete(Ok(1));
    assert_eq!(future.result(None).unwrap(), 1);
}

/// One handle polled by one task after another keeps only the latest waker, and that one is
/// woken.
#[test]
fn a_handle_keeps_only_its_latest_waker() {
    let (promise, mut future) = pending();
    let mut earlier = Vec::new();
    for _ in 0..1000 {
        let (counter, waker) = counting();
        assert!(poll_once(&mut future, &waker).is_pending());
        earlier.push(Arc::downgrade(&counter));
    }
    let (last, waker) = counting();
    assert!(poll_once(&mut future, &waker).is_pending());
    drop(waker);
    assert_eq!(earlier.iter().filter(|w| w.strong_count() > 0).count(), 0);
    promise.complete(Ok(2));
    assert_eq!(
        last.0.load(Ordering::SeqCst),
        1,
        "the latest waker was woken"
    );
    assert!(matches!(
        poll_once(&mut future, Waker::noop()),
        Poll::Ready(Ok(2))
    ));
}

/// Every still-waiting poller is woken once, and a handle dropped after completion is fine.
#[test]
fn every_poller_still_waiting_is_woken() {
    let (promise, future) = pending();
    let pollers: Vec<_> = (0..3)
        .map(|_| {
            let (counter, waker) = counting();
            let mut poller = future.clone();
            assert!(poll_once(&mut poller, &waker).is_pending());
            (counter, poller)
        })
        .collect();
    let completer = std::thread::spawn(move || promise.complete(Ok(4)));
    completer.join().unwrap();
    for (counter, mut poller) in pollers {
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(matches!(
            poll_once(&mut poller, Waker::noop()),
            Poll::Ready(Ok(4)) | Poll::Ready(Err(flotilla::Error::ResultTaken))
        ));
    }
}
