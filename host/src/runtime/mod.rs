//! Loading components and calling them under limits.
//!
//! Every call gets a fresh instance from a pre-linked [`PluginPre`] (~15 µs), its own store
//! with a memory cap, and a wall-clock deadline enforced by epoch interruption. A trap, a
//! timeout or an exhausted memory cap ends that call only; the plugin's next call starts clean.
//! A plugin runs at most `max_concurrent_calls` calls at once, each on a thread of its own, so
//! a plugin that spins on every one of them leaves the async runtime (and every other plugin)
//! to the operating system's fair scheduling.

pub mod cache;
pub mod limits;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wasmtime::component::Linker;
use wasmtime::{Config as EngineConfig, Engine, Store, Trap, UpdateDeadline};

use crate::capabilities::{
    self, CallContext, CallState, Grants, Output, PluginPre, Tool, ToolError,
    http::{CredentialScope, Egress},
    log::LogBudget,
    progress::ProgressSink,
    secrets::{SecretGrant, SecretGrants, SecretSource},
    state::{PluginState, StateQuota},
};
use crate::config::{Config, PluginConfig};
use cache::ComponentCache;
use limits::MemoryCap;

/// How often the engine's epoch advances: the granularity of deadlines and of yielding.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// `describe` runs at start-up; a plugin that takes longer is not worth waiting for.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
const WIT_WORLD: &str = "carport:provider/plugin@0.1.0";
/// Bounds on what a plugin says about itself: it reaches the assistant's instructions and tool
/// list, where it must stay short and cannot pose as carport.
const MAX_SUMMARY_CHARS: usize = 400;
const MAX_VERSION_CHARS: usize = 32;
const MAX_TITLE_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 4000;

pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
}

impl Runtime {
    pub fn new() -> Result<Runtime> {
        let mut config = EngineConfig::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        capabilities::add_to_linker(&mut linker)?;
        // A plain thread, not a tokio task: spinning guests may occupy every runtime worker.
        let ticking = engine.weak();
        std::thread::Builder::new()
            .name("carport-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticking.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(Runtime { engine, linker })
    }
}

/// One plugin, compiled, linked and described.
pub struct LoadedPlugin {
    pub id: String,
    pub version: String,
    pub summary: String,
    pub digest: String,
    pre: PluginPre<CallState>,
    grants: Arc<Grants>,
    settings: Vec<(String, String)>,
    timeout: Duration,
    memory_bytes: usize,
    max_result_bytes: u64,
    /// One permit per call that may run at once.
    calls: Arc<tokio::sync::Semaphore>,
    max_concurrent_calls: u32,
}

/// A tool as the MCP layer sees it.
pub struct ToolEntry {
    /// `<plugin id>_<tool name>`.
    pub exposed_name: String,
    pub plugin: Arc<LoadedPlugin>,
    pub tool: Tool,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    validator: jsonschema::Validator,
    output_validator: Option<jsonschema::Validator>,
}

/// Every loaded plugin and its tools, plus what failed to load.
pub struct Registry {
    runtime: Runtime,
    pub plugins: Vec<Arc<LoadedPlugin>>,
    pub tools: Vec<ToolEntry>,
    index: HashMap<String, usize>,
    /// Plugins or tools that were not loaded, each with its reason.
    pub problems: Vec<String>,
    /// Tools that plugins.toml does not serve: exposed name, and the plugin's table.
    disabled: HashMap<String, String>,
}

#[derive(Debug)]
pub enum CallError {
    UnknownTool(String),
    Disabled { tool: String, table: String },
    InvalidArguments { tool: String, reasons: Vec<String> },
    Plugin { plugin: String, error: ToolError },
    Timeout { plugin: String, limit: Duration },
    OutOfMemory { plugin: String, limit_mib: usize },
    Crashed { plugin: String, trap: String },
    Busy { plugin: String, limit: u32 },
    ResultTooLarge { plugin: String, limit: u64 },
    InvalidOutput { tool: String, reasons: Vec<String> },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::UnknownTool(name) => write!(formatter, "there is no tool named {name}"),
            CallError::Disabled { tool, table } => write!(
                formatter,
                "tool {tool} is turned off by `tools` / `deny_tools` under {table} in plugins.toml"
            ),
            CallError::InvalidArguments { tool, reasons } => write!(
                formatter,
                "invalid arguments for {tool} (nothing was sent): {}",
                reasons.join("; ")
            ),
            CallError::Plugin { plugin, error } => match error {
                ToolError::InvalidArguments(reason) => {
                    write!(formatter, "invalid arguments (nothing was sent): {reason}")
                }
                ToolError::Upstream(upstream) => {
                    match upstream.status {
                        0 => write!(formatter, "{plugin}: {}", upstream.message)?,
                        status => write!(
                            formatter,
                            "{plugin}: the vendor answered HTTP {status}: {}",
                            upstream.message
                        )?,
                    }
                    if let Some(seconds) = upstream.retry_after_seconds {
                        write!(
                            formatter,
                            " (rate limited: retry in {seconds} s, not before)"
                        )?;
                    }
                    Ok(())
                }
                ToolError::Auth(reason) => {
                    write!(formatter, "{plugin}: authentication failed: {reason}")
                }
                ToolError::Denied(reason) => {
                    write!(formatter, "refused by carport's sandbox: {reason}")
                }
                ToolError::Internal(reason) => {
                    write!(formatter, "{plugin}: internal error: {reason}")
                }
            },
            CallError::Timeout { plugin, limit } => write!(
                formatter,
                "plugin `{plugin}` was stopped: it ran past its {} s time limit (timeout_seconds \
                 under [plugins.{plugin}]); the server and other plugins are unaffected",
                limit.as_secs_f64()
            ),
            CallError::OutOfMemory { plugin, limit_mib } => write!(
                formatter,
                "plugin `{plugin}` was stopped: it tried to use more than its {limit_mib} MiB \
                 memory limit (memory_mib under [plugins.{plugin}])"
            ),
            CallError::Crashed { plugin, trap } => write!(
                formatter,
                "plugin `{plugin}` crashed ({trap}); this is a bug in the plugin, the server \
                 keeps running"
            ),
            CallError::Busy { plugin, limit } => write!(
                formatter,
                "plugin `{plugin}` is already running {limit} calls, its limit \
                 (max_concurrent_calls under [plugins.{plugin}]); try again when one has finished"
            ),
            CallError::ResultTooLarge { plugin, limit } => write!(
                formatter,
                "plugin `{plugin}` returned a result larger than its {limit}-byte limit \
                 (max_result_bytes under [plugins.{plugin}]); ask for less, e.g. a smaller page"
            ),
            CallError::InvalidOutput { tool, reasons } => write!(
                formatter,
                "{tool} returned structured output that does not match the tool's own output \
                 schema ({}); this is a bug in its plugin",
                reasons.join("; ")
            ),
        }
    }
}

