//! [`pipe`], [`pipe_oneway`], [`Connection`], [`Receiver`] and [`Sender`]: Python's
//! `multiprocessing.Pipe`, typed, with each end's direction in its type.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{fds, sys};
use crate::wire::codec;
use crate::wire::refusal;
use crate::wire::{self, MAX_FRAME, ReadError};
use flotilla_core::Error;
use flotilla_core::primitives::{Mutex, lock};

/// Creates a two-way pipe between two [`Connection`]s carrying values of type `T`: Python's
/// `multiprocessing.Pipe()` (`duplex=True`).
///
/// Both ends send and receive. For Python's `Pipe(duplex=False)` use [`pipe_oneway`], whose
/// ends can only be used the right way round. Hand an end to a child process by passing it in
/// the arguments of [`Process::new`](super::Process::new); it moves to the child.
///
/// # Errors
///
/// [`Error::Io`] if the operating system cannot create the socket pair (Python raises
/// `OSError`).
///
/// # Examples
///
/// ```
/// use flotilla::process::{pipe, Process, Connection};
///
/// #[flotilla::task]
/// fn shout(conn: Connection<String>) {
///     let word = conn.recv().unwrap();
///     conn.send(&word.to_uppercase()).unwrap();
/// }
///
/// let (here, there) = pipe::<String>()?;
/// let p = Process::new(ShoutTask, there).start()?;
/// here.send(&"hey".to_owned())?;
/// assert_eq!(here.recv()?, "HEY");
/// p.join();
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn pipe<T>() -> Result<(Connection<T>, Connection<T>), Error> {
    let (a, b) = socket_pair()?;
    Ok((Connection::new(a), Connection::new(b)))
}

/// Creates a one-way pipe: Python's `multiprocessing.Pipe(duplex=False)`, receiving end
/// first as in Python.
///
/// The [`Receiver`] only receives and the [`Sender`] only sends, so the "wrong end" errors
/// Python raises at run time cannot happen: the methods are not there.
///
/// ```compile_fail,E0599
/// let (rx, _tx) = flotilla::process::pipe_oneway::<u8>()?;
/// rx.send(&1)?; // a Receiver has no `send`
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Io`] if the operating system cannot create the socket pair.
///
/// # Examples
///
/// ```
/// use flotilla::process::{pipe_oneway, Process, Sender};
///
/// #[flotilla::task]
/// fn count(to: u32, out: Sender<u32>) {
///     for n in 1..=to {
///         out.send(&n).unwrap();
///     }
/// }
///
/// let (rx, tx) = pipe_oneway::<u32>()?;
/// let p = Process::new(CountTask, (3, tx)).start()?;
/// let got: Vec<u32> = std::iter::from_fn(|| rx.recv().ok()).collect(); // until it hangs up
/// assert_eq!(got, [1, 2, 3]);
/// p.join();
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn pipe_oneway<T>() -> Result<(Receiver<T>, Sender<T>), Error> {
    let (a, b) = socket_pair()?;
    Ok((
        Receiver {
            chan: Channel::new(a),
            _values: PhantomData,
        },
        Sender {
            chan: Channel::new(b),
            _values: PhantomData,
        },
    ))
}

fn socket_pair() -> Result<(OwnedFd, OwnedFd), Error> {
    let (a, b) = UnixStream::pair().map_err(pipe_error)?;
    Ok((a.into(), b.into()))
}

fn pipe_error(err: io::Error) -> Error {
    Error::Io {
        reason: format!("could not create a pipe: {err}"),
    }
}

