//! Another user on the same machine: a Python script run as `nobody`, to check that local
//! sockets refuse strangers and are not fooled by them.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};

/// The uid and gid of `nobody`.
const NOBODY: u32 = 65534;

/// The interpreter, outside any user's home so that `nobody` can run it.
const PYTHON: &str = "/usr/bin/python3";

/// Starts `script` (with `args`) as `nobody`, its stdout piped; `None`, after printing why,
/// if this test cannot switch users.
pub(crate) fn run_as_nobody(
    script: &str,
    args: &[&str],
) -> Option<(Child, BufReader<ChildStdout>)> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: only root can run a process as another user");
        return None;
    }
    if !std::path::Path::new(PYTHON).exists() {
        println!("skipped: {PYTHON} is not installed");
        return None;
    }
    let mut child = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    Some((child, out))
}

/// The next line the stranger printed.
pub(crate) fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line.trim().to_owned()
}

/// Connects to the abstract socket `argv[1]` and prints how many bytes arrived before the
/// other end hung up (or `timeout`).
pub(crate) const CONNECT_AND_READ: &str = "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(b'\\0' + sys.argv[1].encode())
got = 0
try:
    while True:
        data = s.recv(4096)
        if not data:
            break
        got += len(data)
    print(got)
except socket.timeout:
    print('timeout')
";

/// Listens on the abstract socket `argv[1]`, prints `ready`, and answers one connection with
/// a manager's challenge (magic and nonce), then waits for the peer to hang up.
pub(crate) const FAKE_MANAGER: &str = "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(b'\\0' + sys.argv[1].encode())
s.listen(1)
print('ready', flush=True)
s.settimeout(20)
c, _ = s.accept()
try:
    c.sendall(b'FLOTMGR1' + bytes(32))
except OSError:
    pass
c.settimeout(20)
try:
    print(len(c.recv(4096)), flush=True)
except ConnectionResetError:
    print(0, flush=True)
except socket.timeout:
    print('timeout', flush=True)
";
