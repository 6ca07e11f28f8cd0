//! The Python-parity objects of `flotilla::manager` made to fail: a client killed holding an
//! `RLock` or a `Condition`'s lock, or waiting on a condition it was notified on; the server
//! killed under a waiting `Condition` and a `join`; a `BoundedSemaphore` released too often
//! and its dead holder's permits; a queue shut down under blocked readers and writers in
//! other processes; user-registered types called from several processes, panicking, asked for
//! under the wrong name or type; and raw hostile requests for each new operation. Nothing
//! hangs (every wait under test has a deadline) and the server serves on.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use flotilla::manager::{
    Address, BoundedSemaphore, Condition, Event, Manager, Queue, RLock, Setup, Shared,
};
use flotilla::process::{GetError, Process, pipe};
use flotilla::shared::LockError;

#[path = "support/raw_manager.rs"]
mod raw_manager;

use raw_manager::call;

const PATIENCE: Duration = Duration::from_secs(60);

/// Sets `done` (the caller has done what the test waits for), then waits to be killed.
fn report_and_park(done: &Event) -> ! {
    done.set().unwrap();
    loop {
        std::thread::park();
    }
}

/// Takes the re-entrant lock twice, says so, and waits to be killed with it held.
#[flotilla::task]
fn hold_rlock(lock: RLock, holding: Event) {
    let _outer = lock.lock().unwrap();
    let _inner = lock.lock().unwrap();
    report_and_park(&holding);
}

#[test]
fn a_client_killed_holding_an_rlock_twice_is_reported_to_the_next_holder()
-> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let lock = manager.rlock()?;
    let holding = manager.event()?;
    let holder = Process::new(HoldRlockTask, (lock.clone(), holding.clone())).start()?;
    assert!(holding.wait_timeout(PATIENCE)?);
    assert!(lock.try_lock().unwrap_err().is_busy());
    holder.kill();
    assert!(holder.join_timeout(PATIENCE));
    // Both holds went with the process: the lock is free, and says a holder died.
    match lock.lock_timeout(PATIENCE) {
        Err(LockError::OwnerDied(guard)) => guard.mark_consistent()?,
        Ok(_) => panic!("the holder's death was not reported"),
        Err(err) => panic!("unexpected {err}"),
    }
    let again = lock.lock_timeout(PATIENCE);
    assert!(again.is_ok(), "reported after mark_consistent");
    Ok(())
}

#[test]
fn an_rlock_guard_dropped_on_another_thread_releases_its_own_hold() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let lock = manager.rlock()?;
    let guard = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            // This thread does not hold the lock, but the guard remembers who does.
            drop(guard);
        })
        .join()
        .unwrap();
        assert!(s.spawn(|| lock.try_lock().is_ok()).join().unwrap());
    });
    Ok(())
}

#[test]
fn an_rlock_held_by_one_thread_excludes_another_thread_of_the_same_process()
-> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let lock = manager.rlock()?;
    let (taken, told) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let lock = &lock;
        s.spawn(move || {
            let _held = lock.lock().unwrap();
            taken.send(()).unwrap();
            released.recv().unwrap();
        });
        told.recv().unwrap();
        assert!(matches!(lock.try_lock(), Err(LockError::WouldBlock)));
        release.send(()).unwrap();
    });
    assert!(lock.try_lock().is_ok());
    Ok(())
}

/// Takes the condition's lock, says it is about to wait, and waits for ever.
#[flotilla::task]
fn wait_on(cond: Condition, waiting: Event) {
    let mut guard = cond.lock().unwrap();
    waiting.set().unwrap();
    let _ = guard.wait();
}

