//! `plugins.toml`: which plugins run, and every capability each one is granted.
//!
//! Parsing is strict: an unknown key is an error that names its line, so a typo in a security
//! setting can never silently fall back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 120;
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 95;
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
pub const DEFAULT_MEMORY_MIB: u64 = 64;
pub const DEFAULT_RESOURCE_POLL_SECONDS: u64 = 60;
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 4;
pub const DEFAULT_MAX_RESULT_BYTES: u64 = 4 * 1024 * 1024;
pub const DEFAULT_STATE_MAX_BYTES: u64 = 4 * 1024 * 1024;
pub const DEFAULT_STATE_MAX_KEYS: u32 = 1000;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub carport: ServerSettings,
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginConfig>,
    /// Where relative paths in the file are resolved from: the file's own folder.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Per-plugin state lives in `<data_dir>/state/<plugin id>/`.
    pub data_dir: Option<PathBuf>,
    /// Compiled components, keyed by the component's sha256 and the engine.
    pub cache_dir: Option<PathBuf>,
    /// The drop-in folder (default `<data_dir>/plugins`), or `false` to refuse drop-ins.
    pub plugins_dir: Option<PluginsDir>,
}

/// `plugins_dir = "path"`, or `plugins_dir = false` for deployments that allow no drop-ins
/// (`true` keeps the default folder).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PluginsDir {
    Enabled(bool),
    Folder(PathBuf),
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginSource {
    /// The file `component` names.
    #[default]
    File,
    /// `<plugins_dir>/<id>.wasm`, granted by this entry (`carport grant <id>` writes it).
    DropIn,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Path of the `.wasm` component; none for a drop-in.
    #[serde(default)]
    pub component: PathBuf,
    /// `drop-in`: the component is `<plugins_dir>/<id>.wasm`.
    #[serde(default)]
    pub source: PluginSource,
    /// When set, the component must have exactly this sha256 (hex) or it is not loaded.
    pub sha256: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Egress allowlist: `scheme://host[:port][/path-prefix]`; `*.` may start the host.
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// Calls of this plugin running at once; one more is refused with an error.
    #[serde(default = "default_max_concurrent_calls")]
    pub max_concurrent_calls: u32,
    /// Largest tool result (text plus structured) the plugin may return.
    #[serde(default = "default_max_result_bytes")]
    pub max_result_bytes: u64,
    /// The plugin's whole state: bytes of all values together, and number of keys.
    #[serde(default = "default_state_max_bytes")]
    pub state_max_bytes: u64,
    #[serde(default = "default_state_max_keys")]
    pub state_max_keys: u32,
    /// Which of the plugin's tools are served, by unprefixed name or glob (`*`, `?`).
    #[serde(default = "every_tool")]
    pub tools: Vec<String>,
    /// Tools never served, even when `tools` matches them.
    #[serde(default)]
    pub deny_tools: Vec<String>,
    /// `full` (one tool per operation) or `compact` (a few tools taking the operation as an
    /// argument, for small context windows).
    #[serde(default)]
    pub tool_mode: ToolMode,
    /// Tool and prompt names carry the plugin id as prefix (`tessie_lock`). `false` serves the
    /// plugin's own names; a name another plugin already serves is then refused at load.
    #[serde(default = "yes")]
    pub prefix_names: bool,
    /// May ask the user questions through the client during a call (MCP elicitation).
    #[serde(default)]
    pub elicitation: bool,
    /// May ask the client's language model during a call (MCP sampling; spends the user's
    /// model budget).
    #[serde(default)]
    pub sampling: bool,
    /// May ask the client for its roots (folders the user shared with the client).
    #[serde(default)]
    pub roots: bool,
    /// May tell the host its catalogue changed (`catalogue.changed`), which describes it again.
    #[serde(default)]
    pub dynamic_catalogue: bool,
    /// Secrets of this plugin holding secp256k1 keys the host signs with for it (EIP-191).
    #[serde(default)]
    pub ethereum_keys: Vec<String>,
    /// How often a subscribed resource is read again to notify the client of changes.
    #[serde(default = "default_resource_poll")]
    pub resource_poll_seconds: u64,
    /// Plain settings handed to the plugin with every call (base URL, default VIN…).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretConfig>,
    /// OAuth2 grants whose access tokens the host obtains and attaches for the plugin.
    #[serde(default)]
    pub oauth: BTreeMap<String, OAuthConfig>,
    /// Signing the user in through their browser (`carport login`, or a tool of the plugin).
    pub sign_in: Option<SignInConfig>,
    /// A private key the host holds for the plugin's key agreements (vehicle command signing).
    pub key_agreement: Option<KeyAgreementConfig>,
}