/// Why [`recv_bytes_max`](Connection::recv_bytes_max) or
/// [`recv_bytes_into`](Connection::recv_bytes_into) returned no message.
///
/// [`TooLong`](RecvBytesError::TooLong) is Python's `OSError("bad message length")` and
/// `BufferTooShort`, with one difference on purpose: the message is **not** consumed. It stays
/// first in the pipe, nothing of it has been read or allocated, and the connection stays
/// usable: receive it with a larger limit or buffer, or with
/// [`recv_bytes`](Connection::recv_bytes). (Python closes the connection after a too-long
/// message, and hands a `BufferTooShort`'s message over inside the exception.)
///
/// # Examples
///
/// ```
/// use flotilla::process::{pipe, RecvBytesError};
///
/// let (a, b) = pipe::<()>()?;
/// b.send_bytes(b"twelve bytes")?;
/// let mut small = [0u8; 4];
/// match a.recv_bytes_into(&mut small) {
///     Err(RecvBytesError::TooLong { len, limit }) => assert_eq!((len, limit), (12, 4)),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(a.recv_bytes()?, b"twelve bytes"); // still there
/// # Ok::<(), flotilla::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RecvBytesError {
    /// The next message has `len` bytes, more than the `limit` the caller allowed (its
    /// `maxlength`, or its buffer's length). It was left in the pipe.
    TooLong {
        /// The message's length.
        len: usize,
        /// The most the caller would take.
        limit: usize,
    },
    /// Anything else, as for [`recv_bytes`](Connection::recv_bytes).
    Failed(Error),
}

impl RecvBytesError {
    /// True for [`TooLong`](RecvBytesError::TooLong).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = flotilla::process::pipe::<()>()?;
    /// b.send_bytes(b"ab")?;
    /// assert!(a.recv_bytes_max(1).unwrap_err().is_too_long());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn is_too_long(&self) -> bool {
        matches!(self, RecvBytesError::TooLong { .. })
    }
}

impl fmt::Display for RecvBytesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvBytesError::TooLong { len, limit } => write!(
                f,
                "the next message has {len} bytes, more than the {limit} allowed; it was left \
                 in the pipe"
            ),
            RecvBytesError::Failed(err) => write!(f, "could not receive a message: {err}"),
        }
    }
}

impl std::error::Error for RecvBytesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvBytesError::TooLong { .. } => None,
            RecvBytesError::Failed(err) => Some(err),
        }
    }
}

/// A too-long message becomes [`Error::InvalidOperation`], so that `?` passes it on.
impl From<RecvBytesError> for Error {
    fn from(err: RecvBytesError) -> Error {
        match err {
            RecvBytesError::Failed(err) => err,
            too_long => Error::InvalidOperation {
                reason: too_long.to_string(),
            },
        }
    }
}

/// One end of a two-way [`pipe`]: sends and receives values of type `T`, across processes.
///
/// Values are encoded with serde, one message per value; raw messages of bytes travel with
/// [`send_bytes`](Connection::send_bytes) and [`recv_bytes`](Connection::recv_bytes), as in
/// Python (a message sent one way and received the other fails to decode, as unpickling
/// bytes that are not a pickle does). A `Connection` is `Send` and `Sync`: concurrent `send`s
/// (or `recv`s) from several threads are serialized, never interleaved.
///
/// When every copy of the other end is closed, [`recv`](Connection::recv) returns
/// [`Error::Disconnected`] once the values already sent have been read, and
/// [`send`](Connection::send) returns it at once. Dropping a `Connection` closes it (Python's
/// `close()`), and so the other end sees end of file.
///
/// A connection travels to a child process only as (part of) the arguments of
/// [`Process::new`](super::Process::new): its socket is inherited by the child. Encoding it
/// anywhere else (a process-pool task, a [`Queue`](super::Queue), another connection) fails
/// with [`Error::Codec`].
///
/// # Examples
///
/// ```
/// let (a, b) = flotilla::process::pipe::<Vec<u32>>()?;
/// b.send(&vec![1, 2, 3])?;
/// assert_eq!(a.recv()?, [1, 2, 3]);
/// drop(b);
/// assert!(a.recv().unwrap_err().is_disconnected());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Connection<T> {
    chan: Channel,
    _values: PhantomData<fn(T) -> T>,
}