#[test]
fn a_notification_given_to_a_killed_waiter_passes_to_the_next() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let cond = manager.condition()?;
    let waiting = manager.event()?;
    let first = Process::new(WaitOnTask, (cond.clone(), waiting.clone())).start()?;
    assert!(waiting.wait_timeout(PATIENCE)?);
    // The child released the lock only inside its wait: once this holds it, the child waits.
    drop(cond.lock().unwrap());
    let (ready, is_ready) = std::sync::mpsc::channel();
    std::thread::scope(|s| -> Result<(), flotilla::Error> {
        let second = s.spawn(|| {
            let mut guard = cond.lock().unwrap();
            ready.send(()).unwrap();
            guard.wait_timeout(PATIENCE).unwrap()
        });
        is_ready.recv().unwrap();
        // Behind the child in line. Kill the child, then notify one: the first in line is
        // dead (the server may not know yet), and the notification must not die with it.
        let guard = cond.lock().unwrap();
        first.kill();
        assert!(first.join_timeout(PATIENCE));
        guard.notify()?;
        drop(guard);
        assert!(second.join().unwrap(), "the live waiter was never notified");
        Ok(())
    })
}

#[test]
fn a_waiter_killed_while_it_waits_to_take_the_lock_back_never_takes_it()
-> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let cond = manager.condition()?;
    let waiting = manager.event()?;
    let waiter = Process::new(WaitOnTask, (cond.clone(), waiting.clone())).start()?;
    assert!(waiting.wait_timeout(PATIENCE)?);
    let guard = cond.lock().unwrap(); // the child waits (it released the lock in its wait)
    guard.notify()?;
    // Notified, it now waits for the lock this test holds: the worst moment to die.
    waiter.kill();
    assert!(waiter.join_timeout(PATIENCE));
    drop(guard);
    // The dead waiter never took the lock back, so nobody is told of a death.
    std::thread::scope(|s| {
        let taken = s.spawn(|| match cond.lock_timeout(PATIENCE) {
            Ok(guard) => !guard.owner_died(),
            Err(_) => false,
        });
        assert!(taken.join().unwrap());
    });
    Ok(())
}

/// Takes the condition's lock, says so, and waits to be killed with it held.
#[flotilla::task]
fn hold_condition(cond: Condition, holding: Event) {
    let _held = cond.lock().unwrap();
    report_and_park(&holding);
}

#[test]
fn a_client_killed_holding_a_condition_is_reported_to_the_waiter_that_takes_it_back()
-> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let cond = manager.condition()?;
    let holding = manager.event()?;
    let (ready, is_ready) = std::sync::mpsc::channel();
    std::thread::scope(|s| -> Result<(), flotilla::Error> {
        // A waiter, waiting (it released the lock inside its wait) before the holder takes
        // the lock.
        let waiter = s.spawn(|| {
            let mut guard = cond.lock().unwrap();
            ready.send(()).unwrap();
            let notified = guard.wait_timeout(PATIENCE).unwrap();
            (notified, guard.owner_died())
        });
        is_ready.recv().unwrap();
        let holder = Process::new(HoldConditionTask, (cond.clone(), holding.clone())).start()?;
        assert!(holding.wait_timeout(PATIENCE)?);
        // A notifier blocked behind the child: it gets the lock, told of the death, once
        // the child is killed; the waiter it notifies takes the lock back, told too.
        let (notify, notified) = std::sync::mpsc::channel();
        let cond = &cond;
        s.spawn(move || {
            let guard = match cond.lock() {
                Ok(guard) | Err(LockError::OwnerDied(guard)) => guard,
                Err(err) => panic!("{err}"),
            };
            guard.notify().unwrap();
            notify.send(guard.owner_died()).unwrap();
        });
        holder.kill();
        assert!(holder.join_timeout(PATIENCE));
        assert!(
            notified.recv_timeout(PATIENCE).unwrap(),
            "the death was not reported"
        );
        let (was_notified, owner_died) = waiter.join().unwrap();
        assert!(was_notified);
        assert!(
            owner_died,
            "the waiter took back a lock whose holder died, untold"
        );
        Ok(())
    })
}

