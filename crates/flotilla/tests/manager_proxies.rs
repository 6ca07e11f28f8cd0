//! `flotilla::manager` proxies used from real child processes: every proxy type round-trips,
//! a counter under a manager lock loses no update, published objects are found by name (also
//! from a second process over TCP), and proxies travel to process-pool tasks.

use std::time::Duration;

use flotilla::manager::{
    Address, Barrier, Dict, Event, List, Lock, LockGuard, Manager, ManagerBuilder, Namespace,
    Queue, Semaphore,
};
use flotilla::process::Process;
use flotilla::{Executor, ProcessPoolExecutor};

/// A generous bound on any single wait in these tests (CI is a noisy 2-core machine).
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn every_public_type_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Manager>();
    check::<ManagerBuilder>();
    check::<Address>();
    check::<Dict<String, Vec<u8>>>();
    check::<List<std::rc::Rc<u8>>>(); // a proxy holds no item, so even this is fine
    check::<Namespace>();
    check::<Queue<String>>();
    check::<Lock>();
    check::<Event>();
    check::<Semaphore>();
    check::<Barrier>();
    check::<flotilla::manager::RLock>();
    check::<flotilla::manager::Condition>();
    check::<flotilla::manager::BoundedSemaphore>();
    check::<flotilla::manager::Value<std::rc::Rc<u8>>>();
    check::<flotilla::manager::Array<std::rc::Rc<u8>>>();
    check::<flotilla::manager::Remote<std::cell::Cell<u8>>>();
    check::<flotilla::manager::Setup>();
    check::<flotilla::manager::RLockGuard<'_>>();
    check::<flotilla::manager::ConditionGuard<'_>>();
    fn check_sync<T: Sync>() {}
    check_sync::<LockGuard<'_>>();
}

/// Every object handed over at once.
type Objects = (
    Dict<String, u64>,
    List<String>,
    Namespace,
    Queue<u64>,
    Event,
    Semaphore,
    Barrier,
    Lock,
);

/// The child's half of the round trip: reads what the parent wrote, writes its own.
#[flotilla::task]
fn exercise(objects: Objects) {
    let (dict, list, ns, queue, event, semaphore, barrier, lock) = objects;
    assert_eq!(dict.get(&"parent".to_owned()).unwrap(), Some(1));
    dict.insert(&"child".to_owned(), &2).unwrap();
    assert_eq!(list.to_vec().unwrap(), ["from parent"]);
    list.push(&"from child".to_owned()).unwrap();
    assert_eq!(ns.get::<String>("greeting").unwrap().as_deref(), Some("hi"));
    ns.set("reply", &(7u8, "seven")).unwrap();
    assert_eq!(queue.get().unwrap(), 10);
    queue.put(11).unwrap();
    assert!(semaphore.acquire_timeout(PATIENCE).unwrap());
    {
        let _guard = lock.lock().unwrap();
        event.set().unwrap();
    }
    // Both sides meet here; the parent waits for everything above first.
    barrier.wait_timeout(PATIENCE).unwrap();
}

#[test]
fn every_proxy_round_trips_through_a_child_process() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let dict = manager.dict::<String, u64>()?;
    let list = manager.list::<String>()?;
    let ns = manager.namespace()?;
    let queue = manager.queue::<u64>(Some(4))?;
    let event = manager.event()?;
    let semaphore = manager.semaphore(1)?;
    let barrier = manager.barrier(2)?;
    let lock = manager.lock()?;
    dict.insert(&"parent".to_owned(), &1)?;
    list.push(&"from parent".to_owned())?;
    ns.set("greeting", "hi")?;
    queue.put(10)?;
    let objects: Objects = (
        dict.clone(),
        list.clone(),
        ns.clone(),
        queue.clone(),
        event.clone(),
        semaphore.clone(),
        barrier.clone(),
        lock.clone(),
    );
    let child = Process::new(ExerciseTask, objects).start()?;
    assert!(
        event.wait_timeout(PATIENCE)?,
        "the child never set the event"
    );
    assert!(barrier.wait_timeout(PATIENCE)? < 2);
    assert!(child.join_timeout(PATIENCE));
    assert_eq!(child.exitcode(), Some(0), "the child's checks failed");

    assert_eq!(dict.get(&"child".to_owned())?, Some(2));
    let mut keys = dict.keys()?;
    keys.sort();
    assert_eq!(keys, ["child", "parent"]);
    assert_eq!(list.to_vec()?, ["from parent", "from child"]);
    assert_eq!(
        ns.get::<(u8, String)>("reply")?,
        Some((7, "seven".to_owned()))
    );
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), 11);
    // The child exited holding a permit: it came back.
    assert!(semaphore.acquire_timeout(PATIENCE)?);
    // The child released the lock normally: no death reported.
    assert!(lock.try_lock().is_ok());
    Ok(())
}

