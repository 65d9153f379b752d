//! Smartcar's API v3 on one port: the client-credentials token endpoint (`/oauth2/token`, as
//! iam.smartcar.com), the Vehicle API under `/v3` and the Management API under
//! `/management/v3`. Answers are JSON:API documents (`data`, `meta`, `links`, `included`),
//! errors are `{"errors": [{status, type, code, title, detail, resolution}]}`.
//!
//! Two users and three cars of different makes (fixtures/smartcar.json): an electric VW, a
//! combustion Ford that reports in US units, and a Hyundai that is asleep. Lock and unlock
//! complete at once (200); charge and navigation commands answer 202 and finish after the
//! simulator's wake delay, read through the command's execution. Rate limits and other
//! failures are scripted with [`super::Script`]; a missing permission is refused as Smartcar
//! does, from each connection's granted permissions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::{Value, json};

use super::SimState;
use super::vehicle::now_ms;

pub const CLIENT_ID: &str = "sim-smartcar-client";
pub const CLIENT_SECRET: &str = "sim-smartcar-client-secret";
/// The fixtures' first user and that user's electric car, the demo's defaults.
pub const DEMO_USER: &str = "sc-user-alex";
pub const DEMO_VEHICLE: &str = "sc-veh-vw-id4";
pub const COMBUSTION_VEHICLE: &str = "sc-veh-ford-f150";
const DEFAULT_TOKEN_LIFETIME_SECONDS: u64 = 3600;
const DEFAULT_PAGE_SIZE: usize = 10;
const KM_PER_MILE: f64 = 1.609_344;
const KPA_PER_PSI: f64 = 6.894_757;
const FIXTURES: &str = include_str!("../fixtures/smartcar.json");

type Shared = State<Arc<SimState>>;
/// An error answer, boxed because a `Response` is large.
type Refusal = Box<Response>;

#[derive(Debug, Clone, Deserialize)]
pub struct Car {
    pub id: String,
    pub user_id: String,
    pub connection_id: String,
    pub connected_at: String,
    pub make: String,
    pub model: String,
    pub year: u32,
    pub powertrain: String,
    pub mode: String,
    pub vin: String,
    pub nickname: Option<String>,
    pub permissions: Vec<String>,
    /// Reports miles, °F, psi and mph, as US cars do.
    pub imperial: bool,
    pub asleep: bool,
    pub locked: bool,
    #[serde(default)]
    pub battery_level: Option<f64>,
    #[serde(default)]
    pub battery_range_km: Option<f64>,
    #[serde(default)]
    pub plugged_in: bool,
    #[serde(default)]
    pub charging: bool,
    #[serde(default)]
    pub charge_limit: Option<f64>,
    #[serde(default)]
    pub fuel_level: Option<f64>,
    #[serde(default)]
    pub fuel_range_km: Option<f64>,
    #[serde(default)]
    pub oil_life: Option<f64>,
    pub odometer_km: f64,
    pub latitude: f64,
    pub longitude: f64,
    pub heading: f64,
    pub inside_c: f64,
    pub outside_c: f64,
    pub tires_kpa: Option<[f64; 4]>,
    pub doors_open: [bool; 4],
    #[serde(default)]
    pub destination: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Deserialize)]
struct Fixtures {
    applications: Vec<Value>,
    cars: Vec<Car>,
}

/// A command Smartcar accepted and the car carries out later.
#[derive(Debug, Clone)]
struct Execution {
    id: String,
    vehicle_id: String,
    command_type: String,
    parameters: Value,
    executed_at_ms: u64,
    due: Instant,
    done: bool,
}

