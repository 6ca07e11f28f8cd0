//! The pipeline: downloads on tokio feed the resize executor as each file lands.
//!
//! ```text
//!  inputs ──▶ fetch (≤ max_downloads at once, streamed to disk) ──▶ submit(resize_image) ──▶ report
//!               │ local files are used in place                         │ any flotilla Executor
//!               └──────── each image moves on as soon as it lands ──────┘
//! ```
//!
//! Every image is its own async task: it waits for a download permit, downloads, submits its
//! resize job to the executor and awaits the flotilla future (a `std::future::Future`). Nothing
//! waits for a batch, so resizing starts while later downloads are still running, and no image
//! is held in the parent's memory: downloads go to a work directory inside `--out` and the
//! resize task reads its file itself. At most `max_downloads + 2 × workers` images are between
//! the start of their download and the end of their resize, so when the network outpaces the
//! CPUs, downloads wait instead of piling up on disk.

use std::path::{Path, PathBuf};
use std::time::Instant;

use flotilla::{Executor, ProcessPoolExecutor, Shutdown, ThreadPoolExecutor};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Semaphore;

use crate::config::{Config, Input, ResizeOn, Source};
use crate::download::Downloader;
use crate::error::Error;
use crate::report::{Done, Failure, Report, Stage, StageStats};
use crate::resize::{Mode, ResizeJob, Resized, io_reason, resize_image};

/// Something that happened to one image, for progress displays and logs.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The run starts: `images` images, of which `downloads` are URLs.
    Started {
        /// All images.
        images: usize,
        /// Images to download.
        downloads: usize,
    },
    /// An image was downloaded (or a local file found) and handed to the resize executor.
    Fetched {
        /// Its position among the inputs.
        index: usize,
        /// The URL or path.
        source: &'a str,
        /// Its size.
        bytes: u64,
        /// False for a local file.
        downloaded: bool,
    },
    /// An image's thumbnails are all written.
    Resized {
        /// Its position among the inputs.
        index: usize,
        /// The URL or path.
        source: &'a str,
        /// What was made.
        resized: &'a Resized,
    },
    /// An image failed; the run goes on.
    Failed {
        /// Its position among the inputs.
        index: usize,
        /// The URL or path.
        source: &'a str,
        /// Where.
        stage: Stage,
        /// Why.
        reason: &'a str,
    },
}