fn kill_server(manager: &Manager) {
    let pid = manager.pid().expect("an owner knows its server");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our live child's.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
}

#[test]
fn a_condition_wait_and_a_queue_join_fail_when_the_server_is_killed() -> Result<(), flotilla::Error>
{
    let manager = Manager::new()?;
    let cond = manager.condition()?;
    let queue = manager.joinable_queue::<u8>(None)?;
    queue.put(1)?;
    let (ready, is_ready) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut guard = cond.lock().unwrap();
            ready.send(()).unwrap();
            guard.wait()
        });
        let joiner = s.spawn(|| queue.join());
        is_ready.recv().unwrap();
        // The waiter is waiting once its lock is free.
        drop(cond.lock().unwrap());
        kill_server(&manager);
        assert!(waiter.join().unwrap().unwrap_err().is_disconnected());
        assert!(joiner.join().unwrap().unwrap_err().is_disconnected());
    });
    Ok(())
}

/// Takes a permit, says so, and waits to be killed.
#[flotilla::task]
fn hold_bounded(sem: BoundedSemaphore, holding: Event) {
    sem.acquire().unwrap();
    report_and_park(&holding);
}

#[test]
fn a_bounded_semaphore_gets_a_dead_holders_permit_back_and_refuses_over_release()
-> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let sem = manager.bounded_semaphore(2)?;
    let holding = manager.event()?;
    let holder = Process::new(HoldBoundedTask, (sem.clone(), holding.clone())).start()?;
    assert!(holding.wait_timeout(PATIENCE)?);
    assert_eq!(sem.value()?, 1);
    holder.kill();
    assert!(holder.join_timeout(PATIENCE));
    // The permit comes back (within the server's noticing the death)...
    assert!(sem.acquire_timeout(PATIENCE)?);
    assert!(sem.acquire_timeout(PATIENCE)?);
    sem.release()?;
    sem.release()?;
    // ...and never pushes the value over its bound.
    assert_eq!(sem.value()?, 2);
    assert!(matches!(
        sem.release(),
        Err(flotilla::Error::InvalidOperation { .. })
    ));
    assert_eq!(sem.value()?, 2);
    Ok(())
}

/// Blocks in a get, reporting where it is and how it ended.
#[flotilla::task]
fn blocked_reader(
    queue: Queue<u32>,
    waiting: Event,
    outcome: flotilla::process::Connection<String>,
) {
    waiting.set().unwrap();
    let got = match queue.get_timeout(PATIENCE) {
        Ok(item) => format!("item {item}"),
        Err(GetError::ShutDown) => "shut down".to_owned(),
        Err(err) => format!("{err}"),
    };
    outcome.send(&got).unwrap();
}

#[test]
fn shutdown_wakes_a_get_blocked_in_another_process() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let queue = manager.queue::<u32>(None)?;
    let waiting = manager.event()?;
    let (ours, theirs) = pipe::<String>()?;
    let reader =
        Process::new(BlockedReaderTask, (queue.clone(), waiting.clone(), theirs)).start()?;
    assert!(waiting.wait_timeout(PATIENCE)?);
    queue.shutdown(false)?;
    assert_eq!(ours.recv_timeout(PATIENCE)?, "shut down");
    assert!(reader.join_timeout(PATIENCE));
    assert!(
        queue
            .put(1)
            .unwrap_err()
            .error
            .to_string()
            .contains("shut down")
    );
    assert!(queue.get().unwrap_err().to_string().contains("shut down"));
    Ok(())
}

