//! Tesla's Fleet API (and MyTeslaMate's proxy of it): `{"response": …}` answers, Tesla's error
//! bodies, sleeping cars (408 until woken; `wake_up` returns at once and the car comes online
//! after the wake delay), commands as state changes, energy sites, charging history, users,
//! fleet_status, and the OAuth token endpoint with rotating, single-use refresh tokens.
//! Requests are answered by one handler that matches the path, so a new endpoint is one arm.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::vehicle::now_ms;
use super::{SimState, SimVehicle, bearer_matches};

pub const STATIC_TOKEN: &str = "sim-fleet-token";
pub const FIRST_REFRESH_TOKEN: &str = "sim-fleet-refresh-0";
pub const ENERGY_SITE_ID: u64 = 2_252_147_483_648;

type Shared = State<Arc<SimState>>;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/oauth2/v3/token", axum::routing::post(token))
        .fallback(api)
}

/// Tesla's error shape.
fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"response": null, "error": message, "error_description": ""})),
    )
        .into_response()
}

fn ok(value: Value) -> Response {
    Json(json!({ "response": value })).into_response()
}

/// A fixed answer from fixtures/fleet.json, by name.
fn canned(name: &str) -> Value {
    static CANNED: LazyLock<Value> = LazyLock::new(|| {
        serde_json::from_str(include_str!("../fixtures/fleet.json"))
            .expect("the Fleet fixtures are valid JSON")
    });
    CANNED
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("fixtures/fleet.json has no `{name}`"))
}

fn command_ok() -> Response {
    ok(json!({"result": true, "reason": ""}))
}

pub(crate) async fn token(State(state): Shared, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let fleet = &state.fleet;
    let mut refresh = fleet
        .refresh_token
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if form.get("grant_type").map(String::as_str) != Some("refresh_token")
        || form.get("refresh_token") != Some(&*refresh)
    {
        let refusal =
            json!({"error": "invalid_grant", "error_description": "The refresh_token is invalid"});
        return (StatusCode::UNAUTHORIZED, Json(refusal)).into_response();
    }
    let round = fleet.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
    *refresh = format!("sim-fleet-refresh-{round}");
    let access = format!("sim-fleet-access-{round}");
    fleet.lock_tokens().push(access.clone());
    Json(json!({
        "access_token": access,
        "refresh_token": *refresh,
        "id_token": "sim",
        "expires_in": 28800,
        "token_type": "Bearer"
    }))
    .into_response()
}

fn authorised(state: &SimState, headers: &HeaderMap) -> bool {
    state
        .fleet
        .lock_tokens()
        .iter()
        .any(|token| bearer_matches(headers, token))
}

