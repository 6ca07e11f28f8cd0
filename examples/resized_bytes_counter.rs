//! The course's shared counter: several processes add file sizes into one shared `u64`.
//!
//! In Python:
//!
//! ```python
//! def add_sizes(counter, paths):
//!     for path in paths:
//!         size = os.path.getsize(path)
//!         with counter.get_lock():          # += is a read and a write: lock across both
//!             counter.value += size
//!
//! counter = Value('Q', 0)
//! workers = [Process(target=add_sizes, args=(counter, paths[i::4])) for i in range(4)]
//! for w in workers: w.start()
//! for w in workers: w.join()
//! print(counter.value)
//! ```
//!
//! With flotilla the counter is a [`flotilla::shared::Value<u64>`] in real shared memory,
//! handed to each child as an argument of `Process::start`; `*counter.get_lock()? += size` is
//! the `with` block. The sizes are those of the photos in `/work/shared/corpus/photos` if that
//! folder exists, else of the files next to this example, so it runs anywhere. The total is
//! checked against the same sum computed serially.

use std::error::Error;
use std::path::{Path, PathBuf};

use flotilla::process::Process;
use flotilla::shared::Value;

const WORKERS: usize = 4;

/// Adds the size of each file to the shared counter, under its lock.
#[flotilla::task]
fn add_sizes(counter: Value<u64>, paths: Vec<PathBuf>) {
    for path in paths {
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        match counter.get_lock() {
            Ok(mut total) => *total += size,
            Err(err) => panic!("the shared counter's lock failed: {err}"),
        }
    }
}

/// The regular files directly inside `dir`, sorted.
fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

fn main() -> Result<(), Box<dyn Error>> {
    let photos = Path::new("/work/shared/corpus/photos");
    let dir = if photos.is_dir() {
        photos.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
    };
    let files = files_in(&dir)?;
    println!(
        "adding the sizes of {} files in {}",
        files.len(),
        dir.display()
    );

    let counter = Value::new(0u64)?;
    let workers: Vec<Process> = (0..WORKERS)
        .map(|i| {
            let share: Vec<PathBuf> = files.iter().skip(i).step_by(WORKERS).cloned().collect();
            Process::new(AddSizesTask, (counter.clone(), share)).with_name(format!("adder-{i}"))
        })
        .collect();
    let workers = workers
        .into_iter()
        .map(Process::start)
        .collect::<Result<Vec<_>, _>>()?;
    for worker in &workers {
        worker.join();
        if worker.exitcode() != Some(0) {
            return Err(format!(
                "{} failed: exit code {:?}",
                worker.name(),
                worker.exitcode()
            )
            .into());
        }
    }

    let total = counter.load()?;
    let serial: u64 = files
        .iter()
        .map(|path| std::fs::metadata(path).map_or(0, |m| m.len()))
        .sum();
    println!("{WORKERS} processes counted {total} bytes; serially: {serial} bytes");
    if total != serial {
        return Err(format!("shared total {total} differs from the serial sum {serial}").into());
    }
    println!("shared total equals the serial sum");
    Ok(())
}
