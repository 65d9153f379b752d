//! TeslaMateApi (<https://github.com/tobiasehlert/teslamateapi>), the self-hosted REST API over a
//! TeslaMate logger's database, as it behaves for a TeslaMate set to km and °C in UTC:
//!
//! - every answer is `{"data": {...}}`; errors are HTTP 200 `{"error": "..."}` (only a rejected
//!   token is a 401), e.g. `No rows were returned!` for an unknown charge or drive,
//!   `no info on this car ID` for the status of an unknown car, `Invalid date format.`;
//! - an empty list is `null` (Go's nil slice), and an unknown car on `/cars/{id}`, `/charges`,
//!   `/drives` or `/updates` is an empty answer, not an error;
//! - lists are newest first and paginated with `page` (from 1) and `show` (default 100);
//! - `startDate` / `endDate` take RFC 3339 or a local `YYYY-MM-DD HH:MM:SS` (or with `T`) and
//!   keep records with `start_date >= startDate` and `end_date <= endDate`.
//!
//! Car ids are 1 and 2, in garage order. The charges, drives and updates are a fixed history
//! (fixtures/teslamate.json); `/status` renders the live simulated car.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::{Value, json};

use super::vehicle::now_ms;
use super::{SimState, SimVehicle, Vendor, bearer_matches};

type Shared = State<Arc<SimState>>;
type Params = Query<HashMap<String, String>>;

const KM_PER_MILE: f64 = 1.609_344;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/v1/cars", get(cars))
        .route("/api/v1/cars/{car_id}", get(car))
        .route("/api/v1/cars/{car_id}/status", get(status))
        .route("/api/v1/cars/{car_id}/charges", get(charges))
        .route("/api/v1/cars/{car_id}/charges/{charge_id}", get(charge))
        .route("/api/v1/cars/{car_id}/drives", get(drives))
        .route("/api/v1/cars/{car_id}/drives/{drive_id}", get(drive))
        .route("/api/v1/cars/{car_id}/battery-health", get(battery_health))
        .route("/api/v1/cars/{car_id}/updates", get(updates))
}

/// The fixed history of fixtures/teslamate.json, with what TeslaMate knows of each car.
#[derive(Deserialize)]
struct History {
    /// One per car, in garage order.
    profiles: Vec<Profile>,
    charges: Vec<ChargeRecord>,
    drives: Vec<DriveRecord>,
    updates: Vec<UpdateRecord>,
}

static HISTORY: LazyLock<History> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../fixtures/teslamate.json"))
        .expect("the TeslaMate fixtures are valid JSON")
});

/// What TeslaMate knows about each car beyond the shared simulated state.
#[derive(Deserialize)]
struct Profile {
    model: String,
    trim_badging: String,
    exterior_color: String,
    wheel_type: String,
    /// kWh per km, as TeslaMate stores it.
    efficiency: f64,
    capacity_kwh: f64,
    /// Rated range at 100 %.
    full_range_km: f64,
    /// Odometer before the first drive of the history.
    odometer_km: f64,
    inserted_at: String,
}

#[derive(Deserialize)]
struct ChargeRecord {
    id: i64,
    car: usize,
    start: String,
    minutes: i64,
    address: String,
    from_level: i64,
    to_level: i64,
    fast: bool,
    outside_temp: f64,
    position: (f64, f64),
}

#[derive(Deserialize)]
struct DriveRecord {
    id: i64,
    car: usize,
    start: String,
    minutes: i64,
    from: String,
    to: String,
    km: f64,
    from_level: i64,
    to_level: i64,
    speed_max: i64,
    outside_temp: f64,
}

#[derive(Deserialize)]
struct UpdateRecord {
    id: i64,
    car: usize,
    start: String,
    minutes: i64,
    version: String,
}

fn respond(data: Value) -> Response {
    Json(json!({ "data": data })).into_response()
}

/// TeslaMateApi's way of failing: HTTP 200 with an error message.
fn fail(message: &str) -> Response {
    Json(json!({ "error": message })).into_response()
}

fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    (!bearer_matches(headers, Vendor::TeslaMate.token())).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "header authorization bearer token invalid" })),
        )
            .into_response()
    })
}

/// Go's `convertStringToInteger`: anything that is not an integer is 0.
fn integer(text: &str) -> i64 {
    text.parse().unwrap_or(0)
}

/// The car with TeslaMate id `car_id` (1-based garage order).
fn lookup(state: &SimState, car_id: i64) -> Option<(usize, SimVehicle)> {
    let index = usize::try_from(car_id).ok()?.checked_sub(1)?;
    let vehicle = state.vehicles().get(index).cloned()?;
    Some((index, vehicle))
}

fn car_header(state: &SimState, car_id: i64) -> Value {
    let name = lookup(state, car_id).map(|(_, vehicle)| vehicle.display_name);
    json!({ "car_id": car_id, "car_name": name })
}

fn units() -> Value {
    json!({ "unit_of_length": "km", "unit_of_temperature": "C" })
}

/// Go marshals an empty slice built by `append` as `null`.
fn list(items: Vec<Value>) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items)
    }
}

/// `page` (from 1) and `show` (default 100), as TeslaMateApi's LIMIT/OFFSET.
fn paginate(items: Vec<Value>, params: &HashMap<String, String>) -> Vec<Value> {
    let page = params.get("page").map_or(1, |text| integer(text)).max(1);
    let show = params.get("show").map_or(100, |text| integer(text)).max(0);
    items
        .into_iter()
        .skip(((page - 1) * show) as usize)
        .take(show as usize)
        .collect()
}

/// `startDate` / `endDate` as Unix seconds; `Err` if one does not parse.
fn date_filters(params: &HashMap<String, String>) -> Result<(Option<i64>, Option<i64>), ()> {
    let parse = |name: &str| match params.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(text) => parse_date(text).map(Some).ok_or(()),
    };
    Ok((parse("startDate")?, parse("endDate")?))
}

/// Charges and drives: sessions of one car, with a start and a length.
trait Session {
    fn car(&self) -> usize;
    fn start(&self) -> &str;
    fn minutes(&self) -> i64;
}

impl Session for ChargeRecord {
    fn car(&self) -> usize {
        self.car
    }
    fn start(&self) -> &str {
        &self.start
    }
    fn minutes(&self) -> i64 {
        self.minutes
    }
}

impl Session for DriveRecord {
    fn car(&self) -> usize {
        self.car
    }
    fn start(&self) -> &str {
        &self.start
    }
    fn minutes(&self) -> i64 {
        self.minutes
    }
}

/// The car's sessions inside the request's date filters, newest first; Err for a bad date.
fn sessions_of<'a, T: Session>(
    state: &SimState,
    records: &'a [T],
    car_id: i64,
    params: &HashMap<String, String>,
) -> Result<Vec<&'a T>, ()> {
    let filters = date_filters(params)?;
    let index = lookup(state, car_id).map(|(index, _)| index);
    let mut found: Vec<&T> = records
        .iter()
        .filter(|record| Some(record.car()) == index)
        .filter(|record| {
            let start = start_of(record.start());
            within(filters, start, start + record.minutes() * 60)
        })
        .collect();
    found.sort_by_key(|record| std::cmp::Reverse(start_of(record.start())));
    Ok(found)
}

fn within(filters: (Option<i64>, Option<i64>), start: i64, end: i64) -> bool {
    filters.0.is_none_or(|from| start >= from) && filters.1.is_none_or(|to| end <= to)
}

async fn cars(State(state): Shared, headers: HeaderMap) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let count = state.vehicles().len() as i64;
    let all = (1..=count).filter_map(|id| car_json(&state, id)).collect();
    respond(json!({ "cars": list(all) }))
}

async fn car(State(state): Shared, headers: HeaderMap, Path(car_id): Path<String>) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let found = car_json(&state, integer(&car_id)).into_iter().collect();
    respond(json!({ "cars": list(found) }))
}

