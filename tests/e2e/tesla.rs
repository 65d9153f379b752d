//! The Fleet API plugin against the simulated Fleet API: every tool's request on the wire, and
//! the API's behaviours (sleep, 429, 421, 401 with token rotation, 403).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use carport::simulator::fleet::{ENERGY_SITE_ID, FIRST_REFRESH_TOKEN};
use carport::simulator::{Script, Simulator, Vendor};
use serde_json::{Map, Value, json};

use crate::harness::*;

pub(crate) enum Auth {
    /// A static bearer token (MyTeslaMate's, or a Fleet token managed elsewhere).
    Token,
    /// The host's OAuth capability with a rotating refresh token in a file.
    OAuth,
}

/// The `[plugins.tesla]` table; `simulator` is not started yet when the options are built, so
/// the table is written by the test once it is.
pub(crate) fn tesla_table(
    simulator: &Simulator,
    dir: &Path,
    auth: Auth,
    allow_other_region: bool,
) -> String {
    let url = simulator.url(Vendor::Fleet);
    let other = simulator.url(Vendor::FleetOtherRegion);
    let component = components_dir().join("tesla.wasm").display().to_string();
    let allow = if allow_other_region {
        format!("[{url:?}, {other:?}]")
    } else {
        format!("[{url:?}]")
    };
    // With two origins allowed, each credential must say which it is for: here, both regions.
    let origins = if allow_other_region {
        format!("origins = {allow}\n")
    } else {
        String::new()
    };
    let token_file = dir.join("tesla-token").display().to_string();
    let refresh_file = dir.join("tesla-refresh-token");
    let (auth_setting, secrets) = match auth {
        Auth::Token => {
            std::fs::write(&token_file, Vendor::Fleet.token()).unwrap();
            (
                "token",
                format!("[plugins.tesla.secrets.token]\nfile = {token_file:?}\n{origins}"),
            )
        }
        Auth::OAuth => {
            if !refresh_file.exists() {
                std::fs::write(&refresh_file, FIRST_REFRESH_TOKEN).unwrap();
            }
            (
                "oauth",
                format!(
                    "[plugins.tesla.secrets.refresh]\nfile = {:?}\n{origins}\
                     [plugins.tesla.oauth.fleet]\ntoken_url = \"{url}/oauth2/v3/token\"\n\
                     client_id = \"carport-test\"\nrefresh_token = \"refresh\"\n{origins}",
                    refresh_file.display().to_string()
                ),
            )
        }
    };
    format!(
        "\n[plugins.tesla]\ncomponent = {component:?}\nallow = {allow}\ntimeout_seconds = 20\n\
         [plugins.tesla.settings]\nbase_url = {url:?}\nvin = \"{RED_ARROW}\"\nauth = \"{auth_setting}\"\n\
         energy_site_id = \"{ENERGY_SITE_ID}\"\nwake_poll_ms = \"100\"\nwake_timeout_seconds = \"10\"\n{secrets}"
    )
}

pub(crate) async fn start(auth: Auth, allow_other_region: bool) -> Harness {
    let mut harness = Harness::start().await;
    let table = tesla_table(
        &harness.simulator,
        harness.dir.path(),
        auth,
        allow_other_region,
    );
    restart_with(&mut harness, &table).await;
    harness
}

/// Restarts carport on the same simulator and folder with the tesla table added.
async fn restart_with(harness: &mut Harness, table: &str) {
    let config = harness.dir.path().join("plugins.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let base = base.split("\n[plugins.tesla]").next().unwrap().to_string();
    std::fs::write(&config, format!("{base}{table}")).unwrap();
    let (client, recorder, stderr) = connect(&config, &cache_dir()).await;
    harness.client = client;
    harness.recorder = recorder;
    harness.stderr = stderr;
}

pub(crate) fn fleet_requests(harness: &Harness) -> Vec<carport::simulator::RecordedRequest> {
    harness
        .simulator
        .requests()
        .into_iter()
        .filter(|request| matches!(request.vendor, Vendor::Fleet | Vendor::FleetOtherRegion))
        .collect()
}

/// A value that satisfies a property's schema.
pub(crate) fn sample(name: &str, schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("integer") => json!(
            schema["minimum"]
                .as_i64()
                .unwrap_or(0)
                .max(1)
                .min(schema["maximum"].as_i64().unwrap_or(i64::MAX))
        ),
        Some("number") => json!(schema["minimum"].as_f64().unwrap_or(0.0) + 0.5),
        Some("boolean") => json!(true),
        Some("array") if schema["items"]["type"] == "integer" => json!([1, 2]),
        Some("array") => json!([RED_ARROW]),
        Some("object") => json!({"name": "sample tariff"}),
        _ => json!(format!("sample-{name}")),
    }
}