#[flotilla::task]
fn count_up(counter: Dict<String, u64>, lock: Lock, times: u32) {
    for _ in 0..times {
        let _guard = lock.lock().unwrap();
        let now = counter.get(&"n".to_owned()).unwrap().unwrap_or(0);
        counter.insert(&"n".to_owned(), &(now + 1)).unwrap();
    }
}

#[test]
fn a_counter_under_a_manager_lock_loses_no_update() -> Result<(), flotilla::Error> {
    const PROCESSES: u32 = 4;
    const TIMES: u32 = 100;
    let manager = Manager::new()?;
    let counter = manager.dict::<String, u64>()?;
    let lock = manager.lock()?;
    let workers: Vec<Process> = (0..PROCESSES)
        .map(|_| Process::new(CountUpTask, (counter.clone(), lock.clone(), TIMES)))
        .collect();
    let workers = workers
        .into_iter()
        .map(Process::start)
        .collect::<Result<Vec<_>, _>>()?;
    for worker in &workers {
        assert!(worker.join_timeout(PATIENCE));
        assert_eq!(worker.exitcode(), Some(0));
    }
    assert_eq!(
        counter.get(&"n".to_owned())?,
        Some(u64::from(PROCESSES * TIMES))
    );
    Ok(())
}

#[flotilla::task]
fn remote_client(address: Address, authkey: Vec<u8>) -> String {
    let manager = Manager::connect(address, &authkey).unwrap();
    let board: Dict<String, String> = manager.get("board").unwrap();
    board
        .insert(&"remote".to_owned(), &"was here".to_owned())
        .unwrap();
    // Objects can also be created by a client.
    let list = manager.list::<u8>().unwrap();
    list.push(&1).unwrap();
    manager.register("made-remotely", &list).unwrap();
    assert!(
        manager.get::<Event>("board").is_err(),
        "wrong kind accepted"
    );
    format!("{:?}", manager.get::<Dict<u8, u8>>("nothing").unwrap_err())
}

#[flotilla::task]
fn refused_client(address: Address) -> bool {
    Manager::connect(address, b"not the key")
        .unwrap_err()
        .is_authentication_failed()
}

#[test]
fn a_tcp_manager_serves_a_second_process_with_the_key_and_refuses_a_wrong_one()
-> Result<(), flotilla::Error> {
    let manager = Manager::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .authkey(b"s3cret".to_vec())
        .start()?;
    let board = manager.dict::<String, String>()?;
    manager.register("board", &board)?;
    let pool = ProcessPoolExecutor::builder().max_workers(1).build()?;
    let missing = pool
        .submit(
            RemoteClientTask,
            (manager.address().clone(), b"s3cret".to_vec()),
        )?
        .result_timeout(PATIENCE)?;
    assert!(missing.contains("no object is registered"), "{missing}");
    assert_eq!(
        board.get(&"remote".to_owned())?.as_deref(),
        Some("was here")
    );
    let made: List<u8> = manager.get("made-remotely")?;
    assert_eq!(made.to_vec()?, [1]);
    assert!(
        pool.submit(RefusedClientTask, manager.address().clone())?
            .result_timeout(PATIENCE)?
    );
    // The honest client is unaffected.
    assert_eq!(board.len()?, 1);
    Ok(())
}