async fn api(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if !authorised(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "token expired (401)");
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["api", "1", "products"]) => products(&state),
        ("POST", ["api", "1", "vehicles", "fleet_status"]) => fleet_status(&state, &body),
        ("GET", ["api", "1", "vehicles"]) => ok(Value::from(
            state
                .vehicles()
                .iter()
                .map(vehicle_summary)
                .collect::<Vec<_>>(),
        )),
        (_, ["api", "1", "vehicles", tag, rest @ ..]) => {
            vehicle(&state, method.as_str(), tag, rest, &body)
        }
        (_, ["api", "1", "energy_sites", site, rest @ ..]) => {
            energy_site(&state, method.as_str(), site, rest, &query)
        }
        ("GET", ["api", "1", "users", "me"]) => ok(canned("user")),
        ("GET", ["api", "1", "users", "region"]) => {
            let mut region = canned("region");
            if let Some(home) = state.fleet.home_base_url.get() {
                region["fleet_api_base_url"] = Value::from(home.as_str());
            }
            ok(region)
        }
        ("GET", ["api", "1", "users", "feature_config"]) => {
            ok(json!({"signaling": {"enabled": true}}))
        }
        ("GET", ["api", "1", "users", "orders"]) => ok(json!([])),
        ("GET", ["api", "1", "subscriptions"]) | ("GET", ["api", "1", "vehicle_subscriptions"]) => {
            ok(json!([]))
        }
        ("POST", ["api", "1", "subscriptions"])
        | ("POST", ["api", "1", "vehicle_subscriptions"]) => {
            ok(json!({"count": body["vehicle_ids"].as_array().map_or(0, Vec::len)}))
        }
        ("GET", ["api", "1", "dx", "vehicles", "options"]) => ok(canned("vehicle_options")),
        ("GET", ["api", "1", "dx", "vehicles", "upgrades", "eligibility"]) => {
            ok(json!({"eligible": []}))
        }
        ("GET", ["api", "1", "dx", "vehicles", "subscriptions", "eligibility"]) => {
            ok(json!({"eligible": []}))
        }
        ("GET", ["api", "1", "dx", "warranty", "details"]) => ok(canned("warranty")),
        ("GET", ["api", "1", "dx", "charging", "history"]) => ok(canned("charging_history")),
        ("GET", ["api", "1", "dx", "charging", "sessions"]) => {
            ok(json!({"data": [], "totalResults": 0}))
        }
        ("GET", ["api", "1", "dx", "charging", "invoice", _id]) => (
            [("content-type", "application/pdf")],
            b"%PDF-1.4 simulated invoice".to_vec(),
        )
            .into_response(),
        _ => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

fn vehicle_summary(car: &SimVehicle) -> Value {
    json!({
        "id": car.id, "vehicle_id": car.vehicle_id, "vin": car.vin, "display_name": car.display_name,
        "state": car.state_word(), "in_service": false, "id_s": car.id.to_string(),
        "calendar_enabled": true, "api_version": 84, "access_type": "OWNER"
    })
}

fn products(state: &SimState) -> Response {
    let mut products: Vec<Value> = state.vehicles().iter().map(vehicle_summary).collect();
    let mut energy_site = canned("energy_product");
    energy_site["energy_site_id"] = json!(ENERGY_SITE_ID);
    products.push(energy_site);
    let count = products.len();
    Json(json!({"response": products, "count": count})).into_response()
}