/// `[plugins.<id>.sign_in]`: the vendor's sign-in page, the loopback address the browser comes
/// back to, and where the result goes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignInConfig {
    /// The vendor's page the user opens (OAuth authorize endpoint or login page).
    pub authorize_url: String,
    /// Loopback `http` address registered with the vendor; carport listens there only while
    /// a sign-in waits.
    pub redirect_uri: String,
    /// `code` (OAuth 2 authorization code) or `token` (the browser comes back with the token).
    pub response: SignInResponse,
    /// Joined with spaces into `scope`; omitted when empty.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Static query parameters of the link. A value may contain `{state}`, which then carries
    /// the state instead of the `state_param` parameter.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Name of the link's parameter carrying the redirect address.
    #[serde(default = "default_redirect_param")]
    pub redirect_param: String,
    /// Name of the redirect's parameter carrying the state back (and of the link's, unless a
    /// `params` value holds `{state}`).
    #[serde(default = "default_state_param")]
    pub state_param: String,
    /// How long a started sign-in waits for the browser.
    #[serde(default = "default_sign_in_timeout")]
    pub timeout_seconds: u64,
    /// `code`: the `[plugins.<id>.oauth.<grant>]` whose token endpoint takes the code and
    /// whose `refresh_token` file receives the refresh token.
    pub grant: Option<String>,
    /// `code`: PKCE with S256.
    #[serde(default = "yes")]
    pub pkce: bool,
    /// `token`: the redirect's parameter holding the token.
    pub token_param: Option<String>,
    /// `token`: the `file` secret of this plugin that receives the token.
    pub store: Option<String>,
    /// Redirect parameters the plugin may read through `status` (never the token).
    #[serde(default)]
    pub claims: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignInResponse {
    Code,
    Token,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyAgreementConfig {
    /// Name of a secret of this plugin holding the P-256 private key in PEM.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    pub token_url: String,
    pub client_id: String,
    /// Name of a secret of this plugin holding the client secret (confidential clients).
    pub client_secret: Option<String>,
    /// Name of a `file` secret of this plugin holding the refresh token; carport writes the
    /// rotated one back. Without it, the client-credentials grant is used.
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    /// Where the access token may be attached (allow-entry syntax); by default the plugin's
    /// only `allow` entry.
    pub origins: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// Read from this environment variable at each use.
    pub env: Option<String>,
    /// Read from this file at each use (trailing newline trimmed).
    pub file: Option<PathBuf>,
    /// Lets the plugin read the value itself. Off by default: the host attaches the secret to
    /// requests and the plugin never sees it.
    #[serde(default)]
    pub readable: bool,
    /// Where the host may attach it (allow-entry syntax); by default the plugin's only
    /// `allow` entry. Naming an `http://` origin here accepts sending it unencrypted.
    pub origins: Option<Vec<String>>,
    /// A header the secret may travel in besides `Authorization` and `X-Api-Key`.
    pub header: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolMode {
    #[default]
    Full,
    Compact,
}

fn default_redirect_param() -> String {
    "redirect_uri".to_string()
}
fn default_state_param() -> String {
    "state".to_string()
}
fn default_sign_in_timeout() -> u64 {
    600
}
fn default_resource_poll() -> u64 {
    DEFAULT_RESOURCE_POLL_SECONDS
}
fn yes() -> bool {
    true
}
fn every_tool() -> Vec<String> {
    vec!["*".to_string()]
}
fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}
fn default_request_timeout() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_SECONDS
}
fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}
fn default_memory_mib() -> u64 {
    DEFAULT_MEMORY_MIB
}
/// Plugin calls alive at once, across all plugins: the runtime's pools are sized for it.
pub const MAX_CONCURRENT_CALLS: u32 = 96;

