//! `flotilla-bench`: flotilla's thread and process pools side by side with Python's
//! `concurrent.futures` and `multiprocessing`, rayon, the `threadpool` crate and a hand-written
//! floor, in one run on one machine.
//!
//! ```text
//! cargo run --release -p flotilla-bench -- compare [SCENARIO..] [--reps N] [--json FILE]
//! cargo run --release -p flotilla-bench -- compare thumbnails [--photos DIR]
//! cargo run --release -p flotilla-bench -- list
//! ```
//!
//! Absolute times drift on shared machines; the ratios to flotilla are what to read. The
//! scenarios are described in [`scenarios`], the systems in [`systems`], the output in
//! [`report`].
//!
//! The code is laid out like flume's `benches/basic.rs`: one bench body per scenario
//! ([`scenarios`]), written once against the small [`systems::Pool`] trait that each Rust
//! system implements (or, for process pools, flotilla's `Executor` trait); the Python rows run
//! the same scenarios in `python/bench.py`.
//!
//! The process scenarios' worker processes are this program itself: flotilla re-executes it
//! and catches the copy before `main`, so `main` needs nothing for them. The `thumbnails` rows
//! of flotilla run this program too, as the hidden `thumbnails-run` command, one fresh process
//! per run so that each run's peak RSS is its own.

mod compare;
mod memory;
mod python;
mod report;
mod scenarios;
mod systems;
mod work;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use thumbnails::{Mode, ResizeOn};

use crate::scenarios::{Plan, Scenario};

/// Side-by-side benchmarks of flotilla against Python, rayon, threadpool and a hand-written
/// floor.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs scenarios (all by default) for every system, side by side, and prints a table per
    /// scenario.
    Compare(CompareArgs),
    /// Lists the scenarios and what each measures.
    List,
    /// Measures one system's idle-pool memory in this fresh process and prints the KiB; run
    /// by `compare` for `idle-memory`.
    #[command(hide = true)]
    ProbeIdleMemory {
        /// The system: flotilla, rayon, threadpool or floor.
        system: String,
        /// Threads in the pool.
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// Makes thumbnails of the URLs in FILE with `thumbnails::bench_run` and prints
    /// {"images", "seconds"}; run by `compare` for the flotilla rows of `thumbnails`.
    #[command(hide = true)]
    ThumbnailsRun {
        /// One URL a line.
        #[arg(long, value_name = "FILE")]
        urls: PathBuf,
        /// Where the thumbnails go.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// fast or faithful.
        #[arg(long, default_value = "fast")]
        mode: Mode,
        /// processes or threads.
        #[arg(long, default_value = "processes")]
        resize_on: ResizeOn,
    },
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// Scenarios to run (default: all).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Timed repetitions per system, after one warm-up; the median is reported [default: 5,
    /// and 3 for thumbnails].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    reps: Option<u16>,
    /// Also writes every row to FILE as a JSON array of
    /// {scenario, system, items, seconds, per_item_us} (thumbnails rows add peak_rss_kib).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The photos of `thumbnails` [default: $FLOTILLA_BENCH_PHOTOS, else the workspace's
    /// ../shared/corpus/photos].
    #[arg(long, value_name = "DIR")]
    photos: Option<PathBuf>,
    /// Multiplies the item counts (shrinks cpu-scaling's tasks, keeps thumbnails' smallest
    /// photos); for quick test runs.
    #[arg(long, default_value_t = 1.0, value_parser = positive, hide = true)]
    scale: f64,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

impl CompareArgs {
    fn into_config(self) -> compare::Config {
        let scenarios = if self.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            self.scenarios
        };
        compare::Config {
            scenarios,
            reps: self.reps.map(usize::from),
            scale: self.scale,
            json: self.json,
            photos: self.photos.unwrap_or_else(systems::default_photos_dir),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = io::stdout().lock();
    let result = match cli.command {
        Command::Compare(args) => compare::run(&args.into_config(), &mut stdout).map(|outcome| {
            if outcome.failures == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("flotilla-bench: {} rows failed", outcome.failures);
                ExitCode::FAILURE
            }
        }),
        Command::List => list(&mut stdout).map(|()| ExitCode::SUCCESS),
        Command::ProbeIdleMemory { system, workers } => {
            probe_idle_memory(&system, workers, &mut stdout)
        }
        Command::ThumbnailsRun {
            urls,
            out,
            mode,
            resize_on,
        } => systems::run_here(&urls, &out, mode, resize_on, &mut stdout),
    };
    match result {
        Ok(code) => code,
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flotilla-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `list`: one line per scenario.
fn list(out: &mut dyn Write) -> io::Result<()> {
    for scenario in Scenario::ALL {
        let plan = Plan::new(scenario, 1.0, 1);
        writeln!(
            out,
            "{:<20} {:>9} items (python {:>6})  {}",
            scenario.name(),
            plan.items,
            plan.python_items,
            scenario.summary()
        )?;
    }
    Ok(())
}

/// `probe-idle-memory SYSTEM`: prints the KiB that an idle pool of `system` added here.
fn probe_idle_memory(name: &str, workers: usize, out: &mut dyn Write) -> io::Result<ExitCode> {
    let Some(system) = systems::idle_memory_system(name) else {
        eprintln!("flotilla-bench: no system called {name:?}");
        return Ok(ExitCode::FAILURE);
    };
    match system.idle_memory_here(workers) {
        Ok(kib) => {
            writeln!(out, "{kib}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("flotilla-bench: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn compare_defaults_to_every_scenario() {
        let cli = Cli::try_parse_from(["flotilla-bench", "compare"]).unwrap();
        let Command::Compare(args) = cli.command else {
            panic!("not compare");
        };
        let config = args.into_config();
        assert_eq!(config.scenarios, Scenario::ALL);
        assert_eq!(config.reps, None);
        assert!(Cli::try_parse_from(["flotilla-bench", "compare", "no-such"]).is_err());
        assert!(Cli::try_parse_from(["flotilla-bench", "compare", "--scale", "0"]).is_err());
        assert!(Cli::try_parse_from(["flotilla-bench", "compare", "--reps", "0"]).is_err());
    }

    #[test]
    fn compare_takes_reps_and_a_photo_directory() {
        let cli = Cli::try_parse_from([
            "flotilla-bench",
            "compare",
            "thumbnails",
            "--reps",
            "2",
            "--photos",
            "/some/photos",
        ])
        .unwrap();
        let Command::Compare(args) = cli.command else {
            panic!("not compare");
        };
        let config = args.into_config();
        assert_eq!(config.scenarios, [Scenario::Thumbnails]);
        assert_eq!(config.reps, Some(2));
        assert_eq!(config.photos, PathBuf::from("/some/photos"));
    }

    #[test]
    fn thumbnails_run_parses_mode_and_executor() {
        let cli = Cli::try_parse_from([
            "flotilla-bench",
            "thumbnails-run",
            "--urls",
            "u.txt",
            "--out",
            "o",
            "--mode",
            "faithful",
            "--resize-on",
            "threads",
        ])
        .unwrap();
        let Command::ThumbnailsRun {
            mode, resize_on, ..
        } = cli.command
        else {
            panic!("not thumbnails-run");
        };
        assert_eq!((mode, resize_on), (Mode::Faithful, ResizeOn::Threads));
    }
}
