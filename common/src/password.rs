//! Room passwords: only a slow salted hash (Argon2id, PHC string) is ever stored.
//!
//! Hashing and verifying are CPU-heavy by design (tens of milliseconds);
//! async callers run them on a blocking thread.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

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

/// True when `hash` parses as a PHC string (checked before a backend stores it).
pub fn is_valid_hash(hash: &str) -> bool {
    hash.len() <= 512 && PasswordHash::new(hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn limits() {
        assert_eq!(hash_password("", &[0; 16]), Err(PasswordError::BadLength));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash_password(&long, &[0; 16]), Err(PasswordError::BadLength));
        assert_eq!(verify_password("x", "not a hash"), Err(PasswordError::BadHash));
        assert!(!is_valid_hash("plaintext"));
    }
}
