//! Shared by the integration tests: a scriptable HTTP server on 127.0.0.1, test images, and
//! checks on written thumbnails.

#![allow(dead_code, unreachable_pub)]

pub mod colour;

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the test server answers on one path.
pub enum Route {
    /// 200 with these bytes.
    Body(Vec<u8>),
    /// This status and a short text body.
    Status(u16),
    /// 200 with these bytes, but only once the gate opens (or after 30 s, so that a broken
    /// pipeline fails its assertions instead of hanging).
    Gated(Vec<u8>, Mutex<Receiver<()>>),
    /// 503 for the first `n` requests, then 200 with these bytes; counts every request.
    FailFirst(usize, Vec<u8>, AtomicUsize),
    /// 200 with these bytes gzip-compressed, sent with `Content-Encoding: gzip`.
    Gzip(Vec<u8>),
    /// 200 announcing `len` bytes, sending the first bytes given, then nothing until the gate
    /// opens (or 30 s pass), then ending short: a download stuck half-way.
    Stalled(Vec<u8>, usize, Mutex<Receiver<()>>),
}

/// A body that sends its bytes, then waits on a gate, then ends.
struct StallingBody<'a> {
    head: Cursor<Vec<u8>>,
    gate: &'a Mutex<Receiver<()>>,
}

impl std::io::Read for StallingBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.head.read(buf)?;
        if n == 0 {
            let _ = self
                .gate
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
        }
        Ok(n)
    }
}

/// A tiny_http server with fixed routes, keyed by the raw request path (not decoded, so that
/// `/..%2F..%2Fx.jpg` is a route of its own). Bound before `start` returns; counts requests.
pub struct TestServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
    requests: Arc<AtomicUsize>,
}

impl TestServer {
    pub fn start<P: Into<String>>(routes: Vec<(P, Route)>) -> TestServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let addr = server.server_addr().to_ip().unwrap();
        let routes: Arc<HashMap<String, Route>> = Arc::new(
            routes
                .into_iter()
                .map(|(path, route)| (path.into(), route))
                .collect(),
        );
        let shared = Arc::clone(&server);
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let thread = std::thread::spawn(move || {
            while let Ok(request) = shared.recv() {
                counter.fetch_add(1, Ordering::SeqCst);
                let routes = Arc::clone(&routes);
                // One thread a request, so a gated answer does not hold up the others.
                std::thread::spawn(move || answer(request, &routes));
            }
        });
        TestServer {
            server,
            addr,
            thread: Some(thread),
            requests,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn url(&self, raw_path: &str) -> String {
        format!("http://{}{}", self.addr, raw_path)
    }
}

fn answer(request: tiny_http::Request, routes: &HashMap<String, Route>) {
    let _ = match routes.get(request.url()) {
        Some(Route::Body(bytes)) => request.respond(tiny_http::Response::from_data(bytes.clone())),
        Some(Route::Status(code)) => {
            request.respond(tiny_http::Response::from_string("nope\n").with_status_code(*code))
        }
        Some(Route::Gated(bytes, gate)) => {
            let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(30));
            request.respond(tiny_http::Response::from_data(bytes.clone()))
        }
        Some(Route::FailFirst(n, bytes, seen)) => {
            if seen.fetch_add(1, Ordering::SeqCst) < *n {
                request.respond(tiny_http::Response::from_string("busy\n").with_status_code(503))
            } else {
                request.respond(tiny_http::Response::from_data(bytes.clone()))
            }
        }
        Some(Route::Gzip(bytes)) => {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(bytes).unwrap();
            let header =
                tiny_http::Header::from_bytes(&b"Content-Encoding"[..], &b"gzip"[..]).unwrap();
            request
                .respond(tiny_http::Response::from_data(gz.finish().unwrap()).with_header(header))
        }
        Some(Route::Stalled(head, len, gate)) => {
            let body = StallingBody {
                head: Cursor::new(head.clone()),
                gate,
            };
            request.respond(tiny_http::Response::new(
                tiny_http::StatusCode(200),
                Vec::new(),
                body,
                Some(*len),
                None,
            ))
        }
        None => {
            request.respond(tiny_http::Response::from_string("not found\n").with_status_code(404))
        }
    };
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A bundled photo's bytes, by file name.
pub fn photo(name: &str) -> &'static [u8] {
    thumbnails::bundled_photos()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
        .unwrap_or_else(|| panic!("no bundled photo {name}"))
}

/// The decompression bomb: a valid 49 KB PNG of 20000 x 20000 pixels.
pub fn bomb() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bomb_20000x20000.png"))
        .unwrap()
}

/// A port on 127.0.0.1 that nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An image with detail everywhere (so it compresses badly), seeded.
pub fn noise(width: u32, height: u32, seed: u32) -> image::RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    image::RgbImage::from_fn(width, height, |_, _| {
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        };
        image::Rgb([next(), next(), next()])
    })
}

/// A smooth test picture: gradients and a disc, so resizing errors show.
pub fn picture(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let disc = ((fx - 0.5).powi(2) + (fy - 0.5).powi(2)).sqrt() < 0.3;
        if disc {
            image::Rgb([240, 200, 40])
        } else {
            image::Rgb([(fx * 255.0) as u8, (fy * 255.0) as u8, 128])
        }
    })
}

pub fn encode(image: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// Checks a written thumbnail: a valid JPEG, `width` wide, the source's aspect ratio within
/// one pixel.
pub fn check_jpeg_thumbnail(path: &Path, width: u32, source: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        image::guess_format(&bytes).unwrap(),
        image::ImageFormat::Jpeg,
        "{}",
        path.display()
    );
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .unwrap_or_else(|e| panic!("{} is not a valid JPEG: {e}", path.display()));
    assert_eq!(decoded.width(), width, "{}", path.display());
    let expected = source.1 as f64 * width as f64 / source.0 as f64;
    assert!(
        (decoded.height() as f64 - expected).abs() <= 1.0,
        "{}: height {} but {expected:.2} keeps the aspect ratio",
        path.display(),
        decoded.height()
    );
}

/// The names in a directory, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A JPEG's size from its header.
pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .into_dimensions()
        .unwrap()
}

/// Peak signal-to-noise ratio of two same-sized images, in dB.
pub fn psnr(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// The built `thumbnails` binary, without the caller's log settings.
pub fn thumbnails_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_thumbnails"));
    command.env_remove("THUMBNAILS_LOG");
    command
}

/// Prints what a finished child printed, for the test's own output.
pub fn show(output: &std::process::Output) {
    eprintln!(
        "--- status {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `command` to its end and shows its output.
pub fn run_command(command: &mut std::process::Command) -> std::process::Output {
    let output = command.output().expect("the binary runs");
    show(&output);
    output
}

/// Standard output as JSON.
pub fn stdout_json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}
