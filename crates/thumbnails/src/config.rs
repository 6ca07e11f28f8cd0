//! [`Config`]: a validated description of one run, built with [`ConfigBuilder`].

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::names::{Stems, stem_from_path, stem_from_url};
use crate::output::Existing;
use crate::resize::{Mode, ResizeOptions};
use crate::stop::StopHandle;

/// The widths made when none are given: the course's.
pub const DEFAULT_SIZES: [u32; 3] = [200, 64, 32];

/// Concurrent downloads when not told otherwise: the course's four download threads.
pub const DEFAULT_MAX_DOWNLOADS: usize = 4;

/// The widest thumbnail accepted.
const MAX_WIDTH: u32 = 10_000;

/// File extensions picked up from a directory: the formats read, and those that are not (so
/// that the report names them instead of skipping them without a word).
const IMAGE_EXTENSIONS: [&str; 17] = [
    "jpg", "jpeg", "jpe", "jfif", "png", "webp", "gif", "tif", "tiff", "bmp", "heic", "heif",
    "avif", "jxl", "jp2", "psd", "ico",
];

/// The download cap when none is given: 256 MiB.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Downloaded over HTTP or HTTPS.
    Url(String),
    /// Read from the local disk, in place.
    File(PathBuf),
}

impl Source {
    /// A command-line argument as a source: `http://` and `https://` (and anything else with
    /// `://`) are URLs, the rest are paths.
    ///
    /// # Examples
    ///
    /// ```
    /// use thumbnails::Source;
    ///
    /// assert!(matches!(Source::parse("https://example.com/a.jpg"), Source::Url(_)));
    /// assert!(matches!(Source::parse("photos/a.jpg"), Source::File(_)));
    /// ```
    pub fn parse(arg: &str) -> Source {
        if arg.contains("://") {
            Source::Url(arg.to_owned())
        } else {
            Source::File(PathBuf::from(arg))
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Url(url) => f.write_str(url),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One image of a run: where it comes from and the stem its thumbnails get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// Where the image comes from.
    pub source: Source,
    /// The safe, unique stem of its thumbnails (`STEM_WIDTH.EXT`).
    pub stem: String,
}

/// Where the resize step runs.
///
/// # Examples
///
/// ```
/// use thumbnails::ResizeOn;
///
/// assert_eq!("threads".parse::<ResizeOn>()?, ResizeOn::Threads);
/// assert_eq!(ResizeOn::default(), ResizeOn::Processes);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResizeOn {
    /// A [`flotilla::ProcessPoolExecutor`]: a crash in a decoder costs one image, not the run.
    #[default]
    Processes,
    /// A [`flotilla::ThreadPoolExecutor`]: no process start-up, shared memory.
    Threads,
}

impl ResizeOn {
    /// The name, as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResizeOn::Processes => "processes",
            ResizeOn::Threads => "threads",
        }
    }
}

impl std::str::FromStr for ResizeOn {
    type Err = String;

    fn from_str(s: &str) -> Result<ResizeOn, String> {
        match s {
            "processes" => Ok(ResizeOn::Processes),
            "threads" => Ok(ResizeOn::Threads),
            other => Err(format!(
                "unknown executor `{other}` (expected processes or threads)"
            )),
        }
    }
}

/// A validated run: inputs with their output stems, output directory, sizes, concurrency and
/// resize options. Build one with [`Config::builder`].
///
/// # Examples
///
/// ```
/// use thumbnails::{Config, Mode, ResizeOn};
///
/// let config = Config::builder("out")
///     .input("https://example.com/photos/cat.jpg")
///     .input("https://example.com/other/cat.jpg")
///     .sizes([128, 32])
///     .max_downloads(8)
///     .resize_on(ResizeOn::Threads)
///     .mode(Mode::Faithful)
///     .build()?;
/// let stems: Vec<_> = config.inputs().iter().map(|i| i.stem.as_str()).collect();
/// assert_eq!(stems, ["cat", "cat-2"]);
/// assert_eq!(config.sizes(), [128, 32]);
/// # Ok::<(), thumbnails::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) inputs: Vec<Input>,
    pub(crate) out_dir: PathBuf,
    pub(crate) sizes: Vec<u32>,
    pub(crate) max_downloads: usize,
    pub(crate) workers: usize,
    pub(crate) resize_on: ResizeOn,
    pub(crate) resize: ResizeOptions,
    pub(crate) retries: u32,
    pub(crate) timeout: Duration,
    pub(crate) max_download_bytes: u64,
    pub(crate) existing: Existing,
    pub(crate) stop: StopHandle,
}

