//! [`pipe`] and [`Connection`]: Python's `multiprocessing.Pipe`, typed.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{fds, sys};
use crate::wire::codec;
use crate::wire::refusal;
use crate::wire::{self, ReadError};
use flotilla_core::Error;
use flotilla_core::primitives::{Mutex, lock};

/// Creates a pipe between two [`Connection`]s carrying values of type `T`: Python's
/// `multiprocessing.Pipe(duplex)`.
///
/// With `duplex` both ends send and receive. Without it the first end only receives and the
/// second only sends, as in Python. Hand an end to a child process by passing it in the
/// arguments of [`Process::new`](super::Process::new); it moves to the child.
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
/// let (here, there) = pipe::<String>(true)?;
/// let mut p = Process::new(shout, there);
/// p.start()?;
/// here.send(&"hey".to_owned())?;
/// assert_eq!(here.recv()?, "HEY");
/// p.join();
/// # Ok::<(), flotilla::Error>(())
/// ```
pub fn pipe<T>(duplex: bool) -> Result<(Connection<T>, Connection<T>), Error> {
    let (a, b) = UnixStream::pair().map_err(|err| Error::Io {
        reason: format!("could not create a pipe: {err}"),
    })?;
    Ok((
        Connection::new(a.into(), true, duplex),
        Connection::new(b.into(), duplex, true),
    ))
}

/// One end of a [`pipe`]: sends and receives values of type `T`, across processes.
///
/// Values are encoded with serde, one message per value. A `Connection` is `Send` and `Sync`:
/// concurrent `send`s (or `recv`s) from several threads are serialized, never interleaved.
///
/// When every copy of the other end is closed, [`recv`](Connection::recv) returns
/// [`Error::Disconnected`] once the values already sent have been read, and
/// [`send`](Connection::send) returns it at once.
///
/// A connection travels to a child process only as (part of) the arguments of
/// [`Process::new`](super::Process::new): its socket is inherited by the child. Encoding it
/// anywhere else (a process-pool task, a [`Queue`](super::Queue), another connection) fails
/// with [`Error::Codec`].
///
/// # Examples
///
/// ```
/// let (rx, tx) = flotilla::process::pipe::<Vec<u32>>(false)?;
/// tx.send(&vec![1, 2, 3])?;
/// assert_eq!(rx.recv()?, [1, 2, 3]);
/// drop(tx);
/// assert!(rx.recv().unwrap_err().is_disconnected());
/// # Ok::<(), flotilla::Error>(())
/// ```
pub struct Connection<T> {
    stream: UnixStream,
    readable: bool,
    writable: bool,
    /// Held while a message is read, so that two readers never split one.
    reading: Mutex<Reader>,
    /// Held while a message is written, so that two writers never interleave.
    writing: Mutex<()>,
    _values: PhantomData<fn(T) -> T>,
}

/// What a reader keeps between messages.
#[derive(Debug, Default)]
struct Reader {
    /// The buffer messages are read into, reused.
    body: Vec<u8>,
    /// Why the stream can no longer be read: a message stopped arriving part-way, or its
    /// length was impossible, so where the next one starts is unknown.
    broken: Option<String>,
}

/// How a connection is encoded in a child's arguments.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Connection")]
struct Ticket {
    /// Which of the descriptors passed to the child.
    slot: u32,
    readable: bool,
    writable: bool,
}

impl<T> Connection<T> {
    fn new(fd: OwnedFd, readable: bool, writable: bool) -> Connection<T> {
        Connection {
            stream: UnixStream::from(fd),
            readable,
            writable,
            reading: Mutex::new(Reader::default()),
            writing: Mutex::new(()),
            _values: PhantomData,
        }
    }

    /// Whether values can be received on this end (Python's `readable`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, tx) = flotilla::process::pipe::<u8>(false)?;
    /// assert!(rx.readable() && !tx.readable());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether values can be sent on this end (Python's `writable`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, tx) = flotilla::process::pipe::<u8>(false)?;
    /// assert!(tx.writable() && !rx.writable());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Whether a value (or the end of the stream) is waiting to be received, without waiting:
    /// Python's `poll()`. When this returns `true`, [`recv`](Connection::recv) does not block
    /// for long: it returns the value, or [`Error::Disconnected`] if the other end was closed.
    /// Always `false` on a send-only end. [`poll_timeout`](Connection::poll_timeout) waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = flotilla::process::pipe::<u8>(true)?;
    /// assert!(!a.poll());
    /// drop(b);
    /// assert!(a.poll()); // the end of the stream is there to be received
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn poll(&self) -> bool {
        self.poll_within(Some(Duration::ZERO))
    }

    /// [`poll`](Connection::poll), waiting up to `timeout` for a value or the end of the
    /// stream: Python's `poll(timeout)` (`Duration::MAX` waits as long as it takes).
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
    /// let (a, b) = flotilla::process::pipe::<u8>(true)?;
    /// assert!(!a.poll_timeout(Duration::from_millis(10)));
    /// b.send(&7)?;
    /// assert!(a.poll_timeout(Duration::from_secs(5)));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn poll_timeout(&self, timeout: Duration) -> bool {
        self.poll_within(Some(timeout))
    }

    fn poll_within(&self, timeout: Option<Duration>) -> bool {
        self.readable && sys::wait_readable(self.stream.as_fd(), timeout).unwrap_or(true)
    }

    fn closed(&self, err: impl fmt::Display) -> Error {
        Error::Disconnected {
            reason: format!("the other end of the pipe was closed ({err})"),
        }
    }
}