/// The receiving end of a one-way pipe ([`pipe_oneway`]): Python's first end of
/// `Pipe(duplex=False)`. It has the receiving half of [`Connection`]'s methods.
///
/// Dropping it closes it: the [`Sender`]'s next `send` fails with [`Error::Disconnected`].
///
/// # Examples
///
/// ```
/// let (rx, tx) = flotilla::process::pipe_oneway::<char>()?;
/// tx.send(&'x')?;
/// assert!(rx.poll());
/// assert_eq!(rx.recv()?, 'x');
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Receiver<T> {
    chan: Channel,
    _values: PhantomData<fn() -> T>,
}

/// The sending end of a one-way pipe ([`pipe_oneway`]): Python's second end of
/// `Pipe(duplex=False)`. It has the sending half of [`Connection`]'s methods.
///
/// Dropping it closes it: the [`Receiver`] sees [`Error::Disconnected`] once it has read what
/// was sent.
///
/// # Examples
///
/// ```
/// let (rx, tx) = flotilla::process::pipe_oneway::<char>()?;
/// tx.send(&'y')?;
/// drop(tx);
/// assert_eq!(rx.recv()?, 'y');
/// assert!(rx.recv().unwrap_err().is_disconnected());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Sender<T> {
    chan: Channel,
    _values: PhantomData<fn(T)>,
}

/// What every pipe end is: a socket, and the locks that keep messages whole.
struct Channel {
    stream: UnixStream,
    /// Held while a message is read, so that two readers never split one.
    reading: Mutex<Reader>,
    /// Held while a message is written, so that two writers never interleave.
    writing: Mutex<()>,
}

/// What a reader keeps between messages.
#[derive(Debug, Default)]
struct Reader {
    /// The buffer messages are read into, reused.
    body: Vec<u8>,
    /// The length of the next message, whose prefix was read but whose body was left in the
    /// pipe because it was longer than its caller allowed.
    pending: Option<usize>,
    /// Why the stream can no longer be read: a message stopped arriving part-way, or its
    /// length was impossible, so where the next one starts is unknown.
    broken: Option<String>,
}

/// How a pipe end is encoded in a child's arguments.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Connection")]
struct Ticket {
    /// Which of the descriptors passed to the child.
    slot: u32,
}

impl Channel {
    fn new(fd: OwnedFd) -> Channel {
        Channel {
            stream: UnixStream::from(fd),
            reading: Mutex::new(Reader::default()),
            writing: Mutex::new(()),
        }
    }

    fn closed(err: impl fmt::Display) -> Error {
        Error::Disconnected {
            reason: format!("the other end of the pipe was closed ({err})"),
        }
    }

    /// Whether a message (or the end of the stream) is waiting, waiting up to `timeout`.
    fn poll(&self, timeout: Duration) -> bool {
        if let Ok(reader) = self.reading.try_lock()
            && (reader.pending.is_some() || reader.broken.is_some())
        {
            return true;
        }
        sys::wait_readable(self.stream.as_fd(), Some(timeout)).unwrap_or(true)
    }

    fn send_value<T: Serialize>(&self, value: &T) -> Result<(), Error> {
        let mut frame = codec::encode(value, vec![0; 4], &"a value for a pipe")
            .map_err(|message| Error::Codec { message })?;
        wire::finish(&mut frame).map_err(|message| Error::Codec { message })?;
        let _writing = lock(&self.writing);
        sys::send_all(self.stream.as_fd(), &frame).map_err(Channel::closed)
    }

