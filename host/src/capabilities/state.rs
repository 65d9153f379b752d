//! `state`: a key/value store private to each plugin, one file per key in a directory opened
//! with cap-std, so no key can name a path outside it. Writes go to a temporary file, are
//! synced, then renamed over the old value: a crash leaves either the old or the new value,
//! never half of one.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use super::CallState;
use super::carport::provider::state::Host;

pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
const MAX_KEY_CHARS: usize = 128;
/// Temporary files start with a dot (keys cannot) and end with this.
const TEMPORARY_SUFFIX: &str = ".tmp";

/// How much one plugin may keep: bytes of all values together, and keys.
#[derive(Debug, Clone, Copy)]
pub struct StateQuota {
    pub max_bytes: u64,
    pub max_keys: u32,
}

pub struct PluginState {
    plugin_id: String,
    dir: Dir,
    /// Only for syncing the directory after a rename; every access by key goes through `dir`.
    path: PathBuf,
    quota: StateQuota,
    /// Serialises writes of this plugin, so the quota is checked against what is really there.
    writing: Mutex<()>,
    /// Makes each write's temporary file its own, so concurrent writes never share one.
    writes: AtomicU64,
}

impl PluginState {
    /// Opens (creating it if need be) the plugin's state directory, readable by carport's
    /// user only, and removes temporary files a crash left behind.
    pub fn open(plugin_id: &str, path: &Path, quota: StateQuota) -> anyhow::Result<PluginState> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        for entry in dir.entries()? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(TEMPORARY_SUFFIX) {
                dir.remove_file(name.as_ref())?;
            }
        }
        Ok(PluginState {
            plugin_id: plugin_id.to_string(),
            dir,
            path: path.to_path_buf(),
            quota,
            writing: Mutex::new(()),
            writes: AtomicU64::new(0),
        })
    }

    fn check_key(&self, key: &str) -> Result<(), String> {
        let valid = !key.is_empty()
            && key.len() <= MAX_KEY_CHARS
            && !key.starts_with('.')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if valid {
            Ok(())
        } else {
            Err(format!(
                "plugin `{}` used state key {key:?}: keys are 1-{MAX_KEY_CHARS} characters of \
                 A-Z, a-z, 0-9, '-', '_' and '.', not starting with '.'",
                self.plugin_id
            ))
        }
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.check_key(key)?;
        match self.dir.read(key) {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(self.io_failure("read", key, error)),
        }
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.check_key(key)?;
        let plugin = &self.plugin_id;
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "plugin `{plugin}` tried to store {} bytes under {key:?}; the limit is \
                 {MAX_VALUE_BYTES} a value",
                value.len()
            ));
        }
        let _writing = self
            .writing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (keys, bytes, existing) = self
            .usage(key)
            .map_err(|error| self.io_failure("measure", key, error))?;
        let StateQuota {
            max_bytes,
            max_keys,
        } = self.quota;
        if existing.is_none() && keys >= u64::from(max_keys) {
            return Err(format!(
                "plugin `{plugin}` may not store a new key {key:?}: it already has {keys} keys, \
                 its limit (state_max_keys under [plugins.{plugin}] in plugins.toml)"
            ));
        }
        let after = bytes - existing.unwrap_or(0) + value.len() as u64;
        if after > max_bytes {
            return Err(format!(
                "plugin `{plugin}` may not store {} bytes under {key:?}: its state would grow to \
                 {after} bytes, over its {max_bytes}-byte limit (state_max_bytes under \
                 [plugins.{plugin}] in plugins.toml)",
                value.len()
            ));
        }
        let temporary = format!(
            ".{key}.{}.{}{TEMPORARY_SUFFIX}",
            std::process::id(),
            self.writes.fetch_add(1, Ordering::Relaxed)
        );
        let write = || -> std::io::Result<()> {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true).mode(0o600);
            let mut file = self.dir.open_with(&temporary, &options)?;
            file.write_all(value)?;
            file.sync_all()?;
            self.dir.rename(&temporary, &self.dir, key)?;
            // Make the rename itself durable.
            std::fs::File::open(&self.path)?.sync_all()
        };
        write().map_err(|error| {
            let _ = self.dir.remove_file(&temporary);
            self.io_failure("write", key, error)
        })
    }

    /// Keys, bytes of all values, and the size of `key`'s value if it exists.
    fn usage(&self, key: &str) -> std::io::Result<(u64, u64, Option<u64>)> {
        let (mut keys, mut bytes, mut existing) = (0, 0, None);
        for entry in self.dir.entries()? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let size = entry.metadata()?.len();
            keys += 1;
            bytes += size;
            if name.to_str() == Some(key) {
                existing = Some(size);
            }
        }
        Ok((keys, bytes, existing))
    }

    pub fn delete(&self, key: &str) -> Result<(), String> {
        self.check_key(key)?;
        let _writing = self
            .writing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match self.dir.remove_file(key) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(self.io_failure("delete", key, error)),
        }
    }

    fn io_failure(&self, action: &str, key: &str, error: std::io::Error) -> String {
        tracing::error!(plugin = %self.plugin_id, "state {action} of {key:?} failed: {error}");
        format!("the host could not {action} state key {key:?}: {error}")
    }
}

