//! Rows, tables and the JSON file.
//!
//! A [`Row`] is one system in one scenario. Its JSON form is exactly
//! `{"scenario", "system", "items", "seconds", "per_item_us"}`; for `idle-memory`, which is
//! not timed, `seconds` is 0 and `per_item_us` holds the pool's RSS growth in **KiB** (one
//! item = one pool), and likewise for `process-idle-memory` the RSS of one idle worker.
//! `process-startup` has one item, one start, so `per_item_us` is µs per start; in
//! `process-large-arg` an item is one round trip (the table's notes give GiB/s). In
//! `thumbnails` an item is one photo, and the rows add `peak_rss_kib`, the largest peak RSS of
//! one process over the timed runs (when it could be measured).
//!
//! The table's last column compares each row with the scenario's baseline (`flotilla`; in
//! `thumbnails`, `flotilla fast (processes)`) per item: "3.10× slower" means that system took
//! 3.1 times as long per item as the baseline, "2.00× faster" half as long (for memory: "more"
//! and "less"). The `thumbnails` table shows milliseconds per image, images per second and
//! peak RSS in MiB instead of microseconds per item.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::scenarios::{Scenario, Unit};
use crate::systems::Measurement;

/// One system's result in one scenario, as written to the JSON file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Row {
    /// The scenario's name.
    pub(crate) scenario: String,
    /// The system's name.
    pub(crate) system: String,
    /// Items run (tasks, map inputs, or 1 pool for `idle-memory`).
    pub(crate) items: usize,
    /// Median seconds for all items (0 for `idle-memory`).
    pub(crate) seconds: f64,
    /// Median microseconds per item; KiB of RSS growth for `idle-memory`.
    pub(crate) per_item_us: f64,
    /// `thumbnails` only: the largest peak RSS of one process in the timed runs, in KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) peak_rss_kib: Option<f64>,
}

impl Row {
    /// The row of `system` in `scenario`.
    pub(crate) fn new(scenario: Scenario, system: &str, measurement: &Measurement) -> Row {
        let (seconds, per_item_us) = match scenario.unit() {
            Unit::Time | Unit::Images => (
                measurement.value,
                measurement.value / measurement.items.max(1) as f64 * 1e6,
            ),
            Unit::Memory => (0.0, measurement.value),
        };
        Row {
            scenario: scenario.name().to_owned(),
            system: system.to_owned(),
            items: measurement.items,
            seconds,
            per_item_us,
            peak_rss_kib: measurement.peak_rss_kib,
        }
    }
}

/// How `value` compares with `baseline` (both per item, or both KiB).
pub(crate) fn ratio_label(value: f64, baseline: Option<f64>, unit: Unit) -> String {
    let Some(baseline) = baseline.filter(|b| b.is_finite() && *b > 0.0) else {
        return "-".to_owned();
    };
    if !value.is_finite() || value <= 0.0 {
        return "-".to_owned();
    }
    let ratio = value / baseline;
    let (more, less) = match unit {
        Unit::Time | Unit::Images => ("slower", "faster"),
        Unit::Memory => ("more", "less"),
    };
    if (ratio - 1.0).abs() < 0.005 {
        "1.00× (same)".to_owned()
    } else if ratio > 1.0 {
        format!("{ratio:.2}× {more}")
    } else {
        format!("{:.2}× {less}", 1.0 / ratio)
    }
}

