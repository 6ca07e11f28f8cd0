//! The `thumbnails` rows: the same photos made into the same three thumbnail sizes by the
//! `thumbnails` crate (on flotilla), the Python course's design and `vipsthumbnail`.
//!
//! Every run is a fresh child process, run under GNU time for its peak RSS (see
//! [`memory::run_with_peak_rss`]):
//!
//! - the `flotilla ...` rows run this program's hidden `thumbnails-run` command ([`run_here`]),
//!   which calls `thumbnails::bench_run` (4 downloads at once, one resize worker per CPU, JPEG
//!   quality 75) and prints `{"images", "seconds"}`, the seconds being the report's (from the
//!   pipeline's start to its last thumbnail: downloads, resizing, writing);
//! - `python course` runs `crates/thumbnails/bench/course.py` (embedded here, written next to
//!   the run) against the same URL list; its seconds are its own (after the interpreter and
//!   Pillow have loaded);
//! - `vipsthumbnail` makes one pass per width over local copies of the photos (no download,
//!   as it cannot fetch URLs); its seconds are the wall time of the three passes;
//! - `python pillow draft()` runs `crates/thumbnails/bench/pillow_draft.py` over local copies:
//!   the Python user who calls `Image.draft('RGB', (2w, 2w))` before resizing, one process per
//!   CPU; its seconds are its own;
//! - `decode floor (djpeg)` is libjpeg-turbo decoding alone: `djpeg -scale 1/N` of every photo
//!   at the scale fast mode picks for it (`thumbnails::fast_jpeg_scale`), output discarded, as
//!   many at once as there are CPUs; its seconds are the wall time of them all. Fast mode's
//!   whole pipeline (download, decode, resize, encode, write) is held to this.
//!
//! The photos (those the plan selected) are copied into a fresh temporary directory per row
//! and served from there by a [`PhotoServer`] on 127.0.0.1 with an ephemeral port; every run
//! writes into an empty output directory, and is checked afterwards: every photo must have
//! its thumbnails, or the row fails.

use std::ffi::OsString;
use std::io::{self, ErrorKind, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Deserialize;
use thumbnails::{Mode, PhotoServer, ResizeOn};

use super::{Failure, Measurement, System};
use crate::memory;
use crate::scenarios::{self, Plan, Scenario, THUMBNAILS_BASELINE};

/// The course's design, as shipped at `crates/thumbnails/bench/course.py`.
const COURSE_SCRIPT: &str = include_str!("../../../thumbnails/bench/course.py");

/// Pillow with `draft()`, as shipped at `crates/thumbnails/bench/pillow_draft.py`.
const DRAFT_SCRIPT: &str = include_str!("../../../thumbnails/bench/pillow_draft.py");

/// libjpeg-turbo's command-line decoder.
const DJPEG: &str = "djpeg";

/// The interpreter of the `python course` row.
const PYTHON: &str = "python3";

/// libvips' command-line thumbnailer.
const VIPS: &str = "vipsthumbnail";

/// The environment variable that names the photo directory.
pub(crate) const PHOTOS_ENV: &str = "FLOTILLA_BENCH_PHOTOS";

/// The corpus: `/work/shared/corpus/photos`, the workspace's `../shared/corpus/photos`.
const DEFAULT_PHOTOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/photos");

/// The thumbnail widths of the course (and of `thumbnails::bench_run`).
const WIDTHS: [u32; 3] = [200, 64, 32];

/// The JPEG quality of the course (Pillow's default) and of `thumbnails::bench_run`.
const QUALITY: u32 = 75;

/// The photo directory: `FLOTILLA_BENCH_PHOTOS` if set, else the corpus.
pub(crate) fn default_photos_dir() -> PathBuf {
    match std::env::var_os(PHOTOS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => tidy(Path::new(DEFAULT_PHOTOS)),
    }
}

/// `path` with its `..` components applied to the ones before them (the default directory's
/// `crates/flotilla-bench/../../..`), for messages that are easy to read.
fn tidy(path: &Path) -> PathBuf {
    let mut tidied = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir
                if matches!(tidied.components().next_back(), Some(Component::Normal(_))) =>
            {
                tidied.pop();
            }
            other => tidied.push(other),
        }
    }
    tidied
}

/// What a row runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `thumbnails::bench_run` in this program, re-run as `thumbnails-run`.
    Flotilla { mode: Mode, resize_on: ResizeOn },
    /// `crates/thumbnails/bench/course.py`.
    PythonCourse,
    /// `vipsthumbnail`, once per width.
    Vips,
    /// `crates/thumbnails/bench/pillow_draft.py`.
    PillowDraft,
    /// `djpeg -scale 1/N`, one per CPU at a time.
    DecodeFloor,
}

