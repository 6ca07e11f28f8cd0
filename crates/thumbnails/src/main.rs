//! `thumbnails`: the command line. Raw arguments (clap) → a validated [`Config`] → the output
//! directory checked → the run → the report; exit code 0 when every image succeeded, 1 when
//! some failed, 2 when the run could not start, 130 (SIGINT) or 143 (SIGTERM) when it was
//! interrupted (after printing the report so far).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use thumbnails::{
    Config, DEFAULT_MAX_PIXELS, DEFAULT_QUALITY, Existing, Mode, PhotoServer, Progress,
    ProgressMode, Report, ResizeOn, StopHandle,
};

/// Makes thumbnails of images from the web or the disk: downloads on tokio, resizing on a
/// flotilla process pool, pipelined.
#[derive(Debug, Parser)]
#[command(name = "thumbnails", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make thumbnails of URLs, image files and directories of images.
    Make(MakeArgs),
    /// Serve the bundled photos on 127.0.0.1 and run the whole pipeline against them.
    Demo(DemoArgs),
    /// Serve a directory of images (or the bundled photos) on 127.0.0.1; print their URLs.
    Serve(ServeArgs),
    /// Resize for `make --executor redis://...` runs: take resize tasks from Redis until
    /// stopped. Workers must see the paths the client names (the same machine or a shared
    /// filesystem).
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
struct WorkerArgs {
    /// The Redis server, as given to `make --executor`.
    #[arg(value_name = "REDIS_URL")]
    url: String,
    /// Images resized at once, each in its own process [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    slots: Option<usize>,
}

#[derive(Debug, Args)]
struct MakeArgs {
    /// URLs (http, https), image files, or directories (their image files: JPEG, PNG, WebP,
    /// GIF, TIFF, BMP; HEIC, AVIF and the like are listed as unsupported).
    #[arg(value_name = "URL|FILE|DIR")]
    inputs: Vec<String>,
    /// Also read URLs from FILE, one a line (blank lines and # comments are skipped).
    #[arg(long, value_name = "FILE")]
    urls: Option<PathBuf>,
    /// Where the thumbnails go (created if missing): STEM_WIDTH.jpg, or .png for images with
    /// transparency.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Where the thumbnails go [default: thumbnails-demo in the system's temporary directory,
    /// where earlier demo thumbnails are replaced].
    #[arg(long, short, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Serve this directory's images instead of the bundled photos.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The port (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[derive(Debug, Args)]
struct Options {
    /// Thumbnail widths, comma-separated; heights keep the aspect ratio.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "200,64,32",
        value_name = "W,W,.."
    )]
    sizes: Vec<u32>,
    /// Downloads running at once.
    #[arg(long, default_value_t = thumbnails::DEFAULT_MAX_DOWNLOADS, value_name = "N")]
    max_downloads: usize,
    /// Images resized at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Where resizing runs: worker processes (a crash costs one image) or threads.
    #[arg(long, value_enum, default_value_t = OnArg::Processes)]
    resize_on: OnArg,
    /// Resize on `thumbnails worker`s through this Redis server (redis://, rediss://,
    /// redis+unix://) instead of locally; overrides --resize-on and --workers.
    #[arg(long, value_name = "REDIS_URL")]
    executor: Option<String>,
    /// JPEG quality, 1 to 100.
    #[arg(long, default_value_t = DEFAULT_QUALITY, value_name = "Q")]
    quality: u8,
    /// fast: reduced-scale JPEG decoding and SIMD Lanczos3; faithful: the course's full decode
    /// and Lanczos3 from the full image to the largest width (the smaller from that one).
    #[arg(long, value_enum, default_value_t = ModeArg::Fast)]
    mode: ModeArg,
    /// Refuse images declaring more pixels than this (decompression bombs), before decoding.
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS, value_name = "N")]
    max_pixels: u64,
    /// Replace thumbnails that are already there (atomically; if a size fails, the old
    /// files are put back).
    #[arg(long, conflicts_with = "skip_existing")]
    overwrite: bool,
    /// Keep thumbnails that are already there, untouched; an image whose thumbnails are all
    /// there is not downloaded again [the default].
    #[arg(long)]
    skip_existing: bool,
    /// Abandon downloads larger than this many MiB (after decompression).
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    max_download_mib: u64,
    /// Retries of a download after a connection error, a timeout or a 5xx answer.
    #[arg(long, default_value_t = 2, value_name = "N")]
    retries: u32,
    /// Connect timeout, and the longest a download may stall, in seconds.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    timeout: f64,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    json: bool,
    /// No progress, no log lines, and no text report (each failure still prints one line on
    /// standard error; errors and --json still print).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnArg {
    Processes,
    Threads,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Fast,
    Faithful,
}

