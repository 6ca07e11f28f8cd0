//! [`Report`]: what a run did, per stage, with every failure and its reason; printed for people
//! by its `Display` and for programs as JSON (it is `Serialize`).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::resize::Thumbnail;

/// The stage an image failed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Downloading it, or opening the local file.
    Fetch,
    /// Decoding, resizing, encoding or writing.
    Resize,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Fetch => "fetch",
            Stage::Resize => "resize",
        })
    }
}

/// Why an image failed, for programs: each is a `snake_case` string in the JSON report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// Not an http(s) URL.
    BadUrl,
    /// The server answered with an error status ([`Failure::http_status`] says which).
    HttpStatus,
    /// The host could not be reached.
    Connect,
    /// Connecting, or waiting for data, took longer than the timeout.
    Timeout,
    /// The transfer broke off (or could not be decoded, for a compressed answer).
    Transfer,
    /// The download is larger than the limit.
    TooLarge,
    /// A local file that does not exist.
    NotFound,
    /// A local path that is not a regular file.
    NotAFile,
    /// The bytes are not an image.
    NotAnImage,
    /// An image format (or feature of one) this tool does not read; the reason names it.
    UnsupportedFormat,
    /// The image declares more pixels than the limit.
    TooManyPixels,
    /// The image is damaged or truncated.
    Corrupt,
    /// The disk, the quota or the file size limit is full.
    DiskFull,
    /// Another input/output error.
    Io,
    /// The resize task failed in the executor (a worker that died, a task that could not be
    /// sent).
    Executor,
    /// The resize job was refused (an unsafe stem, no widths).
    InvalidJob,
    /// The run was stopped while the image's thumbnails were being put in place: some sizes
    /// are written, the others not (the reason says which).
    Interrupted,
}

impl FailureKind {
    /// The name, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::BadUrl => "bad_url",
            FailureKind::HttpStatus => "http_status",
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Transfer => "transfer",
            FailureKind::TooLarge => "too_large",
            FailureKind::NotFound => "not_found",
            FailureKind::NotAFile => "not_a_file",
            FailureKind::NotAnImage => "not_an_image",
            FailureKind::UnsupportedFormat => "unsupported_format",
            FailureKind::TooManyPixels => "too_many_pixels",
            FailureKind::Corrupt => "corrupt",
            FailureKind::DiskFull => "disk_full",
            FailureKind::Io => "io",
            FailureKind::Executor => "executor",
            FailureKind::InvalidJob => "invalid_job",
            FailureKind::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One image that produced no thumbnails, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The URL or path as given.
    pub source: String,
    /// Where it failed.
    pub stage: Stage,
    /// Why, for programs.
    pub kind: FailureKind,
    /// Why, in words.
    pub reason: String,
    /// The HTTP status of the last answer, for [`FailureKind::HttpStatus`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// How many times the download was tried, for failed downloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

/// One image that produced all its thumbnails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Done {
    /// The URL or path as given.
    pub source: String,
    /// The source's size in bytes.
    pub input_bytes: u64,
    /// Its size as displayed.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// The thumbnails written, in the order of the configured sizes.
    pub thumbnails: Vec<Thumbnail>,
    /// Thumbnails of it that were already there and were kept (not replaced).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<PathBuf>,
    /// What the user should know although its thumbnails were made (a colour profile that
    /// could not be used).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Figures for one stage of the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StageStats {
    /// Images that went through the stage successfully.
    pub images: usize,
    /// Images that failed in it.
    pub failed: usize,
    /// Bytes in: downloaded (or read from local files) for fetch, source bytes for resize.
    pub bytes_in: u64,
    /// Bytes out: thumbnails written (resize only).
    pub bytes_out: u64,
    /// From the stage's first start to its last finish, in seconds. The stages overlap: resizing
    /// starts as soon as the first download lands.
    pub seconds: f64,
    /// `images / seconds`.
    pub images_per_second: f64,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Images asked for.
    pub images: usize,
    /// Images with all their thumbnails written (or kept, where they were already there).
    pub succeeded: usize,
    /// Images whose thumbnails were all there already: not downloaded, nothing written
    /// ([`Existing::Skip`](crate::Existing::Skip)).
    pub skipped: Vec<String>,
    /// Thumbnails written.
    pub thumbnails: usize,
    /// Bytes downloaded over HTTP (local files are not counted here).
    pub bytes_downloaded: u64,
    /// Bytes of thumbnails written.
    pub bytes_written: u64,
    /// `1 - bytes_written / source bytes` over the images that succeeded.
    pub saved_ratio: f64,
    /// Fetch (download) stage.
    pub fetch: StageStats,
    /// Resize stage.
    pub resize: StageStats,
    /// Whether some resizing finished before the last download did (the pipeline at work).
    pub overlapped: bool,
    /// Whole run, seconds.
    pub seconds: f64,
    /// `succeeded / seconds`.
    pub images_per_second: f64,
    /// Where the thumbnails are.
    pub out_dir: PathBuf,
    /// `fast` or `faithful`.
    pub mode: &'static str,
    /// `processes` or `threads` when [`run`](crate::run) picked the executor from the
    /// configuration; for an executor given to [`run_on`](crate::run_on), its type name.
    pub resize_on: &'static str,
    /// Resize workers.
    pub workers: usize,
    /// Images that succeeded, in input order.
    pub done: Vec<Done>,
    /// Images that failed, in input order.
    pub failures: Vec<Failure>,
    /// Whether the run was stopped early ([`StopHandle`](crate::StopHandle)).
    pub interrupted: bool,
    /// Images the stop left unfinished (nothing of them was written), in input order.
    pub unfinished: Vec<String>,
}

