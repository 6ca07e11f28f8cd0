//! Output names: a safe file stem from whatever a URL or a path says, so that no input can make
//! a thumbnail land outside `--out`.
//!
//! The rules, in order: percent-escapes are decoded (so `..%2F` is seen as `../`); only the last
//! path component is kept (anything after the last `/` or `\`); the extension is dropped; every
//! character outside `A-Z a-z 0-9 - _ .` becomes `_`; runs of dots collapse to one; leading dots
//! and dashes and trailing dots are removed; the result is cut to [`MAX_STEM_BYTES`]. What is
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
/// component is kept (after the last `/` or `\`); the extension is dropped; every character
/// outside `A-Z a-z 0-9 - _ .` becomes `_`; runs of dots collapse to one; leading dots and
/// dashes and trailing dots go; the result is cut to [`MAX_STEM_BYTES`] and is never empty
/// (`image` stands in). So `out_dir.join(stem + "_200.jpg")` is always directly in `out_dir`.
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
/// assert_eq!(sanitize_stem("ünïcode.jpg"), "_n_code");
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
        let c = if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
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
    // Every character is ASCII now, so any byte index is a character boundary.
    let mut cut = trimmed;
    cut.truncate(MAX_STEM_BYTES);
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
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
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