/// The seed's request for a tool (from the reference catalogue in tests/fixtures), with the arguments.
fn seed_request(
    tool: &Value,
    arguments: &Map<String, Value>,
) -> (String, String, BTreeMap<String, String>, Option<Value>) {
    let pairs = |text: &str| -> Vec<(String, String, bool)> {
        let pattern = |piece: &str| -> Option<(String, String, bool)> {
            let (key, rest) = piece.split_once(':')?;
            let key = key
                .trim()
                .trim_matches(|c| c == '\'' || c == '{' || c == ' ')
                .to_string();
            let optional = rest.contains("(opt)");
            let arg = rest
                .replace("(opt)", "")
                .trim()
                .trim_matches(|c| c == '}' || c == ' ')
                .to_string();
            Some((key, arg, optional))
        };
        text.split(", '").filter_map(pattern).collect()
    };
    let path = tool["path"]
        .as_str()
        .unwrap()
        .replace("{vehicle_tag}", RED_ARROW)
        .replace("{energy_site_id}", &ENERGY_SITE_ID.to_string())
        .replace("{invoice_id}", "sample-invoice_id");
    let mut query = BTreeMap::new();
    for (key, arg, _) in pairs(tool["query"].as_str().unwrap_or_default()) {
        let value = if arg.starts_with('\'') {
            Some(Value::from(arg.trim_matches('\'')))
        } else {
            arguments.get(&arg).cloned()
        };
        if let Some(value) = value {
            query.insert(
                key,
                value
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| value.to_string()),
            );
        }
    }
    let body_text = tool["body"].as_str().unwrap_or_default();
    let body = match body_text {
        "" => None,
        "{}" => Some(json!({})),
        _ if tool["tool"] == "navigation_request" => Some(json!({
            "type": "share_ext_content_raw",
            "value": {"android.intent.extra.TEXT": arguments["address"]},
            "locale": arguments["locale"],
        })),
        _ => {
            let mut body = Map::new();
            for (key, arg, _) in pairs(body_text) {
                if let Some(value) = arguments.get(&arg) {
                    body.insert(key, value.clone());
                }
            }
            Some(Value::Object(body))
        }
    };
    (
        tool["method"].as_str().unwrap().to_string(),
        path,
        query,
        body,
    )
}

