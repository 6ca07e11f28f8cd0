//! Every failed `put` on a `flotilla::process::Queue` hands the item back: made to fail by an
//! item that cannot be encoded, a full queue, a wait that runs out, an owner that was killed
//! (its broker dead) and an owner that exited (the queue closed), locally and through the
//! broker. The items carry a pipe end, so "handed back" means the very same, still working,
//! connection.

use std::time::Duration;

use flotilla::process::{Connection, Process, PutError, Queue, SendError, StartedProcess, pipe};

#[path = "support/children.rs"]
mod children;
#[path = "support/handed_back.rs"]
mod handed_back;

use children::{PATIENCE, finish, kill, start};
use handed_back::{Item, same_item};

/// All the ways a put can fail on `q` while the queue itself works: the item cannot be
/// encoded; and, for a bounded queue that is full, no room now or within a short wait.
fn hand_back_when_unencodable_or_full(q: &Queue<Item>) {
    let (ours, peer) = pipe::<u8>().unwrap();
    let SendError { item, error } = q.put((1, Some(ours))).unwrap_err();
    assert!(matches!(error, flotilla::Error::Codec { .. }), "{error}");
    assert!(error.to_string().contains("Connection"), "{error}");
    same_item(item, 1, &peer);

    let (ours, peer) = pipe::<u8>().unwrap();
    match q.try_put((2, Some(ours))) {
        Err(PutError::Failed(item, err)) => {
            assert!(matches!(err, flotilla::Error::Codec { .. }), "{err}");
            same_item(item, 2, &peer);
        }
        other => panic!("expected an encoding failure, got {other:?}"),
    }

    // Fill the queue (it holds one), then fail for lack of room.
    q.put((0, None)).unwrap();
    match q.try_put((3, None)) {
        Err(PutError::Full((3, None))) => {}
        other => panic!("expected Full with the item, got {other:?}"),
    }
    match q.put_timeout((4, None), Duration::from_millis(20)) {
        Err(PutError::Full((4, None))) => {}
        other => panic!("expected Full with the item after the wait, got {other:?}"),
    }
    assert_eq!(q.try_get().unwrap().0, 0);
}

#[test]
fn a_local_put_hands_back_what_it_could_not_add() {
    hand_back_when_unencodable_or_full(&Queue::bounded(1).unwrap());
}

#[flotilla::task]
fn remote_hand_back(q: Queue<Item>) {
    hand_back_when_unencodable_or_full(&q);
}

#[test]
fn a_put_through_the_broker_hands_back_what_it_could_not_add() {
    let q = Queue::<Item>::bounded(1).unwrap();
    finish(&start(Process::new(RemoteHandBackTask, q.clone())));
    assert!(q.try_get().unwrap_err().is_empty());
}

/// Creates a queue, hands it to the parent, and returns once told to (or waits to be killed).
#[flotilla::task]
fn own_a_queue(outbox: Queue<Queue<u32>>, leave: Queue<()>) {
    let mine = Queue::bounded(1).unwrap();
    outbox.put(mine.clone()).unwrap();
    leave.get().unwrap();
}

/// Starts an owner and returns it with a handle, in this process, to the queue it owns.
fn owned_elsewhere() -> (StartedProcess, Queue<u32>, Queue<()>) {
    let (outbox, leave) = (Queue::new(), Queue::new());
    let owner = start(Process::new(OwnAQueueTask, (outbox.clone(), leave.clone())));
    let theirs: Queue<u32> = outbox.get_timeout(PATIENCE).unwrap();
    (owner, theirs, leave)
}

/// Every put on `q`, whose owner is gone, fails as disconnected and hands its item back.
fn every_put_hands_back(q: &Queue<u32>) {
    let SendError { item, error } = q.put(10).unwrap_err();
    assert_eq!(item, 10);
    assert!(error.is_disconnected(), "{error}");
    match q.try_put(11) {
        Err(PutError::Failed(11, err)) => assert!(err.is_disconnected(), "{err}"),
        other => panic!("expected a failure with the item, got {other:?}"),
    }
    match q.put_timeout(12, PATIENCE) {
        Err(PutError::Failed(12, err)) => assert!(err.is_disconnected(), "{err}"),
        other => panic!("expected a failure with the item, got {other:?}"),
    }
}

#[test]
fn puts_hand_the_item_back_when_the_broker_was_killed() {
    let (owner, theirs, _leave) = owned_elsewhere();
    theirs.put(1).unwrap(); // reachable, and now full
    kill(&owner);
    every_put_hands_back(&theirs);
}

#[test]
fn puts_hand_the_item_back_when_the_owner_has_exited() {
    let (owner, theirs, leave) = owned_elsewhere();
    leave.put(()).unwrap();
    finish(&owner);
    every_put_hands_back(&theirs);
}

#[test]
fn a_put_waiting_for_room_hands_the_item_back_when_the_owner_dies() {
    let (owner, theirs, _leave) = owned_elsewhere();
    theirs.put(1).unwrap(); // full: the next put waits in the broker
    let waiting = std::thread::spawn({
        let theirs = theirs.clone();
        move || theirs.put(2)
    });
    // Whether the kill lands before the request or while the broker holds it waiting, the
    // put must end, disconnected, with its item.
    kill(&owner);
    let SendError { item, error } = waiting.join().unwrap().unwrap_err();
    assert_eq!(item, 2);
    assert!(error.is_disconnected(), "{error}");
}

#[test]
fn question_mark_turns_a_send_error_into_the_error() {
    fn put_through(q: &Queue<Connection<u8>>, c: Connection<u8>) -> Result<(), flotilla::Error> {
        q.put(c)?;
        Ok(())
    }
    let (a, _b) = pipe::<u8>().unwrap();
    let err = put_through(&Queue::new(), a).unwrap_err();
    assert!(matches!(err, flotilla::Error::Codec { .. }), "{err}");
}
