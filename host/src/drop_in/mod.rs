//! The drop-in folder: third parties' components (`<id>.wasm`), each with a manifest
//! (`<id>.toml`) of what it asks for. Nothing in the folder grants anything: a drop-in runs
//! only once plugins.toml has an entry for it (`source = "drop-in"`), which `carport grant`
//! writes after showing the request, with the component's digest pinned.

pub mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{self, Config, PluginSource};

/// What a drop-in asks the operator for, from `<id>.toml` beside its component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// What it is, in its author's words.
    #[serde(default)]
    pub description: String,
    /// Origins it needs to reach (allow-entry syntax).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Settings it reads, with the values it proposes.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secrets it needs, by name.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRequest>,
    /// Questions to the client it wants to ask: `elicitation`, `sampling`, `roots`.
    #[serde(default)]
    pub client: Vec<ClientCapability>,
    /// Memory one call needs, when more than carport's default.
    pub memory_mib: Option<u64>,
    /// Its tools depend on its state, and it says when they change (`catalogue.changed`).
    #[serde(default)]
    pub dynamic_catalogue: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRequest {
    /// What the secret is and where to get it.
    #[serde(default)]
    pub description: String,
    /// A header it travels in besides `Authorization` and `X-Api-Key`.
    pub header: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCapability {
    Elicitation,
    Sampling,
    Roots,
}

impl ClientCapability {
    fn key(self) -> &'static str {
        match self {
            ClientCapability::Elicitation => "elicitation",
            ClientCapability::Sampling => "sampling",
            ClientCapability::Roots => "roots",
        }
    }
}

/// One component found in the drop-in folder.
#[derive(Debug, Clone)]
pub struct DropIn {
    pub id: String,
    pub component: PathBuf,
    pub manifest_path: PathBuf,
}

impl DropIn {
    /// The manifest beside the component; none is the same as one that asks for nothing.
    pub fn manifest(&self) -> Result<Manifest> {
        read_manifest(&self.manifest_path)
    }
}

pub fn read_manifest(path: &Path) -> Result<Manifest> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|error| anyhow::anyhow!("{error}"))
            .with_context(|| format!("invalid manifest {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The manifest that belongs beside a component file.
pub fn manifest_path(component: &Path) -> PathBuf {
    component.with_extension("toml")
}

/// Every `<id>.wasm` in the folder whose name is a valid plugin id, by id. A missing folder
/// holds nothing.
pub fn scan(dir: &Path) -> Vec<DropIn> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<DropIn> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "wasm")
        })
        .filter_map(|path| {
            let id = path.file_stem()?.to_str()?.to_string();
            if !config::valid_plugin_id(&id) {
                tracing::warn!(
                    "drop-in {} ignored: a plugin id is 1-32 of A-Z a-z 0-9 - _",
                    path.display()
                );
                return None;
            }
            Some(DropIn {
                manifest_path: manifest_path(&path),
                component: path,
                id,
            })
        })
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// The drop-ins of `config`'s folder that no plugins.toml entry grants.
pub fn awaiting_grant(config: &Config) -> Vec<DropIn> {
    let Some(dir) = config.plugins_dir() else {
        return Vec::new();
    };
    scan(&dir)
        .into_iter()
        .filter(|drop_in| {
            config
                .plugins
                .get(&drop_in.id)
                .is_none_or(|entry| entry.source != PluginSource::DropIn)
        })
        .collect()
}

