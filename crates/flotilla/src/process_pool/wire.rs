//! The messages between a pool and its worker processes, and how they are framed.
//!
//! A frame is a little-endian `u32` length followed by that many bytes of a postcard-encoded
//! [`Request`] or [`Reply`]. Task arguments and results travel inside as opaque byte strings,
//! encoded and decoded by the task's own types. Reading never trusts the peer: a length over
//! [`MAX_FRAME`] is refused before anything is allocated, and the buffer grows only as bytes
//! actually arrive.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Bumped whenever the messages change, so a worker from another build is refused clearly.
pub(crate) const VERSION: u32 = 1;

/// The largest frame either side accepts.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// From the pool to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request<'a> {
    /// Run one task.
    Run {
        id: u64,
        task: &'a str,
        #[serde(borrow)]
        args: &'a serde_bytes::Bytes,
    },
    /// Run a task on each item of a chunk (`map` with a chunksize).
    RunChunk {
        id: u64,
        task: &'a str,
        #[serde(borrow)]
        items: Vec<&'a serde_bytes::Bytes>,
    },
    /// Finish and exit.
    Exit,
}

/// From a worker to the pool.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// Sent once at start.
    Hello { version: u32, pid: u32 },
    /// The outcome of a `Run`.
    Done { id: u64, outcome: Outcome },
    /// The outcomes of a `RunChunk`, in order.
    ChunkDone { id: u64, outcomes: Vec<Outcome> },
}

/// What became of one task in a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The encoded result.
    Value(#[serde(with = "serde_bytes")] Vec<u8>),
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

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the connection at a frame boundary.
    Closed,
    /// An I/O error, including a read timeout and a connection closed mid-frame.
    Io(io::Error),
    /// The bytes are not a valid frame.
    Malformed(String),
}

/// Encodes `message` as one frame, ready to be written in a single call.
pub(crate) fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, String> {
    let mut frame =
        postcard::to_extend(message, vec![0u8; 4]).map_err(|err| format!("encoding: {err}"))?;
    let len = frame.len() - 4;
    if len > MAX_FRAME {
        return Err(format!(
            "message of {len} bytes exceeds the limit of {MAX_FRAME} bytes"
        ));
    }
    let prefix = u32::try_from(len).map_err(|_| format!("message of {len} bytes is too long"))?;
    frame[..4].copy_from_slice(&prefix.to_le_bytes());
    Ok(frame)
}

/// Writes an encoded frame.
pub(crate) fn write_frame(out: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    out.write_all(frame)?;
    out.flush()
}

/// Reads one frame's body into `body` (replacing its contents).
pub(crate) fn read_frame(input: &mut impl Read, body: &mut Vec<u8>) -> Result<(), ReadError> {
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
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(ReadError::Malformed(format!(
            "frame length {len} exceeds the limit of {MAX_FRAME} bytes"
        )));
    }
    body.clear();
    let read = input
        .take(len as u64)
        .read_to_end(body)
        .map_err(ReadError::Io)?;
    if read < len {
        return Err(ReadError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("connection closed after {read} of {len} bytes of a frame"),
        )));
    }
    Ok(())
}

/// Decodes a frame body.
pub(crate) fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ReadError> {
    postcard::from_bytes(body).map_err(|err| ReadError::Malformed(format!("decoding: {err}")))
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
            outcome: Outcome::Value(vec![1, 2, 3]),
        };
        match roundtrip(&reply) {
            Reply::Done {
                id: 7,
                outcome: Outcome::Value(bytes),
            } => assert_eq!(bytes, [1, 2, 3]),
            other => panic!("unexpected {other:?}"),
        }
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
                let _ = decode::<Reply>(&body);
                let _ = decode::<Request<'_>>(&body);
            }
            proptest::prop_assert!(body.len() <= bytes.len());
            let _ = decode::<Reply>(&bytes);
            let _ = decode::<Request<'_>>(&bytes);
        }

        /// Whatever a worker may send, re-reading it gives back the same message.
        #[test]
        fn replies_roundtrip(id in proptest::num::u64::ANY, value in proptest::collection::vec(proptest::num::u8::ANY, 0..512), message in ".*") {
            let frame = encode(&Reply::ChunkDone { id, outcomes: vec![Outcome::Value(value.clone()), Outcome::Failed(message.clone())] }).unwrap();
            let mut body = Vec::new();
            read_frame(&mut &frame[..], &mut body).unwrap();
            match decode::<Reply>(&body).unwrap() {
                Reply::ChunkDone { id: got, outcomes } => {
                    proptest::prop_assert_eq!(got, id);
                    proptest::prop_assert!(matches!(&outcomes[0], Outcome::Value(v) if *v == value));
                    proptest::prop_assert!(matches!(&outcomes[1], Outcome::Failed(m) if *m == message));
                }
                other => proptest::prop_assert!(false, "unexpected {:?}", other),
            }
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