/// Receives [`Event`]s as a run progresses (from the run's async tasks, so keep it quick).
///
/// Closures are observers; `()` is the observer that ignores everything.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use thumbnails::Event;
///
/// let resized = AtomicUsize::new(0);
/// let observer = |event: &Event<'_>| {
///     if let Event::Resized { .. } = event {
///         resized.fetch_add(1, Ordering::Relaxed);
///     }
/// };
/// # let _ = &observer;
/// ```
pub trait Observer: Send + Sync {
    /// Called once per event.
    fn event(&self, event: &Event<'_>);
}

impl Observer for () {
    fn event(&self, _: &Event<'_>) {}
}

impl<F> Observer for F
where
    F: Fn(&Event<'_>) + Send + Sync,
{
    fn event(&self, event: &Event<'_>) {
        self(event);
    }
}

/// Runs `config` on the executor it names ([`ResizeOn`]): the one place where processes or
/// threads are chosen.
///
/// # Errors
///
/// [`Error`] if the run cannot start (output directory, executor, HTTP client). Failed images
/// are not errors: they are in [`Report::failures`].
///
/// # Blocking
///
/// Blocks until every image is done; it starts its own tokio runtime, so do not call it from
/// async code (use [`run_async`] there).
///
/// # Examples
///
/// ```no_run
/// use thumbnails::{run, Config};
///
/// let config = Config::builder("thumbs").input("https://example.com/cat.jpg").build()?;
/// let report = run(&config, &())?;
/// println!("{report}");
/// # Ok::<(), thumbnails::Error>(())
/// ```
pub fn run(config: &Config, observer: &dyn Observer) -> Result<Report, Error> {
    match config.resize_on {
        ResizeOn::Processes => {
            let pool = ProcessPoolExecutor::builder()
                .max_workers(config.workers)
                .build()?;
            let report = run_on(config, &pool, observer);
            pool.shutdown(Shutdown::new().wait(true));
            report
        }
        ResizeOn::Threads => {
            let pool = ThreadPoolExecutor::builder()
                .max_workers(config.workers)
                .thread_name_prefix("resize")
                .build()?;
            let report = run_on(config, &pool, observer);
            pool.shutdown(Shutdown::new().wait(true));
            report
        }
    }
}

/// Runs `config` with resizing on `executor`, whatever it is (`config`'s
/// [`resize_on`](Config::resize_on) and [`workers`](Config::workers) are not used).
///
/// # Errors
///
/// As [`run`].
///
/// # Blocking
///
/// As [`run`].
///
/// # Examples
///
/// ```
/// use flotilla::ThreadPoolExecutor;
/// use thumbnails::{run_on, Config};
///
/// let dir = tempfile::tempdir()?;
/// let photo = dir.path().join("blue.png");
/// image::RgbImage::from_pixel(400, 300, image::Rgb([0, 0, 200])).save(&photo)?;
/// let config = Config::builder(dir.path().join("out"))
///     .input(photo.to_str().unwrap())
///     .build()?;
/// let report = run_on(&config, &ThreadPoolExecutor::new(), &())?;
/// assert!(report.all_succeeded());
/// assert_eq!(report.thumbnails, 3);
/// assert!(dir.path().join("out/blue_64.jpg").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_on<E>(config: &Config, executor: &E, observer: &dyn Observer) -> Result<Report, Error>
where
    E: Executor + Sync,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("thumbnails-io")
        .enable_all()
        .build()
        .map_err(|err| Error::setup("the async runtime", err))?;
    runtime.block_on(run_async(config, executor, observer))
}

/// [`run_on`] for async callers, on the caller's tokio runtime (which needs its I/O and time
/// drivers enabled).
///
/// # Errors
///
/// As [`run`].
pub async fn run_async<E>(
    config: &Config,
    executor: &E,
    observer: &dyn Observer,
) -> Result<Report, Error>
where
    E: Executor + Sync,
{
    let started = Instant::now();
    std::fs::create_dir_all(&config.out_dir).map_err(|source| Error::OutDir {
        path: config.out_dir.clone(),
        source,
    })?;
    let downloads = config
        .inputs
        .iter()
        .filter(|input| matches!(input.source, Source::Url(_)))
        .count();
    // Downloads land next to the thumbnails (same file system, so nothing large goes through
    // memory or a tmpfs), in a hidden directory removed at the end.
    let work = if downloads > 0 {
        Some(
            tempfile::Builder::new()
                .prefix(".thumbnails-work-")
                .tempdir_in(&config.out_dir)
                .map_err(|source| Error::OutDir {
                    path: config.out_dir.clone(),
                    source,
                })?,
        )
    } else {
        None
    };
    let ctx = Ctx {
        config,
        executor,
        observer,
        downloader: Downloader::new(config.timeout, config.retries, config.max_download_bytes)?,
        permits: Semaphore::new(config.max_downloads),
        in_flight: Semaphore::new(config.max_downloads + 2 * executor.max_workers()),
        work_dir: work.as_ref().map(|dir| dir.path().to_owned()),
    };
    observer.event(&Event::Started {
        images: config.inputs.len(),
        downloads,
    });
    let mut pending: FuturesUnordered<_> = config
        .inputs
        .iter()
        .enumerate()
        .map(|(index, input)| process(&ctx, index, input))
        .collect();
    let mut outcomes = Vec::with_capacity(config.inputs.len());
    while let Some(outcome) = pending.next().await {
        outcomes.push(outcome);
    }
    drop(pending);
    outcomes.sort_by_key(|outcome| outcome.index);
    drop(work);
    let on = executor_name::<E>();
    Ok(assemble(
        config,
        started,
        on,
        executor.max_workers(),
        outcomes,
    ))
}

/// A benchmark entry point: thumbnails of `urls` at the course's sizes (200, 64, 32, JPEG
/// quality 75) into `out_dir`, with 4 concurrent downloads and one resize worker per CPU.
///
/// The report's [`succeeded`](Report::succeeded) and [`seconds`](Report::seconds) are the
/// figures to compare with the course's Python script (`bench/course.py`).
///
/// # Errors
///
/// As [`run`].
///
/// # Examples
///
/// ```no_run
/// use thumbnails::{bench_run, Mode, PhotoServer, ResizeOn};
///
/// let server = PhotoServer::bundled()?;
/// let report = bench_run(&server.urls(), "bench-out".as_ref(), ResizeOn::Processes, Mode::Fast)?;
/// println!("{} images in {:.2}s", report.succeeded, report.seconds);
/// # Ok::<(), thumbnails::Error>(())
/// ```
pub fn bench_run(
    urls: &[String],
    out_dir: &Path,
    resize_on: ResizeOn,
    mode: Mode,
) -> Result<Report, Error> {
    let config = Config::builder(out_dir)
        .inputs(urls.iter().cloned())
        .resize_on(resize_on)
        .mode(mode)
        .build()?;
    run(&config, &())
}

struct Ctx<'a, E> {
    config: &'a Config,
    executor: &'a E,
    observer: &'a dyn Observer,
    downloader: Downloader,
    /// Download slots: `max_downloads`.
    permits: Semaphore,
    /// Images between the start of their download and the end of their resize. Bounds the
    /// downloaded files waiting on disk (and the executor's queue) when downloads outpace
    /// resizing: enough to keep every worker busy, no more.
    in_flight: Semaphore,
    work_dir: Option<PathBuf>,
}

/// What happened to one image, with its timings.
struct Outcome {
    index: usize,
    source: String,
    fetch: Option<(Instant, Instant)>,
    resize: Option<(Instant, Instant)>,
    fetched_bytes: u64,
    downloaded: bool,
    result: Result<Resized, (Stage, String)>,
}

async fn process<E>(ctx: &Ctx<'_, E>, index: usize, input: &Input) -> Outcome
where
    E: Executor + Sync,
{
    // Neither semaphore is ever closed, so acquiring cannot fail; hold the result either way.
    let _slot = ctx.in_flight.acquire().await;
    let source = input.source.to_string();
    let mut outcome = Outcome {
        index,
        source,
        fetch: None,
        resize: None,
        fetched_bytes: 0,
        downloaded: false,
        result: Err((Stage::Fetch, String::new())),
    };
    let fetched = fetch(ctx, index, &input.source, &mut outcome).await;
    let path = match fetched {
        Ok(path) => path,
        Err(reason) => return fail(ctx, outcome, Stage::Fetch, reason),
    };
    ctx.observer.event(&Event::Fetched {
        index,
        source: &outcome.source,
        bytes: outcome.fetched_bytes,
        downloaded: outcome.downloaded,
    });

    let job = ResizeJob {
        input: path.clone(),
        out_dir: ctx.config.out_dir.clone(),
        stem: input.stem.clone(),
        sizes: ctx.config.sizes.clone(),
        options: ctx.config.resize.clone(),
    };
    let resize_started = Instant::now();
    let result = match ctx.executor.submit(resize_image, job) {
        Ok(future) => future.await,
        Err(err) => Err(err),
    };
    outcome.resize = Some((resize_started, Instant::now()));
    if outcome.downloaded {
        let _ = tokio::fs::remove_file(&path).await;
    }
    match result {
        Ok(Ok(resized)) => {
            ctx.observer.event(&Event::Resized {
                index,
                source: &outcome.source,
                resized: &resized,
            });
            outcome.result = Ok(resized);
            outcome
        }
        Ok(Err(err)) => fail(ctx, outcome, Stage::Resize, err.to_string()),
        Err(err) => fail(
            ctx,
            outcome,
            Stage::Resize,
            format!("the resize task failed: {err}"),
        ),
    }
}

/// Downloads a URL into the work directory, or checks a local file; returns the file to resize.
async fn fetch<E>(
    ctx: &Ctx<'_, E>,
    index: usize,
    source: &Source,
    outcome: &mut Outcome,
) -> Result<PathBuf, String> {
    match source {
        Source::Url(url) => {
            let _permit = ctx.permits.acquire().await;
            let started = Instant::now();
            let work_dir = ctx
                .work_dir
                .as_deref()
                .ok_or_else(|| "no work directory for downloads".to_owned())?;
            let dest = work_dir.join(format!("{index}.download"));
            let result = ctx.downloader.fetch(url, &dest).await;
            outcome.fetch = Some((started, Instant::now()));
            outcome.downloaded = true;
            let bytes = result.map_err(|err| err.to_string())?;
            outcome.fetched_bytes = bytes;
            Ok(dest)
        }
        Source::File(path) => {
            let started = Instant::now();
            let meta = tokio::fs::metadata(path).await;
            outcome.fetch = Some((started, Instant::now()));
            match meta {
                Ok(meta) if meta.is_file() => {
                    outcome.fetched_bytes = meta.len();
                    Ok(path.clone())
                }
                Ok(_) => Err(format!("{} is not a regular file", path.display())),
                Err(err) => Err(format!(
                    "cannot read {}: {}",
                    path.display(),
                    io_reason(&err)
                )),
            }
        }
    }
}

fn fail<E>(ctx: &Ctx<'_, E>, mut outcome: Outcome, stage: Stage, reason: String) -> Outcome {
    ctx.observer.event(&Event::Failed {
        index: outcome.index,
        source: &outcome.source,
        stage,
        reason: &reason,
    });
    outcome.result = Err((stage, reason));
    outcome
}

/// `processes`, `threads`, or the executor's type name.
fn executor_name<E>() -> &'static str {
    let name = std::any::type_name::<E>();
    if name.ends_with("ProcessPoolExecutor") {
        ResizeOn::Processes.as_str()
    } else if name.ends_with("ThreadPoolExecutor") {
        ResizeOn::Threads.as_str()
    } else {
        name
    }
}

fn span(times: impl Iterator<Item = (Instant, Instant)>) -> Option<(Instant, Instant)> {
    times.fold(None, |acc, (start, end)| match acc {
        None => Some((start, end)),
        Some((s, e)) => Some((s.min(start), e.max(end))),
    })
}

fn seconds(span: Option<(Instant, Instant)>) -> f64 {
    span.map_or(0.0, |(start, end)| (end - start).as_secs_f64())
}

fn rate(images: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        images as f64 / seconds
    } else {
        0.0
    }
}

