//! Memory is given back after a large message: neither a worker nor the pool keeps a buffer of
//! a past message's size. Measured, not assumed: the resident set (`VmRSS`) of the process
//! that handled the message. One test per file section, each in its own process under nextest;
//! the thresholds leave room for everything but the 256 MiB under test.

use std::time::Duration;

use flotilla::{Error, Executor, ProcessPoolExecutor, Task};
use serde::{Serialize, Serializer};
use serde_bytes::ByteBuf;

const PATIENCE: Duration = Duration::from_secs(120);
const BIG: usize = 256 << 20;
/// More than anything else a worker or this test holds; far less than [`BIG`].
const SMALL_RSS: u64 = 96 << 20;

/// This process's resident set size in bytes, from `/proc/self/status`.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of KiB");
    kib << 10
}

#[flotilla::task]
fn worker_rss() -> u64 {
    rss()
}

#[flotilla::task]
fn big_result(len: usize) -> ByteBuf {
    ByteBuf::from(vec![7u8; len])
}

#[flotilla::task]
fn arg_len(bytes: ByteBuf) -> usize {
    bytes.len()
}

/// A result whose encoding writes `0.len()` bytes and then fails: the reply buffer fills up
/// and is never sent, as with a result over the frame limit.
#[derive(Clone, Debug)]
struct FailsLate(ByteBuf);

/// Refuses to be encoded.
struct Refuse;

impl Serialize for Refuse {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("too late"))
    }
}

impl Serialize for FailsLate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&self.0)?;
        tuple.serialize_element(&Refuse)?;
        tuple.end()
    }
}

impl<'de> serde::Deserialize<'de> for FailsLate {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<FailsLate, D::Error> {
        Err(serde::de::Error::custom("never sent"))
    }
}

#[flotilla::task]
fn fails_late(len: usize) -> FailsLate {
    FailsLate(ByteBuf::from(vec![7u8; len]))
}

fn one_worker() -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

fn assert_small(what: &str, bytes: u64) {
    eprintln!("{what}: VmRSS {} MiB", bytes >> 20);
    assert!(
        bytes < SMALL_RSS,
        "{what} keeps {} MiB resident after a {} MiB message",
        bytes >> 20,
        BIG >> 20
    );
}

/// Runs `task(args)` on `pool` and waits for its outcome.
fn outcome<T: Task>(pool: &ProcessPoolExecutor, task: T, args: T::Args) -> Result<T::Output, Error>
where
    T::Output: Clone,
{
    pool.submit(task, args).unwrap().result_timeout(PATIENCE)
}

/// Checks that `pool`'s one worker is small again after `what`.
fn assert_worker_small(pool: &ProcessPoolExecutor, what: &str) {
    let after = outcome(pool, worker_rss, ()).unwrap();
    assert_small(&format!("the worker after {what}"), after);
}

#[test]
fn a_worker_gives_back_the_buffer_of_a_large_result() {
    let pool = one_worker();
    assert_eq!(outcome(&pool, big_result, BIG).unwrap().len(), BIG);
    assert_worker_small(&pool, "sending a large result");
}

#[test]
fn a_worker_gives_back_the_buffer_of_a_result_it_failed_to_send() {
    let pool = one_worker();
    let err = outcome(&pool, fails_late, BIG).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("could not encode the result"), "{text}");
    assert_worker_small(&pool, "failing to send a large result");
}

#[test]
fn a_worker_gives_back_the_buffer_of_a_large_argument() {
    let pool = one_worker();
    let len = outcome(&pool, arg_len, ByteBuf::from(vec![7u8; BIG])).unwrap();
    assert_eq!(len, BIG);
    assert_worker_small(&pool, "a large argument");
}

#[test]
fn the_pool_gives_back_the_read_buffer_of_a_large_result() {
    let pool = one_worker();
    assert_eq!(outcome(&pool, big_result, BIG).unwrap().len(), BIG);
    assert_small("the pool's process after a large result", rss());
}
