//! The messages between a pool and its worker processes, and how they are framed.
//!
//! A frame is a little-endian `u32` length followed by that many bytes: a postcard-encoded
//! header ([`Request`] or [`Reply`]) and, for a single task, its payload: the postcard
//! encoding of the task's arguments (in a `Run`) or of its result (in a `Done` whose outcome is
//! [`Outcome::Value`]). A chunk travels as records ([`push_record`]), each behind its own
//! length: its arguments one record per item, its results one encoded [`Item`] per item; so
//! every item is decoded on its own, and one the other side cannot read fails alone while the
//! items after it still run. Payloads are encoded straight into the frame and
//! decoded straight out of the read buffer, so a large argument is copied as few times as
//! possible. Reading never trusts the peer: a length over [`MAX_FRAME`] is refused before
//! anything is allocated, and the buffer grows only as bytes actually arrive.

pub mod codec;
pub mod refusal;

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use flotilla_core::Stage;

/// Bumped whenever the messages change, so a worker from another build is refused clearly.
pub const VERSION: u32 = 6;

/// The largest frame either side accepts.
pub const MAX_FRAME: usize = 1 << 30;

/// How much of a frame's announced length is reserved before its bytes arrive.
const INITIAL_RESERVE: usize = 128 << 20;

/// The largest buffer kept for the next message once a message is handled: room for the
/// typical large payload, reused without fresh pages; anything larger is given back.
pub const KEPT_BUFFER: usize = INITIAL_RESERVE + (1 << 20);

/// From the pool to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Run one task; its encoded arguments follow the header.
    Run { id: u64, task: &'a str },
    /// Run a task on each item of a chunk (`map` with a chunksize); the items' encoded
    /// arguments follow the header, one [`push_record`] record each. The worker skips (neither
    /// decodes nor runs) the first `skip` items, and answers with [`Reply::Items`] frames: one
    /// per item if `each`, else whenever finished items have waited a little.
    RunChunk {
        id: u64,
        task: &'a str,
        skip: u32,
        each: bool,
    },
    /// Finish and exit.
    Exit,
}

/// From a worker to the pool.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// Sent once at start.
    Hello { version: u32, pid: u32 },
    /// The outcome of a `Run`; an [`Outcome::Value`]'s encoded result follows the header.
    /// For a `RunChunk`, a failure of the whole chunk (an unknown task, say).
    Done { id: u64, outcome: Outcome },
    /// Results of items of a `RunChunk`, in order: [`records`] of encoded [`Item`]s follow
    /// the header. The `last` one ends the chunk.
    Items { id: u64, last: bool },
    /// The request could not be read; the worker goes on serving.
    Refused(String),
    /// Sent by a worker about to die of something it can still name (a stack overflow); the
    /// process ends right after.
    Dying { cause: String },
}

/// What became of one task in a worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum Outcome {
    /// The task returned; its encoded result follows the header.
    Value,
    /// The task panicked.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The worker has no task of this name.
    UnknownTask(String),
    /// The arguments or the result could not be decoded or encoded.
    Failed(String),
}

/// What became of one item of a chunk.
#[derive(Debug, Serialize, Deserialize)]
pub enum Item<T> {
    /// The task returned.
    Value(T),
    /// The task panicked on this item; the rest of the chunk still ran.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The item failed for another reason; the rest of the chunk still ran.
    Failed(ItemError),
}

/// Why an item of a chunk failed, other than a panic of the task.
#[derive(Debug, Serialize, Deserialize)]
pub enum ItemError {
    /// [`Error::Codec`](flotilla_core::Error::Codec).
    Codec(String),
    /// The worker could not decode the item's arguments (why); the pool names the task and the
    /// item in an [`Error::Codec`](flotilla_core::Error::Codec).
    Args(String),
    /// The worker could not encode the item's result (why); the pool names the task and the
    /// item in an [`Error::Codec`](flotilla_core::Error::Codec).
    Result(String),
    /// [`Error::WorkerDied`](flotilla_core::Error::WorkerDied); the stage as [`stage_code`] gives it.
    WorkerDied {
        pid: u32,
        code: Option<i32>,
        signal: Option<i32>,
        stage: Option<u8>,
        cause: Option<String>,
    },
    /// [`Error::TaskTimedOut`](flotilla_core::Error::TaskTimedOut), the limit in nanoseconds.
    TimedOut(u64),
    /// [`Error::Spawn`](flotilla_core::Error::Spawn).
    Spawn(String),
    /// [`Error::Broken`](flotilla_core::Error::Broken).
    Broken(String),
}