fn assemble(
    config: &Config,
    started: Instant,
    resize_on: &'static str,
    workers: usize,
    outcomes: Vec<Outcome>,
) -> Report {
    let elapsed = started.elapsed().as_secs_f64();
    let fetch_span = span(outcomes.iter().filter_map(|o| o.fetch));
    let resize_span = span(outcomes.iter().filter_map(|o| o.resize));
    let last_download = outcomes
        .iter()
        .filter(|o| o.downloaded)
        .filter_map(|o| o.fetch.map(|(_, end)| end))
        .max();
    let first_resized = outcomes
        .iter()
        .filter(|o| o.result.is_ok())
        .filter_map(|o| o.resize.map(|(_, end)| end))
        .min();
    let overlapped = matches!((first_resized, last_download), (Some(r), Some(d)) if r < d);

    let mut fetch = StageStats::default();
    let mut resize = StageStats::default();
    let mut done = Vec::new();
    let mut failures = Vec::new();
    let mut bytes_downloaded = 0;
    for outcome in outcomes {
        match outcome.result {
            Ok(resized) => {
                fetch.images += 1;
                fetch.bytes_in += outcome.fetched_bytes;
                if outcome.downloaded {
                    bytes_downloaded += outcome.fetched_bytes;
                }
                resize.images += 1;
                resize.bytes_in += resized.input_bytes;
                resize.bytes_out += resized.thumbnails.iter().map(|t| t.bytes).sum::<u64>();
                done.push(Done {
                    source: outcome.source,
                    input_bytes: resized.input_bytes,
                    width: resized.source_width,
                    height: resized.source_height,
                    thumbnails: resized.thumbnails,
                });
            }
            Err((stage, reason)) => {
                match stage {
                    Stage::Fetch => fetch.failed += 1,
                    Stage::Resize => {
                        fetch.images += 1;
                        fetch.bytes_in += outcome.fetched_bytes;
                        if outcome.downloaded {
                            bytes_downloaded += outcome.fetched_bytes;
                        }
                        resize.failed += 1;
                    }
                }
                failures.push(Failure {
                    source: outcome.source,
                    stage,
                    reason,
                });
            }
        }
    }
    fetch.seconds = seconds(fetch_span);
    fetch.images_per_second = rate(fetch.images, fetch.seconds);
    resize.seconds = seconds(resize_span);
    resize.images_per_second = rate(resize.images, resize.seconds);
    let thumbnails = done.iter().map(|d| d.thumbnails.len()).sum();
    let saved_ratio = if resize.bytes_in > 0 {
        1.0 - resize.bytes_out as f64 / resize.bytes_in as f64
    } else {
        0.0
    };
    Report {
        images: config.inputs.len(),
        succeeded: done.len(),
        thumbnails,
        bytes_downloaded,
        bytes_written: resize.bytes_out,
        saved_ratio,
        fetch,
        resize,
        overlapped,
        seconds: elapsed,
        images_per_second: rate(done.len(), elapsed),
        out_dir: config.out_dir.clone(),
        mode: config.resize.mode.as_str(),
        resize_on,
        workers,
        done,
        failures,
    }
}