fn default_max_concurrent_calls() -> u32 {
    DEFAULT_MAX_CONCURRENT_CALLS
}
fn default_max_result_bytes() -> u64 {
    DEFAULT_MAX_RESULT_BYTES
}
fn default_state_max_bytes() -> u64 {
    DEFAULT_STATE_MAX_BYTES
}
fn default_state_max_keys() -> u32 {
    DEFAULT_STATE_MAX_KEYS
}

impl PluginConfig {
    /// The origins a credential may be attached to: its own `origins`, else the plugin's only
    /// `allow` entry. `None` when that is ambiguous (validation refuses it).
    pub fn credential_origins(&self, origins: &Option<Vec<String>>) -> Option<Vec<String>> {
        match origins {
            Some(origins) => Some(origins.clone()),
            None if self.allow.len() <= 1 => Some(self.allow.clone()),
            None => None,
        }
    }

    /// Whether plugins.toml lets this plugin serve `tool` (its unprefixed name).
    pub fn serves(&self, tool: &str) -> bool {
        let matches = |pattern: &String| wildmatch::WildMatch::new(pattern).matches(tool);
        self.tools.iter().any(matches) && !self.deny_tools.iter().any(matches)
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse(&text, &base_dir)
            .with_context(|| format!("invalid configuration {}", path.display()))
    }

