//! Dropping a `Map` whose tasks run on a process pool cancels what it has in flight: chunks
//! still queued never run, running ones are killed with their workers, as `cancel()` does.
//! The pool replaces every killed worker: it is at full strength afterwards.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::mpsc;
use std::time::Duration;

use flotilla::{Executor, ProcessPoolExecutor};

#[path = "support/strength.rs"]
mod strength;

const PATIENCE: Duration = Duration::from_secs(30);

/// With a name, reports to the listener `name` and waits until its worker is killed; without
/// one, returns at once.
#[flotilla::task]
fn hold(name: Option<String>) -> u32 {
    if let Some(name) = name {
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("an abstract name");
        let mut stream = UnixStream::connect_addr(&addr).expect("the test listens");
        stream.write_all(&std::process::id().to_le_bytes()).unwrap();
        let mut never = [0u8];
        // Nothing is ever sent: this returns when the test is gone.
        let _ = stream.read(&mut never);
    }
    0
}

#[test]
fn dropping_a_map_kills_its_running_tasks_and_the_pool_replaces_their_workers() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    // Twice in a row: the replacements are killed as readily as the first workers.
    for round in 0..2 {
        let name = format!("flotilla-test-map-drop-{}-{round}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        let (holders, held) = mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..2 {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                if holders.send(stream).is_err() {
                    return;
                }
            }
        });
        let inputs = [None, Some(name.clone()), Some(name.clone()), Some(name)];
        let mut map = pool.map(HoldTask, inputs).buffer(4);
        assert_eq!(map.next().unwrap().unwrap(), 0);
        // Two tasks are now running, one in each worker, and one is queued.
        let mut running: Vec<UnixStream> = (0..2)
            .map(|_| held.recv_timeout(PATIENCE).expect("two tasks run"))
            .collect();
        let mut pids = Vec::new();
        for stream in &mut running {
            let mut pid = [0u8; 4];
            stream.read_exact(&mut pid).unwrap();
            pids.push(u32::from_le_bytes(pid));
        }
        drop(map);
        // Each running task's worker was killed: its end of the connection closed.
        for (stream, pid) in running.iter_mut().zip(&pids) {
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut byte = [0u8];
            let got = stream.read(&mut byte);
            assert!(
                matches!(got, Ok(0)),
                "round {round}: worker {pid} still runs its task after the map was dropped: \
                 {got:?}"
            );
        }
        let now = strength::assert_full_strength(&pool);
        assert!(
            now.iter().all(|pid| !pids.contains(pid)),
            "round {round}: killed workers {pids:?} still serve: {now:?}"
        );
    }
}
