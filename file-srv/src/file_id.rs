//! Drawing ids: the first 128 bits of the SHA-256 of the PNG, written as 32
//! lowercase hex digits. The same drawing always gets the same id.

use std::fmt;

use common::names::{FILE_ID_HEX_LEN, is_valid_file_id};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId([u8; FILE_ID_HEX_LEN / 2]);

impl FileId {
    pub fn of_content(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut id = [0; FILE_ID_HEX_LEN / 2];
        id.copy_from_slice(&digest[..FILE_ID_HEX_LEN / 2]);
        Self(id)
    }

    /// Only a well-formed id parses, so a parsed id is always a plain file
    /// name inside the data folder.
    pub fn parse(s: &str) -> Option<Self> {
        if !is_valid_file_id(s) {
            return None;
        }
        let mut id = [0; FILE_ID_HEX_LEN / 2];
        for (byte, pair) in id.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self(id))
    }

    /// `{id}.png`, the name of the stored file.
    pub fn file_name(&self) -> String {
        format!("{self}.png")
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_sha256() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        let id = FileId::of_content(b"abc");
        assert_eq!(id.to_string(), "ba7816bf8f01cfea414140de5dae2223");
        assert_eq!(FileId::parse(&id.to_string()), Some(id));
        assert_eq!(id.file_name(), "ba7816bf8f01cfea414140de5dae2223.png");
    }

    #[test]
    fn only_well_formed_ids_parse() {
        for bad in [
            "",
            "BA7816BF8F01CFEA414140DE5DAE2223",
            "ba7816bf8f01cfea414140de5dae222",
            "../../../../../../etc/passwd00",
            "ba7816bf8f01cfea414140de5dae2223.png",
        ] {
            assert_eq!(FileId::parse(bad), None, "{bad}");
        }
    }
}