fn car_json(state: &SimState, car_id: i64) -> Option<Value> {
    let (index, vehicle) = lookup(state, car_id)?;
    let profile = &HISTORY.profiles[index % HISTORY.profiles.len()];
    let count = |ids: Vec<usize>| ids.into_iter().filter(|car| *car == index).count();
    Some(json!({
        "car_id": car_id,
        "name": vehicle.display_name,
        "car_details": {
            "eid": vehicle.id,
            "vid": vehicle.vehicle_id,
            "vin": vehicle.vin,
            "model": profile.model,
            "trim_badging": profile.trim_badging,
            "efficiency": profile.efficiency,
        },
        "car_exterior": {
            "exterior_color": profile.exterior_color,
            "spoiler_type": "None",
            "wheel_type": profile.wheel_type,
        },
        "car_settings": {
            "suspend_min": 21,
            "suspend_after_idle_min": 15,
            "req_not_unlocked": false,
            "free_supercharging": false,
            "use_streaming_api": true,
        },
        "teslamate_details": {
            "inserted_at": profile.inserted_at,
            "updated_at": rfc3339(now_ms() as i64 / 1000 - 600),
        },
        "teslamate_stats": {
            "total_charges": count(HISTORY.charges.iter().map(|charge| charge.car).collect()),
            "total_drives": count(HISTORY.drives.iter().map(|drive| drive.car).collect()),
            "total_updates": count(HISTORY.updates.iter().map(|update| update.car).collect()),
        },
    }))
}

async fn status(State(state): Shared, headers: HeaderMap, Path(car_id): Path<String>) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let car_id = integer(&car_id);
    let Some((index, car)) = lookup(&state, car_id) else {
        return fail("no info on this car ID");
    };
    let profile = &HISTORY.profiles[index % HISTORY.profiles.len()];
    let charging = car.charger_power_kw > 0.0;
    let rated_km = round2(car.battery_range_mi * KM_PER_MILE);
    let word = if car.asleep {
        "asleep"
    } else if car.charging_state == "Charging" {
        "charging"
    } else if car.speed_mph.is_some() {
        "driving"
    } else {
        "online"
    };
    let (major_version, _) = car
        .car_version
        .split_once(' ')
        .unwrap_or((&car.car_version, ""));
    let open = |position: u8| position != 0;
    let doors = [
        car.driver_front,
        car.driver_rear,
        car.passenger_front,
        car.passenger_rear,
    ];
    respond(json!({
        "car": { "car_id": car_id, "car_name": car.display_name },
        "status": {
            "display_name": car.display_name,
            "state": word,
            "state_since": rfc3339(now_ms() as i64 / 1000 - 3_600),
            "odometer": round2(car.odometer_mi * KM_PER_MILE),
            "car_status": {
                "healthy": true,
                "locked": car.locked,
                "sentry_mode": car.sentry_mode,
                "windows_open": false,
                "doors_open": doors.iter().any(|door| open(*door)),
                "driver_front_door_open": open(car.driver_front),
                "driver_rear_door_open": open(car.driver_rear),
                "passenger_front_door_open": open(car.passenger_front),
                "passenger_rear_door_open": open(car.passenger_rear),
                "trunk_open": open(car.rear_trunk),
                "frunk_open": open(car.front_trunk),
                "is_user_present": false,
                "center_display_state": 0,
            },
            "car_details": { "model": profile.model, "trim_badging": profile.trim_badging },
            "car_exterior": {
                "exterior_color": profile.exterior_color,
                "spoiler_type": "None",
                "wheel_type": profile.wheel_type,
            },
            "car_geodata": {
                "geofence": if car.speed_mph.is_none() { "Home" } else { "" },
                "location": { "latitude": car.latitude, "longitude": car.longitude },
                "latitude": car.latitude,
                "longitude": car.longitude,
            },
            "car_versions": {
                "version": major_version,
                "update_available": false,
                "update_version": "",
            },
            "driving_details": {
                "active_route": {
                    "destination": car.navigation_destination.clone().unwrap_or_default(),
                    "energy_at_arrival": 0,
                    "distance_to_arrival": 0.0,
                    "minutes_to_arrival": 0.0,
                    "traffic_minutes_delay": 0.0,
                    "location": { "latitude": 0.0, "longitude": 0.0 },
                },
                "active_route_destination": car.navigation_destination.clone().unwrap_or_default(),
                "active_route_latitude": 0.0,
                "active_route_longitude": 0.0,
                "shift_state": if car.speed_mph.is_some() { "D" } else { "P" },
                "power": if charging { -(car.charger_power_kw as i64) } else { 0 },
                "speed": car.speed_mph.map_or(0, |mph| (mph * KM_PER_MILE).round() as i64),
                "heading": car.heading as i64,
                "elevation": 14,
            },
            "climate_details": {
                "is_climate_on": car.climate_on,
                "inside_temp": car.inside_temp_c,
                "outside_temp": car.outside_temp_c,
                "is_preconditioning": car.climate_on && car.speed_mph.is_none(),
                "climate_keeper_mode": "off",
            },
            "battery_details": {
                "est_battery_range": round2(rated_km * 0.92),
                "rated_battery_range": rated_km,
                "ideal_battery_range": round2(rated_km * 1.03),
                "battery_level": car.battery_level as i64,
                "usable_battery_level": car.battery_level as i64,
            },
            "charging_details": {
                "plugged_in": car.charging_state != "Disconnected",
                // TeslaMateApi lowercases the MQTT value.
                "charging_state": car.charging_state.to_lowercase(),
                "charge_energy_added": if charging { 5.06 } else { 0.0 },
                "charge_limit_soc": car.charge_limit_soc as i64,
                "charge_port_door_open": car.charge_port_door_open,
                "charger_actual_current": if charging { 16.0 } else { 0.0 },
                "charger_phases": if charging { 3 } else { 0 },
                "charger_power": car.charger_power_kw,
                "charger_voltage": if charging { 230 } else { 0 },
                "charge_current_request": 16,
                "charge_current_request_max": 16,
                // No scheduled charge: Go formats its zero time.
                "scheduled_charging_start_time": "0001-01-01T00:00:00Z",
                "time_to_full_charge": round2(car.minutes_to_full_charge / 60.0),
            },
            "tpms_details": {
                "tpms_pressure_fl": 2.9, "tpms_pressure_fr": 2.9,
                "tpms_pressure_rl": 2.875, "tpms_pressure_rr": 2.9,
                "tpms_soft_warning_fl": false, "tpms_soft_warning_fr": false,
                "tpms_soft_warning_rl": false, "tpms_soft_warning_rr": false,
            },
        },
        "units": { "unit_of_length": "km", "unit_of_pressure": "bar", "unit_of_temperature": "C" },
    }))
}

