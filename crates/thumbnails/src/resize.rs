//! The resize step: decode, scale to each width, encode, write atomically.
//!
//! [`render_thumbnails`] works in memory; [`resize_file`] reads a file and writes the
//! thumbnails; [`resize_image`] is the same as a registered flotilla task, so that any executor
//! (threads, processes, one day a cluster) can run it from a serde [`ResizeJob`].

use std::fs;
use std::io::{self, Cursor, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use fast_image_resize as fir;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, RgbImage};
use serde::{Deserialize, Serialize};

use crate::names::is_safe_stem;

/// The default `--max-pixels`: images declaring more are refused before any decoding.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// The default JPEG quality, as Pillow's (and so the course's).
pub const DEFAULT_QUALITY: u8 = 75;

/// In fast mode, a JPEG is decoded at the smallest DCT scale (1/8, 1/4, 1/2) that leaves at least
/// this many times the largest target width, so the Lanczos filter still has real pixels to
/// work with.
const SHRINK_MARGIN: u32 = 2;

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
    /// An image format we do not read (only JPEG, PNG, WebP and GIF are read).
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
    /// A thumbnail could not be written; nothing of this image was left behind.
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
/// use thumbnails::{resize_image, ResizeJob, ResizeOptions};
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
/// };
/// let pool = ThreadPoolExecutor::new();
/// let resized = pool.submit(resize_image, job)?.result(None)??;
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
    let thumbnails = write_all_or_nothing(&job.out_dir, &job.stem, &rendered.thumbnails)?;
    Ok(Resized {
        input_bytes,
        source_width: rendered.source_width,
        source_height: rendered.source_height,
        decoded_width: rendered.decoded_width,
        decoded_height: rendered.decoded_height,
        thumbnails,
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

/// Decodes `bytes` (JPEG, PNG, WebP or GIF), scales to each of `sizes` and encodes the results.
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
    let largest = sizes.iter().copied().max().unwrap_or(1);
    // Decoders are third-party code fed hostile bytes: a panic in one is a corrupt image, not
    // a crash of the task.
    let decoded = catch_unwind(AssertUnwindSafe(|| decode(bytes, format, largest, options)))
        .unwrap_or_else(|panic| {
            Err(ResizeError::Corrupt {
                format: format_name(format).into(),
                reason: panic_message(&panic),
            })
        })?;
    let Decoded {
        image,
        source_width,
        source_height,
    } = decoded;
    let image = drop_opaque_alpha(image);
    let output = if image.color().has_alpha() {
        OutputFormat::Png
    } else {
        OutputFormat::Jpeg
    };
    let (decoded_width, decoded_height) = (image.width(), image.height());

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
        let data = encode(&scaled, output, options.quality)?;
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
        thumbnails: made.into_iter().flatten().collect(),
    })
}

struct Decoded {
    /// RGB8 or RGBA8, oriented.
    image: DynamicImage,
    /// The full image's size, oriented.
    source_width: u32,
    source_height: u32,
}

/// The format, from the first bytes (never from a name or a Content-Type).
fn sniff(bytes: &[u8]) -> Result<ImageFormat, ResizeError> {
    match image::guess_format(bytes) {
        Ok(
            format @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif),
        ) => Ok(format),
        Ok(other) => Err(ResizeError::Unsupported {
            format: format!("{other:?}"),
        }),
        Err(_) => Err(ResizeError::NotAnImage {
            detail: describe_bytes(bytes),
        }),
    }
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        _ => "image",
    }
}

/// A short description of what some non-image bytes look like.
fn describe_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the data is empty".into();
    }
    let head = &bytes[..bytes.len().min(24)];
    let printable = head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if printable {
        let text: String = String::from_utf8_lossy(head)
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        format!(
            "{} bytes of text starting {:?}",
            bytes.len(),
            text.trim_end()
        )
    } else {
        let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!(
            "{} bytes starting {} (no known image signature)",
            bytes.len(),
            hex.join(" ")
        )
    }
}

fn check_pixels(width: u32, height: u32, limit: u64) -> Result<(), ResizeError> {
    if u64::from(width) * u64::from(height) > limit {
        return Err(ResizeError::TooManyPixels {
            width,
            height,
            limit,
        });
    }
    if width == 0 || height == 0 {
        return Err(ResizeError::Corrupt {
            format: "image".into(),
            reason: format!("it declares a size of {width}x{height}"),
        });
    }
    Ok(())
}

fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn oriented(width: u32, height: u32, orientation: Orientation) -> (u32, u32) {
    if swaps_axes(orientation) {
        (height, width)
    } else {
        (width, height)
    }
}

fn decode(
    bytes: &[u8],
    format: ImageFormat,
    largest: u32,
    options: &ResizeOptions,
) -> Result<Decoded, ResizeError> {
    match (format, options.mode) {
        (ImageFormat::Jpeg, Mode::Fast) => decode_jpeg_scaled(bytes, largest, options.max_pixels),
        (ImageFormat::Jpeg, Mode::Faithful) => decode_jpeg_full(bytes, options.max_pixels),
        _ => decode_other(bytes, format, options.max_pixels),
    }
}

