//! The demo: a bundled set of real photos and a small HTTP server on 127.0.0.1 to serve them, so
//! the whole pipeline runs with no network and no set-up.
//!
//! The photos are compiled into the library (`include_bytes!`), so `thumbnails demo` works from
//! any directory. Their authors and licences are in `assets/photos/ATTRIBUTION.md`.

use std::fmt;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::Error;

macro_rules! photo {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/photos/",
                $name
            )) as &[u8],
        )
    };
}

/// The bundled photos, chosen for variety: landscape and portrait, baseline and progressive
/// JPEG, 1.3 to 15.9 megapixels.
const BUNDLED: [(&str, &[u8]); 8] = [
    photo!("mate_FreshFlower.jpg"),
    photo!("mate_GreenMeadow.jpg"),
    photo!("mate_Aqua.jpg"),
    photo!("mate_Garden.jpg"),
    photo!("Wine_by_Jakkub_Mede.jpg"),
    photo!("friends_by_Aitzol_Berasategi.jpg"),
    photo!("free_by_Peter_Nerlich.jpg"),
    photo!("seeding_by_Clements_Engelhardt.jpg"),
];

/// How many request-handling threads a server runs.
const SERVER_THREADS: usize = 8;

/// The bundled photos: `(file name, JPEG bytes)`.
///
/// # Examples
///
/// ```
/// let photos = thumbnails::bundled_photos();
/// assert_eq!(photos.len(), 8);
/// assert!(photos.iter().all(|(name, bytes)| name.ends_with(".jpg") && bytes.starts_with(&[0xFF, 0xD8])));
/// ```
pub fn bundled_photos() -> &'static [(&'static str, &'static [u8])] {
    &BUNDLED
}

/// A small HTTP server on `127.0.0.1` with an ephemeral port, serving a fixed set of files at
/// `/photos/NAME`, and their URL list, one a line, at `/`. Anything else is a 404.
///
/// The port is bound before the constructor returns, so the URLs work at once. The server stops
/// when dropped.
///
/// # Examples
///
/// ```
/// use thumbnails::PhotoServer;
///
/// let server = PhotoServer::serve(vec![("a.jpg".into(), b"not really".to_vec())])?;
/// assert!(server.base_url().starts_with("http://127.0.0.1:"));
/// assert_eq!(server.urls(), [format!("{}/photos/a.jpg", server.base_url())]);
/// # Ok::<(), thumbnails::Error>(())
/// ```
pub struct PhotoServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    names: Arc<Vec<String>>,
    threads: Vec<JoinHandle<()>>,
}

impl PhotoServer {
    /// Serves the [bundled photos](bundled_photos).
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] if no port can be bound.
    pub fn bundled() -> Result<PhotoServer, Error> {
        PhotoServer::serve(
            BUNDLED
                .iter()
                .map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec()))
                .collect(),
        )
    }

    /// Serves the image files of a directory (held in memory) on `port` (0
    /// picks a free one).
    ///
    /// # Errors
    ///
    /// [`Error::Input`] if the directory cannot be read, [`Error::Setup`] if the port cannot be
    /// bound.
    pub fn from_dir(dir: &Path, port: u16) -> Result<PhotoServer, Error> {
        let config = crate::Config::builder(".")
            .input(dir.to_string_lossy())
            .build()?;
        let mut files = Vec::new();
        for input in config.inputs() {
            if let crate::Source::File(path) = &input.source {
                let bytes = std::fs::read(path).map_err(|source| Error::Input {
                    path: path.clone(),
                    source,
                })?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((name, bytes));
            }
        }
        PhotoServer::serve_on(files, port)
    }

    /// Serves `files`, each `(name, bytes)` at `/photos/NAME` (names are used as given, so
    /// keep them URL-safe).
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] if no port can be bound.
    pub fn serve(files: Vec<(String, Vec<u8>)>) -> Result<PhotoServer, Error> {
        PhotoServer::serve_on(files, 0)
    }

    /// As [`serve`](PhotoServer::serve), on a given port (0 picks a free one).
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] if the port cannot be bound.
    pub fn serve_on(files: Vec<(String, Vec<u8>)>, port: u16) -> Result<PhotoServer, Error> {
        let server = tiny_http::Server::http(("127.0.0.1", port))
            .map_err(|err| Error::setup("the photo server", err))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::setup("the photo server", "it is not listening on TCP"))?;
        let server = Arc::new(server);
        let names: Arc<Vec<String>> =
            Arc::new(files.iter().map(|(name, _)| name.clone()).collect());
        let files: Arc<Vec<(String, Arc<[u8]>)>> = Arc::new(
            files
                .into_iter()
                .map(|(name, bytes)| (format!("/photos/{name}"), Arc::from(bytes)))
                .collect(),
        );
        let base = format!("http://{addr}");
        let mut threads = Vec::with_capacity(SERVER_THREADS);
        for i in 0..SERVER_THREADS {
            let shared = Arc::clone(&server);
            let files = Arc::clone(&files);
            let names = Arc::clone(&names);
            let base = base.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("photo-server-{i}"))
                .spawn(move || {
                    while let Ok(request) = shared.recv() {
                        respond(request, &files, &names, &base);
                    }
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(err) => {
                    stop(&server, threads);
                    return Err(Error::setup("the photo server", err));
                }
            }
        }
        Ok(PhotoServer {
            server,
            addr,
            names,
            threads,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of every file, in the order given.
    pub fn urls(&self) -> Vec<String> {
        let base = self.base_url();
        self.names
            .iter()
            .map(|name| format!("{base}/photos/{name}"))
            .collect()
    }
}

fn respond(
    request: tiny_http::Request,
    files: &[(String, Arc<[u8]>)],
    names: &[String],
    base: &str,
) {
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let header =
        |value: &str| tiny_http::Header::from_bytes(&b"Content-Type"[..], value.as_bytes()).ok();
    let result = if let Some((_, bytes)) = files.iter().find(|(p, _)| *p == path) {
        let content_type = match path.rsplit('.').next() {
            Some("png") => "image/png",
            Some("webp") => "image/webp",
            Some("gif") => "image/gif",
            _ => "image/jpeg",
        };
        let mut response = tiny_http::Response::new(
            tiny_http::StatusCode(200),
            Vec::new(),
            Cursor::new(Arc::clone(bytes)),
            Some(bytes.len()),
            None,
        );
        if let Some(h) = header(content_type) {
            response.add_header(h);
        }
        request.respond(response)
    } else if path == "/" {
        let list: String = names
            .iter()
            .map(|name| format!("{base}/photos/{name}\n"))
            .collect();
        let mut response = tiny_http::Response::from_string(list);
        if let Some(h) = header("text/plain; charset=utf-8") {
            response.add_header(h);
        }
        request.respond(response)
    } else {
        request.respond(tiny_http::Response::from_string("not found\n").with_status_code(404))
    };
    if let Err(err) = result {
        tracing::debug!(%err, "the photo server could not answer a request");
    }
}

fn stop(server: &tiny_http::Server, threads: Vec<JoinHandle<()>>) {
    for _ in &threads {
        server.unblock();
    }
    for thread in threads {
        let _ = thread.join();
    }
}

impl Drop for PhotoServer {
    fn drop(&mut self) {
        stop(&self.server, std::mem::take(&mut self.threads));
    }
}

impl fmt::Debug for PhotoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhotoServer")
            .field("addr", &self.addr)
            .field("files", &self.names.len())
            .finish_non_exhaustive()
    }
}