fn fleet_status(state: &SimState, body: &Value) -> Response {
    let signed = state.fleet.lock_signed_only();
    let protocol_cars = state.fleet.lock_protocol_cars();
    let vins: Vec<String> = body["vins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|vin| vin.as_str().map(str::to_string))
        .collect();
    let info: serde_json::Map<String, Value> = vins
        .iter()
        .map(|vin| {
            let firmware = state
                .vehicles()
                .iter()
                .find(|car| &car.vin == vin)
                .map(|car| car.car_version.clone())
                .unwrap_or_default();
            (
                vin.clone(),
                json!({
                    "firmware_version": firmware,
                    "vehicle_command_protocol_required": signed.contains(vin),
                    "discounted_device_data": false
                }),
            )
        })
        .collect();
    // A car that speaks the protocol counts as paired once some key is; the others, as before.
    let (paired, unpaired): (Vec<&String>, Vec<&String>) = vins.iter().partition(|vin| {
        protocol_cars
            .get(*vin)
            .is_none_or(|car| !car.paired.is_empty())
    });
    ok(json!({"key_paired_vins": paired, "unpaired_vins": unpaired, "vehicle_info": info}))
}

fn vehicle(
    state: &Arc<SimState>,
    method: &str,
    tag: &str,
    rest: &[&str],
    body: &Value,
) -> Response {
    let Some(car) = state
        .vehicles()
        .iter()
        .find(|car| car.vin == tag || car.id.to_string() == tag)
        .cloned()
    else {
        return error(StatusCode::NOT_FOUND, "vehicle not found");
    };
    let asleep = error(
        StatusCode::REQUEST_TIMEOUT,
        "vehicle unavailable: vehicle is offline or asleep",
    );
    match (method, rest) {
        ("GET", []) => ok(vehicle_summary(&car)),
        ("GET", ["vehicle_data"]) if car.asleep => asleep,
        ("GET", ["vehicle_data"]) => ok(car.tesla_vehicle_data()),
        ("POST", ["wake_up"]) => {
            if car.asleep {
                let state = state.clone();
                let vin = car.vin.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(state.options.wake_delay).await;
                    if let Some(car) = state.vehicles().iter_mut().find(|car| car.vin == vin) {
                        car.asleep = false;
                    }
                });
            }
            ok(vehicle_summary(&car))
        }
        ("POST", ["command" | "signed_command", ..]) if car.asleep => asleep,
        ("POST", ["signed_command"]) => {
            let mut protocol_cars = state.fleet.lock_protocol_cars();
            let Some(protocol_car) = protocol_cars.get_mut(&car.vin) else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "vehicle does not support signed commands",
                );
            };
            let mut cars = state.vehicles();
            let Some(vehicle) = cars.iter_mut().find(|candidate| candidate.vin == car.vin) else {
                return error(StatusCode::NOT_FOUND, "vehicle not found");
            };
            match protocol_car.handle(body, vehicle) {
                Ok(answer) => Json(answer).into_response(),
                Err(message) => error(StatusCode::BAD_REQUEST, &message),
            }
        }
        ("POST", ["command", name]) => {
            if state.fleet.lock_signed_only().contains(&car.vin) && *name != "navigation_request" {
                return error(
                    StatusCode::FORBIDDEN,
                    "Tesla Vehicle Command Protocol required, please refer to the documentation here: https://developer.tesla.com/docs/fleet-api#2023-10-09-rest-api-vehicle-commands-endpoint-deprecation-warning",
                );
            }
            let mut cars = state.vehicles();
            let Some(car) = cars.iter_mut().find(|candidate| candidate.vin == car.vin) else {
                return error(StatusCode::NOT_FOUND, "vehicle not found");
            };
            match apply(car, name, body) {
                Ok(()) => command_ok(),
                Err(reason) => ok(json!({"result": false, "reason": reason})),
            }
        }
        ("GET", ["mobile_enabled"]) => ok(Value::Bool(true)),
        ("GET", ["nearby_charging_sites"]) => ok(json!({
            "congestion_sync_time_utc_secs": now_ms() / 1000,
            "destination_charging": [{"name": "Hotel Sim", "distance_miles": 1.3, "type": "destination",
                                      "location": {"lat": 37.49, "long": -121.94}}],
            "superchargers": [{"name": "Fremont, CA", "distance_miles": 2.1, "type": "supercharger",
                               "available_stalls": 7, "total_stalls": 12, "site_closed": false,
                               "location": {"lat": 37.50, "long": -121.96}}],
            "timestamp": now_ms()
        })),
        ("GET", ["service_data"]) => ok(json!({"service_status": "not_in_service"})),
        ("GET", ["release_notes"]) => ok(json!({"release_notes": [
            {"title": "Simulated update", "subtitle": car.car_version, "description": "Improvements."}
        ]})),
        ("GET", ["recent_alerts"]) => ok(canned("recent_alerts")),
        ("GET", ["drivers"]) => ok(canned("drivers")),
        ("DELETE", ["drivers"]) => ok(json!("ok")),
        ("GET", ["invitations"]) => ok(json!([])),
        ("POST", ["invitations"]) => ok(canned("invitation")),
        ("GET", ["fleet_telemetry_config"]) => ok(json!({"synced": true, "config": null})),
        ("DELETE", ["fleet_telemetry_config"]) => ok(json!({"updated_vehicles": 1})),
        ("GET", ["fleet_telemetry_errors"]) => ok(json!({"fleet_telemetry_errors": []})),
        _ => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