impl Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        Ok(self.grants.state.get(&key))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(self.grants.state.set(&key, &value))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        Ok(self.grants.state.delete(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: StateQuota = StateQuota {
        max_bytes: 100,
        max_keys: 3,
    };

    #[test]
    fn quotas_count_bytes_and_keys_and_replacing_a_value_frees_its_bytes() {
        let root = tempfile::tempdir().unwrap();
        let state = PluginState::open("p", &root.path().join("p"), QUOTA).unwrap();
        state.set("a", &[0; 60]).unwrap();
        let refusal = state.set("b", &[0; 41]).unwrap_err();
        assert!(
            refusal.contains("state_max_bytes under [plugins.p]"),
            "{refusal}"
        );
        state.set("a", &[0; 90]).unwrap();
        state.set("a", &[0; 10]).unwrap();
        state.set("b", &[0; 10]).unwrap();
        state.set("c", &[0; 10]).unwrap();
        let refusal = state.set("d", b"x").unwrap_err();
        assert!(
            refusal.contains("state_max_keys under [plugins.p]"),
            "{refusal}"
        );
        state.set("c", b"replaced").unwrap();
        state.delete("c").unwrap();
        state.set("d", b"x").unwrap();
    }

    #[test]
    fn state_is_private_and_concurrent_writes_never_mix() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("p");
        let quota = StateQuota {
            max_bytes: 10 * 1024 * 1024,
            max_keys: 10,
        };
        let state = std::sync::Arc::new(PluginState::open("p", &path, quota).unwrap());
        let writers: Vec<_> = (0..8u8)
            .map(|writer| {
                let state = state.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        state.set("shared", &vec![writer; 256 * 1024]).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let value = state.get("shared").unwrap().unwrap();
        assert_eq!(value.len(), 256 * 1024);
        assert!(value.iter().all(|byte| *byte == value[0]), "values mixed");
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o700);
        assert_eq!(mode(&path.join("shared")), 0o600);
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 1, "leftovers");
    }

    #[test]
    fn keys_cannot_escape_and_writes_replace_atomically() {
        let root = tempfile::tempdir().unwrap();
        let state = PluginState::open("p", &root.path().join("p"), QUOTA).unwrap();
        assert!(
            state
                .set("../escape", b"x")
                .unwrap_err()
                .contains("state key")
        );
        assert!(state.set(".hidden", b"x").is_err());
        state.set("token", b"one").unwrap();
        state.set("token", b"two").unwrap();
        assert_eq!(state.get("token").unwrap(), Some(b"two".to_vec()));
        assert!(!root.path().join("escape").exists());
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("p"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("token")]);
        state.delete("token").unwrap();
        assert_eq!(state.get("token").unwrap(), None);
    }
}
