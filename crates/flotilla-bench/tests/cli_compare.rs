//! Drives the built binary: every scenario runs for every system and the JSON is well formed.
//!
//! The run is shrunk with the hidden `--scale 0.01` and `--reps 1`, so it takes about a second
//! even in a debug build.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_flotilla-bench");

const SCENARIOS: [&str; 5] = [
    "thread-overhead",
    "thread-roundtrip",
    "thread-map",
    "cpu-scaling",
    "idle-memory",
];

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
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
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
    for scenario in SCENARIOS {
        assert!(stdout.contains(&format!("== {scenario} - ")), "{stdout}");
    }
    assert!(stdout.contains("vs flotilla (per item)"));

    let rows: Vec<Value> = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let mut seen = BTreeSet::new();
    for row in &rows {
        let object = row.as_object().unwrap();
        let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["scenario", "system", "items", "seconds", "per_item_us"])
        );
        assert!(object["items"].as_u64().unwrap() >= 1, "{row}");
        assert!(object["seconds"].as_f64().unwrap() >= 0.0, "{row}");
        assert!(object["per_item_us"].as_f64().unwrap().is_finite(), "{row}");
        let scenario = object["scenario"].as_str().unwrap().to_owned();
        let system = object["system"].as_str().unwrap().to_owned();
        assert!(seen.insert((scenario, system)), "duplicate row {row}");
    }

    let mut systems = vec!["flotilla", "rayon", "threadpool", "floor"];
    if python3_present() {
        systems.push("python");
    } else {
        assert!(stdout.contains("python: skipped"), "{stdout}");
    }
    for scenario in SCENARIOS {
        for system in &systems {
            let key = (scenario.to_owned(), (*system).to_owned());
            assert!(seen.contains(&key), "no {system} row in {scenario}");
        }
    }
    assert!(seen.contains(&("cpu-scaling".to_owned(), "serial".to_owned())));
    let expected_rows = SCENARIOS.len() * systems.len() + 1;
    assert_eq!(rows.len(), expected_rows);
}

#[test]
fn list_names_every_scenario() {
    let output = Command::new(BIN).arg("list").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for scenario in SCENARIOS {
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
