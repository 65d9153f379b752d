//! Compiled components on disk, keyed by the component's sha256 and the engine's compatibility
//! hash, so a warm start deserialises (~0.3 ms) instead of compiling (~50 ms release, ~0.5 s
//! debug) each plugin. What each plugin's `describe` returned is kept beside it, keyed also by
//! the settings it was described with, so a warm start runs no plugin code at all.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::capabilities::PluginInfo;

pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

impl ComponentCache {
    pub fn new(engine: &Engine, dir: &Path) -> ComponentCache {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// Loads the compiled form of `bytes` (whose sha256 is `digest`), compiling and storing it
    /// on a miss. A cache that cannot be read or written only costs time.
    pub fn load(&self, engine: &Engine, digest: &str, bytes: &[u8]) -> Result<Component> {
        let path = self.dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: the file was written by `precompile_component` of an engine with the
            // same compatibility hash, into carport's own cache directory.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(error) => tracing::warn!(
                    "ignoring unreadable compiled component {}: {error:#}",
                    path.display()
                ),
            }
        }
        let started = std::time::Instant::now();
        let compiled = engine
            .precompile_component(bytes)
            .map_err(anyhow::Error::from)
            .context("not a valid Wasm component")?;
        tracing::info!(
            "compiled component {digest} in {:?}; caching it",
            started.elapsed()
        );
        if let Err(error) = self.store(&path, &compiled) {
            tracing::warn!(
                "cannot cache the compiled component at {}: {error:#}",
                path.display()
            );
        }
        // SAFETY: `compiled` was produced just now by this engine.
        unsafe { Component::deserialize(engine, &compiled) }.map_err(anyhow::Error::from)
    }

    /// What the component with `digest` described itself as, given `context_key` (a digest
    /// of the settings it was described with), if a previous start stored it.
    pub fn description(&self, digest: &str, context_key: &str) -> Option<PluginInfo> {
        let path = self.description_path(digest, context_key);
        let text = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&text) {
            Ok(info) => Some(info),
            Err(error) => {
                tracing::warn!(
                    "ignoring unreadable description {}: {error}",
                    path.display()
                );
                None
            }
        }
    }

    /// Stores a description for the next start; failing only costs that start time.
    pub fn store_description(&self, digest: &str, context_key: &str, info: &PluginInfo) {
        let path = self.description_path(digest, context_key);
        let stored = serde_json::to_vec(info)
            .map_err(anyhow::Error::from)
            .and_then(|json| self.store(&path, &json));
        if let Err(error) = stored {
            tracing::warn!(
                "cannot cache the description at {}: {error:#}",
                path.display()
            );
        }
    }

    fn description_path(&self, digest: &str, context_key: &str) -> PathBuf {
        self.dir.join(format!(
            "{digest}-{}-{context_key}.describe.json",
            self.engine_key
        ))
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, compiled)?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    }
}