fn start_of(start: &str) -> i64 {
    parse_date(start).expect("the history's dates are valid")
}

/// The odometer of car `index` at `moment`: its base plus the drives finished by then.
fn odometer_at(index: usize, moment: i64) -> f64 {
    let driven: f64 = HISTORY
        .drives
        .iter()
        .filter(|drive| drive.car == index && start_of(&drive.start) + drive.minutes * 60 <= moment)
        .map(|drive| drive.km)
        .sum();
    round2(HISTORY.profiles[index].odometer_km + driven)
}

fn range_km(index: usize, level: i64) -> f64 {
    round2(HISTORY.profiles[index].full_range_km * level as f64 / 100.0)
}

fn duration_str(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn charge_json(record: &ChargeRecord) -> Value {
    let profile = &HISTORY.profiles[record.car];
    let start = start_of(&record.start);
    let added = round2((record.to_level - record.from_level) as f64 / 100.0 * profile.capacity_kwh);
    let (loss, price) = if record.fast {
        (1.04, 0.48)
    } else {
        (1.11, 0.27)
    };
    let used = round2(added * loss);
    let rated = |level| range_km(record.car, level);
    let ideal = |level| round2(range_km(record.car, level) * 1.03);
    json!({
        "charge_id": record.id,
        "start_date": rfc3339(start),
        "end_date": rfc3339(start + record.minutes * 60),
        "address": record.address,
        "charge_energy_added": added,
        "charge_energy_used": used,
        "cost": round2(used * price),
        "duration_min": record.minutes,
        "duration_str": duration_str(record.minutes),
        "battery_details": {
            "start_battery_level": record.from_level,
            "end_battery_level": record.to_level,
        },
        "range_ideal": { "start_range": ideal(record.from_level), "end_range": ideal(record.to_level) },
        "range_rated": { "start_range": rated(record.from_level), "end_range": rated(record.to_level) },
        "outside_temp_avg": record.outside_temp,
        "odometer": odometer_at(record.car, start),
        "latitude": record.position.0,
        "longitude": record.position.1,
    })
}

/// Three samples of the charge: start, middle, end.
fn charge_details(record: &ChargeRecord) -> Value {
    let start = start_of(&record.start);
    let total = (record.to_level - record.from_level) as f64 / 100.0
        * HISTORY.profiles[record.car].capacity_kwh;
    let samples = (0..3).map(|step| {
        let fraction = step as f64 / 2.0;
        let level =
            record.from_level + ((record.to_level - record.from_level) as f64 * fraction) as i64;
        let power = match (record.fast, step) {
            (true, 0) => 118,
            (true, 1) => 86,
            (true, _) => 41,
            (false, _) => 11,
        };
        json!({
            "detail_id": record.id * 1000 + step,
            "date": rfc3339(start + (record.minutes * 60) * step / 2),
            "battery_level": level,
            "usable_battery_level": level,
            "charge_energy_added": round2(total * fraction),
            "not_enough_power_to_heat": null,
            "charger_details": {
                "charger_actual_current": if record.fast { power * 1000 / 390 } else { 16 },
                "charger_phases": if record.fast { 0 } else { 3 },
                "charger_pilot_current": if record.fast { 0 } else { 16 },
                "charger_power": power,
                "charger_voltage": if record.fast { 390 } else { 230 },
            },
            "battery_info": {
                "ideal_battery_range": round2(range_km(record.car, level) * 1.03),
                "rated_battery_range": range_km(record.car, level),
                "battery_heater": false,
                "battery_heater_on": false,
                "battery_heater_no_power": null,
            },
            "conn_charge_cable": if record.car == 0 { "SAE" } else { "IEC" },
            "fast_charger_info": {
                "fast_charger_present": record.fast,
                "fast_charger_brand": if record.fast { "Tesla" } else { "" },
                "fast_charger_type": if record.fast { "Tesla" } else { "MCSingleWireCAN" },
            },
            "outside_temp": record.outside_temp,
        })
    });
    Value::Array(samples.collect())
}

fn drive_json(record: &DriveRecord) -> Value {
    let profile = &HISTORY.profiles[record.car];
    let start = start_of(&record.start);
    let odometer_start = odometer_at(record.car, start);
    let rated = (
        range_km(record.car, record.from_level),
        range_km(record.car, record.to_level),
    );
    let ideal = (round2(rated.0 * 1.03), round2(rated.1 * 1.03));
    let energy = round2((rated.0 - rated.1) * profile.efficiency);
    json!({
        "drive_id": record.id,
        "start_date": rfc3339(start),
        "end_date": rfc3339(start + record.minutes * 60),
        "start_address": record.from,
        "end_address": record.to,
        "odometer_details": {
            "odometer_start": odometer_start,
            "odometer_end": round2(odometer_start + record.km),
            "odometer_distance": record.km,
        },
        "duration_min": record.minutes,
        "duration_str": duration_str(record.minutes),
        "speed_max": record.speed_max,
        "speed_avg": round2(record.km / record.minutes as f64 * 60.0),
        "power_max": record.speed_max * 3 / 2,
        "power_min": -(record.speed_max / 2),
        "battery_details": {
            "start_usable_battery_level": record.from_level,
            "start_battery_level": record.from_level,
            "end_usable_battery_level": record.to_level,
            "end_battery_level": record.to_level,
            "reduced_range": false,
            "is_sufficiently_precise": true,
        },
        "range_ideal": { "start_range": ideal.0, "end_range": ideal.1, "range_diff": round2(ideal.0 - ideal.1) },
        "range_rated": { "start_range": rated.0, "end_range": rated.1, "range_diff": round2(rated.0 - rated.1) },
        "outside_temp_avg": record.outside_temp,
        "inside_temp_avg": 21.0,
        "energy_consumed_net": energy,
        "consumption_net": round2(energy * 1000.0 / record.km),
    })
}

/// Three positions of the drive: start, middle, end.
fn drive_details(record: &DriveRecord, home: (f64, f64)) -> Value {
    let start = start_of(&record.start);
    let odometer = odometer_at(record.car, start);
    let samples = (0..3).map(|step| {
        let fraction = step as f64 / 2.0;
        let level =
            record.from_level - ((record.from_level - record.to_level) as f64 * fraction) as i64;
        json!({
            "detail_id": record.id * 1000 + step,
            "date": rfc3339(start + (record.minutes * 60) * step / 2),
            "latitude": round6(home.0 + 0.02 * fraction),
            "longitude": round6(home.1 + 0.03 * fraction),
            "speed": if step == 1 { record.speed_max * 2 / 3 } else { 0 },
            "power": if step == 1 { 18 } else { 0 },
            "odometer": round2(odometer + record.km * fraction),
            "battery_level": level,
            "usable_battery_level": level,
            "elevation": 14 + step * 6,
            "climate_info": {
                "inside_temp": 21.0,
                "outside_temp": record.outside_temp,
                "is_climate_on": true,
                "fan_status": 3,
                "driver_temp_setting": 21.0,
                "passenger_temp_setting": 21.0,
                "is_rear_defroster_on": false,
                "is_front_defroster_on": false,
            },
            "battery_info": {
                "est_battery_range": round2(range_km(record.car, level) * 0.92),
                "ideal_battery_range": round2(range_km(record.car, level) * 1.03),
                "rated_battery_range": range_km(record.car, level),
                "battery_heater": false,
                "battery_heater_on": false,
                "battery_heater_no_power": null,
            },
        })
    });
    Value::Array(samples.collect())
}

async fn charges(
    State(state): Shared,
    headers: HeaderMap,
    Path(car_id): Path<String>,
    Query(params): Params,
) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let car_id = integer(&car_id);
    let Ok(found) = sessions_of(&state, &HISTORY.charges, car_id, &params) else {
        return fail("Invalid date format.");
    };
    let page = paginate(found.into_iter().map(charge_json).collect(), &params);
    respond(json!({
        "car": car_header(&state, car_id),
        "charges": list(page),
        "units": units(),
    }))
}

