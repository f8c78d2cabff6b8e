//! A cheap structural check of a PNG: the signature, a well-formed IHDR with
//! acceptable dimensions, then every chunk's length and CRC up to a final
//! IEND. Nothing is decompressed, so a decompression bomb costs no more than
//! its (bounded) upload; the dimension limit keeps browsers safe from one too.

/// The eight bytes every PNG starts with.
pub const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Signature plus the IHDR chunk (length, type, 13 data bytes, CRC): enough to
/// refuse an upload before the rest of it arrives.
pub const HEADER_LEN: usize = 8 + 8 + 13 + 4;

/// The PNG spec's limit on chunk lengths and dimensions.
const MAX_U31: u32 = (1 << 31) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    colour_type: u8,
}

/// Why an upload is not an acceptable PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PngError {
    #[error("the body is not a PNG image")]
    NotPng,
    #[error("the PNG header (IHDR) is missing or malformed")]
    BadHeader,
    #[error("the image is {width}×{height} pixels; at most {max}×{max} is accepted")]
    TooManyPixels { width: u32, height: u32, max: u32 },
    #[error("the PNG is truncated")]
    Truncated,
    #[error("the PNG is corrupt: {0}")]
    Corrupt(&'static str),
}

/// Checks the signature and IHDR of `prefix`, which must hold at least
/// [`HEADER_LEN`] bytes unless it is the whole upload.
pub fn check_header(prefix: &[u8], max_dimension: u32) -> Result<Header, PngError> {
    if prefix.len() < SIGNATURE.len() || prefix[..8] != SIGNATURE {
        return Err(PngError::NotPng);
    }
    if prefix.len() < HEADER_LEN {
        return Err(PngError::BadHeader);
    }
    let chunk = &prefix[8..HEADER_LEN];
    if be32(&chunk[0..4]) != 13
        || &chunk[4..8] != b"IHDR"
        || !crc_matches(&chunk[4..21], &chunk[21..25])
    {
        return Err(PngError::BadHeader);
    }
    let data = &chunk[8..21];
    let (width, height) = (be32(&data[0..4]), be32(&data[4..8]));
    let (bit_depth, colour_type) = (data[8], data[9]);
    let (compression, filter, interlace) = (data[10], data[11], data[12]);
    let depth_ok = match colour_type {
        0 => matches!(bit_depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(bit_depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(bit_depth, 8 | 16),
        _ => false,
    };
    let dims_ok = (1..=MAX_U31).contains(&width) && (1..=MAX_U31).contains(&height);
    if !depth_ok || !dims_ok || compression != 0 || filter != 0 || interlace > 1 {
        return Err(PngError::BadHeader);
    }
    if width > max_dimension || height > max_dimension {
        return Err(PngError::TooManyPixels { width, height, max: max_dimension });
    }
    Ok(Header { width, height, colour_type })
}

/// Checks the whole upload: header, then chunk by chunk to an IEND that ends
/// the file exactly.
pub fn check(png: &[u8], max_dimension: u32) -> Result<Header, PngError> {
    let header = check_header(png, max_dimension)?;
    let mut pos = HEADER_LEN;
    let (mut seen_plte, mut seen_idat, mut idat_ended) = (false, false, false);
    loop {
        let Some(head) = png.get(pos..pos + 8) else {
            return Err(PngError::Truncated);
        };
        let len = be32(&head[0..4]);
        if len > MAX_U31 {
            return Err(PngError::Corrupt("a chunk length is out of range"));
        }
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(PngError::Corrupt("a chunk type is not four letters"));
        }
        let end = pos.saturating_add(12).saturating_add(len as usize);
        let Some(chunk) = png.get(pos + 4..end) else {
            return Err(PngError::Truncated);
        };
        let (typed_data, crc) = chunk.split_at(chunk.len() - 4);
        if !crc_matches(typed_data, crc) {
            return Err(PngError::Corrupt("a chunk checksum does not match"));
        }
        match &kind {
            b"IHDR" => return Err(PngError::Corrupt("IHDR appears twice")),
            b"PLTE" => {
                if seen_idat {
                    return Err(PngError::Corrupt("PLTE after image data"));
                }
                seen_plte = true;
            }
            b"IDAT" => {
                if idat_ended {
                    return Err(PngError::Corrupt("image data is not contiguous"));
                }
                if header.colour_type == 3 && !seen_plte {
                    return Err(PngError::Corrupt("a palette image has no palette"));
                }
                seen_idat = true;
            }
            b"IEND" => {
                if len != 0 {
                    return Err(PngError::Corrupt("IEND carries data"));
                }
                if !seen_idat {
                    return Err(PngError::Corrupt("there is no image data"));
                }
                if end != png.len() {
                    return Err(PngError::Corrupt("data follows IEND"));
                }
                return Ok(header);
            }
            // Decoders must refuse unknown critical chunks (upper-case first letter).
            _ if kind[0].is_ascii_uppercase() => {
                return Err(PngError::Corrupt("an unknown critical chunk"));
            }
            _ => {
                if seen_idat {
                    idat_ended = true;
                }
            }
        }
        pos = end;
    }
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn crc_matches(typed_data: &[u8], crc: &[u8]) -> bool {
    crc32fast::hash(typed_data) == be32(crc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::chunk;

    fn ihdr(width: u32, height: u32, depth: u8, colour: u8) -> Vec<u8> {
        let mut d = width.to_be_bytes().to_vec();
        d.extend_from_slice(&height.to_be_bytes());
        d.extend_from_slice(&[depth, colour, 0, 0, 0]);
        chunk(b"IHDR", &d)
    }

    /// Not a decodable image (the IDAT is not zlib), which is the point: the
    /// check never looks inside chunks.
    fn png(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        for p in parts {
            out.extend_from_slice(p);
        }
        out
    }

    fn good() -> Vec<u8> {
        png(&[
            ihdr(4, 3, 8, 0),
            chunk(b"tEXt", b"k\0v"),
            chunk(b"IDAT", b"xx"),
            chunk(b"IDAT", b"y"),
            chunk(b"IEND", b""),
        ])
    }

    #[test]
    fn a_well_formed_png_passes() {
        let h = check(&good(), 2048).unwrap();
        assert_eq!((h.width, h.height), (4, 3));
    }

    #[test]
    fn every_truncation_is_refused() {
        let g = good();
        for cut in 0..g.len() {
            assert!(check(&g[..cut], 2048).is_err(), "cut at {cut}");
        }
        assert_eq!(check(&g[..g.len() - 1], 2048), Err(PngError::Truncated));
        assert_eq!(check(&g[..HEADER_LEN], 2048), Err(PngError::Truncated));
        assert_eq!(check(&g[..20], 2048), Err(PngError::BadHeader));
        assert_eq!(check(&g[..5], 2048), Err(PngError::NotPng));
    }

    #[test]
    fn every_flipped_bit_after_the_signature_is_caught() {
        let g = good();
        for i in 8..g.len() {
            let mut bad = g.clone();
            bad[i] ^= 0x10;
            assert!(check(&bad, 2048).is_err(), "byte {i}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(
            check_header(b"GIF89a........................................", 2048),
            Err(PngError::NotPng)
        );
        assert_eq!(
            check_header(&png(&[ihdr(100_000, 100_000, 8, 6)]), 2048),
            Err(PngError::TooManyPixels { width: 100_000, height: 100_000, max: 2048 })
        );
        assert!(check_header(&png(&[ihdr(2048, 2048, 8, 6)]), 2048).is_ok());
        assert!(matches!(
            check_header(&png(&[ihdr(2049, 1, 8, 6)]), 2048),
            Err(PngError::TooManyPixels { .. })
        ));
        for (w, h, depth, colour) in [
            (0, 1, 8, 0),
            (1, 0, 8, 0),
            (1, 1, 3, 0),
            (1, 1, 16, 3),
            (1, 1, 8, 5),
            (1 << 31, 1, 8, 0),
        ] {
            assert_eq!(
                check_header(&png(&[ihdr(w, h, depth, colour)]), u32::MAX),
                Err(PngError::BadHeader)
            );
        }
        let mut no_ihdr = png(&[chunk(b"IDAT", &[0; 13])]);
        no_ihdr.truncate(HEADER_LEN);
        assert_eq!(check_header(&no_ihdr, 2048), Err(PngError::BadHeader));
    }

    #[test]
    fn structure_rules() {
        let end = || chunk(b"IEND", b"");
        let idat = || chunk(b"IDAT", b"z");
        let cases = [
            png(&[ihdr(1, 1, 8, 0), end()]),
            png(&[ihdr(1, 1, 8, 0), idat(), chunk(b"IEND", b"x")]),
            png(&[ihdr(1, 1, 8, 0), idat(), end(), chunk(b"tEXt", b"a")]),
            png(&[ihdr(1, 1, 8, 0), idat(), chunk(b"tEXt", b"a"), idat(), end()]),
            png(&[ihdr(1, 1, 8, 0), ihdr(1, 1, 8, 0), idat(), end()]),
            png(&[ihdr(1, 1, 8, 0), chunk(b"ZZZZ", b""), idat(), end()]),
            png(&[ihdr(1, 1, 8, 3), idat(), end()]),
            png(&[ihdr(1, 1, 8, 3), idat(), chunk(b"PLTE", &[0; 3]), end()]),
            png(&[ihdr(1, 1, 8, 0), chunk(b"ID1T", b""), idat(), end()]),
        ];
        for (i, case) in cases.iter().enumerate() {
            assert!(matches!(check(case, 2048), Err(PngError::Corrupt(_))), "case {i}");
        }
        let mut trailing = good();
        trailing.push(0);
        assert!(matches!(check(&trailing, 2048), Err(PngError::Corrupt(_))));
        assert!(
            check(&png(&[ihdr(1, 1, 8, 3), chunk(b"PLTE", &[0; 3]), idat(), end()]), 2048).is_ok()
        );
        let mut huge = png(&[ihdr(1, 1, 8, 0)]);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(b"IDAT");
        assert!(matches!(check(&huge, 2048), Err(PngError::Corrupt(_))));
    }
}
