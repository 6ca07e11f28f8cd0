//! `compare`: every chosen scenario, for every system, side by side, in one run.
//!
//! Scenarios run one after another; within a scenario the systems run one after another on the
//! same machine, so their ratios are comparable even when absolute times drift. Each table is
//! printed as soon as its scenario is done; progress goes to stderr.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::report::{self, Row};
use crate::scenarios::{Plan, Scenario, THUMBNAILS_BASELINE};
use crate::systems::{self, Failure};

/// A validated `compare` command line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// The scenarios to run, in order.
    pub(crate) scenarios: Vec<Scenario>,
    /// Timed repetitions per system (after one warm-up); `None` for each scenario's default
    /// ([`Scenario::default_reps`]).
    pub(crate) reps: Option<usize>,
    /// Multiplies item counts; 1 for real runs.
    pub(crate) scale: f64,
    /// Where to write the JSON rows, if anywhere.
    pub(crate) json: Option<PathBuf>,
    /// The directory of `thumbnails`' photos.
    pub(crate) photos: PathBuf,
}

/// How a `compare` run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Rows that failed (not skipped): nonzero makes the exit status nonzero.
    pub(crate) failures: usize,
}

/// The legend printed before the tables.
const LEGEND: &str = "\
systems: flotilla   = flotilla::ThreadPoolExecutor in thread-* scenarios, cpu-scaling and
                      idle-memory; flotilla::ProcessPoolExecutor in process-* scenarios
                      (the baseline of every ratio)
         flotilla (Vec<u8>)   = process-large-arg with a plain Vec<u8> instead of a ByteBuf
         flotilla (processes) = cpu-scaling's fib tasks on a flotilla::ProcessPoolExecutor
         python     = CPython's concurrent.futures: ThreadPoolExecutor in thread scenarios,
                      ProcessPoolExecutor (fork) in process-* scenarios (python/bench.py)
         python (mp.Pool)     = CPython's multiprocessing.Pool (fork), process-map-chunked only
         rayon      = a rayon::ThreadPool of the same size
         threadpool = the threadpool crate
         floor      = N threads on one crossbeam channel of Box<dyn FnOnce>, a bounded(1)
                      crossbeam channel per task for its result (rayon and threadpool too)
         serial     = the calling thread, no pool (cpu-scaling only)
scope-cpu, scope-small: flotilla scope = ThreadPoolExecutor::scope, a task per input (the
                      baseline); flotilla map_borrowed = ThreadPoolExecutor::map_borrowed;
                      rayon scope = rayon::ThreadPool::scope, a spawn per input; rayon
                      par_iter = par_iter().map(f).collect(); std::thread::scope = fresh
                      threads, an equal share each (the floor)
thumbnails: flotilla fast|faithful (processes|threads) = thumbnails::bench_run in that mode,
                      resizing on a flotilla process or thread pool (fast (processes): the
                      baseline)
         python course = crates/thumbnails/bench/course.py, the course's design (Pillow)
         vipsthumbnail = libvips' vipsthumbnail, one pass per width over local files
         python pillow draft() = crates/thumbnails/bench/pillow_draft.py: Image.draft('RGB',
                      (2w, 2w)), then LANCZOS to each width, one process per CPU, local files
         decode floor (djpeg) = libjpeg-turbo decoding alone: djpeg -scale 1/N at fast
                      mode's scale for each photo, one per CPU at a time, output discarded
redis-overhead: flotilla = flotilla_redis::RedisExecutor, 2 local workers of 1 slot, on a
                      redis-server this run starts on 127.0.0.1; python = ProcessPoolExecutor
                      (no Redis: the reference row)
         python rq  = RQ (pip install rq), 2 default rq workers on the same kind of server
";

