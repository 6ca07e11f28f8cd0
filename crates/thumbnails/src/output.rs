//! Writing thumbnails without ever losing a file the run did not make.
//!
//! Every size of an image is first written to a temporary file (in the run's work directory
//! inside `--out`, so on the same file system); only when all of them are complete do they
//! get their names. What happens to a file already there under that name is the user's
//! choice, [`Existing`]:
//!
//! - [`Existing::Skip`] (the default): it is left as it is, byte for byte, and reported. The
//!   new file takes its name only if the name is free (`link(2)`, which never replaces), so a
//!   file that appears meanwhile (another run, the user) is not replaced either.
//! - [`Existing::Overwrite`]: it is replaced atomically (`rename(2)`: at every moment the name
//!   holds either the old file or the complete new one). A hard link to the old file is kept
//!   until every size is in place; if one fails, the old files go back under their names.
//!
//! On failure only files this call created are removed, and only after checking they are still
//! the files it created (same inode). A symbolic link under a thumbnail's name is a file like
//! any other: skipped, or replaced itself (never followed).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::resize::{EncodedThumbnail, ResizeError, Thumbnail, io_error};

/// What to do with a thumbnail that already exists under the name a run would give it.
///
/// # Examples
///
/// ```
/// use thumbnails::Existing;
///
/// assert_eq!(Existing::default(), Existing::Skip);
/// assert_eq!("overwrite".parse::<Existing>()?, Existing::Overwrite);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Existing {
    /// Keep it, untouched; an image whose thumbnails all exist is not even downloaded, so a
    /// re-run over a large set only does what is missing.
    #[default]
    Skip,
    /// Replace it atomically with the new thumbnail.
    Overwrite,
}

impl Existing {
    /// The name, as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Existing::Skip => "skip-existing",
            Existing::Overwrite => "overwrite",
        }
    }
}

impl std::str::FromStr for Existing {
    type Err = String;

    fn from_str(s: &str) -> Result<Existing, String> {
        match s {
            "skip" | "skip-existing" => Ok(Existing::Skip),
            "overwrite" => Ok(Existing::Overwrite),
            other => Err(format!(
                "unknown choice `{other}` (expected skip-existing or overwrite)"
            )),
        }
    }
}

/// What [`write_thumbnails`] did.
#[derive(Debug)]
pub(crate) struct Written {
    /// The thumbnails now under their names.
    pub(crate) thumbnails: Vec<Thumbnail>,
    /// Names that held a file already, left as they were ([`Existing::Skip`]).
    pub(crate) kept: Vec<PathBuf>,
}

/// The path of the thumbnail `width` wide of `stem`, in `format`'s extension.
pub(crate) fn thumbnail_path(out_dir: &Path, stem: &str, width: u32, extension: &str) -> PathBuf {
    out_dir.join(format!("{stem}_{width}.{extension}"))
}

