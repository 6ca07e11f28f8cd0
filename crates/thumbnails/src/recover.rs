//! What a resize wrote when its result never came back.
//!
//! A resize task puts its thumbnails in place (`rename(2)`, one name at a time) and then sends
//! its result to the run. A stop that lands in between — the run cancels the task, or the
//! terminal's Ctrl-C reaches its worker process — loses the result, not the files. So before
//! submitting a resize the run notes what is under each name its thumbnails can take
//! ([`Before`]), and when the result is lost it looks again ([`Before::written`]): a name that
//! now holds another file than before was written by this resize, and is complete (a rename
//! never shows half a file).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::output::thumbnail_path;
use crate::resize::{OutputFormat, Thumbnail};

/// The file under a name: device and inode, or nothing.
type Identity = Option<(u64, u64)>;

fn identity(path: &Path) -> Identity {
    fs::symlink_metadata(path)
        .ok()
        .map(|meta| (meta.dev(), meta.ino()))
}

/// The files under the names of one image's thumbnails (each width, as JPEG and as PNG), noted
/// before its resize starts.
pub(crate) struct Before {
    names: Vec<(u32, [(PathBuf, Identity); 2])>,
}

/// What [`Before::written`] found.
pub(crate) struct Written {
    /// The thumbnails the resize put in place, in the order of the widths.
    pub(crate) thumbnails: Vec<Thumbnail>,
    /// The widths it did not get to.
    pub(crate) missing: Vec<u32>,
}

impl Before {
    /// Notes what is under the names of `stem`'s thumbnails `widths` wide in `out_dir`.
    pub(crate) fn note(out_dir: &Path, stem: &str, widths: &[u32]) -> Before {
        let names = widths
            .iter()
            .map(|&width| {
                (
                    width,
                    [OutputFormat::Jpeg, OutputFormat::Png].map(|format| {
                        let path = thumbnail_path(out_dir, stem, width, format.extension());
                        let found = identity(&path);
                        (path, found)
                    }),
                )
            })
            .collect();
        Before { names }
    }

    /// The thumbnails written since [`note`](Before::note): names whose file changed.
    pub(crate) fn written(&self) -> Written {
        let mut written = Written {
            thumbnails: Vec::new(),
            missing: Vec::new(),
        };
        for (width, formats) in &self.names {
            let made = formats.iter().find_map(|(path, before)| {
                let now = identity(path);
                if now.is_none() || now == *before {
                    return None;
                }
                let bytes = fs::symlink_metadata(path).ok()?.len();
                let (w, h) = image::image_dimensions(path).ok()?;
                Some(Thumbnail {
                    requested_width: *width,
                    width: w,
                    height: h,
                    path: path.clone(),
                    bytes,
                })
            });
            match made {
                Some(thumbnail) => written.thumbnails.push(thumbnail),
                None => written.missing.push(*width),
            }
        }
        written
    }
}

/// The size of the image in `path` as displayed (EXIF orientation applied), from its header.
pub(crate) fn displayed_size(path: &Path) -> Option<(u32, u32)> {
    use image::ImageDecoder;
    let mut decoder = image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .into_decoder()
        .ok()?;
    let (width, height) = decoder.dimensions();
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    use image::metadata::Orientation::{Rotate90, Rotate90FlipH, Rotate270, Rotate270FlipH};
    Some(
        if matches!(
            orientation,
            Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH
        ) {
            (height, width)
        } else {
            (width, height)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(path: &Path, width: u32, height: u32) {
        image::RgbImage::from_pixel(width, height, image::Rgb([10, 20, 30]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn only_names_whose_file_changed_count_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        // 200: the user's file, left alone. 64: replaced (another inode). 32: new.
        jpeg(&out.join("x_200.jpg"), 20, 10);
        jpeg(&out.join("x_64.jpg"), 20, 10);
        let before = Before::note(out, "x", &[200, 64, 32, 16]);
        let replacement = out.join("replacement.jpg");
        jpeg(&replacement, 64, 32);
        fs::rename(&replacement, out.join("x_64.jpg")).unwrap();
        jpeg(&out.join("x_32.jpg"), 32, 16);

        let written = before.written();
        let made: Vec<_> = written
            .thumbnails
            .iter()
            .map(|t| (t.requested_width, t.width, t.height, t.path.clone()))
            .collect();
        assert_eq!(
            made,
            [
                (64, 64, 32, out.join("x_64.jpg")),
                (32, 32, 16, out.join("x_32.jpg")),
            ]
        );
        assert_eq!(
            written.thumbnails[0].bytes,
            fs::metadata(out.join("x_64.jpg")).unwrap().len()
        );
        assert_eq!(written.missing, [200, 16]);
    }

    #[test]
    fn the_displayed_size_is_read_from_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        image::RgbImage::new(30, 7).save(&path).unwrap();
        assert_eq!(displayed_size(&path), Some((30, 7)));
        assert_eq!(displayed_size(&dir.path().join("none.png")), None);
    }
}