#[test]
fn shutdown_wakes_a_put_blocked_on_a_full_queue_and_hands_the_item_back()
-> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let queue = manager.queue::<String>(Some(1))?;
    queue.put("first".to_owned())?;
    std::thread::scope(|s| -> Result<(), flotilla::Error> {
        let putter = s.spawn(|| queue.put_timeout("second".to_owned(), PATIENCE));
        // Whether the put is waiting yet or not, it must end shut down, with its item.
        queue.shutdown(false)?;
        let err = putter.join().unwrap().unwrap_err();
        assert!(err.is_shut_down());
        assert_eq!(err.into_inner(), "second");
        Ok(())
    })?;
    // What was queued can still be drained, then gets report the shutdown.
    assert_eq!(queue.try_get().unwrap(), "first");
    assert!(queue.try_get().unwrap_err().is_shut_down());
    Ok(())
}

#[test]
fn an_immediate_shutdown_drops_the_items_and_counts_them_done() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let queue = manager.joinable_queue::<u32>(None)?;
    for i in 0..5 {
        queue.put(i)?;
    }
    let _taken = queue.get()?; // taken, not marked done
    queue.shutdown(true)?;
    assert!(queue.try_get().unwrap_err().is_shut_down());
    assert!(
        !queue.join_timeout(Duration::from_millis(10))?,
        "one task is unfinished"
    );
    queue.task_done()?;
    assert!(queue.join_timeout(PATIENCE)?);
    assert!(queue.task_done().is_err(), "more task_done than items");
    Ok(())
}

/// Takes one item, says so, and waits to be killed before marking it done.
#[flotilla::task]
fn take_and_hang(queue: Queue<u32>, taken: Event) {
    queue.get().unwrap();
    report_and_park(&taken);
}

#[test]
fn an_item_taken_by_a_consumer_killed_before_task_done_stays_unfinished()
-> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let queue = manager.joinable_queue::<u32>(None)?;
    let taken = manager.event()?;
    queue.put(1)?;
    let consumer = Process::new(TakeAndHangTask, (queue.clone(), taken.clone())).start()?;
    assert!(taken.wait_timeout(PATIENCE)?);
    consumer.kill();
    assert!(consumer.join_timeout(PATIENCE));
    // As documented (and as in Python): nobody marked it, so join does not return...
    assert!(!queue.join_timeout(Duration::from_millis(50))?);
    // ...until someone deals with the lost item and says so.
    queue.task_done()?;
    assert!(queue.join_timeout(PATIENCE)?);
    Ok(())
}

/// A counter: Python's `BaseManager.register('Counter', Counter)`.
struct Counter(i64);

impl Shared for Counter {
    type Args = i64;
    type Request = i64;
    type Reply = i64;

    fn new(start: i64) -> Counter {
        Counter(start)
    }

    fn call(&mut self, add: i64) -> i64 {
        if add == i64::MIN {
            panic!("asked to add i64::MIN");
        }
        self.0 += add;
        self.0
    }
}

/// A type with the counter's wire types, registered under another name.
struct Impostor;

impl Shared for Impostor {
    type Args = i64;
    type Request = i64;
    type Reply = i64;

    fn new(_: i64) -> Impostor {
        Impostor
    }

    fn call(&mut self, _: i64) -> i64 {
        -1
    }
}

#[flotilla::task]
fn counter_server(setup: Setup) {
    setup
        .register::<Counter>("Counter")
        .register::<Impostor>("Impostor")
        .serve();
}

#[flotilla::task]
fn twice_registered(setup: Setup) {
    setup
        .register::<Counter>("Counter")
        .register::<Impostor>("Counter")
        .serve();
}

#[flotilla::task]
fn add_many(counter: flotilla::manager::Remote<Counter>, times: u32) {
    for _ in 0..times {
        counter.call(&1).unwrap();
    }
}

#[test]
fn a_registered_counter_counts_every_call_from_four_processes() -> Result<(), flotilla::Error> {
    let manager = Manager::builder().server(CounterServerTask).start()?;
    let counter = manager.create::<Counter>("Counter", &100)?;
    let workers = (0..4)
        .map(|_| Process::new(AddManyTask, (counter.clone(), 50)).start())
        .collect::<Result<Vec<_>, _>>()?;
    for w in &workers {
        assert!(w.join_timeout(PATIENCE));
        assert_eq!(w.exitcode(), Some(0));
    }
    assert_eq!(counter.call(&0)?, 300);
    Ok(())
}