    fn send_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
        let prefix = u32::try_from(bytes.len())
            .ok()
            .filter(|_| bytes.len() <= MAX_FRAME)
            .ok_or_else(|| Error::Codec {
                message: format!(
                    "a message of {} bytes exceeds the limit of {MAX_FRAME} bytes",
                    bytes.len()
                ),
            })?;
        let _writing = lock(&self.writing);
        // Two writes under one lock: the bytes are not copied into a frame first.
        sys::send_all(self.stream.as_fd(), &prefix.to_le_bytes()).map_err(Channel::closed)?;
        sys::send_all(self.stream.as_fd(), bytes).map_err(Channel::closed)
    }

    fn recv_value<T: DeserializeOwned>(&self, timeout: Option<Duration>) -> Result<T, Error> {
        let body = self.read_message(timeout, MAX_FRAME).map_err(Error::from)?;
        // Decoded without the lock: a slow or stuck `Deserialize` holds up no other reader.
        let value = codec::decode(&body, &"a value received on a pipe")
            .map_err(|message| Error::Codec { message });
        self.give_back(body);
        value
    }

    fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, RecvBytesError> {
        let body = self.read_message(None, buf.len())?;
        let len = body.len();
        buf[..len].copy_from_slice(&body);
        self.give_back(body);
        Ok(len)
    }

    /// Keeps `body`'s allocation for the next message, unless another reader has one.
    fn give_back(&self, mut body: Vec<u8>) {
        if let Ok(mut reader) = self.reading.try_lock()
            && reader.body.capacity() == 0
        {
            wire::release(&mut body);
            reader.body = body;
        }
    }

    /// Reads the next message's bytes if it has at most `limit` of them, waiting at most
    /// `timeout` (if any) for it to start arriving and for each further part of it. A longer
    /// message is left in the pipe, its length remembered.
    fn read_message(
        &self,
        timeout: Option<Duration>,
        limit: usize,
    ) -> Result<Vec<u8>, RecvBytesError> {
        let failed = |err| RecvBytesError::Failed(Channel::closed(err));
        let mut reader = lock(&self.reading);
        if let Some(why) = &reader.broken {
            return Err(failed(why.clone()));
        }
        if let Some(len) = reader.pending
            && len > limit
        {
            return Err(RecvBytesError::TooLong { len, limit });
        }
        if let Some(timeout) = timeout {
            // Under the lock, so that another reader cannot take the message we saw arrive.
            let ready = sys::wait_readable(self.stream.as_fd(), Some(timeout))
                .map_err(|err| failed(err.to_string()))?;
            if !ready && reader.pending.is_none() {
                return Err(RecvBytesError::Failed(Error::Timeout {
                    waited: timeout,
                    unfinished: None,
                }));
            }
            self.stream
                .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
                .map_err(|err| failed(err.to_string()))?;
        }
        let read = self.read_frame(&mut reader, limit, timeout);
        if timeout.is_some() {
            self.stream
                .set_read_timeout(None)
                .map_err(|err| failed(err.to_string()))?;
        }
        read.map(|()| std::mem::take(&mut reader.body))
    }

    /// Reads one frame (or the rest of the pending one) into `reader.body`. A message longer
    /// than `limit` is left pending; a stream that broke inside a message is marked broken.
    fn read_frame(
        &self,
        reader: &mut Reader,
        limit: usize,
        timeout: Option<Duration>,
    ) -> Result<(), RecvBytesError> {
        let len = match reader.pending {
            Some(len) => len,
            None => match wire::read_prefix(&mut &self.stream) {
                Ok(len) => len,
                Err(err) => return Err(Channel::broken(reader, err, timeout)),
            },
        };
        if len > MAX_FRAME {
            let why = format!("a frame length of {len} exceeds the limit of {MAX_FRAME} bytes");
            return Err(Channel::broken(reader, ReadError::Malformed(why), timeout));
        }
        if len > limit {
            reader.pending = Some(len);
            return Err(RecvBytesError::TooLong { len, limit });
        }
        reader.pending = None;
        let mut body = std::mem::take(&mut reader.body);
        let read = wire::read_body(&mut &self.stream, &mut body, len);
        reader.body = body;
        read.map_err(|err| Channel::broken(reader, err, timeout))
    }

    /// The error for a read that failed with `err`; unless the stream simply ended at a
    /// message boundary, where the next message starts is now unknown and `reader` is marked
    /// broken for good.
    fn broken(reader: &mut Reader, err: ReadError, timeout: Option<Duration>) -> RecvBytesError {
        let (why, error) = match err {
            ReadError::Closed => return RecvBytesError::Failed(Channel::closed("end of stream")),
            ReadError::Io(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let why = format!(
                    "a message stopped arriving part-way: nothing came for {:?}; the pipe can \
                     no longer be read",
                    timeout.unwrap_or_default()
                );
                (why.clone(), Channel::closed(why))
            }
            ReadError::Io(err) => (
                format!("{err}; the pipe can no longer be read"),
                Channel::closed(err),
            ),
            ReadError::Malformed(why) => (
                format!("an earlier message was malformed ({why})"),
                Error::Codec {
                    message: format!("a malformed message on a pipe: {why}"),
                },
            ),
        };
        reader.broken = Some(why);
        RecvBytesError::Failed(error)
    }
}

