//! One Redis connection that reconnects by itself when the server goes away and comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flotilla::Error;

/// How long to wait for a TCP connect or a reply before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// When a client or worker last heard from the server, over any of its connections.
#[derive(Debug)]
pub(crate) struct Contact {
    epoch: Instant,
    /// Milliseconds from `epoch` to the last reply.
    last: AtomicU64,
}

impl Contact {
    pub(crate) fn new() -> Arc<Contact> {
        Arc::new(Contact {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
        })
    }

    fn heard(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(now, Ordering::Relaxed);
    }

    /// How long since the server last answered.
    pub(crate) fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// A connection plus what is needed to open it again.
pub(crate) struct Conn {
    client: redis::Client,
    conn: Option<redis::Connection>,
    /// Told of every reply.
    contact: Option<Arc<Contact>>,
    /// The server's `run_id` at the last connect: it changes when the server restarts.
    run_id: Option<String>,
    /// The URL with any password hidden, for messages.
    shown: String,
    /// Read timeout for every command (blocking reads ask for less than this).
    read_timeout: Duration,
}

impl Conn {
    /// Connects once and checks the server answers; errors say why, clearly.
    pub(crate) fn open(url: &str) -> Result<Conn, Error> {
        let shown = redact(url);
        let client = redis::Client::open(url).map_err(|err| Error::InvalidConfig {
            reason: format!("bad Redis URL {shown}: {err}"),
        })?;
        let mut conn = Conn {
            client,
            conn: None,
            contact: None,
            run_id: None,
            shown,
            read_timeout: Duration::from_secs(10),
        };
        if let Err(err) = conn.connect().map(|_| ()) {
            return Err(conn.error(&err));
        }
        Ok(conn)
    }

    /// Another connection to the same server.
    pub(crate) fn another(&self) -> Result<Conn, Error> {
        let mut conn = Conn {
            client: self.client.clone(),
            conn: None,
            contact: self.contact.clone(),
            run_id: None,
            shown: self.shown.clone(),
            read_timeout: self.read_timeout,
        };
        if let Err(err) = conn.connect().map(|_| ()) {
            return Err(conn.error(&err));
        }
        Ok(conn)
    }

    /// Reports every reply of this connection (and of those made by [`another`](Conn::another)
    /// from now on) to `contact`.
    pub(crate) fn tell(&mut self, contact: &Arc<Contact>) {
        self.contact = Some(Arc::clone(contact));
    }

    /// The server's `run_id` as of the last connect (`None` if the server does not say).
    pub(crate) fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// Connects now if not connected, so that [`run_id`](Conn::run_id) is current.
    pub(crate) fn ensure(&mut self) -> redis::RedisResult<()> {
        self.once(&mut |_| Ok(()))
    }

    /// The largest value the server accepts in one command argument
    /// (`proto-max-bulk-len`; Redis' default of 512 MiB where `CONFIG` is not allowed).
    pub(crate) fn bulk_limit(&mut self) -> u64 {
        const DEFAULT: u64 = 512 << 20;
        let reply = self.once(&mut |c| {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("proto-max-bulk-len")
                .query::<Vec<String>>(c)
        });
        match reply {
            Ok(pair) => pair.get(1).and_then(|v| v.parse().ok()).unwrap_or(DEFAULT),
            Err(_) => DEFAULT,
        }
    }

    fn connect(&mut self) -> redis::RedisResult<&mut redis::Connection> {
        if self.conn.is_none() {
            let mut conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
            conn.set_read_timeout(Some(self.read_timeout))?;
            conn.set_write_timeout(Some(self.read_timeout))?;
            let info: String = redis::cmd("INFO").arg("server").query(&mut conn)?;
            self.run_id = info
                .lines()
                .find_map(|line| line.strip_prefix("run_id:"))
                .map(|id| id.trim().to_owned());
            self.conn = Some(conn);
        }
        match &mut self.conn {
            Some(conn) => Ok(conn),
            None => unreachable!("connected just above"),
        }
    }

    /// Runs `f` once; a connection-level failure drops the connection for the next call.
    pub(crate) fn once<T>(
        &mut self,
        f: &mut impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let result = self.connect().and_then(f);
        match &result {
            Err(err) if transient(err) => self.conn = None,
            // Any reply, even an error, is word from the server.
            _ => {
                if let Some(contact) = &self.contact {
                    contact.heard();
                }
            }
        }
        result
    }

    /// Runs `f`, reconnecting and retrying while the server is unreachable or restarting, until
    /// it succeeds, fails for another reason, `stop` is set or `patience` runs out.
    pub(crate) fn retry<T>(
        &mut self,
        stop: &AtomicBool,
        patience: Option<Duration>,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            match self.once(&mut f) {
                Ok(value) => return Ok(value),
                Err(err) if transient(&err) => {
                    let out_of_time = patience.is_some_and(|p| started.elapsed() >= p);
                    if stop.load(Ordering::Relaxed) || out_of_time {
                        return Err(Error::Disconnected {
                            reason: format!("Redis at {}: {err}", self.shown),
                        });
                    }
                    tracing::warn!(server = %self.shown, %err, "Redis unreachable; retrying");
                    // Backing off between reconnects to a server that is down; not used to
                    // wait for any event of our own.
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(err) => return Err(self.error(&err)),
            }
        }
    }

    /// A flotilla error for a failed command.
    pub(crate) fn error(&self, err: &redis::RedisError) -> Error {
        let what = match err.kind() {
            redis::ErrorKind::AuthenticationFailed => "authentication failed",
            _ if err.code() == Some("WRONGPASS") || err.code() == Some("NOAUTH") => {
                "authentication failed"
            }
            _ if err.is_connection_refusal() => "no server is listening",
            _ if err.is_timeout() => "the server did not answer in time",
            _ => "",
        };
        let reason = if what.is_empty() {
            format!("Redis at {}: {err}", self.shown)
        } else {
            format!("Redis at {}: {what} ({err})", self.shown)
        };
        if transient(err) {
            Error::Disconnected { reason }
        } else {
            Error::Io { reason }
        }
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("server", &self.shown)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// True for failures that a reconnect may cure: the connection broke, the server is down or
/// restarting (still loading its data).
pub(crate) fn transient(err: &redis::RedisError) -> bool {
    if matches!(
        err.kind(),
        redis::ErrorKind::AuthenticationFailed | redis::ErrorKind::InvalidClientConfig
    ) {
        return false;
    }
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.code() == Some("LOADING")
        || matches!(
            err.retry_method(),
            redis::RetryMethod::Reconnect | redis::RetryMethod::WaitAndRetry
        )
}

/// The URL with its password (`user:password@` or `?pass=`) replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let mut shown = match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => format!("{scheme}://{rest}"),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some(("pass", _)) => "pass=***".to_owned(),
                _ => param.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&params.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("redis://:pw@host:1/0"), "redis://:***@host:1/0");
        assert_eq!(redact("redis://u:pw@host"), "redis://u:***@host");
        assert_eq!(redact("redis+unix:///tmp/s"), "redis+unix:///tmp/s");
        assert_eq!(
            redact("redis+unix:///tmp/s?db=1&pass=pw"),
            "redis+unix:///tmp/s?db=1&pass=***"
        );
    }
}