#[test]
fn registered_types_refuse_the_wrong_name_the_wrong_type_and_survive_a_panic()
-> Result<(), flotilla::Error> {
    let manager = Manager::builder().server(CounterServerTask).start()?;
    // An unregistered name.
    let err = manager.create::<Counter>("Nothing", &0).unwrap_err();
    assert!(
        matches!(&err, flotilla::Error::InvalidOperation { reason } if reason.contains("Nothing")),
        "{err}"
    );
    // A name registered for another type, though the wire types are the same.
    assert!(matches!(
        manager.create::<Counter>("Impostor", &0),
        Err(flotilla::Error::InvalidOperation { .. })
    ));
    // An object fetched by name as the wrong type.
    let counter = manager.create::<Counter>("Counter", &0)?;
    manager.register("c", &counter)?;
    let wrong: flotilla::manager::Remote<Impostor> = manager.get("c")?;
    assert!(matches!(
        wrong.call(&1),
        Err(flotilla::Error::InvalidOperation { .. })
    ));
    // Not a registered type's object at all.
    assert!(
        manager
            .get::<flotilla::manager::Remote<Counter>>("none")
            .is_err()
    );
    manager.register("d", &manager.dict::<u8, u8>()?)?;
    assert!(
        manager
            .get::<flotilla::manager::Remote<Counter>>("d")
            .is_err()
    );
    // A panic in the user's code fails that call only.
    let err = counter.call(&i64::MIN).unwrap_err();
    assert!(err.to_string().contains("asked to add i64::MIN"), "{err}");
    assert_eq!(counter.call(&2)?, 2);
    // The default server has no types.
    let plain = Manager::new()?;
    assert!(plain.create::<Counter>("Counter", &0).is_err());
    Ok(())
}

#[test]
fn a_typeid_registered_twice_stops_the_server_from_starting() {
    let err = Manager::builder()
        .server(TwiceRegisteredTask)
        .start()
        .unwrap_err();
    assert!(
        matches!(&err, flotilla::Error::Spawn { reason } if reason.contains("\"Counter\"")),
        "{err}"
    );
}

/// A registered type whose call says it started, then never returns.
struct Stuck;

impl Shared for Stuck {
    type Args = ();
    /// The event to set once the call is running (a proxy, used from inside the server).
    type Request = Event;
    type Reply = ();

    fn new((): ()) -> Stuck {
        Stuck
    }

    fn call(&mut self, started: Event) {
        report_and_park(&started);
    }
}

#[flotilla::task]
fn stuck_server(setup: Setup) {
    setup.register::<Stuck>("Stuck").serve();
}

#[test]
fn a_registered_call_in_progress_fails_disconnected_when_the_server_is_killed()
-> Result<(), flotilla::Error> {
    let manager = Manager::builder().server(StuckServerTask).start()?;
    let stuck = manager.create::<Stuck>("Stuck", &())?;
    let started = manager.event()?;
    std::thread::scope(|s| -> Result<(), flotilla::Error> {
        let call = s.spawn(|| stuck.call(&started));
        assert!(started.wait_timeout(PATIENCE)?, "the call never started");
        // The call is running in the server now.
        kill_server(&manager);
        assert!(call.join().unwrap().unwrap_err().is_disconnected());
        Ok(())
    })
}

const KEY: &[u8] = b"parity";

fn raw(addr: SocketAddr) -> TcpStream {
    raw_manager::raw_session(addr, KEY, [5; 16])
}

/// The reply variants these tests look at (postcard numbers variants by position).
const CREATED: u8 = 2;
const INVALID: u8 = 14;

