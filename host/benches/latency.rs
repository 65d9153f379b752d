//! Latency benchmark: prints figures, asserts nothing.
//!
//! `cargo xtask bench` (release). Measures, against the built-in simulator on loopback:
//! - start-up: spawning `carport serve` until its tools/list answer, with a cold and a warm
//!   compiled-component cache;
//! - MCP round trips over stdio for `tessie_tesla_state` and a `lock` command, and the same
//!   for the other providers (Tesla Fleet, TeslaMate, Smartcar);
//! - the same calls in process (registry only, no MCP, no pipes), to show the sandbox's share;
//! - a read over MCP against the same request sent straight to the simulator (carport's
//!   overhead), resident memory after start-up and after 10,000 calls;
//! - streamable HTTP: sequential calls on one keep-alive connection, and 1,000 concurrent calls;
//! - tools/list bytes per plugin in full and compact `tool_mode`;
//! - a signed command (Tesla's Vehicle Command Protocol) in process: the first of a session,
//!   with its handshake, and the ones after it.

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
    let transport = TokioChildProcess::new(command).unwrap();
    let carport_pid = transport.id().expect("carport runs");
    let client = ().serve(transport).await.unwrap();
    let rss_at_start = resident_kib(carport_pid);
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
        (
            "smartcar_vehicle_state",
            json!({}),
            "MCP stdio: smartcar_vehicle_state",
        ),
        (
            "smartcar_lock_vehicle",
            json!({}),
            "MCP stdio: smartcar_lock_vehicle",
        ),
        (
            "dimo_vehicle_state",
            json!({"tokenId": 21957}),
            "MCP stdio: dimo_vehicle_state",
        ),
        (
            "dimo_lock_doors",
            json!({"tokenId": 21957}),
            "MCP stdio: dimo_lock_doors",
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
    // Every plugin has run by now, so each holds its pool slots' pages: growth from here on
    // would be a leak.
    let rss_warm = resident_kib(carport_pid);

    // carport's share of a read: the same GET straight to the simulator, then through MCP.
    let vin = simulator.state.vehicles()[0].vin.clone();
    let direct_url = format!(
        "{}/api/1/vehicles/{vin}/vehicle_data",
        simulator.url(carport::simulator::Vendor::Fleet)
    );
    let http = reqwest::Client::new();
    let token = carport::simulator::Vendor::Fleet.token();
    let mut direct = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let answer = http
            .get(&direct_url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        answer.bytes().await.unwrap();
        direct.push(started.elapsed());
    }
    let direct_median = median(&direct);
    Figures(direct).report("direct GET vehicle_data (no carport)");
    let mut through = Vec::with_capacity(CALLS);
    let cpu_before = cpu_seconds(carport_pid);
    for _ in 0..CALLS {
        let started = Instant::now();
        let result = client
            .call_tool(CallToolRequestParams::new("tesla_get_vehicle_data"))
            .await
            .unwrap();
        through.push(started.elapsed());
        assert_ne!(result.is_error, Some(true));
    }
    let cpu_per_call = (cpu_seconds(carport_pid) - cpu_before) / CALLS as f64;
    let through_median = median(&through);
    Figures(through).report("MCP stdio: tesla_get_vehicle_data");
    // Wall-clock figures move with whatever else the machine runs; carport's own CPU time
    // per call much less so.
    println!(
        "{:<44} {:>8.0} µs of CPU per call (all threads)",
        "  carport's work on that read",
        cpu_per_call * 1e6
    );
    println!(
        "{:<44} median {:>8.3} ms",
        "  carport's overhead on that read",
        (through_median.as_secs_f64() - direct_median.as_secs_f64()) * 1000.0
    );

    for _ in 0..10_000 - 9 * CALLS {
        client
            .call_tool(CallToolRequestParams::new("tessie_tesla_state"))
            .await
            .unwrap();
    }
    let rss_after = resident_kib(carport_pid);
    println!(
        "{:<44} after start-up {:>6.1} MiB   after 4,500 calls (every plugin run) {:>6.1} MiB   \
         after 10,000 calls {:>6.1} MiB",
        "resident memory of carport (stdio)",
        rss_at_start as f64 / 1024.0,
        rss_warm as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    client.cancel().await.unwrap();

    http_figures(&config_path, &cache).await;

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

    signed_figures(&simulator, &text, work.path()).await;
}

/// A car that requires signed commands, a paired key granted to the tesla plugin: `door_lock`
/// with a handshake first (the stored session removed before each call), then within a session.
async fn signed_figures(simulator: &Simulator, demo_text: &str, work: &Path) {
    let data_dir = work.join("signed-data");
    let key_file = work.join("vehicle-key.pem");
    let text = format!(
        "{}\n[plugins.tesla.key_agreement]\nkey = \"vehicle_key\"\n\
         [plugins.tesla.secrets.vehicle_key]\nfile = {:?}\norigins = []\n",
        demo_text.replace(
            &format!("data_dir = {:?}", work.join("data").display().to_string()),
            &format!("data_dir = {:?}", data_dir.display().to_string())
        ),
        key_file.display().to_string()
    );
    let config = carport::config::Config::parse(&text, work).unwrap();
    let created = carport::keys::create(&config, "tesla", false).unwrap();
    let vin = simulator.state.vehicles()[0].vin.clone();
    simulator.require_signed_commands(&vin);
    simulator.pair_key(&vin, &created.public_key_pem).unwrap();
    let registry = Registry::load(&config).await.unwrap();
    let sessions = data_dir.join("state").join("tesla");
    let lock = || {
        registry.call(
            "tesla_door_lock",
            json!({"vehicle_tag": vin}),
            Default::default(),
        )
    };
    lock().await.unwrap();
    let mut first = Vec::with_capacity(CALLS / 10);
    for _ in 0..CALLS / 10 {
        let _ = std::fs::remove_file(sessions.join(format!("vcp.session.{vin}.2")));
        let started = Instant::now();
        lock().await.unwrap();
        first.push(started.elapsed());
    }
    Figures(first).report("in process: signed door_lock, with handshake");
    let mut next = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        lock().await.unwrap();
        next.push(started.elapsed());
    }
    Figures(next).report("in process: signed door_lock, in a session");
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// VmRSS of a process, in KiB.
/// User and system CPU time of process `pid` so far, all its threads together.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may itself hold spaces and parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / per_second
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A stateless (MCP 2026-07-28) tools/call, as a plain HTTP client sends it.
fn stateless_call(http: &reqwest::Client, url: &str, id: usize) -> reqwest::RequestBuilder {
    let body = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "tessie_tesla_state", "arguments": {}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }},
    });
    http.post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "tessie_tesla_state")
        .json(&body)
}

