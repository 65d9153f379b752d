//! Lists that change while carport runs, end to end: MCP 2026-07-28 `subscriptions/listen`
//! streams told of a drop-in (each only of what it asked for, every frame tagged with its
//! subscription id); a plugin's own `catalogue.changed` reaching a 2025-11-25 session, its new
//! tool callable, `deny_tools` applying to it, and its catalogue fresh after a restart; the
//! import refused without its grant; a storm of `changed` calls coalesced.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{Harness, cache_dir, call_on, components_dir, is_error, serve_http, text_of};

/// A guard against a hang, not a measure: waits end as soon as the event arrives.
const EVENT_WAIT: Duration = Duration::from_secs(120);
const REVISION: &str = "2026-07-28";

fn component(name: &str) -> PathBuf {
    let path = components_dir().join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// Counts the list_changed notifications of a 2025-11-25 session.
#[derive(Clone, Default)]
struct ListChanges {
    tools: Arc<Mutex<u32>>,
    prompts: Arc<Mutex<u32>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl ClientHandler for ListChanges {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        *self.tools.lock().unwrap() += 1;
        self.arrived.notify_waiters();
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        *self.prompts.lock().unwrap() += 1;
        self.arrived.notify_waiters();
    }
}

impl ListChanges {
    /// Waits until `count` notifications of the list `which` have arrived in all.
    async fn wait_for(&self, which: &Arc<Mutex<u32>>, count: u32) {
        tokio::time::timeout(EVENT_WAIT, async {
            loop {
                let arrived = self.arrived.notified();
                if *which.lock().unwrap() >= count {
                    return;
                }
                arrived.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("list_changed number {count} never arrived"));
    }
}

/// carport over stdio with the configuration `config`, for a client counting list changes.
async fn serve_stdio(config: &Path) -> (RunningService<RoleClient, ListChanges>, ListChanges) {
    let (client, changes, _) = serve_stdio_logged(config).await;
    (client, changes)
}

/// The same, with carport's log.
async fn serve_stdio_logged(
    config: &Path,
) -> (
    RunningService<RoleClient, ListChanges>,
    ListChanges,
    Arc<Mutex<String>>,
) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .env("CARPORT_CACHE_DIR", cache_dir())
        .env("CARPORT_LOG", "info");
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()
        .expect("carport starts");
    let log = Arc::new(Mutex::new(String::new()));
    let mut lines = BufReader::new(stderr.expect("stderr is piped")).lines();
    tokio::spawn({
        let log = log.clone();
        async move {
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        }
    });
    let changes = ListChanges::default();
    let client = changes
        .clone()
        .serve(transport)
        .await
        .expect("MCP handshake");
    (client, changes, log)
}

async fn tool_names(client: &RunningService<RoleClient, ListChanges>) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect()
}

/// A configuration in a fresh folder with `tables` after the `[carport]` table.
fn config_with(tables: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plugins.toml");
    std::fs::write(
        &config,
        format!("[carport]\ndata_dir = \"data\"\nplugins_dir = \"drop-ins\"\n{tables}"),
    )
    .unwrap();
    (dir, config)
}

/// The `_meta` every MCP 2026-07-28 request carries.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": REVISION,
        "io.modelcontextprotocol/clientInfo": {"name": "carport-e2e", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// The JSON message of a line of an answer, sent as plain JSON or as an SSE `data:` line.
fn json_of_line(line: &str) -> Option<Value> {
    let line = line.trim();
    serde_json::from_str(line.strip_prefix("data:").unwrap_or(line).trim()).ok()
}

/// One open `subscriptions/listen` stream, read frame by frame.
struct ListenStream {
    id: u64,
    response: reqwest::Response,
    pending: String,
    /// Every frame so far, in order.
    frames: Vec<Value>,
}

impl ListenStream {
    async fn open(url: &str, id: u64, notifications: Value) -> ListenStream {
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
            "params": {"_meta": meta(), "notifications": notifications},
        });
        let response = reqwest::Client::new()
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", REVISION)
            .header("mcp-method", "subscriptions/listen")
            .json(&body)
            .send()
            .await
            .expect("listen request sent");
        assert!(response.status().is_success(), "{}", response.status());
        ListenStream {
            id,
            response,
            pending: String::new(),
            frames: Vec::new(),
        }
    }

    /// Reads until a frame with `method` arrives; every frame read is kept in `frames`.
    async fn until(&mut self, method: &str) -> Value {
        tokio::time::timeout(EVENT_WAIT, async {
            loop {
                while let Some(end) = self.pending.find('\n') {
                    let line: String = self.pending.drain(..=end).collect();
                    if let Some(frame) = json_of_line(&line) {
                        self.frames.push(frame.clone());
                        if frame["method"] == method {
                            return frame;
                        }
                    }
                }
                let chunk = self
                    .response
                    .chunk()
                    .await
                    .expect("the stream stays readable")
                    .unwrap_or_else(|| panic!("the stream ended before {method}"));
                self.pending.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method} never arrived; frames: {:?}", self.frames))
    }

    fn methods(&self) -> Vec<&str> {
        self.frames
            .iter()
            .filter_map(|frame| frame["method"].as_str())
            .collect()
    }

    /// The subscription id a frame is tagged with, as the listen request's id.
    fn assert_tagged(&self, frame: &Value) {
        let tag = &frame["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"];
        assert!(
            *tag == json!(self.id) || *tag == json!(self.id.to_string()),
            "frame not tagged with subscription {}: {frame}",
            self.id
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listen_stream_hears_of_a_new_drop_in_and_a_prompts_only_stream_hears_no_tools() {
    // Granted but absent: dropping the component in adds its tools and prompts.
    let (dir, config) =
        config_with("[plugins.garage]\nsource = \"drop-in\"\nprefix_names = true\n");
    std::fs::create_dir_all(dir.path().join("drop-ins")).unwrap();
    let (_carport, url) = serve_http(&config).await;

    let mut tools_only = ListenStream::open(&url, 41, json!({"toolsListChanged": true})).await;
    let mut prompts_only = ListenStream::open(&url, 42, json!({"promptsListChanged": true})).await;
    for stream in [&mut tools_only, &mut prompts_only] {
        let ack = stream
            .until("notifications/subscriptions/acknowledged")
            .await;
        stream.assert_tagged(&ack);
    }

    let partial = dir.path().join("drop-ins/garage.part");
    std::fs::copy(component("conformance.wasm"), &partial).unwrap();
    std::fs::rename(&partial, dir.path().join("drop-ins/garage.wasm")).unwrap();

    let tools_changed = tools_only.until("notifications/tools/list_changed").await;
    tools_only.assert_tagged(&tools_changed);
    // Within one stream the host sends tools/list_changed before prompts/list_changed, so a
    // tools frame on the prompts-only stream would come before its prompts frame.
    let prompts_changed = prompts_only
        .until("notifications/prompts/list_changed")
        .await;
    prompts_only.assert_tagged(&prompts_changed);
    assert!(
        !prompts_only
            .methods()
            .contains(&"notifications/tools/list_changed"),
        "a stream that asked only for prompts heard of tools: {:?}",
        prompts_only.frames
    );
    for frame in &prompts_only.frames {
        prompts_only.assert_tagged(frame);
    }

    // The new tools are served to a stateless request.
    let listed: Value = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", REVISION)
        .header("mcp-method", "tools/list")
        .json(&json!({"jsonrpc": "2.0", "id": 43, "method": "tools/list",
                      "params": {"_meta": meta()}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .lines()
        .find_map(json_of_line)
        .expect("an answer");
    assert!(
        listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tool| tool["name"] == "garage_test_simple_text"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_changing_its_catalogue_reaches_a_session_and_its_new_tool_is_callable() {
    let conformance = component("conformance.wasm");
    let (_dir, config) = config_with(&format!(
        "[plugins.conformance]\ncomponent = {:?}\ndynamic_catalogue = true\n",
        conformance.display().to_string()
    ));
    let (client, changes) = serve_stdio(&config).await;
    let before = tool_names(&client).await;
    assert!(
        !before.contains(&"conformance_test_dynamic_tool".to_string()),
        "{before:?}"
    );

    let added = call_on(&client, "conformance_test_trigger_tool_change", json!({})).await;
    assert!(!is_error(&added), "{}", text_of(&added));
    changes.wait_for(&changes.tools, 1).await;
    let after = tool_names(&client).await;
    assert!(
        after.contains(&"conformance_test_dynamic_tool".to_string()),
        "{after:?}"
    );
    let called = call_on(&client, "conformance_test_dynamic_tool", json!({})).await;
    assert!(!is_error(&called), "{}", text_of(&called));
    assert!(text_of(&called).contains("added while carport ran"));

    let prompt_added = call_on(&client, "conformance_test_trigger_prompt_change", json!({})).await;
    assert!(!is_error(&prompt_added), "{}", text_of(&prompt_added));
    changes.wait_for(&changes.prompts, 1).await;
    let prompts = client.list_all_prompts().await.unwrap();
    assert!(
        prompts
            .iter()
            .any(|prompt| prompt.name == "conformance_test_dynamic_prompt"),
        "{prompts:?}"
    );
    assert_eq!(
        *changes.tools.lock().unwrap(),
        1,
        "a prompt change is not a tool change"
    );
    drop(client);

    // The next start describes the plugin from its state again: no stale cached catalogue.
    let (client, _) = serve_stdio(&config).await;
    let restarted = tool_names(&client).await;
    assert!(
        restarted.contains(&"conformance_test_dynamic_tool".to_string()),
        "{restarted:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_tools_applies_to_the_tools_a_plugin_adds_later() {
    let conformance = component("conformance.wasm");
    let (_dir, config) = config_with(&format!(
        "[plugins.conformance]\ncomponent = {:?}\ndynamic_catalogue = true\n\
         deny_tools = [\"test_dynamic_tool\"]\n",
        conformance.display().to_string()
    ));
    let (client, changes) = serve_stdio(&config).await;
    let tool = call_on(&client, "conformance_test_trigger_tool_change", json!({})).await;
    assert!(!is_error(&tool), "{}", text_of(&tool));
    // The tool list does not change (its one new tool is denied); the prompt change after it
    // is described in the same round or a later one, so its notice comes after both.
    let prompt = call_on(&client, "conformance_test_trigger_prompt_change", json!({})).await;
    assert!(!is_error(&prompt), "{}", text_of(&prompt));
    changes.wait_for(&changes.prompts, 1).await;
    assert!(
        !tool_names(&client)
            .await
            .contains(&"conformance_test_dynamic_tool".to_string())
    );
    let denied = client
        .call_tool(CallToolRequestParams::new("conformance_test_dynamic_tool"))
        .await
        .expect_err("a denied tool is not served");
    assert!(
        denied.to_string().contains("[plugins.conformance]"),
        "{denied}"
    );
    assert_eq!(*changes.tools.lock().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_without_the_grant_is_refused_and_its_catalogue_stays() {
    let harness = Harness::start().await;
    let stormed = harness
        .call("hostile_catalogue_storm", json!({"times": 3}))
        .await;
    assert!(is_error(&stormed));
    let text = text_of(&stormed);
    for needle in [
        "plugin `hostile`",
        "a plugin's tools are those it described at load",
        "dynamic_catalogue = true",
        "[plugins.hostile]",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    let tools = harness.client.list_all_tools().await.unwrap();
    assert!(
        !tools.iter().any(|tool| tool.name == "hostile_stormed"),
        "nothing was described again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storm_of_changed_calls_describes_the_plugin_a_bounded_number_of_times() {
    let hostile = component("hostile.wasm");
    let (_dir, config) = config_with(&format!(
        "[plugins.hostile]\ncomponent = {:?}\ndynamic_catalogue = true\ntimeout_seconds = 60\n",
        hostile.display().to_string()
    ));
    let (client, changes) = serve_stdio(&config).await;
    let first = call_on(&client, "hostile_catalogue_storm", json!({"times": 1000})).await;
    assert!(!is_error(&first), "{}", text_of(&first));
    changes.wait_for(&changes.tools, 1).await;
    let added = call_on(&client, "hostile_stormed", json!({})).await;
    assert!(!is_error(&added), "{}", text_of(&added));

    // Rounds run one after another: once the second storm's change is served, every round
    // of the first has run too.
    let second = call_on(&client, "hostile_catalogue_storm", json!({"times": 1000})).await;
    assert!(!is_error(&second), "{}", text_of(&second));
    changes.wait_for(&changes.tools, 2).await;
    let describes: u64 = text_of(&call_on(&client, "hostile_describes", json!({})).await)
        .parse()
        .unwrap();
    // Each storm: one round at once, and the rest of it folded into one more.
    assert!(
        (2..=4).contains(&describes),
        "2000 changed() calls in two storms described the plugin {describes} times"
    );
    assert!(
        !tool_names(&client)
            .await
            .contains(&"hostile_stormed".to_string()),
        "the second storm's change (removing the tool) was not lost"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_catalogue_whose_names_collide_leaves_the_plugin_serving_its_old_one() {
    // Both serve bare names. `fixed` serves only `stormed`, which its state already offers
    // (described from its state at start, not from the cache, as its grant has it);
    // `dynamic` adds a `stormed` of its own after the storm, which cannot be served.
    let hostile = component("hostile.wasm");
    let (dir, config) = config_with(&format!(
        "[plugins.dynamic]\ncomponent = {hostile:?}\nprefix_names = false\n\
         dynamic_catalogue = true\n\
         [plugins.fixed]\ncomponent = {hostile:?}\nprefix_names = false\n\
         tools = [\"stormed\"]\ndynamic_catalogue = true\n",
        hostile = hostile.display().to_string()
    ));
    let fixed_state = dir.path().join("data/state/fixed");
    std::fs::create_dir_all(&fixed_state).unwrap();
    std::fs::write(fixed_state.join("stormed"), b"1").unwrap();
    let (client, changes, log) = serve_stdio_logged(&config).await;
    let before = tool_names(&client).await;
    assert!(
        before.contains(&"stormed".to_string()) && before.contains(&"exfiltrate".to_string()),
        "{before:?}"
    );

    let stormed = call_on(&client, "catalogue_storm", json!({"times": 1})).await;
    assert!(!is_error(&stormed), "{}", text_of(&stormed));
    tokio::time::timeout(EVENT_WAIT, async {
        while !log
            .lock()
            .unwrap()
            .contains("keep their previous catalogue")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the refused catalogue is logged: {}", log.lock().unwrap()));
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("plugins dynamic keep their previous catalogue")
            && log.contains("plugin `fixed` was not loaded: its tool stormed is already served"),
        "{log}"
    );
    assert_eq!(tool_names(&client).await, before, "nothing vanished");
    let still = call_on(&client, "describes", json!({})).await;
    assert!(!is_error(&still), "{}", text_of(&still));
    assert_eq!(
        *changes.tools.lock().unwrap(),
        0,
        "the lists did not change"
    );
}