/// Creates an object of kind number `kind`; returns its id (small enough for one byte).
fn create(stream: &mut TcpStream, kind: u8, arg: u8) -> u8 {
    let reply = call(stream, &[1, kind, arg, 0]);
    assert_eq!(reply[0], CREATED, "{reply:?}");
    reply[1]
}

fn refused_politely(stream: &mut TcpStream, body: &[u8], what: &str) {
    let reply = call(stream, body);
    assert_eq!(reply[0], INVALID, "{what}: {reply:?}");
}

#[test]
fn hostile_requests_to_the_new_objects_are_refused_and_the_connection_goes_on()
-> Result<(), flotilla::Error> {
    let manager = Manager::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .authkey(KEY.to_vec())
        .server(CounterServerTask)
        .start()?;
    let Address::Tcp(addr) = manager.address().clone() else {
        panic!("not TCP")
    };
    let honest = manager.dict::<u8, u8>()?;
    let mut s = raw(addr);
    let (dict, list, queue, rlock, cond) = (
        create(&mut s, 0, 0),
        create(&mut s, 1, 0),
        create(&mut s, 3, 0),
        create(&mut s, 8, 0),
        create(&mut s, 9, 0),
    );
    // Op = 4: [4, id, op, fields...]; thread numbers are varints; a None wait is 0.
    refused_politely(&mut s, &[4, cond, 53, 0, 1], "CondWait, lock not held");
    refused_politely(&mut s, &[4, cond, 54, 1, 1], "CondNotify, lock not held");
    refused_politely(&mut s, &[4, rlock, 51, 1], "RLockRelease, not held");
    refused_politely(&mut s, &[4, rlock, 52, 1], "RLockMarkConsistent, not held");
    refused_politely(&mut s, &[4, rlock, 53, 0, 1], "CondWait on an RLock");
    refused_politely(&mut s, &[4, queue, 46], "QueueTaskDone, nothing put");
    refused_politely(&mut s, &[4, list, 43, 1, 7], "ListRemove, absent");
    refused_politely(
        &mut s,
        &[4, list, 41, 1, 7, 5, 2],
        "ListIndex, reversed range",
    );
    refused_politely(&mut s, &[4, dict, 57], "GetLock on a dict");
    refused_politely(&mut s, &[4, dict, 58, 1, b'x', 0], "Call on a dict");
    refused_politely(&mut s, &[4, dict, 55], "ValueGet on a dict");
    refused_politely(&mut s, &[4, queue, 37], "BarrierReset on a queue");
    // Creates that make no sense: a value without its value, an array of nothing is fine,
    // initial contents for a dict, a registered type through the plain create.
    refused_politely(&mut s, &[1, 11, 0, 0], "a Value with no value");
    refused_politely(
        &mut s,
        &[1, 11, 0, 2, 1, 1, 1, 2],
        "a Value with two values",
    );
    refused_politely(&mut s, &[1, 0, 0, 1, 1, 1], "a Dict with contents");
    refused_politely(&mut s, &[1, 13, 0, 0], "a Shared object without a type");
    // CreateShared = 6: an unregistered typeid, and a registered one for a made-up type.
    refused_politely(
        &mut s,
        &[6, 4, b'N', b'o', b'p', b'e', 1, b'T', 0],
        "unregistered",
    );
    let mut wrong = vec![6, 7];
    wrong.extend_from_slice(b"Counter");
    wrong.extend_from_slice(&[3, b'a', b'b', b'c', 1, 0]);
    refused_politely(&mut s, &wrong, "a typeid for another type");
    // An array of no items is an array.
    assert_eq!(call(&mut s, &[1, 12, 0, 0])[0], CREATED);
    // The same connection still works, and so does everyone else's.
    assert_eq!(call(&mut s, &[4, dict, 4]), [7, 0]); // DictLen: Size(0)
    honest.insert(&1, &1)?;
    assert_eq!(honest.get(&1)?, Some(1));
    Ok(())
}
