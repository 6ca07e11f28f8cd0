//! An async TCP Fibonacci server that offloads the computing to a process pool.
//!
//! The course builds this server by hand: generators stand for tasks, a loop around
//! `select()` wakes the ones whose socket is ready, and CPU-bound `fib` goes to a
//! `ProcessPoolExecutor` so one slow request does not freeze every client:
//!
//! ```python
//! def fib_server(address):
//!     sock = socket(AF_INET, SOCK_STREAM)
//!     sock.bind(address)
//!     sock.listen(5)
//!     while True:
//!         yield 'recv', sock                  # park until a client connects
//!         client, addr = sock.accept()
//!         tasks.append(fib_handler(client))
//!
//! def fib_handler(client):
//!     while True:
//!         yield 'recv', client
//!         req = client.recv(100)
//!         if not req:
//!             break
//!         n = int(req)                        # a bad request kills the handler
//!         future = pool.submit(fib, n)
//!         yield 'future', future              # park until the worker answers
//!         client.send(str(future.result()).encode('ascii') + b'\n')
//! ```
//!
//! Here the real tools do that work: tokio is the scheduler (`async fn` instead of
//! generators, epoll instead of `select()`), and `pool.submit(fib, n)?.await` parks a handler
//! until a worker process answers, because a [`flotilla::Future`] is a `std::future::Future`.
//! The runtime is a single thread, yet many clients are served at once: it only waits, while
//! the process pool computes. A request that is not a number (or is too large) gets an
//! `error: ...` reply and the connection goes on; it never takes the handler down.
//!
//! So that it runs unattended, the example starts the server on an ephemeral port of
//! 127.0.0.1, runs 20 concurrent clients against it (plus one that sends garbage first),
//! checks every answer, then shuts the server down and exits.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use flotilla::{Executor, ProcessPoolExecutor};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

type BoxError = Box<dyn Error + Send + Sync>;

/// The largest `n` served: naive `fib` grows exponentially, so a cap keeps requests short.
const MAX_N: u64 = 32;
/// How many well-behaved clients run at once.
const CLIENTS: u64 = 20;

/// CPU-bound work: the naive doubly recursive Fibonacci.
#[flotilla::task]
fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

/// Accepts connections until `stop` fires, then lets the open conversations finish.
/// Returns how many connections it served.
async fn serve(
    listener: TcpListener,
    pool: Arc<ProcessPoolExecutor>,
    mut stop: oneshot::Receiver<()>,
) -> Result<usize, BoxError> {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                connections.spawn(handle(stream, Arc::clone(&pool)));
            }
        }
    }
    drop(listener);
    let mut served = 0;
    while let Some(finished) = connections.join_next().await {
        if let Err(err) = finished? {
            eprintln!("server: a connection failed: {err}");
        }
        served += 1;
    }
    Ok(served)
}

/// One client's conversation: a number per line in, `fib(number)` or `error: ...` per line out.
async fn handle(stream: TcpStream, pool: Arc<ProcessPoolExecutor>) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match answer(&pool, line.trim()).await {
            Ok(value) => format!("{value}\n"),
            Err(why) => format!("error: {why}\n"),
        };
        writer.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// Parses a request and computes it on the process pool.
async fn answer(pool: &ProcessPoolExecutor, request: &str) -> Result<u64, String> {
    let n: u64 = request
        .parse()
        .map_err(|_| format!("expected a number from 0 to {MAX_N}, got {request:?}"))?;
    if n > MAX_N {
        return Err(format!("{n} is too large (at most {MAX_N})"));
    }
    let future = pool.submit(FibTask, n).map_err(|err| err.to_string())?;
    future.await.map_err(|err| err.to_string())
}

/// A client on its own connection: sends each request, reads each reply.
async fn ask(addr: SocketAddr, requests: &[&str]) -> Result<Vec<String>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let mut replies = Vec::new();
    for request in requests {
        writer.write_all(format!("{request}\n").as_bytes()).await?;
        let reply = lines.next_line().await?.ok_or("the server hung up")?;
        replies.push(reply);
    }
    Ok(replies)
}

/// `fib(n)` the fast way, to check the server's answers.
fn fib_iterative(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let pool = Arc::new(ProcessPoolExecutor::new());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(serve(listener, Arc::clone(&pool), stopped));
    println!(
        "fib server on {addr}, offloading to {} worker processes",
        pool.max_workers()
    );

    let started = Instant::now();
    let mut clients = JoinSet::new();
    for i in 0..CLIENTS {
        let n = 10 + i;
        clients.spawn(async move {
            let request = n.to_string();
            let reply = ask(addr, &[&request]).await?;
            let value: u64 = reply[0].parse()?;
            if value != fib_iterative(n) {
                return Err(format!("fib({n}): the server said {value}").into());
            }
            Ok::<_, BoxError>(())
        });
    }
    // A client that sends garbage, then a number that is too large, then a good request on
    // the same connection.
    let troublemaker = ask(addr, &["hello?", "99", "12"]).await?;
    for reply in &troublemaker {
        println!("troublemaker got: {reply}");
    }
    assert!(troublemaker[0].starts_with("error: "), "{troublemaker:?}");
    assert!(troublemaker[1].starts_with("error: "), "{troublemaker:?}");
    assert_eq!(troublemaker[2], "144");

    let mut correct = 0;
    while let Some(finished) = clients.join_next().await {
        finished??;
        correct += 1;
    }
    println!(
        "{correct} of {CLIENTS} clients got the right answer (fib(10) to fib({})) in {:.0} ms",
        10 + CLIENTS - 1,
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(correct, CLIENTS);

    let _ = stop.send(());
    let served = server.await??;
    println!("server shut down after {served} connections; the bad requests got error replies");
    assert_eq!(served, CLIENTS as usize + 1);
    Ok(())
}