async fn charge(
    State(state): Shared,
    headers: HeaderMap,
    Path((car_id, charge_id)): Path<(String, String)>,
) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let car_id = integer(&car_id);
    let index = lookup(&state, car_id).map(|(index, _)| index);
    let charge_id = integer(&charge_id);
    let Some(record) = HISTORY
        .charges
        .iter()
        .find(|charge| charge.id == charge_id && Some(charge.car) == index)
    else {
        return fail("No rows were returned!");
    };
    let mut charge = charge_json(record);
    charge["charge_details"] = charge_details(record);
    respond(json!({ "car": car_header(&state, car_id), "charge": charge, "units": units() }))
}

async fn drives(
    State(state): Shared,
    headers: HeaderMap,
    Path(car_id): Path<String>,
    Query(params): Params,
) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let car_id = integer(&car_id);
    let Ok(found) = sessions_of(&state, &HISTORY.drives, car_id, &params) else {
        return fail("Invalid date format.");
    };
    let summary = json!({
        "drives": found.len(),
        "distance": round2(found.iter().map(|drive| drive.km).sum()),
        "duration_min": found.iter().map(|drive| drive.minutes).sum::<i64>(),
        "consumed_net": if found.is_empty() {
            Value::Null
        } else {
            json!(round2(found.iter().map(|drive| drive_json(drive)["energy_consumed_net"].as_f64().unwrap_or(0.0)).sum()))
        },
    });
    let page = paginate(found.into_iter().map(drive_json).collect(), &params);
    respond(json!({
        "car": car_header(&state, car_id),
        "summary": summary,
        "drives": list(page),
        "units": units(),
    }))
}

