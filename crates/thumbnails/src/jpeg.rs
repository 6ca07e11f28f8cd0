//! JPEG decoding with libjpeg-turbo, the decoder Pillow and libvips use, through the small C
//! face in `csrc/jpeg.c` (which turns libjpeg's `longjmp` errors into return values).
//!
//! Both modes use it: faithful decodes in full, fast at a DCT scale (1/2, 1/4, 1/8). What it
//! adds to a plain decode:
//!
//! - **Damage is an error.** libjpeg "recovers" from a truncated or corrupt scan by filling the
//!   rest with grey and emitting a warning; any warning here fails the image.
//! - **DC-only progressive decoding.** At 1/8 scale each output pixel is its 8×8 block's DC
//!   coefficient, so for a progressive file the AC scans (most of the file) are not needed at
//!   all: the decoder stops after the last DC scan, and the rest of the file is only checked
//!   for its structure (it must reach its end-of-image marker), not entropy-decoded. Without
//!   chroma subsampling the pixels are those of a full decode at 1/8; with 4:2:0 chroma,
//!   libjpeg would make the 1/8 chroma from a 2×2 IDCT of each chroma block, here it is the
//!   block's DC (on the 17 progressive photos of the benchmark corpus: identical or at least
//!   47 dB PSNR from the full decode at 1/8).
//! - Colour: the file's colour space (greyscale, YCbCr/RGB, CMYK, YCCK), the Adobe marker
//!   (Photoshop's inverted CMYK), the ICC profile and the EXIF block are reported.

use std::ffi::{CStr, c_char, c_int, c_uint, c_ulong};
use std::ptr::NonNull;

use crate::resize::ResizeError;

/// A progressive file with more scans than this is refused (libjpeg-turbo's own limit for its
/// `TJFLAG_LIMITSCANS`): thousands of tiny scans are a cheap way to burn a worker's CPU.
const MAX_SCANS: c_int = 500;

/// libjpeg's `J_COLOR_SPACE` values used here.
const JCS_GRAYSCALE: c_int = 1;
const JCS_RGB: c_int = 2;
const JCS_YCBCR: c_int = 3;
const JCS_CMYK: c_int = 4;
const JCS_YCCK: c_int = 5;

/// What `csrc/jpeg.c` fills in; the same layout as its `thumbs_info`.
#[repr(C)]
struct Info {
    width: c_uint,
    height: c_uint,
    components: c_int,
    color_space: c_int,
    progressive: c_int,
    arithmetic: c_int,
    adobe: c_int,
    adobe_transform: c_int,
    exif: *const u8,
    exif_len: c_uint,
    icc: *mut u8,
    icc_len: c_uint,
    out_width: c_uint,
    out_height: c_uint,
    out_components: c_int,
    dc_only: c_int,
    consumed: c_ulong,
    warnings: c_int,
    first_warning: c_int,
    /// `JMSG_LENGTH_MAX` is 200.
    message: [c_char; 200],
}

/// The C side's decoder state (opaque).
#[repr(C)]
struct Handle {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn thumbs_jpeg_new(info: *mut Info, max_scans: c_int) -> *mut Handle;
    fn thumbs_jpeg_header(handle: *mut Handle, data: *const u8, len: c_ulong) -> c_int;
    fn thumbs_jpeg_start(
        handle: *mut Handle,
        scale_denom: c_uint,
        out_space: c_int,
        dc_only: c_int,
    ) -> c_int;
    fn thumbs_jpeg_read(handle: *mut Handle, out: *mut u8, stride: c_ulong) -> c_int;
    fn thumbs_jpeg_free(handle: *mut Handle);
    static THUMBS_JWRN_JPEG_EOF: c_int;
}

/// How the file stores its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JpegColor {
    /// One channel.
    Gray,
    /// YCbCr or RGB: decoded to RGB.
    Rgb,
    /// CMYK or YCCK, decoded to CMYK; `inverted` for Adobe files (Photoshop stores 255 for no
    /// ink), which is how every reader tells them apart: an Adobe APP14 marker means inverted.
    Cmyk {
        /// The data are inverted (an Adobe marker was present).
        inverted: bool,
    },
}

/// A JPEG's header, read without decoding the image.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) color: JpegColor,
    pub(crate) exif: Option<Vec<u8>>,
    pub(crate) icc: Option<Vec<u8>>,
}

/// Decoded pixels: 1 byte a pixel for grey, 3 for RGB, 4 for CMYK (0 = no ink).
#[derive(Debug)]
pub(crate) struct Pixels {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) data: Vec<u8>,
    /// Whether the AC scans were skipped.
    pub(crate) dc_only: bool,
}

/// One JPEG being decoded; the C state is freed on drop.
pub(crate) struct Jpeg<'a> {
    handle: NonNull<Handle>,
    /// Boxed so that its address, which the C side keeps, never moves.
    info: Box<Info>,
    data: &'a [u8],
    header: Header,
}