/// A number with about four significant digits, without exponent.
fn number(x: f64) -> String {
    let magnitude = x.abs();
    if !x.is_finite() {
        "-".to_owned()
    } else if magnitude >= 1000.0 {
        format!("{x:.0}")
    } else if magnitude >= 100.0 {
        format!("{x:.1}")
    } else if magnitude >= 10.0 {
        format!("{x:.2}")
    } else if magnitude >= 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

/// The table of one scenario: a heading, one line per row, then the notes. Ratios are to
/// the row called `baseline`.
pub(crate) fn table(
    title: &str,
    unit: Unit,
    baseline: &str,
    rows: &[Row],
    notes: &[String],
) -> String {
    if unit == Unit::Images {
        return images_table(title, baseline, rows, notes);
    }
    let baseline_name = baseline;
    let baseline = rows
        .iter()
        .find(|row| row.system == baseline_name)
        .map(|row| row.per_item_us);
    let per_item = match unit {
        Unit::Time | Unit::Images => "per-item µs",
        Unit::Memory => "RSS KiB",
    };
    let width = rows
        .iter()
        .map(|row| row.system.chars().count())
        .max()
        .unwrap_or(0)
        .max(11);
    let mut out = String::new();
    let _ = writeln!(out, "== {title}");
    let _ = writeln!(
        out,
        "{:<width$} {:>9} {:>10} {:>12}  vs {baseline_name} (per item)",
        "system", "items", "seconds", per_item
    );
    for row in rows {
        let ratio = if row.system == baseline_name {
            "1.00× (baseline)".to_owned()
        } else {
            ratio_label(row.per_item_us, baseline, unit)
        };
        let seconds = match unit {
            Unit::Time | Unit::Images => number(row.seconds),
            Unit::Memory => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<width$} {:>9} {:>10} {:>12}  {ratio}",
            row.system,
            row.items,
            seconds,
            number(row.per_item_us)
        );
    }
    for note in notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// The table of `thumbnails`: milliseconds per image, images per second and peak RSS.
fn images_table(title: &str, baseline_name: &str, rows: &[Row], notes: &[String]) -> String {
    let baseline = rows
        .iter()
        .find(|row| row.system == baseline_name)
        .map(|row| row.per_item_us);
    let width = rows
        .iter()
        .map(|row| row.system.chars().count())
        .max()
        .unwrap_or(0)
        .max(11);
    let mut out = String::new();
    let _ = writeln!(out, "== {title}");
    let _ = writeln!(
        out,
        "{:<width$} {:>6} {:>9} {:>9} {:>9} {:>13}  vs {baseline_name} (per image)",
        "system", "images", "seconds", "ms/image", "images/s", "peak RSS MiB"
    );
    for row in rows {
        let ratio = if row.system == baseline_name {
            "1.00× (baseline)".to_owned()
        } else {
            ratio_label(row.per_item_us, baseline, Unit::Images)
        };
        let per_second = if row.seconds > 0.0 {
            number(row.items as f64 / row.seconds)
        } else {
            "-".to_owned()
        };
        let rss = row
            .peak_rss_kib
            .map_or_else(|| "-".to_owned(), |kib| format!("{:.1}", kib / 1024.0));
        let _ = writeln!(
            out,
            "{:<width$} {:>6} {:>9} {:>9} {:>9} {:>13}  {ratio}",
            row.system,
            row.items,
            number(row.seconds),
            number(row.per_item_us / 1e3),
            per_second,
            rss
        );
    }
    for note in notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// Writes `rows` to `path` as a JSON array.
pub(crate) fn write_json(path: &Path, rows: &[Row]) -> Result<(), String> {
    let json = serde_json::to_string_pretty(rows).map_err(|err| err.to_string())?;
    std::fs::write(path, json + "\n")
        .map_err(|err| format!("cannot write {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, items: usize, seconds: f64) -> Row {
        let measurement = Measurement {
            items,
            value: seconds,
            own_serial: None,
            peak_rss_kib: None,
        };
        Row::new(Scenario::ThreadOverhead, system, &measurement)
    }

    #[test]
    fn json_row_has_exactly_the_documented_fields() {
        let value = serde_json::to_value(row("rayon", 1000, 0.5)).unwrap();
        let object = value.as_object().unwrap();
        let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["items", "per_item_us", "scenario", "seconds", "system"]
        );
        assert_eq!(object["scenario"], "thread-overhead");
        assert_eq!(object["items"], 1000);
        assert_eq!(object["per_item_us"], 500.0);
    }

    #[test]
    fn memory_rows_carry_kib_in_per_item_us() {
        let measurement = Measurement {
            items: 1,
            value: 132.0,
            own_serial: None,
            peak_rss_kib: None,
        };
        let row = Row::new(Scenario::IdleMemory, "floor", &measurement);
        assert_eq!((row.seconds, row.per_item_us), (0.0, 132.0));
    }

    #[test]
    fn ratios_say_which_way() {
        assert_eq!(ratio_label(3.0, Some(1.0), Unit::Time), "3.00× slower");
        assert_eq!(ratio_label(0.5, Some(1.0), Unit::Time), "2.00× faster");
        assert_eq!(ratio_label(2.0, Some(1.0), Unit::Memory), "2.00× more");
        assert_eq!(ratio_label(1.001, Some(1.0), Unit::Time), "1.00× (same)");
        assert_eq!(ratio_label(1.0, None, Unit::Time), "-");
        assert_eq!(ratio_label(1.0, Some(0.0), Unit::Memory), "-");
    }

    #[test]
    fn table_compares_every_row_with_flotilla_per_item() {
        // python ran a fifth of the items in the same time: five times slower per item.
        let rows = [row("flotilla", 1000, 0.1), row("python", 200, 0.1)];
        let text = table("t", Unit::Time, "flotilla", &rows, &["n".to_owned()]);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "== t");
        assert!(lines[1].starts_with("system") && lines[1].contains("per-item µs"));
        assert!(lines[1].ends_with("vs flotilla (per item)"));
        assert!(lines[2].starts_with("flotilla") && lines[2].ends_with("1.00× (baseline)"));
        assert!(lines[3].starts_with("python") && lines[3].contains(" 500.0 "));
        assert!(lines[3].ends_with("5.00× slower"));
        assert_eq!(lines[4], "  note: n");
    }

    #[test]
    fn images_table_shows_rates_rss_and_ratios_to_its_baseline() {
        let images = |system: &str, seconds: f64, rss: Option<f64>| {
            let measurement = Measurement {
                items: 40,
                value: seconds,
                own_serial: None,
                peak_rss_kib: rss,
            };
            Row::new(Scenario::Thumbnails, system, &measurement)
        };
        let rows = [
            images("flotilla fast (processes)", 2.0, Some(65_536.0)),
            images("python course", 8.0, None),
        ];
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(json["peak_rss_kib"], 65_536.0);
        assert!(
            serde_json::to_value(&rows[1])
                .unwrap()
                .get("peak_rss_kib")
                .is_none()
        );
        let text = table("t", Unit::Images, "flotilla fast (processes)", &rows, &[]);
        let lines: Vec<_> = text.lines().collect();
        assert!(lines[1].contains("ms/image") && lines[1].contains("images/s"));
        assert!(lines[1].ends_with("vs flotilla fast (processes) (per image)"));
        // 40 images in 2 s: 50 ms each, 20 per second, 64 MiB.
        assert!(
            lines[2].contains(" 50.00 ") && lines[2].contains(" 20.00 "),
            "{text}"
        );
        assert!(lines[2].contains(" 64.0 ") && lines[2].ends_with("1.00× (baseline)"));
        assert!(
            lines[3].contains(" 5.000 ") && lines[3].ends_with("4.00× slower"),
            "{text}"
        );
    }
}
