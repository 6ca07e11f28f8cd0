//! The resize step: decode, scale to each width, encode, write atomically.
//!
//! [`render_thumbnails`] works in memory; [`resize_file`] reads a file and writes the
//! thumbnails; [`resize_image`] is the same as a registered flotilla task, so that any executor
//! (threads, processes, one day a cluster) can run it from a serde [`ResizeJob`].

use std::fs;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use fast_image_resize as fir;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageEncoder, RgbImage};
use serde::{Deserialize, Serialize};

use crate::colour::ToSrgb;
use crate::decode::{Decoded, decode, format_name, sniff};
use crate::names::is_safe_stem;
use crate::output::{Existing, write_thumbnails};
use crate::report::FailureKind;

/// The default `--max-pixels`: images declaring more are refused before any decoding.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// The default JPEG quality, as Pillow's (and so the course's).
pub const DEFAULT_QUALITY: u8 = 75;

/// In fast mode, a size is made from the previous (larger) thumbnail only when that one is at
/// least this many times wider; otherwise from the decoded image.
const CHAIN_MIN_RATIO: u32 = 3;

/// How an image is scaled: the trade between speed and fidelity to the course's output.
///
/// # Examples
///
/// ```
/// use thumbnails::Mode;
///
/// assert_eq!("faithful".parse::<Mode>()?, Mode::Faithful);
/// assert_eq!(Mode::default(), Mode::Fast);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Decode a JPEG once at a reduced DCT scale where the target allows, resize with SIMD
    /// Lanczos3 (`fast_image_resize`), and make each smaller size from the previous one where
    /// it is at least three times wider. Close to `faithful` (PSNR well above 30 dB at 200 px).
    #[default]
    Fast,
    /// The course's method: decode in full, Lanczos3 from the full image to each width. The
    /// convolution is `fast_image_resize`'s, which follows Pillow's own resampling code, only
    /// vectorised.
    Faithful,
}

impl Mode {
    /// The mode's name, as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Fast => "fast",
            Mode::Faithful => "faithful",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "fast" => Ok(Mode::Fast),
            "faithful" => Ok(Mode::Faithful),
            other => Err(format!(
                "unknown mode `{other}` (expected fast or faithful)"
            )),
        }
    }
}

/// What the resize step is told besides the image: mode, JPEG quality and the pixel limit.
///
/// # Examples
///
/// ```
/// use thumbnails::{Mode, ResizeOptions};
///
/// let options = ResizeOptions { mode: Mode::Faithful, ..ResizeOptions::default() };
/// assert_eq!(options.quality, 75);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResizeOptions {
    /// Fast or faithful scaling.
    pub mode: Mode,
    /// JPEG quality, 1 to 100.
    pub quality: u8,
    /// Images declaring more pixels than this (width × height, read from the header) are
    /// refused before decoding: the decompression-bomb guard.
    pub max_pixels: u64,
}