/// How a [`Stage`] travels inside an [`ItemError`].
pub fn stage_code(stage: Stage) -> u8 {
    Stage::ALL
        .iter()
        .position(|s| *s == stage)
        .map_or(0, |at| at as u8 + 1)
}

/// The [`Stage`] of a [`stage_code`].
pub fn stage_of(code: u8) -> Option<Stage> {
    Stage::ALL.get(usize::from(code).checked_sub(1)?).copied()
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection at a frame boundary.
    Closed,
    /// An I/O error, including a read timeout and a connection closed mid-frame.
    Io(io::Error),
    /// The bytes are not a valid frame.
    Malformed(String),
}

/// Encodes `message` as one frame, ready to be written in a single call.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, String> {
    let mut frame = start(message)?;
    finish(&mut frame)?;
    Ok(frame)
}

/// Starts a frame with `header`; append the payload ([`encode_onto`]), then call [`finish`].
pub fn start<T: Serialize>(header: &T) -> Result<Vec<u8>, String> {
    start_in(Vec::new(), header)
}

/// [`start`], reusing `buffer`'s allocation (its contents are discarded).
pub fn start_in<T: Serialize>(mut buffer: Vec<u8>, header: &T) -> Result<Vec<u8>, String> {
    buffer.clear();
    buffer.extend_from_slice(&[0; 4]);
    postcard::to_extend(header, buffer).map_err(|err| format!("encoding: {err}"))
}

/// A whole frame: `header`, then `payload` as it is (already encoded).
pub fn with_payload<T: Serialize>(header: &T, payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut frame = start(header)?;
    frame.extend_from_slice(payload);
    finish(&mut frame)?;
    Ok(frame)
}

/// Writes the length prefix of a frame begun with [`start`].
pub fn finish(frame: &mut [u8]) -> Result<(), String> {
    let len = frame.len() - 4;
    if len > MAX_FRAME {
        return Err(format!(
            "message of {len} bytes exceeds the limit of {MAX_FRAME} bytes"
        ));
    }
    let prefix = u32::try_from(len).map_err(|_| format!("message of {len} bytes is too long"))?;
    frame[..4].copy_from_slice(&prefix.to_le_bytes());
    Ok(())
}

/// Writes an encoded frame.
pub fn write_frame(out: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    out.write_all(frame)?;
    out.flush()
}

/// Reads one frame's body into `body` (replacing its contents).
pub fn read_frame(input: &mut impl Read, body: &mut Vec<u8>) -> Result<(), ReadError> {
    read_frame_limited(input, body, MAX_FRAME)
}

/// [`read_frame`] with a smaller limit than [`MAX_FRAME`] on the announced length, checked
/// before anything is allocated.
pub fn read_frame_limited(
    input: &mut impl Read,
    body: &mut Vec<u8>,
    limit: usize,
) -> Result<(), ReadError> {
    read_frame_pausing(input, body, limit, || {})
}

/// [`read_frame_limited`], calling `halfway` once half of the body has arrived.
pub fn read_frame_pausing(
    input: &mut impl Read,
    body: &mut Vec<u8>,
    limit: usize,
    halfway: impl FnOnce(),
) -> Result<(), ReadError> {
    let len = read_prefix(input)?;
    if len > limit {
        return Err(ReadError::Malformed(format!(
            "frame length {len} exceeds the limit of {limit} bytes"
        )));
    }
    read_body_pausing(input, body, len, halfway)
}

/// Reads a frame's length prefix, and nothing more.
pub fn read_prefix(input: &mut impl Read) -> Result<usize, ReadError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < prefix.len() {
        match input.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Err(ReadError::Closed),
            Ok(0) => {
                return Err(ReadError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a frame header",
                )));
            }
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(ReadError::Io(err)),
        }
    }
    Ok(u32::from_le_bytes(prefix) as usize)
}

/// Reads the `len` bytes of a frame's body, whose prefix [`read_prefix`] read, into `body`
/// (replacing its contents).
pub fn read_body(input: &mut impl Read, body: &mut Vec<u8>, len: usize) -> Result<(), ReadError> {
    read_body_pausing(input, body, len, || {})
}