/// The simulated Smartcar application: its tokens, cars and pending commands.
pub struct Account {
    token_requests: AtomicU32,
    token_lifetime_seconds: AtomicU64,
    tokens: Mutex<Vec<String>>,
    cars: Mutex<Vec<Car>>,
    applications: Vec<Value>,
    executions: Mutex<Vec<Execution>>,
    /// Commands as the vehicle received them (after any asynchronous delay), for the tests.
    pub commands: Mutex<Vec<(String, String)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Account {
    pub fn new() -> Account {
        let fixtures: Fixtures =
            serde_json::from_str(FIXTURES).expect("the Smartcar fixtures are valid JSON");
        Account {
            token_requests: AtomicU32::new(0),
            token_lifetime_seconds: AtomicU64::new(DEFAULT_TOKEN_LIFETIME_SECONDS),
            tokens: Mutex::new(Vec::new()),
            cars: Mutex::new(fixtures.cars),
            applications: fixtures.applications,
            executions: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
        }
    }

    /// How many times the token endpoint issued a token.
    pub fn token_requests(&self) -> u32 {
        self.token_requests.load(Ordering::SeqCst)
    }

    /// The `expires_in` of the tokens issued from now on.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.token_lifetime_seconds.store(seconds, Ordering::SeqCst);
    }

    /// Every issued token stops working, as when Smartcar revokes or expires them early.
    pub fn expire_tokens(&self) {
        lock(&self.tokens).clear();
    }

    pub fn cars(&self) -> MutexGuard<'_, Vec<Car>> {
        lock(&self.cars)
    }

    pub fn car(&self, id: &str) -> Option<Car> {
        self.cars().iter().find(|car| car.id == id).cloned()
    }

    /// Carries out the commands whose time has come.
    fn settle(&self) {
        let now = Instant::now();
        let mut executions = lock(&self.executions);
        for execution in executions
            .iter_mut()
            .filter(|run| !run.done && run.due <= now)
        {
            execution.done = true;
            let mut cars = self.cars();
            if let Some(car) = cars.iter_mut().find(|car| car.id == execution.vehicle_id) {
                apply(car, &execution.command_type, &execution.parameters);
                lock(&self.commands).push((car.id.clone(), execution.command_type.clone()));
            }
        }
    }
}

impl Default for Account {
    fn default() -> Self {
        Account::new()
    }
}

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/v3/connections", get(list_connections))
        .route(
            "/v3/connections/{id}",
            get(get_connection).delete(delete_connection),
        )
        .route("/v3/users/{id}", axum::routing::delete(delete_user))
        .route("/v3/vehicles/{id}", get(get_vehicle))
        .route("/v3/vehicles/{id}/signals", get(list_signals))
        .route("/v3/vehicles/{id}/signals/{code}", get(get_signal))
        .route("/v3/vehicles/{id}/commands/{group}/{action}", post(command))
        .route(
            "/v3/vehicles/{id}/command-executions/{execution}",
            get(get_execution),
        )
        .route("/management/v3/applications", get(list_applications))
        .route("/management/v3/applications/{id}", get(get_application))
        .route(
            "/management/v3/applications/{id}/secrets",
            get(list_secrets),
        )
}

/// Smartcar's v3 error document.
pub fn error(status: StatusCode, kind: &str, code: &str, detail: &str) -> Response {
    let resolution = match kind {
        "RATE_LIMIT" | "VEHICLE_STATE" | "UPSTREAM" | "SERVER" => "RETRY_LATER",
        "CONNECTED_SERVICES_ACCOUNT" => "REAUTHENTICATE",
        _ => "CONTACT_SUPPORT",
    };
    let body = json!({"errors": [{
        "status": status.as_u16().to_string(),
        "type": kind,
        "code": code,
        "title": status.canonical_reason().unwrap_or("Error"),
        "detail": detail,
        "resolution": {"type": resolution},
        "links": {"about": format!("https://smartcar.com/docs/errors/api-errors/v3/{}", kind.to_ascii_lowercase())}
    }]});
    (status, Json(body)).into_response()
}

async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let form_encoded = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded || form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        let refusal = json!({"error": "invalid_request", "error_description": "grant_type must be client_credentials"});
        return (StatusCode::BAD_REQUEST, Json(refusal)).into_response();
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        let refusal = json!({"error": "invalid_client", "error_description": "Invalid client_id or client_secret"});
        return (StatusCode::UNAUTHORIZED, Json(refusal)).into_response();
    }
    let account = &state.smartcar;
    let round = account.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let access = format!("sim-smartcar-access-{round}");
    lock(&account.tokens).push(access.clone());
    Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": account.token_lifetime_seconds.load(Ordering::SeqCst),
    }))
    .into_response()
}

