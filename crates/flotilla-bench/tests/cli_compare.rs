//! Drives the built binary: every scenario runs for every system and the JSON is well formed.
//!
//! The run is shrunk with the hidden `--scale 0.01` and `--reps 1`, so it takes a few seconds
//! even in a debug build (the process scenarios start worker processes: this binary again).
//! `thumbnails` then makes thumbnails of the corpus's smallest photo; without the corpus it is
//! skipped, and its python, vipsthumbnail and decode-floor rows are skipped without Pillow,
//! libvips-tools or libjpeg-turbo-progs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_flotilla-bench");

const THREAD_SCENARIOS: [&str; 5] = [
    "thread-overhead",
    "thread-roundtrip",
    "thread-map",
    "cpu-scaling",
    "idle-memory",
];

const PROCESS_SCENARIOS: [&str; 7] = [
    "process-overhead",
    "process-roundtrip",
    "process-map-chunked",
    "process-startup",
    "process-large-arg",
    "process-idle-memory",
    "shared-counter",
];

/// Scenarios of scoped work on a borrowed slice, and their rows (no python row: Python has no
/// scoped API).
const SCOPED_SCENARIOS: [&str; 2] = ["scope-cpu", "scope-small"];
const SCOPED_SYSTEMS: [&str; 5] = [
    "flotilla scope",
    "flotilla map_borrowed",
    "rayon scope",
    "rayon par_iter",
    "std::thread::scope",
];

/// Scenarios of a manager's server process: a flotilla row and a python row.
const MANAGER_SCENARIOS: [&str; 1] = ["manager-dict"];

/// The rows every scenario must have beyond one per system of its kind.
const EXTRA_ROWS: [(&str, &str); 4] = [
    ("cpu-scaling", "serial"),
    ("cpu-scaling", "flotilla (processes)"),
    ("process-large-arg", "flotilla (Vec<u8>)"),
    ("process-map-chunked", "python (mp.Pool)"),
];

/// The rows of `thumbnails` that need nothing but this program.
const THUMBNAIL_ROWS: [&str; 3] = [
    "flotilla fast (processes)",
    "flotilla faithful (processes)",
    "flotilla fast (threads)",
];

fn all_scenarios() -> impl Iterator<Item = &'static str> {
    THREAD_SCENARIOS
        .into_iter()
        .chain(PROCESS_SCENARIOS)
        .chain(MANAGER_SCENARIOS)
        .chain(["thumbnails", "redis-overhead"])
        .chain(SCOPED_SCENARIOS)
}

/// Whether the photo directory `compare` reads (as `main` resolves it) holds a file.
fn photos_present() -> bool {
    let dir = match std::env::var_os("FLOTILLA_BENCH_PHOTOS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/photos"),
    };
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// Whether `program args` runs and succeeds.
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn python3_present() -> bool {
    succeeds("python3", &["--version"])
}