impl Kind {
    /// Whether the row downloads its photos from the server.
    fn over_http(self) -> bool {
        matches!(self, Kind::Flotilla { .. } | Kind::PythonCourse)
    }
}

/// A row of the `thumbnails` table.
#[derive(Debug)]
pub(crate) struct ThumbnailMaker {
    name: &'static str,
    kind: Kind,
}

impl ThumbnailMaker {
    /// `thumbnails::bench_run` in `mode`, resizing on a flotilla pool of processes or threads.
    pub(crate) fn flotilla(mode: Mode, resize_on: ResizeOn) -> ThumbnailMaker {
        let name = match (mode, resize_on) {
            (Mode::Fast, ResizeOn::Processes) => THUMBNAILS_BASELINE,
            (Mode::Faithful, ResizeOn::Processes) => "flotilla faithful (processes)",
            (Mode::Fast, ResizeOn::Threads) => "flotilla fast (threads)",
            (Mode::Faithful, ResizeOn::Threads) => "flotilla faithful (threads)",
        };
        ThumbnailMaker {
            name,
            kind: Kind::Flotilla { mode, resize_on },
        }
    }

    /// The Python course's design (Pillow).
    pub(crate) fn python_course() -> ThumbnailMaker {
        ThumbnailMaker {
            name: "python course",
            kind: Kind::PythonCourse,
        }
    }

    /// `vipsthumbnail`.
    pub(crate) fn vips() -> ThumbnailMaker {
        ThumbnailMaker {
            name: "vipsthumbnail",
            kind: Kind::Vips,
        }
    }

    /// Pillow with `draft()`, one process per CPU.
    pub(crate) fn pillow_draft() -> ThumbnailMaker {
        ThumbnailMaker {
            name: "python pillow draft()",
            kind: Kind::PillowDraft,
        }
    }

    /// libjpeg-turbo's decoding alone, at fast mode's scales.
    pub(crate) fn decode_floor() -> ThumbnailMaker {
        ThumbnailMaker {
            name: "decode floor (djpeg)",
            kind: Kind::DecodeFloor,
        }
    }

    /// Whether the row's tools are installed: a note saying what to install if not.
    fn check_available(&self) -> Result<(), Failure> {
        match self.kind {
            Kind::Flotilla { .. } => Ok(()),
            Kind::DecodeFloor => match Command::new(DJPEG).arg("-version").output() {
                Ok(output) if output.status.success() => Ok(()),
                Ok(output) => Err(Failure::Failed(format!(
                    "{DJPEG} -version failed ({}): {}",
                    output.status,
                    last_line(&output.stderr)
                ))),
                Err(err) if err.kind() == ErrorKind::NotFound => Err(Failure::Unavailable(
                    format!("{DJPEG} not found on PATH: apt-get install libjpeg-turbo-progs"),
                )),
                Err(err) => Err(Failure::Failed(format!("cannot run {DJPEG}: {err}"))),
            },
            Kind::PythonCourse | Kind::PillowDraft => {
                match Command::new(PYTHON).args(["-c", "import PIL"]).output() {
                    Ok(output) if output.status.success() => Ok(()),
                    Ok(_) => Err(Failure::Unavailable(format!(
                        "Pillow is not installed for {PYTHON}: pip install Pillow"
                    ))),
                    Err(err) if err.kind() == ErrorKind::NotFound => {
                        Err(Failure::Unavailable(format!(
                            "{PYTHON} not found on PATH (the course also needs: pip install Pillow)"
                        )))
                    }
                    Err(err) => Err(Failure::Failed(format!("cannot run {PYTHON}: {err}"))),
                }
            }
            Kind::Vips => match Command::new(VIPS).arg("--version").output() {
                Ok(output) if output.status.success() => Ok(()),
                Ok(output) => Err(Failure::Failed(format!(
                    "{VIPS} --version failed ({}): {}",
                    output.status,
                    last_line(&output.stderr)
                ))),
                Err(err) if err.kind() == ErrorKind::NotFound => Err(Failure::Unavailable(
                    format!("{VIPS} not found on PATH: apt-get install libvips-tools"),
                )),
                Err(err) => Err(Failure::Failed(format!("cannot run {VIPS}: {err}"))),
            },
        }
    }
}

