//! Loading plugins and calling them under limits: the [`Registry`] of everything the loaded
//! plugins offer, and the one way into a plugin, [`plugin::LoadedPlugin`].

pub mod cache;
pub mod catalogue;
pub mod errors;
pub mod grants;
pub mod limits;
pub mod plugin;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config as EngineConfig, Engine};

use crate::capabilities::{
    self, CallContext, CallState, Completion, CompletionReference, CompletionRequest, Output,
    PluginPre, PromptResult, ResourceContents, ResourceInfo, ResourceTemplate, ToolMode,
};
use crate::config::{self, Config, PluginConfig};
use cache::ComponentCache;
pub use catalogue::{PromptEntry, ToolEntry};
pub use errors::CallError;
pub use plugin::{CallLink, LoadedPlugin};

/// How often the engine's epoch advances: the granularity of deadlines and of yielding.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// `describe` runs at start-up; a plugin that takes longer is not worth waiting for.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
const WIT_PACKAGE: &str = "carport:provider";
const WIT_VERSION: &str = "0.2.0";

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

/// A plugin's component, checked against its pin and compiled (or taken from the cache).
struct Compiled {
    path: std::path::PathBuf,
    digest: String,
    component: Component,
    started: Instant,
}

fn compile(
    id: &str,
    path: &std::path::Path,
    pinned: Option<&str>,
    engine: &Engine,
    cache: &ComponentCache,
) -> Result<Compiled> {
    let started = Instant::now();
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read its component {}", path.display()))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if let Some(pinned) = pinned
        && !pinned.eq_ignore_ascii_case(&digest)
    {
        bail!(
            "{} has sha256 {digest}, but plugins.toml pins {pinned}; install the pinned \
             build or update `sha256` under [plugins.{id}]",
            path.display()
        );
    }
    let component = cache
        .load(engine, &digest, &bytes)
        .with_context(|| format!("{} is not a usable component", path.display()))?;
    Ok(Compiled {
        path: path.to_path_buf(),
        digest,
        component,
        started,
    })
}

/// A resource template with the plugin that serves it.
pub struct TemplateEntry {
    pub plugin: Arc<LoadedPlugin>,
    pub template: ResourceTemplate,
}

