//! Loading plugins and calling them under limits: the [`Registry`] of everything the loaded
//! plugins offer, and the one way into a plugin, [`plugin::LoadedPlugin`].

pub mod cache;
pub mod catalogue;
pub mod errors;
pub mod grants;
pub mod limits;
pub mod plugin;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config as EngineConfig, Engine};

use crate::capabilities::catalogue::CatalogueChanges;
use crate::capabilities::{
    self, CallContext, CallState, Completion, CompletionReference, CompletionRequest, PluginInfo,
    PluginPre, PromptResult, ResourceContents, ResourceInfo, ResourceTemplate, ToolMode,
};
use crate::config::{self, Config, PluginConfig};
use cache::ComponentCache;
pub use catalogue::{Answer, PromptEntry, ToolEntry};
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
    /// The same world plus an empty WASI, for components whose toolchain imports WASI.
    wasi_linker: Linker<CallState>,
    /// Plugins granted `dynamic_catalogue` that said their catalogue changed.
    catalogue_changes: Arc<CatalogueChanges>,
}

impl Runtime {
    pub fn new() -> Result<Runtime> {
        let mut config = EngineConfig::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        config.allocation_strategy(limits::instance_pool());
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        capabilities::add_to_linker(&mut linker)?;
        let mut wasi_linker = linker.clone();
        capabilities::wasi::add_to_linker(&mut wasi_linker)?;
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
        Ok(Runtime {
            engine,
            linker,
            wasi_linker,
            catalogue_changes: Arc::default(),
        })
    }
}

impl Runtime {
    /// Links a component against carport's world, explaining a component built for another.
    pub(crate) fn link(&self, component: &Component) -> Result<PluginPre<CallState>> {
        let world = format!("{WIT_PACKAGE}/plugin@{WIT_VERSION}");
        let foreign_version = component
            .component_type()
            .imports(&self.engine)
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
        let imports_wasi = capabilities::wasi::imported_by(
            component
                .component_type()
                .imports(&self.engine)
                .map(|(name, _)| name.to_string()),
        );
        let linker = match imports_wasi {
            true => &self.wasi_linker,
            false => &self.linker,
        };
        let instance_pre = linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("it does not fit carport's world {world}"))?;
        PluginPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("it does not export carport's world {world}"))
    }
}

/// A plugin's component, checked against its pin and compiled (or taken from the cache).
struct Compiled {
    path: PathBuf,
    digest: String,
    component: Component,
    started: Instant,
}

/// The component's bytes and digest, refused when plugins.toml pins another digest.
fn read_pinned(
    id: &str,
    path: &Path,
    pinned: Option<&str>,
    drop_in: bool,
) -> Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read its component {}", path.display()))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if let Some(pinned) = pinned
        && !pinned.eq_ignore_ascii_case(&digest)
    {
        bail!(
            "{} has sha256 {digest}, but plugins.toml pins {pinned}; install the pinned \
             build or update `sha256` under [plugins.{id}]{}",
            path.display(),
            match drop_in {
                true => format!(" (`carport grant {id}` shows the request and pins this one)"),
                false => String::new(),
            }
        );
    }
    Ok((bytes, digest))
}

fn compile(
    id: &str,
    path: &Path,
    pinned: Option<&str>,
    drop_in: bool,
    engine: &Engine,
    cache: &ComponentCache,
) -> Result<Compiled> {
    let started = Instant::now();
    let (bytes, digest) = read_pinned(id, path, pinned, drop_in)?;
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

/// Whether a new registry reads the components of the plugins it keeps again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeptComponents {
    /// Read and hashed: a reload keeps a plugin only if its component is the same build.
    Recheck,
    /// Taken as loaded: describing a plugin again changes no file, and hashing every
    /// component (a Python one is ~19 MB) at each catalogue change would be wasted.
    AsLoaded,
}

/// A resource template with the plugin that serves it.
pub struct TemplateEntry {
    pub plugin: Arc<LoadedPlugin>,
    pub template: ResourceTemplate,
}

/// One plugins.toml entry as loaded: a reload keeps it while the entry and the component's
/// digest stay the same, so its grants (token caches included) and compiled code live on.
struct Loaded {
    id: String,
    config: PluginConfig,
    plugin: Arc<LoadedPlugin>,
    info: PluginInfo,
}