impl System for ThumbnailMaker {
    fn name(&self) -> &'static str {
        self.name
    }

    fn takes_part(&self, scenario: Scenario) -> bool {
        scenario == Scenario::Thumbnails
    }

    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure> {
        if plan.photos.is_empty() {
            return Err(Failure::Unavailable("no photos were selected".to_owned()));
        }
        self.check_available()?;
        let stage = Stage::new(&plan.photos, self.kind)?;
        stage.run(self.kind)?;
        let mut seconds = Vec::with_capacity(plan.reps);
        let mut peak_rss_kib = None;
        for _ in 0..plan.reps {
            let (elapsed, rss) = stage.run(self.kind)?;
            seconds.push(elapsed);
            peak_rss_kib = peak_rss_kib.max(rss);
        }
        Ok(Measurement {
            items: plan.photos.len(),
            value: scenarios::median(&seconds),
            own_serial: None,
            peak_rss_kib: peak_rss_kib.map(|kib| kib as f64),
        })
    }

    fn idle_memory_here(&self, _workers: usize) -> Result<i64, String> {
        Err("the thumbnail makers take part in thumbnails only".to_owned())
    }
}

/// What `thumbnails-run` and `course.py` print (course.py adds more, ignored here).
#[derive(Debug, Deserialize)]
struct Answer {
    images: usize,
    seconds: f64,
}

/// One row's working directory (removed on drop): copies of the photos, the URL list and
/// server for the rows that download, the course's script, and each run's output.
struct Stage {
    dir: PathBuf,
    photos: Vec<PathBuf>,
    urls: PathBuf,
    script: PathBuf,
    /// Serves `photos` while the row runs (stopped on drop).
    _server: Option<PhotoServer>,
}