fn read_body_pausing(
    input: &mut impl Read,
    body: &mut Vec<u8>,
    len: usize,
    halfway: impl FnOnce(),
) -> Result<(), ReadError> {
    body.clear();
    // Room for a typical large payload at once (address space only: pages are touched as
    // bytes arrive); bigger frames grow the buffer as they come in.
    body.reserve(len.min(INITIAL_RESERVE));
    let half = len / 2;
    let mut read = input
        .take(half as u64)
        .read_to_end(body)
        .map_err(ReadError::Io)?;
    if read == half {
        halfway();
        read += input
            .take((len - half) as u64)
            .read_to_end(body)
            .map_err(ReadError::Io)?;
    }
    if read < len {
        return Err(ReadError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("connection closed after {read} of {len} bytes of a frame"),
        )));
    }
    Ok(())
}

/// Gives back a buffer's memory if a large message grew it past [`KEPT_BUFFER`].
pub fn release(buffer: &mut Vec<u8>) {
    if buffer.capacity() > KEPT_BUFFER {
        *buffer = Vec::new();
    }
}

/// Appends `value` to `out` as one record: its encoding's length as a little-endian `u32`,
/// then the encoding. A failure (an error or a panic of `value`'s `Serialize`) leaves `out`
/// as it was and says why.
pub fn push_record<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let encoded = encode_onto(out, value);
    let len = out.len() - start - 4;
    match (encoded, u32::try_from(len)) {
        (Ok(()), Ok(len)) => {
            out[start..start + 4].copy_from_slice(&len.to_le_bytes());
            Ok(())
        }
        (Ok(()), Err(_)) => {
            out.truncate(start);
            Err(format!("an item of {len} bytes is too long"))
        }
        (Err(why), _) => {
            out.truncate(start);
            Err(why)
        }
    }
}

/// Appends an already encoded record, `record`, to `out`.
pub fn push_raw_record(out: &mut Vec<u8>, record: &[u8]) -> Result<(), String> {
    let len = u32::try_from(record.len())
        .map_err(|_| format!("an item of {} bytes is too long", record.len()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(record);
    Ok(())
}

/// Appends `value`'s encoding to `out`; on failure, `out` may hold part of it. A panic of
/// `value`'s `Serialize` is caught and reported as the failure. (postcard replaces a value's
/// own error message with a fixed text; values of flotilla's that refuse to travel, a pipe's
/// `Connection` say, leave the real reason aside for the report.)
pub fn encode_onto<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), String> {
    /// Lends the buffer to postcard, which takes its output by value, without giving it up
    /// should the encoding panic.
    struct Onto<'a>(&'a mut Vec<u8>);
    impl Extend<u8> for Onto<'_> {
        fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
            self.0.extend(bytes);
        }
    }
    crate::wire::refusal::clear();
    match flotilla_core::panic::catch(|| postcard::to_extend(value, Onto(out)).map(|_| ())) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(crate::wire::refusal::explain(err)),
        Err(panic) => Err(panicked(&panic)),
    }
}

/// Decodes a `T` from the front of `bytes`, returning it with the bytes after it. A panic of
/// `T`'s `Deserialize` is caught and reported as the failure.
pub fn decode_front<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), String> {
    crate::wire::refusal::clear();
    match flotilla_core::panic::catch(|| postcard::take_from_bytes(bytes)) {
        Ok(Ok(decoded)) => Ok(decoded),
        Ok(Err(err)) => Err(crate::wire::refusal::explain(err)),
        Err(panic) => Err(panicked(&panic)),
    }
}

/// Describes a panic of serde code, caught in [`encode_onto`] or [`decode_front`].
fn panicked(panic: &flotilla_core::Panic) -> String {
    match panic.location() {
        Some(at) => format!("panicked at {at}: {}", panic.message()),
        None => format!("panicked: {}", panic.message()),
    }
}

/// Splits a run of [`push_record`] records into the records' bytes.
pub fn records(mut bytes: &[u8]) -> impl Iterator<Item = Result<&[u8], String>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
            bytes = &[];
            return Some(Err("a record cut short in its length".to_owned()));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            bytes = &[];
            return Some(Err(format!(
                "a record of {len} bytes cut short after {}",
                rest.len()
            )));
        }
        let (record, rest) = rest.split_at(len);
        bytes = rest;
        Some(Ok(record))
    })
}

#[cfg(test)]
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ReadError> {
    postcard::from_bytes(body).map_err(|err| ReadError::Malformed(format!("decoding: {err}")))
}

