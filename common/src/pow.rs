//! The proof-of-work challenge a backend may ask of a join (hashcash-style).
//!
//! A challenge is a token, `<expires>.<bits>.<mac>`: the expiry (seconds
//! since the Unix epoch) and the difficulty, signed with HMAC-SHA-256 under a
//! per-process secret over the room's key too. The server keeps nothing per
//! challenge: it checks the signature and the expiry when the answer comes.
//! The answer is any `nonce` (1 to 64 characters) such that
//! `SHA-256(token ":" nonce)` starts with `bits` zero bits. A solved token can
//! be reused until it expires (for that room only); that is its price:
//! nothing to remember per attacker.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest nonce accepted.
pub const MAX_NONCE_CHARS: usize = 64;

/// What the server sends with `error {code: "challenge"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Opaque: hash it as it is.
    pub token: String,
    /// Leading zero bits the hash must have.
    pub bits: u8,
}

/// What a client sends back in `join.pow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowSolution {
    /// The challenge's token.
    pub challenge: String,
    pub nonce: String,
}

/// Why an answer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    #[error("the challenge is malformed or not for this room")]
    Forged,
    #[error("the challenge expired")]
    Expired,
    #[error("the challenge is easier than this room now asks")]
    TooEasy,
    #[error("the nonce does not solve the challenge")]
    Unsolved,
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(secret: &[u8; 32], room_key: &str, expires: u64, bits: u8) -> String {
    let signed = format!("{expires}.{bits}");
    // 128 bits of the MAC are plenty for a token that lives minutes.
    hex(&hmac(secret, &[room_key.as_bytes(), b"\n", signed.as_bytes()])[..16])
}

/// A challenge for `room_key`, valid until `expires` (Unix seconds). The
/// token is 46 characters: with `:` and a nonce of up to 8 digits, the
/// hashed text fits one SHA-256 block.
pub fn issue(secret: &[u8; 32], room_key: &str, bits: u8, expires: u64) -> Challenge {
    let token = format!("{expires}.{bits}.{}", mac(secret, room_key, expires, bits));
    Challenge { token, bits }
}

/// Leading zero bits of `hash`.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// `SHA-256(token ":" nonce)`.
pub fn work_hash(token: &str, nonce: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(b":");
    h.update(nonce.as_bytes());
    h.finalize().into()
}

/// Checks an answer: signed for this room, unexpired, at least `min_bits`
/// hard, and solved.
pub fn verify(
    secret: &[u8; 32],
    room_key: &str,
    answer: &PowSolution,
    min_bits: u8,
    now: u64,
) -> Result<(), PowError> {
    let mut parts = answer.challenge.splitn(3, '.');
    let (Some(expires), Some(bits), Some(given)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(PowError::Forged);
    };
    let (Ok(expires), Ok(bits)) = (expires.parse::<u64>(), bits.parse::<u8>()) else {
        return Err(PowError::Forged);
    };
    let expected = mac(secret, room_key, expires, bits);
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(PowError::Forged);
    }
    if expires <= now {
        return Err(PowError::Expired);
    }
    if bits < min_bits {
        return Err(PowError::TooEasy);
    }
    let nonce_chars = answer.nonce.chars().count();
    if nonce_chars == 0 || nonce_chars > MAX_NONCE_CHARS {
        return Err(PowError::Unsolved);
    }
    if leading_zero_bits(&work_hash(&answer.challenge, &answer.nonce)) < u32::from(bits) {
        return Err(PowError::Unsolved);
    }
    Ok(())
}

/// Finds a nonce (decimal counter) for `challenge`: what a client does.
pub fn solve(challenge: &Challenge) -> PowSolution {
    let mut n: u64 = 0;
    loop {
        let nonce = n.to_string();
        if leading_zero_bits(&work_hash(&challenge.token, &nonce)) >= u32::from(challenge.bits) {
            return PowSolution { challenge: challenge.token.clone(), nonce };
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    #[test]
    fn hmac_matches_rfc_4231_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key ("Jefe"), zero-padded like ours.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac(&key, &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn solved_challenges_pass_and_everything_else_fails() {
        let c = issue(&SECRET, "room", 8, 1_000);
        let answer = solve(&c);
        assert_eq!(verify(&SECRET, "room", &answer, 8, 999), Ok(()));
        assert_eq!(verify(&SECRET, "room", &answer, 8, 1_000), Err(PowError::Expired));
        assert_eq!(verify(&SECRET, "other", &answer, 8, 999), Err(PowError::Forged));
        assert_eq!(verify(&[8; 32], "room", &answer, 8, 999), Err(PowError::Forged));
        assert_eq!(verify(&SECRET, "room", &answer, 9, 999), Err(PowError::TooEasy));
        let easier =
            PowSolution { challenge: answer.challenge.replacen(".8.", ".7.", 1), ..answer };
        assert_eq!(verify(&SECRET, "room", &easier, 7, 999), Err(PowError::Forged));
        let c = issue(&SECRET, "room", 20, 1_000);
        let wrong = (0..)
            .map(|n: u32| n.to_string())
            .find(|n| leading_zero_bits(&work_hash(&c.token, n)) < 20)
            .unwrap();
        let unsolved = PowSolution { challenge: c.token, nonce: wrong };
        assert_eq!(verify(&SECRET, "room", &unsolved, 20, 0), Err(PowError::Unsolved));
        for junk in ["", "1.2", "x.8.ab", "1.300.ab"] {
            let a = PowSolution { challenge: junk.into(), nonce: "1".into() };
            assert_eq!(verify(&SECRET, "room", &a, 1, 0), Err(PowError::Forged), "{junk}");
        }
    }

    #[test]
    fn zero_bits() {
        assert_eq!(leading_zero_bits(&[0, 0x10, 0xff]), 11);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0; 4]), 32);
    }
}
