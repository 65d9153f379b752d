//! Compiled components on disk, keyed by the component's sha256 and the engine's compatibility
//! hash, so a warm start deserialises (~0.3 ms) instead of compiling (~50 ms release, ~0.5 s
//! debug) each plugin. What each plugin's `describe` returned is kept beside it, keyed also by
//! the settings it was described with, so a warm start runs no plugin code at all.
//!
//! A compiled file is native code: loading a changed one would run whatever it now contains.
//! So each compiled file has a CRC-32 beside it (`.crc32`) and is loaded only when the checksum
//! matches and neither the file, its checksum nor their folder can be written by anyone but
//! carport's own user; anything else is recompiled, and the log says why. The ownership check
//! keeps other users out; the checksum catches corruption (a cryptographic hash would add
//! nothing: whoever may write the file may write its checksum too). The checked file is then
//! mapped, not copied: copying the megabytes of code into fresh memory was the largest part of
//! a warm start. Files are only ever replaced by rename, so a mapping never sees a later write
//! by carport itself. A description is small: its checksum leads the file, read whole.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::capabilities::PluginInfo;

const CHECKSUM_BYTES: usize = 4;
/// Names the file layout, so a cache written by an older carport is a miss, not a mismatch.
const LAYOUT: &str = "v3";

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
            let loaded = self.check_compiled(&path).and_then(|()| {
                // SAFETY: the code was written by `precompile_component` of an engine with the
                // same compatibility hash and is unchanged since (its checksum matches); only
                // carport's user could have replaced file and checksum together, or could
                // write to the file while it is mapped.
                unsafe { Component::deserialize_file(engine, &path) }.map_err(anyhow::Error::from)
            });
            match loaded {
                Ok(component) => return Ok(component),
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
        let stored = self.store(&path, &[&compiled]).and_then(|()| {
            self.store(
                &checksum_path(&path),
                &[&crc32fast::hash(&compiled).to_le_bytes()],
            )
        });
        if let Err(error) = stored {
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
            .and_then(|json| self.store(&path, &[&crc32fast::hash(&json).to_le_bytes(), &json]));
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

    /// Checks a compiled file against the checksum beside it, reading it in small pieces (no
    /// copy of the whole is made), and that only we could have written either.
    fn check_compiled(&self, path: &Path) -> Result<()> {
        only_ours(&std::fs::metadata(&self.dir)?, &self.dir)?;
        let checksum_file =
            std::fs::File::open(checksum_path(path)).context("its checksum file is missing")?;
        only_ours(&checksum_file.metadata()?, &checksum_path(path))?;
        let mut expected = Vec::new();
        std::io::Read::read_to_end(&mut &checksum_file, &mut expected)?;
        let mut file = std::fs::File::open(path)?;
        only_ours(&file.metadata()?, path)?;
        let mut hasher = crc32fast::Hasher::new();
        let mut piece = vec![0u8; 64 * 1024];
        loop {
            let read = std::io::Read::read(&mut file, &mut piece)?;
            if read == 0 {
                break;
            }
            hasher.update(&piece[..read]);
        }
        if hasher.finalize().to_le_bytes()[..] != expected[..] {
            bail!("its contents do not match their checksum (changed on disk or corrupted)");
        }
        Ok(())
    }

    /// Writes `parts` to `path` whole or not at all: a temporary file, synced, renamed.
    fn store(&self, path: &Path, parts: &[&[u8]]) -> Result<()> {
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
        for part in parts {
            std::io::Write::write_all(&mut file, part)?;
        }
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    }
}

fn checksum_path(compiled: &Path) -> PathBuf {
    compiled.with_extension("cwasm.crc32")
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
