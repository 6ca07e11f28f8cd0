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

/// One image that produced no thumbnails, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The URL or path as given.
    pub source: String,
    /// Where it failed.
    pub stage: Stage,
    /// Why, in words.
    pub reason: String,
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
    /// The thumbnails, in the order of the configured sizes.
    pub thumbnails: Vec<Thumbnail>,
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
    /// Images with all their thumbnails written.
    pub succeeded: usize,
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
    /// `processes` or `threads` (for another executor given to [`run_on`](crate::run_on), its
    /// type name).
    pub resize_on: &'static str,
    /// Resize workers.
    pub workers: usize,
    /// Images that succeeded, in input order.
    pub done: Vec<Done>,
    /// Images that failed, in input order.
    pub failures: Vec<Failure>,
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
        self.failures.is_empty() && self.succeeded == self.images
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
        if !self.failures.is_empty() {
            writeln!(f, "{} failed:", self.failures.len())?;
            for failure in &self.failures {
                writeln!(
                    f,
                    "  {} ({}): {}",
                    failure.source, failure.stage, failure.reason
                )?;
            }
        }
        Ok(())
    }
}