impl<'a> Jpeg<'a> {
    /// Reads the header of `data`.
    pub(crate) fn open(data: &'a [u8]) -> Result<Jpeg<'a>, ResizeError> {
        let len = c_ulong::try_from(data.len()).map_err(|_| corrupt("the file is too large"))?;
        // SAFETY: `Info` is plain data (integers, null pointers and a byte array), for which
        // all zeroes is a valid value.
        let mut info: Box<Info> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `info` is a valid, exclusively owned `Info` that outlives the handle (both
        // live in the returned `Jpeg`, and the box never moves its contents).
        let handle = unsafe { thumbs_jpeg_new(&mut *info, MAX_SCANS) };
        let handle = NonNull::new(handle).ok_or_else(|| corrupt("out of memory"))?;
        let mut jpeg = Jpeg {
            handle,
            info,
            data,
            header: Header {
                width: 0,
                height: 0,
                color: JpegColor::Rgb,
                exif: None,
                icc: None,
            },
        };
        // SAFETY: the handle is live; `data` outlives it (the `'a` borrow in `Jpeg`), and the
        // decoder only reads from it.
        let status = unsafe { thumbs_jpeg_header(jpeg.handle.as_ptr(), data.as_ptr(), len) };
        jpeg.check(status)?;
        jpeg.header = jpeg.read_header()?;
        Ok(jpeg)
    }

    fn read_header(&self) -> Result<Header, ResizeError> {
        let info = &*self.info;
        let color = match info.color_space {
            JCS_GRAYSCALE => JpegColor::Gray,
            JCS_RGB | JCS_YCBCR => JpegColor::Rgb,
            JCS_CMYK | JCS_YCCK => JpegColor::Cmyk {
                inverted: info.adobe != 0,
            },
            other => {
                return Err(ResizeError::Unsupported {
                    format: format!(
                        "JPEG with {} components in colour space {other}",
                        info.components
                    ),
                });
            }
        };
        let exif = (!info.exif.is_null()).then(|| {
            // SAFETY: the C side points `exif` into a marker the decoder saved, `exif_len`
            // bytes long, valid until the handle is freed (it is still live here).
            unsafe { std::slice::from_raw_parts(info.exif, info.exif_len as usize) }.to_vec()
        });
        let icc = (!info.icc.is_null()).then(|| {
            // SAFETY: `icc` is a buffer of `icc_len` bytes that libjpeg allocated and the
            // handle owns until it is freed (it is still live here).
            unsafe { std::slice::from_raw_parts(info.icc, info.icc_len as usize) }.to_vec()
        });
        Ok(Header {
            width: info.width,
            height: info.height,
            color,
            exif,
            icc,
        })
    }

    /// The header.
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// Decodes at `1/scale` (1, 2, 4 or 8); with `dc_only`, a progressive file at 1/8 stops
    /// after its DC scans.
    pub(crate) fn decode(self, scale: u32, dc_only: bool) -> Result<Pixels, ResizeError> {
        let space = match self.header.color {
            JpegColor::Gray => JCS_GRAYSCALE,
            JpegColor::Rgb => JCS_RGB,
            JpegColor::Cmyk { .. } => JCS_CMYK,
        };
        // SAFETY: the handle is live and its header was read; the C side checks the scale.
        let status =
            unsafe { thumbs_jpeg_start(self.handle.as_ptr(), scale, space, c_int::from(dc_only)) };
        self.check(status)?;
        let (width, height) = (self.info.out_width, self.info.out_height);
        let channels = usize::try_from(self.info.out_components).unwrap_or(0);
        if !matches!(channels, 1 | 3 | 4) || width == 0 || height == 0 {
            return Err(corrupt(format!(
                "the decoder gave {width}x{height} with {channels} channels"
            )));
        }
        let stride = width as usize * channels;
        let mut data = vec![0u8; stride * height as usize];
        // SAFETY: `data` holds `height` rows of `stride` bytes, exactly what the decoder writes
        // for the output size it reported; the handle is live.
        let status =
            unsafe { thumbs_jpeg_read(self.handle.as_ptr(), data.as_mut_ptr(), stride as c_ulong) };
        self.check(status)?;
        let dc_only = self.info.dc_only != 0;
        if dc_only {
            let rest = self
                .data
                .get(self.info.consumed as usize..)
                .unwrap_or_default();
            check_structure(rest)?;
        }
        if let JpegColor::Cmyk { inverted: true } = self.header.color {
            for byte in &mut data {
                *byte = 255 - *byte;
            }
        }
        Ok(Pixels {
            width,
            height,
            data,
            dc_only,
        })
    }

    /// An error for a failed call, or for any warning so far.
    fn check(&self, status: c_int) -> Result<(), ResizeError> {
        let info = &*self.info;
        if status == 0 && info.warnings == 0 {
            return Ok(());
        }
        // SAFETY: the C side always leaves a NUL-terminated message (libjpeg's
        // `format_message` and `snprintf` both terminate within `JMSG_LENGTH_MAX`), and the
        // array was zeroed before.
        let message = unsafe { CStr::from_ptr(info.message.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        if status == 0 {
            // SAFETY: a constant defined in the C file, never written.
            let eof = unsafe { THUMBS_JWRN_JPEG_EOF };
            return Err(if info.first_warning == eof {
                corrupt("the file ends before the image data does (truncated)")
            } else {
                corrupt(message)
            });
        }
        if message.starts_with("Unsupported") || message.contains("not supported") {
            Err(ResizeError::Unsupported {
                format: format!("JPEG: {message}"),
            })
        } else {
            Err(corrupt(message))
        }
    }
}

impl Drop for Jpeg<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from `thumbs_jpeg_new` and is freed exactly once, here;
        // `info`, which it points to, is still alive (fields drop after this body).
        unsafe { thumbs_jpeg_free(self.handle.as_ptr()) };
    }
}

impl std::fmt::Debug for Jpeg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jpeg")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

fn corrupt(reason: impl std::fmt::Display) -> ResizeError {
    ResizeError::Corrupt {
        format: "JPEG".into(),
        reason: reason.to_string(),
    }
}

/// Checks that what follows the DC scans is well-formed up to the end-of-image marker:
/// marker segments with their lengths, entropy-coded data between them (where `FF` is always
/// followed by a stuffed `00` or a restart marker). A file cut short fails here, as it would
/// in a full decode; the AC data themselves are not decoded (they cannot change a 1/8 image).
fn check_structure(mut rest: &[u8]) -> Result<(), ResizeError> {
    let truncated = || corrupt("the file ends before the image data does (truncated)");
    loop {
        // Entropy-coded data (or nothing) up to the next marker.
        let Some(at) = memchr_ff(rest) else {
            return Err(truncated());
        };
        let marker = *rest.get(at + 1).ok_or_else(truncated)?;
        if marker == 0xFF {
            // A fill byte: the marker is the next byte that is not FF.
            rest = &rest[at + 1..];
            continue;
        }
        rest = &rest[at + 2..];
        match marker {
            0x00 | 0xD0..=0xD7 => {}
            0xD9 => return Ok(()),
            0xD8 | 0x01 => return Err(corrupt(format!("unexpected marker 0xFF{marker:02X}"))),
            _ => {
                let len = rest.get(..2).ok_or_else(truncated)?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                if len < 2 {
                    return Err(corrupt(format!("a bad length in marker 0xFF{marker:02X}")));
                }
                rest = rest.get(len..).ok_or_else(truncated)?;
            }
        }
    }
}

fn memchr_ff(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(0xFF, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progressive(width: u16, height: u16, sampling: jpeg_encoder::SamplingFactor) -> Vec<u8> {
        let pixels: Vec<u8> = (0..u32::from(width) * u32::from(height) * 3)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 / 4 + (i % 701) as u8 / 3)
            .collect();
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 85);
        encoder.set_progressive(true);
        encoder.set_sampling_factor(sampling);
        encoder
            .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn dc_only_gives_the_pixels_of_a_full_decode_at_one_eighth() {
        use jpeg_encoder::SamplingFactor;
        // Without chroma subsampling every 1/8 pixel is its block's DC: the same pixels.
        let bytes = progressive(640, 480, SamplingFactor::R_4_4_4);
        let full = Jpeg::open(&bytes).unwrap().decode(8, false).unwrap();
        let dc = Jpeg::open(&bytes).unwrap().decode(8, true).unwrap();
        assert!(!full.dc_only);
        assert!(dc.dc_only, "the AC scans were skipped");
        assert_eq!((dc.width, dc.height), (80, 60));
        assert!(dc.data == full.data, "the DC-only pixels differ");
        // With 4:2:0 chroma, libjpeg makes 1/8 chroma from a 2x2 IDCT (three AC
        // coefficients); from the DC alone it is close (noise is the worst case).
        let bytes = progressive(640, 480, SamplingFactor::R_4_2_0);
        let full = Jpeg::open(&bytes).unwrap().decode(8, false).unwrap();
        let dc = Jpeg::open(&bytes).unwrap().decode(8, true).unwrap();
        assert!(dc.dc_only);
        let mse = dc
            .data
            .iter()
            .zip(&full.data)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum::<f64>()
            / dc.data.len() as f64;
        let psnr = 10.0 * (255.0f64 * 255.0 / mse).log10();
        assert!(psnr > 30.0, "{psnr:.1} dB");
        // At 1/4 every scan is needed: no shortcut.
        assert!(!Jpeg::open(&bytes).unwrap().decode(4, true).unwrap().dc_only);
    }

    #[test]
    fn a_file_cut_in_its_ac_scans_is_truncated_even_dc_only() {
        let bytes = progressive(640, 480, jpeg_encoder::SamplingFactor::R_4_2_0);
        let cut = &bytes[..bytes.len() * 3 / 4];
        let err = Jpeg::open(cut).unwrap().decode(8, true).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn structure_of_the_tail() {
        // Entropy data with a stuffed byte and a restart marker, a DHT segment, more data, EOI.
        let good = [
            0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xC4, 0x00, 0x04, 0xAA, 0xBB, 0x78,
            0xFF, 0xFF, 0xD9,
        ];
        assert!(check_structure(&good).is_ok());
        for cut in 0..good.len() - 1 {
            assert!(check_structure(&good[..cut]).is_err(), "cut at {cut}");
        }
    }
}
