//! `carport demo`: the simulator plus a configuration that points every bundled plugin at it,
//! so a new user sees real tool calls without any account.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::simulator::{Simulator, Vendor};

/// The bundled plugins the demo serves, with the simulated vendor each one talks to.
const DEMO_PLUGINS: &[(&str, Vendor)] = &[("tessie", Vendor::Tessie)];

/// Finds the built components: `--components`, `$CARPORT_COMPONENTS`, next to the binary
/// (`target/<profile>/../components`), or `./target/components`.
pub fn components_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = explicit.into_iter().collect();
    candidates.extend(std::env::var_os("CARPORT_COMPONENTS").map(PathBuf::from));
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        candidates.push(exe_dir.join("../components"));
    }
    candidates.push(PathBuf::from("target/components"));
    for candidate in &candidates {
        if candidate.join("tessie.wasm").is_file() {
            return Ok(candidate.clone());
        }
    }
    bail!(
        "no built plugin components found (looked in {}); build them with `cargo xtask build`, \
         or pass --components DIR",
        candidates.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
    )
}

/// A configuration serving each bundled plugin against `simulator`. Tokens are written to
/// files under `data_dir`, as a real deployment would keep them.
pub fn config(simulator: &Simulator, components: &Path, data_dir: &Path) -> Result<Config> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let mut text = format!("[carport]\ndata_dir = {:?}\n", data_dir.display().to_string());
    for (id, vendor) in DEMO_PLUGINS {
        let token_file = data_dir.join(format!("{id}-token"));
        std::fs::write(&token_file, vendor.token())?;
        let url = simulator.url(*vendor);
        let first_vin = simulator
            .state
            .vehicles()
            .first()
            .map(|vehicle| vehicle.vin.clone())
            .unwrap_or_default();
        text.push_str(&format!(
            "\n[plugins.{id}]\ncomponent = {component:?}\nallow = [{url:?}]\n\
             [plugins.{id}.settings]\nbase_url = {url:?}\nvin = {first_vin:?}\n\
             [plugins.{id}.secrets.token]\nfile = {token:?}\n",
            component = components.join(format!("{id}.wasm")).display().to_string(),
            token = token_file.display().to_string(),
        ));
    }
    Config::parse(&text, data_dir)
}