/// Decodes a frame's header, returning it with the payload that follows.
pub fn decode_head<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<(T, &'a [u8]), ReadError> {
    postcard::take_from_bytes(body).map_err(|err| ReadError::Malformed(format!("decoding: {err}")))
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => f.write_str("the connection was closed"),
            ReadError::Io(err) => write!(f, "{err}"),
            ReadError::Malformed(why) => write!(f, "malformed message: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(reply: &Reply) -> Reply {
        let frame = encode(reply).unwrap();
        let mut body = Vec::new();
        read_frame(&mut &frame[..], &mut body).unwrap();
        decode::<Reply>(&body).unwrap()
    }

    #[test]
    fn frames_roundtrip() {
        let reply = Reply::Done {
            id: 7,
            outcome: Outcome::Panicked {
                message: "boom".into(),
                location: Some("a.rs:1:2".into()),
            },
        };
        match roundtrip(&reply) {
            Reply::Done {
                id: 7,
                outcome: Outcome::Panicked { message, location },
            } => assert_eq!(
                (message.as_str(), location.as_deref()),
                ("boom", Some("a.rs:1:2"))
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn payload_follows_the_header() {
        let mut frame = start(&Request::Run { id: 3, task: "t" }).unwrap();
        encode_onto(&mut frame, &(5u32, String::from("x"))).unwrap();
        finish(&mut frame).unwrap();
        let mut body = Vec::new();
        read_frame(&mut &frame[..], &mut body).unwrap();
        let (head, rest) = decode_head::<Request<'_>>(&body).unwrap();
        assert!(matches!(head, Request::Run { id: 3, task: "t" }));
        let args: (u32, String) = postcard::from_bytes(rest).unwrap();
        assert_eq!(args, (5, "x".into()));
    }

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        let frame = u32::MAX.to_le_bytes();
        let mut body = Vec::new();
        let err = read_frame(&mut &frame[..], &mut body).unwrap_err();
        assert!(matches!(err, ReadError::Malformed(_)), "{err}");
        assert_eq!(body.capacity(), 0);
    }

    #[test]
    fn truncated_frames_are_errors() {
        let frame = encode(&Reply::Hello { version: 1, pid: 2 }).unwrap();
        for cut in 1..frame.len() {
            let mut body = Vec::new();
            let err = read_frame(&mut &frame[..cut], &mut body).unwrap_err();
            assert!(matches!(err, ReadError::Io(_)), "cut at {cut}: {err}");
        }
        let mut body = Vec::new();
        assert!(matches!(
            read_frame(&mut &[][..], &mut body),
            Err(ReadError::Closed)
        ));
    }

    proptest::proptest! {
        /// The wire format's fuzz target, run as a property test on stable Rust: any byte
        /// string read as a frame and decoded as either message yields a value or an error,
        /// never a panic, and never a buffer larger than the bytes that arrived.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let mut body = Vec::new();
            if read_frame(&mut &bytes[..], &mut body).is_ok() {
                let _ = decode_head::<Reply>(&body);
                let _ = decode_head::<Request<'_>>(&body);
            }
            proptest::prop_assert!(body.len() <= bytes.len());
            let _ = decode::<Reply>(&bytes);
            let _ = decode::<Request<'_>>(&bytes);
        }

        /// Whatever a worker may send, re-reading it gives back the same message.
        #[test]
        fn replies_roundtrip(id in proptest::num::u64::ANY, values in proptest::collection::vec(proptest::num::u32::ANY, 0..64), message in ".*") {
            let items: Vec<Item<u32>> = values.iter().map(|v| Item::Value(*v)).chain([Item::Panicked { message: message.clone(), location: None }]).collect();
            let mut frame = start(&Reply::Done { id, outcome: Outcome::Value }).unwrap();
            encode_onto(&mut frame, &items).unwrap();
            finish(&mut frame).unwrap();
            let mut body = Vec::new();
            read_frame(&mut &frame[..], &mut body).unwrap();
            let (head, payload) = decode_head::<Reply>(&body).unwrap();
            let done = matches!(head, Reply::Done { id: got, outcome: Outcome::Value } if got == id);
            proptest::prop_assert!(done, "unexpected header {:?}", head);
            let back: Vec<Item<u32>> = postcard::from_bytes(payload).unwrap();
            proptest::prop_assert_eq!(back.len(), values.len() + 1);
            for (item, value) in back.iter().zip(&values) {
                proptest::prop_assert!(matches!(item, Item::Value(v) if v == value));
            }
            let last_is_panic = matches!(back.last(), Some(Item::Panicked { message: m, .. }) if *m == message);
            proptest::prop_assert!(last_is_panic, "last item: {:?}", back.last());
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic spread of byte patterns; the fuzz target covers the rest.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..512 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode::<Reply>(&bytes);
            let _ = decode::<Request<'_>>(&bytes);
        }
    }
}