impl Registry {
    /// Loads every enabled plugin of `config`. A plugin that fails is reported in `problems`
    /// and skipped; the others still load.
    pub async fn load(config: &Config) -> Result<Registry> {
        let runtime = Runtime::new()?;
        let cache = ComponentCache::new(&runtime.engine, &config.cache_dir());
        let mut registry = Registry {
            runtime,
            plugins: Vec::new(),
            tools: Vec::new(),
            index: HashMap::new(),
            problems: Vec::new(),
            disabled: HashMap::new(),
        };
        for (id, plugin_config) in config.plugins.iter().filter(|(_, plugin)| plugin.enabled) {
            match registry
                .load_plugin(config, &cache, id, plugin_config)
                .await
            {
                Ok(plugin) => registry.plugins.push(plugin),
                Err(error) => {
                    let problem = format!("plugin `{id}` was not loaded: {error:#}");
                    tracing::error!("{problem}");
                    registry.problems.push(problem);
                }
            }
        }
        registry
            .tools
            .sort_by(|a, b| a.exposed_name.cmp(&b.exposed_name));
        registry.index = registry
            .tools
            .iter()
            .enumerate()
            .map(|(position, entry)| (entry.exposed_name.clone(), position))
            .collect();
        Ok(registry)
    }

    async fn load_plugin(
        &mut self,
        config: &Config,
        cache: &ComponentCache,
        id: &str,
        plugin_config: &PluginConfig,
    ) -> Result<Arc<LoadedPlugin>> {
        let path = config.resolve(&plugin_config.component);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read its component {}", path.display()))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        if let Some(pinned) = &plugin_config.sha256
            && !pinned.eq_ignore_ascii_case(&digest)
        {
            bail!(
                "{} has sha256 {digest}, but plugins.toml pins {pinned}; install the pinned \
                 build or update `sha256` under [plugins.{id}]",
                path.display()
            );
        }
        let started = Instant::now();
        let component = cache
            .load(&self.runtime.engine, &digest, &bytes)
            .with_context(|| format!("{} is not a usable component", path.display()))?;
        let instance_pre = self
            .runtime
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} does not fit carport's world {WIT_WORLD}",
                    path.display()
                )
            })?;
        let pre = PluginPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} does not export carport's world {WIT_WORLD}",
                    path.display()
                )
            })?;

        let egress = Egress::new(
            id,
            &plugin_config.allow,
            Duration::from_secs(plugin_config.request_timeout_seconds),
            plugin_config.max_response_bytes,
        )
        .with_context(|| format!("[plugins.{id}] allow"))?;
        let secret_grants: BTreeMap<String, SecretGrant> = plugin_config
            .secrets
            .iter()
            .map(|(name, secret)| {
                let source = match (&secret.env, &secret.file) {
                    (Some(variable), _) => SecretSource::Env(variable.clone()),
                    (None, Some(file)) => SecretSource::File(config.resolve(file)),
                    (None, None) => unreachable!("Config::validate requires one source"),
                };
                let origins = plugin_config
                    .credential_origins(&secret.origins)
                    .unwrap_or_default();
                let scope = CredentialScope::new(
                    &origins,
                    secret.origins.is_some(),
                    secret.header.as_deref(),
                )
                .with_context(|| format!("[plugins.{id}.secrets.{name}] origins"))?;
                let grant = SecretGrant {
                    source,
                    readable: secret.readable,
                    scope,
                };
                Ok((name.clone(), grant))
            })
            .collect::<Result<_>>()?;
        let oauth = plugin_config
            .oauth
            .iter()
            .map(|(name, grant)| {
                let origins = plugin_config
                    .credential_origins(&grant.origins)
                    .unwrap_or_default();
                let scope = CredentialScope::new(&origins, grant.origins.is_some(), None)
                    .with_context(|| format!("[plugins.{id}.oauth.{name}] origins"))?;
                let loaded = capabilities::oauth::OAuthGrant::new(id, name, grant, scope)
                    .with_context(|| format!("[plugins.{id}.oauth.{name}]"))?;
                Ok((name.clone(), loaded))
            })
            .collect::<Result<_>>()?;
        let state_dir = config.data_dir().join("state").join(id);
        let quota = StateQuota {
            max_bytes: plugin_config.state_max_bytes,
            max_keys: plugin_config.state_max_keys,
        };
        let state = PluginState::open(id, &state_dir, quota)
            .with_context(|| format!("cannot open its state directory {}", state_dir.display()))?;
        let mut plugin = LoadedPlugin {
            id: id.to_string(),
            version: String::new(),
            summary: String::new(),
            digest,
            pre,
            grants: Arc::new(Grants {
                plugin_id: id.to_string(),
                http: egress,
                secrets: SecretGrants::new(id, secret_grants),
                oauth,
                state,
                log_budget: std::sync::Mutex::new(LogBudget::new()),
            }),
            settings: plugin_config
                .settings
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            timeout: Duration::from_secs(plugin_config.timeout_seconds),
            memory_bytes: usize::try_from(plugin_config.memory_mib.saturating_mul(1024 * 1024))
                .unwrap_or(usize::MAX),
            max_result_bytes: plugin_config.max_result_bytes,
            calls: Arc::new(tokio::sync::Semaphore::new(
                plugin_config.max_concurrent_calls as usize,
            )),
            max_concurrent_calls: plugin_config.max_concurrent_calls,
        };

        let info = plugin
            .describe()
            .await
            .map_err(|error| anyhow::anyhow!("describe failed: {error}"))?;
        if info.id != id {
            tracing::warn!(
                "component {} calls itself `{}`; it is served as `{id}`, its name in plugins.toml",
                path.display(),
                info.id
            );
        }
        plugin.version = one_line(&info.version, MAX_VERSION_CHARS);
        plugin.summary = one_line(&info.summary, MAX_SUMMARY_CHARS);
        let plugin = Arc::new(plugin);
        let mut loaded_tools = 0;
        for tool in info.tools {
            if !plugin_config.serves(&tool.name) {
                self.disabled
                    .insert(format!("{id}_{}", tool.name), format!("[plugins.{id}]"));
                continue;
            }
            match ToolEntry::new(plugin.clone(), tool) {
                Ok(entry)
                    if self
                        .tools
                        .iter()
                        .any(|t| t.exposed_name == entry.exposed_name) =>
                {
                    self.problems
                        .push(format!("tool {} is declared twice", entry.exposed_name));
                }
                Ok(entry) => {
                    self.tools.push(entry);
                    loaded_tools += 1;
                }
                Err(problem) => {
                    tracing::error!("{problem}");
                    self.problems.push(problem);
                }
            }
        }
        // The digest is what `sha256` in plugins.toml pins.
        tracing::info!(
            "loaded plugin `{id}` {} ({loaded_tools} tools, sha256 {}) in {:?}",
            plugin.version,
            plugin.digest,
            started.elapsed()
        );
        Ok(plugin)
    }

    /// Why a name that is not served is not: turned off by configuration, or unknown.
    pub fn unavailable(&self, exposed_name: &str) -> CallError {
        match self.disabled.get(exposed_name) {
            Some(table) => CallError::Disabled {
                tool: exposed_name.to_string(),
                table: table.clone(),
            },
            None => CallError::UnknownTool(exposed_name.to_string()),
        }
    }

    pub fn tool(&self, exposed_name: &str) -> Option<&ToolEntry> {
        self.index
            .get(exposed_name)
            .map(|position| &self.tools[*position])
    }

    /// Validates `arguments` against the tool's schema, then calls the plugin.
    pub async fn call(
        &self,
        exposed_name: &str,
        arguments: Value,
        progress: Option<ProgressSink>,
    ) -> Result<Output, CallError> {
        let entry = self
            .tool(exposed_name)
            .ok_or_else(|| self.unavailable(exposed_name))?;
        let reasons: Vec<String> = entry
            .validator
            .iter_errors(&arguments)
            .map(|error| match error.instance_path().as_str() {
                "" => error.to_string(),
                path => format!("{path}: {error}"),
            })
            .collect();
        if !reasons.is_empty() {
            return Err(CallError::InvalidArguments {
                tool: exposed_name.to_string(),
                reasons,
            });
        }
        let output = entry
            .plugin
            .clone()
            .call_tool(entry.tool.name.clone(), arguments.to_string(), progress)
            .await?;
        entry.check_output(&output)?;
        Ok(output)
    }
}

