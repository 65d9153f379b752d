//! `state`: a key/value store private to each plugin, one file per key in a directory opened
//! with cap-std, so no key can name a path outside it. Writes go to a temporary file, are
//! synced, then renamed over the old value: a crash leaves either the old or the new value,
//! never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::CallState;
use super::carport::provider::state::Host;

pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
const MAX_KEY_CHARS: usize = 128;

pub struct PluginState {
    plugin_id: String,
    dir: Dir,
    /// Only for syncing the directory after a rename; every access by key goes through `dir`.
    path: PathBuf,
}

impl PluginState {
    pub fn open(plugin_id: &str, path: &Path) -> anyhow::Result<PluginState> {
        std::fs::create_dir_all(path)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        Ok(PluginState {
            plugin_id: plugin_id.to_string(),
            dir,
            path: path.to_path_buf(),
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
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "plugin `{}` tried to store {} bytes under {key:?}; the limit is {MAX_VALUE_BYTES}",
                self.plugin_id,
                value.len()
            ));
        }
        let temporary = format!(".{key}.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = self.dir.create(&temporary)?;
            file.write_all(value)?;
            file.sync_all()?;
            self.dir.rename(&temporary, &self.dir, key)?;
            // Make the rename itself durable.
            std::fs::File::open(&self.path)?.sync_all()
        };
        write().map_err(|error| self.io_failure("write", key, error))
    }

    pub fn delete(&self, key: &str) -> Result<(), String> {
        self.check_key(key)?;
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

    #[test]
    fn keys_cannot_escape_and_writes_replace_atomically() {
        let root = tempfile::tempdir().unwrap();
        let state = PluginState::open("p", &root.path().join("p")).unwrap();
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