fn unauthorised(state: &SimState, headers: &HeaderMap) -> Option<Response> {
    let known = lock(&state.smartcar.tokens)
        .iter()
        .any(|token| super::bearer_matches(headers, token));
    (!known).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION",
            "UNAUTHORIZED",
            "The access token is missing, invalid or expired.",
        )
    })
}

fn user_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("sc-user-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// The car `id` as seen by the user in `sc-user-id`, or the error Smartcar would give.
fn car_for_user(state: &SimState, headers: &HeaderMap, id: &str) -> Result<Car, Refusal> {
    let Some(user) = user_header(headers) else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            "INVALID_INPUT_FORMAT",
            "The sc-user-id header is required.",
        )));
    };
    state.smartcar.settle();
    match state.smartcar.car(id) {
        Some(car) if car.user_id == user => Ok(car),
        _ => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "PATH",
            &format!("No vehicle {id} is connected for user {user}."),
        ))),
    }
}

fn permission_error(permission: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "PERMISSION",
        "PERMISSION",
        &format!(
            "Your application has not been granted the {permission} permission for this vehicle."
        ),
    )
}

fn vehicle_resource(car: &Car) -> Value {
    json!({
        "id": car.id,
        "type": "vehicle",
        "attributes": {
            "make": car.make, "model": car.model, "year": car.year,
            "mode": car.mode, "powertrainType": car.powertrain,
        },
        "links": {"self": format!("/vehicles/{}", car.id)}
    })
}

fn connection_resource(car: &Car) -> Value {
    json!({
        "id": car.connection_id,
        "type": "connection",
        "attributes": {
            "permissions": car.permissions,
            "vehicle": {
                "make": car.make, "model": car.model, "year": car.year,
                "mode": car.mode, "powertrainType": car.powertrain,
            }
        },
        "relationships": {
            "vehicle": {"data": {"id": car.id, "type": "vehicle"},
                        "links": {"related": format!("/vehicles/{}", car.id)}},
            "user": {"data": {"id": car.user_id, "type": "user"}}
        },
        "meta": {"createdAt": car.connected_at, "updatedAt": car.connected_at},
        "links": {"self": format!("/connections/{}", car.connection_id)}
    })
}

/// One page of `items` with JSON:API paging `meta` and `links`.
fn paged(path: &str, items: Vec<Value>, number: usize, size: usize, names: (&str, &str)) -> Value {
    let total = items.len();
    let last = total.div_ceil(size).max(1);
    let page: Vec<Value> = items
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .collect();
    let link = |page: usize| Value::from(format!("{path}?{}={page}&{}={size}", names.0, names.1));
    json!({
        "data": page,
        "meta": {"pageNumber": number, "pageSize": size, "totalCount": total},
        "links": {
            "self": link(number),
            "first": link(1),
            "previous": if number > 1 { link(number - 1) } else { Value::Null },
            "next": if number < last { link(number + 1) } else { Value::Null },
            "last": link(last),
        }
    })
}

fn page_numbers(
    query: &HashMap<String, String>,
    names: (&str, &str),
) -> Result<(usize, usize), Refusal> {
    let read = |name: &str, default: usize| match query.get(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION",
                    "INVALID_INPUT_FORMAT",
                    &format!("{name} must be an integer from 1 to 100."),
                ))
            }),
    };
    Ok((read(names.0, 1)?, read(names.1, DEFAULT_PAGE_SIZE)?))
}

async fn list_connections(
    State(state): Shared,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    let names = ("page[number]", "page[size]");
    let (number, size) = match page_numbers(&query, names) {
        Ok(numbers) => numbers,
        Err(refusal) => return *refusal,
    };
    let wanted = |key: &str| query.get(key).cloned();
    let mode = wanted("filter[vehicle.mode]");
    let mut cars: Vec<Car> = state
        .smartcar
        .cars()
        .iter()
        .filter(|car| wanted("filter[userId]").is_none_or(|user| car.user_id == user))
        .filter(|car| wanted("filter[vehicleId]").is_none_or(|id| car.id == id))
        .filter(|car| mode.as_deref().is_none_or(|mode| car.mode == mode))
        .cloned()
        .collect();
    // Newest first, as Smartcar sorts connections.
    cars.sort_by(|a, b| b.connected_at.cmp(&a.connected_at));
    let items = cars.iter().map(connection_resource).collect();
    Json(paged("/connections", items, number, size, names)).into_response()
}