    pub fn parse(text: &str, base_dir: &Path) -> Result<Config> {
        let mut config: Config =
            toml::from_str(text).map_err(|error| anyhow::anyhow!("{error}"))?;
        config.base_dir = base_dir.to_path_buf();
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        for (id, plugin) in &self.plugins {
            if !valid_plugin_id(id) {
                bail!(
                    "[plugins.{id}]: a plugin id is 1-32 characters of A-Z, a-z, 0-9, '-' and '_' \
                     (it prefixes the plugin's tool names)"
                );
            }
            match (plugin.source, plugin.component.as_os_str().is_empty()) {
                (PluginSource::File, true) => bail!(
                    "[plugins.{id}] needs `component = \"path/to/{id}.wasm\"`, or \
                     `source = \"drop-in\"` for <plugins_dir>/{id}.wasm"
                ),
                (PluginSource::DropIn, false) => bail!(
                    "[plugins.{id}]: a drop-in's component is <plugins_dir>/{id}.wasm; remove \
                     `component` or `source = \"drop-in\"`"
                ),
                (PluginSource::DropIn, true) if self.plugins_dir().is_none() => {
                    bail!("[plugins.{id}] is a drop-in, but `plugins_dir = false` refuses drop-ins")
                }
                _ => {}
            }
            let several_origins = |table: String| {
                anyhow::anyhow!(
                    "{table}: the plugin may reach several origins, so say which ones this \
                     credential is for, e.g. origins = [\"{}\"]",
                    plugin.allow[0]
                )
            };
            for (name, secret) in &plugin.secrets {
                if secret.env.is_some() == secret.file.is_some() {
                    bail!(
                        "[plugins.{id}.secrets.{name}]: give exactly one source, `env = \"VAR\"` \
                         or `file = \"/path\"`"
                    );
                }
                let is_private_key = plugin
                    .key_agreement
                    .as_ref()
                    .is_some_and(|agreement| &agreement.key == name);
                if !is_private_key && plugin.credential_origins(&secret.origins).is_none() {
                    return Err(several_origins(format!("[plugins.{id}.secrets.{name}]")));
                }
            }
            for (name, grant) in &plugin.oauth {
                let table = format!("[plugins.{id}.oauth.{name}]");
                for secret in grant.refresh_token.iter().chain(&grant.client_secret) {
                    if !plugin.secrets.contains_key(secret) {
                        bail!(
                            "{table} names secret `{secret}`, which is not granted: add \
                             [plugins.{id}.secrets.{secret}]"
                        );
                    }
                }
                if let Some(secret) = &grant.refresh_token
                    && plugin.secrets[secret].file.is_none()
                {
                    bail!(
                        "{table}: refresh tokens rotate and carport writes the new one back, so \
                         [plugins.{id}.secrets.{secret}] must use `file`, not `env`"
                    );
                }
                if plugin.credential_origins(&grant.origins).is_none() {
                    return Err(several_origins(table));
                }
                if grant.refresh_token.is_none() && grant.client_secret.is_none() {
                    bail!(
                        "{table} needs `refresh_token` (refresh-token grant) or `client_secret` \
                         (client-credentials grant)"
                    );
                }
            }
            for key in &plugin.ethereum_keys {
                let table = format!("[plugins.{id}] ethereum_keys");
                let Some(secret) = plugin.secrets.get(key) else {
                    bail!(
                        "{table} names `{key}`, which is not granted: add \
                         [plugins.{id}.secrets.{key}] with env = \"VARIABLE\" and origins = []"
                    );
                };
                if secret.readable || secret.origins.as_ref().is_none_or(|o| !o.is_empty()) {
                    bail!(
                        "{table}: key `{key}` only signs inside carport, so it must never reach \
                         the plugin or a server: set origins = [] and leave readable unset under \
                         [plugins.{id}.secrets.{key}]"
                    );
                }
            }
            if let Some(sign_in) = &plugin.sign_in {
                validate_sign_in(id, plugin, sign_in)?;
            }
            if let Some(agreement) = &plugin.key_agreement {
                let table = format!("[plugins.{id}.key_agreement]");
                let secret = &agreement.key;
                let Some(granted) = plugin.secrets.get(secret) else {
                    bail!(
                        "{table} names secret `{secret}`, which is not granted: add \
                         [plugins.{id}.secrets.{secret}] with file = \"/path/to/key.pem\""
                    );
                };
                if granted.readable {
                    bail!(
                        "{table}: the private key in secret `{secret}` is used by the host only \
                         and never handed to the plugin; remove readable = true from \
                         [plugins.{id}.secrets.{secret}]"
                    );
                }
                if granted
                    .origins
                    .as_ref()
                    .is_some_and(|origins| !origins.is_empty())
                {
                    bail!(
                        "{table}: the private key in secret `{secret}` is never attached to a \
                         request; set origins = [] (or leave it out) in \
                         [plugins.{id}.secrets.{secret}]"
                    );
                }
            }
            let filtered = plugin.tools != every_tool() || !plugin.deny_tools.is_empty();
            if plugin.tool_mode == ToolMode::Compact && filtered {
                bail!(
                    "[plugins.{id}]: tool_mode = \"compact\" serves every operation through a \
                     few shared tools, so `tools` and `deny_tools` could not turn single \
                     operations off; keep tool_mode = \"full\" to deny operations"
                );
            }
            if let Some(digest) = &plugin.sha256
                && (digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit()))
            {
                bail!("[plugins.{id}] sha256 must be 64 hexadecimal digits");
            }
            if plugin.timeout_seconds == 0
                || plugin.memory_mib == 0
                || plugin.resource_poll_seconds == 0
                || plugin.max_concurrent_calls == 0
                || plugin.max_result_bytes == 0
            {
                bail!(
                    "[plugins.{id}] timeout_seconds, memory_mib, resource_poll_seconds, \
                     max_concurrent_calls and max_result_bytes must be above zero"
                );
            }
        }
        let concurrent: u64 = self
            .plugins
            .values()
            .filter(|plugin| plugin.enabled)
            .map(|plugin| u64::from(plugin.max_concurrent_calls))
            .sum();
        if concurrent > u64::from(MAX_CONCURRENT_CALLS) {
            bail!(
                "the enabled plugins' max_concurrent_calls add up to {concurrent}, and carport \
                 runs at most {MAX_CONCURRENT_CALLS} plugin calls at once (each needs a stack \
                 from its pool): lower max_concurrent_calls in the [plugins.<id>] tables"
            );
        }
        Ok(())
    }

    /// Resolves a path from the file against the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        match &self.carport.data_dir {
            Some(dir) => self.resolve(dir),
            None => user_dir("XDG_STATE_HOME", ".local/state").join("carport"),
        }
    }

    /// The drop-in folder, or `None` where `plugins_dir = false` refuses drop-ins.
    pub fn plugins_dir(&self) -> Option<PathBuf> {
        match &self.carport.plugins_dir {
            None | Some(PluginsDir::Enabled(true)) => Some(self.data_dir().join("plugins")),
            Some(PluginsDir::Enabled(false)) => None,
            Some(PluginsDir::Folder(dir)) => Some(self.resolve(dir)),
        }
    }

    /// The component file of a plugin's entry.
    pub fn component_path(&self, id: &str, plugin: &PluginConfig) -> PathBuf {
        match (plugin.source, self.plugins_dir()) {
            (PluginSource::DropIn, Some(dir)) => dir.join(format!("{id}.wasm")),
            _ => self.resolve(&plugin.component),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        if let Some(dir) = std::env::var_os("CARPORT_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        match &self.carport.cache_dir {
            Some(dir) => self.resolve(dir),
            None => user_dir("XDG_CACHE_HOME", ".cache").join("carport"),
        }
    }
}