impl Default for ResizeOptions {
    fn default() -> ResizeOptions {
        ResizeOptions {
            mode: Mode::Fast,
            quality: DEFAULT_QUALITY,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// Why one image could not be turned into thumbnails.
///
/// It is serde, so it travels back from a worker process as the task's result.
///
/// # Examples
///
/// ```
/// use thumbnails::{render_thumbnails, ResizeError, ResizeOptions};
///
/// let err = render_thumbnails(b"<html>not found</html>", &[64], &ResizeOptions::default())
///     .unwrap_err();
/// assert!(matches!(err, ResizeError::NotAnImage { .. }));
/// assert!(err.to_string().starts_with("not an image"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum ResizeError {
    /// The bytes are not an image in any format we know.
    #[error("not an image: {detail}")]
    NotAnImage {
        /// What the data looks like instead.
        detail: String,
    },
    /// An image format (or a feature of one) not read here: HEIC, AVIF, JPEG XL, … (JPEG, PNG,
    /// WebP, GIF, TIFF and BMP are read). `format` names it.
    #[error("unsupported image format: {format}")]
    Unsupported {
        /// The format or feature.
        format: String,
    },
    /// The image declares more pixels than the limit: a possible decompression bomb.
    #[error(
        "the image declares {width}x{height} pixels ({:.1} megapixels), more than the limit of \
         {:.1} megapixels; refused before decoding (raise the limit with --max-pixels)",
        (*.width as f64) * (*.height as f64) / 1e6,
        *.limit as f64 / 1e6
    )]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit in force.
        limit: u64,
    },
    /// The image is damaged: truncated, or its data does not decode.
    #[error("corrupt or truncated {format}: {reason}")]
    Corrupt {
        /// The format it claims to be.
        format: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// The source file could not be read.
    #[error("could not read {}: {reason}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's complaint.
        reason: String,
    },
    /// A thumbnail could not be written because the disk, the quota or the file size limit
    /// is full; nothing of this image was left behind.
    #[error("could not write {}: {reason}", .path.display())]
    DiskFull {
        /// The thumbnail that failed.
        path: PathBuf,
        /// The operating system's complaint, in words.
        reason: String,
    },
    /// A thumbnail could not be written; nothing of this image was left behind, and no file
    /// that was there before was lost.
    #[error("could not write {}: {reason}", .path.display())]
    Write {
        /// The thumbnail that failed.
        path: PathBuf,
        /// The operating system's complaint, in words.
        reason: String,
    },
    /// The job itself is unusable (an unsafe stem, no sizes, a zero width).
    #[error("invalid resize job: {reason}")]
    InvalidJob {
        /// What is wrong.
        reason: String,
    },
}

impl ResizeError {
    /// The kind of failure, for programs (the JSON report's `kind`).
    ///
    /// ```
    /// use thumbnails::{FailureKind, ResizeError};
    ///
    /// let err = ResizeError::Unsupported { format: "HEIC".into() };
    /// assert_eq!(err.kind(), FailureKind::UnsupportedFormat);
    /// ```
    pub fn kind(&self) -> FailureKind {
        match self {
            ResizeError::NotAnImage { .. } => FailureKind::NotAnImage,
            ResizeError::Unsupported { .. } => FailureKind::UnsupportedFormat,
            ResizeError::TooManyPixels { .. } => FailureKind::TooManyPixels,
            ResizeError::Corrupt { .. } => FailureKind::Corrupt,
            ResizeError::Read { .. } | ResizeError::Write { .. } => FailureKind::Io,
            ResizeError::DiskFull { .. } => FailureKind::DiskFull,
            ResizeError::InvalidJob { .. } => FailureKind::InvalidJob,
        }
    }
}

/// The format a thumbnail is written in: JPEG, or PNG when the source has real transparency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Baseline JPEG at the configured quality.
    Jpeg,
    /// PNG, for sources with an alpha channel that is actually used.
    Png,
}

impl OutputFormat {
    /// The file extension, without the dot.
    ///
    /// ```
    /// assert_eq!(thumbnails::OutputFormat::Jpeg.extension(), "jpg");
    /// ```
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
        }
    }
}

/// One thumbnail, encoded, in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedThumbnail {
    /// The width that was asked for (it names the file).
    pub requested_width: u32,
    /// The actual width: the requested one, or the source's if that is narrower (sources are
    /// never enlarged).
    pub width: u32,
    /// `floor(source_height × width / source_width)`, at least 1.
    pub height: u32,
    /// JPEG or PNG.
    pub format: OutputFormat,
    /// The encoded file.
    pub data: Vec<u8>,
}

/// What [`render_thumbnails`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The source's size as displayed (after EXIF orientation).
    pub source_width: u32,
    /// See `source_width`.
    pub source_height: u32,
    /// The size the source was decoded at (smaller than the source in fast mode for JPEGs).
    pub decoded_width: u32,
    /// See `decoded_width`.
    pub decoded_height: u32,
    /// One per requested width, in the order asked.
    pub thumbnails: Vec<EncodedThumbnail>,
    /// What the user should know although the thumbnails were made (an unusable colour
    /// profile: colours as stored).
    pub warnings: Vec<String>,
}

