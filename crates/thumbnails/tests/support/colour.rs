//! Test images in other colour spaces, made here byte by byte: ICC v2 matrix profiles (Adobe RGB
//! (1998), Display P3) from their published colorants, CMYK and YCCK JPEGs with and without
//! Photoshop's Adobe marker, and tagged JPEGs and PNGs.

#![allow(dead_code, unreachable_pub)]

/// D50, the ICC profile connection space's white.
const D50: [f64; 3] = [0.9642, 1.0, 0.8249];

/// Adobe RGB (1998): its red, green and blue colorants adapted to D50 (as in Adobe's own
/// profile), and its tone curve, a pure gamma of 563/256.
pub const ADOBE_RGB: Profile = Profile {
    name: "Adobe RGB (1998) test profile",
    colorants: [
        [0.60974, 0.31111, 0.01947],
        [0.20528, 0.62567, 0.06087],
        [0.14919, 0.06322, 0.74457],
    ],
    curve: Curve::Gamma(563.0 / 256.0),
};

/// Display P3 (phones, Macs): the P3 primaries with a D65 white, adapted to D50, and sRGB's tone
/// curve.
pub const DISPLAY_P3: Profile = Profile {
    name: "Display P3 test profile",
    colorants: [
        [0.515102, 0.241182, -0.001053],
        [0.291965, 0.692236, 0.041882],
        [0.157153, 0.066582, 0.784378],
    ],
    curve: Curve::Srgb,
};

#[derive(Clone, Copy)]
pub enum Curve {
    Gamma(f64),
    /// sRGB's piecewise curve, as a 1024-entry table.
    Srgb,
}

pub struct Profile {
    pub name: &'static str,
    /// Red, green, blue XYZ colorants (D50).
    pub colorants: [[f64; 3]; 3],
    pub curve: Curve,
}

fn s15_16(v: f64) -> [u8; 4] {
    ((v * 65536.0).round() as i32).to_be_bytes()
}

fn xyz(v: [f64; 3]) -> Vec<u8> {
    let mut tag = b"XYZ \0\0\0\0".to_vec();
    for c in v {
        tag.extend_from_slice(&s15_16(c));
    }
    tag
}

fn curve(curve: Curve) -> Vec<u8> {
    let mut tag = b"curv\0\0\0\0".to_vec();
    match curve {
        Curve::Gamma(g) => {
            tag.extend_from_slice(&1u32.to_be_bytes());
            tag.extend_from_slice(&((g * 256.0).round() as u16).to_be_bytes());
        }
        Curve::Srgb => {
            let n = 1024u32;
            tag.extend_from_slice(&n.to_be_bytes());
            for i in 0..n {
                let v = f64::from(i) / f64::from(n - 1);
                let linear = if v <= 0.04045 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                };
                tag.extend_from_slice(&((linear * 65535.0).round() as u16).to_be_bytes());
            }
        }
    }
    tag
}

fn description(name: &str) -> Vec<u8> {
    let mut tag = b"desc\0\0\0\0".to_vec();
    tag.extend_from_slice(&(name.len() as u32 + 1).to_be_bytes());
    tag.extend_from_slice(name.as_bytes());
    tag.push(0);
    tag.extend_from_slice(&[0; 8]); // no Unicode description
    tag.extend_from_slice(&[0; 3 + 67]); // no ScriptCode description
    tag
}