fn validate_sign_in(id: &str, plugin: &PluginConfig, sign_in: &SignInConfig) -> Result<()> {
    let table = format!("[plugins.{id}.sign_in]");
    let authorize = reqwest::Url::parse(&sign_in.authorize_url)
        .map_err(|error| anyhow::anyhow!("{table} authorize_url: {error}"))?;
    if !matches!(authorize.scheme(), "https" | "http") {
        bail!("{table} authorize_url must be an http(s) address");
    }
    crate::capabilities::sign_in::loopback_redirect(&sign_in.redirect_uri)
        .map_err(|reason| anyhow::anyhow!("{table} redirect_uri: {reason}"))?;
    if sign_in.timeout_seconds == 0 {
        bail!("{table} timeout_seconds must be above zero");
    }
    let file_secret = |key: &str, name: &str| -> Result<()> {
        match plugin.secrets.get(name) {
            None => bail!(
                "{table} {key} names secret `{name}`, which is not granted: add \
                 [plugins.{id}.secrets.{name}] with file = \"/path\""
            ),
            Some(secret) if secret.file.is_none() => bail!(
                "{table}: carport writes the signed-in credential to secret `{name}`, so \
                 [plugins.{id}.secrets.{name}] must use `file`, not `env`"
            ),
            Some(_) => Ok(()),
        }
    };
    match sign_in.response {
        SignInResponse::Code => {
            if sign_in.token_param.is_some() || sign_in.store.is_some() {
                bail!(
                    "{table}: token_param and store belong to response = \"token\"; with \
                     response = \"code\" the refresh token goes to the grant's refresh_token"
                );
            }
            let Some(grant) = &sign_in.grant else {
                bail!(
                    "{table}: response = \"code\" needs grant = \"<name>\" of an \
                     [plugins.{id}.oauth.<name>] table whose token endpoint takes the code"
                );
            };
            let Some(oauth) = plugin.oauth.get(grant) else {
                bail!(
                    "{table} names grant `{grant}`, but there is no [plugins.{id}.oauth.{grant}]"
                );
            };
            let Some(refresh) = &oauth.refresh_token else {
                bail!(
                    "{table}: [plugins.{id}.oauth.{grant}] needs refresh_token = \"<file \
                     secret>\" to receive the refresh token of the sign-in"
                );
            };
            file_secret("grant's refresh_token", refresh)?;
        }
        SignInResponse::Token => {
            if sign_in.grant.is_some() {
                bail!("{table}: grant belongs to response = \"code\"");
            }
            let Some(store) = &sign_in.store else {
                bail!(
                    "{table}: response = \"token\" needs store = \"<file secret of this plugin>\""
                );
            };
            file_secret("store", store)?;
        }
    }
    Ok(())
}