/// A resize job: which file, where to, which widths, how. The argument of [`resize_image`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResizeJob {
    /// The image file to read (a download, or the user's own file).
    pub input: PathBuf,
    /// The directory the thumbnails go to.
    pub out_dir: PathBuf,
    /// The file stem: thumbnails are `STEM_WIDTH.EXT`. Must be a safe name
    /// ([`sanitize_stem`](crate::sanitize_stem) makes one).
    pub stem: String,
    /// The widths, any order.
    pub sizes: Vec<u32>,
    /// Mode, quality, pixel limit.
    pub options: ResizeOptions,
    /// What to do with a thumbnail already there (default: keep it).
    #[serde(default)]
    pub existing: Existing,
    /// Where the temporary files go (on the file system of `out_dir`; default: `out_dir`
    /// itself, as hidden files).
    #[serde(default)]
    pub work_dir: Option<PathBuf>,
}

/// One thumbnail written to disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// The width asked for.
    pub requested_width: u32,
    /// Actual width.
    pub width: u32,
    /// Actual height.
    pub height: u32,
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What [`resize_image`] returns for one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resized {
    /// The source file's size in bytes.
    pub input_bytes: u64,
    /// Source size as displayed (after EXIF orientation).
    pub source_width: u32,
    /// See `source_width`.
    pub source_height: u32,
    /// The size it was decoded at.
    pub decoded_width: u32,
    /// See `decoded_width`.
    pub decoded_height: u32,
    /// One per width, in the order asked.
    pub thumbnails: Vec<Thumbnail>,
    /// Thumbnails that were already there and were kept ([`Existing::Skip`]).
    #[serde(default)]
    pub kept: Vec<PathBuf>,
    /// What the user should know although the thumbnails were made.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The resize step as a registered flotilla task: read `job.input`, write one thumbnail per
/// width into `job.out_dir`, all or nothing.
///
/// Arguments and result are serde, so it runs unchanged on a thread pool, a process pool or
/// any other [`flotilla::Executor`]. The worker reads the file itself, so only a path crosses
/// the process boundary, not the image.
///
/// # Examples
///
/// ```
/// use flotilla::{Executor, ThreadPoolExecutor};
/// use thumbnails::{resize_image, Existing, ResizeJob, ResizeOptions};
///
/// let dir = tempfile::tempdir()?;
/// let input = dir.path().join("red.png");
/// image::RgbImage::from_pixel(300, 200, image::Rgb([200, 0, 0])).save(&input)?;
/// let job = ResizeJob {
///     input,
///     out_dir: dir.path().to_owned(),
///     stem: "red".into(),
///     sizes: vec![100, 30],
///     options: ResizeOptions::default(),
///     existing: Existing::Skip,
///     work_dir: None,
/// };
/// let pool = ThreadPoolExecutor::new();
/// let resized = pool.submit(resize_image, job)?.result()??;
/// assert_eq!((resized.thumbnails[0].width, resized.thumbnails[0].height), (100, 66));
/// assert!(dir.path().join("red_30.jpg").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[flotilla::task]
pub fn resize_image(job: ResizeJob) -> Result<Resized, ResizeError> {
    resize_file(&job)
}

/// [`resize_image`] on the calling thread: reads the file, renders, writes atomically.
///
/// Each thumbnail is written to a hidden temporary file in `out_dir` and renamed into place only
/// once every size of the image has been written, so a failure (a full disk, a file-size
/// limit) leaves neither a partial file nor a partial set.
///
/// # Errors
///
/// Any [`ResizeError`]; on error nothing new is left in `out_dir`.
///
/// # Examples
///
/// See [`resize_image`].
pub fn resize_file(job: &ResizeJob) -> Result<Resized, ResizeError> {
    if !is_safe_stem(&job.stem) {
        return Err(ResizeError::InvalidJob {
            reason: format!("unsafe output stem {:?}", job.stem),
        });
    }
    let bytes = fs::read(&job.input).map_err(|err| ResizeError::Read {
        path: job.input.clone(),
        reason: io_reason(&err),
    })?;
    let input_bytes = bytes.len() as u64;
    let rendered = render_thumbnails(&bytes, &job.sizes, &job.options)?;
    drop(bytes);
    let temp_dir = job.work_dir.as_deref().unwrap_or(&job.out_dir);
    let written = write_thumbnails(
        &job.out_dir,
        temp_dir,
        &job.stem,
        &rendered.thumbnails,
        job.existing,
    )?;
    Ok(Resized {
        input_bytes,
        source_width: rendered.source_width,
        source_height: rendered.source_height,
        decoded_width: rendered.decoded_width,
        decoded_height: rendered.decoded_height,
        thumbnails: written.thumbnails,
        kept: written.kept,
        warnings: rendered.warnings,
    })
}

/// The size of a thumbnail `width` wide of a `source_width`×`source_height` image: the course's
/// `floor(h × w_new / w_old)`, never enlarging and never 0.
///
/// # Examples
///
/// ```
/// use thumbnails::thumbnail_size;
///
/// assert_eq!(thumbnail_size(2560, 1600, 200), (200, 125));
/// assert_eq!(thumbnail_size(1365, 1074, 64), (64, 50)); // 50.36 → 50
/// assert_eq!(thumbnail_size(100, 80, 200), (100, 80));  // never enlarged
/// assert_eq!(thumbnail_size(5000, 10, 32), (32, 1));    // never 0
/// ```
pub fn thumbnail_size(source_width: u32, source_height: u32, width: u32) -> (u32, u32) {
    let width = width.min(source_width).max(1);
    let height = u64::from(source_height) * u64::from(width) / u64::from(source_width.max(1));
    (width, u32::try_from(height).unwrap_or(u32::MAX).max(1))
}

/// Decodes `bytes` (JPEG, PNG, WebP, GIF, TIFF or BMP), scales to each of `sizes`, converts to
/// sRGB (or sRGB greyscale) and encodes the results.
///
/// EXIF orientation is applied first, so widths are those of the image as displayed.
///
/// # Errors
///
/// [`ResizeError::NotAnImage`], [`ResizeError::Unsupported`],
/// [`ResizeError::TooManyPixels`] (checked from the header, before decoding),
/// [`ResizeError::Corrupt`], [`ResizeError::InvalidJob`] for empty or zero sizes.
///
/// # Examples
///
/// ```
/// use std::io::Cursor;
/// use thumbnails::{render_thumbnails, Mode, ResizeOptions};
///
/// let mut png = Vec::new();
/// image::RgbImage::from_pixel(640, 480, image::Rgb([0, 90, 200]))
///     .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)?;
/// for mode in [Mode::Fast, Mode::Faithful] {
///     let options = ResizeOptions { mode, ..ResizeOptions::default() };
///     let rendered = render_thumbnails(&png, &[200, 64, 32], &options)?;
///     let sizes: Vec<_> = rendered.thumbnails.iter().map(|t| (t.width, t.height)).collect();
///     assert_eq!(sizes, [(200, 150), (64, 48), (32, 24)]);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_thumbnails(
    bytes: &[u8],
    sizes: &[u32],
    options: &ResizeOptions,
) -> Result<Rendered, ResizeError> {
    if sizes.is_empty() || sizes.contains(&0) {
        return Err(ResizeError::InvalidJob {
            reason: "widths must be given and greater than 0".into(),
        });
    }
    let format = sniff(bytes)?;
    // Decoders and colour conversion are third-party code fed hostile bytes: a panic in one is
    // a corrupt image, not a crash of the task.
    catch_unwind(AssertUnwindSafe(|| render(bytes, format, sizes, options))).unwrap_or_else(
        |panic| {
            Err(ResizeError::Corrupt {
                format: format_name(format).into(),
                reason: panic_message(&panic),
            })
        },
    )
}