/// Plugin-supplied text on one line (line breaks and other control characters become spaces)
/// and at most `max_chars` long.
fn one_line(text: &str, max_chars: usize) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        line.push('…');
    }
    line
}

impl ToolEntry {
    fn new(plugin: Arc<LoadedPlugin>, tool: Tool) -> Result<ToolEntry, String> {
        let exposed_name = format!("{}_{}", plugin.id, tool.name);
        let problem = |reason: String| {
            format!(
                "tool {exposed_name} of plugin `{}` skipped: {reason}",
                plugin.id
            )
        };
        let name_ok = exposed_name.len() <= 64
            && exposed_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok || tool.name.is_empty() {
            return Err(problem(
                "names must match ^[a-zA-Z0-9_-]{1,64}$ once prefixed with the plugin id".into(),
            ));
        }
        let input_schema: Value = serde_json::from_str(&tool.input_schema)
            .map_err(|error| problem(format!("its input schema is not JSON: {error}")))?;
        if input_schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(problem("its input schema must be of type object".into()));
        }
        let validator = jsonschema::validator_for(&input_schema)
            .map_err(|error| problem(format!("its input schema is invalid: {error}")))?;
        let output_schema: Option<Value> = match &tool.output_schema {
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|error| problem(format!("its output schema is not JSON: {error}")))?,
            ),
            None => None,
        };
        let output_validator =
            match &output_schema {
                Some(schema) => {
                    if schema.get("type").and_then(Value::as_str) != Some("object") {
                        return Err(problem("its output schema must be of type object".into()));
                    }
                    Some(jsonschema::validator_for(schema).map_err(|error| {
                        problem(format!("its output schema is invalid: {error}"))
                    })?)
                }
                None => None,
            };
        let mut tool = tool;
        tool.title = one_line(&tool.title, MAX_TITLE_CHARS);
        if tool.description.chars().count() > MAX_DESCRIPTION_CHARS {
            tool.description = tool
                .description
                .chars()
                .take(MAX_DESCRIPTION_CHARS)
                .collect();
            tool.description.push('…');
        }
        Ok(ToolEntry {
            exposed_name,
            plugin,
            tool,
            input_schema,
            output_schema,
            validator,
            output_validator,
        })
    }

    /// A tool with an output schema must return structured data that matches it: MCP clients
    /// trust `structuredContent` to.
    fn check_output(&self, output: &Output) -> Result<(), CallError> {
        let Some(validator) = &self.output_validator else {
            return Ok(());
        };
        let invalid = |reasons: Vec<String>| CallError::InvalidOutput {
            tool: self.exposed_name.clone(),
            reasons,
        };
        let Some(text) = &output.structured else {
            return Err(invalid(vec!["no structured result".into()]));
        };
        let value: Value = serde_json::from_str(text)
            .map_err(|error| invalid(vec![format!("not JSON: {error}")]))?;
        let reasons: Vec<String> = validator
            .iter_errors(&value)
            .take(5)
            .map(|error| match error.instance_path().as_str() {
                "" => error.to_string(),
                path => format!("{path}: {error}"),
            })
            .collect();
        match reasons.is_empty() {
            true => Ok(()),
            false => Err(invalid(reasons)),
        }
    }
}

