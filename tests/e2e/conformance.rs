//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, server scenarios)
//! against `carport serve --http` with the fixture plugin `tests/plugins/conformance`, for both
//! protocol revisions carport serves. Node.js and the suite come from the npm registry, pinned
//! by `tests/conformance/package-lock.json`; nothing else is fetched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{components_dir, serve_http};

const REVISIONS: &[&str] = &["2025-11-25", "2026-07-28"];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Installs the pinned suite into `target/conformance-runner` (once per lock file) and returns
/// the Node.js binary and the suite's entry point.
fn install_suite() -> (PathBuf, PathBuf) {
    let source = repository().join("tests/conformance");
    let runner = repository().join("target/conformance-runner");
    let lock = std::fs::read(source.join("package-lock.json")).unwrap();
    let node = runner.join("node_modules/node/bin/node");
    let suite = runner.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let installed = std::fs::read(runner.join("package-lock.json")).is_ok_and(|old| old == lock);
    if !(installed && node.is_file() && suite.is_file()) {
        std::fs::create_dir_all(&runner).unwrap();
        for file in ["package.json", "package-lock.json", ".npmrc"] {
            std::fs::copy(source.join(file), runner.join(file)).unwrap();
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&runner)
            .stdout(Stdio::null())
            .status()
            .expect(
                "npm is needed to install the MCP conformance suite (Debian: apt-get install npm)",
            );
        assert!(status.success(), "npm ci in {} failed", runner.display());
    }
    (node, suite)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_conformance_suite_passes_on_both_revisions() {
    let (node, suite) = install_suite();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plugins.toml");
    let fixture = std::fs::read_to_string(repository().join("tests/conformance/plugins.toml"))
        .unwrap()
        .replace(
            "../../target/components/conformance.wasm",
            &components_dir()
                .join("conformance.wasm")
                .display()
                .to_string(),
        )
        .replace("../../target/conformance/state", "state");
    std::fs::write(&config, fixture).unwrap();

    let (_carport, url) = serve_http(&config).await;

    for revision in REVISIONS {
        let results = repository()
            .join("target/conformance-results")
            .join(revision);
        let _ = std::fs::remove_dir_all(&results);
        let baseline = repository().join(format!(
            "tests/conformance/expected-failures-{revision}.yml"
        ));
        let output = tokio::process::Command::new(&node)
            .arg(&suite)
            .args([
                "server",
                "--url",
                &url,
                "--requirements",
                revision,
                "--timeout",
                "20000",
            ])
            .arg("--expected-failures")
            .arg(&baseline)
            .arg("-o")
            .arg(&results)
            .env("NO_COLOR", "1")
            .output()
            .await
            .expect("the conformance suite runs");
        let report = String::from_utf8_lossy(&output.stdout);
        let summary = report
            .split_once("=== SUMMARY ===")
            .map_or(report.as_ref(), |(_, summary)| summary);
        eprintln!("conformance {revision}:{summary}");
        assert!(
            output.status.success(),
            "the conformance suite failed on {revision} (details in {}):{summary}\n{}",
            results.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
