//! Start-up, configuration errors and transports.

use std::process::Command;

use serde_json::json;

use carport::simulator::{SimOptions, Simulator};

use crate::harness::*;

fn carport(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carport"))
        .args(args)
        .env("CARPORT_CACHE_DIR", cache_dir())
        .output()
        .expect("carport runs")
}

#[test]
fn a_malformed_configuration_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugins.toml");
    std::fs::write(&path, "[plugins.tessie]\ncomponent = \"x.wasm\"\nallow = [\"https://api.tessie.com\"]\ntimeout = 5\n").unwrap();
    let output = carport(&["serve", "--config", path.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "stdout belongs to MCP");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(stderr.contains("unknown field `timeout`"), "{stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
}

#[test]
fn a_missing_configuration_points_at_the_demo() {
    let output = carport(&["serve", "--config", "/nonexistent/plugins.toml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("carport demo"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_and_missing_components_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm\x0d\0\x01\0 this is not a component").unwrap();
    let extra = format!(
        "\n[plugins.broken]\ncomponent = {:?}\n\n[plugins.missing]\ncomponent = \"nowhere/missing.wasm\"\n\n\
         [plugins.pinned]\ncomponent = {:?}\nsha256 = \"{}\"\n",
        broken.display().to_string(),
        components_dir().join("tessie.wasm").display().to_string(),
        "0".repeat(64),
    );
    let harness = Harness::start_with(Options {
        extra_toml: extra,
        ..Options::default()
    })
    .await;
    let tools = harness.client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|tool| tool.name == "tessie_tesla_state"));
    assert!(
        !tools
            .iter()
            .any(|tool| tool.name.starts_with("broken_") || tool.name.starts_with("pinned_"))
    );
    let instructions = harness
        .client
        .peer_info()
        .unwrap()
        .instructions
        .clone()
        .unwrap();
    assert!(
        instructions.contains("plugin `broken` was not loaded"),
        "{instructions}"
    );
    assert!(
        instructions.contains("broken.wasm is not a usable component"),
        "{instructions}"
    );
    assert!(
        instructions.contains("plugin `missing` was not loaded: cannot read its component"),
        "{instructions}"
    );
    assert!(
        instructions.contains("plugins.toml pins 0000"),
        "{instructions}"
    );
    let result = harness.call("tessie_tesla_state", json!({})).await;
    assert!(!is_error(&result), "{}", text_of(&result));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tools_are_protocol_errors() {
    let harness = Harness::start().await;
    let outcome = harness
        .client
        .call_tool(rmcp::model::CallToolRequestParams::new("tessie_fly"))
        .await;
    assert!(outcome.is_err(), "an unknown tool must be a protocol error");
}

#[test]
fn check_lists_tools_and_fails_on_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugins.toml");
    let tessie = components_dir().join("tessie.wasm");
    std::fs::write(
        &path,
        format!(
            "[carport]\ndata_dir = \"data\"\n[plugins.tessie]\ncomponent = {:?}\n",
            tessie.display().to_string()
        ),
    )
    .unwrap();
    let output = carport(&["check", "--config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("tessie_tesla_command"), "{stderr}");

    std::fs::write(&path, "[plugins.gone]\ncomponent = \"gone.wasm\"\n").unwrap();
    let output = carport(&["check", "--config", path.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("plugin `gone` was not loaded"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_streamable_http() {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;

    let simulator = carport::simulator::Simulator::start(Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &simulator, &Options::default());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"))
        .args(["serve", "--config", config.to_str().unwrap(), "--http"])
        .arg(format!("127.0.0.1:{port}"))
        .env("CARPORT_CACHE_DIR", cache_dir())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut client = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if let Ok(connected) = ().serve(StreamableHttpClientTransport::from_uri(url.clone())).await
        {
            client = Some(connected);
            break;
        }
    }
    let client = client.expect("carport answers over HTTP");
    let result = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("tessie_tesla_command")
                .with_arguments(json!({"command": "lock"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert!(!is_error(&result), "{}", text_of(&result));
    assert!(simulator.vehicle(RED_ARROW).unwrap().locked);
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_start_uses_the_compiled_component_cache() {
    let cache = tempfile::tempdir().unwrap();
    let options = || Options {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Options::default()
    };
    let cold = Harness::start_with(options()).await;
    assert!(!is_error(&cold.call("tessie_tesla_state", json!({})).await));
    let cold_log = cold.stderr.lock().unwrap().clone();
    assert!(cold_log.contains("compiled component"), "{cold_log}");
    let cached: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let count = |suffix: &str| cached.iter().filter(|name| name.ends_with(suffix)).count();
    assert_eq!(
        count(".cwasm"),
        2,
        "one compiled file per component: {cached:?}"
    );
    assert_eq!(
        count(".cwasm.crc32"),
        2,
        "a checksum beside each compiled file: {cached:?}"
    );
    assert_eq!(
        count(".describe.json"),
        2,
        "one description per component: {cached:?}"
    );

    let warm = Harness::start_with(options()).await;
    assert!(!is_error(&warm.call("tessie_tesla_state", json!({})).await));
    let warm_log = warm.stderr.lock().unwrap().clone();
    assert!(warm_log.contains("loaded plugin `tessie`"), "{warm_log}");
    assert!(
        !warm_log.contains("compiled component"),
        "a warm start recompiled: {warm_log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_toml_selects_the_tools_served() {
    let harness = Harness::start_with(Options {
        tessie_keys: "tools = [\"tesla_*\"]\ndeny_tools = [\"tesla_command\"]".into(),
        ..Options::default()
    })
    .await;
    let tools = harness.client.list_all_tools().await.unwrap();
    let tessie: Vec<&str> = tools
        .iter()
        .map(|tool| tool.name.as_ref())
        .filter(|name| name.starts_with("tessie_"))
        .collect();
    assert_eq!(tessie, vec!["tessie_tesla_state"]);
    let refused = harness
        .client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("tessie_tesla_command")
                .with_arguments(json!({"command": "unlock"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("turned off by `tools` / `deny_tools` under [plugins.tessie]"),
        "{refused}"
    );
    assert!(
        harness.tessie_requests().is_empty(),
        "a turned-off tool reached the vendor"
    );
}

/// The second start with the same configuration takes what the plugins said about themselves
/// from the cache and runs no plugin code; a changed description is described afresh.
#[tokio::test(flavor = "multi_thread")]
async fn a_warm_start_takes_descriptions_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let simulator = Simulator::start(SimOptions::default()).await.unwrap();
    let config = write_config(&dir, &simulator, &Options::default());
    let check = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_carport"))
            .args(["check", "--config"])
            .arg(&config)
            .env("CARPORT_CACHE_DIR", cache.path())
            .env("CARPORT_LOG", "info")
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert_eq!(check().matches("described plugin").count(), 2);
    let warm = check();
    assert!(!warm.contains("described plugin"), "{warm}");
    assert!(warm.contains("tessie_tesla_state"), "{warm}");

    for entry in std::fs::read_dir(cache.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".describe.json") {
            let mut bytes = std::fs::read(&path).unwrap();
            let last = bytes.len() - 2;
            bytes[last] ^= 1;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let tampered = check();
    assert_eq!(
        tampered.matches("describing again").count(),
        2,
        "{tampered}"
    );
    assert_eq!(
        tampered.matches("described plugin").count(),
        2,
        "{tampered}"
    );
}