async fn get_connection(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    let found = state
        .smartcar
        .cars()
        .iter()
        .find(|car| car.connection_id == id)
        .map(connection_resource);
    match found {
        Some(resource) => Json(json!({ "data": resource })).into_response(),
        None => not_found("connection", &id),
    }
}

fn not_found(what: &str, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "PATH",
        &format!("No {what} with ID {id}."),
    )
}

async fn delete_connection(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    let mut cars = state.smartcar.cars();
    let before = cars.len();
    cars.retain(|car| car.connection_id != id);
    if cars.len() == before {
        return not_found("connection", &id);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_user(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    let mut cars = state.smartcar.cars();
    let before = cars.len();
    cars.retain(|car| car.user_id != id);
    if cars.len() == before {
        return not_found("user", &id);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn get_vehicle(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    match state.smartcar.car(&id) {
        Some(car) => Json(json!({ "data": vehicle_resource(&car) })).into_response(),
        None => not_found("vehicle", &id),
    }
}

/// (group, permission) of a signal code's prefix.
fn group_of(code: &str) -> (&'static str, &'static str) {
    match code.split('-').next().unwrap_or_default() {
        "charge" => ("Charge", "read_charge"),
        "climate" => ("Climate", "read_thermometer"),
        "closure" => ("Closure", "read_security"),
        "connectivitystatus" => ("ConnectivityStatus", "read_vehicle_info"),
        "internalcombustionengine" if code.ends_with("oillife") => {
            ("InternalCombustionEngine", "read_engine_oil")
        }
        "internalcombustionengine" => ("InternalCombustionEngine", "read_fuel"),
        "location" => ("Location", "read_location"),
        "motion" => ("Motion", "read_speedometer"),
        "odometer" => ("Odometer", "read_odometer"),
        "tractionbattery" => ("TractionBattery", "read_battery"),
        "vehicleidentification" if code.ends_with("vin") => ("VehicleIdentification", "read_vin"),
        "vehicleidentification" => ("VehicleIdentification", "read_vehicle_info"),
        "wheel" => ("Wheel", "read_tires"),
        _ => ("Other", "read_vehicle_info"),
    }
}

/// Every signal the car reports, as (code, body), in its own units.
fn signal_bodies(car: &Car) -> Vec<(&'static str, Value)> {
    let (distance_unit, distance) = if car.imperial {
        ("miles", 1.0 / KM_PER_MILE)
    } else {
        ("kilometers", 1.0)
    };
    let round = |value: f64| (value * 10.0).round() / 10.0;
    let temperature = |celsius: f64| {
        if car.imperial {
            json!({"value": round(celsius * 9.0 / 5.0 + 32.0), "unit": "fahrenheit"})
        } else {
            json!({"value": celsius, "unit": "celsius"})
        }
    };
    let doors: Vec<Value> = car
        .doors_open
        .iter()
        .enumerate()
        .map(|(index, open)| json!({"row": index / 2, "column": index % 2, "isOpen": open}))
        .collect();
    let mut bodies = vec![
        ("vehicleidentification-vin", json!({"value": car.vin})),
        ("connectivitystatus-isasleep", json!({"value": car.asleep})),
        ("connectivitystatus-isonline", json!({"value": true})),
        ("closure-islocked", json!({"value": car.locked})),
        ("closure-doors", json!({"values": doors})),
        ("closure-fronttrunk", json!({"isOpen": false})),
        ("closure-reartrunk", json!({"isOpen": false})),
        (
            "odometer-traveleddistance",
            json!({"value": round(car.odometer_km * distance), "unit": distance_unit}),
        ),
        (
            "location-preciselocation",
            json!({"latitude": car.latitude, "longitude": car.longitude, "heading": car.heading,
                   "direction": "N", "locationType": "GPS"}),
        ),
        (
            "motion-currentspeed",
            json!({"value": 0.0, "unit": if car.imperial { "mph" } else { "km/h" }}),
        ),
        ("climate-internaltemperature", temperature(car.inside_c)),
        ("climate-externaltemperature", temperature(car.outside_c)),
    ];
    if let Some(name) = &car.nickname {
        bodies.push(("vehicleidentification-nickname", json!({"value": name})));
    }
    if let Some(tires) = car.tires_kpa {
        let values: Vec<Value> = tires
            .iter()
            .enumerate()
            .map(|(index, kpa)| {
                let (pressure, unit) = if car.imperial {
                    (round(kpa / KPA_PER_PSI), "psi")
                } else {
                    (*kpa, "kpa")
                };
                json!({"row": index / 2, "column": index % 2, "tirePressure": pressure, "unit": unit})
            })
            .collect();
        bodies.push(("wheel-tires", json!({"values": values})));
    }
    if let Some(level) = car.battery_level {
        let status = match (car.charging, car.plugged_in) {
            (true, _) => "CHARGING",
            (false, true) if car.charge_limit.is_some_and(|limit| level >= limit) => {
                "FULLY_CHARGED"
            }
            _ => "NOT_CHARGING",
        };
        bodies.extend([
            ("tractionbattery-stateofcharge", json!({"value": level, "unit": "percent"})),
            (
                "tractionbattery-range",
                json!({"value": round(car.battery_range_km.unwrap_or_default() * distance), "unit": distance_unit}),
            ),
            ("charge-ischarging", json!({"value": car.charging})),
            ("charge-ischargingcableconnected", json!({"value": car.plugged_in})),
            ("charge-detailedchargingstatus", json!({"value": status})),
            (
                "charge-chargelimits",
                json!({"values": [{"type": "global", "limit": car.charge_limit, "unit": "percent"}]}),
            ),
            (
                "charge-timetocomplete",
                json!({"value": if car.charging { 95 } else { 0 }, "unit": "minutes"}),
            ),
            (
                "charge-wattage",
                json!({"value": if car.charging { 11.0 } else { 0.0 }, "unit": "kilowatts"}),
            ),
        ]);
    }
    if let Some(level) = car.fuel_level {
        bodies.extend([
            ("internalcombustionengine-fuellevel", json!({"value": level, "unit": "percent"})),
            (
                "internalcombustionengine-range",
                json!({"value": round(car.fuel_range_km.unwrap_or_default() * distance), "unit": distance_unit}),
            ),
            (
                "internalcombustionengine-oillife",
                json!({"value": car.oil_life, "unit": "percent"}),
            ),
        ]);
    }
    bodies
}

fn signal_resource(car: &Car, code: &str, body: Value) -> Value {
    let (group, _) = group_of(code);
    // An asleep car's values are its last report, a while ago.
    let retrieved_at = now_ms() / 1000 - if car.asleep { 3600 } else { 5 };
    json!({
        "id": code,
        "type": "signal",
        "attributes": {
            "code": code,
            "name": code.split('-').nth(1).unwrap_or(code),
            "group": group,
            "status": {"value": "SUCCESS"},
            "body": body,
        },
        "meta": {"retrievedAt": retrieved_at, "oemUpdatedAt": retrieved_at - 1},
        "links": {
            "self": format!("/vehicles/{}/signals/{code}", car.id),
            "vehicle": format!("/vehicles/{}", car.id),
        }
    })
}

async fn list_signals(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    let car = match car_for_user(&state, &headers, &id) {
        Ok(car) => car,
        Err(refusal) => return *refusal,
    };
    let names = ("page", "pageSize");
    let (number, size) = match page_numbers(&query, names) {
        Ok(numbers) => numbers,
        Err(refusal) => return *refusal,
    };
    let items: Vec<Value> = signal_bodies(&car)
        .into_iter()
        .filter(|(code, _)| {
            car.permissions
                .iter()
                .any(|granted| granted == group_of(code).1)
        })
        .map(|(code, body)| signal_resource(&car, code, body))
        .collect();
    let mut document = paged(
        &format!("/vehicles/{id}/signals"),
        items,
        number,
        size,
        names,
    );
    document["included"] = json!({ "vehicle": vehicle_resource(&car) });
    Json(document).into_response()
}

async fn get_signal(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, code)): Path<(String, String)>,
) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    let car = match car_for_user(&state, &headers, &id) {
        Ok(car) => car,
        Err(refusal) => return *refusal,
    };
    let permission = group_of(&code).1;
    if !car.permissions.iter().any(|granted| granted == permission) {
        return permission_error(permission);
    }
    match signal_bodies(&car)
        .into_iter()
        .find(|(known, _)| *known == code)
    {
        Some((code, body)) => {
            Json(json!({ "data": signal_resource(&car, code, body) })).into_response()
        }
        None => error(
            StatusCode::NOT_IMPLEMENTED,
            "COMPATIBILITY",
            "VEHICLE_NOT_CAPABLE",
            &format!("This vehicle does not report {code}."),
        ),
    }
}

/// (command type, permission, answered at once) of a command path.
fn command_of(group: &str, action: &str) -> Option<(&'static str, &'static str, bool)> {
    Some(match (group, action) {
        ("security", "lock") => ("security-lock", "control_security", true),
        ("security", "unlock") => ("security-unlock", "control_security", true),
        ("charge", "start") => ("charge-start", "control_charge", false),
        ("charge", "stop") => ("charge-stop", "control_charge", false),
        ("charge", "set-limit") => ("charge-set-limit", "control_charge", false),
        ("navigation", "set-destination") => {
            ("navigation-set-destination", "control_navigation", false)
        }
        _ => return None,
    })
}

fn apply(car: &mut Car, command_type: &str, parameters: &Value) {
    match command_type {
        "security-lock" => car.locked = true,
        "security-unlock" => car.locked = false,
        "charge-start" => car.charging = true,
        "charge-stop" => car.charging = false,
        "charge-set-limit" => car.charge_limit = parameters["percent"].as_f64(),
        "navigation-set-destination" => {
            car.destination = parameters["latitude"]
                .as_f64()
                .zip(parameters["longitude"].as_f64());
        }
        _ => {}
    }
}

fn rfc3339_now() -> String {
    rfc3339(now_ms())
}

/// Unix milliseconds as RFC 3339 UTC, to the second.
fn rfc3339(ms: u64) -> String {
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn execution_document(execution: &Execution) -> Value {
    let status = if execution.done { "SUCCESS" } else { "PENDING" };
    let mut meta = json!({"executedAt": rfc3339(execution.executed_at_ms)});
    if execution.done {
        meta["completedAt"] = json!(rfc3339_now());
    }
    json!({"data": {
        "id": execution.id,
        "type": "command-execution",
        "attributes": {
            "commandType": execution.command_type,
            "status": {"value": status},
            "executionMode": "async",
            "parameters": execution.parameters,
        },
        "meta": meta,
    }})
}

async fn command(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, group, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    let mut car = match car_for_user(&state, &headers, &id) {
        Ok(car) => car,
        Err(refusal) => return *refusal,
    };
    let Some((command_type, permission, at_once)) = command_of(&group, &action) else {
        return not_found("command", &format!("{group}/{action}"));
    };
    if !car.permissions.iter().any(|granted| granted == permission) {
        return permission_error(permission);
    }
    if car.asleep {
        return error(
            StatusCode::CONFLICT,
            "VEHICLE_STATE",
            "ASLEEP",
            "The vehicle is asleep and did not respond to the request.",
        );
    }
    if group == "charge" && car.battery_level.is_none() {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "COMPATIBILITY",
            "VEHICLE_NOT_CAPABLE",
            "This vehicle has no traction battery.",
        );
    }
    let parameters = match validate(&action, &body) {
        Ok(parameters) => parameters,
        Err(refusal) => return *refusal,
    };
    let execution_id = format!("exec_{}", now_ms());
    if at_once {
        apply(&mut car, command_type, &parameters);
        if let Some(stored) = state
            .smartcar
            .cars()
            .iter_mut()
            .find(|known| known.id == id)
        {
            *stored = car;
        }
        lock(&state.smartcar.commands).push((id.clone(), command_type.to_string()));
        let document = json!({"data": {
            "id": execution_id,
            "type": "command-execution",
            "attributes": {"commandType": command_type, "status": {"value": "SUCCESS"},
                           "executionMode": "sync"},
            "meta": {"executedAt": rfc3339_now(), "completedAt": rfc3339_now(), "durationInSeconds": 0}
        }});
        return Json(document).into_response();
    }
    let execution = Execution {
        id: execution_id,
        vehicle_id: id,
        command_type: command_type.to_string(),
        parameters,
        executed_at_ms: now_ms(),
        due: Instant::now() + state.options.wake_delay,
        done: false,
    };
    let document = execution_document(&execution);
    lock(&state.smartcar.executions).push(execution);
    (StatusCode::ACCEPTED, Json(document)).into_response()
}

/// The command's `data.attributes`, checked as Smartcar checks them.
fn validate(action: &str, body: &[u8]) -> Result<Value, Refusal> {
    let invalid = |detail: &str| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            "INVALID_INPUT_FORMAT",
            detail,
        ))
    };
    let attributes = || -> Value {
        serde_json::from_slice::<Value>(body).unwrap_or(Value::Null)["data"]["attributes"].clone()
    };
    match action {
        "set-limit" => {
            let attributes = attributes();
            match attributes["percent"].as_f64() {
                Some(percent) if (50.0..=100.0).contains(&percent) => Ok(attributes),
                _ => Err(invalid(
                    "data.attributes.percent must be a number from 50 to 100.",
                )),
            }
        }
        "set-destination" => {
            let attributes = attributes();
            let latitude = attributes["latitude"].as_f64();
            let longitude = attributes["longitude"].as_f64();
            match (latitude, longitude) {
                (Some(latitude), Some(longitude))
                    if (-90.0..=90.0).contains(&latitude)
                        && (-180.0..=180.0).contains(&longitude) =>
                {
                    Ok(attributes)
                }
                _ => Err(invalid(
                    "data.attributes.latitude and data.attributes.longitude are required.",
                )),
            }
        }
        _ => Ok(Value::Null),
    }
}