/// What became of one plugin, for `carport plugins`.
#[derive(Debug, Clone)]
pub struct PluginReport {
    pub id: String,
    /// `plugins.toml` or `drop-in`.
    pub source: &'static str,
    pub version: String,
    pub digest: String,
    /// What plugins.toml grants it, one capability a line.
    pub grants: Vec<String>,
    pub tools: usize,
    pub problems: Vec<String>,
}

/// Every loaded plugin and what it offers, plus what failed to load. A registry never changes;
/// a reload (a drop-in added, replaced or removed) builds a new one that shares what did not
/// change, and calls in flight finish on the plugin they started with.
pub struct Registry {
    runtime: Arc<Runtime>,
    cache: Arc<ComponentCache>,
    /// The configuration this registry was built from.
    config: Arc<Config>,
    loaded: Vec<Arc<Loaded>>,
    pub plugins: Vec<Arc<LoadedPlugin>>,
    pub tools: Vec<ToolEntry>,
    pub prompts: Vec<PromptEntry>,
    pub templates: Vec<TemplateEntry>,
    tool_index: HashMap<String, usize>,
    /// Plugins or tools that were not loaded, each with its reason.
    pub problems: Vec<String>,
    /// Tools that plugins.toml does not serve: exposed name, and the plugin's table.
    disabled: HashMap<String, String>,
    /// The plugins whose resource scheme is theirs alone, in load order.
    resource_plugins: Vec<Arc<LoadedPlugin>>,
    /// Each enabled entry and each drop-in awaiting a grant, in plugins.toml order.
    pub reports: Vec<PluginReport>,
}

impl Registry {
    /// Loads every enabled plugin of `config`. A plugin that fails is reported in `problems`
    /// and skipped; the others still load.
    pub async fn load(config: &Config) -> Result<Registry> {
        let runtime = Arc::new(Runtime::new()?);
        let cache = Arc::new(ComponentCache::new(&runtime.engine, &config.cache_dir()));
        Ok(Registry::assemble(
            runtime,
            cache,
            Arc::new(config.clone()),
            &[],
            KeptComponents::Recheck,
        )
        .await)
    }

    /// A registry for `config` that keeps every plugin of this one whose entry and component
    /// are unchanged, and loads the rest afresh.
    pub async fn reload(&self, config: &Config) -> Registry {
        Registry::assemble(
            self.runtime.clone(),
            self.cache.clone(),
            Arc::new(config.clone()),
            &self.loaded,
            KeptComponents::Recheck,
        )
        .await
    }

    /// Where the plugins of this registry (and of every registry reloaded from it) say that
    /// their catalogue changed.
    pub fn catalogue_changes(&self) -> Arc<CatalogueChanges> {
        self.runtime.catalogue_changes.clone()
    }

    /// A registry in which the plugins `changed` are described again, built as a reload builds
    /// one: every other plugin is kept as it is, and plugins.toml's `tools`/`deny_tools` apply
    /// to the new tools as to the old. A plugin keeps its id, version, summary and resource
    /// scheme as loaded; its tools, prompts and resource templates are its new answer's. A
    /// plugin whose `describe` fails now, or whose new names collide with another plugin's,
    /// keeps its previous catalogue.
    pub async fn redescribe(&self, changed: &[String]) -> Registry {
        let mut previous = Vec::with_capacity(self.loaded.len());
        for loaded in &self.loaded {
            if !changed.contains(&loaded.id) {
                previous.push(loaded.clone());
                continue;
            }
            match loaded.plugin.describe(DESCRIBE_TIMEOUT).await {
                Ok(info) => {
                    tracing::info!(
                        "plugin `{}` said its catalogue changed: described again ({} tools, {} \
                         prompts)",
                        loaded.id,
                        info.tools.len(),
                        info.prompts.len()
                    );
                    previous.push(Arc::new(Loaded {
                        id: loaded.id.clone(),
                        config: loaded.config.clone(),
                        plugin: loaded.plugin.clone(),
                        info,
                    }));
                }
                Err(error) => {
                    tracing::warn!(
                        "plugin `{}` said its catalogue changed, but describing it again \
                         failed, so it keeps its previous one: {error}",
                        loaded.id
                    );
                    previous.push(loaded.clone());
                }
            }
        }
        let registry = self.rebuilt(&previous).await;
        // A new catalogue that cannot be served beside the others (a name another plugin
        // serves) would have a plugin refused whole, the changed one or the one it collides
        // with: no plugin vanishes over a change; the plugins changed in this round keep
        // serving what they offered before.
        let lost: Vec<&String> = self
            .loaded
            .iter()
            .map(|loaded| &loaded.id)
            .filter(|id| registry.description(id).is_none())
            .collect();
        if lost.is_empty() {
            return registry;
        }
        let reasons: Vec<&str> = registry
            .problems
            .iter()
            .filter(|problem| lost.iter().any(|id| problem.contains(&format!("`{id}`"))))
            .map(String::as_str)
            .collect();
        tracing::warn!(
            "plugins {} keep their previous catalogue: the new one cannot be served ({})",
            changed.join(", "),
            reasons.join("; ")
        );
        self.rebuilt(&self.loaded).await
    }

