//! Compact mode (`tool_mode = "compact"`) against full mode, two carport processes on one
//! simulator: every Tesla operation sends the same requests either way, a wrong argument is
//! refused in both before anything is sent, every structured result matches its tool's output
//! schema, and compact mode's tools/list is a tenth of full mode's.

use carport::simulator::fleet::ENERGY_SITE_ID;
use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::RunningService;
use serde_json::{Map, Value, json};

use crate::harness::*;
use crate::tesla::{Auth, fleet_requests, sample, start, tesla_table};

/// The seed server's Tesla tools/list was 66 KB for the same catalogue.
const SEED_TOOLS_LIST_BYTES: usize = 66_000;

struct Both {
    /// Full mode (with the other test plugins).
    full: Harness,
    compact: RunningService<RoleClient, Recorder>,
}

async fn start_both() -> Both {
    let full = start(Auth::Token, false).await;
    let table = tesla_table(&full.simulator, full.dir.path(), Auth::Token, false).replacen(
        "\n[plugins.tesla]\n",
        "\n[plugins.tesla]\ntool_mode = \"compact\"\n",
        1,
    );
    assert!(table.contains("tool_mode"), "{table}");
    let full_config = std::fs::read_to_string(full.dir.path().join("plugins.toml")).unwrap();
    let base = full_config.split("\n[plugins.tesla]").next().unwrap();
    let config = full.dir.path().join("compact.toml");
    std::fs::write(&config, format!("{base}{table}")).unwrap();
    let (compact, _, _) = connect(&config, &cache_dir()).await;
    Both { full, compact }
}

async fn call(
    client: &RunningService<RoleClient, Recorder>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments))
        .await
        .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"))
}

/// What Tesla received: method, path, raw query and body (the clock's `timestamp_ms` aside).
type Wire = Vec<(String, String, String, Option<Value>)>;

fn wire(harness: &Harness) -> Wire {
    fleet_requests(harness)
        .into_iter()
        .map(|request| {
            let body = (!request.body.is_empty()).then(|| {
                let mut body: Value = serde_json::from_str(&request.body).unwrap();
                if let Some(fields) = body.as_object_mut() {
                    fields.remove("timestamp_ms");
                }
                body
            });
            (request.method, request.path, request.query, body)
        })
        .collect()
}

fn tesla_tools(tools: &[Tool]) -> Vec<&Tool> {
    tools
        .iter()
        .filter(|tool| tool.name.starts_with("tesla_"))
        .collect()
}

/// tools/list bytes of the Tesla plugin's tools, as they travel (compact JSON).
fn listed_bytes(tools: &[Tool]) -> usize {
    serde_json::to_vec(&json!({ "tools": tesla_tools(tools) }))
        .unwrap()
        .len()
}

/// Arguments for a full-mode tool: every property, as the all-tools test builds them.
fn arguments_for(tool: &Tool) -> Map<String, Value> {
    let mut arguments = Map::new();
    for (property, schema) in tool.input_schema["properties"].as_object().unwrap() {
        let value = match property.as_str() {
            "vehicle_tag" => json!(RED_ARROW),
            "energy_site_id" => json!(ENERGY_SITE_ID.to_string()),
            "wake" => continue,
            _ => sample(property, schema),
        };
        arguments.insert(property.clone(), value);
    }
    arguments
}