impl<T> Connection<T> {
    fn new(fd: OwnedFd) -> Connection<T> {
        Connection {
            chan: Channel::new(fd),
            _values: PhantomData,
        }
    }
}

/// The receiving methods, on [`Connection`] and [`Receiver`] alike. `$pipe` makes the pair
/// the examples use: a receiving end `a` and a sending end `b`.
macro_rules! receiving {
    ($end:ident, $pipe:literal) => {
        impl<T> $end<T> {
            /// Whether a message (or the end of the stream) is waiting to be received right
            /// now: Python's `poll()`, which does not wait. When this returns `true`, a
            /// receive does not block for long: it returns the message, or
            /// [`Error::Disconnected`] if the other end was closed.
            ///
            /// To wait for one of several ends (or processes) at once, use
            /// [`wait`](super::wait).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let (a, b) = flotilla::process::", $pipe, "::<u8>()?;")]
            /// assert!(!a.poll());
            /// b.send(&7)?;
            /// assert!(a.poll_timeout(std::time::Duration::from_secs(5)));
            /// assert!(a.poll()); // polling does not take the message
            /// assert_eq!(a.recv()?, 7);
            /// # Ok::<(), flotilla::Error>(())
            /// ```
            pub fn poll(&self) -> bool {
                self.chan.poll(Duration::ZERO)
            }

            /// Like [`poll`](Self::poll), but waits up to `timeout` for a message: Python's
            /// `poll(timeout)`.
            ///
            /// # Blocking
            ///
            /// Up to `timeout`.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("let (a, b) = flotilla::process::", $pipe, "::<u8>()?;")]
            /// assert!(!a.poll_timeout(Duration::from_millis(10)));
            /// drop(b);
            /// assert!(a.poll_timeout(Duration::from_secs(5))); // the end of the stream
            /// # Ok::<(), flotilla::Error>(())
            /// ```
            pub fn poll_timeout(&self, timeout: Duration) -> bool {
                self.chan.poll(timeout)
            }

            /// Receives the next message as raw bytes: Python's `recv_bytes()`.
            ///
            /// # Errors
            ///
            /// [`Error::Disconnected`] once the other end is closed and every message sent
            /// before has been received; [`Error::Codec`] if a message announced an
            /// impossible length (over 1 GiB), after which the end can no longer be read.
            ///
            /// # Blocking
            ///
            /// Until a message arrives or the other end is closed.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let (a, b) = flotilla::process::", $pipe, "::<()>()?;")]
            /// b.send_bytes(b"hello")?;
            /// b.send_bytes(&b"hello world"[6..])?; // Python's send_bytes(buf, offset=6)
            /// assert_eq!(a.recv_bytes()?, b"hello");
            /// assert_eq!(a.recv_bytes()?, b"world");
            /// # Ok::<(), flotilla::Error>(())
            /// ```
            pub fn recv_bytes(&self) -> Result<Vec<u8>, Error> {
                self.chan.read_message(None, MAX_FRAME).map_err(Error::from)
            }

            /// Receives the next message as raw bytes if it has at most `maxlength` of them:
            /// Python's `recv_bytes(maxlength)`.
            ///
            /// A longer message is refused without being read, and stays first in the pipe
            /// (Python instead makes the connection unusable): see [`RecvBytesError`].
            ///
            /// # Errors
            ///
            /// [`RecvBytesError::TooLong`] for a longer message; otherwise
            /// [`RecvBytesError::Failed`] as for [`recv_bytes`](Self::recv_bytes).
            ///
            /// # Blocking
            ///
            /// Until a message arrives or the other end is closed.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let (a, b) = flotilla::process::", $pipe, "::<()>()?;")]
            /// b.send_bytes(&[0; 100])?;
            /// assert!(a.recv_bytes_max(10).unwrap_err().is_too_long());
            /// assert_eq!(a.recv_bytes_max(100)?.len(), 100);
            /// # Ok::<(), flotilla::Error>(())
            /// ```
            pub fn recv_bytes_max(&self, maxlength: usize) -> Result<Vec<u8>, RecvBytesError> {
                self.chan.read_message(None, maxlength)
            }

            /// Receives the next message into `buf` and returns its length: Python's
            /// `recv_bytes_into(buffer)` (for its `offset`, pass `&mut buf[offset..]`). The
            /// rest of `buf` is left as it was.
            ///
            /// A message longer than `buf` is refused without being read, and stays first in
            /// the pipe (Python's `BufferTooShort` instead carries it away): see
            /// [`RecvBytesError`].
            ///
            /// # Errors
            ///
            /// [`RecvBytesError::TooLong`] for a message longer than `buf`; otherwise
            /// [`RecvBytesError::Failed`] as for [`recv_bytes`](Self::recv_bytes).
            ///
            /// # Blocking
            ///
            /// Until a message arrives or the other end is closed.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let (a, b) = flotilla::process::", $pipe, "::<()>()?;")]
            /// b.send_bytes(&[1, 2, 3])?;
            /// let mut buf = [0u8; 8];
            /// let n = a.recv_bytes_into(&mut buf[2..])?;
            /// assert_eq!((n, buf), (3, [0, 0, 1, 2, 3, 0, 0, 0]));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, RecvBytesError> {
                self.chan.recv_bytes_into(buf)
            }
        }

        impl<T: DeserializeOwned> $end<T> {
            /// Receives the next value, waiting for one as long as it takes.
            ///
            /// # Errors
            ///
            /// [`Error::Disconnected`] once the other end is closed and every value sent
            /// before has been received, [`Error::Codec`] if a message is not a valid `T`.
            ///
            /// # Blocking
            ///
            /// Until a value arrives or the other end is closed.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let (a, b) = flotilla::process::", $pipe, "::<u64>()?;")]
            /// b.send(&42)?;
            /// assert_eq!(a.recv()?, 42);
            /// # Ok::<(), flotilla::Error>(())
            /// ```
            pub fn recv(&self) -> Result<T, Error> {
                self.chan.recv_value(None)
            }

            /// Receives the next value, waiting at most `timeout` for it to start arriving.
            ///
            /// # Errors
            ///
            /// [`Error::Timeout`] if nothing arrived in time; otherwise as
            /// [`recv`](Self::recv). A message that starts arriving and then stops for
            /// `timeout` (its sender stopped or hung part-way) fails with
            /// [`Error::Disconnected`], and so does every later receive: where the next
            /// message would start is unknown. The same holds after a malformed message (an
            /// impossible length), which fails with [`Error::Codec`].
            ///
            /// # Blocking
            ///
            /// Up to `timeout` for the message to start arriving, and up to `timeout` for
            /// each further part of it.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("let (a, _b) = flotilla::process::", $pipe, "::<u64>()?;")]
            /// let err = a.recv_timeout(Duration::from_millis(10)).unwrap_err();
            /// assert!(err.is_timeout());
            /// # Ok::<(), flotilla::Error>(())
            /// ```
            pub fn recv_timeout(&self, timeout: Duration) -> Result<T, Error> {
                self.chan.recv_value(Some(timeout))
            }
        }
    };
}