    /// This registry's configuration assembled again from `loaded`, whose components are
    /// unchanged (a change on disk is the watcher's to reload).
    async fn rebuilt(&self, loaded: &[Arc<Loaded>]) -> Registry {
        Registry::assemble(
            self.runtime.clone(),
            self.cache.clone(),
            self.config.clone(),
            loaded,
            KeptComponents::AsLoaded,
        )
        .await
    }

    async fn assemble(
        runtime: Arc<Runtime>,
        cache: Arc<ComponentCache>,
        config: Arc<Config>,
        previous: &[Arc<Loaded>],
        kept_components: KeptComponents,
    ) -> Registry {
        let mut registry = Registry {
            runtime,
            cache,
            config: config.clone(),
            loaded: Vec::new(),
            plugins: Vec::new(),
            tools: Vec::new(),
            prompts: Vec::new(),
            templates: Vec::new(),
            tool_index: HashMap::new(),
            problems: Vec::new(),
            disabled: HashMap::new(),
            resource_plugins: Vec::new(),
            reports: Vec::new(),
        };
        let config: &Config = &config;
        let enabled: Vec<(&String, &PluginConfig)> = config
            .plugins
            .iter()
            .filter(|(_, plugin)| plugin.enabled)
            .collect();
        // Compiling is the slow part of a cold start; the plugins compile side by side.
        let preparing: Vec<_> = enabled
            .iter()
            .map(|(id, plugin_config)| {
                let path = config.component_path(id, plugin_config);
                let pinned = plugin_config.sha256.clone();
                let drop_in = plugin_config.source == config::PluginSource::DropIn;
                let kept = previous
                    .iter()
                    .find(|loaded| loaded.id == **id && loaded.config == **plugin_config)
                    .cloned();
                let (id, engine, cache) = (
                    id.to_string(),
                    registry.runtime.engine.clone(),
                    registry.cache.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    if let Some(kept) = kept
                        && (kept_components == KeptComponents::AsLoaded
                            || read_pinned(&id, &path, pinned.as_deref(), drop_in)
                                .is_ok_and(|(_, digest)| digest == kept.plugin.digest))
                    {
                        return Ok(Err(kept));
                    }
                    compile(&id, &path, pinned.as_deref(), drop_in, &engine, &cache).map(Ok)
                })
            })
            .collect();
        for ((id, plugin_config), prepared) in enabled.into_iter().zip(preparing) {
            let loaded = match prepared.await {
                Ok(Ok(Err(kept))) => Ok(kept),
                Ok(Ok(Ok(compiled))) => registry
                    .instantiate(config, id, plugin_config, compiled)
                    .await
                    .map(Arc::new),
                Ok(Err(error)) => Err(error),
                Err(panicked) => Err(anyhow::anyhow!("compiling it failed: {panicked}")),
            };
            let problems_before = registry.problems.len();
            let registered = loaded.and_then(|loaded| registry.register(loaded));
            if let Err(error) = &registered {
                let problem = format!("plugin `{id}` was not loaded: {error:#}");
                tracing::error!("{problem}");
                registry.problems.push(problem);
            }
            let plugin = registered.ok();
            registry.reports.push(PluginReport {
                id: id.clone(),
                source: match plugin_config.source {
                    config::PluginSource::File => "plugins.toml",
                    config::PluginSource::DropIn => "drop-in",
                },
                version: plugin
                    .as_ref()
                    .map(|p| p.version.clone())
                    .unwrap_or_default(),
                digest: plugin
                    .as_ref()
                    .map(|p| p.digest.clone())
                    .unwrap_or_default(),
                grants: grants::summary(plugin_config),
                tools: plugin.as_ref().map_or(0, |plugin| {
                    registry
                        .tools
                        .iter()
                        .filter(|entry| Arc::ptr_eq(&entry.plugin, plugin))
                        .count()
                }),
                problems: registry.problems[problems_before..].to_vec(),
            });
        }
        for drop_in in crate::drop_in::awaiting_grant(config) {
            let problem = match config.plugins.contains_key(&drop_in.id) {
                true => format!(
                    "not loaded: [plugins.{}] in plugins.toml names another component",
                    drop_in.id
                ),
                false => format!(
                    "awaiting a grant: nothing it asks for is granted until `carport grant {}` \
                     writes its entry in plugins.toml",
                    drop_in.id
                ),
            };
            tracing::info!("drop-in {}: {problem}", drop_in.component.display());
            registry.reports.push(PluginReport {
                id: drop_in.id,
                source: "drop-in",
                version: String::new(),
                digest: crate::drop_in::sha256_of(&drop_in.component).unwrap_or_default(),
                grants: Vec::new(),
                tools: 0,
                problems: vec![problem],
            });
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
        registry
    }