async fn get_execution(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, execution)): Path<(String, String)>,
) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    if let Err(refusal) = car_for_user(&state, &headers, &id) {
        return *refusal;
    }
    let found = lock(&state.smartcar.executions)
        .iter()
        .find(|known| known.id == execution && known.vehicle_id == id)
        .map(execution_document);
    match found {
        Some(document) => Json(document).into_response(),
        None => not_found("command execution", &execution),
    }
}

fn application_resource(application: &Value) -> Value {
    let mut resource = application.clone();
    if let Some(fields) = resource.as_object_mut() {
        fields.remove("secrets");
    }
    resource
}

async fn list_applications(State(state): Shared, headers: HeaderMap) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    let items: Vec<Value> = state
        .smartcar
        .applications
        .iter()
        .map(application_resource)
        .collect();
    let total = items.len();
    Json(json!({"data": items, "meta": {"totalCount": total}})).into_response()
}

fn application(state: &SimState, id: &str) -> Option<Value> {
    state
        .smartcar
        .applications
        .iter()
        .find(|application| application["id"] == id)
        .cloned()
}

async fn get_application(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    match application(&state, &id) {
        Some(found) => Json(json!({ "data": application_resource(&found) })).into_response(),
        None => not_found("application", &id),
    }
}

/// Like a careless API would, the simulator sends the secret values too: the plugin must drop them.
async fn list_secrets(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refusal) = unauthorised(&state, &headers) {
        return refusal;
    }
    match application(&state, &id) {
        Some(found) => {
            let secrets = found["secrets"].clone();
            let total = secrets.as_array().map_or(0, Vec::len);
            Json(json!({"data": secrets, "meta": {"totalCount": total}})).into_response()
        }
        None => not_found("application", &id),
    }
}
