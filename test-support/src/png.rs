//! Valid PNGs built by hand: signature, IHDR, one IDAT (zlib "stored"
//! blocks, nothing to decompress, so the size is predictable), IEND, each
//! chunk with its CRC.

/// One chunk: length, type, data, CRC of type and data.
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An IHDR chunk: 8 bits per sample of `colour_type` (0 greyscale, 6 RGBA).
fn ihdr_of(width: u32, height: u32, colour_type: u8) -> Vec<u8> {
    let mut data = width.to_be_bytes().to_vec();
    data.extend_from_slice(&height.to_be_bytes());
    data.extend_from_slice(&[8, colour_type, 0, 0, 0]); // deflate, no filter, no interlace
    chunk(b"IHDR", &data)
}

/// The IHDR chunk of an 8-bit greyscale image.
pub fn ihdr(width: u32, height: u32) -> Vec<u8> {
    ihdr_of(width, height, 0)
}

/// The whole file around `ihdr` and `raw` (filtered scanlines).
fn encode(ihdr: Vec<u8>, raw: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(ihdr);
    out.extend(chunk(b"IDAT", &zlib_stored(raw)));
    out.extend(chunk(b"IEND", b""));
    out
}

/// A real, decodable greyscale PNG of about `height * (width + 1)` bytes
/// plus ~70. `seed` varies the pixels.
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let mut raw = Vec::with_capacity((height * (width + 1)) as usize);
    for y in 0..height {
        raw.push(0); // filter: none
        raw.extend((0..width).map(|x| (x as u8).wrapping_mul(3) ^ (y as u8) ^ seed));
    }
    encode(ihdr(width, height), &raw)
}

/// A `width`×`height` RGBA image, every pixel `rgba` (what the web UI's
/// "Send drawing" uploads).
pub fn solid(width: u32, height: u32, rgba: [u8; 4]) -> Vec<u8> {
    let row: Vec<u8> = std::iter::once(0) // filter: none
        .chain(std::iter::repeat_n(rgba, width as usize).flatten())
        .collect();
    encode(ihdr_of(width, height, 6), &row.repeat(height as usize))
}

/// zlib of `data` in "stored" (uncompressed) blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> =
        if data.is_empty() { vec![&[]] } else { data.chunks(65_535).collect() };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}