impl Stage {
    /// Copies `photos` into a fresh directory and, for the rows that download, serves them.
    fn new(photos: &[PathBuf], kind: Kind) -> Result<Stage, Failure> {
        static STAGES: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flotilla-bench-thumbnails-{}-{}",
            std::process::id(),
            STAGES.fetch_add(1, Ordering::Relaxed)
        ));
        let mut stage = Stage {
            photos: Vec::with_capacity(photos.len()),
            urls: dir.join("urls.txt"),
            script: dir.join("course.py"),
            dir,
            _server: None,
        };
        let copies = stage.dir.join("photos");
        let _ = std::fs::remove_dir_all(&stage.dir);
        std::fs::create_dir_all(&copies).map_err(|err| io_failure(&copies, &err))?;
        for photo in photos {
            let copy = copies.join(photo.file_name().unwrap_or(photo.as_os_str()));
            std::fs::copy(photo, &copy).map_err(|err| io_failure(photo, &err))?;
            stage.photos.push(copy);
        }
        if kind.over_http() {
            let server = PhotoServer::from_dir(&copies, 0)
                .map_err(|err| Failure::Failed(format!("cannot serve the photos: {err}")))?;
            let urls = server.urls();
            if urls.len() != photos.len() {
                return Err(Failure::Failed(format!(
                    "the photo server serves {} of the {} photos",
                    urls.len(),
                    photos.len()
                )));
            }
            std::fs::write(&stage.urls, urls.join("\n") + "\n")
                .map_err(|err| io_failure(&stage.urls, &err))?;
            stage._server = Some(server);
        }
        let script = match kind {
            Kind::PythonCourse => Some(COURSE_SCRIPT),
            Kind::PillowDraft => Some(DRAFT_SCRIPT),
            _ => None,
        };
        if let Some(script) = script {
            std::fs::write(&stage.script, script).map_err(|err| io_failure(&stage.script, &err))?;
        }
        Ok(stage)
    }

    /// One run of `kind` into an empty output directory: its seconds and peak RSS in KiB.
    fn run(&self, kind: Kind) -> Result<(f64, Option<u64>), Failure> {
        let out = self.dir.join("out");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).map_err(|err| io_failure(&out, &err))?;
        let rss_file = self.dir.join("peak-rss.txt");
        let expected = self.photos.len();
        let result = match kind {
            Kind::Flotilla { mode, resize_on } => {
                let exe = std::env::current_exe()
                    .map_err(|err| format!("cannot find this program: {err}"))?;
                let args: [OsString; 9] = [
                    "thumbnails-run".into(),
                    "--urls".into(),
                    self.urls.clone().into(),
                    "--out".into(),
                    out.clone().into(),
                    "--mode".into(),
                    mode.as_str().into(),
                    "--resize-on".into(),
                    resize_on.as_str().into(),
                ];
                self.answer(&exe, &args, &rss_file, expected, "thumbnails-run")
            }
            Kind::PythonCourse => {
                let args = [
                    self.script.as_os_str(),
                    self.urls.as_os_str(),
                    out.as_os_str(),
                ];
                self.answer(Path::new(PYTHON), &args, &rss_file, expected, "course.py")
            }
            Kind::PillowDraft => {
                let copies = self.dir.join("photos");
                let args = [self.script.as_os_str(), copies.as_os_str(), out.as_os_str()];
                self.answer(
                    Path::new(PYTHON),
                    &args,
                    &rss_file,
                    expected,
                    "pillow_draft.py",
                )
            }
            Kind::Vips => self.vips(&out, &rss_file),
            Kind::DecodeFloor => self.decode_floor(),
        };
        let _ = std::fs::remove_dir_all(&out);
        result
    }

    /// Runs a program that prints an [`Answer`] and checks that it made every image.
    fn answer<S: AsRef<std::ffi::OsStr>>(
        &self,
        program: &Path,
        args: &[S],
        rss_file: &Path,
        expected: usize,
        what: &str,
    ) -> Result<(f64, Option<u64>), Failure> {
        let run = memory::run_with_peak_rss(program, args, rss_file)
            .map_err(|err| format!("cannot run {}: {err}", program.display()))?;
        if !run.output.status.success() {
            return Err(Failure::Failed(format!(
                "{what} failed ({}): {}",
                run.output.status,
                last_line(&run.output.stderr)
            )));
        }
        let answer: Answer = serde_json::from_slice(&run.output.stdout)
            .map_err(|err| format!("{what} printed something else: {err}"))?;
        if answer.images != expected {
            return Err(Failure::Failed(format!(
                "{what} made thumbnails of {} of the {expected} photos",
                answer.images
            )));
        }
        Ok((answer.seconds, run.peak_rss_kib))
    }

    /// `vipsthumbnail PHOTOS --size {w}x -o OUT/%s_{w}.jpg[Q=75]` for each width: the wall
    /// time of the three and the largest peak RSS.
    fn vips(&self, out: &Path, rss_file: &Path) -> Result<(f64, Option<u64>), Failure> {
        let mut seconds = 0.0;
        let mut peak = None;
        for width in WIDTHS {
            let mut args: Vec<OsString> = self
                .photos
                .iter()
                .map(|p| p.clone().into_os_string())
                .collect();
            args.push("--size".into());
            args.push(format!("{width}x").into());
            args.push("-o".into());
            args.push(format!("{}/%s_{width}.jpg[Q={QUALITY}]", out.display()).into());
            let run = memory::run_with_peak_rss(VIPS, &args, rss_file)
                .map_err(|err| format!("cannot run {VIPS}: {err}"))?;
            if !run.output.status.success() {
                return Err(Failure::Failed(format!(
                    "{VIPS} --size {width}x failed ({}): {}",
                    run.output.status,
                    last_line(&run.output.stderr)
                )));
            }
            seconds += run.wall.as_secs_f64();
            peak = peak.max(run.peak_rss_kib);
        }
        let made = std::fs::read_dir(out)
            .map_err(|err| io_failure(out, &err))?
            .filter(|entry| entry.as_ref().is_ok_and(|e| e.path().is_file()))
            .count();
        let expected = self.photos.len() * WIDTHS.len();
        if made != expected {
            return Err(Failure::Failed(format!(
                "{VIPS} wrote {made} thumbnails, not {expected}"
            )));
        }
        Ok((seconds, peak))
    }
}

