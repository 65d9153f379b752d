//! Latency benchmark: prints figures, asserts nothing.
//!
//! `cargo xtask bench` (release). Measures, against the built-in simulator on loopback:
//! - start-up: spawning `carport serve` until its tools/list answer, with a cold and a warm
//!   compiled-component cache;
//! - MCP round trips over stdio for `tessie_tesla_state` and a `lock` command;
//! - the same calls in process (registry only, no MCP, no pipes), to show the sandbox's share;
//! - tools/list bytes per plugin in full and compact `tool_mode`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use carport::runtime::Registry;
use carport::simulator::{SimOptions, Simulator};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

const STARTS: usize = 10;
const CALLS: usize = 500;

fn components() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/components");
    assert!(
        dir.join("tessie.wasm").is_file(),
        "run `cargo xtask bench`, which builds the components"
    );
    dir
}

struct Figures(Vec<Duration>);

impl Figures {
    fn report(mut self, what: &str) {
        self.0.sort();
        let at = |quantile: f64| self.0[((self.0.len() - 1) as f64 * quantile).round() as usize];
        let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
        println!(
            "{what:<44} n={:<4} median {:>8.3} ms   p95 {:>8.3} ms   min {:>8.3} ms",
            self.0.len(),
            ms(at(0.5)),
            ms(at(0.95)),
            ms(self.0[0])
        );
    }
}

async fn spawn_and_list(config: &Path, cache: &Path) -> Duration {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .env("CARPORT_CACHE_DIR", cache)
        .env("CARPORT_LOG", "warn");
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let took = started.elapsed();
    assert!(!tools.is_empty());
    client.cancel().await.unwrap();
    took
}

#[tokio::main]
async fn main() {
    let simulator = Simulator::start(SimOptions::default()).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let text = carport::demo::config_text(&simulator, &components(), &data_dir).unwrap();
    let config = carport::config::Config::parse(&text, &data_dir).unwrap();
    let config_path = work.path().join("plugins.toml");
    std::fs::write(&config_path, &text).unwrap();
    let cache = work.path().join("cache");

    println!("carport latency benchmark (release; simulator on loopback)\n");
    let cold = spawn_and_list(&config_path, &cache).await;
    Figures(vec![cold]).report("start to tools/list, cold cache");
    let warm = collect_sequentially(STARTS, || spawn_and_list(&config_path, &cache)).await;
    Figures(warm).report("start to tools/list, warm cache");
    println!();
    for mode in ["full", "compact"] {
        let mode_config = work.path().join(format!("plugins-{mode}.toml"));
        let moded = text.replace(
            "]\ncomponent = ",
            &format!("]\ntool_mode = {mode:?}\ncomponent = "),
        );
        std::fs::write(&mode_config, moded).unwrap();
        for (plugin, tools, bytes) in tools_list_bytes(&mode_config, &cache).await {
            println!("tools/list, {mode:<7} mode: {plugin:<10} {tools:>3} tools {bytes:>7} bytes");
        }
    }
    println!();

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"));
    command
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("CARPORT_CACHE_DIR", &cache)
        .env("CARPORT_LOG", "warn");
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    for (tool, arguments, label) in [
        (
            "tessie_tesla_state",
            json!({}),
            "MCP stdio: tessie_tesla_state",
        ),
        (
            "tessie_tesla_command",
            json!({"command": "lock"}),
            "MCP stdio: tessie_tesla_command lock",
        ),
        (
            "tesla_vehicle_state",
            json!({}),
            "MCP stdio: tesla_vehicle_state",
        ),
        ("tesla_door_lock", json!({}), "MCP stdio: tesla_door_lock"),
        (
            "teslamate_get_car_status",
            json!({"car_id": 1}),
            "MCP stdio: teslamate_get_car_status",
        ),
    ] {
        let arguments = arguments.as_object().unwrap().clone();
        let mut samples = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let started = Instant::now();
            let result = client
                .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments.clone()))
                .await
                .unwrap();
            samples.push(started.elapsed());
            assert_ne!(result.is_error, Some(true));
        }
        Figures(samples).report(label);
    }
    client.cancel().await.unwrap();

    let registry = Arc::new(Registry::load(&config).await.unwrap());
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        registry
            .call("tessie_tesla_state", json!({}), Default::default())
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    Figures(samples).report("in process: tessie_tesla_state");
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let refused = registry
            .call(
                "tessie_tesla_command",
                json!({"command": "set_temperature", "temperature": 99}),
                Default::default(),
            )
            .await;
        samples.push(started.elapsed());
        assert!(refused.is_err());
    }
    Figures(samples).report("in process: schema refusal (no plugin call)");
}

/// Per plugin (by tool-name prefix): how many tools and how many bytes of tools/list they take,
/// serialised as they travel.
async fn tools_list_bytes(config: &Path, cache: &Path) -> Vec<(String, usize, usize)> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .env("CARPORT_CACHE_DIR", cache)
        .env("CARPORT_LOG", "warn");
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    client.cancel().await.unwrap();
    let mut plugins: Vec<String> = tools
        .iter()
        .filter_map(|tool| tool.name.split('_').next().map(str::to_string))
        .collect();
    plugins.sort();
    plugins.dedup();
    plugins
        .into_iter()
        .map(|plugin| {
            let own: Vec<_> = tools
                .iter()
                .filter(|tool| tool.name.split('_').next() == Some(plugin.as_str()))
                .collect();
            let bytes = serde_json::to_vec(&json!({ "tools": own })).unwrap().len();
            (plugin, own.len(), bytes)
        })
        .collect()
}

async fn collect_sequentially<F, Fut>(times: usize, mut make: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut samples = Vec::with_capacity(times);
    for _ in 0..times {
        samples.push(make().await);
    }
    samples
}
