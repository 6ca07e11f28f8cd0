//! Output names: a safe file stem from whatever a URL or a path says, so that no input can make
//! a thumbnail land outside `--out`.
//!
//! The rules, in order: percent-escapes are decoded (so `..%2F` is seen as `../`); only the last
//! path component is kept (anything after the last `/` or `\`); the extension is dropped; letters
//! and digits of any script are kept (`写真`, `Ölberg`), as are `- _ .`, and every other character
//! (spaces, punctuation, controls, invisible and direction-changing characters, emoji) becomes
//! `_`; runs of dots collapse to one; leading dots and dashes and trailing dots are removed; the
//! result is cut to [`MAX_STEM_BYTES`] (at a character boundary). What is
//! left is never empty (it falls back to `image`), never contains a separator and never starts
//! with a dot, so `out_dir.join(stem + "_200.jpg")` is always a file directly inside `out_dir`.

use std::collections::HashSet;
use std::path::Path;

use percent_encoding::percent_decode_str;

/// The longest stem kept, in bytes; longer names are cut.
pub const MAX_STEM_BYTES: usize = 100;

/// The stem used when nothing usable is left of a name.
const FALLBACK: &str = "image";

/// A safe file stem for the image at `url`: its last path segment, decoded and sanitised.
///
/// # Examples
///
/// ```
/// use thumbnails::stem_from_url;
///
/// assert_eq!(stem_from_url("http://example.com/photos/Dune.jpg"), "Dune");
/// assert_eq!(stem_from_url("http://example.com/..%2F..%2Fetc%2Fcron.d%2Fevil.jpg"), "evil");
/// assert_eq!(stem_from_url("http://example.com/a%20b%3Bc.png?size=large"), "a_b_c");
/// assert_eq!(stem_from_url("http://example.com/"), "image");
/// ```
pub fn stem_from_url(url: &str) -> String {
    let without_fragment = url.split('#').next().unwrap_or_default();
    let without_query = without_fragment.split('?').next().unwrap_or_default();
    let path = match without_query.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        None => without_query,
    };
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    sanitize_stem(&decoded)
}

/// A safe file stem for a local file.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use thumbnails::stem_from_path;
///
/// assert_eq!(stem_from_path(Path::new("/photos/mate_Dune.jpg")), "mate_Dune");
/// assert_eq!(stem_from_path(Path::new("holiday 2024 (1).jpeg")), "holiday_2024__1_");
/// ```
pub fn stem_from_path(path: &Path) -> String {
    sanitize_stem(&path.to_string_lossy())
}

/// Turns any name into a safe file stem.
///
/// Percent-escapes must already be decoded ([`stem_from_url`] does it). Only the last path
/// component is kept (after the last `/` or `\`); the extension is dropped; letters and digits
/// of every script are kept, as are `- _ .`, and every other character becomes `_`; runs of
/// dots collapse to one; leading dots and dashes and trailing dots go; the result is cut to
/// [`MAX_STEM_BYTES`] at a character boundary and is never empty (`image` stands in). So
/// `out_dir.join(stem + "_200.jpg")` is always directly in `out_dir`.
///
/// # Examples
///
/// ```
/// use thumbnails::sanitize_stem;
///
/// assert_eq!(sanitize_stem("../../etc/passwd"), "passwd");
/// assert_eq!(sanitize_stem("..\\..\\boot.ini"), "boot");
/// assert_eq!(sanitize_stem(".hidden.jpg"), "hidden");
/// assert_eq!(sanitize_stem("--force.jpg"), "force");
/// assert_eq!(sanitize_stem("ünïcode.jpg"), "ünïcode");
/// assert_eq!(sanitize_stem("写真.jpg"), "写真");
/// assert_eq!(sanitize_stem("a\u{202e}gpj.exe"), "a_gpj"); // no direction override
/// assert_eq!(sanitize_stem("cat 🐈.png"), "cat__");
/// assert_eq!(sanitize_stem(".."), "image");
/// ```
pub fn sanitize_stem(name: &str) -> String {
    let last = name
        .rsplit(['/', '\\'])
        .find(|part| !part.is_empty())
        .unwrap_or_default();
    // Drop the extension: the part after the last dot, unless the dot is the first character.
    let stem = match last.rfind('.') {
        Some(dot) if dot > 0 => &last[..dot],
        _ => last,
    };
    let mut out = String::with_capacity(stem.len().min(MAX_STEM_BYTES));
    for c in stem.chars() {
        let c = if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
            c
        } else {
            '_'
        };
        if c == '.' && out.ends_with('.') {
            continue;
        }
        out.push(c);
    }
    let trimmed = out
        .trim_start_matches(['.', '-'])
        .trim_end_matches('.')
        .to_owned();
    let mut cut = trimmed;
    let mut end = cut.len().min(MAX_STEM_BYTES);
    while !cut.is_char_boundary(end) {
        end -= 1;
    }
    cut.truncate(end);
    let cut = cut.trim_end_matches('.');
    if cut.is_empty() {
        FALLBACK.to_owned()
    } else {
        cut.to_owned()
    }
}

