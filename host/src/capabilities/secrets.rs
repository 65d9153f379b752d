//! `secrets`: values granted to a plugin by name in plugins.toml.
//!
//! A secret is resolved at each use (so a rotated file or variable takes effect at once) and
//! normally only attached to outbound requests by the `http` capability; `reveal` hands the
//! value to the plugin only when the grant says `readable = true`. Values never appear in logs
//! or error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::CallState;
use super::carport::provider::secrets::Host;
use super::http::CredentialScope;

/// A secret's value; its `Debug` never shows it.
#[derive(Clone)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: String) -> SecretValue {
        SecretValue(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SecretValue(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct SecretGrant {
    pub source: SecretSource,
    pub readable: bool,
    /// Where, and in which header, the host may attach it.
    pub scope: CredentialScope,
}

#[derive(Debug)]
pub struct SecretGrants {
    plugin_id: String,
    grants: BTreeMap<String, SecretGrant>,
}

impl SecretGrants {
    pub fn new(plugin_id: &str, grants: BTreeMap<String, SecretGrant>) -> SecretGrants {
        SecretGrants {
            plugin_id: plugin_id.to_string(),
            grants,
        }
    }

    /// The grant of a secret, refused when plugins.toml does not grant it.
    pub fn grant(&self, name: &str) -> Result<&SecretGrant, String> {
        let plugin = &self.plugin_id;
        self.grants.get(name).ok_or_else(|| {
            format!(
                "plugin `{plugin}` used secret `{name}`, which plugins.toml does not grant it; to \
                 grant it, add [plugins.{plugin}.secrets.{name}] with env = \"VARIABLE\" or \
                 file = \"/path\""
            )
        })
    }

    /// The value of a granted secret, for the host's own use (attaching it to a request).
    pub fn resolve(&self, name: &str) -> Result<SecretValue, String> {
        let plugin = &self.plugin_id;
        let grant = self.grant(name)?;
        let value = match &grant.source {
            SecretSource::Env(variable) => std::env::var(variable).map_err(|_| {
                format!(
                    "secret `{name}` of plugin `{plugin}` is not set: the environment variable \
                     {variable} named by [plugins.{plugin}.secrets.{name}] is empty or missing"
                )
            })?,
            SecretSource::File(path) => std::fs::read_to_string(path).map_err(|error| {
                format!(
                    "secret `{name}` of plugin `{plugin}` is not set: cannot read {} named by \
                     [plugins.{plugin}.secrets.{name}] ({error})",
                    path.display()
                )
            })?,
        };
        let value = value.trim_end_matches(['\n', '\r']).to_string();
        if value.is_empty() {
            return Err(format!(
                "secret `{name}` of plugin `{plugin}` is empty; set a value at the source named \
                 by [plugins.{plugin}.secrets.{name}]"
            ));
        }
        Ok(SecretValue(value))
    }

    /// Replaces a `file` secret's value atomically (write, sync, rename, sync the folder), for
    /// values that rotate, such as OAuth refresh tokens.
    pub fn store(&self, name: &str, value: &str) -> Result<(), String> {
        let plugin = &self.plugin_id;
        let Some(SecretGrant {
            source: SecretSource::File(path),
            ..
        }) = self.grants.get(name)
        else {
            return Err(format!(
                "secret `{name}` of plugin `{plugin}` must be a `file` secret so that carport can \
                 store its rotated value"
            ));
        };
        write_atomically(path, value.as_bytes()).map_err(|error| {
            format!(
                "cannot store the new value of secret `{name}` of plugin `{plugin}` in {}: {error}",
                path.display()
            )
        })
    }

    /// The value, for the plugin itself: only with `readable = true`.
    pub fn reveal(&self, name: &str) -> Result<SecretValue, String> {
        let plugin = &self.plugin_id;
        match self.grants.get(name) {
            Some(grant) if !grant.readable => Err(format!(
                "plugin `{plugin}` may not read secret `{name}`: it is granted for attaching to \
                 requests only (http credential); set readable = true under \
                 [plugins.{plugin}.secrets.{name}] if the plugin must see the value"
            )),
            _ => self.resolve(name),
        }
    }
}

pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let folder = path.parent().unwrap_or(std::path::Path::new("."));
    let mut temporary_name = path.file_name().unwrap_or_default().to_os_string();
    temporary_name.push(format!(".tmp{}", std::process::id()));
    let temporary = folder.join(temporary_name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(folder)?.sync_all()
}

impl Host for CallState {
    async fn reveal(&mut self, name: String) -> wasmtime::Result<Result<String, String>> {
        let revealed = self.grants.secrets.reveal(&name);
        if let Err(refusal) = &revealed {
            tracing::warn!(plugin = self.plugin_id(), "refused: {refusal}");
        }
        Ok(revealed.map(|value| value.expose().to_string()))
    }
}
