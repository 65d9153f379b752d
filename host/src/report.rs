//! What `carport plugins`, `inspect` and `grant` print: reports for the operator on stdout
//! (these commands never speak MCP).

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use carport::drop_in::{self, Granted};
use carport::runtime::Registry;

pub fn plugins(registry: &Registry) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if registry.reports.is_empty() {
        writeln!(
            out,
            "no plugins: plugins.toml enables none and no drop-in waits"
        )?;
    }
    for report in &registry.reports {
        let digest = match report.digest.is_empty() {
            true => "-".to_string(),
            false => format!("sha256:{}", report.digest),
        };
        let version = match report.version.is_empty() {
            true => "-",
            false => report.version.as_str(),
        };
        writeln!(
            out,
            "{}\t{version}\t{}\t{} tools\t{digest}",
            report.id, report.source, report.tools
        )?;
        match report.grants.is_empty() {
            true => writeln!(out, "  grants: nothing")?,
            false => writeln!(out, "  grants: {}", report.grants.join("; "))?,
        }
        for problem in &report.problems {
            writeln!(out, "  problem: {problem}")?;
        }
    }
    Ok(())
}

pub async fn inspect(file: &Path) -> Result<()> {
    let manifest_path = drop_in::manifest_path(file);
    let manifest = drop_in::read_manifest(&manifest_path);
    let settings = manifest
        .as_ref()
        .map(|manifest| manifest.settings.clone())
        .unwrap_or_default();
    let inspection = carport::runtime::inspect(file, &settings).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "component: {}", file.display())?;
    writeln!(out, "sha256: {}", inspection.digest)?;
    match &inspection.world {
        Some(world) => writeln!(out, "world: {world}")?,
        None => writeln!(
            out,
            "world: none of carport's (it exports no carport:provider)"
        )?,
    }
    writeln!(out, "imports:")?;
    for import in &inspection.imports {
        writeln!(out, "  {import}")?;
    }
    if inspection
        .imports
        .iter()
        .any(|name| name.starts_with("wasi:"))
    {
        writeln!(
            out,
            "  (WASI is linked empty: no files, environment, sockets or fine clocks)"
        )?;
    }
    writeln!(out, "exports:")?;
    for export in &inspection.exports {
        writeln!(out, "  {export}")?;
    }
    match &inspection.description {
        Ok(info) => {
            writeln!(
                out,
                "describes itself as: {} {} ({:?})",
                info.id, info.version, info.summary
            )?;
            writeln!(out, "tools:")?;
            for tool in &info.tools {
                let effect = match (tool.annotations.read_only, tool.annotations.destructive) {
                    (true, _) => "read-only",
                    (false, true) => "destructive",
                    (false, false) => "writes",
                };
                writeln!(out, "  {}\t{effect}\t{}", tool.name, tool.title)?;
            }
            for prompt in &info.prompts {
                writeln!(out, "  prompt {}\t{}", prompt.name, prompt.title)?;
            }
        }
        Err(problem) => writeln!(out, "describe failed: {problem}")?,
    }
    match manifest {
        Ok(manifest) => {
            writeln!(out, "requests ({}):", manifest_path.display())?;
            for line in drop_in::describe_request(&manifest) {
                writeln!(out, "  {line}")?;
            }
        }
        Err(error) => writeln!(out, "requests: {error:#}")?,
    }
    Ok(())
}

pub fn granted(name: &str, config: &Path, granted: &Granted) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "drop-in {name} asks for:")?;
    for line in &granted.request {
        writeln!(out, "  {line}")?;
    }
    writeln!(
        out,
        "granted in {} as [plugins.{name}], pinned to sha256 {}",
        config.display(),
        granted.digest
    )?;
    for variable in &granted.secret_variables {
        writeln!(
            out,
            "set {variable} in carport's environment (or edit the entry to read a file)"
        )?;
    }
    writeln!(
        out,
        "a running carport picks the grant up; another build needs `carport grant {name}` again"
    )?;
    Ok(())
}