/// 1-32 of A-Z a-z 0-9 - _: the id prefixes tool names and names a drop-in's files.
pub fn valid_plugin_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn user_dir(variable: &str, fallback_under_home: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(variable).filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(fallback_under_home),
        None => std::env::temp_dir(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_with_their_line() {
        let text = "[plugins.tessie]\ncomponent = \"t.wasm\"\nalow = [\"https://x\"]\n";
        let error = Config::parse(text, Path::new(".")).unwrap_err().to_string();
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("alow"), "{error}");
    }

    #[test]
    fn concurrent_calls_together_stay_within_the_pools() {
        let table = |id: &str, calls: u32| {
            format!("[plugins.{id}]\ncomponent = \"{id}.wasm\"\nmax_concurrent_calls = {calls}\n")
        };
        let within = table("a", MAX_CONCURRENT_CALLS / 2) + &table("b", MAX_CONCURRENT_CALLS / 2);
        assert!(Config::parse(&within, Path::new(".")).is_ok());
        let beyond = within + &table("c", 1);
        let error = Config::parse(&beyond, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(error.contains("add up to 97"), "{error}");
        assert!(error.contains("lower max_concurrent_calls"), "{error}");
        let disabled = beyond + "enabled = false\n";
        assert!(Config::parse(&disabled, Path::new(".")).is_ok());
    }

    #[test]
    fn a_secret_needs_exactly_one_source() {
        let text = "[plugins.tessie]\ncomponent = \"t.wasm\"\n[plugins.tessie.secrets.token]\nreadable = true\n";
        let error = Config::parse(text, Path::new(".")).unwrap_err().to_string();
        assert!(error.contains("exactly one source"), "{error}");
    }

    #[test]
    fn tool_selection_by_name_and_glob() {
        let text = "[plugins.t]\ncomponent = \"t.wasm\"\ntools = [\"get_*\", \"door_lock\"]\n\
                    deny_tools = [\"get_secret*\"]\n";
        let config = Config::parse(text, Path::new(".")).unwrap();
        let plugin = &config.plugins["t"];
        assert!(plugin.serves("get_vehicle"));
        assert!(plugin.serves("door_lock"));
        assert!(!plugin.serves("door_unlock"));
        assert!(!plugin.serves("get_secret_key"));
        let everything =
            Config::parse("[plugins.t]\ncomponent = \"t.wasm\"\n", Path::new(".")).unwrap();
        assert!(everything.plugins["t"].serves("erase_user_data"));
    }

    #[test]
    fn compact_mode_refuses_tool_filters_it_could_not_enforce() {
        let text = "[plugins.t]\ncomponent = \"t.wasm\"\ntool_mode = \"compact\"\n\
                    deny_tools = [\"*unlock*\"]\n";
        let error = Config::parse(text, Path::new(".")).unwrap_err().to_string();
        assert!(
            error.contains("could not turn single operations off"),
            "{error}"
        );
        let plain = "[plugins.t]\ncomponent = \"t.wasm\"\ntool_mode = \"compact\"\n";
        assert!(Config::parse(plain, Path::new(".")).is_ok());
    }

    #[test]
    fn a_signing_key_can_be_neither_read_nor_sent() {
        let table = |secret: &str| {
            format!(
                "[plugins.d]\ncomponent = \"d.wasm\"\nallow = [\"https://a.example\"]\n\
                 ethereum_keys = [\"key\"]\n[plugins.d.secrets.key]\nenv = \"K\"\n{secret}"
            )
        };
        for unsafe_grant in [
            "",
            "origins = []\nreadable = true\n",
            "origins = [\"https://a.example\"]\n",
        ] {
            let error = Config::parse(&table(unsafe_grant), Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("must never reach the plugin or a server"),
                "{error}"
            );
        }
        assert!(Config::parse(&table("origins = []\n"), Path::new(".")).is_ok());
        let missing = "[plugins.d]\ncomponent = \"d.wasm\"\nethereum_keys = [\"key\"]\n";
        let error = Config::parse(missing, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("names `key`, which is not granted"),
            "{error}"
        );
    }

    #[test]
    fn a_refresh_token_must_live_in_a_file() {
        let text = "[plugins.t]\ncomponent = \"t.wasm\"\n[plugins.t.secrets.refresh]\nenv = \"R\"\n\
                    [plugins.t.oauth.fleet]\ntoken_url = \"https://auth.example/token\"\n\
                    client_id = \"c\"\nrefresh_token = \"refresh\"\n";
        let error = Config::parse(text, Path::new(".")).unwrap_err().to_string();
        assert!(error.contains("must use `file`"), "{error}");
        let missing = text.replace("refresh_token = \"refresh\"", "refresh_token = \"other\"");
        let error = Config::parse(&missing, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("names secret `other`, which is not granted"),
            "{error}"
        );
    }

    #[test]
    fn credentials_of_a_plugin_with_several_origins_name_theirs() {
        let text = "[plugins.t]\ncomponent = \"t.wasm\"\n\
                    allow = [\"https://a.example\", \"https://b.example\"]\n\
                    [plugins.t.secrets.token]\nenv = \"T\"\n";
        let error = Config::parse(text, Path::new(".")).unwrap_err().to_string();
        assert!(error.contains("[plugins.t.secrets.token]"), "{error}");
        assert!(
            error.contains("origins = [\"https://a.example\"]"),
            "{error}"
        );
        let named = format!("{text}origins = [\"https://b.example\"]\n");
        let config = Config::parse(&named, Path::new(".")).unwrap();
        let plugin = &config.plugins["t"];
        assert_eq!(
            plugin.credential_origins(&plugin.secrets["token"].origins),
            Some(vec!["https://b.example".to_string()])
        );
        let single = "[plugins.t]\ncomponent = \"t.wasm\"\nallow = [\"https://a.example\"]\n\
                      [plugins.t.secrets.token]\nenv = \"T\"\n";
        let config = Config::parse(single, Path::new(".")).unwrap();
        let plugin = &config.plugins["t"];
        assert_eq!(
            plugin.credential_origins(&plugin.secrets["token"].origins),
            Some(vec!["https://a.example".to_string()])
        );
        assert_eq!(plugin.max_concurrent_calls, DEFAULT_MAX_CONCURRENT_CALLS);
        assert_eq!(plugin.state_max_keys, DEFAULT_STATE_MAX_KEYS);
    }

    #[test]
    fn a_sign_in_names_its_grant_or_store_and_listens_on_loopback_only() {
        let base = "[plugins.t]\ncomponent = \"t.wasm\"\n[plugins.t.secrets.refresh]\nfile = \"r\"\n\
                    [plugins.t.oauth.fleet]\ntoken_url = \"https://auth.example/token\"\n\
                    client_id = \"c\"\nrefresh_token = \"refresh\"\n[plugins.t.sign_in]\n\
                    authorize_url = \"https://auth.example/authorize\"\n";
        let code = format!(
            "{base}redirect_uri = \"http://localhost:3333/callback\"\nresponse = \"code\"\ngrant = \"fleet\"\n"
        );
        let config = Config::parse(&code, Path::new(".")).unwrap();
        let sign_in = config.plugins["t"].sign_in.as_ref().unwrap();
        assert_eq!(sign_in.redirect_param, "redirect_uri");
        assert!(sign_in.pkce);
        let remote = code.replace("http://localhost:3333", "http://203.0.113.5:3333");
        let error = Config::parse(&remote, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a loopback address"), "{error}");
        let no_grant = code.replace("grant = \"fleet\"\n", "");
        let error = Config::parse(&no_grant, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs grant"), "{error}");
        let token = code.replace(
            "response = \"code\"\ngrant = \"fleet\"",
            "response = \"token\"",
        );
        let error = Config::parse(&token, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs store"), "{error}");
        let typo = format!("{code}scope = \"openid\"\n");
        let error = Config::parse(&typo, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(error.contains("scope"), "{error}");
    }

    #[test]
    fn the_repositorys_plugins_toml_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins.toml");
        let config = Config::load(&path).unwrap();
        assert!(config.plugins.contains_key("tessie"));
        assert!(!config.plugins["tesla"].serves("erase_user_data"));
    }

    #[test]
    fn defaults_and_relative_paths() {
        let text = "[plugins.tessie]\ncomponent = \"c/t.wasm\"\n";
        let config = Config::parse(text, Path::new("/etc/carport")).unwrap();
        let plugin = &config.plugins["tessie"];
        assert!(plugin.enabled);
        assert_eq!(plugin.memory_mib, DEFAULT_MEMORY_MIB);
        assert_eq!(
            config.resolve(&plugin.component),
            Path::new("/etc/carport/c/t.wasm")
        );
    }
}
