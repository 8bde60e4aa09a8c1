//! Identifiers, bearer secrets and how they are stored.
//!
//! API keys, session tokens, invitation tokens and the operator token are long
//! random secrets: storage keeps only their SHA-256 and looks them up by it.
//! argon2 is for passwords alone (an argon2 check per request would cap the
//! server at about a hundred requests per second).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Random bytes in each secret: 256 bits.
const SECRET_BYTES: usize = 32;

/// A new id with a type prefix (`acct_`, `usr_`, ...). UUIDv7 keeps ids in
/// creation order, which cursor pagination relies on.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A new bearer secret with a prefix that says what it is (`ck_` API key,
/// `cs_` session, `ci_` invitation, `cop_` operator).
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Compares two hashes in time independent of where they differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_carry_their_prefix_and_differ() {
        assert!(new_id("acct").starts_with("acct_"));
        assert_ne!(new_secret("ck"), new_secret("ck"));
        assert!(new_secret("ck").len() > 40);
        let a = new_id("acct");
        let b = new_id("acct");
        assert!(a < b, "ids sort in creation order");
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn hash_comparison() {
        assert!(hashes_equal(&sha256_hex(b"a"), &sha256_hex(b"a")));
        assert!(!hashes_equal(&sha256_hex(b"a"), &sha256_hex(b"b")));
    }
}