fn corrupt(format: &str, reason: impl std::fmt::Display) -> ResizeError {
    ResizeError::Corrupt {
        format: format.into(),
        reason: reason.to_string(),
    }
}

fn jpeg_error(err: jpeg_decoder::Error) -> ResizeError {
    match err {
        jpeg_decoder::Error::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => corrupt(
            "JPEG",
            "the file ends before the image data does (truncated)",
        ),
        jpeg_decoder::Error::Unsupported(feature) => ResizeError::Unsupported {
            format: format!("JPEG with {feature:?}"),
        },
        other => corrupt("JPEG", other),
    }
}

/// Fast mode: decode a JPEG at the smallest DCT scale that keeps [`SHRINK_MARGIN`] × `largest`
/// pixels across the displayed width.
fn decode_jpeg_scaled(bytes: &[u8], largest: u32, limit: u64) -> Result<Decoded, ResizeError> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(jpeg_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| corrupt("JPEG", "no frame header"))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_pixels(width, height, limit)?;
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let (shown_width, _) = oriented(width, height, orientation);
    let need = (largest.saturating_mul(SHRINK_MARGIN)).min(shown_width);
    let across = if swaps_axes(orientation) {
        height
    } else {
        width
    };
    let denominator = [8u32, 4, 2, 1]
        .into_iter()
        .find(|d| across.div_ceil(*d) >= need)
        .unwrap_or(1);
    if denominator > 1 {
        let request = |len: u32| u16::try_from(len.div_ceil(denominator)).unwrap_or(u16::MAX);
        decoder
            .scale(request(width), request(height))
            .map_err(jpeg_error)?;
    }
    let pixels = decoder.decode().map_err(jpeg_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| corrupt("JPEG", "no frame header"))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            RgbImage::from_raw(w, h, pixels).map(DynamicImage::from)
        }
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(w, h, pixels)
            .map(|gray| DynamicImage::from(DynamicImage::ImageLuma8(gray).to_rgb8())),
        jpeg_decoder::PixelFormat::CMYK32 => {
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|cmyk| {
                    let k = u16::from(cmyk[3]);
                    [0, 1, 2].map(|c| ((u16::from(cmyk[c]) * k) / 255) as u8)
                })
                .collect();
            RgbImage::from_raw(w, h, rgb).map(DynamicImage::from)
        }
        jpeg_decoder::PixelFormat::L16 => {
            return Err(ResizeError::Unsupported {
                format: "16-bit greyscale JPEG".into(),
            });
        }
    }
    .ok_or_else(|| corrupt("JPEG", "the decoder returned too few pixels"))?;
    let mut image = image;
    image.apply_orientation(orientation);
    let (source_width, source_height) = oriented(width, height, orientation);
    Ok(Decoded {
        image,
        source_width,
        source_height,
    })
}

/// Faithful mode: a full, strict decode (zune-jpeg in strict mode refuses truncated data).
fn decode_jpeg_full(bytes: &[u8], limit: u64) -> Result<Decoded, ResizeError> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;

    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder
        .decode_headers()
        .map_err(|err| corrupt("JPEG", format!("{err:?}")))?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| corrupt("JPEG", "no frame header"))?;
    let (width, height) = (
        u32::try_from(width).unwrap_or(u32::MAX),
        u32::try_from(height).unwrap_or(u32::MAX),
    );
    check_pixels(width, height, limit)?;
    let orientation = decoder
        .exif()
        .and_then(|exif| Orientation::from_exif_chunk(exif))
        .unwrap_or(Orientation::NoTransforms);
    let pixels = decoder.decode().map_err(|err| match err {
        zune_jpeg::errors::DecodeErrors::ExhaustedData => corrupt(
            "JPEG",
            "the file ends before the image data does (truncated)",
        ),
        other => corrupt("JPEG", format!("{other:?}")),
    })?;
    let mut image = match decoder.output_colorspace() {
        Some(ColorSpace::RGB) => RgbImage::from_raw(width, height, pixels).map(DynamicImage::from),
        Some(ColorSpace::Luma) => image::GrayImage::from_raw(width, height, pixels)
            .map(|gray| DynamicImage::from(DynamicImage::ImageLuma8(gray).to_rgb8())),
        other => {
            return Err(ResizeError::Unsupported {
                format: format!("JPEG decoded to {other:?}"),
            });
        }
    }
    .ok_or_else(|| corrupt("JPEG", "the decoder returned too few pixels"))?;
    image.apply_orientation(orientation);
    let (source_width, source_height) = oriented(width, height, orientation);
    Ok(Decoded {
        image,
        source_width,
        source_height,
    })
}