/// Where Tesla's API differs from the seed (README lists each with its source).
fn correct(
    tool: &str,
    arguments: &Map<String, Value>,
    query: &mut BTreeMap<String, String>,
    body: &mut Option<Value>,
) {
    let body_object = |body: &mut Option<Value>| -> Map<String, Value> {
        body.take()
            .and_then(|value| value.as_object().cloned())
            .unwrap_or_default()
    };
    let text = |value: &Value| {
        value
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string())
    };
    match tool {
        "set_cop_temp" => *body = Some(json!({"cop_temp": arguments["cop_level"]})),
        "guest_mode" => *body = Some(json!({"enable": arguments["on"]})),
        "set_bioweapon_mode" | "set_climate_keeper_mode" | "set_preconditioning_max" => {
            let mut fields = body_object(body);
            fields.insert(
                "manual_override".into(),
                arguments["manual_override"].clone(),
            );
            *body = Some(Value::Object(fields));
        }
        "remote_seat_heater_request" => {
            let mut fields = body_object(body);
            fields.insert("seat_position".into(), arguments["heater"].clone());
            *body = Some(Value::Object(fields));
        }
        "add_charge_schedule" | "add_precondition_schedule" => {
            let mut fields: Map<String, Value> = arguments
                .iter()
                .filter(|(key, _)| {
                    !matches!(key.as_str(), "vehicle_tag" | "latitude" | "longitude")
                })
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            fields.insert("lat".into(), arguments["latitude"].clone());
            fields.insert("lon".into(), arguments["longitude"].clone());
            *body = Some(Value::Object(fields));
        }
        "energy_time_of_use_settings" => {
            *body = Some(json!({"tou_settings": {"tariff_content_v2": arguments["tou_settings"]}}));
        }
        "get_vehicle_data" => {
            query.insert(
                "endpoints".into(),
                arguments["endpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(text)
                    .collect::<Vec<_>>()
                    .join(";"),
            );
        }
        "get_nearby_charging_sites" | "get_release_notes" => {
            for key in ["count", "radius", "detail", "staged", "language"] {
                if let Some(value) = arguments.get(key) {
                    query.insert(key.into(), text(value));
                }
            }
        }
        "charging_history" => {
            if let Some(page) = query.remove("page") {
                query.insert("pageNo".into(), page);
            }
        }
        "charging_sessions" => {
            *query = BTreeMap::from([
                ("vin".to_string(), text(&arguments["vin"])),
                ("date_from".to_string(), text(&arguments["start_time"])),
                ("date_to".to_string(), text(&arguments["end_time"])),
                ("limit".to_string(), text(&arguments["page_size"])),
                ("offset".to_string(), text(&arguments["page"])),
            ]);
        }
        _ => {}
    }
}

