//! The Python concurrency course's thumbnail maker, done right, on [flotilla].
//!
//! The course downloads images with four threads, resizes them with one process per CPU fed by
//! a `JoinableQueue`, and writes `STEM_WIDTH.EXT` for widths 200, 64 and 32 with Pillow's
//! Lanczos filter. This crate does the same job as a library and a command-line tool, and adds
//! what a real tool needs:
//!
//! - **Pipelined.** Downloads run on tokio (streamed to disk, with timeouts and retries with
//!   backoff); each image is handed to the resize executor the moment it lands, so resizing
//!   starts long before the last download ends ([`Report::overlapped`] says it did).
//! - **One switch between processes and threads.** Resizing is a registered flotilla task,
//!   [`resize_image`], submitted through the [`flotilla::Executor`] trait; [`ResizeOn`] picks a
//!   [`ProcessPoolExecutor`](flotilla::ProcessPoolExecutor) (default: a decoder crash costs one
//!   image, not the run) or a [`ThreadPoolExecutor`](flotilla::ThreadPoolExecutor). The task's
//!   argument and result are serde values, so a cluster executor is one more option.
//! - **Fast and faithful.** JPEGs are decoded by libjpeg-turbo (as in Pillow and libvips).
//!   [`Mode::Faithful`] is the course's method (full decode, Lanczos3 from the full image to
//!   the largest width, and from that to the widths a third of it or less). [`Mode::Fast`], the default, decodes at a DCT scale (a progressive JPEG at
//!   1/8 from its DC scans alone), resizes with SIMD and makes small sizes from larger ones
//!   where quality holds: at least 30 dB PSNR from faithful on every photo of the benchmark
//!   corpus.
//! - **Right colours.** ICC profiles (Adobe RGB, Display P3, …) are converted to sRGB; CMYK and
//!   YCCK JPEGs (Photoshop's inverted ones too) come out right; greyscale stays greyscale.
//! - **Bad input loses nothing.** Each failure (unreachable host, 404, not an image, an
//!   unsupported format such as HEIC, a truncated or corrupt file, a decompression bomb, a full
//!   disk) is reported for its image, with a machine-readable [`FailureKind`], while the rest
//!   complete. Output names are sanitised ([`sanitize_stem`]): nothing is written outside the
//!   output directory. Thumbnails are written to temporary files and renamed, all sizes of an
//!   image or none; a thumbnail already there is kept ([`Existing::Skip`], the default) or
//!   replaced atomically ([`Existing::Overwrite`]), and a failure never removes a file the run
//!   did not make. A [`StopHandle`] (the command line's SIGINT and SIGTERM) ends a run cleanly
//!   with the report so far.
//! - **A report.** Per stage: images, bytes, wall time, images per second; bytes saved;
//!   failures with their reasons. As text or JSON.
//!
//! # Command line
//!
//! ```text
//! thumbnails demo                                   # the bundled photos, served on 127.0.0.1
//! thumbnails make https://host/a.jpg photos/ --out thumbs
//! thumbnails make --urls list.txt --out thumbs --sizes 300,100 --mode faithful --json
//! ```
//!
//! The exit code is 0 when every image succeeded, 1 when some failed, 2 when the run could not
//! start, 130 or 143 when SIGINT or SIGTERM stopped it.
//!
//! # Library
//!
//! ```
//! use thumbnails::{run, Config, PhotoServer, ResizeOn};
//!
//! let server = PhotoServer::bundled()?;          // real photos on 127.0.0.1, any free port
//! let out = tempfile::tempdir().unwrap();
//! let config = Config::builder(out.path())
//!     .inputs(server.urls().into_iter().take(2))
//!     .sizes([64, 32])
//!     .resize_on(ResizeOn::Threads)
//!     .build()?;
//! let report = run(&config, &())?;
//! assert!(report.all_succeeded());
//! assert_eq!(report.thumbnails, 4);
//! # Ok::<(), thumbnails::Error>(())
//! ```
//!
//! Progress is observed through an [`Observer`] (a closure will do); the command line's
//! [`Progress`] draws bars on a terminal and logs lines elsewhere.
//!
//! # How the pieces compare
//!
//! | | course (Python) | `thumbnails` |
//! |---|---|---|
//! | downloads | 4 threads, `urlretrieve` | tokio + reqwest, 4 at once, streamed, retried |
//! | hand-off | all downloads, then `JoinableQueue` drained | per image, as it lands |
//! | resize | `cpu_count()` processes, Pillow `LANCZOS` from the full image | flotilla process (or thread) pool; faithful or fast |
//! | a worker crash | `BrokenProcessPool` / hang | that image fails, the rest complete |
//! | bad names | `../` written where it points | sanitised, always inside `--out` |

mod colour;
mod config;
mod decode;
mod demo;
mod download;
mod error;
mod jpeg;
mod names;
mod output;
mod pipeline;
mod progress;
mod recover;
mod report;
mod resize;
mod stop;
mod workspace;

pub use crate::config::{
    Config, ConfigBuilder, DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_MAX_DOWNLOADS, DEFAULT_SIZES, Input,
    ResizeOn, Source,
};
pub use crate::decode::fast_jpeg_scale;
pub use crate::demo::{PhotoServer, bundled_photos};
pub use crate::error::Error;
pub use crate::names::{MAX_STEM_BYTES, sanitize_stem, stem_from_path, stem_from_url};
pub use crate::output::Existing;
pub use crate::pipeline::{Event, Observer, bench_run, run, run_async, run_on};
pub use crate::progress::{Progress, ProgressMode};
pub use crate::report::{Done, Failure, FailureKind, Report, Stage, StageStats};
pub use crate::resize::{
    DEFAULT_MAX_PIXELS, DEFAULT_QUALITY, EncodedThumbnail, Mode, OutputFormat, Rendered,
    ResizeError, ResizeImageTask, ResizeJob, ResizeOptions, Resized, Thumbnail, render_thumbnails,
    resize_file, resize_image, thumbnail_size,
};
pub use crate::stop::StopHandle;
pub use crate::workspace::check_out_dir;
