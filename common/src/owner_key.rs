//! Room owner keys: 128 random bits, handed once to a room's creator (as 32
//! hex digits) and kept by the backend only as a SHA-256 hash. A fast hash
//! is enough here: the key is random, not a password a person chose, so
//! there is nothing to guess from its hash. Comparisons are constant time.

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest owner key accepted from a client (a key is 32 characters; longer
/// input is refused before hashing).
pub const MAX_OWNER_KEY_CHARS: usize = 64;

/// A fresh owner key: 16 random bytes as 32 lowercase hex digits.
pub fn new_owner_key(rng: &mut impl Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash the backend keeps.
pub fn hash_owner_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.trim().as_bytes()).into()
}

/// True when `key` is the key whose hash is `hash`; constant time in the
/// hash's content.
pub fn owner_key_matches(key: &str, hash: &[u8; 32]) -> bool {
    if key.is_empty() || key.len() > MAX_OWNER_KEY_CHARS {
        return false;
    }
    bool::from(hash_owner_key(key).ct_eq(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_hex_and_match_only_their_hash() {
        let mut rng = rand::rng();
        let key = new_owner_key(&mut rng);
        assert_eq!(key.len(), 32);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(key, new_owner_key(&mut rng));
        let hash = hash_owner_key(&key);
        assert!(owner_key_matches(&key, &hash));
        assert!(!owner_key_matches(&new_owner_key(&mut rng), &hash));
        assert!(!owner_key_matches("", &hash));
        assert!(!owner_key_matches(&"a".repeat(65), &hash));
    }
}
