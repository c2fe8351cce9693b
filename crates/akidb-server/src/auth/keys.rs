//! API keys: generated, hashed, checked and kept.
//!
//! A key is `akidb_` and 64 hex digits (256 random bits), so its SHA-256 is as safe at rest as
//! a slow hash of a password would be (nobody can enumerate 2^256 keys). The server keeps only
//! the SHA-256: keys created through the admin API in `<data_dir>/auth/keys.json` (written to a
//! temporary file, synced and renamed into place), keys from the configuration as the `sha256`
//! given there, and the bootstrap admin key from `--admin-api-key` hashed at start. A presented
//! key is hashed and compared with every stored hash in constant time, so neither the answer's
//! time nor its failure says how much of a key was right.

use std::path::{Path, PathBuf};

use akidb_api::{KeyInfo, KeyLimits, Role};
use anyhow::Context;
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// Keys every key starts with, so that a leaked one is recognisable in logs and scanners.
const KEY_PREFIX: &str = "akidb_";

/// A stored key: its hash and what it may do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub id: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "KeyLimits::is_empty")]
    pub limits: KeyLimits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// RFC 3339, for keys created through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Bootstrap,
    Config,
    Api,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Bootstrap => "bootstrap",
            Source::Config => "config",
            Source::Api => "api",
        }
    }
}

/// The file of keys created through the API.
#[derive(Debug, Default, Serialize, Deserialize)]
struct KeysFile {
    keys: Vec<KeyRecord>,
}

/// Every key the server accepts.
pub struct KeyStore {
    /// (record, where it came from, its hash as bytes)
    keys: RwLock<Vec<(KeyRecord, Source, [u8; 32])>>,
    file: PathBuf,
    /// Serialises writers of the file (create and revoke).
    write: tokio::sync::Mutex<()>,
}