/// Every loaded plugin and what it offers, plus what failed to load.
pub struct Registry {
    runtime: Runtime,
    pub plugins: Vec<Arc<LoadedPlugin>>,
    pub tools: Vec<ToolEntry>,
    pub prompts: Vec<PromptEntry>,
    pub templates: Vec<TemplateEntry>,
    tool_index: HashMap<String, usize>,
    /// Plugins or tools that were not loaded, each with its reason.
    pub problems: Vec<String>,
    /// Tools that plugins.toml does not serve: exposed name, and the plugin's table.
    disabled: HashMap<String, String>,
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
            prompts: Vec::new(),
            templates: Vec::new(),
            tool_index: HashMap::new(),
            problems: Vec::new(),
            disabled: HashMap::new(),
        };
        let enabled: Vec<(&String, &PluginConfig)> = config
            .plugins
            .iter()
            .filter(|(_, plugin)| plugin.enabled)
            .collect();
        // Compiling is the slow part of a cold start; the plugins compile side by side.
        let cache = Arc::new(cache);
        let compiling: Vec<_> = enabled
            .iter()
            .map(|(id, plugin_config)| {
                let path = config.resolve(&plugin_config.component);
                let pinned = plugin_config.sha256.clone();
                let (id, engine, cache) = (
                    id.to_string(),
                    registry.runtime.engine.clone(),
                    cache.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    compile(&id, &path, pinned.as_deref(), &engine, &cache)
                })
            })
            .collect();
        for ((id, plugin_config), compiled) in enabled.into_iter().zip(compiling) {
            let loaded = match compiled.await {
                Ok(Ok(compiled)) => {
                    registry
                        .load_plugin(config, &cache, id, plugin_config, compiled)
                        .await
                }
                Ok(Err(error)) => Err(error),
                Err(panicked) => Err(anyhow::anyhow!("compiling it failed: {panicked}")),
            };
            if let Err(error) = loaded {
                let problem = format!("plugin `{id}` was not loaded: {error:#}");
                tracing::error!("{problem}");
                registry.problems.push(problem);
            }
        }
        registry
            .tools
            .sort_by(|a, b| a.exposed_name.cmp(&b.exposed_name));
        registry
            .prompts
            .sort_by(|a, b| a.exposed_name.cmp(&b.exposed_name));
        registry.tool_index = registry
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
        compiled: Compiled,
    ) -> Result<()> {
        let Compiled {
            path,
            digest,
            component,
            started,
        } = compiled;
        let pre = self
            .link(&component)
            .with_context(|| format!("{} cannot be loaded", path.display()))?;
        let context = CallContext {
            settings: plugin_config
                .settings
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            tool_mode: match plugin_config.tool_mode {
                config::ToolMode::Full => ToolMode::Full,
                config::ToolMode::Compact => ToolMode::Compact,
            },
        };
        let mut plugin = LoadedPlugin {
            id: id.to_string(),
            version: String::new(),
            summary: String::new(),
            digest,
            pre,
            grants: Arc::new(grants::grants(config, id, plugin_config)?),
            context,
            timeout: Duration::from_secs(plugin_config.timeout_seconds),
            memory_bytes: usize::try_from(plugin_config.memory_mib.saturating_mul(1024 * 1024))
                .unwrap_or(usize::MAX),
            resource_scheme: String::new(),
            resource_poll: Duration::from_secs(plugin_config.resource_poll_seconds),
            max_result_bytes: plugin_config.max_result_bytes,
            calls: Arc::new(tokio::sync::Semaphore::new(
                plugin_config.max_concurrent_calls as usize,
            )),
            max_concurrent_calls: plugin_config.max_concurrent_calls,
        };

        let context_key = hex::encode(Sha256::digest(
            serde_json::to_vec(&plugin.context).expect("settings serialise"),
        ));
        let info = match cache.description(&plugin.digest, &context_key) {
            Some(info) => info,
            None => {
                let info = plugin
                    .describe(DESCRIBE_TIMEOUT)
                    .await
                    .map_err(|error| anyhow::anyhow!("describe failed: {error}"))?;
                cache.store_description(&plugin.digest, &context_key, &info);
                tracing::info!(
                    "described plugin `{id}`; the description is cached for the next start"
                );
                info
            }
        };
        if info.id != id {
            tracing::warn!(
                "component {} calls itself `{}`; it is served as `{id}`, its name in plugins.toml",
                path.display(),
                info.id
            );
        }
        // Two plugins of one scheme (say two Tessie accounts) cannot both own its URIs: the
        // later one keeps its tools and prompts, and its resources are reported unserved.
        let mut resource_scheme = info.resource_scheme;
        let mut templates = info.resource_templates;
        if let Some(other) = self
            .plugins
            .iter()
            .find(|other| !resource_scheme.is_empty() && other.resource_scheme == resource_scheme)
        {
            self.problems.push(format!(
                "resources of plugin `{id}` are not served: their URI scheme `{resource_scheme}:` \
                 belongs to plugin `{}`",
                other.id
            ));
            resource_scheme.clear();
            templates.clear();
        }
        plugin.version = catalogue::one_line(&info.version, catalogue::MAX_VERSION_CHARS);
        plugin.summary = catalogue::one_line(&info.summary, catalogue::MAX_SUMMARY_CHARS);
        plugin.resource_scheme = resource_scheme;
        let plugin = Arc::new(plugin);

        let prefix = plugin_config.prefix_names;
        let mut tools = Vec::new();
        for tool in info.tools {
            let exposed = catalogue::exposed_name(id, prefix, &tool.name);
            if !plugin_config.serves(&tool.name) {
                self.disabled.insert(exposed, format!("[plugins.{id}]"));
                continue;
            }
            match ToolEntry::new(plugin.clone(), exposed, tool) {
                Ok(entry) => tools.push(entry),
                Err(problem) => {
                    tracing::error!("{problem}");
                    self.problems.push(problem);
                }
            }
        }
        let mut prompts = Vec::new();
        for prompt in info.prompts {
            let exposed = catalogue::exposed_name(id, prefix, &prompt.name);
            match PromptEntry::new(plugin.clone(), exposed, prompt) {
                Ok(entry) => prompts.push(entry),
                Err(problem) => self.problems.push(problem),
            }
        }
        self.refuse_name_collisions(&tools, &prompts)?;
        for template in templates {
            if !plugin.owns_uri(&template.uri_template) {
                self.problems.push(format!(
                    "resource template {} of plugin `{id}` skipped: it is outside the plugin's \
                     scheme `{}:`",
                    template.uri_template, plugin.resource_scheme
                ));
                continue;
            }
            self.templates.push(TemplateEntry {
                plugin: plugin.clone(),
                template,
            });
        }
        // The digest is what `sha256` in plugins.toml pins.
        tracing::info!(
            "loaded plugin `{id}` {} ({} tools, {} prompts, sha256 {}) in {:?}",
            plugin.version,
            tools.len(),
            prompts.len(),
            plugin.digest,
            started.elapsed()
        );
        self.tools.extend(tools);
        self.prompts.extend(prompts);
        self.plugins.push(plugin);
        Ok(())
    }

    /// Links a component against carport's world, explaining a component built for another.
    fn link(&self, component: &Component) -> Result<PluginPre<CallState>> {
        let world = format!("{WIT_PACKAGE}/plugin@{WIT_VERSION}");
        let foreign_version = component
            .component_type()
            .imports(&self.runtime.engine)
            .filter_map(|(name, _)| {
                let rest = name.strip_prefix(WIT_PACKAGE)?;
                let version = rest.rsplit_once('@')?.1;
                (version != WIT_VERSION).then(|| version.to_string())
            })
            .next();
        if let Some(version) = foreign_version {
            bail!(
                "it was built for carport's world {WIT_PACKAGE}@{version}, and this carport \
                 loads only {world}: rebuild it against wit/provider.wit"
            );
        }
        let instance_pre = self
            .runtime
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("it does not fit carport's world {world}"))?;
        PluginPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("it does not export carport's world {world}"))
    }

    /// A plugin whose tool or prompt names are already served is refused whole: serving half
    /// of it under surprising names would be worse.
    fn refuse_name_collisions(&self, tools: &[ToolEntry], prompts: &[PromptEntry]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for name in tools.iter().map(|entry| &entry.exposed_name) {
            if !seen.insert(name.as_str()) {
                bail!("it declares the tool {name} twice");
            }
            if let Some(other) = self.tools.iter().find(|entry| entry.exposed_name == *name) {
                bail!(
                    "its tool {name} is already served by plugin `{}`; keep `prefix_names` on \
                     for one of them in plugins.toml",
                    other.plugin.id
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for name in prompts.iter().map(|entry| &entry.exposed_name) {
            if !seen.insert(name.as_str()) {
                bail!("it declares the prompt {name} twice");
            }
            if let Some(other) = self
                .prompts
                .iter()
                .find(|entry| entry.exposed_name == *name)
            {
                bail!(
                    "its prompt {name} is already served by plugin `{}`; keep `prefix_names` on \
                     for one of them in plugins.toml",
                    other.plugin.id
                );
            }
        }
        Ok(())
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
        self.tool_index
            .get(exposed_name)
            .map(|position| &self.tools[*position])
    }

    pub fn prompt(&self, exposed_name: &str) -> Option<&PromptEntry> {
        self.prompts
            .iter()
            .find(|entry| entry.exposed_name == exposed_name)
    }

    /// The plugin whose scheme `uri` has.
    pub fn resource_plugin(&self, uri: &str) -> Result<&Arc<LoadedPlugin>, CallError> {
        self.plugins
            .iter()
            .find(|plugin| plugin.owns_uri(uri))
            .ok_or_else(|| CallError::UnknownResource(uri.to_string()))
    }

    /// Validates `arguments` against the tool's schema, then calls the plugin.
    pub async fn call(
        &self,
        exposed_name: &str,
        arguments: Value,
        link: CallLink,
    ) -> Result<Output, CallError> {
        let entry = self
            .tool(exposed_name)
            .ok_or_else(|| self.unavailable(exposed_name))?;
        let reasons = entry.argument_errors(&arguments);
        if !reasons.is_empty() {
            return Err(CallError::InvalidArguments {
                tool: exposed_name.to_string(),
                reasons,
            });
        }
        let output = entry
            .plugin
            .clone()
            .call_tool(entry.tool.name.clone(), arguments.to_string(), link)
            .await?;
        entry.check_output(&output)?;
        Ok(output)
    }

    /// The resources of every plugin that has any; a plugin that fails is skipped and logged,
    /// so one broken vendor does not hide the others' cars.
    pub async fn list_resources(&self) -> Vec<ResourceInfo> {
        let mut resources = Vec::new();
        for plugin in self
            .plugins
            .iter()
            .filter(|plugin| !plugin.resource_scheme.is_empty())
        {
            match plugin.list_resources().await {
                Ok(listed) => resources.extend(
                    listed
                        .into_iter()
                        .filter(|resource| plugin.owns_uri(&resource.uri)),
                ),
                Err(error) => tracing::warn!("resources of `{}` not listed: {error}", plugin.id),
            }
        }
        resources
    }

    pub async fn read_resource(
        &self,
        uri: &str,
        link: CallLink,
    ) -> Result<Vec<ResourceContents>, CallError> {
        self.resource_plugin(uri)?.read_resource(uri, link).await
    }

    pub async fn get_prompt(
        &self,
        exposed_name: &str,
        arguments: Vec<(String, String)>,
        link: CallLink,
    ) -> Result<PromptResult, CallError> {
        let entry = self
            .prompt(exposed_name)
            .ok_or_else(|| CallError::UnknownPrompt(exposed_name.to_string()))?;
        let missing = entry.missing_arguments(&arguments);
        if !missing.is_empty() {
            return Err(CallError::InvalidArguments {
                tool: exposed_name.to_string(),
                reasons: vec![format!(
                    "missing required arguments: {}",
                    missing.join(", ")
                )],
            });
        }
        entry
            .plugin
            .get_prompt(&entry.prompt.name, &arguments, link)
            .await
    }

    /// Completes an argument of a prompt (by its served name) or of a resource template.
    pub async fn complete(&self, mut request: CompletionRequest) -> Result<Completion, CallError> {
        let plugin = match &mut request.reference {
            CompletionReference::Prompt(name) => {
                let entry = self
                    .prompt(name)
                    .ok_or_else(|| CallError::UnknownPrompt(name.clone()))?;
                *name = entry.prompt.name.clone();
                &entry.plugin
            }
            CompletionReference::ResourceTemplate(uri) => self.resource_plugin(uri)?,
        };
        let mut completion = plugin.complete(&request).await?;
        completion.values.truncate(100);
        Ok(completion)
    }
}