    /// Links, grants and describes a freshly compiled plugin.
    async fn instantiate(
        &self,
        config: &Config,
        id: &str,
        plugin_config: &PluginConfig,
        compiled: Compiled,
    ) -> Result<Loaded> {
        let Compiled {
            path,
            digest,
            component,
            started,
        } = compiled;
        let pre = self
            .runtime
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
            grants: Arc::new(grants::grants(
                config,
                id,
                plugin_config,
                &self.runtime.catalogue_changes,
            )?),
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
        // A plugin granted `dynamic_catalogue` may describe itself from its state, which the
        // cache key (component and settings) does not cover, and its state may change without
        // carport seeing it (a crash before describing it again, an edit): storing the latest
        // description could still serve a stale one at the next start. Describing such a plugin
        // at each start costs one `describe`, and only for the plugins that asked for it.
        let cached = match plugin_config.dynamic_catalogue {
            true => None,
            false => self.cache.description(&plugin.digest, &context_key),
        };
        let info = match cached {
            Some(info) => info,
            None => {
                let info = plugin
                    .describe(DESCRIBE_TIMEOUT)
                    .await
                    .map_err(|error| anyhow::anyhow!("describe failed: {error}"))?;
                if !plugin_config.dynamic_catalogue {
                    self.cache
                        .store_description(&plugin.digest, &context_key, &info);
                    tracing::info!(
                        "described plugin `{id}`; the description is cached for the next start"
                    );
                }
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
        plugin.version = catalogue::one_line(&info.version, catalogue::MAX_VERSION_CHARS);
        plugin.summary = catalogue::one_line(&info.summary, catalogue::MAX_SUMMARY_CHARS);
        plugin.resource_scheme = info.resource_scheme.clone();
        // The digest is what `sha256` in plugins.toml pins.
        tracing::info!(
            "loaded plugin `{id}` {} ({} tools, {} prompts, sha256 {}) in {:?}",
            plugin.version,
            info.tools.len(),
            info.prompts.len(),
            plugin.digest,
            started.elapsed()
        );
        Ok(Loaded {
            id: id.to_string(),
            config: plugin_config.clone(),
            plugin: Arc::new(plugin),
            info,
        })
    }

    /// Serves what a loaded plugin offers, unless its names collide with those served already.
    fn register(&mut self, loaded: Arc<Loaded>) -> Result<Arc<LoadedPlugin>> {
        let Loaded {
            id,
            config: plugin_config,
            plugin,
            info,
        } = loaded.as_ref();
        let prefix = plugin_config.prefix_names;
        let mut tools = Vec::new();
        let mut disabled = Vec::new();
        for tool in &info.tools {
            let exposed = catalogue::exposed_name(id, prefix, &tool.name);
            if !plugin_config.serves(&tool.name) {
                disabled.push(exposed);
                continue;
            }
            match ToolEntry::new(plugin.clone(), exposed, tool.clone()) {
                Ok(entry) => tools.push(entry),
                Err(problem) => {
                    tracing::error!("{problem}");
                    self.problems.push(problem);
                }
            }
        }
        let mut prompts = Vec::new();
        for prompt in &info.prompts {
            let exposed = catalogue::exposed_name(id, prefix, &prompt.name);
            match PromptEntry::new(plugin.clone(), exposed, prompt.clone()) {
                Ok(entry) => prompts.push(entry),
                Err(problem) => self.problems.push(problem),
            }
        }
        self.refuse_name_collisions(&tools, &prompts)?;
        // Two plugins of one scheme (say two Tessie accounts) cannot both own its URIs: the
        // later one keeps its tools and prompts, and its resources are reported unserved.
        let scheme = &plugin.resource_scheme;
        if let Some(other) = self
            .resource_plugins
            .iter()
            .find(|other| !scheme.is_empty() && other.resource_scheme == *scheme)
        {
            self.problems.push(format!(
                "resources of plugin `{id}` are not served: their URI scheme `{scheme}:` \
                 belongs to plugin `{}`",
                other.id
            ));
        } else if !scheme.is_empty() {
            self.resource_plugins.push(plugin.clone());
            for template in &info.resource_templates {
                if !plugin.owns_uri(&template.uri_template) {
                    self.problems.push(format!(
                        "resource template {} of plugin `{id}` skipped: it is outside the \
                         plugin's scheme `{scheme}:`",
                        template.uri_template
                    ));
                    continue;
                }
                self.templates.push(TemplateEntry {
                    plugin: plugin.clone(),
                    template: template.clone(),
                });
            }
        }
        for exposed in disabled {
            self.disabled.insert(exposed, format!("[plugins.{id}]"));
        }
        self.tools.extend(tools);
        self.prompts.extend(prompts);
        self.plugins.push(plugin.clone());
        let plugin = plugin.clone();
        self.loaded.push(loaded);
        Ok(plugin)
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

    /// What a loaded plugin said about itself.
    pub fn description(&self, id: &str) -> Option<&PluginInfo> {
        self.loaded
            .iter()
            .find(|loaded| loaded.id == id)
            .map(|loaded| &loaded.info)
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
        self.resource_plugins
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
    ) -> Result<Answer, CallError> {
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
        entry.check_output(output)
    }

    /// The resources of every plugin that has any; a plugin that fails is skipped and logged,
    /// so one broken vendor does not hide the others' cars.
    pub async fn list_resources(&self) -> Vec<ResourceInfo> {
        let mut resources = Vec::new();
        for plugin in &self.resource_plugins {
            match plugin.clone().list_resources().await {
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
        self.resource_plugin(uri)?
            .clone()
            .read_resource(uri.to_string(), link)
            .await
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
            .clone()
            .get_prompt(entry.prompt.name.clone(), arguments, link)
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
        let mut completion = plugin.clone().complete(request).await?;
        completion.values.truncate(100);
        Ok(completion)
    }
}

/// What `carport inspect` shows of a component before anyone grants it anything.
pub struct Inspection {
    pub digest: String,
    /// The carport world it exports, e.g. `carport:provider/plugin@0.2.0`.
    pub world: Option<String>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// What `describe` returned in a sandbox granted nothing, or why it could not run.
    pub description: std::result::Result<PluginInfo, String>,
}

/// Compiles `file` and runs its `describe` with no network, no secrets and no client, with
/// the settings its manifest proposes.
pub async fn inspect(file: &Path, settings: &BTreeMap<String, String>) -> Result<Inspection> {
    let id = file
        .file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| config::valid_plugin_id(stem))
        .unwrap_or("inspected")
        .to_string();
    let scratch = std::env::temp_dir().join(format!("carport-inspect-{}", std::process::id()));
    let mut config = Config::parse(
        &format!("[plugins.{id}]\ncomponent = \"component.wasm\"\n"),
        Path::new("."),
    )?;
    config.carport.data_dir = Some(scratch.clone());
    let entry = config.plugins.get_mut(&id).expect("just parsed");
    entry.component = std::path::absolute(file)?;
    entry.settings = settings.clone();

    let runtime = Runtime::new()?;
    let cache = ComponentCache::new(&runtime.engine, &config.cache_dir());
    let (bytes, digest) = read_pinned(&id, file, None, false)?;
    let component = {
        let (engine, digest) = (runtime.engine.clone(), digest.clone());
        tokio::task::spawn_blocking(move || cache.load(&engine, &digest, &bytes)).await??
    };
    let component_type = component.component_type();
    let imports: Vec<String> = component_type
        .imports(&runtime.engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let exports: Vec<String> = component_type
        .exports(&runtime.engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let world = exports.iter().find_map(|name| {
        let version = name.strip_prefix(&format!("{WIT_PACKAGE}/provider@"))?;
        Some(format!("{WIT_PACKAGE}/plugin@{version}"))
    });
    let registry = Registry::load(&config).await?;
    let description = match registry.description(&id) {
        Some(info) => Ok(info.clone()),
        None => Err(registry.problems.join("; ")),
    };
    drop(registry);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(Inspection {
        digest,
        world,
        imports,
        exports,
        description,
    })
}
