//! Every failed `put` on a `flotilla::manager::Queue` hands the item back: made to fail by an
//! item that cannot be encoded, a full queue, a wait that runs out, a manager that was shut
//! down (the queue closed) and a server killed with SIGKILL, including a put that was waiting
//! for room when the server died.

use std::time::Duration;

use flotilla::manager::{Manager, Queue};
use flotilla::process::{PutError, SendError, pipe};

#[path = "support/handed_back.rs"]
mod handed_back;

use handed_back::{Item, same_item};

const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn puts_hand_back_what_they_could_not_encode_or_fit() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let q = manager.queue::<Item>(Some(1))?;

    let (ours, peer) = pipe::<u8>()?;
    let SendError { item, error } = q.put((1, Some(ours))).unwrap_err();
    assert!(matches!(error, flotilla::Error::Codec { .. }), "{error}");
    same_item(item, 1, &peer);
    for (n, timeout) in [(2, Duration::ZERO), (3, Duration::from_millis(20))] {
        let (ours, peer) = pipe::<u8>()?;
        match q.put_timeout((n, Some(ours)), timeout) {
            Err(PutError::Failed(item, err)) => {
                assert!(matches!(err, flotilla::Error::Codec { .. }), "{err}");
                same_item(item, n, &peer);
            }
            other => panic!("expected an encoding failure, got {other:?}"),
        }
    }

    q.put((0, None))?; // now full
    match q.try_put((4, None)) {
        Err(PutError::Full((4, None))) => {}
        other => panic!("expected Full with the item, got {other:?}"),
    }
    match q.put_timeout((5, None), Duration::from_millis(20)) {
        Err(PutError::Full((5, None))) => {}
        other => panic!("expected Full with the item after the wait, got {other:?}"),
    }
    assert_eq!(q.qsize()?, 1);
    Ok(())
}

/// Every put on `q`, whose server is gone, fails as disconnected and hands its item back.
fn every_put_hands_back(q: &Queue<String>) {
    let SendError { item, error } = q.put("a".to_owned()).unwrap_err();
    assert_eq!(item, "a");
    assert!(error.is_disconnected(), "{error}");
    for timeout in [Duration::ZERO, PATIENCE] {
        match q.put_timeout("b".to_owned(), timeout) {
            Err(PutError::Failed(item, err)) => {
                assert_eq!(item, "b");
                assert!(err.is_disconnected(), "{err}");
            }
            other => panic!("expected a failure with the item, got {other:?}"),
        }
    }
}

#[test]
fn puts_hand_the_item_back_when_the_manager_was_shut_down() -> Result<(), flotilla::Error> {
    let mut manager = Manager::new()?;
    let q = manager.queue::<String>(None)?;
    q.put("reachable".to_owned())?;
    manager.shutdown()?;
    every_put_hands_back(&q);
    Ok(())
}

/// SIGKILLs the server of `manager` and waits until it is reaped (it is our child).
fn kill_server(manager: &Manager) {
    let pid = manager.pid().expect("an owner knows its server");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our live child's.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
}

#[test]
fn puts_hand_the_item_back_when_the_server_was_killed() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let q = manager.queue::<String>(Some(1))?;
    q.put("reachable".to_owned())?;
    kill_server(&manager);
    every_put_hands_back(&q);
    Ok(())
}

#[test]
fn a_put_waiting_for_room_hands_the_item_back_when_the_server_dies() -> Result<(), flotilla::Error>
{
    let manager = Manager::new()?;
    let q = manager.queue::<String>(Some(1))?;
    q.put("first".to_owned())?; // full: the next put waits in the server
    let waiting = std::thread::spawn({
        let q = q.clone();
        move || q.put("second".to_owned())
    });
    // Whether the kill lands before the request or while the server holds it waiting, the
    // put must end, disconnected, with its item.
    kill_server(&manager);
    let SendError { item, error } = waiting.join().unwrap().unwrap_err();
    assert_eq!(item, "second");
    assert!(error.is_disconnected(), "{error}");
    Ok(())
}
