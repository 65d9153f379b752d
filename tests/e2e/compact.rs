//! Compact mode (`tool_mode = "compact"`) against full mode, two carport processes: every
//! Tesla, TeslaMate, Smartcar and DIMO operation sends the same requests either way, a wrong
//! argument is refused in both before anything is sent, every structured result matches its
//! tool's output schema, and compact mode's tools/list is a tenth of full mode's.

use carport::simulator::fleet::ENERGY_SITE_ID;
use carport::simulator::{RecordedRequest, SimOptions, Simulator, Vendor};
use rmcp::RoleClient;
use rmcp::model::{CallToolResult, GetPromptRequestParams, Tool};
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
        let compact_result = call_on(&both.compact, &compact_name, compact_arguments.clone()).await;
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
        let compact = call_on(
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
        let result = call_on(&both.compact, tool, arguments.clone()).await;
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
        &call_on(
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
    let unknown = call_on(&both.compact, "tesla_help", json!({"operation": "fly"})).await;
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
        let compact_result = call_on(&compact, tool, compact_arguments).await;
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
        let compact_result = call_on(
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

/// One plugin served in `mode` on a simulator of its own: the two modes start from the same
/// vendor state and an empty plugin state (tokens, caches), so the same calls in the same order
/// must send the same requests.
async fn start_in_mode(options: Options, plugin: &str, mode: &str) -> Harness {
    let simulator = Simulator::start(SimOptions {
        wake_delay: options.wake_delay,
        base_port: 0,
    })
    .await
    .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &simulator, &options);
    let text = std::fs::read_to_string(&config).unwrap();
    let table = format!("\n[plugins.{plugin}]\n");
    let moded = text.replacen(&table, &format!("{table}tool_mode = {mode:?}\n"), 1);
    assert_ne!(moded, text, "no [plugins.{plugin}] table");
    std::fs::write(&config, moded).unwrap();
    let (client, recorder, stderr) = connect(&config, &cache_dir()).await;
    Harness {
        simulator,
        client,
        recorder,
        stderr,
        dir,
    }
}

async fn start_smartcar(mode: &str) -> Harness {
    let options = Options {
        smartcar: true,
        ..Options::default()
    };
    start_in_mode(options, "smartcar", mode).await
}

/// The demo user's vehicles, as `carport demo` serves them; each process listens for DIMO's
/// sign-in on a port of its own.
async fn start_dimo(mode: &str) -> Harness {
    let options = Options {
        dimo: true,
        dimo_settings: format!(
            "owner_address = {:?}\n",
            carport::simulator::sign_in::DIMO_WALLET_ADDRESS
        ),
        dimo_redirect: format!("http://127.0.0.1:{}/callback", crate::sign_in::free_port()),
        ..Options::default()
    };
    start_in_mode(options, "dimo", mode).await
}

/// A request as the vendor saw it, without what differs between two processes by design: the
/// token itself, and the signed login challenge (a fresh nonce each time). Smartcar's reads of
/// a running command are left out: how often the command is read depends on timing.
type Seen = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<Value>,
);

fn seen(harness: &Harness, vendors: &[Vendor]) -> Vec<Seen> {
    harness
        .simulator
        .requests()
        .into_iter()
        .filter(|request| vendors.contains(&request.vendor))
        .filter(|request| !request.path.contains("/command-executions/"))
        .map(|request: RecordedRequest| {
            let body =
                (request.vendor != Vendor::DimoAuth && !request.body.is_empty()).then(|| {
                    serde_json::from_str(&request.body)
                        .unwrap_or(Value::String(request.body.clone()))
                });
            (
                format!("{:?}", request.vendor),
                request.method.clone(),
                request.path.clone(),
                request.query.clone(),
                request.header("sc-user-id").map(str::to_string),
                body,
            )
        })
        .collect()
}

const SMARTCAR: &[Vendor] = &[Vendor::Smartcar];
const DIMO: &[Vendor] = &[
    Vendor::DimoAuth,
    Vendor::DimoIdentity,
    Vendor::DimoTelemetry,
    Vendor::DimoTokenExchange,
    Vendor::DimoDevices,
    Vendor::DimoAttestation,
    Vendor::DimoDeviceDefinitions,
];

/// The compact call that stands for a full-mode call of `operation`: reads (`vehicle_state`
/// among them) through `read`, everything else through `command`.
fn compact_call_of(plugin: &str, full_tool: &Tool, arguments: &Value) -> (String, Value) {
    let operation = full_tool.name.strip_prefix(&format!("{plugin}_")).unwrap();
    let read_only = full_tool.annotations.as_ref().unwrap().read_only_hint == Some(true);
    let (tool, selector) = if read_only {
        ("read", "endpoint")
    } else {
        ("command", "command")
    };
    (
        format!("{plugin}_{tool}"),
        json!({ selector: operation, "arguments": arguments }),
    )
}

/// Runs every operation in both modes, in the table's order, and compares what went out and
/// what came back. `refused` operations fail in both modes with the same error and send
/// nothing. The `varying` fields of results, at any depth, differ between two runs by nature
/// (a sign-in link's state, a command's id, the vendor's clock), so results are compared
/// without them, and their texts (which quote them) only when they have none.
async fn same_in_both_modes(
    plugin: &str,
    vendors: &[Vendor],
    full: &Harness,
    compact: &Harness,
    table: &[(&str, Value)],
    refused: &[&str],
    varying: &[&str],
) {
    fn strip(value: &mut Value, varying: &[&str]) -> bool {
        match value {
            Value::Object(fields) => {
                let before = fields.len();
                fields.retain(|name, _| !varying.contains(&name.as_str()));
                let mut varied = fields.len() != before;
                for field in fields.values_mut() {
                    varied |= strip(field, varying);
                }
                varied
            }
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |varied, item| strip(item, varying) | varied),
            _ => false,
        }
    }
    let without_varying = |result: &CallToolResult| {
        let mut structured = result.structured_content.clone().unwrap_or(Value::Null);
        let varied = strip(&mut structured, varying);
        (structured, varied)
    };
    let full_tools = full.client.list_all_tools().await.unwrap();
    let compact_tools = compact.client.list_all_tools().await.unwrap();
    let own: Vec<&Tool> = full_tools
        .iter()
        .filter(|tool| tool.name.starts_with(&format!("{plugin}_")))
        .collect();
    let mut untested: Vec<&str> = own.iter().map(|tool| tool.name.as_ref()).collect();
    for (operation, arguments) in table {
        let name = format!("{plugin}_{operation}");
        untested.retain(|listed| *listed != name);
        let full_tool = own
            .iter()
            .find(|tool| tool.name == name)
            .unwrap_or_else(|| panic!("{name} is not listed in full mode"));
        full.simulator.clear_requests();
        let full_result = full.call(&name, arguments.clone()).await;
        let full_wire = seen(full, vendors);

        let (compact_name, compact_arguments) = compact_call_of(plugin, full_tool, arguments);
        compact.simulator.clear_requests();
        let compact_result =
            call_on(&compact.client, &compact_name, compact_arguments.clone()).await;
        assert_eq!(
            seen(compact, vendors),
            full_wire,
            "{compact_name} {compact_arguments} sent other requests than {name}"
        );
        if refused.contains(operation) {
            assert!(
                is_error(&full_result) && is_error(&compact_result),
                "{name}"
            );
            assert_eq!(text_of(&compact_result), text_of(&full_result), "{name}");
            assert!(full_wire.is_empty(), "{name} sent {full_wire:?}");
            continue;
        }
        assert!(!is_error(&full_result), "{name}: {}", text_of(&full_result));
        assert!(
            !is_error(&compact_result),
            "{compact_name} {compact_arguments}: {}",
            text_of(&compact_result)
        );
        assert_structured_matches(full_tool, &full_result);
        let compact_tool = compact_tools
            .iter()
            .find(|listed| listed.name == compact_name)
            .unwrap();
        assert_structured_matches(compact_tool, &compact_result);
        let (full_structured, varied) = without_varying(&full_result);
        assert_eq!(
            without_varying(&compact_result).0,
            full_structured,
            "{name}"
        );
        if !varied {
            assert_eq!(text_of(&compact_result), text_of(&full_result), "{name}");
        }
    }
    assert!(untested.is_empty(), "no wire check for {untested:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_smartcar_operation_sends_the_same_requests_in_compact_mode() {
    let (full, compact) = tokio::join!(start_smartcar("full"), start_smartcar("compact"));
    // Deletions last: they remove what the other calls read.
    let table = [
        (
            "list_connections",
            json!({"userId": "sc-user-alex", "vehicleMode": "live", "pageNumber": 1, "pageSize": 5}),
        ),
        ("get_connection", json!({"connectionId": "sc-conn-0001"})),
        ("get_vehicle", json!({"vehicle_id": "sc-veh-ford-f150"})),
        ("get_signals", json!({"pageNumber": 2, "pageSize": 3})),
        (
            "get_signal",
            json!({"signal_code": "tractionbattery.stateofcharge"}),
        ),
        ("vehicle_state", json!({})),
        ("lock_vehicle", json!({})),
        (
            "unlock_vehicle",
            json!({"vehicle_id": "sc-veh-ford-f150", "user_id": "sc-user-alex"}),
        ),
        ("start_charge", json!({})),
        ("stop_charge", json!({})),
        ("set_charge_limit", json!({"percent": 85})),
        (
            "set_navigation_destination",
            json!({"latitude": 52.5163, "longitude": 13.3777}),
        ),
        ("list_applications", json!({})),
        ("get_application", json!({"applicationId": "app-7f3c2a"})),
        (
            "list_application_secrets",
            json!({"applicationId": "app-7f3c2a"}),
        ),
        ("delete_connection", json!({"connectionId": "sc-conn-0002"})),
        ("delete_user", json!({"userId": "sc-user-sam"})),
    ];
    same_in_both_modes(
        "smartcar",
        SMARTCAR,
        &full,
        &compact,
        &table,
        &[],
        &["execution_id", "retrieved_at", "last_updated"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dimo_operation_sends_the_same_requests_in_compact_mode() {
    const TESLA: u32 = 21957;
    const FORD: u32 = 30311;
    let (full, compact) = tokio::join!(start_dimo("full"), start_dimo("compact"));
    let speed = "query($tokenId: Int!) { signalsLatest(tokenId: $tokenId) { speed { value } } }";
    let table = [
        ("check_vehicle_access_status", json!({})),
        (
            "generate_vehicle_data_sharing_url",
            json!({"permissionTemplateId": 2}),
        ),
        (
            "identity_query",
            json!({"query": "query($id: Int!) { vehicle(tokenId: $id) { owner } }",
                   "variables": {"id": TESLA}}),
        ),
        ("identity_introspect", json!({})),
        ("telemetry_query", json!({"tokenId": TESLA, "query": speed})),
        (
            "batch_telemetry_query",
            json!({"tokenIds": [TESLA, FORD], "query": speed}),
        ),
        ("telemetry_introspect", json!({})),
        ("vehicle_data_summary", json!({"tokenId": FORD})),
        (
            "batch_vehicle_data_summary",
            json!({"tokenIds": [TESLA, FORD]}),
        ),
        ("vehicle_state", json!({"tokenId": TESLA})),
        (
            "vin_decode",
            json!({"vin": "5YJ3E1EA7KF000001", "countryCode": "USA"}),
        ),
        (
            "search_vehicles",
            json!({"query": "model", "make": "Tesla", "model": "Model 3", "year": 2023}),
        ),
        (
            "attestation_create_vin",
            json!({"tokenId": TESLA, "force": true}),
        ),
        (
            "attestation_create_odometer",
            json!({"tokenId": TESLA, "timestamp": "2026-11-01T00:00:00Z"}),
        ),
        (
            "attestation_create_vehicle_health",
            json!({"tokenId": TESLA, "startTime": "2026-11-01T00:00:00Z",
                   "endTime": "2026-11-20T00:00:00Z"}),
        ),
        (
            "attestation_create_vehicle_position",
            json!({"tokenId": TESLA, "timestamp": "2026-11-01T00:00:00Z"}),
        ),
        ("lock_doors", json!({"tokenId": TESLA})),
        ("unlock_doors", json!({"tokenId": TESLA})),
        ("start_charge", json!({"tokenId": TESLA})),
        ("stop_charge", json!({"tokenId": TESLA})),
        ("open_trunk", json!({"tokenId": TESLA})),
        ("open_frunk", json!({"tokenId": TESLA})),
        ("init_oauth", json!({"port": 3333})),
        ("mint_vehicle_with_vin", json!({"vin": "5YJ3E1EA7KF000001"})),
        (
            "mint_vehicle_with_device_definition",
            json!({"make": "Tesla", "model": "Model 3", "year": 2023}),
        ),
    ];
    same_in_both_modes(
        "dimo",
        DIMO,
        &full,
        &compact,
        &table,
        &[
            "mint_vehicle_with_vin",
            "mint_vehicle_with_device_definition",
        ],
        &["requestId", "url", "lastSeen", "last_updated"],
    )
    .await;
}

/// Wrong arguments of an operation (refused by the host in full mode) and wrong operations are
/// refused in compact mode before anything is sent; `help` shows an operation's full-mode
/// description, arguments and output schema, and sends nothing.
async fn refuses_and_helps(
    plugin: &str,
    vendors: &[Vendor],
    full: &Harness,
    compact: &Harness,
    wrong_arguments: &[(&str, &str, Value)],
    wrong_operations: &[(&str, Value)],
    help_for: &str,
) {
    for (tool, operation, arguments) in wrong_arguments {
        full.simulator.clear_requests();
        compact.simulator.clear_requests();
        let full_result = full
            .call(&format!("{plugin}_{operation}"), arguments.clone())
            .await;
        assert!(
            is_error(&full_result),
            "full {operation} {arguments} was accepted"
        );
        let selector = if *tool == "read" {
            "endpoint"
        } else {
            "command"
        };
        let compact_result = call_on(
            &compact.client,
            &format!("{plugin}_{tool}"),
            json!({ selector: operation, "arguments": arguments }),
        )
        .await;
        assert!(
            is_error(&compact_result),
            "compact {operation} {arguments} was accepted"
        );
        assert!(
            text_of(&compact_result).contains("nothing was sent"),
            "{operation} {arguments}: {}",
            text_of(&compact_result)
        );
        assert!(
            seen(full, vendors).is_empty(),
            "{operation} {arguments}: full sent"
        );
        assert!(
            seen(compact, vendors).is_empty(),
            "{operation} {arguments}: compact sent"
        );
    }
    compact.simulator.clear_requests();
    for (tool, arguments) in wrong_operations {
        let result = call_on(
            &compact.client,
            &format!("{plugin}_{tool}"),
            arguments.clone(),
        )
        .await;
        assert!(is_error(&result), "{tool} {arguments} was accepted");
    }
    let full_tools = full.client.list_all_tools().await.unwrap();
    let documented = full_tools
        .iter()
        .find(|tool| tool.name == format!("{plugin}_{help_for}"))
        .unwrap();
    let help = structured(
        &call_on(
            &compact.client,
            &format!("{plugin}_help"),
            json!({ "operation": help_for }),
        )
        .await,
    );
    let served_by = if documented.annotations.as_ref().unwrap().read_only_hint == Some(true) {
        "read"
    } else {
        "command"
    };
    assert_eq!(help["tool"], json!(served_by));
    assert_eq!(
        help["description"],
        json!(documented.description.as_deref().unwrap())
    );
    assert_eq!(
        help["arguments"],
        Value::Object((*documented.input_schema).clone())
    );
    assert_eq!(
        help["returns"],
        Value::Object((**documented.output_schema.as_ref().unwrap()).clone())
    );
    let unknown = call_on(
        &compact.client,
        &format!("{plugin}_help"),
        json!({"operation": "fly"}),
    )
    .await;
    assert!(is_error(&unknown));
    assert!(seen(compact, vendors).is_empty(), "a request went out");

    let compact_tools = compact.client.list_all_tools().await.unwrap();
    let size = |tools: &[Tool]| {
        let own: Vec<&Tool> = tools
            .iter()
            .filter(|tool| tool.name.starts_with(&format!("{plugin}_")))
            .collect();
        serde_json::to_vec(&json!({ "tools": own })).unwrap().len()
    };
    let names: Vec<&str> = compact_tools
        .iter()
        .map(|tool| tool.name.as_ref())
        .filter(|name| name.starts_with(&format!("{plugin}_")))
        .collect();
    assert_eq!(
        names,
        ["command", "help", "read"].map(|tool| format!("{plugin}_{tool}"))
    );
    let (full_bytes, compact_bytes) = (size(&full_tools), size(&compact_tools));
    eprintln!("{plugin}: tools/list {full_bytes} bytes in full mode, {compact_bytes} compact");
    assert!(
        compact_bytes * 10 < full_bytes,
        "{plugin} lists {compact_bytes} bytes compact, {full_bytes} full"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn smartcar_compact_mode_refuses_what_full_mode_refuses_and_helps() {
    let (full, compact) = tokio::join!(start_smartcar("full"), start_smartcar("compact"));
    refuses_and_helps(
        "smartcar",
        SMARTCAR,
        &full,
        &compact,
        &[
            ("command", "set_charge_limit", json!({"percent": 20})),
            ("command", "set_charge_limit", json!({})),
            ("command", "set_charge_limit", json!({"percent": "80"})),
            (
                "command",
                "set_navigation_destination",
                json!({"latitude": 91, "longitude": 0}),
            ),
            ("command", "lock_vehicle", json!({"vehicle_id": "sc veh"})),
            ("command", "lock_vehicle", json!({"doors": "all"})),
            ("command", "delete_user", json!({})),
            ("read", "get_signal", json!({"signal_code": "x".repeat(81)})),
            ("read", "get_signals", json!({"pageSize": 101})),
            ("read", "list_connections", json!({"vehicleMode": "parked"})),
            ("read", "get_connection", json!({"connectionId": ""})),
        ],
        &[
            ("read", json!({"endpoint": "lock_vehicle"})),
            ("command", json!({"command": "get_vehicle"})),
            ("command", json!({"command": "fly"})),
            ("command", json!({"arguments": {}})),
            (
                "command",
                json!({"command": "lock_vehicle", "vehicle_id": "sc-veh-vw-id4"}),
            ),
        ],
        "set_charge_limit",
    )
    .await;
    assert_eq!(compact.simulator.state.smartcar.token_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn dimo_compact_mode_refuses_what_full_mode_refuses_and_helps() {
    let (full, compact) = tokio::join!(start_dimo("full"), start_dimo("compact"));
    refuses_and_helps(
        "dimo",
        DIMO,
        &full,
        &compact,
        &[
            ("command", "lock_doors", json!({})),
            ("command", "lock_doors", json!({"tokenId": 0})),
            ("command", "lock_doors", json!({"tokenId": "21957"})),
            (
                "command",
                "lock_doors",
                json!({"tokenId": 21957, "force": true}),
            ),
            (
                "command",
                "attestation_create_vehicle_health",
                json!({"tokenId": 21957, "startTime": "2026-11-01T00:00:00Z"}),
            ),
            ("read", "vin_decode", json!({"vin": "5YJ3E1EA7KF00000I"})),
            (
                "read",
                "vin_decode",
                json!({"vin": "5YJ3E1EA7KF000001", "countryCode": "us"}),
            ),
            (
                "read",
                "batch_vehicle_data_summary",
                json!({"tokenIds": []}),
            ),
            (
                "read",
                "batch_vehicle_data_summary",
                json!({"tokenIds": [21957, 21957]}),
            ),
            ("read", "identity_query", json!({"query": ""})),
            ("read", "search_vehicles", json!({"make": "x".repeat(101)})),
            ("read", "vehicle_state", json!({"tokenId": 4294967296u64})),
        ],
        &[
            (
                "read",
                json!({"endpoint": "lock_doors", "arguments": {"tokenId": 21957}}),
            ),
            (
                "command",
                json!({"command": "vehicle_state", "arguments": {"tokenId": 21957}}),
            ),
            (
                "command",
                json!({"command": "honk", "arguments": {"tokenId": 21957}}),
            ),
            ("read", json!({"arguments": {"tokenId": 21957}})),
            (
                "read",
                json!({"endpoint": "vehicle_state", "arguments": [21957]}),
            ),
        ],
        "vehicle_state",
    )
    .await;
    // The seed's prompts name the calls as compact mode serves them.
    for (prompt, arguments, calls) in [
        (
            "dimo_vehicle_genius",
            json!({"tokenId": "21957"}),
            [
                "dimo_read (endpoint vehicle_state)",
                "dimo_read (endpoint telemetry_query)",
            ],
        ),
        (
            "dimo_fleet_genius",
            json!({}),
            [
                "dimo_read (endpoint check_vehicle_access_status)",
                "dimo_read (endpoint batch_telemetry_query)",
            ],
        ),
    ] {
        let Value::Object(arguments) = arguments else {
            panic!()
        };
        let answer = compact
            .client
            .get_prompt(GetPromptRequestParams::new(prompt).with_arguments(arguments))
            .await
            .unwrap();
        let text = serde_json::to_string(&answer.messages).unwrap();
        for call in calls {
            assert!(text.contains(call), "{prompt}: {text}");
        }
        assert!(!text.contains("dimo_vehicle_state"), "{prompt}: {text}");
    }
}
