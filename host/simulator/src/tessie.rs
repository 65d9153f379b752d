//! Tessie's API (<https://developer.tessie.com>): `GET /vehicles`, `GET /{vin}/state`,
//! `GET /{vin}/status`, `POST /{vin}/wake`, `POST /{vin}/command/{name}` with parameters in
//! the query and `{"result": bool}` answers. Like Tessie, a command to a sleeping car wakes it
//! first, and `/state` of a sleeping car returns its last known data.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{SimState, SimVehicle, Vendor, bearer_matches};

type Shared = State<Arc<SimState>>;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/vehicles", get(vehicles))
        .route("/{vin}/state", get(vehicle_state))
        .route("/{vin}/status", get(status))
        .route("/{vin}/wake", post(wake))
        .route("/{vin}/command/{name}", post(command))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    (!bearer_matches(headers, Vendor::Tessie.token())).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: invalid or expired access token",
        )
    })
}

fn with_vehicle<T>(
    state: &SimState,
    vin: &str,
    action: impl FnOnce(&mut SimVehicle) -> T,
) -> Option<T> {
    state
        .vehicles()
        .iter_mut()
        .find(|vehicle| vehicle.vin == vin)
        .map(action)
}

fn vehicle_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Vehicle not found")
}

async fn vehicles(State(state): Shared, headers: HeaderMap) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let results: Vec<Value> = state
        .vehicles()
        .iter()
        .map(|vehicle| {
            json!({
                "vin": vehicle.vin,
                "is_active": true,
                "is_archived_manually": false,
                "last_state": vehicle.tesla_vehicle_data(),
            })
        })
        .collect();
    Json(json!({ "results": results })).into_response()
}

async fn vehicle_state(
    State(state): Shared,
    headers: HeaderMap,
    Path(vin): Path<String>,
) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    match with_vehicle(&state, &vin, |vehicle| vehicle.tesla_vehicle_data()) {
        Some(data) => Json(data).into_response(),
        None => vehicle_not_found(),
    }
}

async fn status(State(state): Shared, headers: HeaderMap, Path(vin): Path<String>) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    match with_vehicle(&state, &vin, |vehicle| {
        if vehicle.asleep { "asleep" } else { "awake" }
    }) {
        Some(word) => Json(json!({ "status": word })).into_response(),
        None => vehicle_not_found(),
    }
}

/// Tessie's wake blocks until the car is awake.
async fn wake_up(state: &SimState, vin: &str) -> Option<()> {
    let asleep = with_vehicle(state, vin, |vehicle| vehicle.asleep)?;
    if asleep {
        tokio::time::sleep(state.options.wake_delay).await;
        with_vehicle(state, vin, |vehicle| vehicle.asleep = false);
    }
    Some(())
}

async fn wake(State(state): Shared, headers: HeaderMap, Path(vin): Path<String>) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    match wake_up(&state, &vin).await {
        Some(()) => Json(json!({ "result": true })).into_response(),
        None => vehicle_not_found(),
    }
}

async fn command(
    State(state): Shared,
    headers: HeaderMap,
    Path((vin, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    if wake_up(&state, &vin).await.is_none() {
        return vehicle_not_found();
    }
    let temperature = query
        .get("temperature")
        .and_then(|value| value.parse::<f64>().ok());
    let destination = query.get("value").cloned();
    let outcome = with_vehicle(&state, &vin, |vehicle| {
        apply(vehicle, &name, temperature, destination)
    });
    match outcome {
        Some(Ok(())) => Json(json!({ "result": true })).into_response(),
        Some(Err((status, message))) => error(status, message),
        None => vehicle_not_found(),
    }
}

fn apply(
    vehicle: &mut SimVehicle,
    name: &str,
    temperature: Option<f64>,
    destination: Option<String>,
) -> Result<(), (StatusCode, &'static str)> {
    match name {
        "lock" => vehicle.locked = true,
        "unlock" => vehicle.locked = false,
        "start_climate" => vehicle.climate_on = true,
        "stop_climate" => {
            vehicle.climate_on = false;
            vehicle.defrost_mode = 0;
        }
        "set_temperatures" => {
            let celsius = temperature
                .filter(|celsius| (15.0..=28.0).contains(celsius))
                .ok_or((
                    StatusCode::BAD_REQUEST,
                    "temperature must be between 15 and 28",
                ))?;
            vehicle.driver_temp_c = celsius;
            vehicle.passenger_temp_c = celsius;
        }
        "start_max_defrost" => {
            vehicle.defrost_mode = 2;
            vehicle.climate_on = true;
        }
        "stop_max_defrost" => vehicle.defrost_mode = 0,
        "activate_front_trunk" => vehicle.front_trunk = 1,
        "activate_rear_trunk" => vehicle.rear_trunk = if vehicle.rear_trunk == 0 { 1 } else { 0 },
        "open_charge_port" => vehicle.charge_port_door_open = true,
        "close_charge_port" => vehicle.charge_port_door_open = false,
        "enable_sentry" => vehicle.sentry_mode = true,
        "disable_sentry" => vehicle.sentry_mode = false,
        "flash" => vehicle.light_flashes += 1,
        "honk" => vehicle.horn_honks += 1,
        "share" => {
            let destination = destination
                .filter(|text| !text.is_empty())
                .ok_or((StatusCode::BAD_REQUEST, "value is required"))?;
            vehicle.navigation_destination = Some(destination);
        }
        _ => return Err((StatusCode::NOT_FOUND, "Unknown command")),
    }
    Ok(())
}
