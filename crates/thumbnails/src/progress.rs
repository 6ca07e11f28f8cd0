//! [`Progress`]: the command line's [`Observer`]: two progress bars (download, resize) on a
//! terminal, plain log lines through `tracing` otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::pipeline::{Event, Observer};
use crate::report::human_bytes;

/// How [`Progress`] shows a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// Progress bars on standard error (for a terminal).
    Bars,
    /// One `tracing` log line per image (for logs and pipes).
    Lines,
    /// No progress; each failure is still printed on standard error, one line each.
    Off,
}

impl ProgressMode {
    /// Bars if standard error is a terminal, lines otherwise.
    pub fn detect() -> ProgressMode {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            ProgressMode::Bars
        } else {
            ProgressMode::Lines
        }
    }
}

/// An [`Observer`] that shows progress as bars or log lines.
///
/// # Examples
///
/// ```
/// use thumbnails::{Event, Observer, Progress, ProgressMode};
///
/// let progress = Progress::new(ProgressMode::Off);
/// progress.event(&Event::Started { images: 3, downloads: 3 });
/// progress.finish();
/// ```
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    multi: MultiProgress,
    download: ProgressBar,
    resize: ProgressBar,
}

impl Progress {
    /// A progress display in the given mode.
    pub fn new(mode: ProgressMode) -> Progress {
        let target = match mode {
            ProgressMode::Bars => ProgressDrawTarget::stderr(),
            ProgressMode::Lines | ProgressMode::Off => ProgressDrawTarget::hidden(),
        };
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template(
            "{prefix:>9} [{bar:32.cyan/blue}] {pos:>3}/{len:3} {elapsed:>4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        // Hidden until the run starts and says how long the bars are (an empty bar would be
        // drawn as complete); `Started` adds them to the display.
        let bar = |prefix: &'static str| {
            let bar = ProgressBar::hidden();
            bar.set_style(style.clone());
            bar.set_prefix(prefix);
            bar
        };
        let download = bar("download");
        let resize = bar("resize");
        Progress {
            mode,
            multi,
            download,
            resize,
        }
    }

    /// Clears the bars (call before printing the report).
    pub fn finish(&self) {
        self.download.finish_and_clear();
        self.resize.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl Observer for Progress {
    fn event(&self, event: &Event<'_>) {
        match *event {
            Event::Started { images, downloads } => {
                self.download.set_length(downloads as u64);
                self.resize.set_length(images as u64);
                if self.mode == ProgressMode::Bars {
                    if downloads > 0 {
                        self.multi.add(self.download.clone());
                    }
                    self.multi.add(self.resize.clone());
                }
                if self.mode == ProgressMode::Lines {
                    tracing::info!("{images} images, {downloads} to download");
                }
            }
            Event::Fetched {
                source,
                bytes,
                downloaded,
                ..
            } => {
                if downloaded {
                    self.download.inc(1);
                }
                if self.mode == ProgressMode::Lines {
                    let verb = if downloaded { "downloaded" } else { "read" };
                    tracing::info!("{verb} {source} ({})", human_bytes(bytes));
                }
            }
            Event::Resized {
                source, resized, ..
            } => {
                self.resize.inc(1);
                if self.mode == ProgressMode::Lines {
                    let sizes: Vec<String> = resized
                        .thumbnails
                        .iter()
                        .map(|t| format!("{}x{}", t.width, t.height))
                        .collect();
                    tracing::info!("resized {source} -> {}", sizes.join(", "));
                }
            }
            Event::Skipped { source, .. } => {
                if source.contains("://") {
                    self.download.inc(1);
                }
                self.resize.inc(1);
                if self.mode == ProgressMode::Lines {
                    tracing::info!("skipped {source}: its thumbnails are already there");
                }
            }
            Event::Failed {
                source,
                stage,
                kind,
                reason,
                ..
            } => {
                if stage == crate::Stage::Fetch && source.contains("://") {
                    self.download.inc(1);
                }
                self.resize.inc(1);
                let line = format!("failed: {source} ({stage}, {kind}): {reason}");
                match self.mode {
                    ProgressMode::Bars => {
                        let _ = self.multi.println(line);
                    }
                    ProgressMode::Lines => tracing::warn!("{line}"),
                    ProgressMode::Off => eprintln!("thumbnails: {line}"),
                }
            }
        }
    }
}