impl<T: Serialize> Connection<T> {
    /// Sends `value` to the other end.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] on the receive-only end of a one-way pipe,
    /// [`Error::Codec`] if `value` cannot be encoded, [`Error::Disconnected`] if the other end
    /// was closed.
    ///
    /// # Blocking
    ///
    /// While the pipe's buffer is full, until the other end reads.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = flotilla::process::pipe::<(u8, String)>(true)?;
    /// a.send(&(1, "one".to_owned()))?;
    /// assert_eq!(b.recv()?, (1, "one".to_owned()));
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn send(&self, value: &T) -> Result<(), Error> {
        if !self.writable {
            return Err(Error::InvalidOperation {
                reason: "cannot send on the receiving end of a one-way pipe".to_owned(),
            });
        }
        let mut frame = codec::encode(value, vec![0; 4], &"a value for a pipe")
            .map_err(|message| Error::Codec { message })?;
        wire::finish(&mut frame).map_err(|message| Error::Codec { message })?;
        let _writing = lock(&self.writing);
        sys::send_all(self.stream.as_fd(), &frame).map_err(|err| self.closed(err))
    }
}

impl<T: DeserializeOwned> Connection<T> {
    /// Receives the next value, waiting for one as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] on the send-only end of a one-way pipe,
    /// [`Error::Disconnected`] once the other end is closed and every value sent before has
    /// been received, [`Error::Codec`] if a message is not a valid `T`.
    ///
    /// # Blocking
    ///
    /// Until a value arrives or the other end is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = flotilla::process::pipe::<u64>(true)?;
    /// b.send(&42)?;
    /// assert_eq!(a.recv()?, 42);
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn recv(&self) -> Result<T, Error> {
        self.receive(None)
    }

    /// Receives the next value, waiting at most `timeout` for it to start arriving.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if nothing arrived in time; otherwise as [`recv`](Connection::recv).
    /// A message that starts arriving and then stops for `timeout` (its sender stopped or
    /// hung part-way) fails with [`Error::Disconnected`], and so does every later receive:
    /// where the next message would start is unknown. The same holds after a malformed
    /// message (an impossible length), which fails with [`Error::Codec`].
    ///
    /// # Blocking
    ///
    /// Up to `timeout` for the message to start arriving, and up to `timeout` for each
    /// further part of it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, _b) = flotilla::process::pipe::<u64>(true)?;
    /// let err = a.recv_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// # Ok::<(), flotilla::Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.receive(Some(timeout))
    }

    fn receive(&self, timeout: Option<Duration>) -> Result<T, Error> {
        if !self.readable {
            return Err(Error::InvalidOperation {
                reason: "cannot receive on the sending end of a one-way pipe".to_owned(),
            });
        }
        let body = self.read_message(timeout)?;
        // Decoded without the lock: a slow or stuck `Deserialize` holds up no other reader.
        let value = codec::decode(&body, &"a value received on a pipe")
            .map_err(|message| Error::Codec { message });
        if let Ok(mut reader) = self.reading.try_lock()
            && reader.body.capacity() == 0
        {
            reader.body = body;
        }
        value
    }

    /// Reads the next message's bytes, waiting at most `timeout` (if any) for it to start
    /// arriving and for each further part of it.
    fn read_message(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        let mut reader = lock(&self.reading);
        if let Some(why) = &reader.broken {
            return Err(self.closed(why));
        }
        if let Some(timeout) = timeout {
            // Under the lock, so that another reader cannot take the message we saw arrive.
            let ready = sys::wait_readable(self.stream.as_fd(), Some(timeout))
                .map_err(|err| self.closed(err))?;
            if !ready {
                return Err(Error::Timeout {
                    waited: timeout,
                    unfinished: None,
                });
            }
            self.stream
                .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
                .map_err(|err| self.closed(err))?;
        }
        let read = wire::read_frame(&mut &self.stream, &mut reader.body);
        if timeout.is_some() {
            self.stream
                .set_read_timeout(None)
                .map_err(|err| self.closed(err))?;
        }
        match read {
            Ok(()) => Ok(std::mem::take(&mut reader.body)),
            Err(ReadError::Closed) => Err(self.closed("end of stream")),
            Err(ReadError::Io(err))
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
                reader.broken = Some(why.clone());
                Err(self.closed(why))
            }
            Err(ReadError::Io(err)) => Err(self.closed(err)),
            Err(ReadError::Malformed(why)) => {
                reader.broken = Some(format!("an earlier message was malformed ({why})"));
                Err(Error::Codec {
                    message: format!("a malformed message on a pipe: {why}"),
                })
            }
        }
    }
}

/// The connection's socket, like Python's `fileno()`: for waiting on it in an event loop of
/// your own. Reading or writing it directly breaks the framing of the messages.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
///
/// let (a, _b) = flotilla::process::pipe::<u8>(true)?;
/// let fd = a.as_fd().try_clone_to_owned()?; // e.g. to register with a reactor
/// # drop(fd);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<T> AsFd for Connection<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &std::os::fd::AsRawFd::as_raw_fd(&self.stream))
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .finish()
    }
}

/// Encodes the connection for a child process; only valid inside
/// [`Process::start`](super::Process::start), which passes the socket itself to the child.
impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let slot = fds::export(self.stream.as_fd()).map_err(refusal::encoding)?;
        Ticket {
            slot,
            readable: self.readable,
            writable: self.writable,
        }
        .serialize(serializer)
    }
}

/// Takes over a connection passed to this child process; fails anywhere else.
impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ticket = Ticket::deserialize(deserializer)?;
        let fd = fds::claim(ticket.slot).map_err(refusal::decoding)?;
        Ok(Connection::new(fd, ticket.readable, ticket.writable))
    }
}