fn render(
    bytes: &[u8],
    format: crate::decode::Format,
    sizes: &[u32],
    options: &ResizeOptions,
) -> Result<Rendered, ResizeError> {
    let largest = sizes.iter().copied().max().unwrap_or(1);
    let Decoded {
        image,
        profile,
        source_width,
        source_height,
        mut warnings,
    } = decode(bytes, format, largest, options)?;
    let output = if image.color().has_alpha() {
        OutputFormat::Png
    } else {
        OutputFormat::Jpeg
    };
    let (decoded_width, decoded_height) = (image.width(), image.height());
    let channels = usize::from(image.color().channel_count());
    // The profile is applied to each thumbnail (few pixels) rather than to the decoded image.
    let to_srgb = profile.and_then(|icc| match ToSrgb::new(&icc, channels) {
        Ok(to_srgb) => Some(to_srgb),
        Err(why) => {
            warnings.push(format!("{why}; colours are as stored"));
            None
        }
    });

    // Largest first, so that fast mode can chain.
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut made: Vec<Option<EncodedThumbnail>> = vec![None; sizes.len()];
    let mut previous: Option<DynamicImage> = None;
    let mut resizer = fir::Resizer::new();
    for i in order {
        let (width, height) = thumbnail_size(source_width, source_height, sizes[i]);
        let scaled = match options.mode {
            Mode::Faithful => fast_resize(&mut resizer, &image, width, height)?,
            Mode::Fast => {
                let from = match &previous {
                    Some(prev) if prev.width() >= CHAIN_MIN_RATIO.saturating_mul(width) => prev,
                    _ => &image,
                };
                fast_resize(&mut resizer, from, width, height)?
            }
        };
        let data = match &to_srgb {
            Some(to_srgb) => {
                let mut converted = scaled.clone();
                to_srgb
                    .apply(&mut converted)
                    .map_err(|reason| ResizeError::Corrupt {
                        format: format_name(format).into(),
                        reason,
                    })?;
                encode(&converted, output, options.quality)?
            }
            None => encode(&scaled, output, options.quality)?,
        };
        made[i] = Some(EncodedThumbnail {
            requested_width: sizes[i],
            width,
            height,
            format: output,
            data,
        });
        previous = Some(scaled);
    }
    Ok(Rendered {
        source_width,
        source_height,
        decoded_width,
        decoded_height,
        warnings,
        thumbnails: made.into_iter().flatten().collect(),
    })
}

