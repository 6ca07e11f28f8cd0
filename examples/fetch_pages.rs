//! Fetching web pages on a thread pool, with one that fails.
//!
//! The Python original downloads a list of URLs with `urllib.request.urlopen` in a
//! `ThreadPoolExecutor` three ways: `submit` then `future.result()` in order,
//! `pool.map(fetch, urls)`, and `as_completed(futures)` to handle each page as soon as it
//! arrives. A URL that fails raises its exception when its result is read.
//!
//! Here the pages come from a real HTTP server started in this process (`tiny_http` on
//! `127.0.0.1`, an ephemeral port, so the example runs offline), and `ureq` fetches them. The
//! differences from Python show up at the failing URL, `/missing`, which answers 404:
//!
//! - `fetch` returns `Result<String, String>`, so with `spawn` + `result` the error is a value
//!   read where the result is read (flotilla's own `Result` wraps it: the pool can fail too).
//! - `fetch_or_panic` panics instead, like a Python exception; `map_fn` yields a separate
//!   `Result` per URL, so the panic becomes `Err(Error::Panicked)` for that URL and the other
//!   pages still come (Python's `map` would stop at the first exception).
//! - `as_completed` yields futures in completion order: `/slow` comes last.

use std::error::Error;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use flotilla::{ThreadPoolExecutor, as_completed_timeout};
use tiny_http::{Response, Server};

const PAGES: [&str; 4] = ["/", "/about", "/slow", "/missing"];

/// A local web server; stops when told to.
struct PageServer {
    server: Arc<Server>,
    thread: JoinHandle<()>,
    base: String,
}

impl PageServer {
    fn start() -> Result<PageServer, Box<dyn Error + Send + Sync>> {
        let server = Arc::new(Server::http("127.0.0.1:0")?);
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or("the server has no IP address")?;
        let base = format!("http://{addr}");
        let requests = Arc::clone(&server);
        let thread = thread::Builder::new()
            .name("http-server".into())
            .spawn(move || {
                // A thread per request, so that /slow does not hold the others up; the scope
                // waits for every answer before the server thread ends.
                thread::scope(|s| {
                    for request in requests.incoming_requests() {
                        s.spawn(move || {
                            let (status, body) = match request.url() {
                                "/" => (200, "<h1>Home</h1>".to_owned()),
                                "/about" => (200, "<h1>About flotilla</h1>".to_owned()),
                                "/slow" => {
                                    thread::sleep(Duration::from_millis(200)); // simulated latency
                                    (200, "<h1>Slow, but here</h1>".to_owned())
                                }
                                other => (404, format!("no page at {other}")),
                            };
                            let response = Response::from_string(body).with_status_code(status);
                            // The client may have gone; nothing to do about it here.
                            let _ = request.respond(response);
                        });
                    }
                });
            })?;
        Ok(PageServer {
            server,
            thread,
            base,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops accepting requests and waits for the server thread.
    fn stop(self) {
        self.server.unblock();
        self.thread
            .join()
            .expect("the server thread does not panic");
    }
}

/// Downloads `url`: the page body, or why it could not be had.
fn fetch(agent: &ureq::Agent, url: &str) -> Result<String, String> {
    agent
        .get(url)
        .call()
        .and_then(|mut response| response.body_mut().read_to_string())
        .map_err(|err| format!("{url}: {err}"))
}

/// Downloads `url`, panicking on failure as a Python function would raise.
fn fetch_or_panic(agent: &ureq::Agent, url: &str) -> String {
    match fetch(agent, url) {
        Ok(body) => body,
        Err(err) => panic!("{err}"),
    }
}

fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let server = PageServer::start()?;
    println!("serving on {}", server.base);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let urls: Vec<String> = PAGES.iter().map(|path| server.url(path)).collect();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .thread_name_prefix("fetch")
        .build()?;

    println!("== spawn + result, in submission order ==");
    let futures = urls
        .iter()
        .map(|url| {
            let (agent, url) = (agent.clone(), url.clone());
            pool.spawn(move || fetch(&agent, &url))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut failures = 0;
    for (path, future) in PAGES.iter().zip(&futures) {
        match future.result()? {
            Ok(body) => println!("{path:<9} ok: {body}"),
            Err(err) => {
                failures += 1;
                println!("{path:<9} failed: {err}");
            }
        }
    }
    assert_eq!(failures, 1);

    println!("== map_fn, a Result per URL ==");
    let map_agent = agent.clone();
    let results: Vec<_> = pool
        .map_fn(
            move |url: String| fetch_or_panic(&map_agent, &url),
            urls.clone(),
        )
        .collect();
    for (path, result) in PAGES.iter().zip(&results) {
        match result {
            Ok(body) => println!("{path:<9} ok: {body}"),
            Err(err) => println!("{path:<9} error: {err}"),
        }
    }
    assert!(results[3].as_ref().is_err_and(flotilla::Error::is_panic));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);

    println!("== as_completed, in completion order ==");
    let futures = urls
        .iter()
        .map(|url| {
            let (agent, url) = (agent.clone(), url.clone());
            pool.spawn(move || (url.clone(), fetch(&agent, &url)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut order = Vec::new();
    for future in as_completed_timeout(&futures, Duration::from_secs(10)) {
        let (url, page) = future?.result()?;
        let path = url.trim_start_matches(&server.base).to_owned();
        match page {
            Ok(body) => println!("{path:<9} ok: {} bytes", body.len()),
            Err(err) => println!("{path:<9} failed: {err}"),
        }
        order.push(path);
    }
    // /slow normally comes last; on a very busy machine the order may differ, so only the
    // count is checked.
    assert_eq!(order.len(), PAGES.len());

    drop(pool);
    drop(agent);
    server.stop();
    println!("server stopped");
    Ok(())
}