/// True if `stem` is what [`sanitize_stem`] produces: safe to join to an output directory.
///
/// The resize task checks this again, because its job may come from anywhere (another process,
/// one day another machine).
pub(crate) fn is_safe_stem(stem: &str) -> bool {
    !stem.is_empty()
        && stem.len() <= MAX_STEM_BYTES + 8
        && !stem.starts_with(['.', '-'])
        && !stem.contains("..")
        && stem
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Hands out stems that are unique within one run: a second `photo` becomes `photo-2`.
#[derive(Debug, Default)]
pub(crate) struct Stems {
    used: HashSet<String>,
}

impl Stems {
    /// `stem`, or `stem-N` with the smallest `N >= 2` not handed out yet.
    pub(crate) fn unique(&mut self, stem: String) -> String {
        if self.used.insert(stem.clone()) {
            return stem;
        }
        let mut n = 2usize;
        loop {
            let candidate = format!("{stem}-{n}");
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_never_escapes() {
        for name in [
            "../../x.jpg",
            "..%2F..%2Fx.jpg",
            "%2e%2e%2f%2e%2e%2fx.jpg",
            "/abs/x.jpg",
            "x.jpg/..",
            "..",
            ".",
            "",
            "a/b/c/../../x.jpg",
            "\\\\server\\share\\x.jpg",
            "con.jpg",
            "x\0y.jpg",
            "...jpg",
        ] {
            let url = format!("http://h/{name}");
            for stem in [sanitize_stem(name), stem_from_url(&url)] {
                assert!(is_safe_stem(&stem), "{name:?} gave {stem:?}");
                let joined = Path::new("/out").join(format!("{stem}_200.jpg"));
                assert_eq!(joined.parent(), Some(Path::new("/out")), "{name:?}");
            }
        }
    }

    #[test]
    fn long_names_are_cut() {
        let stem = sanitize_stem(&"a".repeat(500));
        assert_eq!(stem.len(), MAX_STEM_BYTES);
        // Three bytes a character: cut at a boundary, not in the middle of one.
        let stem = sanitize_stem(&"写".repeat(50));
        assert_eq!(stem, "写".repeat(MAX_STEM_BYTES / 3));
        assert!(is_safe_stem(&stem));
    }

    #[test]
    fn other_scripts_are_kept() {
        for (name, stem) in [
            ("写真.jpg", "写真"),
            ("Ölberg im Schnee.jpeg", "Ölberg_im_Schnee"),
            ("фото-1.png", "фото-1"),
            ("a\u{200b}b.jpg", "a_b"),
            ("x\u{0}y\u{7f}.jpg", "x_y_"),
        ] {
            assert_eq!(sanitize_stem(name), stem, "{name:?}");
            assert!(is_safe_stem(stem));
        }
        assert_eq!(stem_from_url("http://h/%E5%86%99%E7%9C%9F.jpg"), "写真");
    }

    #[test]
    fn duplicates_get_numbers() {
        let mut stems = Stems::default();
        assert_eq!(stems.unique("a".into()), "a");
        assert_eq!(stems.unique("a".into()), "a-2");
        assert_eq!(stems.unique("a".into()), "a-3");
        assert_eq!(stems.unique("a-2".into()), "a-2-2");
    }
}