impl Report {
    /// True if every image got its thumbnails.
    ///
    /// ```
    /// # fn f(report: thumbnails::Report) {
    /// let code = if report.all_succeeded() { 0 } else { 1 };
    /// # }
    /// ```
    pub fn all_succeeded(&self) -> bool {
        self.failures.is_empty()
            && !self.interrupted
            && self.succeeded + self.skipped.len() == self.images
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
    }
}

/// Bytes in KiB/MiB for people.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = match (self.resize_on, self.workers) {
            ("processes", 1) => "process",
            ("threads", 1) => "thread",
            (other, _) => other,
        };
        writeln!(
            f,
            "{} of {} images done, {} thumbnails in {} ({} mode, resized on {} {on})",
            self.succeeded,
            self.images,
            self.thumbnails,
            self.out_dir.display(),
            self.mode,
            self.workers,
        )?;
        writeln!(
            f,
            "  {:<8} {:>7} {:>7} {:>11} {:>11} {:>9} {:>10}",
            "stage", "images", "failed", "bytes in", "bytes out", "wall", "images/s"
        )?;
        for (name, stage) in [("fetch", &self.fetch), ("resize", &self.resize)] {
            let out = if name == "resize" {
                human_bytes(stage.bytes_out)
            } else {
                "-".into()
            };
            writeln!(
                f,
                "  {:<8} {:>7} {:>7} {:>11} {:>11} {:>8.2}s {:>10.1}",
                name,
                stage.images,
                stage.failed,
                human_bytes(stage.bytes_in),
                out,
                stage.seconds,
                stage.images_per_second
            )?;
        }
        writeln!(
            f,
            "  total: {:.2}s, {:.1} images/s; downloaded {}, wrote {}, saved {:.1}%{}",
            self.seconds,
            self.images_per_second,
            human_bytes(self.bytes_downloaded),
            human_bytes(self.bytes_written),
            self.saved_ratio * 100.0,
            if self.overlapped {
                "; resizing overlapped downloading"
            } else {
                ""
            }
        )?;
        if !self.skipped.is_empty() {
            writeln!(
                f,
                "{} skipped: their thumbnails are already there (--overwrite replaces them)",
                self.skipped.len()
            )?;
        }
        let kept: usize = self.done.iter().map(|d| d.kept.len()).sum();
        if kept > 0 {
            writeln!(f, "{kept} thumbnails already there were kept")?;
        }
        for done in &self.done {
            for warning in &done.warnings {
                writeln!(f, "warning: {}: {warning}", done.source)?;
            }
        }
        if !self.failures.is_empty() {
            writeln!(f, "{} failed:", self.failures.len())?;
            for failure in &self.failures {
                writeln!(
                    f,
                    "  {} ({}, {}): {}",
                    failure.source, failure.stage, failure.kind, failure.reason
                )?;
            }
        }
        if self.interrupted {
            writeln!(
                f,
                "interrupted: {} images not finished (nothing of them was written)",
                self.unfinished.len()
            )?;
        }
        Ok(())
    }
}