/// A file this call made, identified so that it is never mistaken for someone else's.
struct Made {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Made {
    /// Removes the file if it is still the one made here.
    fn remove(&self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path)
            && meta.dev() == self.dev
            && meta.ino() == self.ino
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes every thumbnail to a temporary file in `temp_dir`, then gives them their names in
/// `out_dir` as `existing` says; on any error leaves `out_dir` as it found it.
pub(crate) fn write_thumbnails(
    out_dir: &Path,
    temp_dir: &Path,
    stem: &str,
    thumbnails: &[EncodedThumbnail],
    existing: Existing,
) -> Result<Written, ResizeError> {
    let mut pending = Vec::with_capacity(thumbnails.len());
    for thumb in thumbnails {
        let path = thumbnail_path(
            out_dir,
            stem,
            thumb.requested_width,
            thumb.format.extension(),
        );
        let write_error = |err: io::Error| io_error(&path, &err);
        let mut file = tempfile::Builder::new()
            .prefix(".thumbnails-part-")
            .permissions(file_permissions())
            .tempfile_in(temp_dir)
            .map_err(write_error)?;
        file.write_all(&thumb.data).map_err(write_error)?;
        file.flush().map_err(write_error)?;
        let meta = file.as_file().metadata().map_err(write_error)?;
        pending.push((file, path, thumb, meta.dev(), meta.ino()));
    }
    let mut made: Vec<Made> = Vec::new();
    let mut replaced: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut written = Written {
        thumbnails: Vec::with_capacity(pending.len()),
        kept: Vec::new(),
    };
    let mut failure = None;
    for (file, path, thumb, dev, ino) in pending {
        let outcome = match existing {
            Existing::Skip => match file.persist_noclobber(&path) {
                Ok(_) => Ok(true),
                Err(err) if err.error.kind() == io::ErrorKind::AlreadyExists => {
                    written.kept.push(path.clone());
                    Ok(false)
                }
                Err(err) => Err(err.error),
            },
            Existing::Overwrite => overwrite(file, &path, temp_dir, &mut replaced),
        };
        match outcome {
            Ok(true) => {
                made.push(Made {
                    path: path.clone(),
                    dev,
                    ino,
                });
                written.thumbnails.push(Thumbnail {
                    requested_width: thumb.requested_width,
                    width: thumb.width,
                    height: thumb.height,
                    path,
                    bytes: thumb.data.len() as u64,
                });
            }
            Ok(false) => {}
            Err(err) => {
                failure = Some(io_error(&path, &err));
                break;
            }
        }
    }
    match failure {
        None => {
            for (_, backup) in replaced {
                let _ = fs::remove_file(backup);
            }
            hold_after_commit();
            Ok(written)
        }
        Some(err) => {
            // Put back what was replaced (the rename puts the old file back under its name
            // in one step), then remove what was new.
            let restored: Vec<&PathBuf> = replaced.iter().map(|(path, _)| path).collect();
            for (path, backup) in &replaced {
                let _ = fs::rename(backup, path);
            }
            for file in made.iter().filter(|m| !restored.contains(&&m.path)) {
                file.remove();
            }
            Err(err)
        }
    }
}

/// The environment variable of the interruption tests' hook: a FIFO that a resize reads one
/// byte from after its thumbnails are in place, before it returns.
const HOLD_AFTER_COMMIT: &str = "THUMBNAILS_TEST_HOLD_AFTER_COMMIT";

/// For tests only: when [`HOLD_AFTER_COMMIT`] names a FIFO, waits for a byte from it (or for
/// its writers to close it), so that a test can stop the run exactly between a resize putting
/// its thumbnails in place and its result reaching the run.
fn hold_after_commit() {
    use std::io::Read;
    if let Some(gate) = std::env::var_os(HOLD_AFTER_COMMIT) {
        let _ = fs::File::open(gate).and_then(|mut gate| gate.read(&mut [0]));
    }
}

/// Puts `file` under `path`, replacing what is there; a hard link to the old file is kept in
/// `temp_dir` (and noted in `replaced`) so that it can be put back.
fn overwrite(
    file: tempfile::NamedTempFile,
    path: &Path,
    temp_dir: &Path,
    replaced: &mut Vec<(PathBuf, PathBuf)>,
) -> io::Result<bool> {
    let old = match fs::symlink_metadata(path) {
        Ok(meta) => Some(meta),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    if let Some(meta) = &old {
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "a directory has the thumbnail's name",
            ));
        }
        let backup = tempfile::Builder::new()
            .prefix(".thumbnails-old-")
            .make_in(temp_dir, |backup| fs::hard_link(path, backup))?
            .into_temp_path()
            .keep()
            .map_err(|err| err.error)?;
        replaced.push((path.to_owned(), backup));
    }
    file.persist(path).map_err(|err| err.error)?;
    Ok(true)
}

/// Thumbnails get the permissions of any new file (`0666` less the umask), not the `0600` of a
/// temporary file. (The crate is Linux-only, like flotilla's process pool.)
fn file_permissions() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o666)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resize::OutputFormat;

    fn thumbs(widths: &[u32], fill: u8) -> Vec<EncodedThumbnail> {
        widths
            .iter()
            .map(|&w| EncodedThumbnail {
                requested_width: w,
                width: w,
                height: w,
                format: OutputFormat::Jpeg,
                data: vec![fill; 10],
            })
            .collect()
    }

    #[test]
    fn skip_keeps_what_is_there_and_writes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x_64.jpg"), b"mine").unwrap();
        let written = write_thumbnails(
            dir.path(),
            dir.path(),
            "x",
            &thumbs(&[200, 64], 1),
            Existing::Skip,
        )
        .unwrap();
        assert_eq!(written.kept, [dir.path().join("x_64.jpg")]);
        assert_eq!(written.thumbnails.len(), 1);
        assert_eq!(fs::read(dir.path().join("x_64.jpg")).unwrap(), b"mine");
        assert_eq!(fs::read(dir.path().join("x_200.jpg")).unwrap(), [1; 10]);
    }

    #[test]
    fn overwrite_puts_the_old_files_back_when_a_size_fails() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x_200.jpg"), b"old 200").unwrap();
        fs::write(dir.path().join("x_64.jpg"), b"old 64").unwrap();
        // The third name is a directory: its rename fails after the first two replaced theirs.
        fs::create_dir(dir.path().join("x_32.jpg")).unwrap();
        let err = write_thumbnails(
            dir.path(),
            dir.path(),
            "x",
            &thumbs(&[200, 64, 32], 2),
            Existing::Overwrite,
        )
        .unwrap_err();
        assert!(err.to_string().contains("x_32.jpg"), "{err}");
        assert_eq!(fs::read(dir.path().join("x_200.jpg")).unwrap(), b"old 200");
        assert_eq!(fs::read(dir.path().join("x_64.jpg")).unwrap(), b"old 64");
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["x_200.jpg", "x_32.jpg", "x_64.jpg"]);
    }
}
