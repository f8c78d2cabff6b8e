//! Room passwords: only a slow salted hash (Argon2id, PHC string) is ever stored.
//!
//! Hashing and verifying are CPU- and memory-heavy by design (tens of
//! milliseconds, [`MEMORY_BLOCKS`] KiB). The `*_with_memory` forms hash into
//! memory the caller owns and reuses: the argon2 crate's own forms allocate a
//! fresh ~19 MiB block per call, which glibc's per-thread arenas keep after
//! it is freed (hundreds of MB after a few dozen guesses). The pool that runs
//! checks a few at a time lives in `startup::password_pool` (this crate does
//! no I/O and starts no threads).

use argon2::password_hash::{
    Output, PasswordHash, PasswordHasher, PasswordVerifier, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// One Argon2 memory block (1 KiB).
pub use argon2::Block;

/// Blocks one hash needs: the default memory cost, the only one hashes are
/// made with. Stored hashes that ask for more are refused as malformed, so
/// a forged hash cannot make a check take more memory than this.
pub const MEMORY_BLOCKS: usize = Params::DEFAULT_M_COST as usize;

/// Longest password accepted, in bytes: hashing cost must not grow with input
/// an attacker controls.
pub const MAX_PASSWORD_BYTES: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password must be 1 to {MAX_PASSWORD_BYTES} bytes")]
    BadLength,
    #[error("stored password hash is malformed")]
    BadHash,
}

/// Checks the length rule without hashing.
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::BadLength);
    }
    Ok(())
}

/// Hashes `password` with a fresh random salt. `salt_bytes` must come from a
/// cryptographically secure source (the caller owns randomness: no I/O here).
pub fn hash_password(password: &str, salt_bytes: &[u8; 16]) -> Result<String, PasswordError> {
    check_password(password)?;
    let salt = SaltString::encode_b64(salt_bytes).map_err(|_| PasswordError::BadHash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::BadHash)
}

/// True when `password` matches the stored PHC `hash`.
pub fn verify_password(password: &str, hash: &str) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let parsed = PasswordHash::new(hash).map_err(|_| PasswordError::BadHash)?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// [`hash_password`], hashing into `memory` (at least [`MEMORY_BLOCKS`] long).
pub fn hash_password_with_memory(
    password: &str,
    salt_bytes: &[u8; 16],
    memory: &mut [Block],
) -> Result<String, PasswordError> {
    check_password(password)?;
    let salt = SaltString::encode_b64(salt_bytes).map_err(|_| PasswordError::BadHash)?;
    let hasher = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hasher
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
        .map_err(|_| PasswordError::BadHash)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: hasher.params().try_into().map_err(|_| PasswordError::BadHash)?,
        salt: Some(Salt::from(&salt)),
        hash: Some(Output::new(&out).map_err(|_| PasswordError::BadHash)?),
    };
    Ok(hash.to_string())
}

/// [`verify_password`], hashing into `memory` (at least [`MEMORY_BLOCKS`]
/// long). The comparison takes the same time wherever the hashes differ.
pub fn verify_password_with_memory(
    password: &str,
    hash: &str,
    memory: &mut [Block],
) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let parsed = PasswordHash::new(hash).map_err(|_| PasswordError::BadHash)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| PasswordError::BadHash)?;
    let version = parsed.version.map_or(Ok(Version::V0x13), Version::try_from);
    let version = version.map_err(|_| PasswordError::BadHash)?;
    let params = Params::try_from(&parsed).map_err(|_| PasswordError::BadHash)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(PasswordError::BadHash);
    };
    if params.block_count() > MEMORY_BLOCKS.min(memory.len()) {
        return Err(PasswordError::BadHash);
    }
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|_| PasswordError::BadHash)?;
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
        .map_err(|_| PasswordError::BadHash)?;
    let computed = Output::new(&out).map_err(|_| PasswordError::BadHash)?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

/// Fresh memory for the `*_with_memory` functions: [`MEMORY_BLOCKS`] blocks
/// in a buffer of `capacity_blocks` (at least that many).
pub fn new_memory(capacity_blocks: usize) -> Vec<Block> {
    let mut memory = Vec::with_capacity(capacity_blocks.max(MEMORY_BLOCKS));
    memory.resize(MEMORY_BLOCKS, Block::default());
    memory
}

/// True when `hash` parses as a PHC string (checked before a backend stores it).
pub fn is_valid_hash(hash: &str) -> bool {
    hash.len() <= 512 && PasswordHash::new(hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::ParamsBuilder;

    #[test]
    fn round_trip_and_salt() {
        let a = hash_password("hunter2", &[1; 16]).unwrap();
        let b = hash_password("hunter2", &[2; 16]).unwrap();
        assert_ne!(a, b, "different salts give different hashes");
        assert!(!a.contains("hunter2"));
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("hunter2", &a).unwrap());
        assert!(!verify_password("hunter3", &a).unwrap());
        assert!(is_valid_hash(&a));
    }

    #[test]
    fn with_memory_matches_the_allocating_forms() {
        let mut memory = new_memory(0);
        let a = hash_password_with_memory("hunter2", &[7; 16], &mut memory).unwrap();
        assert_eq!(a, hash_password("hunter2", &[7; 16]).unwrap(), "same PHC string");
        assert!(verify_password("hunter2", &a).unwrap());
        assert!(verify_password_with_memory("hunter2", &a, &mut memory).unwrap());
        assert!(!verify_password_with_memory("hunter3", &a, &mut memory).unwrap());
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(!verify_password_with_memory(&long, &a, &mut memory).unwrap());
        assert_eq!(
            verify_password_with_memory("x", "not a hash", &mut memory),
            Err(PasswordError::BadHash)
        );
    }

    #[test]
    fn a_hash_asking_for_more_memory_is_refused() {
        let greedy = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            ParamsBuilder::new().m_cost(2 * Params::DEFAULT_M_COST).t_cost(1).build().unwrap(),
        );
        let salt = SaltString::encode_b64(&[3; 16]).unwrap();
        let hash = greedy.hash_password(b"pw", &salt).unwrap().to_string();
        let mut memory = new_memory(0);
        assert_eq!(
            verify_password_with_memory("pw", &hash, &mut memory),
            Err(PasswordError::BadHash)
        );
    }

    #[test]
    fn limits() {
        assert_eq!(hash_password("", &[0; 16]), Err(PasswordError::BadLength));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash_password(&long, &[0; 16]), Err(PasswordError::BadLength));
        assert_eq!(verify_password("x", "not a hash"), Err(PasswordError::BadHash));
        assert!(!is_valid_hash("plaintext"));
    }
}
