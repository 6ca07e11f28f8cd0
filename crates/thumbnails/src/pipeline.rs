//! The pipeline: downloads on tokio feed the resize executor as each file lands.
//!
//! ```text
//!  inputs ──▶ fetch (≤ max_downloads at once, streamed to disk) ──▶ submit(ResizeImageTask) ──▶ report
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

use flotilla::{DynExecutor, Executor, ProcessPoolExecutor, Shutdown, ThreadPoolExecutor};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Semaphore;

use crate::config::{Config, Input, ResizeOn, Source};
use crate::download::Downloader;
use crate::error::Error;
use crate::output::{Existing, thumbnail_path};
use crate::recover::{Before, displayed_size};
use crate::report::{Done, Failure, FailureKind, Report, Stage, StageStats};
use crate::resize::{Mode, OutputFormat, ResizeImageTask, ResizeJob, Resized, io_reason};
use crate::workspace::{Workspace, check_out_dir};

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
        /// Why, for programs.
        kind: FailureKind,
        /// Why.
        reason: &'a str,
    },
    /// Every thumbnail of an image is there already ([`Existing::Skip`]): it is not fetched.
    Skipped {
        /// Its position among the inputs.
        index: usize,
        /// The URL or path.
        source: &'a str,
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
    let executor: Box<Resizer<'_>> = match config.resize_on {
        ResizeOn::Processes => Box::new(
            ProcessPoolExecutor::builder()
                .max_workers(config.workers)
                .build()?,
        ),
        ResizeOn::Threads => Box::new(
            ThreadPoolExecutor::builder()
                .max_workers(config.workers)
                .thread_name_prefix("resize")
                .build()?,
        ),
    };
    let report = block_on(run_labelled(
        config,
        &*executor,
        config.resize_on.as_str(),
        observer,
    ));
    executor.shutdown(Shutdown::new().wait(true));
    report
}

/// What the pipeline resizes on: any executor, as a trait object, so that [`run`] can pick
/// threads or processes at run time and the pipeline is compiled once.
type Resizer<'a> = dyn DynExecutor<ResizeImageTask> + Sync + 'a;

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
    block_on(run_async(config, executor, observer))
}

/// Runs `run` to its end on a runtime of its own.
fn block_on(
    run: impl std::future::Future<Output = Result<Report, Error>>,
) -> Result<Report, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("thumbnails-io")
        .enable_all()
        .build()
        .map_err(|err| Error::setup("the async runtime", err))?;
    runtime.block_on(run)
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
    run_labelled(config, executor, std::any::type_name::<E>(), observer).await
}

