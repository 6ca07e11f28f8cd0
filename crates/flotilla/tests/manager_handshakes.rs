//! Hundreds of connections that never say a word, each of which the server would keep for its
//! whole handshake time limit: they must not use up the server's descriptors, and an honest
//! client must still get in. (Alone in its file: it lowers this process's descriptor limit
//! while it starts the server, which inherits it.)

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use flotilla::manager::{Address, Manager};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::watchdog;

const KEY: &[u8] = b"let me in";

/// The server's descriptor limit: silent connections that each kept one would use it up.
const SERVER_FDS: libc::rlim_t = 200;

/// How many silent connections to open.
const SILENT: usize = 400;

/// The most handshakes the server lets one peer have under way (the library's `PER_PEER`).
const PER_PEER: usize = 16;

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Starts a TCP manager whose server may open at most [`SERVER_FDS`] descriptors.
fn manager_with_few_descriptors() -> Manager {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write a valid rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let low = libc::rlimit {
            rlim_cur: SERVER_FDS,
            rlim_max: limit.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &low), 0);
    }
    let manager = Manager::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .authkey(KEY.to_vec())
        .start();
    // SAFETY: as above; this restores the limit read before.
    unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0) };
    manager.unwrap()
}

#[test]
fn silent_connections_neither_use_up_descriptors_nor_keep_an_honest_client_out() {
    let manager = manager_with_few_descriptors();
    let pid = manager.pid().unwrap();
    let Address::Tcp(addr) = manager.address().clone() else {
        panic!("not a TCP manager");
    };
    let before = open_files(pid);
    let silent: Vec<TcpStream> = (0..SILENT)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
        .collect();
    println!("{} of {SILENT} silent connections made", silent.len());
    // The honest client gets in and works, in well under the handshake time limit that the
    // silent ones would have held their descriptors for.
    let server: SocketAddr = addr;
    watchdog(Duration::from_secs(8), move || {
        let client = Manager::connect(server, KEY).unwrap();
        let dict = client.dict::<u32, u32>().unwrap();
        dict.insert(&1, &2).unwrap();
        assert_eq!(dict.get(&1).unwrap(), Some(2));
    });
    // Only a peer's worth of handshakes is kept (plus the honest client's connections): the
    // ones pushed out are closed as soon as their threads run, long before the handshake
    // time limit (10 s) would have closed them. The server is another process: poll it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let during = open_files(pid);
        if during <= before + PER_PEER + 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server holds {during} descriptors for {} silent connections (had {before})",
            silent.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(silent);
}