/// Runs `config`, writing the tables to `out`.
///
/// # Errors
///
/// Writing to `out` or the JSON file failed.
pub(crate) fn run(config: &Config, out: &mut dyn Write) -> io::Result<Outcome> {
    let systems = systems::all();
    let mut all_rows = Vec::new();
    let mut failures = 0;
    writeln!(out, "{LEGEND}")?;
    for &scenario in &config.scenarios {
        let reps = config.reps.unwrap_or_else(|| scenario.default_reps());
        let mut plan = Plan::new(scenario, config.scale, reps);
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        let mut own_serial = HashMap::new();
        let ready = match scenario {
            Scenario::Thumbnails => plan.select_photos(&config.photos, config.scale),
            _ => Ok(()),
        };
        if let Err(why) = ready {
            eprintln!("{}: skipped: {why}", scenario.name());
            notes.push(format!("skipped: {why}"));
            let title = format!("{} - skipped", scenario.name());
            let table = report::table(&title, scenario.unit(), scenario.baseline(), &[], &notes);
            writeln!(out, "{table}")?;
            continue;
        }
        for system in systems.iter().filter(|system| system.takes_part(scenario)) {
            eprintln!("{}: {} ...", scenario.name(), system.name());
            match system.measure(&plan) {
                Ok(measurement) => {
                    if let Some(serial) = measurement.own_serial {
                        own_serial.insert(system.name(), serial / measurement.value);
                    }
                    rows.push(Row::new(scenario, system.name(), &measurement));
                }
                Err(Failure::Unavailable(why)) => {
                    notes.push(format!("{}: skipped: {why}", system.name()));
                }
                Err(Failure::Failed(why)) => {
                    failures += 1;
                    notes.push(format!("{}: FAILED: {why}", system.name()));
                }
            }
        }
        notes.extend(scenario_notes(&plan, &rows, &own_serial));
        writeln!(
            out,
            "{}",
            report::table(
                &plan.title(),
                scenario.unit(),
                scenario.baseline(),
                &rows,
                &notes
            )
        )?;
        out.flush()?;
        all_rows.extend(rows);
    }
    if let Some(path) = &config.json {
        report::write_json(path, &all_rows).map_err(io::Error::other)?;
        eprintln!("wrote {} rows to {}", all_rows.len(), path.display());
    }
    Ok(Outcome { failures })
}