fn fast_resize(
    resizer: &mut fir::Resizer,
    from: &DynamicImage,
    width: u32,
    height: u32,
) -> Result<DynamicImage, ResizeError> {
    let pixel_type = match from.color().channel_count() {
        1 => fir::PixelType::U8,
        3 => fir::PixelType::U8x3,
        _ => fir::PixelType::U8x4,
    };
    let internal = |err: &dyn std::fmt::Display| ResizeError::Corrupt {
        format: "image".into(),
        reason: format!("resizing failed: {err}"),
    };
    let src = fir::images::ImageRef::new(from.width(), from.height(), from.as_bytes(), pixel_type)
        .map_err(|err| internal(&err))?;
    let mut dst = fir::images::Image::new(width, height, pixel_type);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3));
    resizer
        .resize(&src, &mut dst, &options)
        .map_err(|err| internal(&err))?;
    let buffer = dst.into_vec();
    let image = match pixel_type {
        fir::PixelType::U8 => {
            image::GrayImage::from_raw(width, height, buffer).map(DynamicImage::from)
        }
        fir::PixelType::U8x3 => RgbImage::from_raw(width, height, buffer).map(DynamicImage::from),
        _ => image::RgbaImage::from_raw(width, height, buffer).map(DynamicImage::from),
    };
    image.ok_or_else(|| internal(&"the resizer returned a short buffer"))
}