impl LoadedPlugin {
    async fn describe(&self) -> Result<capabilities::PluginInfo, CallError> {
        let timeout = self.timeout.min(DESCRIBE_TIMEOUT);
        let (mut store, instance) = self.instantiate(timeout, None).await?;
        let described = instance
            .carport_provider_provider()
            .call_describe(&mut store)
            .await;
        described.map_err(|error| self.classify(&store, timeout, error))
    }

    /// Runs one call on a thread of its own, if the plugin has a call to spare.
    async fn call_tool(
        self: Arc<Self>,
        name: String,
        arguments: String,
        progress: Option<ProgressSink>,
    ) -> Result<Output, CallError> {
        let permit = self
            .calls
            .clone()
            .try_acquire_owned()
            .map_err(|_| CallError::Busy {
                plugin: self.id.clone(),
                limit: self.max_concurrent_calls,
            })?;
        let runtime = tokio::runtime::Handle::current();
        let plugin = self.clone();
        // The permit lives as long as the guest runs, even when the caller gave up waiting.
        let running = tokio::task::spawn_blocking(move || {
            let outcome = runtime.block_on(plugin.run_tool(&name, &arguments, progress));
            drop(permit);
            outcome
        });
        running.await.unwrap_or_else(|error| {
            Err(CallError::Crashed {
                plugin: self.id.clone(),
                trap: format!("the host thread running it failed: {error}"),
            })
        })
    }