/// The notes under a scenario's table. `own_serial` holds, per system that reported one, its
/// speed-up over its own serial run.
fn scenario_notes(plan: &Plan, rows: &[Row], own_serial: &HashMap<&str, f64>) -> Vec<String> {
    let mut notes = Vec::new();
    let python_ran = rows.iter().any(|row| row.system == "python");
    if python_ran && plan.python_items != plan.items {
        notes.push(format!(
            "python runs {} items, not {} (it is slower): compare per item",
            plan.python_items, plan.items
        ));
    }
    match plan.scenario {
        Scenario::ThreadMap => {
            let c = plan.chunksize;
            notes.push(format!(
                "flotilla: map_fn(work, 0..n).chunksize({c}); threadpool, floor: {c}-item \
                 chunks all submitted, then awaited in order; rayon: into_par_iter() (adaptive \
                 splitting); python: executor.map(chunksize={c}), which threads ignore: one \
                 task per item"
            ));
            if python_ran {
                notes.push(
                    "python pays the GIL for CPU work: its workers run the pure-Python loop one \
                     at a time (same work: its checksum matches work.rs)"
                        .to_owned(),
                );
            }
        }
        Scenario::CpuScaling => {
            let serial = rows
                .iter()
                .find(|row| row.system == "serial")
                .map(|row| row.per_item_us);
            let speedups: Vec<String> = rows
                .iter()
                .filter(|row| row.system != "serial")
                .filter_map(|row| {
                    if let Some(own) = own_serial.get(row.system.as_str()) {
                        Some(format!(
                            "{} {own:.2}× (over its own serial run)",
                            row.system
                        ))
                    } else {
                        serial.map(|s| format!("{} {:.2}×", row.system, s / row.per_item_us))
                    }
                })
                .collect();
            if !speedups.is_empty() {
                notes.push(format!(
                    "speed-up over serial on {} workers: {}",
                    plan.workers,
                    speedups.join(", ")
                ));
            }
            if python_ran {
                notes.push(
                    "python pays the GIL for CPU work: its threads cannot run fib in parallel"
                        .to_owned(),
                );
            }
        }
        Scenario::IdleMemory => notes.push(
            "KiB of VmRSS growth, one fresh process per sample, no warm-up; in the JSON, \
             seconds = 0 and per_item_us = KiB"
                .to_owned(),
        ),
        Scenario::ThreadOverhead | Scenario::ThreadRoundtrip => {}
        Scenario::ScopeCpu | Scenario::ScopeSmall => notes.push(format!(
            "flotilla scope: pool.scope(|s| a s.spawn(..) per input, writing its slot of a \
             borrowed &mut [u64]), the calling thread helping once it has spawned them all; \
             flotilla map_borrowed: pool.map_borrowed(f, &inputs), {} chunks; rayon scope: \
             pool.scope(|s| a s.spawn(..) per input); rayon par_iter: \
             pool.install(|| inputs.par_iter().map(f).collect()); std::thread::scope: {} fresh \
             threads per run, an equal share of the slice each (the floor)",
            plan.workers * 4,
            plan.workers
        )),
        Scenario::RedisOverhead => notes.push(
            "flotilla: RedisExecutor.submit to 2 flotilla_redis::Worker processes (1 slot \
             each), redis-server on 127.0.0.1 with persistence off; python: \
             concurrent.futures.ProcessPoolExecutor(2), no Redis (the reference row); \
             python rq: RQ's default workers (a forked work horse per job) on the same kind of server, when RQ is installed"
                .to_owned(),
        ),
        Scenario::ProcessOverhead | Scenario::ProcessRoundtrip | Scenario::ProcessMapChunked => {
            if plan.scenario == Scenario::ProcessMapChunked {
                let c = plan.chunksize;
                notes.push(format!(
                    "flotilla: map(double, 0..n).chunksize({c}); python: \
                     ProcessPoolExecutor.map(chunksize={c}); python (mp.Pool): \
                     multiprocessing.Pool.map(chunksize={c}) (same results: checksums match)"
                ));
            }
        }
        Scenario::ProcessStartup => {
            let starts: Vec<String> = rows
                .iter()
                .map(|row| format!("{} {:.2} ms", row.system, row.seconds * 1e3))
                .collect();
            notes.push(format!(
                "per start (build, first result, shutdown with the workers' exit): {}",
                starts.join(", ")
            ));
            notes.push(
                "flotilla starts workers on demand (one here) by re-executing this program; \
                 python forks its workers"
                    .to_owned(),
            );
        }
        Scenario::ProcessLargeArg => {
            let rates: Vec<String> = rows
                .iter()
                .map(|row| format!("{} {:.2} GiB/s", row.system, gib_per_s(plan, row)))
                .collect();
            notes.push(format!(
                "throughput ({} each way per round trip, per_item = one round trip): {}",
                plan.mib(),
                rates.join(", ")
            ));
            notes.push(
                "flotilla sends a serde_bytes::ByteBuf, copied as one byte string; a plain \
                 Vec<u8> goes through serde's per-element sequence path (flotilla (Vec<u8>)); \
                 python sends a bytes object"
                    .to_owned(),
            );
        }
        Scenario::SharedCounter => notes.push(
            "flotilla: *value.get_lock()? += 1 on a flotilla::shared::Value<u64> (robust \
             process-shared mutex, sealed memfd) in flotilla::process::Process children; \
             python: `with v.get_lock(): v.value += 1` on multiprocessing.Value('Q') in forked \
             multiprocessing.Process children; both timed from start to join, totals checked"
                .to_owned(),
        ),
        Scenario::ProcessIdleMemory => notes.push(
            "KiB of VmRSS of the worker process that ran the task (its pid from a task, \
             /proc/<pid>/status), shared pages included: python's forked workers share the \
             parent's; in the JSON, seconds = 0 and per_item_us = KiB"
                .to_owned(),
        ),
        Scenario::ManagerDict => notes.push(
            "flotilla: manager::Manager::new() (a server process on a Unix socket, HMAC \
             handshake once per connection), dict.insert(&i, &i) then dict.get(&i); python: \
             multiprocessing.Manager().dict(), d[i] = i then d[i]; one client thread each"
                .to_owned(),
        ),
        Scenario::Thumbnails => {
            notes.push(
                "flotilla rows: thumbnails::bench_run (4 downloads at once, one resize worker \
                 per CPU, JPEG quality 75) in a fresh `flotilla-bench thumbnails-run` process \
                 per run, timed by its report; python course: course.py (4 download threads, \
                 cpu_count() Pillow LANCZOS processes), timed by itself; both download from \
                 the same server"
                    .to_owned(),
            );
            notes.push(
                "vipsthumbnail: `vipsthumbnail FILES --size Wx -o OUT/%s_W.jpg[Q=75]` for W = \
                 200, 64, 32 over local copies (no download), timed wall-clock over the three"
                    .to_owned(),
            );
            notes.push(
                "python pillow draft(): pillow_draft.py over local copies, timed by itself; \
                 decode floor (djpeg): `djpeg -scale 1/N -outfile /dev/null` per photo at the \
                 scale fast mode picks, as many at once as CPUs, timed wall-clock over all"
                    .to_owned(),
            );
            if rows.iter().any(|row| row.peak_rss_kib.is_some()) {
                notes.push(
                    "peak RSS: the largest single process of a run (GNU time's %M: a process \
                     pool's workers count one by one, threads together), largest over the \
                     timed runs"
                        .to_owned(),
                );
            } else if !rows.is_empty() {
                notes.push(
                    "peak RSS not measured: /usr/bin/time is missing (apt-get install time)"
                        .to_owned(),
                );
            }
        }
    }
    notes.extend(targets(plan, rows));
    notes
}