async fn http_figures(config: &Path, cache: &Path) {
    use tokio::io::AsyncBufReadExt;
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"))
        .args(["serve", "--http", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("CARPORT_CACHE_DIR", cache)
        .env("CARPORT_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = tokio::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let url = loop {
        let line = log
            .next_line()
            .await
            .unwrap()
            .expect("carport announces its address");
        if let Some((_, address)) = line.split_once("MCP over streamable HTTP at ") {
            break address.trim().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });

    // One keep-alive connection, one call after the other: each answer's last write must not
    // wait for the client's delayed acknowledgement.
    let keep_alive = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let mut samples = Vec::with_capacity(CALLS);
    for id in 0..CALLS {
        let started = Instant::now();
        let answer = stateless_call(&keep_alive, &url, id).send().await.unwrap();
        assert!(answer.status().is_success());
        answer.bytes().await.unwrap();
        samples.push(started.elapsed());
    }
    Figures(samples).report("HTTP keep-alive: tessie_tesla_state");

    let concurrent = 1000;
    let http = reqwest::Client::new();
    let calls: Vec<_> = (0..concurrent)
        .map(|id| {
            let request = stateless_call(&http, &url, id);
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = request.send().await.ok()?;
                let ok = answer.status().is_success();
                let body = answer.bytes().await.ok()?;
                let ok = ok && !String::from_utf8_lossy(&body).contains("\"isError\":true");
                ok.then(|| started.elapsed())
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(concurrent);
    for call in calls {
        if let Ok(Some(took)) = call.await {
            samples.push(took);
        }
    }
    let errors = concurrent - samples.len();
    samples.sort();
    let at = |quantile: f64| samples[((samples.len() - 1) as f64 * quantile).round() as usize];
    println!(
        "{:<44} n={concurrent}  errors {errors}   p50 {:>8.3} ms   p99 {:>8.3} ms",
        "HTTP: 1,000 concurrent tessie_tesla_state",
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0
    );
    let _ = server.kill().await;
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
