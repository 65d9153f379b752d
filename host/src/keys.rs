//! `carport keys <plugin>`: creates the P-256 key pair a plugin's key agreements use (Tesla's
//! Vehicle Command Protocol), writes the private key owner-only where the plugin's key secret
//! points, and says what the owner must publish and open to pair it with the car.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use p256::SecretKey;
use p256::pkcs8::{EncodePublicKey, LineEnding};

use crate::config::Config;

/// What was created.
pub struct CreatedKey {
    pub private_key_path: PathBuf,
    /// SubjectPublicKeyInfo PEM, as Tesla fetches it from
    /// `https://<domain>/.well-known/appspecific/com.tesla.3p.public-key.pem`.
    pub public_key_pem: String,
    /// The link the owner opens on the phone with the Tesla app to add the key to the car.
    pub pairing_link: Option<String>,
}

/// Where the plugin's key agreement reads its private key: a `file` secret.
pub fn private_key_path(config: &Config, plugin_id: &str) -> Result<PathBuf> {
    let Some(plugin) = config.plugins.get(plugin_id) else {
        bail!("the configuration has no [plugins.{plugin_id}]");
    };
    let Some(agreement) = &plugin.key_agreement else {
        bail!(
            "[plugins.{plugin_id}] has no key_agreement: add [plugins.{plugin_id}.key_agreement] \
             key = \"vehicle_key\" and [plugins.{plugin_id}.secrets.vehicle_key] file = \
             \"/path/to/vehicle-key.pem\", then run this again"
        );
    };
    let secret = &plugin.secrets[&agreement.key];
    match &secret.file {
        Some(file) => Ok(config.resolve(file)),
        None => bail!(
            "[plugins.{plugin_id}.secrets.{}] must use `file` for carport to write the key there",
            agreement.key
        ),
    }
}

fn new_secret_key() -> Result<SecretKey> {
    // A random 32-byte string is a valid scalar except with negligible probability.
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
}

/// Creates the key pair; an existing private key is kept unless `force`.
pub fn create(config: &Config, plugin_id: &str, force: bool) -> Result<CreatedKey> {
    let path = private_key_path(config, plugin_id)?;
    if path.exists() && !force {
        bail!(
            "{} already holds a key; the car may be paired with it. Keep it, or pass --force to \
             replace it (the car must then be paired again)",
            path.display()
        );
    }
    let secret = new_secret_key()?;
    let private_pem = secret
        .to_sec1_pem(LineEnding::LF)
        .map_err(|error| anyhow::anyhow!("cannot encode the private key: {error}"))?;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    // Written beside the target, owner-only from the start, then renamed over it.
    let mut temporary_name = path.file_name().unwrap_or_default().to_os_string();
    temporary_name.push(format!(".new{}", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(private_pem.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let public_key_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|error| anyhow::anyhow!("cannot encode the public key: {error}"))?;
    let pairing_link = config.plugins[plugin_id]
        .settings
        .get("app_domain")
        .map(|domain| format!("https://tesla.com/_ak/{}", domain.trim_end_matches('/')));
    Ok(CreatedKey {
        private_key_path: path,
        public_key_pem,
        pairing_link,
    })
}