pub fn sha256_of(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The request of a manifest, for a person deciding whether to grant it.
pub fn describe_request(manifest: &Manifest) -> Vec<String> {
    let mut lines = Vec::new();
    if !manifest.description.is_empty() {
        lines.push(format!(
            "says it is: {:?}",
            crate::runtime::catalogue::one_line(&manifest.description, 400)
        ));
    }
    match manifest.allow.is_empty() {
        true => lines.push("network: none".to_string()),
        false => lines.push(format!("network: {}", manifest.allow.join(", "))),
    }
    for (name, secret) in &manifest.secrets {
        let header = secret
            .header
            .as_deref()
            .map(|header| format!(" (in header {header})"))
            .unwrap_or_default();
        lines.push(format!(
            "secret `{name}`{header}: {}",
            crate::runtime::catalogue::one_line(&secret.description, 200)
        ));
    }
    for (key, value) in &manifest.settings {
        lines.push(format!("setting {key} = {value:?}"));
    }
    for capability in &manifest.client {
        lines.push(format!("may ask the client: {}", capability.key()));
    }
    if let Some(memory) = manifest.memory_mib {
        lines.push(format!("memory per call: {memory} MiB"));
    }
    if manifest.dynamic_catalogue {
        lines.push("may change its tools while carport runs (dynamic_catalogue)".to_string());
    }
    lines
}

/// What `carport grant` did.
#[derive(Debug)]
pub struct Granted {
    pub digest: String,
    pub request: Vec<String>,
    /// Environment variables the operator must set for the granted secrets.
    pub secret_variables: Vec<String>,
}

/// Writes `[plugins.<id>]` for the drop-in `<id>` into the plugins.toml at `config_path`:
/// what its manifest asks for, and its current digest pinned. The rest of the file is kept as
/// it was, comments included; an earlier grant of the same drop-in is replaced.
pub fn grant(config_path: &Path, id: &str) -> Result<Granted> {
    let config = Config::load(config_path)?;
    let Some(dir) = config.plugins_dir() else {
        bail!(
            "{} sets `plugins_dir = false`: drop-ins are refused",
            config_path.display()
        );
    };
    let component = dir.join(format!("{id}.wasm"));
    if !component.is_file() {
        bail!("there is no drop-in {}", component.display());
    }
    if let Some(existing) = config.plugins.get(id)
        && existing.source != PluginSource::DropIn
    {
        bail!(
            "[plugins.{id}] in {} already names another component; remove it or choose \
             another name for the drop-in",
            config_path.display()
        );
    }
    let manifest = read_manifest(&manifest_path(&component))?;
    let digest = sha256_of(&component)?;

    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", config_path.display()))?;
    let mut entry = toml_edit::Table::new();
    entry.decor_mut().set_prefix(format!(
        "\n# Granted by `carport grant {id}`: what {id}.toml asks for, pinned to this build.\n"
    ));
    entry["source"] = toml_edit::value("drop-in");
    entry["sha256"] = toml_edit::value(digest.clone());
    entry["allow"] = toml_edit::value(manifest.allow.iter().collect::<toml_edit::Array>());
    for capability in &manifest.client {
        entry[capability.key()] = toml_edit::value(true);
    }
    if let Some(memory) = manifest.memory_mib {
        entry["memory_mib"] = toml_edit::value(i64::try_from(memory).unwrap_or(i64::MAX));
    }
    if manifest.dynamic_catalogue {
        entry["dynamic_catalogue"] = toml_edit::value(true);
    }
    if !manifest.settings.is_empty() {
        let mut settings = toml_edit::Table::new();
        for (key, value) in &manifest.settings {
            settings[key] = toml_edit::value(value.clone());
        }
        entry["settings"] = toml_edit::Item::Table(settings);
    }
    let mut secret_variables = Vec::new();
    if !manifest.secrets.is_empty() {
        let mut secrets = toml_edit::Table::new();
        secrets.set_implicit(true);
        for (name, request) in &manifest.secrets {
            let variable = format!("{id}_{name}")
                .to_ascii_uppercase()
                .replace('-', "_");
            let mut secret = toml_edit::Table::new();
            secret["env"] = toml_edit::value(variable.clone());
            if let Some(header) = &request.header {
                secret["header"] = toml_edit::value(header.clone());
            }
            if manifest.allow.len() > 1 {
                secret["origins"] =
                    toml_edit::value(manifest.allow.iter().collect::<toml_edit::Array>());
            }
            secrets[name] = toml_edit::Item::Table(secret);
            secret_variables.push(variable);
        }
        entry["secrets"] = toml_edit::Item::Table(secrets);
    }
    if !document.contains_key("plugins") {
        let mut plugins = toml_edit::Table::new();
        plugins.set_implicit(true);
        document["plugins"] = toml_edit::Item::Table(plugins);
    }
    let plugins = document["plugins"]
        .as_table_mut()
        .with_context(|| format!("`plugins` in {} is not a table", config_path.display()))?;
    plugins.insert(id, toml_edit::Item::Table(entry));

    let written = document.to_string();
    Config::parse(&written, &config.base_dir)
        .context("the granted entry would make plugins.toml invalid")?;
    write_atomically(config_path, written.as_bytes())?;
    Ok(Granted {
        digest,
        request: describe_request(&manifest),
        secret_variables,
    })
}

/// Replaces the file in one step, so a server watching it never reads half of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension(format!("toml.{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    if let Ok(metadata) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&temporary, metadata.permissions());
    }
    std::fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_keeps_the_rest_of_the_file_and_pins_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::write(plugins.join("acme.wasm"), b"not really wasm").unwrap();
        std::fs::write(
            plugins.join("acme.toml"),
            "description = \"Acme cars\"\nallow = [\"https://api.acme.example\"]\n\
             client = [\"elicitation\"]\ndynamic_catalogue = true\n[settings]\nregion = \"eu\"\n\
             [secrets.token]\ndescription = \"Acme API key\"\n",
        )
        .unwrap();
        let config = dir.path().join("plugins.toml");
        let original = "# my carport\n[carport]\nplugins_dir = \"plugins\"  # here\n\n\
                        [plugins.other]\ncomponent = \"o.wasm\" # keep me\n";
        std::fs::write(&config, original).unwrap();

        let granted = grant(&config, "acme").unwrap();
        let written = std::fs::read_to_string(&config).unwrap();
        assert!(written.starts_with(original), "{written}");
        let parsed = Config::load(&config).unwrap();
        let entry = &parsed.plugins["acme"];
        assert_eq!(entry.source, PluginSource::DropIn);
        assert_eq!(entry.sha256.as_deref(), Some(granted.digest.as_str()));
        assert_eq!(
            granted.digest,
            sha256_of(&plugins.join("acme.wasm")).unwrap()
        );
        assert_eq!(entry.allow, vec!["https://api.acme.example"]);
        assert!(entry.elicitation && !entry.sampling);
        assert!(entry.dynamic_catalogue);
        assert_eq!(entry.settings["region"], "eu");
        assert_eq!(entry.secrets["token"].env.as_deref(), Some("ACME_TOKEN"));
        assert_eq!(granted.secret_variables, vec!["ACME_TOKEN"]);
        assert_eq!(
            parsed.component_path("acme", entry),
            plugins.join("acme.wasm")
        );

        std::fs::write(plugins.join("acme.wasm"), b"another build").unwrap();
        let again = grant(&config, "acme").unwrap();
        let rewritten = std::fs::read_to_string(&config).unwrap();
        assert_eq!(
            rewritten.matches("[plugins.acme]").count(),
            1,
            "{rewritten}"
        );
        assert!(rewritten.contains(&again.digest) && !rewritten.contains(&granted.digest));
    }

    #[test]
    fn drop_ins_can_be_refused_entirely() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("plugins.toml");
        std::fs::write(&config, "[carport]\nplugins_dir = false\n").unwrap();
        let error = grant(&config, "acme").unwrap_err().to_string();
        assert!(error.contains("drop-ins are refused"), "{error}");
        let entry = "[carport]\nplugins_dir = false\n[plugins.acme]\nsource = \"drop-in\"\n";
        let error = Config::parse(entry, dir.path()).unwrap_err().to_string();
        assert!(error.contains("refuses drop-ins"), "{error}");
    }
}