impl Config {
    /// Starts a configuration writing to `out_dir`.
    pub fn builder(out_dir: impl Into<PathBuf>) -> ConfigBuilder {
        ConfigBuilder {
            out_dir: out_dir.into(),
            args: Vec::new(),
            urls_files: Vec::new(),
            sizes: DEFAULT_SIZES.to_vec(),
            max_downloads: DEFAULT_MAX_DOWNLOADS,
            workers: None,
            resize_on: ResizeOn::default(),
            resize: ResizeOptions::default(),
            retries: 2,
            timeout: Duration::from_secs(30),
            max_download_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            existing: Existing::default(),
            stop: StopHandle::new(),
        }
    }

    /// The images, in input order.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// The output directory.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The widths, in the order given, without duplicates.
    pub fn sizes(&self) -> &[u32] {
        &self.sizes
    }

    /// How many downloads run at once.
    pub fn max_downloads(&self) -> usize {
        self.max_downloads
    }

    /// How many images are resized at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Processes or threads.
    pub fn resize_on(&self) -> ResizeOn {
        self.resize_on
    }

    /// Mode, quality, pixel limit.
    pub fn resize_options(&self) -> &ResizeOptions {
        &self.resize
    }

    /// What happens to thumbnails already there.
    pub fn existing(&self) -> Existing {
        self.existing
    }

    /// The handle that stops this run early.
    pub fn stop_handle(&self) -> &StopHandle {
        &self.stop
    }
}

/// Builds a [`Config`]; [`build`](ConfigBuilder::build) checks everything at once.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct ConfigBuilder {
    out_dir: PathBuf,
    args: Vec<String>,
    urls_files: Vec<PathBuf>,
    sizes: Vec<u32>,
    max_downloads: usize,
    workers: Option<usize>,
    resize_on: ResizeOn,
    resize: ResizeOptions,
    retries: u32,
    timeout: Duration,
    max_download_bytes: u64,
    existing: Existing,
    stop: StopHandle,
}

impl ConfigBuilder {
    /// Adds an input: a URL, an image file, or a directory (its image files by extension,
    /// sorted by name, not recursively: JPEG, PNG, WebP, GIF, TIFF, BMP, and the HEIC, AVIF,
    /// JPEG XL, JPEG 2000, PSD and ICO files it does not read, so that the report names them).
    pub fn input(mut self, arg: impl Into<String>) -> ConfigBuilder {
        self.args.push(arg.into());
        self
    }

    /// Adds several inputs, as [`input`](ConfigBuilder::input).
    pub fn inputs<I>(mut self, args: I) -> ConfigBuilder
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds the URLs listed in a file, one a line; blank lines and `#` comments are skipped.
    pub fn urls_file(mut self, path: impl Into<PathBuf>) -> ConfigBuilder {
        self.urls_files.push(path.into());
        self
    }

    /// The widths to make (default 200, 64, 32).
    pub fn sizes(mut self, sizes: impl IntoIterator<Item = u32>) -> ConfigBuilder {
        self.sizes = sizes.into_iter().collect();
        self
    }

    /// How many downloads run at once (default 4).
    pub fn max_downloads(mut self, n: usize) -> ConfigBuilder {
        self.max_downloads = n;
        self
    }

    /// How many images are resized at once (default: the number of CPUs).
    pub fn workers(mut self, n: usize) -> ConfigBuilder {
        self.workers = Some(n);
        self
    }

    /// Processes (default) or threads.
    pub fn resize_on(mut self, on: ResizeOn) -> ConfigBuilder {
        self.resize_on = on;
        self
    }

    /// Fast (default) or faithful.
    pub fn mode(mut self, mode: Mode) -> ConfigBuilder {
        self.resize.mode = mode;
        self
    }

    /// JPEG quality, 1 to 100 (default 75).
    pub fn quality(mut self, quality: u8) -> ConfigBuilder {
        self.resize.quality = quality;
        self
    }

    /// The decompression-bomb guard: images declaring more pixels are refused (default 100
    /// million).
    pub fn max_pixels(mut self, max_pixels: u64) -> ConfigBuilder {
        self.resize.max_pixels = max_pixels;
        self
    }

    /// Retries of a download after a connection error, a timeout or a 5xx/429 answer, with
    /// exponential backoff (default 2).
    pub fn retries(mut self, retries: u32) -> ConfigBuilder {
        self.retries = retries;
        self
    }

