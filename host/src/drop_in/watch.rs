//! Watching the drop-in folder and plugins.toml: a component added, replaced or removed, or a
//! grant written, is served without a restart.
//!
//! Changes are debounced (a component being copied in settles first), then plugins.toml is read
//! again and the registry rebuilt; plugins whose entry and component did not change are kept as
//! they are, so only what changed is compiled and described. The new registry replaces the old
//! one whole and sessions are told their lists changed; calls already running finish on the
//! plugin they started with. A plugins.toml that no longer parses is reported and the running
//! registry stays. Changing `plugins_dir`, `data_dir` or `cache_dir` needs a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use crate::config::Config;
use crate::mcp::Live;

/// How long the folder must be quiet before a reload: a copy of a large component settles.
const SETTLE: Duration = Duration::from_millis(400);

/// Watches until dropped.
pub struct Watch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

/// Starts watching `plugins_dir` and the configuration at `config_path`, reloading `live`.
pub fn start(config_path: &Path, plugins_dir: &Path, live: Arc<Live>) -> Result<Watch> {
    std::fs::create_dir_all(plugins_dir)
        .with_context(|| format!("cannot create the drop-in folder {}", plugins_dir.display()))?;
    let config_path = std::path::absolute(config_path)?;
    let config_dir = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let plugins_dir = std::path::absolute(plugins_dir)?;

    let (changes, mut changed) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watched_dir = plugins_dir.clone();
    let watched_config = config_path.clone();
    let mut debouncer = new_debouncer(SETTLE, None, move |result: DebounceEventResult| {
        let relevant = match result {
            Ok(events) => events.iter().flat_map(|event| &event.paths).any(|path| {
                path == &watched_config
                    || (path.parent() == Some(watched_dir.as_path())
                        && path
                            .extension()
                            .is_some_and(|extension| extension == "wasm" || extension == "toml"))
            }),
            Err(errors) => {
                tracing::warn!("watching the drop-in folder: {errors:?}");
                true
            }
        };
        if relevant {
            let _ = changes.send(());
        }
    })?;
    debouncer
        .watch(&plugins_dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", plugins_dir.display()))?;
    // The folder, not the file: editors and `carport grant` replace the file by renaming.
    debouncer
        .watch(&config_dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", config_dir.display()))?;
    tracing::info!(
        "watching the drop-in folder {} and {}",
        plugins_dir.display(),
        config_path.display()
    );

    tokio::spawn(async move {
        while changed.recv().await.is_some() {
            // One reload covers every change queued meanwhile.
            while changed.try_recv().is_ok() {}
            match Config::load(&config_path) {
                Ok(config) => {
                    live.rebuild(|current| async move {
                        let registry = current.reload(&config).await;
                        tracing::info!(
                            "reloaded: {} plugins, {} tools, {} problems",
                            registry.plugins.len(),
                            registry.tools.len(),
                            registry.problems.len()
                        );
                        registry
                    })
                    .await;
                }
                Err(error) => tracing::error!(
                    "plugins.toml changed but is not valid, so the plugins stay as they were: \
                     {error:#}"
                ),
            }
        }
    });
    Ok(Watch {
        _debouncer: debouncer,
    })
}