    async fn run_tool(
        &self,
        name: &str,
        arguments: &str,
        progress: Option<ProgressSink>,
    ) -> Result<Output, CallError> {
        let (mut store, instance) = self.instantiate(self.timeout, progress).await?;
        let context = CallContext {
            settings: self.settings.clone(),
        };
        let called = instance
            .carport_provider_provider()
            .call_call_tool(&mut store, name, arguments, &context)
            .await;
        match called {
            Ok(Ok(output)) => {
                let bytes =
                    (output.text.len() + output.structured.as_ref().map_or(0, String::len)) as u64;
                if bytes > self.max_result_bytes {
                    return Err(CallError::ResultTooLarge {
                        plugin: self.id.clone(),
                        limit: self.max_result_bytes,
                    });
                }
                Ok(output)
            }
            Ok(Err(error)) => Err(CallError::Plugin {
                plugin: self.id.clone(),
                error,
            }),
            Err(error) => Err(self.classify(&store, self.timeout, error)),
        }
    }

    async fn instantiate(
        &self,
        timeout: Duration,
        progress: Option<ProgressSink>,
    ) -> Result<(Store<CallState>, capabilities::Plugin), CallError> {
        let state = CallState {
            grants: self.grants.clone(),
            memory: MemoryCap::new(self.memory_bytes),
            deadline: Instant::now() + timeout,
            progress,
            panic_message: None,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        // Checked every epoch tick: past the deadline the guest is interrupted; before it, the
        // guest yields so that a busy plugin never monopolises a runtime thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|context| {
            if Instant::now() >= context.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => Ok((store, instance)),
            Err(error) => Err(self.classify(&store, timeout, error)),
        }
    }

    fn classify(
        &self,
        store: &Store<CallState>,
        timeout: Duration,
        error: wasmtime::Error,
    ) -> CallError {
        let plugin = self.id.clone();
        if store.data().memory.exceeded {
            return CallError::OutOfMemory {
                plugin,
                limit_mib: self.memory_bytes / (1024 * 1024),
            };
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return CallError::Timeout {
                plugin,
                limit: timeout,
            };
        }
        let trap = match (error.downcast_ref::<Trap>(), &store.data().panic_message) {
            (Some(trap), Some(panic)) => format!("wasm trap: {trap}, after it panicked at {panic}"),
            (Some(trap), None) => format!("wasm trap: {trap}"),
            (None, _) => format!("{error:#}"),
        };
        tracing::warn!(plugin = %self.id, "call failed: {error:?}");
        CallError::Crashed { plugin, trap }
    }
}