/// Exit code of a run stopped by SIGINT or SIGTERM: 128 + the signal, as a shell reports it.
fn interrupted_code(signal: i32) -> ExitCode {
    ExitCode::from(u8::try_from(128 + signal).unwrap_or(130))
}

fn main() -> ExitCode {
    let json = std::env::args().skip(1).any(|arg| arg == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            if !err.use_stderr() {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            let _ = err.print();
            if json {
                print_json_error("usage", &err.kind().to_string());
            }
            return ExitCode::from(2);
        }
    };
    let quiet = match &cli.command {
        Command::Make(args) => args.options.quiet,
        Command::Demo(args) => args.options.quiet,
        Command::Serve(_) | Command::Worker(_) => false,
    };
    init_logging(quiet);
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let message = one_line(&err);
            eprintln!("thumbnails: error: {message}");
            if json {
                print_json_error(error_kind(&err), &message);
            }
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each cause once (an error whose message already
/// quotes its cause does not get it twice).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// What kind of error stopped the run before it started, for `--json`.
fn error_kind(err: &anyhow::Error) -> &'static str {
    match err
        .chain()
        .find_map(|cause| cause.downcast_ref::<thumbnails::Error>())
    {
        Some(thumbnails::Error::Config { .. }) => "config",
        Some(thumbnails::Error::Input { .. }) => "input",
        Some(thumbnails::Error::OutDir { .. }) => "out_dir",
        Some(thumbnails::Error::Setup { .. }) => "setup",
        Some(thumbnails::Error::Executor(_)) => "executor",
        _ => "error",
    }
}

/// `{"error": {"kind": ..., "message": ...}}` on standard output.
fn print_json_error(kind: &str, message: &str) {
    let value = serde_json::json!({ "error": { "kind": kind, "message": message } });
    let _ = writeln!(io::stdout().lock(), "{value}");
}

/// Stops the run on the first SIGINT or SIGTERM (and remembers which); a second one exits at
/// once.
fn on_signals(stop: StopHandle) -> anyhow::Result<Arc<AtomicI32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let caught = Arc::new(AtomicI32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("could not set up the signal handlers")?;
    let seen = Arc::clone(&caught);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if seen.swap(signal, Ordering::SeqCst) != 0 {
                    eprintln!("thumbnails: interrupted again, exiting now");
                    std::process::exit(128 + signal);
                }
                eprintln!(
                    "thumbnails: interrupted, stopping (again to exit at once; the unfinished \
                     images leave nothing behind)"
                );
                stop.stop();
            }
        })
        .context("could not start the signal thread")?;
    Ok(caught)
}