#[test]
fn compare_runs_every_scenario_for_every_system_and_writes_json() {
    let dir = TempDir::new("flotilla-bench-cli-compare");
    let json = dir.0.join("bench.json");
    let output = Command::new(BIN)
        .args(["compare", "--scale", "0.01", "--reps", "1", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for scenario in all_scenarios() {
        assert!(stdout.contains(&format!("== {scenario} - ")), "{stdout}");
    }
    assert!(stdout.contains("vs flotilla (per item)"));
    assert!(stdout.contains("GiB/s"), "{stdout}");
    assert!(stdout.contains("target: flotilla"), "{stdout}");

    let rows: Vec<Value> = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let mut seen = BTreeSet::new();
    for row in &rows {
        let object = row.as_object().unwrap();
        let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
        let mut documented =
            BTreeSet::from(["scenario", "system", "items", "seconds", "per_item_us"]);
        if object["scenario"] == "thumbnails" && keys.contains("peak_rss_kib") {
            assert!(object["peak_rss_kib"].as_f64().unwrap() > 0.0, "{row}");
            documented.insert("peak_rss_kib");
        }
        assert_eq!(keys, documented);
        assert!(object["items"].as_u64().unwrap() >= 1, "{row}");
        assert!(object["seconds"].as_f64().unwrap() >= 0.0, "{row}");
        assert!(object["per_item_us"].as_f64().unwrap().is_finite(), "{row}");
        let scenario = object["scenario"].as_str().unwrap().to_owned();
        let system = object["system"].as_str().unwrap().to_owned();
        assert!(seen.insert((scenario, system)), "duplicate row {row}");
    }

    let python = python3_present();
    if !python {
        assert!(stdout.contains("python: skipped"), "{stdout}");
    }
    let mut thread_systems = vec!["flotilla", "rayon", "threadpool", "floor"];
    let mut process_systems = vec!["flotilla"];
    if python {
        thread_systems.push("python");
        process_systems.push("python");
    }
    let mut expected = BTreeSet::new();
    for (scenarios, systems) in [
        (&THREAD_SCENARIOS[..], &thread_systems),
        (&PROCESS_SCENARIOS[..], &process_systems),
        (&MANAGER_SCENARIOS[..], &process_systems),
    ] {
        for scenario in scenarios {
            for system in systems.iter() {
                expected.insert(((*scenario).to_owned(), (*system).to_owned()));
            }
        }
    }
    for scenario in SCOPED_SCENARIOS {
        for system in SCOPED_SYSTEMS {
            expected.insert((scenario.to_owned(), system.to_owned()));
        }
    }
    assert!(stdout.contains("vs flotilla scope (per item)"), "{stdout}");
    for (scenario, system) in EXTRA_ROWS {
        if python || !system.starts_with("python") {
            expected.insert((scenario.to_owned(), system.to_owned()));
        }
    }
    // redis-overhead: the cluster row needs redis-server (`.ci/run` installs it); python's
    // reference row is its process pool.
    if python {
        expected.insert(("redis-overhead".to_owned(), "python".to_owned()));
    }
    if python && succeeds("python3", &["-c", "import rq"]) {
        expected.insert(("redis-overhead".to_owned(), "python rq".to_owned()));
    } else {
        assert!(stdout.contains("pip install rq"), "{stdout}");
    }
    if succeeds("redis-server", &["--version"]) {
        expected.insert(("redis-overhead".to_owned(), "flotilla".to_owned()));
        assert!(
            stdout.contains("target: flotilla < 200 µs per task"),
            "{stdout}"
        );
    } else {
        assert!(stdout.contains("apt-get install redis-server"), "{stdout}");
    }
    if photos_present() {
        let mut rows = THUMBNAIL_ROWS.to_vec();
        if succeeds("python3", &["-c", "import PIL"]) {
            rows.push("python course");
            rows.push("python pillow draft()");
        } else {
            assert!(stdout.contains("pip install Pillow"), "{stdout}");
        }
        if succeeds("vipsthumbnail", &["--version"]) {
            rows.push("vipsthumbnail");
        } else {
            assert!(stdout.contains("apt-get install libvips-tools"), "{stdout}");
        }
        if succeeds("djpeg", &["-version"]) {
            rows.push("decode floor (djpeg)");
            assert!(
                stdout.contains("the decode floor (djpeg) per image"),
                "{stdout}"
            );
        } else {
            assert!(
                stdout.contains("apt-get install libjpeg-turbo-progs"),
                "{stdout}"
            );
        }
        for system in rows {
            expected.insert(("thumbnails".to_owned(), system.to_owned()));
        }
        assert!(
            stdout.contains("target: flotilla fast (processes)"),
            "{stdout}"
        );
    } else {
        assert!(stdout.contains("== thumbnails - skipped"), "{stdout}");
    }
    assert_eq!(seen, expected);
}

#[test]
fn list_names_every_scenario() {
    let output = Command::new(BIN).arg("list").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for scenario in all_scenarios() {
        assert!(stdout.contains(scenario), "{stdout}");
    }
}

#[test]
fn unknown_scenarios_are_refused() {
    let output = Command::new(BIN)
        .args(["compare", "thread-nothing"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn thumbnails_without_photos_is_skipped_with_a_note() {
    let dir = TempDir::new("flotilla-bench-no-photos");
    let output = Command::new(BIN)
        .args(["compare", "thumbnails", "--photos"])
        .arg(&dir.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("== thumbnails - skipped"), "{stdout}");
    assert!(stdout.contains("FLOTILLA_BENCH_PHOTOS"), "{stdout}");
}