/// Bytes moved both ways per second in `process-large-arg`, in GiB/s.
fn gib_per_s(plan: &Plan, row: &Row) -> f64 {
    let moved = 2.0 * plan.bytes as f64 * row.items as f64;
    moved / row.seconds / f64::from(1u32 << 30)
}

/// The performance targets of the process scenarios, each with whether this run met it.
fn targets(plan: &Plan, rows: &[Row]) -> Vec<String> {
    let per_item = |name: &str| {
        rows.iter()
            .find(|row| row.system == name)
            .map(|row| row.per_item_us)
    };
    let flotilla = per_item(plan.scenario.baseline());
    // Peer per item over flotilla per item, if both ran.
    let ratio = |peer: &str| Some(per_item(peer)? / flotilla?);
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    let faster = |peer: &str, at_least: f64| -> Option<String> {
        let r = ratio(peer)?;
        Some(format!(
            "target: flotilla ≥ {at_least}× faster per item than {peer}: {} ({r:.2}×)",
            verdict(r >= at_least)
        ))
    };
    let found: Vec<Option<String>> = match plan.scenario {
        Scenario::ProcessOverhead => vec![faster("python", 12.0)],
        Scenario::RedisOverhead => vec![
            flotilla.map(|us| {
                format!(
                    "target: flotilla < 200 µs per task end to end: {} ({us:.1} µs)",
                    verdict(us < 200.0)
                )
            }),
            faster("python rq", 5.0),
        ],
        Scenario::ProcessRoundtrip => vec![faster("python", 15.0)],
        Scenario::SharedCounter => vec![faster("python", 10.0)],
        Scenario::ManagerDict => vec![faster("python", 5.0)],
        Scenario::ProcessMapChunked => {
            vec![faster("python", 3.0), faster("python (mp.Pool)", 3.0)]
        }
        Scenario::ProcessStartup => vec![
            flotilla.map(|us| {
                let ms = us / 1e3;
                format!(
                    "target: flotilla starts in < 10 ms: {} ({ms:.2} ms)",
                    verdict(ms < 10.0)
                )
            }),
            ratio("python").map(|r| {
                format!(
                    "target: flotilla starts faster than python: {} ({r:.2}×)",
                    verdict(r > 1.0)
                )
            }),
        ],
        Scenario::ProcessLargeArg => {
            vec![
                rows.iter()
                    .find(|row| row.system == plan.scenario.baseline())
                    .map(|row| {
                        let rate = gib_per_s(plan, row);
                        format!(
                            "target: flotilla ≥ 1 GiB/s: {} ({rate:.2} GiB/s)",
                            verdict(rate >= 1.0)
                        )
                    }),
            ]
        }
        Scenario::ProcessIdleMemory => vec![flotilla.map(|kib| {
            format!(
                "target: an idle flotilla worker < 8 MiB: {} ({:.2} MiB)",
                verdict(kib < 8192.0),
                kib / 1024.0
            )
        })],
        Scenario::CpuScaling => vec![per_item("serial").and_then(|serial| {
            let speedup = serial / per_item("flotilla (processes)")?;
            Some(format!(
                "target: flotilla (processes) ≥ 1.85× over serial: {} ({speedup:.2}×)",
                verdict(speedup >= 1.85)
            ))
        })],
        Scenario::Thumbnails => {
            let faster_than = |system: &str, peer: &str, at_least: f64| -> Option<String> {
                let r = per_item(peer)? / per_item(system)?;
                Some(format!(
                    "target: {system} ≥ {at_least}× faster per image than {peer}: {} ({r:.2}×)",
                    verdict(r >= at_least)
                ))
            };
            let largest = rows
                .iter()
                .filter(|row| row.system.starts_with("flotilla"))
                .filter_map(|row| Some((row.peak_rss_kib?, row.system.as_str())))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let floor = per_item("decode floor (djpeg)").and_then(|floor| {
                let r = per_item(THUMBNAILS_BASELINE)? / floor;
                Some(format!(
                    "target: {THUMBNAILS_BASELINE} ≤ 1.0× the decode floor (djpeg) per image: {} \
                     ({r:.2}×)",
                    verdict(r <= 1.0)
                ))
            });
            vec![
                faster_than(THUMBNAILS_BASELINE, "python course", 8.0),
                faster_than(THUMBNAILS_BASELINE, "vipsthumbnail", 3.0),
                faster_than(THUMBNAILS_BASELINE, "python pillow draft()", 1.5),
                floor,
                faster_than("flotilla faithful (processes)", "python course", 3.0),
                largest.map(|(kib, system)| {
                    let mib = kib / 1024.0;
                    format!(
                        "target: flotilla peak RSS < 400 MiB: {} (largest {mib:.1} MiB, {system})",
                        verdict(mib < 400.0)
                    )
                }),
            ]
        }
        _ => Vec::new(),
    };
    found.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::Measurement;

    #[test]
    fn cpu_scaling_notes_report_speed_ups() {
        let plan = Plan::new(Scenario::CpuScaling, 1.0, 1);
        let row = |system: &str, items: usize, value: f64| {
            let m = Measurement {
                items,
                value,
                own_serial: None,
                peak_rss_kib: None,
            };
            Row::new(Scenario::CpuScaling, system, &m)
        };
        let rows = [
            row("flotilla", 16, 1.0),
            row("python", 2, 10.0),
            row("serial", 16, 2.0),
        ];
        let own = HashMap::from([("python", 0.98)]);
        let notes = scenario_notes(&plan, &rows, &own);
        let speedups = notes
            .iter()
            .find(|note| note.starts_with("speed-up"))
            .unwrap();
        assert!(speedups.contains("flotilla 2.00×"), "{speedups}");
        assert!(speedups.contains("python 0.98× (over its own serial run)"));
        assert!(notes.iter().any(|note| note.contains("GIL")));
    }

    #[test]
    fn process_notes_report_targets_rates_and_milliseconds() {
        let row = |scenario, system: &str, items: usize, value: f64| {
            let m = Measurement {
                items,
                value,
                own_serial: None,
                peak_rss_kib: None,
            };
            Row::new(scenario, system, &m)
        };
        let plan = Plan::new(Scenario::ProcessOverhead, 1.0, 1);
        let rows = [
            row(Scenario::ProcessOverhead, "flotilla", 10_000, 0.1),
            row(Scenario::ProcessOverhead, "python", 5_000, 0.5),
        ];
        let notes = scenario_notes(&plan, &rows, &HashMap::new());
        let target = "target: flotilla ≥ 12× faster per item than python: MISSED (10.00×)";
        assert!(notes.iter().any(|n| n == target), "{notes:?}");

        let plan = Plan::new(Scenario::ProcessLargeArg, 1.0, 1);
        // 2 round trips of 64 MiB each way in a second: 0.25 GiB/s.
        let rows = [row(Scenario::ProcessLargeArg, "flotilla", 2, 1.0)];
        let notes = scenario_notes(&plan, &rows, &HashMap::new());
        assert!(
            notes.iter().any(|n| n.contains("flotilla 0.25 GiB/s")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.ends_with("MISSED (0.25 GiB/s)")),
            "{notes:?}"
        );

        let plan = Plan::new(Scenario::ProcessStartup, 1.0, 1);
        let rows = [
            row(Scenario::ProcessStartup, "flotilla", 1, 0.004),
            row(Scenario::ProcessStartup, "python", 1, 0.012),
        ];
        let notes = scenario_notes(&plan, &rows, &HashMap::new());
        assert!(
            notes
                .iter()
                .any(|n| n.contains("flotilla 4.00 ms, python 12.00 ms"))
        );
        assert!(notes.iter().any(|n| n.ends_with("< 10 ms: met (4.00 ms)")));
        assert!(
            notes
                .iter()
                .any(|n| n.ends_with("faster than python: met (3.00×)"))
        );
    }

    #[test]
    fn thumbnails_notes_report_every_target() {
        let plan = Plan::new(Scenario::Thumbnails, 1.0, 3);
        let row = |system: &str, seconds: f64, mib: f64| {
            let m = Measurement {
                items: 39,
                value: seconds,
                own_serial: None,
                peak_rss_kib: Some(mib * 1024.0),
            };
            Row::new(Scenario::Thumbnails, system, &m)
        };
        let rows = [
            row(THUMBNAILS_BASELINE, 1.0, 60.0),
            row("flotilla faithful (processes)", 1.5, 100.0),
            row("flotilla fast (threads)", 0.9, 120.0),
            row("python course", 4.5, 130.0),
            row("vipsthumbnail", 6.0, 220.0),
            row("python pillow draft()", 1.2, 90.0),
            row("decode floor (djpeg)", 0.8, 10.0),
        ];
        let notes = scenario_notes(&plan, &rows, &HashMap::new());
        let has = |text: &str| notes.iter().any(|n| n == text);
        assert!(
            has(
                "target: flotilla fast (processes) ≥ 8× faster per image than python course: \
                 MISSED (4.50×)"
            ),
            "{notes:?}"
        );
        assert!(has(
            "target: flotilla fast (processes) ≥ 3× faster per image than vipsthumbnail: met \
             (6.00×)"
        ));
        assert!(has(
            "target: flotilla faithful (processes) ≥ 3× faster per image than python course: \
             met (3.00×)"
        ));
        assert!(has(
            "target: flotilla peak RSS < 400 MiB: met (largest 120.0 MiB, flotilla fast \
             (threads))"
        ));
        assert!(has(
            "target: flotilla fast (processes) ≥ 1.5× faster per image than python pillow \
             draft(): MISSED (1.20×)"
        ));
        assert!(has(
            "target: flotilla fast (processes) ≤ 1.0× the decode floor (djpeg) per image: \
             MISSED (1.25×)"
        ));
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("peak RSS: the largest single process"))
        );

        // Rows that did not run have no target line.
        let notes = scenario_notes(&plan, &rows[..1], &HashMap::new());
        assert_eq!(notes.iter().filter(|n| n.starts_with("target:")).count(), 1);
    }
}