impl Profile {
    /// The profile as an ICC v2 display profile (RGB data, XYZ connection space).
    pub fn icc(&self) -> Vec<u8> {
        let mut tags: Vec<(&[u8; 4], Vec<u8>)> = vec![
            (b"desc", description(self.name)),
            (b"wtpt", xyz(D50)),
            (b"rXYZ", xyz(self.colorants[0])),
            (b"gXYZ", xyz(self.colorants[1])),
            (b"bXYZ", xyz(self.colorants[2])),
            (b"cprt", {
                let mut t = b"text\0\0\0\0".to_vec();
                t.extend_from_slice(b"public domain\0");
                t
            }),
        ];
        let trc = curve(self.curve);
        tags.push((b"rTRC", trc.clone()));
        tags.push((b"gTRC", trc.clone()));
        tags.push((b"bTRC", trc));
        let table_len = 4 + 12 * tags.len();
        let offset = 128 + table_len;
        let mut table = (tags.len() as u32).to_be_bytes().to_vec();
        let mut data = Vec::new();
        for (sig, body) in &tags {
            while !(offset + data.len()).is_multiple_of(4) {
                data.push(0);
            }
            table.extend_from_slice(*sig);
            table.extend_from_slice(&((offset + data.len()) as u32).to_be_bytes());
            table.extend_from_slice(&(body.len() as u32).to_be_bytes());
            data.extend_from_slice(body);
        }
        let size = 128 + table.len() + data.len();
        let mut header = Vec::with_capacity(128);
        header.extend_from_slice(&(size as u32).to_be_bytes());
        header.extend_from_slice(&[0; 4]); // CMM
        header.extend_from_slice(&[2, 0x10, 0, 0]); // version 2.1
        header.extend_from_slice(b"mntrRGB XYZ ");
        header.extend_from_slice(&[0x07, 0xE8, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]); // 2024-01-01
        header.extend_from_slice(b"acsp");
        header.extend_from_slice(&[0; 4 + 4 + 4 + 4 + 8 + 4]); // platform .. intent
        for c in D50 {
            header.extend_from_slice(&s15_16(c));
        }
        header.extend_from_slice(&[0; 4 + 16 + 28]); // creator, id, reserved
        assert_eq!(header.len(), 128);
        let mut icc = header;
        icc.extend_from_slice(&table);
        icc.extend_from_slice(&data);
        icc
    }
}

/// `jpeg` with an APP2 ICC_PROFILE segment holding `icc` right after SOI.
pub fn jpeg_with_icc(jpeg: &[u8], icc: &[u8]) -> Vec<u8> {
    let mut segment = b"ICC_PROFILE\0\x01\x01".to_vec();
    segment.extend_from_slice(icc);
    insert_segment(jpeg, 0xE2, &segment)
}

/// `jpeg` with a segment `FF marker` inserted right after SOI.
pub fn insert_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// `jpeg` without any APP14 (Adobe) segment.
pub fn without_adobe(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if jpeg[i + 1] != 0xEE {
            out.extend_from_slice(&jpeg[i..i + 2 + len]);
        }
        i += 2 + len;
    }
    out.extend_from_slice(&jpeg[i..]);
    out
}

/// How a CMYK JPEG is written.
#[derive(Clone, Copy, Debug)]
pub enum CmykStyle {
    /// Photoshop: an Adobe marker (transform 0), values inverted (255 = no ink).
    AdobeInverted,
    /// No Adobe marker, values as they are (0 = no ink).
    Plain,
    /// Photoshop's YCCK: an Adobe marker (transform 2), inverted CMYK turned into YCCK.
    Ycck,
}

/// A CMYK JPEG of `cmyk` (4 bytes a pixel, 0 = no ink) in `style`, at quality 95.
pub fn cmyk_jpeg(cmyk: &[u8], width: u16, height: u16, style: CmykStyle) -> Vec<u8> {
    // jpeg-encoder stores CMYK inverted, as Photoshop does (and YCCK made from inverted CMYK):
    // for plain data it is given inverted values, which it inverts back.
    let inverted: Vec<u8> = cmyk.iter().map(|v| 255 - v).collect();
    let (data, color, transform) = match style {
        CmykStyle::AdobeInverted => (cmyk, jpeg_encoder::ColorType::Cmyk, Some(0)),
        CmykStyle::Plain => (&inverted[..], jpeg_encoder::ColorType::Cmyk, None),
        CmykStyle::Ycck => (cmyk, jpeg_encoder::ColorType::CmykAsYcck, Some(2)),
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(data, width, height, color)
        .unwrap();
    let out = without_adobe(&out);
    match transform {
        Some(transform) => {
            let mut adobe = b"Adobe".to_vec();
            adobe.extend_from_slice(&[0, 100, 0, 0, 0, 0, transform]);
            insert_segment(&out, 0xEE, &adobe)
        }
        None => out,
    }
}
