//! The local cache of compiled Wasm components, and why it can be trusted.
//!
//! Deserializing a compiled component loads native code, so an entry is used
//! only if it is exactly what this host compiled for that upload: each entry
//! carries an HMAC-SHA256, under a key only this host holds, over the
//! content hash of the uploaded component, the engine's compatibility hash
//! and the serialized bytes. An entry copied from another component, edited,
//! or without a tag is ignored (with a warning), recompiled and rewritten.
//!
//! The key (32 random bytes) is made on first use and kept in a 0600 file in
//! the cache directory, never in the database that several hosts share. The
//! directory is private to this host's user (0700); one that others may
//! write to is tightened, or refused when it cannot be.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use crate::secrets::hmac_sha256;

/// Marks a tagged entry: the tag follows, then the serialized component.
const MAGIC: &[u8; 8] = b"CNPYWC1\n";
const TAG_BYTES: usize = 32;
const KEY_BYTES: usize = crate::secrets::KEY_BYTES;
/// The key's file, inside the cache directory.
const KEY_FILE: &str = "cache.key";
/// What the cache directory is called under a data or cache directory.
pub const DIR_NAME: &str = "canopy-wasm-cache";

/// A private cache directory and the key its entries are authenticated with.
pub struct WasmCache {
    dir: PathBuf,
    key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for WasmCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmCache").field("dir", &self.dir).finish()
    }
}

/// Why a cache entry was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// No file: nothing was cached yet.
    Missing,
    /// A file without this host's tag (an old or foreign entry).
    Untagged,
    /// A tag that does not authenticate this content, engine and bytes.
    BadTag,
}

impl WasmCache {
    /// Opens (creating it 0700 if missing) the cache directory `dir` and its
    /// key. A directory writable by group or others is made 0700, or
    /// refused if this user does not own it.
    pub fn open(dir: &Path) -> Result<WasmCache, String> {
        let shown = dir.display();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create the Wasm cache directory {shown}: {e}"))?;
        let meta = fs::symlink_metadata(dir)
            .map_err(|e| format!("cannot read the Wasm cache directory {shown}: {e}"))?;
        if !meta.is_dir() {
            return Err(format!(
                "the Wasm cache {shown} is not a directory (a symbolic link is refused)"
            ));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(format!(
                "the Wasm cache directory {shown} belongs to another user (uid {}); it must be this host's own",
                meta.uid()
            ));
        }
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| {
                format!("the Wasm cache directory {shown} is open to other users and cannot be made private: {e}")
            })?;
            tracing::warn!(dir = %shown, mode = format!("{:o}", meta.mode() & 0o777), "the Wasm cache directory was open to other users; made 0700");
        }
        let key = crate::secrets::load_or_make_key_file(&dir.join(KEY_FILE), "Wasm cache key")?;
        Ok(WasmCache {
            dir: dir.to_path_buf(),
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the component with content hash `hash` under the engine
    /// whose compatibility hash is `engine`.
    pub fn path(&self, hash: &str, engine: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{engine}.cwasm"))
    }

    /// The serialized component for (`hash`, `engine`), if its file carries
    /// a tag that authenticates it.
    pub fn read(&self, hash: &str, engine: &str) -> Result<Vec<u8>, Rejected> {
        // Read into memory rather than mapped: a file replaced or truncated
        // under a mapping would fault the whole process.
        let mut file = match fs::read(self.path(hash, engine)) {
            Ok(f) => f,
            Err(_) => return Err(Rejected::Missing),
        };
        if file.len() < MAGIC.len() + TAG_BYTES || &file[..MAGIC.len()] != MAGIC {
            return Err(Rejected::Untagged);
        }
        let serialized = file.split_off(MAGIC.len() + TAG_BYTES);
        let tag = &file[MAGIC.len()..];
        let expected = self.tag(hash, engine, &serialized);
        if !constant_time_eq(tag, &expected) {
            return Err(Rejected::BadTag);
        }
        Ok(serialized)
    }

    /// Writes the serialized component for (`hash`, `engine`) with its tag,
    /// atomically and readable by this user only.
    pub fn write(&self, hash: &str, engine: &str, serialized: &[u8]) -> io::Result<()> {
        let path = self.path(hash, engine);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&self.tag(hash, engine, serialized))?;
        file.write_all(serialized)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    }

    fn tag(&self, hash: &str, engine: &str, serialized: &[u8]) -> [u8; TAG_BYTES] {
        // Each field is length-prefixed, so no two inputs share a message.
        let mut message = Vec::with_capacity(serialized.len() + hash.len() + engine.len() + 64);
        message.extend_from_slice(b"canopy wasm cache v1\0");
        for field in [hash.as_bytes(), engine.as_bytes(), serialized] {
            message.extend_from_slice(&(field.len() as u64).to_be_bytes());
            message.extend_from_slice(field);
        }
        hmac_sha256(&self.key, &message)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The default cache directory: beside an SQLite database file, otherwise
/// under `$XDG_CACHE_HOME`, otherwise under the current directory. Never a
/// shared temporary directory.
pub fn default_dir(database_url: &str) -> PathBuf {
    if let Some(file) = crate::store::sqlite_file(database_url) {
        let parent = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        return parent.join(DIR_NAME);
    }
    match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(xdg) => PathBuf::from(xdg).join(DIR_NAME),
        None => PathBuf::from(".").join(DIR_NAME),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let tag = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_directory_and_key_are_private_and_the_key_persists() {
        let root = tempfile_dir("open");
        let dir = root.join("nested").join(DIR_NAME);
        let cache = WasmCache::open(&dir).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        cache.write("h", "e", b"bytes").unwrap();
        assert_eq!(mode(&cache.path("h", "e")), 0o600);
        // Opened again (a restart), the same key reads the entry.
        let again = WasmCache::open(&dir).unwrap();
        assert_eq!(again.read("h", "e").unwrap(), b"bytes");
        // A directory opened to others is made private again.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        WasmCache::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // A key others could read is replaced: old entries no longer pass.
        fs::set_permissions(dir.join(KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        let rekeyed = WasmCache::open(&dir).unwrap();
        assert_eq!(rekeyed.read("h", "e"), Err(Rejected::BadTag));
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn default_dirs_are_beside_the_database_or_under_a_cache_home() {
        assert_eq!(
            default_dir("sqlite:///var/lib/canopy/canopy.db?mode=rwc"),
            PathBuf::from("/var/lib/canopy").join(DIR_NAME)
        );
        assert_eq!(
            default_dir("sqlite://canopy.db"),
            PathBuf::from(".").join(DIR_NAME)
        );
        let pg = default_dir("postgres://db/canopy");
        assert!(pg.ends_with(DIR_NAME) && !pg.starts_with(std::env::temp_dir()));
    }

    pub(crate) fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "canopy-cache-test-{name}-{}-{}",
            std::process::id(),
            crate::secrets::new_secret("t")
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