async fn drive(
    State(state): Shared,
    headers: HeaderMap,
    Path((car_id, drive_id)): Path<(String, String)>,
) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let car_id = integer(&car_id);
    let Some((index, vehicle)) = lookup(&state, car_id) else {
        return fail("No rows were returned!");
    };
    let drive_id = integer(&drive_id);
    let Some(record) = HISTORY
        .drives
        .iter()
        .find(|drive| drive.id == drive_id && drive.car == index)
    else {
        return fail("No rows were returned!");
    };
    let mut drive = drive_json(record);
    drive["drive_details"] = drive_details(record, (vehicle.latitude, vehicle.longitude));
    respond(json!({ "car": car_header(&state, car_id), "drive": drive, "units": units() }))
}

async fn battery_health(
    State(state): Shared,
    headers: HeaderMap,
    Path(car_id): Path<String>,
) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let car_id = integer(&car_id);
    let Some((index, _)) = lookup(&state, car_id) else {
        return fail("Unable to load battery health data.");
    };
    let profile = &HISTORY.profiles[index];
    let max_capacity = round2(profile.capacity_kwh * 1.035);
    let max_range = round2(profile.full_range_km * 1.035);
    respond(json!({
        "car": car_header(&state, car_id),
        "battery_health": {
            "max_range": max_range,
            "current_range": profile.full_range_km,
            "max_capacity": max_capacity,
            "current_capacity": profile.capacity_kwh,
            "rated_efficiency": round2(profile.efficiency * 100.0),
            "battery_health_percentage": round2(profile.capacity_kwh / max_capacity * 100.0),
        },
        "units": units(),
    }))
}

