//! The drop-in folder end to end: the Python NHTSA provider (componentize-py, with its empty
//! WASI) granted with `carport grant` and called over MCP against the simulator; nothing served
//! without a grant; components added, replaced and removed while a real client is connected,
//! with `notifications/tools/list_changed`; a call in flight during a replace finishing on the
//! old version; broken drop-ins reported while the others work; `carport plugins` and
//! `carport inspect`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carport::simulator::{SimOptions, Simulator, Vendor};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use sha2::Digest;
use tempfile::TempDir;
use tokio::io::AsyncReadExt;

use crate::harness::{
    BLUE_GHOST, RED_ARROW, cache_dir, call_on, components_dir, is_error, structured, text_of,
};

/// Generous: the first load of the Python component compiles ~19 MB of Wasm in a debug host.
const EVENT_WAIT: Duration = Duration::from_secs(300);

/// Counts `notifications/tools/list_changed`.
#[derive(Clone, Default)]
struct ListChanges {
    count: Arc<Mutex<u32>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl ClientHandler for ListChanges {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        *self.count.lock().unwrap() += 1;
        self.arrived.notify_waiters();
    }
}

impl ListChanges {
    fn count(&self) -> u32 {
        *self.count.lock().unwrap()
    }

    /// Waits until `count` notifications have arrived in all.
    async fn wait_for(&self, count: u32) {
        tokio::time::timeout(EVENT_WAIT, async {
            loop {
                let arrived = self.arrived.notified();
                if self.count() >= count {
                    return;
                }
                arrived.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("list_changed #{count} never arrived (got {})", self.count()));
    }
}

/// A carport with a drop-in folder, its plugins.toml and the simulator.
struct Setup {
    dir: TempDir,
    simulator: Simulator,
}

impl Setup {
    async fn new(plugins_toml: &str) -> Setup {
        let simulator = Simulator::start(SimOptions {
            wake_delay: Duration::from_millis(150),
            base_port: 0,
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("drop-ins")).unwrap();
        let setup = Setup { dir, simulator };
        std::fs::write(setup.config(), plugins_toml).unwrap();
        setup
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("plugins.toml")
    }

    fn drop_ins(&self) -> PathBuf {
        self.dir.path().join("drop-ins")
    }

    /// Puts a component into the folder as a careful publisher does: written beside it, then
    /// renamed into place in one step.
    fn drop_in(&self, name: &str, bytes: &[u8]) {
        let partial = self.drop_ins().join(format!("{name}.part"));
        std::fs::write(&partial, bytes).unwrap();
        std::fs::rename(&partial, self.drop_ins().join(format!("{name}.wasm"))).unwrap();
    }

    fn tessie_token_file(&self) -> PathBuf {
        let file = self.dir.path().join("tessie-token");
        std::fs::write(&file, Vendor::Tessie.token()).unwrap();
        file
    }

    async fn serve(&self) -> Server {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"));
        command
            .arg("serve")
            .arg("--config")
            .arg(self.config())
            .env("CARPORT_CACHE_DIR", cache_dir())
            .env("CARPORT_LOG", "info");
        let (transport, stderr) = TokioChildProcess::builder(command)
            .stderr(Stdio::piped())
            .spawn()
            .expect("carport starts");
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = stderr {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = stderr.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..read]));
                }
            });
        }
        let changes = ListChanges::default();
        let client = changes.clone().serve(transport).await.expect("handshake");
        Server {
            client,
            changes,
            log,
        }
    }

    /// Runs a carport command beside the server, as the operator would.
    fn carport(&self, args: &[&str]) -> (bool, String) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_carport"))
            .args(args)
            .env("CARPORT_CACHE_DIR", cache_dir())
            .env("CARPORT_LOG", "warn")
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    }

    async fn carport_async(&self, args: &[&str]) -> (bool, String) {
        let (dir, args): (PathBuf, Vec<String>) = (
            self.dir.path().to_path_buf(),
            args.iter().map(|arg| arg.to_string()).collect(),
        );
        tokio::task::spawn_blocking(move || {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_carport"))
                .args(&args)
                .env("CARPORT_CACHE_DIR", cache_dir())
                .env("CARPORT_LOG", "warn")
                .current_dir(dir)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            (output.status.success(), text)
        })
        .await
        .unwrap()
    }

    fn nhtsa_requests(&self) -> Vec<carport::simulator::RecordedRequest> {
        self.simulator
            .requests()
            .into_iter()
            .filter(|request| matches!(request.vendor, Vendor::NhtsaVpic | Vendor::NhtsaApi))
            .collect()
    }
}