/// The pipeline, on `executor`, reported as resizing on `on`.
async fn run_labelled(
    config: &Config,
    executor: &Resizer<'_>,
    on: &'static str,
    observer: &dyn Observer,
) -> Result<Report, Error> {
    let started = Instant::now();
    check_out_dir(&config.out_dir)?;
    // Downloads and thumbnails being written land next to the thumbnails (same file system,
    // so nothing large goes through memory or a tmpfs, and finished files are renamed), in a
    // hidden, locked work directory removed at the end (or by a later run, if this one is
    // killed).
    let workspace = Workspace::create(&config.out_dir)?;
    let downloads = config
        .inputs
        .iter()
        .filter(|input| matches!(input.source, Source::Url(_)))
        .count();
    let ctx = Ctx {
        config,
        executor,
        observer,
        downloader: Downloader::new(config.timeout, config.retries, config.max_download_bytes)?,
        permits: Semaphore::new(config.max_downloads),
        in_flight: Semaphore::new(config.max_downloads + 2 * executor.max_workers()),
        work_dir: workspace.path().to_owned(),
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
    drop(workspace);
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

struct Ctx<'a> {
    config: &'a Config,
    executor: &'a Resizer<'a>,
    observer: &'a dyn Observer,
    downloader: Downloader,
    /// Download slots: `max_downloads`.
    permits: Semaphore,
    /// Images between the start of their download and the end of their resize. Bounds the
    /// downloaded files waiting on disk (and the executor's queue) when downloads outpace
    /// resizing: enough to keep every worker busy, no more.
    in_flight: Semaphore,
    work_dir: PathBuf,
}

/// How one image ended.
enum Ending {
    Done(Resized),
    /// Every thumbnail was there already.
    Skipped,
    Failed(Failure),
    /// The run was stopped first.
    Unfinished,
}

/// What happened to one image, with its timings.
struct Outcome {
    index: usize,
    source: String,
    fetch: Option<(Instant, Instant)>,
    resize: Option<(Instant, Instant)>,
    fetched_bytes: u64,
    downloaded: bool,
    /// Thumbnails found in place before the image was fetched (skip mode).
    kept: Vec<PathBuf>,
    /// Its resize's worker died having written nothing: unfinished if the run turns out to be
    /// interrupted (the same Ctrl-C), a failure otherwise.
    died: bool,
    ending: Ending,
}

/// A failure of one image, before it is attached to its source.
struct Failed {
    stage: Stage,
    kind: FailureKind,
    reason: String,
    http_status: Option<u16>,
    attempts: Option<u32>,
}

impl Failed {
    fn new(stage: Stage, kind: FailureKind, reason: impl Into<String>) -> Failed {
        Failed {
            stage,
            kind,
            reason: reason.into(),
            http_status: None,
            attempts: None,
        }
    }
}

/// The thumbnails of `stem` already in `out_dir` (as JPEG or PNG), and the widths still to
/// make.
fn existing_thumbnails(out_dir: &Path, stem: &str, sizes: &[u32]) -> (Vec<PathBuf>, Vec<u32>) {
    let mut kept = Vec::new();
    let mut missing = Vec::new();
    for &width in sizes {
        let found = [OutputFormat::Jpeg, OutputFormat::Png]
            .into_iter()
            .map(|format| thumbnail_path(out_dir, stem, width, format.extension()))
            .find(|path| std::fs::symlink_metadata(path).is_ok());
        match found {
            Some(path) => kept.push(path),
            None => missing.push(width),
        }
    }
    (kept, missing)
}

async fn process(ctx: &Ctx<'_>, index: usize, input: &Input) -> Outcome {
    let mut outcome = Outcome {
        index,
        source: input.source.to_string(),
        fetch: None,
        resize: None,
        fetched_bytes: 0,
        downloaded: false,
        kept: Vec::new(),
        died: false,
        ending: Ending::Unfinished,
    };
    let config = ctx.config;
    let stop = &config.stop;
    let mut sizes = config.sizes.clone();
    if config.existing == Existing::Skip {
        let (kept, missing) = existing_thumbnails(&config.out_dir, &input.stem, &config.sizes);
        if missing.is_empty() {
            ctx.observer.event(&Event::Skipped {
                index,
                source: &outcome.source,
            });
            outcome.ending = Ending::Skipped;
            return outcome;
        }
        outcome.kept = kept;
        sizes = missing;
    }
    // Neither semaphore is ever closed, so acquiring cannot fail; hold the result either way.
    let _slot = tokio::select! {
        biased;
        () = stop.stopped() => return outcome,
        slot = ctx.in_flight.acquire() => slot,
    };
    let fetched = tokio::select! {
        biased;
        // Dropping the download closes its file; the work directory goes at the end.
        () = stop.stopped() => return outcome,
        fetched = fetch(ctx, index, &input.source, &mut outcome) => fetched,
    };
    let path = match fetched {
        Ok(path) => path,
        Err(failed) => return fail(ctx, outcome, failed),
    };
    ctx.observer.event(&Event::Fetched {
        index,
        source: &outcome.source,
        bytes: outcome.fetched_bytes,
        downloaded: outcome.downloaded,
    });

    // What is under the thumbnails' names now, to tell what the resize wrote if its result
    // is lost to the stop.
    let before = Before::note(&config.out_dir, &input.stem, &sizes);
    let job = ResizeJob {
        input: path.clone(),
        out_dir: config.out_dir.clone(),
        stem: input.stem.clone(),
        sizes,
        options: config.resize.clone(),
        existing: config.existing,
        work_dir: Some(ctx.work_dir.clone()),
    };
    let resize_started = Instant::now();
    let result = match ctx.executor.submit(ResizeImageTask, job) {
        Ok(mut future) => {
            tokio::select! {
                biased;
                () = stop.stopped() => {
                    // A process task is killed; a thread task cannot be and finishes. Either
                    // way wait for the end, so that nothing writes after the run returns.
                    future.cancel();
                    (&mut future).await
                }
                result = &mut future => result,
            }
        }
        Err(err) => Err(err),
    };
    outcome.resize = Some((resize_started, Instant::now()));
    let result = match result {
        // The task was cancelled by the stop, or its worker died: perhaps after it put its
        // thumbnails in place. The terminal's Ctrl-C reaches the whole process group, so a
        // worker can die of it before the run hears of the stop.
        Err(err) if err.is_worker_died() || err.is_cancelled() => {
            let kind = if stop.is_stopped() {
                FailureKind::Interrupted
            } else {
                FailureKind::Executor
            };
            match recovered(&before, &path, outcome.fetched_bytes) {
                Recovered::All(resized) => Some(Ok(Ok(resized))),
                Recovered::Part(written) => Some(Err((kind, format!("{err}; {written}")))),
                Recovered::Nothing if stop.is_stopped() => None,
                Recovered::Nothing => {
                    outcome.died = true;
                    Some(Err(task_failed(&err)))
                }
            }
        }
        Err(err) => Some(Err(task_failed(&err))),
        Ok(result) => Some(Ok(result)),
    };
    if outcome.downloaded {
        let _ = tokio::fs::remove_file(&path).await;
    }
    match result {
        None => outcome,
        Some(Ok(Ok(resized))) => {
            ctx.observer.event(&Event::Resized {
                index,
                source: &outcome.source,
                resized: &resized,
            });
            outcome.ending = Ending::Done(resized);
            outcome
        }
        Some(Ok(Err(err))) => {
            let failed = Failed::new(Stage::Resize, err.kind(), err.to_string());
            fail(ctx, outcome, failed)
        }
        Some(Err((kind, reason))) => fail(ctx, outcome, Failed::new(Stage::Resize, kind, reason)),
    }
}

/// A resize task that the executor could not run to its end.
fn task_failed(err: &flotilla::Error) -> (FailureKind, String) {
    (
        FailureKind::Executor,
        format!("the resize task failed: {err}"),
    )
}

/// What a resize whose result was lost (cancelled by the stop, or its worker died) left in
/// `--out` ([`crate::recover`]).
enum Recovered {
    /// Nothing: the image is unfinished.
    Nothing,
    /// Every thumbnail: the image is done.
    All(Resized),
    /// Some sizes, or all but the source could not be read again: what was written, in words.
    Part(String),
}

fn recovered(before: &Before, input: &Path, input_bytes: u64) -> Recovered {
    let written = before.written();
    if written.thumbnails.is_empty() {
        return Recovered::Nothing;
    }
    let made = list(written.thumbnails.iter().map(|t| t.requested_width));
    if !written.missing.is_empty() {
        return Recovered::Part(format!(
            "it stopped while its thumbnails were being put in place: widths {made} are \
             written, {} not",
            list(written.missing.iter().copied()),
        ));
    }
    let Some((width, height)) = displayed_size(input) else {
        return Recovered::Part(format!(
            "its thumbnails (widths {made}) were written, but {} cannot be read again",
            input.display(),
        ));
    };
    Recovered::All(Resized {
        input_bytes,
        source_width: width,
        source_height: height,
        decoded_width: width,
        decoded_height: height,
        thumbnails: written.thumbnails,
        kept: Vec::new(),
        warnings: Vec::new(),
    })
}

/// `200, 64, 32`.
fn list(widths: impl Iterator<Item = u32>) -> String {
    widths.map(|w| w.to_string()).collect::<Vec<_>>().join(", ")
}

/// Downloads a URL into the work directory, or checks a local file; returns the file to resize.
async fn fetch(
    ctx: &Ctx<'_>,
    index: usize,
    source: &Source,
    outcome: &mut Outcome,
) -> Result<PathBuf, Failed> {
    match source {
        Source::Url(url) => {
            let _permit = ctx.permits.acquire().await;
            let started = Instant::now();
            let dest = ctx.work_dir.join(format!("{index}.download"));
            let result = ctx.downloader.fetch(url, &dest).await;
            outcome.fetch = Some((started, Instant::now()));
            outcome.downloaded = true;
            let bytes = result.map_err(|failure| Failed {
                stage: Stage::Fetch,
                kind: failure.error.kind(),
                reason: failure.error.to_string(),
                http_status: failure.error.http_status(),
                attempts: Some(failure.attempts),
            })?;
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
                Ok(_) => Err(Failed::new(
                    Stage::Fetch,
                    FailureKind::NotAFile,
                    format!("{} is not a regular file", path.display()),
                )),
                Err(err) => Err(Failed::new(
                    Stage::Fetch,
                    if err.kind() == std::io::ErrorKind::NotFound {
                        FailureKind::NotFound
                    } else {
                        FailureKind::Io
                    },
                    format!("cannot read {}: {}", path.display(), io_reason(&err)),
                )),
            }
        }
    }
}