#[flotilla::task]
fn add_to(dict: Dict<u32, u32>, n: u32) -> u32 {
    dict.insert(&n, &(n * 10)).unwrap();
    dict.len().unwrap() as u32
}

#[test]
fn proxies_travel_to_process_pool_tasks() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let dict = manager.dict::<u32, u32>()?;
    let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
    let futures: Vec<_> = (0..8)
        .map(|n| pool.submit(AddToTask, (dict.clone(), n)))
        .collect::<Result<_, _>>()?;
    for future in &futures {
        future.result_timeout(PATIENCE)?;
    }
    let mut items: Vec<(u32, u32)> = dict.to_map()?.into_iter().collect();
    items.sort();
    assert_eq!(items, (0..8).map(|n| (n, n * 10)).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn queue_bounds_and_timeouts_are_honoured() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let q = manager.queue::<String>(Some(2))?;
    q.put("a".into())?;
    q.put("b".into())?;
    let full = q
        .put_timeout("c".into(), Duration::from_millis(20))
        .unwrap_err();
    assert!(full.is_full());
    assert_eq!(full.into_inner(), "c");
    assert_eq!(q.qsize()?, 2);
    assert_eq!(q.get()?, "a");
    assert_eq!(q.try_get().unwrap(), "b");
    assert!(q.try_get().unwrap_err().is_empty());
    Ok(())
}

#[test]
fn wrong_types_and_misuse_are_errors_not_panics() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let numbers = manager.dict::<u8, u64>()?;
    numbers.insert(&1, &u64::MAX)?;
    // The same object under a registered name, read as the wrong value type.
    manager.register("numbers", &numbers)?;
    let as_text: Dict<u8, String> = manager.get("numbers")?;
    assert!(matches!(
        as_text.get(&1),
        Err(flotilla::Error::Codec { .. })
    ));
    let list = manager.list::<u8>()?;
    assert!(matches!(
        list.set(3, &1),
        Err(flotilla::Error::InvalidOperation { .. })
    ));
    assert!(manager.barrier(0).is_err());
    assert!(manager.queue::<u8>(Some(0)).is_err());
    let other = Manager::new()?;
    assert!(other.register("foreign", &list).is_err());
    Ok(())
}

#[test]
fn an_oversized_value_is_refused_before_sending_and_loses_nothing() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let blobs = manager.dict::<u8, serde_bytes::ByteBuf>()?;
    blobs.insert(&1, &serde_bytes::ByteBuf::from(vec![1u8; 1 << 20]))?;
    let huge = serde_bytes::ByteBuf::from(vec![2u8; 65 << 20]);
    let err = blobs.insert(&2, &huge).unwrap_err();
    assert!(
        matches!(&err, flotilla::Error::Codec { message } if message.contains("limit")),
        "{err}"
    );
    assert_eq!(blobs.len()?, 1);
    assert_eq!(blobs.get(&1)?.map(|b| b.len()), Some(1 << 20));
    Ok(())
}

#[test]
fn a_taken_address_is_a_clear_start_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = Manager::builder()
        .listen(taken.local_addr().unwrap())
        .start()
        .unwrap_err();
    assert!(matches!(err, flotilla::Error::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("could not listen"), "{err}");
}

#[test]
fn a_barrier_releases_all_parties_with_distinct_indexes() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let barrier = manager.barrier(3)?;
    let indexes: Vec<u64> = std::thread::scope(|s| {
        let waiters: Vec<_> = (0..3)
            .map(|_| s.spawn(|| barrier.wait_timeout(PATIENCE)))
            .collect();
        waiters
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Result<_, _>>()
    })?;
    let mut sorted = indexes.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 1, 2]);
    assert!(!barrier.is_broken()?);
    Ok(())
}