/// A command's effect on the simulated car; Err is Tesla's `reason` for `result: false`.
pub(crate) fn apply(car: &mut SimVehicle, name: &str, body: &Value) -> Result<(), String> {
    let number = |key: &str| body[key].as_f64().ok_or_else(|| format!("missing {key}"));
    let flag = |key: &str| body[key].as_bool().ok_or_else(|| format!("missing {key}"));
    match name {
        "door_lock" => car.locked = true,
        "door_unlock" => car.locked = false,
        "actuate_trunk" => match body["which_trunk"].as_str() {
            Some("front") => car.front_trunk = 1,
            Some("rear") => car.rear_trunk = u8::from(car.rear_trunk == 0),
            _ => return Err("invalid_value: which_trunk".into()),
        },
        "auto_conditioning_start" => car.climate_on = true,
        "auto_conditioning_stop" => car.climate_on = false,
        "set_temps" => {
            car.driver_temp_c = number("driver_temp")?;
            car.passenger_temp_c = number("passenger_temp")?;
        }
        "set_preconditioning_max" => car.defrost_mode = if flag("on")? { 2 } else { 0 },
        "set_sentry_mode" => car.sentry_mode = flag("on")?,
        "charge_port_door_open" => car.charge_port_door_open = true,
        "charge_port_door_close" => car.charge_port_door_open = false,
        "charge_start" if car.charging_state == "Disconnected" => {
            return Err("not_connected".into());
        }
        "charge_start" => car.charging_state = "Charging".into(),
        "charge_stop" if car.charging_state == "Charging" => car.charging_state = "Stopped".into(),
        "set_charge_limit" => car.charge_limit_soc = number("percent")?,
        "charge_standard" => car.charge_limit_soc = 80.0,
        "charge_max_range" => car.charge_limit_soc = 100.0,
        "flash_lights" => car.light_flashes += 1,
        "honk_horn" => car.horn_honks += 1,
        "navigation_request" => {
            let address = body["value"]["android.intent.extra.TEXT"]
                .as_str()
                .ok_or("missing value")?;
            car.navigation_destination = Some(address.to_string());
        }
        "set_vehicle_name" => {
            car.display_name = body["vehicle_name"]
                .as_str()
                .ok_or("missing vehicle_name")?
                .to_string();
        }
        "set_cop_temp" if body.get("cop_temp").is_none() => return Err("missing cop_temp".into()),
        "guest_mode" if body.get("enable").is_none() => return Err("missing enable".into()),
        "set_bioweapon_mode" if body.get("manual_override").is_none() => {
            return Err("missing manual_override param".into());
        }
        _ => {}
    }
    Ok(())
}

fn energy_site(
    state: &SimState,
    method: &str,
    site: &str,
    rest: &[&str],
    query: &HashMap<String, String>,
) -> Response {
    if site != ENERGY_SITE_ID.to_string() {
        return error(StatusCode::NOT_FOUND, "energy site not found");
    }
    let updated = || ok(json!({"code": 201, "message": "Updated"}));
    let _ = state;
    match (method, rest) {
        ("GET", ["site_info"]) => ok(canned("site_info")),
        ("GET", ["live_status"]) => ok(canned("live_status")),
        ("GET", ["calendar_history"]) => match query.get("kind").map(String::as_str) {
            Some("energy") => ok(
                json!({"serial_number": "1152100-00-E--TG0000000000", "period": query.get("period"), "time_series": [
                    {"timestamp": query.get("start_date"), "solar_energy_exported": 21_300.0, "grid_energy_imported": 4_100.0,
                     "battery_energy_exported": 6_900.0, "consumer_energy_imported_from_grid": 4_100.0}
                ]}),
            ),
            Some("backup") => ok(canned("backup_history")),
            _ => error(StatusCode::BAD_REQUEST, "invalid kind"),
        },
        ("GET", ["telemetry_history"]) => ok(canned("telemetry_history")),
        (
            "POST",
            [
                "operation"
                | "backup"
                | "off_grid_vehicle_charging_reserve"
                | "storm_mode"
                | "grid_import_export"
                | "time_of_use_settings",
            ],
        ) => updated(),
        _ => error(StatusCode::NOT_FOUND, "not_found"),
    }
}