struct Server {
    client: RunningService<RoleClient, ListChanges>,
    changes: ListChanges,
    log: Arc<Mutex<String>>,
}

impl Server {
    async fn tool_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect();
        names.sort();
        names
    }

    async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        call_on(&self.client, tool, arguments).await
    }
}

fn component(name: &str) -> Vec<u8> {
    std::fs::read(components_dir().join(name))
        .unwrap_or_else(|error| panic!("{name}: {error}; `cargo xtask components` builds it"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The first test to need the Python component compiles it into the shared cache (a minute
/// in a debug build); the others wait for it instead of compiling it side by side.
async fn python_component_compiled() -> Vec<u8> {
    static COMPILED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    COMPILED
        .get_or_init(|| async {
            let path = components_dir().join("nhtsa.wasm");
            let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"))
                .arg("inspect")
                .arg(&path)
                .env("CARPORT_CACHE_DIR", cache_dir())
                .env("CARPORT_LOG", "warn")
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        })
        .await;
    component("nhtsa.wasm")
}

/// The manifest a publisher of the NHTSA drop-in would ship, pointing at the simulator.
fn nhtsa_manifest(simulator: &Simulator) -> String {
    let (vpic, api) = (
        simulator.url(Vendor::NhtsaVpic),
        simulator.url(Vendor::NhtsaApi),
    );
    format!(
        "description = \"NHTSA safety data\"\nallow = [{vpic:?}, {api:?}]\n\
         [settings]\nvpic_url = {vpic:?}\napi_url = {api:?}\n"
    )
}

#[tokio::test]
async fn the_python_drop_in_is_served_only_once_granted_then_answers_from_nhtsa() {
    let python = python_component_compiled().await;
    let setup = Setup::new(
        "# the operator's file\n[carport]\ndata_dir = \"data\"\nplugins_dir = \"drop-ins\"\n",
    )
    .await;
    setup.drop_in("nhtsa", &python);
    std::fs::write(
        setup.drop_ins().join("nhtsa.toml"),
        nhtsa_manifest(&setup.simulator),
    )
    .unwrap();
    let digest = sha256_hex(&python);

    // Before anyone approves it: what it is and what it asks for, nothing run with a grant.
    let (inspected, report) = setup.carport(&["inspect", "drop-ins/nhtsa.wasm"]);
    assert!(inspected, "{report}");
    for expected in [
        "world: carport:provider/plugin@0.2.0",
        "wasi:cli/environment",
        "WASI is linked empty",
        "carport:provider/http@0.2.0",
        "decode_vin\tread-only\tDecode a VIN",
        "recalls\tread-only",
        "complaints\tread-only",
        &format!("sha256: {digest}"),
        &format!("network: {}", setup.simulator.url(Vendor::NhtsaVpic)),
    ] {
        assert!(
            report.contains(expected),
            "{expected:?} missing from\n{report}"
        );
    }
    assert!(setup.nhtsa_requests().is_empty(), "inspect sent nothing");

    let (listed, report) = setup.carport(&["plugins", "--config", "plugins.toml"]);
    assert!(listed, "awaiting a grant is not a failure: {report}");
    assert!(report.contains("nhtsa\t-\tdrop-in\t0 tools"), "{report}");
    assert!(report.contains("awaiting a grant"), "{report}");

    let server = setup.serve().await;
    assert!(
        !server
            .tool_names()
            .await
            .iter()
            .any(|name| name.starts_with("nhtsa")),
        "nothing of an ungranted drop-in is served"
    );
    let refused = server
        .client
        .call_tool(
            CallToolRequestParams::new("nhtsa_decode_vin")
                .with_arguments(json!({"vin": RED_ARROW}).as_object().unwrap().clone()),
        )
        .await;
    assert!(refused.is_err(), "an ungranted tool is unknown");

    let (granted, report) = setup
        .carport_async(&["grant", "nhtsa", "--config", "plugins.toml"])
        .await;
    assert!(granted, "{report}");
    assert!(
        report.contains("network: http://127.0.0.1"),
        "the request is shown: {report}"
    );
    let written = std::fs::read_to_string(setup.config()).unwrap();
    assert!(written.starts_with("# the operator's file\n"), "{written}");
    assert!(
        written.contains("[plugins.nhtsa]\nsource = \"drop-in\""),
        "{written}"
    );
    assert!(
        written.contains(&format!("sha256 = \"{digest}\"")),
        "pinned: {written}"
    );

    // The running server picks the grant up and tells the client.
    server.changes.wait_for(1).await;
    assert_eq!(
        server
            .tool_names()
            .await
            .into_iter()
            .filter(|name| name.starts_with("nhtsa_"))
            .collect::<Vec<_>>(),
        ["nhtsa_complaints", "nhtsa_decode_vin", "nhtsa_recalls"]
    );

    let decoded = server
        .call("nhtsa_decode_vin", json!({"vin": RED_ARROW}))
        .await;
    assert!(!is_error(&decoded), "{}", text_of(&decoded));
    let car = structured(&decoded);
    assert_eq!(car["make"], "TESLA");
    assert_eq!(car["model"], "Model 3");
    assert_eq!(car["model_year"], "2019");
    assert_eq!(car["error_code"], "0");
    assert_eq!(car["electrification"], "BEV (Battery Electric Vehicle)");
    assert!(
        car.get("series").is_none(),
        "empty vPIC values are left out"
    );
    let request = setup.nhtsa_requests().pop().unwrap();
    assert_eq!(request.vendor, Vendor::NhtsaVpic);
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.path,
        format!("/api/vehicles/DecodeVinValues/{RED_ARROW}")
    );
    assert_eq!(request.query, "format=json");

    setup.simulator.clear_requests();
    let recalls = server
        .call("nhtsa_recalls", json!({"vin": RED_ARROW}))
        .await;
    assert!(!is_error(&recalls), "{}", text_of(&recalls));
    let recalls = structured(&recalls);
    assert_eq!(recalls["count"], 2);
    let campaigns: Vec<&str> = recalls["recalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|recall| recall["campaign"].as_str().unwrap())
        .collect();
    assert_eq!(campaigns, ["23V838000", "21V846000"]);
    assert_eq!(recalls["recalls"][0]["over_the_air"], true);
    let requests = setup.nhtsa_requests();
    assert_eq!(requests.len(), 2, "a VIN is decoded, then its recalls read");
    assert_eq!(requests[1].path, "/recalls/recallsByVehicle");
    assert_eq!(
        requests[1].query_pairs(),
        [
            ("make".to_string(), "TESLA".to_string()),
            ("model".to_string(), "Model 3".to_string()),
            ("modelYear".to_string(), "2019".to_string())
        ]
    );

    let complaints = server
        .call(
            "nhtsa_complaints",
            json!({"make": "Tesla", "model": "Model 3", "model_year": 2019, "limit": 2}),
        )
        .await;
    assert!(!is_error(&complaints), "{}", text_of(&complaints));
    let complaints = structured(&complaints);
    assert_eq!(complaints["count"], 3);
    let filed: Vec<&str> = complaints["complaints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|complaint| complaint["filed"].as_str().unwrap())
        .collect();
    assert_eq!(filed, ["08/20/2024", "05/09/2023"], "newest first, limited");

    let unknown = server
        .call("nhtsa_recalls", json!({"vin": "WP0ZZZ99ZTS392124"}))
        .await;
    assert!(is_error(&unknown));
    assert!(
        text_of(&unknown).contains("cannot tell"),
        "{}",
        text_of(&unknown)
    );
    let neither = server.call("nhtsa_recalls", json!({"make": "Tesla"})).await;
    assert!(is_error(&neither));
    assert!(text_of(&neither).contains("missing model, model_year"));

    let (listed, report) = setup.carport(&["plugins", "--config", "plugins.toml"]);
    assert!(listed, "{report}");
    assert!(
        report.contains(&format!("nhtsa\t0.1.0\tdrop-in\t3 tools\tsha256:{digest}")),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "grants: network {}",
            setup.simulator.url(Vendor::NhtsaVpic)
        )),
        "{report}"
    );
}

#[tokio::test]
async fn components_added_replaced_and_removed_are_served_live_and_calls_in_flight_finish_on_the_old_one()
 {
    let setup = Setup::new("").await;
    let tessie = setup.simulator.url(Vendor::Tessie);
    // An unpinned grant: whatever build of `garage` the folder holds runs with these grants.
    std::fs::write(
        setup.config(),
        format!(
            "[carport]\ndata_dir = \"data\"\nplugins_dir = \"drop-ins\"\n\
             [plugins.garage]\nsource = \"drop-in\"\nallow = [{tessie:?}]\n\
             [plugins.garage.settings]\nbase_url = {tessie:?}\nvin = \"{RED_ARROW}\"\n\
             [plugins.garage.secrets.token]\nfile = {token:?}\n",
            token = setup.tessie_token_file().display().to_string()
        ),
    )
    .unwrap();
    let server = setup.serve().await;
    assert!(
        !server
            .tool_names()
            .await
            .iter()
            .any(|name| name.starts_with("garage_")),
        "an empty folder serves nothing"
    );

    // Added.
    setup.drop_in("garage", &component("tessie.wasm"));
    server.changes.wait_for(1).await;
    let tools = server.tool_names().await;
    assert!(
        tools.contains(&"garage_list_vehicles".to_string()),
        "{tools:?}"
    );
    let listed = server.call("garage_list_vehicles", json!({})).await;
    assert!(!is_error(&listed), "{}", text_of(&listed));

    // Replaced while a call waits on the vendor: the call finishes on the old build.
    let held = setup.simulator.hold_answers().await;
    setup.simulator.clear_requests();
    let in_flight = tokio::spawn({
        let client = server.client.peer().clone();
        async move {
            client
                .call_tool(
                    CallToolRequestParams::new("garage_tesla_state")
                        .with_arguments(json!({"vin": BLUE_GHOST}).as_object().unwrap().clone()),
                )
                .await
        }
    });
    tokio::time::timeout(EVENT_WAIT, async {
        while setup.simulator.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the call reaches the vendor");
    setup.drop_in("garage", &component("conformance.wasm"));
    server.changes.wait_for(2).await;
    let tools = server.tool_names().await;
    assert!(
        tools.contains(&"garage_test_simple_text".to_string()),
        "{tools:?}"
    );
    assert!(
        !tools.contains(&"garage_tesla_state".to_string()),
        "{tools:?}"
    );
    assert!(
        !in_flight.is_finished(),
        "the old call still waits on the vendor"
    );
    drop(held);
    let finished = in_flight.await.unwrap().expect("the old call is answered");
    assert!(!is_error(&finished), "{}", text_of(&finished));
    assert_eq!(
        finished.structured_content.as_ref().unwrap()["vin"],
        BLUE_GHOST,
        "answered by the Tessie build that took the call"
    );
    let new_build = server.call("garage_test_simple_text", json!({})).await;
    assert!(!is_error(&new_build), "{}", text_of(&new_build));

    // Removed.
    std::fs::remove_file(setup.drop_ins().join("garage.wasm")).unwrap();
    server.changes.wait_for(3).await;
    assert!(
        !server
            .tool_names()
            .await
            .iter()
            .any(|name| name.starts_with("garage_")),
        "a removed drop-in is no longer served"
    );
    let (listed, report) = setup.carport(&["plugins", "--config", "plugins.toml"]);
    assert!(!listed, "a granted drop-in that is missing is a problem");
    assert!(
        report.contains("garage\t-\tdrop-in\t0 tools\t-"),
        "{report}"
    );
    assert!(report.contains("cannot read its component"), "{report}");
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("reloaded:"), "{log}");
}

#[tokio::test]
async fn broken_drop_ins_are_reported_while_the_others_work() {
    let setup = Setup::new("").await;
    let tessie = setup.simulator.url(Vendor::Tessie);
    let tessie_build = component("tessie.wasm");
    let token = setup.tessie_token_file().display().to_string();
    let granted = |id: &str, pin: &str| {
        format!(
            "[plugins.{id}]\nsource = \"drop-in\"\n{pin}allow = [{tessie:?}]\n\
             [plugins.{id}.settings]\nbase_url = {tessie:?}\nvin = \"{RED_ARROW}\"\n\
             [plugins.{id}.secrets.token]\nfile = {token:?}\n"
        )
    };
    std::fs::write(
        setup.config(),
        format!(
            "[carport]\ndata_dir = \"data\"\nplugins_dir = \"drop-ins\"\n{}{}{}{}",
            granted(
                "good",
                &format!("sha256 = \"{}\"\n", sha256_hex(&tessie_build))
            ),
            granted("garbage", ""),
            granted("core", ""),
            granted(
                "swapped",
                &format!(
                    "sha256 = \"{}\"\n",
                    sha256_hex(b"the build that was granted")
                )
            ),
        ),
    )
    .unwrap();
    setup.drop_in("good", &tessie_build);
    setup.drop_in("garbage", b"\0asm but not really");
    // A core module, not a component of carport's world.
    setup.drop_in("core", b"\0asm\x01\0\0\0");
    setup.drop_in("swapped", &tessie_build);

    let server = setup.serve().await;
    let tools = server.tool_names().await;
    assert!(
        tools.contains(&"good_list_vehicles".to_string()),
        "{tools:?}"
    );
    assert!(
        !tools.iter().any(|name| name.starts_with("garbage_")
            || name.starts_with("core_")
            || name.starts_with("swapped_")),
        "{tools:?}"
    );
    let listed = server.call("good_list_vehicles", json!({})).await;
    assert!(!is_error(&listed), "{}", text_of(&listed));
    let instructions = server
        .client
        .peer_info()
        .and_then(|info| info.instructions.clone())
        .unwrap_or_default();
    assert!(
        instructions.contains("plugin `garbage` was not loaded"),
        "{instructions}"
    );
    assert!(
        instructions.contains("plugin `swapped` was not loaded"),
        "{instructions}"
    );

    let (listed, report) = setup.carport(&["plugins", "--config", "plugins.toml"]);
    assert!(
        !listed,
        "broken drop-ins make `carport plugins` fail: {report}"
    );
    assert!(report.contains("good\t0.1.0\tdrop-in\t3 tools"), "{report}");
    assert!(
        report.contains("garbage\t-\tdrop-in\t0 tools")
            && report.contains("is not a usable component"),
        "{report}"
    );
    assert!(report.contains("core\t-\tdrop-in\t0 tools"), "{report}");
    assert!(
        report.contains("but plugins.toml pins")
            && report.contains("`carport grant swapped` shows the request and pins this one"),
        "a digest that is not the granted one is refused: {report}"
    );

    // Breaking the good one live leaves it unserved and the rest of the server up.
    setup.drop_in("good", b"truncated");
    server.changes.wait_for(1).await;
    assert!(
        !server
            .tool_names()
            .await
            .iter()
            .any(|name| name.starts_with("good_"))
    );
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("plugin `good` was not loaded"), "{log}");
}

#[test]
fn drop_ins_can_be_turned_off_for_locked_down_deployments() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::write(
        dir.path().join("plugins/acme.wasm"),
        component("tessie.wasm"),
    )
    .unwrap();
    let config = dir.path().join("plugins.toml");
    std::fs::write(
        &config,
        "[carport]\ndata_dir = \".\"\nplugins_dir = false\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_carport"))
            .args(args)
            .env("CARPORT_CACHE_DIR", cache_dir())
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (listed, report) = run(&["plugins", "--config", "plugins.toml"]);
    assert!(listed, "{report}");
    assert!(
        !report.contains("acme"),
        "the folder is not even read: {report}"
    );
    let (granted, report) = run(&["grant", "acme", "--config", "plugins.toml"]);
    assert!(!granted);
    assert!(report.contains("drop-ins are refused"), "{report}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "[carport]\ndata_dir = \".\"\nplugins_dir = false\n"
    );
}