/// Hex SHA-256 of a key.
pub fn hash_key(key: &str) -> String {
    hex(digest(&SHA256, key.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(hex(&buf))
}

/// Whether `name` matches one of `patterns` (`*` matches any run of characters); `None`
/// covers every name.
pub fn covers(patterns: Option<&[String]>, name: &str) -> bool {
    patterns.is_none_or(|ps| ps.iter().any(|p| glob(p, name)))
}

fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*`: the whole name
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Checks a pattern list given by a client or the configuration.
pub fn validate_patterns(patterns: &[String]) -> Result<(), String> {
    if patterns.is_empty() {
        return Err(
            "collections must list at least one pattern (omit it for every collection)".into(),
        );
    }
    if patterns.len() > 256 {
        return Err("collections lists at most 256 patterns".into());
    }
    for p in patterns {
        if p.is_empty() || p.len() > 128 {
            return Err(format!(
                "collection pattern {p:?} must be 1 to 128 characters"
            ));
        }
        if !p
            .chars()
            .all(|c| c == '*' || c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "collection pattern {p:?} may hold letters, digits, '-', '_' and '*'"
            ));
        }
    }
    Ok(())
}

impl KeyStore {
    /// Loads the API's key file under `data_dir`, beside the configured and bootstrap keys.
    pub fn open(
        data_dir: &Path,
        config_keys: Vec<KeyRecord>,
        bootstrap: Option<&str>,
    ) -> anyhow::Result<KeyStore> {
        let file = data_dir.join("auth").join("keys.json");
        let mut keys = Vec::new();
        if let Some(key) = bootstrap {
            anyhow::ensure!(
                key.len() >= 16,
                "the admin API key must be at least 16 characters"
            );
            let record = KeyRecord {
                id: "bootstrap".into(),
                sha256: hash_key(key),
                role: Role::Admin,
                collections: None,
                limits: KeyLimits::default(),
                description: Some("--admin-api-key".into()),
                created_at: None,
            };
            keys.push(with_hash(record, Source::Bootstrap)?);
        }
        for record in config_keys {
            if let Some(p) = &record.collections {
                validate_patterns(p)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("auth key {}", record.id))?;
            }
            keys.push(with_hash(record, Source::Config)?);
        }
        match std::fs::read(&file) {
            Ok(bytes) => {
                let stored: KeysFile = serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading {}", file.display()))?;
                for record in stored.keys {
                    keys.push(with_hash(record, Source::Api)?);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        }
        let mut ids = std::collections::HashSet::new();
        for (record, _, _) in &keys {
            anyhow::ensure!(
                ids.insert(record.id.clone()),
                "two keys have the id {}",
                record.id
            );
        }
        Ok(KeyStore {
            keys: RwLock::new(keys),
            file,
            write: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether any key exists (authentication is on).
    pub fn is_empty(&self) -> bool {
        self.keys.read().is_empty()
    }

    /// The key record whose hash matches `key`, checking every stored hash in constant time.
    pub fn verify(&self, key: &str) -> Option<KeyRecord> {
        let presented = digest(&SHA256, key.as_bytes());
        let mut found = None;
        for (record, _, hash) in self.keys.read().iter() {
            if verify_slices_are_equal(presented.as_ref(), hash).is_ok() {
                found = Some(record.clone());
            }
        }
        found
    }

    pub fn list(&self) -> Vec<KeyInfo> {
        self.keys
            .read()
            .iter()
            .map(|(r, source, _)| KeyInfo {
                id: r.id.clone(),
                role: r.role,
                collections: r.collections.clone(),
                limits: r.limits,
                description: r.description.clone(),
                source: source.as_str().into(),
                created_at: r.created_at.clone(),
            })
            .collect()
    }

    /// Creates a key; returns it (the only time it exists outside the client) and its record.
    pub async fn create(
        &self,
        role: Role,
        collections: Option<Vec<String>>,
        limits: KeyLimits,
        description: Option<String>,
    ) -> anyhow::Result<(String, KeyRecord)> {
        let _write = self.write.lock().await;
        let key = format!("{KEY_PREFIX}{}", random_hex(32)?);
        let record = KeyRecord {
            id: format!("k_{}", random_hex(8)?),
            sha256: hash_key(&key),
            role,
            collections,
            limits,
            description,
            created_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        };
        let mut api_keys = self.api_records();
        api_keys.push(record.clone());
        self.persist(api_keys).await?;
        self.keys
            .write()
            .push(with_hash(record.clone(), Source::Api)?);
        Ok((key, record))
    }

    /// Revokes an API-created key at once. `Ok(false)`: no such key; `Err` with a message:
    /// the key is not the API's to revoke.
    pub async fn revoke(&self, id: &str) -> anyhow::Result<Result<bool, &'static str>> {
        let _write = self.write.lock().await;
        let source = self
            .keys
            .read()
            .iter()
            .find(|(r, _, _)| r.id == id)
            .map(|(_, s, _)| *s);
        match source {
            None => return Ok(Ok(false)),
            Some(Source::Config) => {
                return Ok(Err(
                    "this key is in the configuration file; remove it there",
                ));
            }
            Some(Source::Bootstrap) => {
                return Ok(Err(
                    "the bootstrap key comes from --admin-api-key; change it there",
                ));
            }
            Some(Source::Api) => {}
        }
        let remaining: Vec<KeyRecord> = self
            .api_records()
            .into_iter()
            .filter(|r| r.id != id)
            .collect();
        self.persist(remaining).await?;
        self.keys.write().retain(|(r, _, _)| r.id != id);
        Ok(Ok(true))
    }

    fn api_records(&self) -> Vec<KeyRecord> {
        self.keys
            .read()
            .iter()
            .filter(|(_, s, _)| *s == Source::Api)
            .map(|(r, _, _)| r.clone())
            .collect()
    }

    /// Writes the API's keys: temporary file, fsync, rename, fsync of the directory.
    async fn persist(&self, keys: Vec<KeyRecord>) -> anyhow::Result<()> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let dir = file.parent().expect("keys.json has a parent");
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join("keys.json.tmp");
            let bytes = serde_json::to_vec_pretty(&KeysFile { keys })?;
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &file)?;
            std::fs::File::open(dir)?.sync_all()?;
            anyhow::Ok(())
        })
        .await
        .context("writing the key file")?
    }
}

fn with_hash(record: KeyRecord, source: Source) -> anyhow::Result<(KeyRecord, Source, [u8; 32])> {
    let hash = unhex(&record.sha256).with_context(|| {
        format!(
            "key {}: sha256 must be 64 hex digits (the SHA-256 of the key)",
            record.id
        )
    })?;
    Ok((record, source, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_shell_globs_with_star_only() {
        let p = |s: &str| Some(vec![s.to_string()]);
        assert!(covers(None, "anything"));
        assert!(covers(p("tenant-a-*").as_deref(), "tenant-a-docs"));
        assert!(covers(p("tenant-a-*").as_deref(), "tenant-a-"));
        assert!(!covers(p("tenant-a-*").as_deref(), "tenant-b-docs"));
        assert!(covers(p("exact").as_deref(), "exact"));
        assert!(!covers(p("exact").as_deref(), "exactly"));
        assert!(covers(p("*-prod").as_deref(), "a-prod"));
        assert!(!covers(p("*-prod").as_deref(), "a-prod-2"));
        assert!(covers(p("a*b*c").as_deref(), "aXbYc"));
        assert!(!covers(p("a*b*c").as_deref(), "aXcYb"));
        assert!(!covers(p("ab*ba").as_deref(), "aba")); // the two ends may not overlap
        assert!(covers(p("*").as_deref(), "x"));
    }

    #[tokio::test]
    async fn keys_verify_by_hash_survive_a_restart_and_revoke_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), vec![], Some("bootstrap-key-0123456789")).unwrap();
        assert_eq!(
            store.verify("bootstrap-key-0123456789").unwrap().role,
            Role::Admin
        );
        assert!(store.verify("bootstrap-key-012345678").is_none());
        let (key, record) = store
            .create(
                Role::Read,
                Some(vec!["t-*".into()]),
                KeyLimits::default(),
                None,
            )
            .await
            .unwrap();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 64);
        assert_eq!(store.verify(&key).unwrap().id, record.id);
        let text = std::fs::read_to_string(dir.path().join("auth/keys.json")).unwrap();
        assert!(!text.contains(&key) && text.contains(&hash_key(&key)));
        let again = KeyStore::open(dir.path(), vec![], None).unwrap();
        assert_eq!(again.verify(&key).unwrap().role, Role::Read);
        assert_eq!(again.revoke(&record.id).await.unwrap(), Ok(true));
        assert!(again.verify(&key).is_none());
        assert_eq!(again.revoke(&record.id).await.unwrap(), Ok(false));
        let third = KeyStore::open(dir.path(), vec![], None).unwrap();
        assert!(third.verify(&key).is_none() && third.is_empty());
    }
}