fn reference_catalogue() -> Vec<Value> {
    let path: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mcp-tesla-tools.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str::<Vec<Value>>(&text)
        .unwrap()
        .into_iter()
        .filter(|tool| {
            tool["tags"]
                .as_str()
                .unwrap_or_default()
                .contains("tesla_fleet_api")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fleet_tool_sends_the_vendors_request() {
    let harness = start(Auth::Token, false).await;
    let tools = harness.client.list_all_tools().await.unwrap();
    let catalogue = reference_catalogue();
    assert_eq!(catalogue.len(), 98);
    for reference in &catalogue {
        let name = reference["tool"].as_str().unwrap();
        let exposed = format!("tesla_{name}");
        let tool = tools
            .iter()
            .find(|tool| tool.name == exposed)
            .unwrap_or_else(|| panic!("{exposed} is not served"));
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
        let (method, path, mut query, mut body) = seed_request(reference, &arguments);
        correct(name, &arguments, &mut query, &mut body);

        harness.simulator.clear_requests();
        let result = harness
            .call(&exposed, Value::Object(arguments.clone()))
            .await;
        assert!(
            !is_error(&result),
            "{exposed} {arguments:?}: {}",
            text_of(&result)
        );
        let sent = fleet_requests(&harness);
        let request = sent
            .last()
            .unwrap_or_else(|| panic!("{exposed} sent nothing"));
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            (method.as_str(), path.as_str()),
            "{exposed}"
        );
        let sent_query: BTreeMap<String, String> = request.query_pairs().into_iter().collect();
        assert_eq!(sent_query, query, "{exposed}: query");
        let mut sent_body: Option<Value> =
            (!request.body.is_empty()).then(|| serde_json::from_str(&request.body).unwrap());
        if name == "navigation_request" {
            let stamp = sent_body
                .as_mut()
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove("timestamp_ms");
            assert!(
                stamp.and_then(|stamp| stamp.as_u64()).is_some(),
                "navigation_request needs timestamp_ms"
            );
        }
        assert_eq!(sent_body, body, "{exposed}: body");
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer sim-fleet-token"),
            "{exposed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_annotations_follow_what_each_tool_does() {
    let harness = start(Auth::Token, false).await;
    let tools = harness.client.list_all_tools().await.unwrap();
    let hints = |name: &str| {
        let tool = tools
            .iter()
            .find(|tool| tool.name == format!("tesla_{name}"))
            .unwrap();
        let annotations = tool.annotations.clone().unwrap();
        (
            annotations.read_only_hint,
            annotations.destructive_hint,
            annotations.idempotent_hint,
        )
    };
    assert_eq!(
        hints("get_vehicle_data"),
        (Some(true), Some(false), Some(true))
    );
    assert_eq!(hints("door_lock"), (Some(false), Some(false), Some(true)));
    assert_eq!(hints("honk_horn"), (Some(false), Some(false), Some(false)));
    for dangerous in [
        "door_unlock",
        "remote_start_drive",
        "erase_user_data",
        "reset_valet_pin",
        "speed_limit_clear_pin",
        "clear_pin_to_drive_admin",
    ] {
        assert_eq!(
            hints(dangerous).1,
            Some(true),
            "{dangerous} must be destructive"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vehicle_state_has_the_shape_of_the_other_providers() {
    let harness = start(Auth::Token, false).await;
    let tesla = structured(&harness.call("tesla_vehicle_state", json!({})).await);
    let tessie = structured(&harness.call("tessie_tesla_state", json!({})).await);
    let keys = |value: &Value| {
        value
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&tesla), keys(&tessie));
    for field in [
        "battery_range_km",
        "odometer_km",
        "locked",
        "charging",
        "doors",
        "climate",
    ] {
        assert_eq!(tesla[field], tessie[field], "{field}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleeping_car_is_woken_for_a_command_but_not_for_a_read() {
    let harness = start(Auth::Token, false).await;
    let read = harness
        .call("tesla_get_vehicle_data", json!({"vehicle_tag": BLUE_GHOST}))
        .await;
    assert!(is_error(&read));
    assert!(text_of(&read).contains("wake: true"), "{}", text_of(&read));
    assert!(
        harness.simulator.vehicle(BLUE_GHOST).unwrap().asleep,
        "a read woke the car"
    );
    let summary = structured(
        &harness
            .call("tesla_vehicle_state", json!({"vehicle_tag": BLUE_GHOST}))
            .await,
    );
    assert_eq!(summary["state"], json!("asleep"));

    harness.simulator.clear_requests();
    let result = harness
        .call_with_progress("tesla_honk_horn", json!({"vehicle_tag": BLUE_GHOST}))
        .await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let paths: Vec<String> = fleet_requests(&harness)
        .into_iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect();
    assert_eq!(
        paths.first().unwrap(),
        &format!("POST /api/1/vehicles/{BLUE_GHOST}/command/honk_horn")
    );
    assert_eq!(
        paths[1],
        format!("POST /api/1/vehicles/{BLUE_GHOST}/wake_up")
    );
    assert!(
        paths[2..paths.len() - 1]
            .iter()
            .all(|path| path == &format!("GET /api/1/vehicles/{BLUE_GHOST}")),
        "{paths:?}"
    );
    assert_eq!(
        paths.last().unwrap(),
        &format!("POST /api/1/vehicles/{BLUE_GHOST}/command/honk_horn")
    );
    assert_eq!(
        harness.simulator.vehicle(BLUE_GHOST).unwrap().horn_honks,
        1,
        "the command ran once"
    );
    let progress = harness.recorder.progress.lock().unwrap().clone();
    assert!(progress.len() >= 2, "{progress:?}");
    assert!(progress[0].message.as_deref().unwrap().contains("asleep"));
    assert!(
        progress
            .last()
            .unwrap()
            .message
            .as_deref()
            .unwrap()
            .contains("awake")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_is_not_retried_and_later_calls_fail_fast() {
    let harness = start(Auth::Token, false).await;
    harness.simulator.script(Script {
        vendor: Vendor::Fleet,
        method: Some("POST".into()),
        path_prefix: format!("/api/1/vehicles/{RED_ARROW}/command/honk_horn"),
        status: 429,
        headers: vec![("retry-after".into(), "3600".into())],
        body: json!({"response": null, "error": "Rate limit exceeded", "error_description": ""}),
        times: 5,
    });
    let first = harness.call("tesla_honk_horn", json!({})).await;
    assert!(is_error(&first));
    assert!(
        text_of(&first).contains("retry in 3600 s"),
        "{}",
        text_of(&first)
    );
    assert_eq!(
        fleet_requests(&harness).len(),
        1,
        "a 429 must not be retried"
    );
    let second = harness.call("tesla_honk_horn", json!({})).await;
    assert!(is_error(&second));
    assert!(
        text_of(&second).contains("not sent"),
        "{}",
        text_of(&second)
    );
    assert_eq!(
        fleet_requests(&harness).len(),
        1,
        "the second call reached Tesla"
    );
    assert_eq!(harness.simulator.vehicle(RED_ARROW).unwrap().horn_honks, 0);
    // Other endpoints are not held back.
    assert!(!is_error(
        &harness.call("tesla_flash_lights", json!({})).await
    ));
}

/// The next `times` Fleet requests answer 421 with the other region's base URL.
fn send_to_other_region(harness: &Harness, times: u32) {
    let other = harness.simulator.url(Vendor::FleetOtherRegion);
    harness.simulator.script(Script {
        vendor: Vendor::Fleet,
        method: None,
        path_prefix: "/api/1/".into(),
        status: 421,
        headers: vec![],
        body: json!({"response": null, "error": format!("user out of region, use base URL: {other}"), "error_description": ""}),
        times,
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_region_is_switched_to_and_remembered() {
    let mut harness = start(Auth::Token, true).await;
    send_to_other_region(&harness, 100);
    let result = harness.call("tesla_door_lock", json!({})).await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let vendors: Vec<Vendor> = fleet_requests(&harness)
        .iter()
        .map(|request| request.vendor)
        .collect();
    assert_eq!(vendors, vec![Vendor::Fleet, Vendor::FleetOtherRegion]);
    // Remembered in plugin state, across a restart.
    let table = tesla_table(&harness.simulator, harness.dir.path(), Auth::Token, true);
    restart_with(&mut harness, &table).await;
    harness.simulator.clear_requests();
    assert!(!is_error(
        &harness.call("tesla_flash_lights", json!({})).await
    ));
    let vendors: Vec<Vendor> = fleet_requests(&harness)
        .iter()
        .map(|request| request.vendor)
        .collect();
    assert_eq!(vendors, vec![Vendor::FleetOtherRegion]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_outside_the_allowlist_is_not_followed() {
    let harness = start(Auth::Token, false).await;
    send_to_other_region(&harness, 1);
    let result = harness.call("tesla_door_lock", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(text.contains("not in its egress allowlist"), "{text}");
    assert!(!harness.simulator.vehicle(RED_ARROW).unwrap().locked);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refreshed_and_the_rotated_refresh_token_survives_a_restart() {
    let mut harness = start(Auth::OAuth, false).await;
    let refresh_file = harness.dir.path().join("tesla-refresh-token");
    assert!(!is_error(&harness.call("tesla_door_lock", json!({})).await));
    assert_eq!(
        std::fs::read_to_string(&refresh_file).unwrap(),
        "sim-fleet-refresh-1"
    );

    harness.simulator.expire_fleet_tokens();
    let result = harness.call("tesla_flash_lights", json!({})).await;
    assert!(!is_error(&result), "{}", text_of(&result));
    assert_eq!(
        std::fs::read_to_string(&refresh_file).unwrap(),
        "sim-fleet-refresh-2"
    );
    let statuses: Vec<String> = fleet_requests(&harness)
        .iter()
        .map(|request| request.path.clone())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|path| path.ends_with("/flash_lights"))
            .count(),
        2,
        "{statuses:?}"
    );
    assert!(
        !harness.stderr.lock().unwrap().contains("sim-fleet-access"),
        "a token reached the log"
    );

    // Killed right after the refresh: the next process uses the rotated refresh token.
    let table = tesla_table(&harness.simulator, harness.dir.path(), Auth::OAuth, false);
    restart_with(&mut harness, &table).await;
    harness.simulator.expire_fleet_tokens();
    assert!(!is_error(&harness.call("tesla_honk_horn", json!({})).await));
    assert_eq!(
        std::fs::read_to_string(&refresh_file).unwrap(),
        "sim-fleet-refresh-3"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_car_that_needs_signed_commands_gets_a_clear_message() {
    let harness = start(Auth::Token, false).await;
    harness.simulator.require_signed_commands(RED_ARROW);
    let result = harness.call("tesla_door_lock", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(text.contains("signed commands"), "{text}");
    assert!(text.contains("tesla-http-proxy"), "{text}");
    assert!(
        !is_error(&harness.call("tesla_get_vehicle_data", json!({})).await),
        "reads keep working"
    );
}
