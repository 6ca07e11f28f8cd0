//! The output directory, checked before any work, and the run's work directory inside it.
//!
//! [`check_out_dir`] makes sure `--out` is usable before anything is downloaded: it exists or
//! can be created, it is a directory, and a file can really be created in it (a probe file,
//! written and removed: permissions alone do not tell, for root, on a read-only mount or a full
//! disk).
//!
//! [`Workspace`] is a hidden directory `.thumbnails-work-XXXXXX` in `--out` (the same file
//! system, so that finished files are renamed, never copied) holding the run's downloads and
//! the thumbnails being written. Its lock file `.thumbnails-work-XXXXXX.lock` is created and
//! locked (`flock`) before the directory, and stays locked while the run lives; the kernel
//! drops the lock when the process dies, however it dies. So a later run tells an abandoned
//! work directory (lock free, or no lock file at all) from a live one of a run going on at the
//! same time (lock held), and removes only the abandoned ones. Everything in a work directory
//! is transient (partial downloads, unfinished thumbnails, links to files being replaced whose
//! new version is already in place), so removing an abandoned one loses nothing.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::Error;

const PREFIX: &str = ".thumbnails-work-";
const LOCK_SUFFIX: &str = ".lock";

/// Checks `dir` as an output directory, creating it if missing: it must be a directory in
/// which a file can really be created (a probe file is written and removed). Every run does
/// this before its first download; the command line does it before anything else.
///
/// # Errors
///
/// [`Error::OutDir`] saying what is wrong: not a directory, cannot be created, cannot be
/// written.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// thumbnails::check_out_dir(&dir.path().join("new/thumbs"))?;
/// let file = dir.path().join("file");
/// std::fs::write(&file, b"")?;
/// let err = thumbnails::check_out_dir(&file).unwrap_err();
/// assert!(err.to_string().contains("not a directory"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_out_dir(dir: &Path) -> Result<(), Error> {
    let fail = |source: io::Error| Error::OutDir {
        path: dir.to_owned(),
        source,
    };
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(fail(io::Error::new(
                io::ErrorKind::NotADirectory,
                "it exists and is not a directory",
            )));
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(fail)?;
        }
        Err(err) => return Err(fail(err)),
    }
    let mut probe = tempfile::Builder::new()
        .prefix(".thumbnails-probe-")
        .tempfile_in(dir)
        .map_err(fail)?;
    probe.write_all(b"probe").map_err(fail)?;
    probe.flush().map_err(fail)?;
    probe.close().map_err(fail)
}

/// Tries to take the lock on `file` without waiting: true if it was free.
fn try_lock(file: &File) -> bool {
    // SAFETY: flock(2) on a descriptor this `File` owns and keeps open for the call; it only
    // changes the lock state of the open file description.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Removes the work directories of earlier runs that died (their lock is free or missing);
/// returns how many.
pub(crate) fn clean_abandoned(out_dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(out_dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(PREFIX) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            let lock_path = out_dir.join(format!("{name}{LOCK_SUFFIX}"));
            let abandoned = match File::open(&lock_path) {
                Ok(lock) => try_lock(&lock),
                // A live run creates its lock before its directory.
                Err(err) => err.kind() == io::ErrorKind::NotFound,
            };
            if abandoned && fs::remove_dir_all(&path).is_ok() {
                let _ = fs::remove_file(&lock_path);
                removed += 1;
            }
        } else if name.ends_with(LOCK_SUFFIX) {
            let dir = out_dir.join(name.trim_end_matches(LOCK_SUFFIX));
            if !dir.exists() && File::open(&path).is_ok_and(|lock| try_lock(&lock)) {
                let _ = fs::remove_file(&path);
            }
        }
    }
    removed
}

/// A run's work directory; removed, with its lock, on drop.
#[derive(Debug)]
pub(crate) struct Workspace {
    dir: PathBuf,
    lock_path: PathBuf,
    /// Held (locked) for the life of the run.
    _lock: File,
}

impl Workspace {
    /// Cleans up after dead runs, then makes this run's locked work directory in `out_dir`.
    pub(crate) fn create(out_dir: &Path) -> Result<Workspace, Error> {
        let fail = |source: io::Error| Error::OutDir {
            path: out_dir.to_owned(),
            source,
        };
        let cleaned = clean_abandoned(out_dir);
        if cleaned > 0 {
            tracing::info!("removed {cleaned} work directories left by interrupted runs");
        }
        let (lock, lock_path) = tempfile::Builder::new()
            .prefix(PREFIX)
            .suffix(LOCK_SUFFIX)
            .tempfile_in(out_dir)
            .map_err(fail)?
            .keep()
            .map_err(|err| fail(err.error))?;
        if !try_lock(&lock) {
            let _ = fs::remove_file(&lock_path);
            return Err(fail(io::Error::other("cannot lock the work directory")));
        }
        let dir = PathBuf::from(
            lock_path
                .to_string_lossy()
                .trim_end_matches(LOCK_SUFFIX)
                .to_owned(),
        );
        if let Err(err) = fs::create_dir(&dir) {
            let _ = fs::remove_file(&lock_path);
            return Err(fail(err));
        }
        Ok(Workspace {
            dir,
            lock_path,
            _lock: lock,
        })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.lock_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_work_directories_are_kept_and_dead_ones_removed() {
        let out = tempfile::tempdir().unwrap();
        let live = Workspace::create(out.path()).unwrap();
        fs::write(live.path().join("1.download"), b"partial").unwrap();
        // A dead run's: its lock file exists but nobody holds it; another with no lock file.
        let dead = out.path().join(".thumbnails-work-dead01");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("3.download"), b"partial").unwrap();
        File::create(out.path().join(".thumbnails-work-dead01.lock")).unwrap();
        let older = out.path().join(".thumbnails-work-older1");
        fs::create_dir(&older).unwrap();
        assert_eq!(clean_abandoned(out.path()), 2);
        assert!(!dead.exists() && !older.exists());
        assert!(!out.path().join(".thumbnails-work-dead01.lock").exists());
        assert!(
            live.path().join("1.download").exists(),
            "a live run's files stay"
        );
        drop(live);
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
    }

    #[test]
    fn unusable_out_dirs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        let err = check_out_dir(&file).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        assert!(check_out_dir(&file.join("below")).is_err());
        // /proc refuses new files even to root.
        assert!(check_out_dir(Path::new("/proc")).is_err());
        let fresh = dir.path().join("a/b");
        check_out_dir(&fresh).unwrap();
        assert_eq!(
            fs::read_dir(&fresh).unwrap().count(),
            0,
            "the probe is gone"
        );
    }
}