/// PNG, WebP and GIF (first frame), through `image`, with the pixel limit checked on the header
/// and an allocation limit as a second guard.
fn decode_other(bytes: &[u8], format: ImageFormat, limit: u64) -> Result<Decoded, ResizeError> {
    let name = format_name(format);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    // 16-bit RGBA is the widest layout a decoder produces: 8 bytes a pixel.
    limits.max_alloc = Some(limit.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|err| image_error(name, err))?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, limit)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|err| image_error(name, err))?;
    image.apply_orientation(orientation);
    let image = if image.color().has_alpha() {
        DynamicImage::from(image.to_rgba8())
    } else {
        DynamicImage::from(image.to_rgb8())
    };
    Ok(Decoded {
        source_width: image.width(),
        source_height: image.height(),
        image,
    })
}

fn image_error(format: &str, err: image::ImageError) -> ResizeError {
    match err {
        image::ImageError::Unsupported(what) => ResizeError::Unsupported {
            format: what.to_string(),
        },
        image::ImageError::Limits(what) => corrupt(
            format,
            format!("{what} (the decoder needed more memory than the pixel limit allows)"),
        ),
        image::ImageError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => corrupt(
            format,
            "the file ends before the image data does (truncated)",
        ),
        other => corrupt(format, other),
    }
}

/// RGBA whose alpha is 255 everywhere becomes RGB, so it is written as JPEG.
fn drop_opaque_alpha(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageRgba8(rgba) if rgba.pixels().all(|p| p.0[3] == 255) => {
            DynamicImage::from(DynamicImage::ImageRgba8(rgba).to_rgb8())
        }
        other => other,
    }
}

/// Lanczos3 with `fast_image_resize` (SIMD where the CPU has it).
fn fast_resize(
    resizer: &mut fir::Resizer,
    from: &DynamicImage,
    width: u32,
    height: u32,
) -> Result<DynamicImage, ResizeError> {
    let pixel_type = if from.color().has_alpha() {
        fir::PixelType::U8x4
    } else {
        fir::PixelType::U8x3
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
    let image = if pixel_type == fir::PixelType::U8x4 {
        image::RgbaImage::from_raw(width, height, buffer).map(DynamicImage::from)
    } else {
        RgbImage::from_raw(width, height, buffer).map(DynamicImage::from)
    };
    image.ok_or_else(|| internal(&"the resizer returned a short buffer"))
}

fn encode(image: &DynamicImage, format: OutputFormat, quality: u8) -> Result<Vec<u8>, ResizeError> {
    let mut out = Vec::new();
    let result = match format {
        OutputFormat::Jpeg => {
            let rgb = image.to_rgb8();
            JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100)).write_image(
                rgb.as_raw(),
                rgb.width(),
                rgb.height(),
                image::ExtendedColorType::Rgb8,
            )
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

/// Writes every thumbnail to a temporary file, then renames them all into place; on any error
/// removes whatever it wrote.
fn write_all_or_nothing(
    out_dir: &Path,
    stem: &str,
    thumbnails: &[EncodedThumbnail],
) -> Result<Vec<Thumbnail>, ResizeError> {
    let mut pending = Vec::with_capacity(thumbnails.len());
    for thumb in thumbnails {
        let name = format!(
            "{stem}_{}.{}",
            thumb.requested_width,
            thumb.format.extension()
        );
        let path = out_dir.join(&name);
        let write_error = |err: io::Error| ResizeError::Write {
            path: path.clone(),
            reason: io_reason(&err),
        };
        let mut file = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".part")
            .permissions(file_permissions())
            .tempfile_in(out_dir)
            .map_err(write_error)?;
        file.write_all(&thumb.data).map_err(write_error)?;
        file.flush().map_err(write_error)?;
        pending.push((file, path, thumb));
    }
    let mut done: Vec<Thumbnail> = Vec::with_capacity(pending.len());
    for (file, path, thumb) in pending {
        if let Err(err) = file.persist(&path) {
            for written in &done {
                let _ = fs::remove_file(&written.path);
            }
            return Err(ResizeError::Write {
                path,
                reason: io_reason(&err.error),
            });
        }
        done.push(Thumbnail {
            requested_width: thumb.requested_width,
            width: thumb.width,
            height: thumb.height,
            path,
            bytes: thumb.data.len() as u64,
        });
    }
    Ok(done)
}

/// Thumbnails get the permissions of any new file (`0666` less the umask), not the `0600` of a
/// temporary file. (The crate is Linux-only, like flotilla's process pool.)
fn file_permissions() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o666)
}

/// An I/O error in words, naming the usual culprits plainly.
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
    fn bytes_are_described() {
        assert_eq!(describe_bytes(b""), "the data is empty");
        assert!(describe_bytes(b"<!doctype html>").contains("text starting \"<!doctype html>\""));
        assert!(describe_bytes(&[0, 1, 2, 250]).contains("00 01 02 fa"));
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