fn init_logging(quiet: bool) {
    let default = if quiet { "error" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("THUMBNAILS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Make(args) => {
            let mut builder = Config::builder(&args.out).inputs(args.inputs);
            if let Some(file) = args.urls {
                builder = builder.urls_file(file);
            }
            let config = configure(builder, &args.options, Existing::Skip)?;
            make(&config, &args.options)
        }
        Command::Demo(args) => {
            let server = PhotoServer::bundled()?;
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("thumbnails-demo"));
            if !args.options.quiet {
                eprintln!(
                    "Serving {} bundled photos at {}/ (see assets/photos/ATTRIBUTION.md)",
                    server.urls().len(),
                    server.base_url()
                );
            }
            // The demo's own directory is refreshed; a directory the user names is not
            // (unless --overwrite).
            let existing = if args.out.is_none() {
                Existing::Overwrite
            } else {
                Existing::Skip
            };
            let config = configure(
                Config::builder(out).inputs(server.urls()),
                &args.options,
                existing,
            )?;
            make(&config, &args.options)
        }
        Command::Serve(args) => serve(&args),
        Command::Worker(args) => {
            let mut worker = flotilla_redis::Worker::builder(&args.url);
            if let Some(slots) = args.slots {
                worker = worker.slots(slots);
            }
            eprintln!("thumbnails worker: taking resize tasks from {}", args.url);
            worker.run().context("the worker could not start")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Options → a validated configuration.
fn configure(
    builder: thumbnails::ConfigBuilder,
    options: &Options,
    existing: Existing,
) -> anyhow::Result<Config> {
    if !(options.timeout.is_finite() && options.timeout > 0.0) {
        anyhow::bail!("--timeout must be a positive number of seconds");
    }
    let mut builder = builder
        .sizes(options.sizes.iter().copied())
        .max_downloads(options.max_downloads)
        .resize_on(match options.resize_on {
            OnArg::Processes => ResizeOn::Processes,
            OnArg::Threads => ResizeOn::Threads,
        })
        .quality(options.quality)
        .mode(match options.mode {
            ModeArg::Fast => Mode::Fast,
            ModeArg::Faithful => Mode::Faithful,
        })
        .max_pixels(options.max_pixels)
        .retries(options.retries)
        .timeout(Duration::from_secs_f64(options.timeout))
        .max_download_bytes(options.max_download_mib.saturating_mul(1 << 20))
        .existing(match (options.overwrite, options.skip_existing) {
            (true, _) => Existing::Overwrite,
            (_, true) => Existing::Skip,
            _ => existing,
        });
    if let Some(workers) = options.workers {
        builder = builder.workers(workers);
    }
    Ok(builder.build()?)
}

fn make(config: &Config, options: &Options) -> anyhow::Result<ExitCode> {
    let mode = if options.quiet {
        ProgressMode::Off
    } else {
        ProgressMode::detect()
    };
    // Before anything is downloaded, or a cluster contacted.
    thumbnails::check_out_dir(config.out_dir())?;
    let caught = on_signals(config.stop_handle().clone())?;
    let progress = Progress::new(mode);
    let report = match &options.executor {
        Some(url) => {
            use flotilla::Executor;
            let cluster = flotilla_redis::RedisExecutor::connect(url)
                .with_context(|| "connecting to the Redis executor".to_owned())?;
            let report = thumbnails::run_on(config, &cluster, &progress);
            cluster.shutdown(flotilla::Shutdown::new().wait(true));
            report
        }
        None => thumbnails::run(config, &progress),
    };
    progress.finish();
    let report = report?;
    print_report(&report, options).context("writing the report")?;
    let signal = caught.load(Ordering::SeqCst);
    Ok(if report.interrupted && signal != 0 {
        interrupted_code(signal)
    } else if report.all_succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(report: &Report, options: &Options) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if options.json {
        writeln!(out, "{}", report.to_json())?;
    } else if !options.quiet {
        write!(out, "{report}")?;
    }
    out.flush()
}

fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let server = match &args.dir {
        Some(dir) => PhotoServer::from_dir(dir, args.port)?,
        None => PhotoServer::serve_on(
            thumbnails::bundled_photos()
                .iter()
                .map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec()))
                .collect(),
            args.port,
        )?,
    };
    {
        let mut out = io::stdout().lock();
        for url in server.urls() {
            writeln!(out, "{url}")?;
        }
        out.flush()?;
    }
    eprintln!(
        "Serving at {}/ until interrupted (Ctrl-C).",
        server.base_url()
    );
    loop {
        std::thread::park();
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