/// The sending methods, on [`Connection`] and [`Sender`] alike; `$pipe` as for `receiving!`.
macro_rules! sending {
    ($end:ident, $pipe:literal) => {
        impl<T> $end<T> {
            /// Sends `bytes` as one raw message: Python's `send_bytes(buf)`. Python's
            /// `offset` and `size` are a slice here: `send_bytes(&buf[offset..offset +
            /// size])` (a range outside `buf` panics in the slicing, where Python raises
            /// `ValueError`; use `buf.get(..)` to test it first). An empty message is a
            /// message.
            ///
            /// # Errors
            ///
            /// [`Error::Codec`] if `bytes` is over 1 GiB, [`Error::Disconnected`] if the other
            /// end was closed.
            ///
            /// # Blocking
            ///
            /// While the pipe's buffer is full, until the other end reads.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let (a, b) = flotilla::process::", $pipe, "::<()>()?;")]
            /// let msg = b"abcdefghijklmnopqrstuvwxyz";
            /// b.send_bytes(&msg[7..7 + 8])?; // Python's send_bytes(msg, 7, 8)
            /// b.send_bytes(&[])?;
            /// assert_eq!(a.recv_bytes()?, b"hijklmno");
            /// assert_eq!(a.recv_bytes()?, b"");
            /// # Ok::<(), flotilla::Error>(())
            /// ```
            pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
                self.chan.send_bytes(bytes)
            }
        }

        impl<T: Serialize> $end<T> {
            /// Sends `value` to the other end.
            ///
            /// # Errors
            ///
            /// [`Error::Codec`] if `value` cannot be encoded, [`Error::Disconnected`] if the
            /// other end was closed.
            ///
            /// # Blocking
            ///
            /// While the pipe's buffer is full, until the other end reads.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let (a, b) = flotilla::process::", $pipe, "::<(u8, String)>()?;")]
            /// b.send(&(1, "one".to_owned()))?;
            /// assert_eq!(a.recv()?, (1, "one".to_owned()));
            /// # Ok::<(), flotilla::Error>(())
            /// ```
            pub fn send(&self, value: &T) -> Result<(), Error> {
                self.chan.send_value(value)
            }
        }
    };
}

