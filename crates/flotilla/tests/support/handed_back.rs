//! Items that cannot be encoded, for checking that a failed `put` hands back the very item it
//! was given.

#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use flotilla::process::Connection;

/// An item that refuses to be encoded while it carries a connection (a pipe's end cannot
/// travel through a queue).
pub(crate) type Item = (u32, Option<Connection<u8>>);

/// Checks that `item` is number `n` and carries a pipe end that still talks to `peer`.
pub(crate) fn same_item(item: Item, n: u32, peer: &Connection<u8>) {
    assert_eq!(item.0, n);
    let conn = item.1.expect("the connection came back");
    conn.send(&(n as u8)).unwrap();
    assert_eq!(peer.recv_timeout(Duration::from_secs(30)).unwrap(), n as u8);
}