fn encode(image: &DynamicImage, format: OutputFormat, quality: u8) -> Result<Vec<u8>, ResizeError> {
    let mut out = Vec::new();
    let result = match format {
        OutputFormat::Jpeg => {
            let encoder = JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
            if let DynamicImage::ImageLuma8(gray) = image {
                encoder.write_image(
                    gray.as_raw(),
                    gray.width(),
                    gray.height(),
                    image::ExtendedColorType::L8,
                )
            } else {
                let rgb = image.to_rgb8();
                encoder.write_image(
                    rgb.as_raw(),
                    rgb.width(),
                    rgb.height(),
                    image::ExtendedColorType::Rgb8,
                )
            }
        }
        OutputFormat::Png => {
            let rgba = image.to_rgba8();
            PngEncoder::new(&mut out).write_image(
                rgba.as_raw(),
                rgba.width(),
                rgba.height(),
                image::ExtendedColorType::Rgba8,
            )
        }
    };
    result.map_err(|err| ResizeError::Corrupt {
        format: "image".into(),
        reason: format!("encoding the thumbnail failed: {err}"),
    })?;
    Ok(out)
}

/// Whether an I/O error means the disk (or the file size limit, or the quota) is full.
pub(crate) fn is_disk_full(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge | io::ErrorKind::QuotaExceeded
    )
}

/// The error for a failed write of `path`: [`ResizeError::DiskFull`] or [`ResizeError::Write`].
pub(crate) fn io_error(path: &Path, err: &io::Error) -> ResizeError {
    let path = path.to_owned();
    let reason = io_reason(err);
    if is_disk_full(err) {
        ResizeError::DiskFull { path, reason }
    } else {
        ResizeError::Write { path, reason }
    }
}

/// An I/O error in words, naming the usual culprits plainly, once (not the OS's text twice).
pub(crate) fn io_reason(err: &io::Error) -> String {
    let plain = match err.kind() {
        io::ErrorKind::StorageFull => Some("the disk is full"),
        io::ErrorKind::FileTooLarge => Some("the file size limit was reached"),
        io::ErrorKind::QuotaExceeded => Some("the disk quota is exceeded"),
        io::ErrorKind::ReadOnlyFilesystem => Some("the file system is read-only"),
        _ => None,
    };
    // The plain words alone: the full error may carry a temporary file's path.
    plain.map_or_else(|| err.to_string(), str::to_owned)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    format!("the decoder failed ({message})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_follow_the_course() {
        // int(h * w_new / w_old) for the corpus' shapes.
        assert_eq!(thumbnail_size(4352, 2448, 200), (200, 112));
        assert_eq!(thumbnail_size(2560, 3837, 200), (200, 299));
        assert_eq!(thumbnail_size(2560, 3837, 32), (32, 47));
        assert_eq!(thumbnail_size(1, 1, 200), (1, 1));
    }

    #[test]
    fn bomb_refused_from_the_header() {
        // A PNG declaring 30000 x 30000, with no pixel data at all.
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&30000u32.to_be_bytes());
        ihdr.extend_from_slice(&30000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // An IDAT holding an empty zlib stream, then IEND: the header is all a decoder reads
        // before the limit refuses the image.
        for (kind, data) in [
            (
                &b"IDAT"[..],
                &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0, 0, 0, 1][..],
            ),
            (&b"IEND"[..], &[][..]),
        ] {
            let mut chunk = kind.to_vec();
            chunk.extend_from_slice(data);
            png.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            png.extend_from_slice(&chunk);
            png.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        let err = render_thumbnails(&png, &[32], &ResizeOptions::default()).unwrap_err();
        assert!(
            matches!(err, ResizeError::TooManyPixels { width: 30000, .. }),
            "{err}"
        );
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
