//! Identifiers, bearer secrets and how they are stored.
//!
//! API keys, session tokens, invitation tokens and the operator token are long
//! random secrets: storage keeps only their SHA-256 and looks them up by it.
//! argon2 is for passwords alone (an argon2 check per request would cap the
//! server at about a hundred requests per second).

use std::path::Path;
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
    crate::store::held::let_go();
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

/// Bytes in a key: the data key, the Wasm cache key.
pub const KEY_BYTES: usize = 32;

/// A key kept in a private file (0600, this user's own): read, or made now
/// (32 random bytes) if missing. A key that others could read, or that is
/// not whole, is replaced; `what` names it in messages.
pub fn load_or_make_key_file(path: &Path, what: &str) -> Result<[u8; KEY_BYTES], String> {
    use std::fs::{self, File, OpenOptions};
    use std::io::{self, Read, Write};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let shown = path.display();
    for _ in 0..3 {
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(mut file) => {
                let meta = file
                    .metadata()
                    .map_err(|e| format!("cannot read {shown}: {e}"))?;
                let mut key = [0u8; KEY_BYTES];
                let whole = meta.len() == KEY_BYTES as u64 && file.read_exact(&mut key).is_ok();
                if whole && meta.uid() == me && meta.mode() & 0o077 == 0 {
                    return Ok(key);
                }
                tracing::warn!(key = %shown, "the {what} was not private or not whole; replacing it");
                fs::remove_file(path).map_err(|e| format!("cannot replace {shown}: {e}"))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_BYTES];
                rand::rng().fill_bytes(&mut key);
                // Written whole under another name, then linked into place:
                // a host starting beside us never reads half a key, and the
                // first link wins.
                let mut tmp = path.as_os_str().to_owned();
                tmp.push(format!(".{}", std::process::id()));
                let tmp = std::path::PathBuf::from(tmp);
                let _ = fs::remove_file(&tmp);
                let written = (|| -> io::Result<()> {
                    let mut file: File = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&tmp)?;
                    file.write_all(&key)?;
                    file.sync_all()?;
                    match fs::hard_link(&tmp, path) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
                        _ => Ok(()),
                    }
                })();
                let _ = fs::remove_file(&tmp);
                written.map_err(|e| format!("cannot write the {what} {shown}: {e}"))?;
                // Read back whichever key won.
            }
            Err(e) => return Err(format!("cannot read the {what} {shown}: {e}")),
        }
    }
    Err(format!("cannot settle the {what} {shown}"))
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The key that seals secrets the host must read back (webhook signing
/// secrets): 32 bytes, from `CANOPY_DATA_KEY` (64 hex digits, the same on
/// every host of one database) or a private key file beside an SQLite
/// database. Never printed.
#[derive(Clone)]
pub struct DataKey {
    key: std::sync::Arc<[u8; KEY_BYTES]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id())
    }
}

/// Marks a sealed value: version, then the key's id, then base64 of nonce
/// and ciphertext.
const SEALED_PREFIX: &str = "sealed1";

impl DataKey {
    pub fn from_bytes(key: [u8; KEY_BYTES]) -> DataKey {
        DataKey {
            key: std::sync::Arc::new(key),
        }
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<DataKey, String> {
        let bytes = hex::decode(text.trim()).map_err(|_| {
            "the data key must be 64 hexadecimal digits (32 bytes), e.g. from `openssl rand -hex 32`".to_string()
        })?;
        let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| {
            "the data key must be 64 hexadecimal digits (32 bytes), e.g. from `openssl rand -hex 32`".to_string()
        })?;
        Ok(DataKey::from_bytes(key))
    }

    /// A short public id of the key (not the key): which key sealed a value.
    pub fn id(&self) -> String {
        hex::encode(&hmac_sha256(&self.key[..], b"canopy data key id")[..4])
    }

    /// A MAC of `message` under a key derived from this one for `purpose`
    /// (so a MAC made for one purpose is worthless for another).
    pub fn mac(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let derived = hmac_sha256(
            &self.key[..],
            format!("canopy mac key\0{purpose}").as_bytes(),
        );
        hmac_sha256(&derived, message)
    }

    /// Seals `plain` with XChaCha20-Poly1305 under a random nonce, bound
    /// to `context` (e.g. the row's id, so a sealed value cannot be moved
    /// to another row).
    pub fn seal(&self, context: &str, plain: &str) -> String {
        use chacha20poly1305::XChaCha20Poly1305;
        use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
        let cipher = XChaCha20Poly1305::new((&*self.key).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any input below 256 GiB");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!(
            "{SEALED_PREFIX}:{}:{}",
            self.id(),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        )
    }

    /// Opens a value [`DataKey::seal`] made with this key and `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, String> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::{XChaCha20Poly1305, XNonce};
        let mut parts = sealed.splitn(3, ':');
        let (Some(SEALED_PREFIX), Some(id), Some(body)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err("not a sealed value".into());
        };
        if id != self.id() {
            return Err(format!(
                "sealed under another data key (id {id}; this host's is {}): start every host with the same CANOPY_DATA_KEY",
                self.id()
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| "a sealed value that is not base64".to_string())?;
        if bytes.len() < 24 {
            return Err("a sealed value too short".into());
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new((&*self.key).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| "a sealed value that does not authenticate".to_string())?;
        String::from_utf8(plain).map_err(|_| "a sealed value that is not text".to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sealed_values_open_only_under_their_key_and_context() {
        let key = DataKey::from_bytes([7; KEY_BYTES]);
        let sealed = key.seal("wh_1", "whsec_clear");
        assert!(!sealed.contains("whsec_clear"));
        assert_ne!(
            sealed,
            key.seal("wh_1", "whsec_clear"),
            "a fresh nonce each time"
        );
        assert_eq!(key.open("wh_1", &sealed).unwrap(), "whsec_clear");
        assert!(key.open("wh_2", &sealed).is_err(), "bound to its row");
        let other = DataKey::from_bytes([8; KEY_BYTES]);
        assert!(
            other
                .open("wh_1", &sealed)
                .unwrap_err()
                .contains("another data key")
        );
        assert!(DataKey::from_hex("abc").is_err());
        assert!(DataKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(!format!("{key:?}").contains("0707"));
    }

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