async fn updates(
    State(state): Shared,
    headers: HeaderMap,
    Path(car_id): Path<String>,
    Query(params): Params,
) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let car_id = integer(&car_id);
    let index = lookup(&state, car_id).map(|(index, _)| index);
    let mut found: Vec<Value> = HISTORY
        .updates
        .iter()
        .filter(|update| Some(update.car) == index)
        .map(|update| {
            let start = start_of(&update.start);
            json!({
                "update_id": update.id,
                "start_date": rfc3339(start),
                "end_date": rfc3339(start + update.minutes * 60),
                "version": update.version,
            })
        })
        .collect();
    found.reverse();
    let page = paginate(found, &params);
    // Like TeslaMateApi, the car is only filled in when it has updates.
    let car = if page.is_empty() {
        json!({ "car_id": 0, "car_name": "" })
    } else {
        car_header(&state, car_id)
    };
    respond(json!({ "car": car, "updates": list(page) }))
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// Unix seconds as RFC 3339 UTC, as TeslaMateApi writes dates with TZ=UTC.
fn rfc3339(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What TeslaMateApi accepts as a date: RFC 3339, or `YYYY-MM-DD HH:MM:SS` (`T` allowed) in the
/// user's time zone (UTC here). Impossible dates (month 13, 30 February) are refused.
fn parse_date(text: &str) -> Option<i64> {
    if let Ok(zoned) = DateTime::parse_from_rfc3339(text) {
        return Some(zoned.timestamp());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dt%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map(|local| local.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_ones_are_refused() {
        let seconds = parse_date("2026-03-04T13:05:00Z").unwrap();
        assert_eq!(rfc3339(seconds), "2026-03-04T13:05:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_date("2026-03-04 14:05:00+01:00"), Some(seconds));
        assert_eq!(parse_date("2026-03-04T13:05:00"), Some(seconds));
        assert_eq!(parse_date("2026-03-04T13:05:00.250Z"), Some(seconds));
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-03-04",
            "yesterday",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_history_is_consistent() {
        for record in &HISTORY.charges {
            assert!(record.to_level > record.from_level);
        }
        for record in &HISTORY.drives {
            assert!(record.to_level < record.from_level);
            assert!(drive_json(record)["consumption_net"].as_f64().unwrap() > 100.0);
        }
    }
}