    /// Connect timeout, and the longest a download may go without receiving data (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> ConfigBuilder {
        self.timeout = timeout;
        self
    }

    /// Downloads larger than this (after decompression, for a compressed answer) are
    /// abandoned and fail as [`FailureKind::TooLarge`](crate::FailureKind::TooLarge)
    /// (default 256 MiB).
    pub fn max_download_bytes(mut self, bytes: u64) -> ConfigBuilder {
        self.max_download_bytes = bytes;
        self
    }

    /// What to do with thumbnails already there under the names this run gives (default:
    /// [`Existing::Skip`], keep them).
    pub fn existing(mut self, existing: Existing) -> ConfigBuilder {
        self.existing = existing;
        self
    }

    /// A handle whose [`stop`](StopHandle::stop) ends the run early (by default the run has
    /// a handle of its own, reachable through [`Config::stop_handle`]).
    pub fn stop_handle(mut self, stop: StopHandle) -> ConfigBuilder {
        self.stop = stop;
        self
    }

    /// Checks the settings, expands directories, reads URL files and gives every image its
    /// unique output stem.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unusable setting or no inputs at all; [`Error::Input`] for a
    /// directory or URL file that cannot be read. A missing *file* is not an error here: it
    /// fails on its own in the run, like a 404.
    pub fn build(self) -> Result<Config, Error> {
        let mut sizes = Vec::with_capacity(self.sizes.len());
        for width in self.sizes {
            if width == 0 || width > MAX_WIDTH {
                return Err(Error::config(format!(
                    "width {width} is out of range (1 to {MAX_WIDTH})"
                )));
            }
            if !sizes.contains(&width) {
                sizes.push(width);
            }
        }
        if sizes.is_empty() {
            return Err(Error::config("give at least one width"));
        }
        if !(1..=100).contains(&self.resize.quality) {
            return Err(Error::config(format!(
                "quality {} is out of range (1 to 100)",
                self.resize.quality
            )));
        }
        if self.max_downloads == 0 || self.max_downloads > 1024 {
            return Err(Error::config("max downloads must be between 1 and 1024"));
        }
        let workers = self.workers.unwrap_or_else(flotilla::cpu_count);
        if workers == 0 || workers > 1024 {
            return Err(Error::config("workers must be between 1 and 1024"));
        }
        if self.resize.max_pixels == 0 {
            return Err(Error::config("max pixels must be greater than 0"));
        }
        if self.max_download_bytes == 0 {
            return Err(Error::config("the download limit must be greater than 0"));
        }
        if self.timeout.is_zero() {
            return Err(Error::config("the timeout must be greater than 0"));
        }

        let mut sources = Vec::new();
        for arg in &self.args {
            expand(arg, &mut sources)?;
        }
        for file in &self.urls_files {
            let text = fs::read_to_string(file).map_err(|source| Error::Input {
                path: file.clone(),
                source,
            })?;
            sources.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(Source::parse),
            );
        }
        if sources.is_empty() {
            return Err(Error::config(
                "no images to process: give URLs, files or directories, or --urls FILE",
            ));
        }
        let mut stems = Stems::default();
        let inputs = sources
            .into_iter()
            .map(|source| {
                let stem = match &source {
                    Source::Url(url) => stem_from_url(url),
                    Source::File(path) => stem_from_path(path),
                };
                Input {
                    source,
                    stem: stems.unique(stem),
                }
            })
            .collect();
        Ok(Config {
            inputs,
            out_dir: self.out_dir,
            sizes,
            max_downloads: self.max_downloads,
            workers,
            resize_on: self.resize_on,
            resize: self.resize,
            retries: self.retries,
            timeout: self.timeout,
            max_download_bytes: self.max_download_bytes,
            existing: self.existing,
            stop: self.stop,
        })
    }
}

/// One argument as sources: a URL, a file, or a directory's image files.
fn expand(arg: &str, sources: &mut Vec<Source>) -> Result<(), Error> {
    let source = Source::parse(arg);
    let Source::File(path) = &source else {
        sources.push(source);
        return Ok(());
    };
    if !path.is_dir() {
        sources.push(source);
        return Ok(());
    }
    let read_error = |source| Error::Input {
        path: path.clone(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(path).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let file = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let image = file
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()));
        if image && !hidden && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    sources.extend(files.into_iter().map(Source::File));
    Ok(())
}

impl Default for ConfigBuilder {
    fn default() -> ConfigBuilder {
        Config::builder(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let ok = || Config::builder("o").input("a.jpg");
        assert!(ok().build().is_ok());
        assert!(ok().sizes([]).build().is_err());
        assert!(ok().sizes([20_000]).build().is_err());
        assert!(ok().quality(0).build().is_err());
        assert!(ok().max_downloads(0).build().is_err());
        assert!(ok().workers(0).build().is_err());
        assert!(Config::builder("o").build().is_err());
        let dedup = ok().sizes([64, 32, 64]).build().unwrap();
        assert_eq!(dedup.sizes(), [64, 32]);
    }

    #[test]
    fn directories_expand_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.JPG",
            "a.png",
            "notes.txt",
            ".hidden.jpg",
            "c.webp",
            "d.heic",
            "e.tif",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        let config = Config::builder("o")
            .input(dir.path().to_str().unwrap())
            .build()
            .unwrap();
        let stems: Vec<_> = config.inputs().iter().map(|i| i.stem.as_str()).collect();
        assert_eq!(stems, ["a", "b", "c", "d", "e"]);
    }
}
