//! Compiled components on disk, keyed by the component's sha256 and the engine's compatibility
//! hash, so a warm start deserialises (~0.3 ms) instead of compiling (~50 ms release, ~0.5 s
//! debug) each plugin. What each plugin's `describe` returned is kept beside it, keyed also by
//! the settings it was described with, so a warm start runs no plugin code at all. Plugins
//! granted `dynamic_catalogue` are the exception: their description may depend on their state,
//! which the key does not cover, so they are described at each start and never stored here.
//!
//! A compiled file is native code: loading a changed one would run whatever it now contains.
//! So each file starts with a CRC-32 of the compiled code that follows it, is read into memory
//! (no window between the check and the load), and is used only when the checksum matches and
//! neither the file nor its folder can be written by anyone but carport's own user. The
//! ownership check keeps other users out; the checksum catches corruption (a cryptographic hash
//! would add nothing: whoever may write the file may write its checksum too, and a CRC reads
//! the megabytes of every warm start several times faster). Anything else is recompiled, and
//! the log says why.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::capabilities::PluginInfo;

const CHECKSUM_BYTES: usize = 4;
/// Names the file layout, so a cache written by an older carport is a miss, not a mismatch.
const LAYOUT: &str = "crc32";

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
    /// on a miss or when the cached file cannot be trusted. A cache that cannot be read or
    /// written only costs time.
    pub fn load(&self, engine: &Engine, digest: &str, bytes: &[u8]) -> Result<Component> {
        let path = self
            .dir
            .join(format!("{digest}-{}-{LAYOUT}.cwasm", self.engine_key));
        if path.exists() {
            match self.read_trusted(&path) {
                // SAFETY: the code was written by `precompile_component` of an engine with the
                // same compatibility hash, is unchanged since (its checksum matches), and only
                // carport's user could have replaced file and checksum together.
                Ok(trusted) => match unsafe { Component::deserialize(engine, trusted.body()) } {
                    Ok(component) => return Ok(component),
                    Err(error) => tracing::warn!(
                        "recompiling: the compiled component {} is unreadable: {error:#}",
                        path.display()
                    ),
                },
                Err(reason) => tracing::warn!(
                    "recompiling: not loading the compiled component {}: {reason:#}",
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
    /// of the settings it was described with), if a previous start stored it intact.
    pub fn description(&self, digest: &str, context_key: &str) -> Option<PluginInfo> {
        let path = self.description_path(digest, context_key);
        if !path.exists() {
            return None;
        }
        let parsed = self
            .read_trusted(&path)
            .and_then(|json| serde_json::from_slice(json.body()).map_err(anyhow::Error::from));
        match parsed {
            Ok(info) => Some(info),
            Err(error) => {
                tracing::warn!("describing again: {}: {error:#}", path.display());
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
            "{digest}-{}-{context_key}-{LAYOUT}.describe.json",
            self.engine_key
        ))
    }

    /// The contents of `path`, when the checksum matches and only we could have written it.
    fn read_trusted(&self, path: &Path) -> Result<Trusted> {
        only_ours(&std::fs::metadata(&self.dir)?, &self.dir)?;
        let file = std::fs::File::open(path)?;
        only_ours(&file.metadata()?, path)?;
        let mut contents = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut contents)?;
        if contents.len() < CHECKSUM_BYTES {
            bail!("it is truncated");
        }
        let (checksum, body) = contents.split_at(CHECKSUM_BYTES);
        if crc32fast::hash(body).to_le_bytes() != checksum {
            bail!("its contents do not match their checksum (changed on disk or corrupted)");
        }
        Ok(Trusted(contents))
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        std::io::Write::write_all(&mut file, &crc32fast::hash(compiled).to_le_bytes())?;
        std::io::Write::write_all(&mut file, compiled)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    }
}

/// A cache file whose checksum matched, kept whole so the body is not copied again.
struct Trusted(Vec<u8>);

impl Trusted {
    fn body(&self) -> &[u8] {
        &self.0[CHECKSUM_BYTES..]
    }
}

/// Refuses a file or folder that another user owns or may write: they could replace the code
/// and its checksum together.
fn only_ours(metadata: &std::fs::Metadata, path: &Path) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let carport_user = unsafe { libc::geteuid() };
    if metadata.uid() != carport_user {
        bail!(
            "{} belongs to user {}, not to carport's user {carport_user}",
            path.display(),
            metadata.uid()
        );
    }
    if metadata.mode() & 0o022 != 0 {
        bail!(
            "{} may be written by other users (mode {:o}); carport's cache must be private",
            path.display(),
            metadata.mode() & 0o777
        );
    }
    Ok(())
}