impl Stage {
    /// `djpeg -scale 1/N -outfile /dev/null PHOTO` for every photo, N the scale fast mode picks
    /// for it, as many at once as there are CPUs: the wall time of them all.
    fn decode_floor(&self) -> Result<(f64, Option<u64>), Failure> {
        let largest = WIDTHS.iter().copied().max().unwrap_or(200);
        let mut jobs = Vec::with_capacity(self.photos.len());
        for photo in &self.photos {
            let bytes = std::fs::read(photo).map_err(|err| io_failure(photo, &err))?;
            let scale = thumbnails::fast_jpeg_scale(&bytes, largest).ok_or_else(|| {
                Failure::Failed(format!(
                    "{} is not a JPEG djpeg can decode",
                    photo.display()
                ))
            })?;
            jobs.push((photo.clone(), scale));
        }
        let next = AtomicUsize::new(0);
        let started = Instant::now();
        let results: Vec<Result<(), Failure>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..flotilla::cpu_count().max(1))
                .map(|_| {
                    scope.spawn(|| -> Result<(), Failure> {
                        while let Some((photo, scale)) =
                            jobs.get(next.fetch_add(1, Ordering::Relaxed))
                        {
                            let output = Command::new(DJPEG)
                                .args(["-scale", &format!("1/{scale}"), "-outfile", "/dev/null"])
                                .arg(photo)
                                .output()
                                .map_err(|err| format!("cannot run {DJPEG}: {err}"))?;
                            if !output.status.success() || !output.stderr.is_empty() {
                                return Err(Failure::Failed(format!(
                                    "{DJPEG} {} failed ({}): {}",
                                    photo.display(),
                                    output.status,
                                    last_line(&output.stderr)
                                )));
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(Failure::Failed("a djpeg runner panicked".into())))
                })
                .collect()
        });
        let seconds = started.elapsed().as_secs_f64();
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok((seconds, None))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A failed file operation on `path`.
fn io_failure(path: &Path, err: &io::Error) -> Failure {
    Failure::Failed(format!("{}: {err}", path.display()))
}

/// The last line of a child's stderr, for a one-line reason.
fn last_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.trim()
        .lines()
        .last()
        .unwrap_or("no message")
        .to_owned()
}

/// `thumbnails-run`: thumbnails of the URLs in `urls` (one a line) into `out_dir` with
/// `thumbnails::bench_run`, then `{"images": SUCCEEDED, "seconds": S}` on `out`. Failures
/// go to stderr and make the exit status nonzero.
pub(crate) fn run_here(
    urls: &Path,
    out_dir: &Path,
    mode: Mode,
    resize_on: ResizeOn,
    out: &mut dyn Write,
) -> io::Result<ExitCode> {
    let text = std::fs::read_to_string(urls)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", urls.display())))?;
    let urls: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    let report = match thumbnails::bench_run(&urls, out_dir, resize_on, mode) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("thumbnails-run: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for failure in &report.failures {
        eprintln!(
            "thumbnails-run: {} failed at {}: {}",
            failure.source, failure.stage, failure.reason
        );
    }
    let answer = serde_json::json!({
        "images": report.succeeded,
        "seconds": report.seconds,
    });
    writeln!(out, "{answer}")?;
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_photo_directory_is_the_shared_corpus() {
        let tidied = tidy(Path::new(DEFAULT_PHOTOS));
        assert!(
            tidied.ends_with("shared/corpus/photos"),
            "{}",
            tidied.display()
        );
        assert!(!tidied.components().any(|c| c == Component::ParentDir));
        assert_eq!(tidy(Path::new("/a/b/../c")), Path::new("/a/c"));
        assert_eq!(tidy(Path::new("../x")), Path::new("../x"));
    }

    #[test]
    fn rows_are_named_and_take_part_in_thumbnails_only() {
        let fast = ThumbnailMaker::flotilla(Mode::Fast, ResizeOn::Processes);
        assert_eq!(fast.name(), THUMBNAILS_BASELINE);
        assert!(fast.takes_part(Scenario::Thumbnails));
        assert!(!fast.takes_part(Scenario::ProcessOverhead));
        assert!(!ThumbnailMaker::vips().kind.over_http());
        assert!(!ThumbnailMaker::pillow_draft().kind.over_http());
        assert!(!ThumbnailMaker::decode_floor().kind.over_http());
        assert!(ThumbnailMaker::python_course().kind.over_http());
    }

    #[test]
    fn the_floor_runs_djpeg_at_fast_modes_scales() {
        if Command::new(DJPEG).arg("-version").output().is_err() {
            eprintln!("skipped: {DJPEG} is not installed");
            return;
        }
        let dir = std::env::temp_dir().join(format!("flotilla-bench-floor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let photos: Vec<PathBuf> = thumbnails::bundled_photos()
            .iter()
            .take(2)
            .map(|(name, bytes)| {
                let path = dir.join(name);
                std::fs::write(&path, bytes).unwrap();
                path
            })
            .collect();
        let stage = Stage::new(&photos, Kind::DecodeFloor).unwrap();
        let (seconds, rss) = stage.run(Kind::DecodeFloor).unwrap();
        assert!(seconds > 0.0 && rss.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_course_script_is_embedded() {
        assert!(COURSE_SCRIPT.contains("def make_thumbnails"));
        assert!(COURSE_SCRIPT.contains("SIZES = [200, 64, 32]"));
    }
}