fn fail(ctx: &Ctx<'_>, mut outcome: Outcome, failed: Failed) -> Outcome {
    ctx.observer.event(&Event::Failed {
        index: outcome.index,
        source: &outcome.source,
        stage: failed.stage,
        kind: failed.kind,
        reason: &failed.reason,
    });
    outcome.ending = Ending::Failed(Failure {
        source: outcome.source.clone(),
        stage: failed.stage,
        kind: failed.kind,
        reason: failed.reason,
        http_status: failed.http_status,
        attempts: failed.attempts,
    });
    outcome
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
        .filter(|o| matches!(o.ending, Ending::Done(_)))
        .filter_map(|o| o.resize.map(|(_, end)| end))
        .min();
    let overlapped = matches!((first_resized, last_download), (Some(r), Some(d)) if r < d);

    let mut fetch = StageStats::default();
    let mut resize = StageStats::default();
    let mut done = Vec::new();
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut unfinished = Vec::new();
    let mut bytes_downloaded = 0;
    for mut outcome in outcomes {
        if outcome.died && config.stop.is_stopped() {
            outcome.ending = Ending::Unfinished;
        }
        let fetched = match &outcome.ending {
            Ending::Done(_) => true,
            Ending::Failed(failure) => failure.stage == Stage::Resize,
            Ending::Unfinished => outcome.resize.is_some(),
            Ending::Skipped => false,
        };
        if fetched {
            fetch.images += 1;
            fetch.bytes_in += outcome.fetched_bytes;
            if outcome.downloaded {
                bytes_downloaded += outcome.fetched_bytes;
            }
        }
        match outcome.ending {
            Ending::Done(resized) => {
                resize.images += 1;
                resize.bytes_in += resized.input_bytes;
                resize.bytes_out += resized.thumbnails.iter().map(|t| t.bytes).sum::<u64>();
                let mut kept = outcome.kept;
                kept.extend(resized.kept);
                done.push(Done {
                    source: outcome.source,
                    input_bytes: resized.input_bytes,
                    width: resized.source_width,
                    height: resized.source_height,
                    thumbnails: resized.thumbnails,
                    kept,
                    warnings: resized.warnings,
                });
            }
            Ending::Failed(failure) => {
                match failure.stage {
                    Stage::Fetch => fetch.failed += 1,
                    Stage::Resize => resize.failed += 1,
                }
                failures.push(failure);
            }
            Ending::Skipped => skipped.push(outcome.source),
            Ending::Unfinished => unfinished.push(outcome.source),
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
        skipped,
        interrupted: config.stop.is_stopped(),
        unfinished,
    }
}