/// What every pipe end shares: its socket for event loops, `Debug`, and how it travels.
macro_rules! end {
    ($end:ident, $pipe:literal) => {
        /// The end's socket, like Python's `fileno()`: for [`wait`](super::wait) or an event
        /// loop of your own. Reading or writing it directly breaks the framing of the
        /// messages.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::os::fd::AsFd;
        ///
        #[doc = concat!("let (a, _b) = flotilla::process::", $pipe, "::<u8>()?;")]
        /// let fd = a.as_fd().try_clone_to_owned()?; // e.g. to register with a reactor
        /// # drop(fd);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        impl<T> AsFd for $end<T> {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.chan.stream.as_fd()
            }
        }

        /// The end's socket's number, Python's `fileno()`, valid while the end lives.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::os::fd::AsRawFd;
        ///
        #[doc = concat!("let (a, b) = flotilla::process::", $pipe, "::<u8>()?;")]
        /// assert_ne!(a.as_raw_fd(), b.as_raw_fd());
        /// # Ok::<(), flotilla::Error>(())
        /// ```
        impl<T> AsRawFd for $end<T> {
            fn as_raw_fd(&self) -> RawFd {
                self.chan.stream.as_raw_fd()
            }
        }

        impl<T> fmt::Debug for $end<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("fd", &self.chan.stream.as_raw_fd())
                    .finish()
            }
        }

        /// Encodes the end for a child process; only valid inside
        /// [`Process::start`](super::Process::start), which passes the socket itself to the
        /// child.
        impl<T> Serialize for $end<T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let slot = fds::export(self.chan.stream.as_fd()).map_err(refusal::encoding)?;
                Ticket { slot }.serialize(serializer)
            }
        }

        /// Takes over an end passed to this child process; fails anywhere else.
        impl<'de, T> Deserialize<'de> for $end<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let ticket = Ticket::deserialize(deserializer)?;
                let fd = fds::claim(ticket.slot).map_err(refusal::decoding)?;
                Ok($end {
                    chan: Channel::new(fd),
                    _values: PhantomData,
                })
            }
        }
    };
}

receiving!(Connection, "pipe");
sending!(Connection, "pipe");
end!(Connection, "pipe");
receiving!(Receiver, "pipe_oneway");
sending!(Sender, "pipe_oneway");
end!(Receiver, "pipe_oneway");
end!(Sender, "pipe_oneway");
