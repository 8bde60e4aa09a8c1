//! Identifiers, bearer secrets and how they are stored.
//!
//! API keys, session tokens, invitation tokens and the operator token are long
//! random secrets: storage keeps only their SHA-256 and looks them up by it.
//! argon2 is for passwords alone (an argon2 check per request would cap the
//! server at about a hundred requests per second).

use std::sync::LazyLock;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::{Error, Result};

/// Random bytes in each secret: 256 bits.
const SECRET_BYTES: usize = 32;

/// Most password hashes or checks computed at once, whatever the machine:
/// each holds argon2's 19 MiB and one core for tens of milliseconds.
pub const HASHING_CONCURRENCY_MAX: usize = 8;
/// How long a password hash or check waits for a free slot before the
/// request is refused with 429 `rate_limited` instead of queueing.
pub const HASHING_WAIT_MAX: Duration = Duration::from_secs(5);

/// Slots for argon2 work: one per core, at least 1, at most
/// [`HASHING_CONCURRENCY_MAX`]; shared by every request of the process.
static HASHING_SLOTS: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Semaphore::new(cores.clamp(1, HASHING_CONCURRENCY_MAX))
});

/// Runs argon2 work ([`hash_password`], [`verify_password`],
/// [`verify_password_or_dummy`]) on the blocking pool, at most one per
/// hashing slot; every caller goes through here, so a burst of logins
/// queues for a bounded time and is then refused, never grows memory
/// without end.
pub async fn hashing<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let permit = tokio::time::timeout(HASHING_WAIT_MAX, HASHING_SLOTS.acquire())
        .await
        .map_err(|_| Error::RateLimited {
            detail: "the server is busy checking passwords; retry in a moment".into(),
            retry_after_secs: 1,
        })?
        .map_err(Error::internal)?;
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(Error::internal)?;
    Ok(result)
}

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

pub fn hash_password(password: &str) -> std::result::Result<String, String> {
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

/// A hash no password was ever set to, made once with the same parameters
/// as every stored one: checking a login for an unknown e-mail against it
/// costs what checking a known one costs, so timing does not tell them apart.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&new_secret("dummy")).expect("argon2 hashes a random password"));

/// Checks `password` against `stored`, or, without a stored hash, against
/// [`DUMMY_HASH`] and then answers false: the same work either way.
pub fn verify_password_or_dummy(password: &str, stored: Option<&str>) -> bool {
    match stored {
        Some(hash) => verify_password(password, hash),
        None => {
            let _ = verify_password(password, &DUMMY_HASH);
            false
        }
    }
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
    fn a_missing_hash_costs_a_check_and_fails() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password_or_dummy("correct horse", Some(&h)));
        assert!(!verify_password_or_dummy("correct horse", None));
        assert_eq!(
            PasswordHash::new(&DUMMY_HASH).unwrap().params,
            PasswordHash::new(&h).unwrap().params,
            "the dummy costs what a real hash costs"
        );
    }

    #[tokio::test]
    async fn hashing_runs_off_the_workers_within_the_slots() {
        let checks: Vec<_> = (0..4)
            .map(|_| tokio::spawn(hashing(|| HASHING_SLOTS.available_permits())))
            .collect();
        for c in checks {
            let free = c.await.unwrap().unwrap();
            assert!(
                free < HASHING_CONCURRENCY_MAX,
                "a running check holds a slot"
            );
        }
    }

    #[test]
    fn hash_comparison() {
        assert!(hashes_equal(&sha256_hex(b"a"), &sha256_hex(b"a")));
        assert!(!hashes_equal(&sha256_hex(b"a"), &sha256_hex(b"b")));
    }
}