/// The compact call that stands for a full-mode call.
fn compact_call(full_tool: &Tool, arguments: &Map<String, Value>) -> (String, Value) {
    let operation = full_tool.name.strip_prefix("tesla_").unwrap();
    if operation == "vehicle_state" {
        return ("tesla_state".into(), Value::Object(arguments.clone()));
    }
    let read_only = full_tool.annotations.as_ref().unwrap().read_only_hint == Some(true);
    let (tool, selector) = if read_only {
        ("tesla_read", "endpoint")
    } else {
        ("tesla_command", "command")
    };
    (
        tool.into(),
        json!({ selector: operation, "arguments": arguments }),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_sends_the_same_requests_in_compact_mode() {
    let both = start_both().await;
    let full_tools = both.full.client.list_all_tools().await.unwrap();
    let compact_tools = both.compact.list_all_tools().await.unwrap();
    let full_tesla = tesla_tools(&full_tools);
    assert_eq!(full_tesla.len(), 107);
    for tool in full_tesla {
        let arguments = arguments_for(tool);
        both.full.simulator.clear_requests();
        let full_result = both
            .full
            .call(&tool.name, Value::Object(arguments.clone()))
            .await;
        assert!(
            !is_error(&full_result),
            "{}: {}",
            tool.name,
            text_of(&full_result)
        );
        assert_structured_matches(tool, &full_result);
        let full_wire = wire(&both.full);
        assert!(!full_wire.is_empty(), "{} sent nothing", tool.name);

        let (compact_name, compact_arguments) = compact_call(tool, &arguments);
        both.full.simulator.clear_requests();
        let compact_result = call(&both.compact, &compact_name, compact_arguments.clone()).await;
        assert!(
            !is_error(&compact_result),
            "{compact_name} {compact_arguments}: {}",
            text_of(&compact_result)
        );
        let compact_tool = compact_tools
            .iter()
            .find(|listed| listed.name == compact_name)
            .unwrap();
        assert_structured_matches(compact_tool, &compact_result);
        assert_eq!(
            wire(&both.full),
            full_wire,
            "{compact_name} {compact_arguments} sent other requests than {}",
            tool.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_argument_is_refused_in_both_modes_before_anything_is_sent() {
    let both = start_both().await;
    let cases = [
        ("command", "set_charge_limit", json!({"percent": 20})),
        ("command", "set_charge_limit", json!({})),
        ("command", "set_charge_limit", json!({"percent": "80"})),
        ("command", "honk_horn", json!({"volume": 3})),
        ("command", "honk_horn", json!({"wake": true})),
        ("command", "window_control", json!({"command": "open"})),
        ("command", "set_temps", json!({"driver_temp": 21})),
        (
            "command",
            "energy_backup",
            json!({"backup_reserve_percent": 101}),
        ),
        ("command", "navigation_request", json!({"address": ""})),
        ("read", "get_vehicle_data", json!({"wake": "yes"})),
        ("read", "get_fleet_status", json!({"vins": []})),
        (
            "read",
            "energy_history",
            json!({"start_date": "2026-11-01T00:00:00Z"}),
        ),
    ];
    for (tool, operation, arguments) in cases {
        let selector = if tool == "read" {
            "endpoint"
        } else {
            "command"
        };
        both.full.simulator.clear_requests();
        let full = both
            .full
            .call(&format!("tesla_{operation}"), arguments.clone())
            .await;
        assert!(is_error(&full), "full {operation} {arguments} was accepted");
        let compact = call(
            &both.compact,
            &format!("tesla_{tool}"),
            json!({ selector: operation, "arguments": arguments }),
        )
        .await;
        assert!(
            is_error(&compact),
            "compact {operation} {arguments} was accepted"
        );
        assert!(
            text_of(&compact).contains("nothing was sent"),
            "{}",
            text_of(&compact)
        );
        assert!(
            wire(&both.full).is_empty(),
            "{operation} {arguments}: a request went out"
        );
    }
    // An operation of the wrong kind, or none, is refused by the compact tool's own schema.
    for (tool, arguments) in [
        ("tesla_read", json!({"endpoint": "door_unlock"})),
        ("tesla_command", json!({"command": "get_vehicle_data"})),
        ("tesla_command", json!({"command": "fly"})),
        ("tesla_command", json!({"arguments": {}})),
        (
            "tesla_command",
            json!({"command": "honk_horn", "vehicle_tag": RED_ARROW}),
        ),
    ] {
        let result = call(&both.compact, tool, arguments.clone()).await;
        assert!(is_error(&result), "{tool} {arguments} was accepted");
    }
    assert!(wire(&both.full).is_empty(), "a request went out");
    assert_eq!(
        both.full.simulator.vehicle(RED_ARROW).unwrap().horn_honks,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn help_gives_an_operations_full_mode_description_and_arguments() {
    let both = start_both().await;
    let full_tools = both.full.client.list_all_tools().await.unwrap();
    let full = full_tools
        .iter()
        .find(|tool| tool.name == "tesla_set_charge_limit")
        .unwrap();
    both.full.simulator.clear_requests();
    let help = structured(
        &call(
            &both.compact,
            "tesla_help",
            json!({"operation": "set_charge_limit"}),
        )
        .await,
    );
    assert_eq!(help["tool"], json!("command"));
    assert_eq!(
        help["description"],
        json!(full.description.as_deref().unwrap())
    );
    assert_eq!(
        help["arguments"],
        Value::Object((*full.input_schema).clone())
    );
    assert!(wire(&both.full).is_empty(), "help sent a request");
    let unknown = call(&both.compact, "tesla_help", json!({"operation": "fly"})).await;
    assert!(is_error(&unknown));
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_tools_list_is_under_a_tenth_of_full_and_full_under_the_seeds() {
    let both = start_both().await;
    let full_tools = both.full.client.list_all_tools().await.unwrap();
    let compact_tools = both.compact.list_all_tools().await.unwrap();
    let names: Vec<&str> = tesla_tools(&compact_tools)
        .iter()
        .map(|tool| tool.name.as_ref())
        .collect();
    assert_eq!(
        names,
        ["tesla_command", "tesla_help", "tesla_read", "tesla_state"]
    );
    let full = listed_bytes(&full_tools);
    let compact = listed_bytes(&compact_tools);
    assert!(
        full < SEED_TOOLS_LIST_BYTES,
        "full mode lists {full} bytes, the seed {SEED_TOOLS_LIST_BYTES}"
    );
    assert!(
        compact * 10 < full,
        "compact mode lists {compact} bytes, full mode {full}"
    );
}

/// TeslaMate in both modes: `teslamate` (full) and, from a second process on the same
/// simulator, the same plugin in compact mode.
async fn start_teslamate_both() -> (Harness, RunningService<RoleClient, Recorder>) {
    let full = Harness::start_with(Options {
        teslamate: true,
        ..Options::default()
    })
    .await;
    let text = std::fs::read_to_string(full.dir.path().join("plugins.toml")).unwrap();
    let compact_text = text.replacen(
        "\n[plugins.teslamate]\n",
        "\n[plugins.teslamate]\ntool_mode = \"compact\"\n",
        1,
    );
    assert_ne!(compact_text, text);
    let config = full.dir.path().join("compact.toml");
    std::fs::write(&config, compact_text).unwrap();
    let (compact, _, _) = connect(&config, &cache_dir()).await;
    (full, compact)
}

fn teslamate_wire(harness: &Harness) -> Vec<(String, String, String)> {
    harness
        .teslamate_requests()
        .into_iter()
        .map(|request| (request.method, request.path, request.query))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn teslamate_compact_reads_send_the_same_requests_and_refuse_the_same_dates() {
    let (full, compact) = start_teslamate_both().await;
    let full_tools = full.client.list_all_tools().await.unwrap();
    let compact_tools = compact.list_all_tools().await.unwrap();
    let cases = [
        ("get_cars", json!({})),
        ("get_car", json!({"car_id": 2})),
        ("get_car_status", json!({"car_id": 1})),
        (
            "get_car_charges",
            json!({"car_id": 1, "start_date": "2026-01-01", "end_date": "2026-12-31T23:00:00Z", "page": 1, "show": 5}),
        ),
        ("get_car_charge", json!({"car_id": 1, "charge_id": 3})),
        (
            "get_car_drives",
            json!({"car_id": 1, "start_date": "2026-01-01 08:00:00"}),
        ),
        ("get_car_drive", json!({"car_id": 2, "drive_id": 4})),
        ("get_car_battery_health", json!({"car_id": 1})),
        ("get_car_updates", json!({"car_id": 1})),
        ("vehicle_state", json!({"car_id": 1})),
    ];
    for (operation, arguments) in cases {
        full.simulator.clear_requests();
        let full_result = full
            .call(&format!("teslamate_{operation}"), arguments.clone())
            .await;
        assert!(
            !is_error(&full_result),
            "{operation}: {}",
            text_of(&full_result)
        );
        let full_wire = teslamate_wire(&full);
        full.simulator.clear_requests();
        let (tool, compact_arguments) = match operation {
            "vehicle_state" => ("teslamate_state", arguments.clone()),
            _ => (
                "teslamate_read",
                json!({"endpoint": operation, "arguments": arguments}),
            ),
        };
        let compact_result = call(&compact, tool, compact_arguments).await;
        assert!(
            !is_error(&compact_result),
            "{operation}: {}",
            text_of(&compact_result)
        );
        let compact_tool = compact_tools
            .iter()
            .find(|listed| listed.name == tool)
            .unwrap();
        assert_structured_matches(compact_tool, &compact_result);
        assert_eq!(teslamate_wire(&full), full_wire, "{operation}");
    }
    // The plugin's date check in compact mode agrees with the host's pattern in full mode.
    let mut refused = Vec::new();
    for date in [
        "2026-03-01",
        "2026-03-01T08:00:00.5+02:00",
        "2026-03-01T08:00",
        "2026-3-1",
        "March 1st",
        "2026-03-01T08:00:00+0200",
    ] {
        let arguments = json!({"car_id": 1, "start_date": date});
        full.simulator.clear_requests();
        let full_refused = is_error(
            &full
                .call("teslamate_get_car_charges", arguments.clone())
                .await,
        );
        let full_sent = !teslamate_wire(&full).is_empty();
        full.simulator.clear_requests();
        let compact_result = call(
            &compact,
            "teslamate_read",
            json!({"endpoint": "get_car_charges", "arguments": arguments}),
        )
        .await;
        assert_eq!(is_error(&compact_result), full_refused, "{date}");
        assert_eq!(!teslamate_wire(&full).is_empty(), full_sent, "{date}");
        refused.push(full_refused);
    }
    assert_eq!(refused, [false, false, true, true, true, true]);
    let size = |tools: &[Tool]| {
        let own: Vec<&Tool> = tools
            .iter()
            .filter(|tool| tool.name.starts_with("teslamate_"))
            .collect();
        serde_json::to_vec(&json!({ "tools": own })).unwrap().len()
    };
    let (full_bytes, compact_bytes) = (size(&full_tools), size(&compact_tools));
    assert!(
        compact_bytes * 4 < full_bytes,
        "teslamate lists {compact_bytes} bytes compact, {full_bytes} full"
    );
}
