//! carport provider for the TeslaMate API: TeslaMateApi
//! (<https://github.com/tobiasehlert/teslamateapi>), the self-hosted REST API over the database
//! of a TeslaMate logger.
//!
//! Read-only. Tools: `get_cars`, `get_car`, `get_car_status`, `get_car_charges`,
//! `get_car_charge`, `get_car_drives`, `get_car_drive`, `get_car_battery_health`,
//! `get_car_updates` (TeslaMate's own data, taken out of its `{"data": …}` envelope) and
//! `vehicle_state` (the shared vehicle shape). TeslaMateApi reports most failures as HTTP 200
//! `{"error": "…"}`; they become tool errors here.
//! Settings: `base_url` (required: TeslaMate is self-hosted, so there is no default).
//! Secret: `token` (the API's `API_TOKEN`), attached by the host as a bearer header.

use carport_guest::http::Request;
use carport_guest::resources::VehicleStates;
use carport_guest::vehicle::{Charging, Climate, Doors, KM_PER_MILE, Location, VehicleState};
use carport_guest::{
    Annotations, CallContext, Completion, CompletionRequest, Output, PluginInfo, Provider,
    ResourceContents, ResourceInfo, Settings, Tool, ToolError, ToolMode, UpstreamError, args,
    compact,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

const TOKEN_SECRET: &str = "token";
const MAX_PAGE_SIZE: u32 = 100;
/// RFC 3339, a local date and time (TeslaMate's time zone), or a bare date (the whole day).
const DATE_PATTERN: &str =
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$";

struct TeslaMate;

fn input(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

fn id(description: &str) -> Value {
    json!({"type": "integer", "minimum": 1, "description": description})
}

fn car_id() -> Value {
    id("TeslaMate's car id (1, 2, …), not the VIN; get_cars lists them.")
}

fn history_input(kind: &str) -> Value {
    let date = |bound: &str| {
        json!({
            "type": "string",
            "pattern": DATE_PATTERN,
            "description": format!(
                "{bound}. RFC 3339 (2026-03-01T08:00:00Z), local date and time in TeslaMate's \
                 time zone (2026-03-01T08:00:00), or a date (2026-03-01: the whole day)."
            )
        })
    };
    input(
        json!({
            "car_id": car_id(),
            "start_date": date(&format!("Only {kind} that started at or after this time")),
            "end_date": date(&format!("Only {kind} that ended at or before this time")),
            "page": {"type": "integer", "minimum": 1, "description": "Page, newest first (default 1)."},
            "show": {
                "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                "description": "Results per page (default 100)."
            }
        }),
        &["car_id"],
    )
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn output(key: &str, item: Value) -> Value {
    let car = object(
        json!({"car_id": {"type": "integer"}, "car_name": {"type": ["string", "null"]}}),
        &["car_id"],
    );
    let units = object(
        json!({
            "unit_of_length": {"type": "string", "description": "km or mi"},
            "unit_of_temperature": {"type": "string", "description": "C or F"}
        }),
        &[],
    );
    object(
        json!({"car": car, key: item, "units": units, "summary": {"type": "object"}}),
        &["car", key],
    )
}

fn tools() -> Vec<Tool> {
    let number = json!({"type": "number"});
    let integer = json!({"type": "integer"});
    let string = json!({"type": "string"});
    let car = object(
        json!({
            "car_id": integer,
            "name": {"type": ["string", "null"]},
            "car_details": object(json!({"vin": string, "model": string}), &[]),
            "teslamate_stats": {"type": "object"}
        }),
        &["car_id"],
    );
    let cars = object(json!({"cars": array(car)}), &["cars"]);
    let charge = object(
        json!({
            "charge_id": integer, "start_date": string, "end_date": string, "address": string,
            "charge_energy_added": number, "charge_energy_used": number, "cost": number,
            "duration_min": integer, "battery_details": {"type": "object"}
        }),
        &["charge_id"],
    );
    let drive = object(
        json!({
            "drive_id": integer, "start_date": string, "end_date": string,
            "start_address": string, "end_address": string,
            "odometer_details": {"type": "object"}, "duration_min": integer,
            "battery_details": {"type": "object"}
        }),
        &["drive_id"],
    );
    let units = "Distances are in units.unit_of_length (km or mi, TeslaMate's setting), \
                 temperatures in units.unit_of_temperature, energy in kWh, dates RFC 3339.";
    let read = |name: &str, title: &str, description: String, schema: Value, out: Value| {
        Tool::new(name, title, &description, schema, Annotations::READ).with_output_schema(out)
    };
    let car_only = || input(json!({"car_id": car_id()}), &["car_id"]);
    vec![
        read(
            "get_cars",
            "List TeslaMate Cars",
            "List the cars TeslaMate logs. Returns { cars: [{ car_id, name, car_details: { vin, \
             model, trim_badging, efficiency (kWh/km) }, car_exterior, car_settings, \
             teslamate_details: { inserted_at, updated_at }, teslamate_stats: { total_charges, \
             total_drives, total_updates } }] }.\nNext: pass a car_id to the other tools; \
             vehicle_state gives a car's current state."
                .into(),
            input(json!({}), &[]),
            cars.clone(),
        ),
        read(
            "get_car",
            "Get TeslaMate Car",
            "One car's details as TeslaMate knows them: { cars: [one car, shaped as in \
             get_cars] }. An unknown car_id is an error."
                .into(),
            car_only(),
            cars,
        ),
        read(
            "get_car_status",
            "Get Car Status (TeslaMate)",
            format!(
                "The car's latest status from TeslaMate's live feed, as TeslaMate reports it: {{ \
                 car, status: {{ display_name, state (online, asleep, offline, driving, \
                 charging, suspended, updating), state_since, odometer, car_status: {{ locked, \
                 sentry_mode, doors/trunk/frunk/windows open }}, car_geodata: {{ geofence, \
                 location }}, car_versions, driving_details: {{ speed (km/h), heading, \
                 shift_state, active_route }}, climate_details: {{ inside_temp, outside_temp }}, \
                 battery_details: {{ battery_level (%), rated/ideal/est_battery_range }}, \
                 charging_details: {{ charging_state, charge_limit_soc, charger_power (kW), \
                 time_to_full_charge (hours) }}, tpms_details }}, units }}. {units}\nNext: \
                 vehicle_state gives the same status normalised to km and °C."
            ),
            car_only(),
            output("status", json!({"type": "object"})),
        ),
        read(
            "get_car_charges",
            "List Charges (TeslaMate)",
            format!(
                "The car's finished charging sessions, newest first: {{ car, charges: [{{ \
                 charge_id, start_date, end_date, address, charge_energy_added (kWh), \
                 charge_energy_used (kWh), cost (TeslaMate's currency), duration_min, \
                 battery_details: {{ start_battery_level, end_battery_level }} (%), \
                 range_rated/range_ideal: {{ start_range, end_range }}, outside_temp_avg, \
                 odometer }}], units }}. {units} Filter with start_date/end_date; a full page \
                 means there may be more (next page).\nNext: get_car_charge for one session's \
                 power curve."
            ),
            history_input("charges"),
            output("charges", array(charge.clone())),
        ),
        read(
            "get_car_charge",
            "Get Charge (TeslaMate)",
            format!(
                "One charging session with its samples: {{ car, charge: {{ the fields of \
                 get_car_charges, charge_details: [{{ date, battery_level, charge_energy_added, \
                 charger_details: {{ charger_power (kW), charger_voltage, \
                 charger_actual_current, charger_phases }}, fast_charger_info, outside_temp \
                 }}] }}, units }}. {units}"
            ),
            input(
                json!({"car_id": car_id(), "charge_id": id("A charge_id from get_car_charges.")}),
                &["car_id", "charge_id"],
            ),
            output("charge", charge),
        ),
        read(
            "get_car_drives",
            "List Drives (TeslaMate)",
            format!(
                "The car's finished drives, newest first: {{ car, summary: {{ drives, distance, \
                 duration_min, consumed_net (kWh) }}, drives: [{{ drive_id, start_date, \
                 end_date, start_address, end_address, odometer_details: {{ odometer_start, \
                 odometer_end, odometer_distance }}, duration_min, speed_max, speed_avg, \
                 power_max/power_min (kW), battery_details: {{ start_battery_level, \
                 end_battery_level }} (%), range_rated, energy_consumed_net (kWh), \
                 consumption_net (Wh per distance unit), outside_temp_avg, inside_temp_avg }}], \
                 units }}. {units} Filter with start_date/end_date; a full page means there \
                 may be more (next page).\nNext: get_car_drive for one drive's positions."
            ),
            history_input("drives"),
            output("drives", array(drive.clone())),
        ),
        read(
            "get_car_drive",
            "Get Drive (TeslaMate)",
            format!(
                "One drive with its recorded positions: {{ car, drive: {{ the fields of \
                 get_car_drives, drive_details: [{{ date, latitude, longitude, speed, power, \
                 odometer, battery_level, elevation (m), climate_info, battery_info }}] }}, \
                 units }}. {units}"
            ),
            input(
                json!({"car_id": car_id(), "drive_id": id("A drive_id from get_car_drives.")}),
                &["car_id", "drive_id"],
            ),
            output("drive", drive),
        ),
        read(
            "get_car_battery_health",
            "Get Battery Health (TeslaMate)",
            format!(
                "Battery degradation estimated from TeslaMate's charge history: {{ car, \
                 battery_health: {{ max_range, current_range (range at 100 %), max_capacity, \
                 current_capacity (kWh), rated_efficiency, battery_health_percentage }}, units \
                 }}. {units}"
            ),
            car_only(),
            output(
                "battery_health",
                object(
                    json!({"battery_health_percentage": number, "current_capacity": number}),
                    &[],
                ),
            ),
        ),
        read(
            "get_car_updates",
            "List Software Updates (TeslaMate)",
            "The car's software updates, newest first: { car, updates: [{ update_id, \
             start_date, end_date, version }] }. The first one is the version installed now."
                .into(),
            car_only(),
            output(
                "updates",
                array(object(
                    json!({"update_id": integer, "version": string}),
                    &["update_id"],
                )),
            ),
        ),
        Tool::new(
            "vehicle_state",
            "Get Vehicle State",
            "The car's current state in carport's shared vehicle shape, from TeslaMate's \
             latest status (TeslaMate only reads; it cannot wake or command the car).\nReturns: \
             { vin, display_name, state ('online'|'asleep'|'offline'), battery_level (%), \
             battery_range_km (rated), charging: { state, minutes_remaining, charge_limit (%), \
             charger_power_kw }, location: { latitude, longitude, heading, speed (km/h) }, \
             locked, sentry_mode, climate: { is_on, inside_temp, outside_temp (°C), \
             target_temp, is_defrosting (not reported by TeslaMate: null) }, doors: { \
             front_left, front_right, rear_left, rear_right, frunk, trunk, charge_port } (true \
             = open), odometer_km, last_updated (null) }.\nNext: get_car_charges and \
             get_car_drives for history.",
            input(json!({"car_id": car_id()}), &["car_id"]),
            Annotations::READ,
        )
        .with_output_schema(VehicleState::output_schema()),
    ]
}

const STATES: VehicleStates = VehicleStates {
    scheme: "teslamate",
    id_name: "car_id",
    provider: "TeslaMate",
};

/// Compact mode: `state` (vehicle_state), `read` {endpoint, arguments} for the nine reads of
/// TeslaMate's own data, and `help`; a read's arguments are checked against its own tool's
/// schema before anything is sent, so the request is the one its full-mode tool would send.
fn compact_tools() -> Vec<Tool> {
    let full = tools();
    let reads: Vec<&str> = full
        .iter()
        .map(|tool| tool.name.as_str())
        .filter(|name| *name != "vehicle_state")
        .collect();
    let mut state = full
        .iter()
        .find(|tool| tool.name == "vehicle_state")
        .expect("tools() has vehicle_state")
        .clone();
    state.name = "state".into();
    state.description = "The car's current state in carport's shared vehicle shape (km, km/h, \
                         °C; see the output schema), from TeslaMate's latest status."
        .into();
    vec![
        state,
        compact::operations_tool(
            "read",
            "Read TeslaMate data",
            "Read one of TeslaMate's cars, statuses, charges, drives, battery health or updates.",
            "endpoint",
            &reads,
            Annotations::READ,
        )
        .with_output_schema(json!({"type": "object"})),
        compact::help_tool(),
    ]
}

/// A compact call as the full-mode tool name and arguments it stands for, or `help`'s answer.
fn resolve_compact(
    tool: &str,
    arguments: &str,
) -> Result<Result<(String, String), Output>, ToolError> {
    let arguments: Map<String, Value> = args::parse(arguments)?;
    let full = tools();
    let full_tool = |name: &str| full.iter().find(|tool| tool.name == name);
    match tool {
        "state" => Ok(Ok((
            "vehicle_state".into(),
            Value::Object(arguments).to_string(),
        ))),
        "help" => {
            let operation = arguments
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (name, served_by) = match operation {
                "state" | "vehicle_state" => ("vehicle_state", "state"),
                other => (other, "read"),
            };
            let found = full_tool(name).ok_or_else(|| {
                ToolError::invalid(format!(
                    "no operation named {operation:?}: read's endpoint enum lists them all"
                ))
            })?;
            Ok(Err(compact::help_answer(served_by, found)))
        }
        "read" => {
            let (name, own) = compact::take_operation(arguments, "endpoint")?;
            let found = full_tool(&name)
                .filter(|found| found.name != "vehicle_state")
                .ok_or_else(|| ToolError::invalid(format!("read has no endpoint {name:?}")))?;
            let schema: Value = serde_json::from_str(&found.input_schema)
                .map_err(|error| ToolError::internal(error.to_string()))?;
            let own = compact::checked(&name, &schema, own, &[(DATE_PATTERN, is_date)])?;
            Ok(Ok((name, Value::Object(own).to_string())))
        }
        other => Err(ToolError::invalid(format!(
            "teslamate has no compact tool named {other}"
        ))),
    }
}

/// Exactly the strings [`DATE_PATTERN`] matches (ASCII digits).
fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
    let fits = |part: &[u8], shape: &[u8]| {
        part.len() == shape.len()
            && part.iter().zip(shape).all(|(byte, want)| match want {
                b'9' => byte.is_ascii_digit(),
                other => byte == other,
            })
    };
    if bytes.len() < 10 || !fits(&bytes[..10], b"9999-99-99") {
        return false;
    }
    let rest = &bytes[10..];
    if rest.is_empty() {
        return true;
    }
    if rest.len() < 9 || !matches!(rest[0], b'T' | b' ') || !fits(&rest[1..9], b"99:99:99") {
        return false;
    }
    let mut zone = &rest[9..];
    if let Some(fraction) = zone.strip_prefix(b".") {
        let length = fraction
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        if !digits(&fraction[..length]) {
            return false;
        }
        zone = &fraction[length..];
    }
    match zone {
        [] | [b'Z'] => true,
        [b'+' | b'-', offset @ ..] => fits(offset, b"99:99"),
        _ => false,
    }
}

impl Provider for TeslaMate {
    fn describe(context: &CallContext) -> PluginInfo {
        let tools = match context.tool_mode {
            ToolMode::Full => tools(),
            ToolMode::Compact => compact_tools(),
        };
        let summary = match context.tool_mode {
            ToolMode::Full => {
                "Tesla history and status from a self-hosted TeslaMate (read-only): get_cars for \
                 car ids, vehicle_state for the current state, get_car_charges / get_car_drives \
                 for history."
            }
            ToolMode::Compact => {
                "Tesla history and status from a self-hosted TeslaMate (read-only), in three \
                 tools: read {endpoint, arguments} (get_cars first for car ids, then a car's \
                 status, charges, drives, battery health, updates), state for a car's current \
                 state, help {operation} for what an endpoint returns and takes."
            }
        };
        PluginInfo::new("teslamate", summary, tools)
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_resources(STATES.scheme, vec![STATES.template()])
    }

    fn list_resources(context: CallContext) -> Result<Vec<ResourceInfo>, ToolError> {
        let api = Api::new(&Settings::from_context(&context))?;
        Ok(STATES.list(api.car_ids()?))
    }

    fn read_resource(
        uri: String,
        context: CallContext,
    ) -> Result<Vec<ResourceContents>, ToolError> {
        let api = Api::new(&Settings::from_context(&context))?;
        STATES.read(&uri, |id| {
            let car_id = id
                .parse()
                .map_err(|_| ToolError::NotFound(format!("no resource {uri}")))?;
            api.vehicle_state(car_id)
        })
    }

    fn complete(request: CompletionRequest, context: CallContext) -> Result<Completion, ToolError> {
        let api = Api::new(&Settings::from_context(&context))?;
        STATES.complete(&request, || api.car_ids())
    }

    fn call_tool(
        name: String,
        arguments: String,
        context: CallContext,
    ) -> Result<Output, ToolError> {
        let (name, arguments) = match context.tool_mode {
            ToolMode::Full => (name, arguments),
            ToolMode::Compact => match resolve_compact(&name, &arguments)? {
                Ok(full_call) => full_call,
                Err(answer) => return Ok(answer),
            },
        };
        let api = Api::new(&Settings::from_context(&context))?;
        match name.as_str() {
            "get_cars" => api.cars(),
            "get_car" => api.car(args::parse::<CarOnly>(&arguments)?.car_id),
            "get_car_status" => api.status(args::parse::<CarOnly>(&arguments)?.car_id),
            "get_car_charges" => api.history("charges", args::parse(&arguments)?),
            "get_car_drives" => api.history("drives", args::parse(&arguments)?),
            "get_car_charge" => {
                let OneCharge { car_id, charge_id } = args::parse(&arguments)?;
                api.one(car_id, "charge", charge_id)
            }
            "get_car_drive" => {
                let OneDrive { car_id, drive_id } = args::parse(&arguments)?;
                api.one(car_id, "drive", drive_id)
            }
            "get_car_battery_health" => {
                api.battery_health(args::parse::<CarOnly>(&arguments)?.car_id)
            }
            "get_car_updates" => api.updates(args::parse::<CarOnly>(&arguments)?.car_id),
            "vehicle_state" => api.vehicle_state(args::parse::<CarOnly>(&arguments)?.car_id),
            other => Err(ToolError::invalid(format!(
                "teslamate has no tool named {other}"
            ))),
        }
    }
}

#[derive(Deserialize)]
struct CarOnly {
    car_id: u64,
}

#[derive(Deserialize)]
struct OneCharge {
    car_id: u64,
    charge_id: u64,
}

#[derive(Deserialize)]
struct OneDrive {
    car_id: u64,
    drive_id: u64,
}

#[derive(Deserialize)]
struct History {
    car_id: u64,
    start_date: Option<String>,
    end_date: Option<String>,
    page: Option<u32>,
    show: Option<u32>,
}

struct Api {
    base_url: String,
    whole_header: bool,
}

impl Api {
    fn new(settings: &Settings) -> Result<Api, ToolError> {
        let configured = settings
            .get("base_url")
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .ok_or_else(|| {
                ToolError::invalid(
                    "no `base_url` for the TeslaMate plugin: TeslaMateApi is self-hosted, so set \
                     its address in plugins.toml under [plugins.<id>.settings], e.g. base_url = \
                     \"http://teslamate.local:8080\", and list it in `allow`",
                )
            })?;
        let trimmed = configured.trim_end_matches('/');
        let base = ["/api/v1", "/api"]
            .iter()
            .find_map(|suffix| trimmed.strip_suffix(suffix))
            .unwrap_or(trimmed);
        Ok(Api {
            base_url: base.to_string(),
            whole_header: settings.get("auth") == Some("header"),
        })
    }

    /// GETs `/api/v1{path}` and returns the contents of `data`. `missing` says, in words an
    /// assistant can act on, what the API means when it finds no row.
    fn get(&self, path: &str, query: &[(&str, String)], missing: &str) -> Result<Value, ToolError> {
        let url = format!("{}/api/v1{path}", self.base_url);
        // `auth = "header"`: the secret is the whole Authorization value, e.g. `Basic …` for an
        // instance behind basic auth; otherwise it is TeslaMateApi's bearer API_TOKEN.
        let mut request = match self.whole_header {
            true => Request::get(&url).header_secret("authorization", TOKEN_SECRET),
            false => Request::get(&url).bearer_secret(TOKEN_SECRET),
        };
        for (name, value) in query {
            request = request.query(name, value);
        }
        let response = request.send()?;
        if response.status == 404 {
            return Err(upstream(format!(
                "{url} does not exist (HTTP 404: {}); check that base_url in plugins.toml is \
                 the TeslaMateApi address (e.g. http://teslamate.local:8080), not TeslaMate's \
                 web interface",
                response.vendor_message()
            )));
        }
        let mut body: Value = response.success()?.json()?;
        if let Some(message) = body.get("error").and_then(Value::as_str) {
            let lower = message.to_ascii_lowercase();
            return Err(upstream(
                if lower.contains("no rows") || lower.contains("no info on this car") {
                    format!("{missing} (TeslaMate API: {message})")
                } else {
                    format!("the TeslaMate API reported an error: {message}")
                },
            ));
        }
        match body.get_mut("data").map(Value::take) {
            Some(data @ Value::Object(_)) => Ok(data),
            _ => Err(ToolError::internal(format!(
                "{url} answered without TeslaMateApi's `data` object; is base_url the \
                 TeslaMateApi address?"
            ))),
        }
    }

    fn cars(&self) -> Result<Output, ToolError> {
        let mut data = self.get("/cars", &[], "no cars")?;
        let cars = list(&mut data, "cars");
        let names: Vec<String> = cars
            .iter()
            .map(|car| {
                format!(
                    "car_id {} = {} (VIN {})",
                    car["car_id"],
                    car["name"].as_str().unwrap_or("unnamed"),
                    car["car_details"]["vin"].as_str().unwrap_or("?")
                )
            })
            .collect();
        let headline = format!("{} car(s) in TeslaMate: {}", names.len(), names.join("; "));
        Ok(answer(data, headline))
    }

    fn car(&self, car_id: u64) -> Result<Output, ToolError> {
        let (car, data) = self.car_details(car_id)?;
        let headline = format!(
            "car_id {car_id}: {}, Model {} {}, VIN {}",
            car["name"].as_str().unwrap_or("unnamed"),
            car["car_details"]["model"].as_str().unwrap_or("?"),
            car["car_details"]["trim_badging"].as_str().unwrap_or(""),
            car["car_details"]["vin"].as_str().unwrap_or("?"),
        );
        Ok(answer(data, headline))
    }

    /// TeslaMateApi answers an unknown car with an empty list rather than an error.
    fn car_details(&self, car_id: u64) -> Result<(Value, Value), ToolError> {
        let mut data = self.get(&format!("/cars/{car_id}"), &[], "no such car")?;
        match list(&mut data, "cars").first().cloned() {
            Some(car) => Ok((car, data)),
            None => Err(upstream(format!(
                "TeslaMate has no car with car_id {car_id}; call get_cars for the ids"
            ))),
        }
    }

    fn fetch_status(&self, car_id: u64) -> Result<Value, ToolError> {
        self.get(
            &format!("/cars/{car_id}/status"),
            &[],
            &format!(
                "TeslaMate has no status for car_id {car_id}: the id is unknown (call \
                 get_cars) or TeslaMate has not reported on this car since TeslaMateApi started"
            ),
        )
    }

    fn status(&self, car_id: u64) -> Result<Output, ToolError> {
        let data = self.fetch_status(car_id)?;
        let status = &data["status"];
        let headline = format!(
            "{} is {}, battery {}% (distances in {}, temperatures in °{})",
            status["display_name"].as_str().unwrap_or("The car"),
            status["state"].as_str().unwrap_or("unknown"),
            status["battery_details"]["battery_level"],
            data["units"]["unit_of_length"].as_str().unwrap_or("km"),
            data["units"]["unit_of_temperature"].as_str().unwrap_or("C"),
        );
        Ok(answer(data, headline))
    }

    fn history(&self, kind: &str, arguments: History) -> Result<Output, ToolError> {
        let mut query = Vec::new();
        if let Some(date) = &arguments.start_date {
            query.push(("startDate", api_date(date, false)));
        }
        if let Some(date) = &arguments.end_date {
            query.push(("endDate", api_date(date, true)));
        }
        if let Some(page) = arguments.page {
            query.push(("page", page.to_string()));
        }
        if let Some(show) = arguments.show {
            query.push(("show", show.to_string()));
        }
        let car_id = arguments.car_id;
        let mut data = self.get(&format!("/cars/{car_id}/{kind}"), &query, "nothing found")?;
        let count = list(&mut data, kind).len();
        let page = arguments.page.unwrap_or(1);
        let more = if count as u32 == arguments.show.unwrap_or(MAX_PAGE_SIZE) {
            format!(
                "; the page is full, call again with page={} for older ones",
                page + 1
            )
        } else {
            String::new()
        };
        let unknown_car = if data["car"]["car_name"].is_null() && count == 0 {
            " (TeslaMate knows no car with this car_id? call get_cars)"
        } else {
            ""
        };
        let headline = format!(
            "{count} {kind} of car_id {car_id}{unknown_car}, newest first, page {page}{more}; \
             distances in {}",
            data["units"]["unit_of_length"].as_str().unwrap_or("km"),
        );
        Ok(answer(data, headline))
    }

    fn one(&self, car_id: u64, kind: &str, id: u64) -> Result<Output, ToolError> {
        let data = self.get(
            &format!("/cars/{car_id}/{kind}s/{id}"),
            &[],
            &format!(
                "TeslaMate has no {kind} {id} for car_id {car_id}; call get_car_{kind}s for \
                 the ids"
            ),
        )?;
        let item = &data[kind];
        let place = match kind {
            "charge" => format!("at {}", item["address"].as_str().unwrap_or("?")),
            _ => format!(
                "from {} to {}",
                item["start_address"].as_str().unwrap_or("?"),
                item["end_address"].as_str().unwrap_or("?")
            ),
        };
        let headline = format!(
            "{kind} {id} of car_id {car_id}: {} to {} {place}",
            item["start_date"].as_str().unwrap_or("?"),
            item["end_date"].as_str().unwrap_or("?"),
        );
        Ok(answer(data, headline))
    }

    fn battery_health(&self, car_id: u64) -> Result<Output, ToolError> {
        let path = format!("/cars/{car_id}/battery-health");
        let data = self.get(&path, &[], "no battery data")?;
        let health = &data["battery_health"];
        let headline = format!(
            "battery health of car_id {car_id}: {:.1} % ({} of {} kWh)",
            health["battery_health_percentage"].as_f64().unwrap_or(0.0),
            health["current_capacity"],
            health["max_capacity"],
        );
        Ok(answer(data, headline))
    }

    fn updates(&self, car_id: u64) -> Result<Output, ToolError> {
        let mut data = self.get(&format!("/cars/{car_id}/updates"), &[], "no updates")?;
        let updates = list(&mut data, "updates");
        let headline = match updates.first() {
            Some(latest) => format!(
                "{} software update(s) of car_id {car_id}, newest first; installed now: {}",
                updates.len(),
                latest["version"].as_str().unwrap_or("?")
            ),
            None => format!("no software updates recorded for car_id {car_id}"),
        };
        Ok(answer(data, headline))
    }

    /// The logged cars: car id and name.
    fn car_ids(&self) -> Result<Vec<(String, String)>, ToolError> {
        let mut data = self.get("/cars", &[], "no cars")?;
        Ok(list(&mut data, "cars")
            .iter()
            .filter_map(|car| {
                let id = car["car_id"].as_u64()?.to_string();
                let name = car["name"].as_str().unwrap_or("unnamed").to_string();
                Some((id, name))
            })
            .collect())
    }

    fn vehicle_state(&self, car_id: u64) -> Result<Output, ToolError> {
        let (car, _) = self.car_details(car_id)?;
        let data = self.fetch_status(car_id)?;
        let state = normalise(&car, &data);
        Ok(Output::json_with_text(&state.to_json(), state.summary()))
    }
}

fn upstream(message: String) -> ToolError {
    ToolError::Upstream(UpstreamError {
        status: 0,
        message,
        retry_after_seconds: None,
    })
}

/// Structured data, and for clients that read only text a headline followed by the JSON.
fn answer(data: Value, headline: String) -> Output {
    let text = format!("{headline}\n{data}");
    Output::json_with_text(&data, text)
}

/// TeslaMateApi (Go) writes an empty list as `null`; the tools always return an array.
fn list<'a>(data: &'a mut Value, key: &str) -> &'a Vec<Value> {
    if !data[key].is_array() {
        data[key] = json!([]);
    }
    data[key].as_array().expect("just made an array")
}

/// TeslaMateApi takes RFC 3339 or a local date and time; a bare date means the whole day.
fn api_date(date: &str, end_of_day: bool) -> String {
    match (date.len(), end_of_day) {
        (10, false) => format!("{date}T00:00:00"),
        (10, true) => format!("{date}T23:59:59"),
        _ => date.to_string(),
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// TeslaMate's status (in its configured units) in the shared shape (km, km/h, °C).
fn normalise(car: &Value, data: &Value) -> VehicleState {
    let status = &data["status"];
    let in_miles = data["units"]["unit_of_length"].as_str() == Some("mi");
    let in_fahrenheit = data["units"]["unit_of_temperature"].as_str() == Some("F");
    let km = |value: &Value| {
        value.as_f64().map(|length| {
            round1(if in_miles {
                length * KM_PER_MILE
            } else {
                length
            })
        })
    };
    let celsius = |value: &Value| {
        value.as_f64().map(|degrees| {
            round1(if in_fahrenheit {
                (degrees - 32.0) * 5.0 / 9.0
            } else {
                degrees
            })
        })
    };
    let flags = &status["car_status"];
    let battery = &status["battery_details"];
    let charging = &status["charging_details"];
    let driving = &status["driving_details"];
    let climate = &status["climate_details"];
    let geodata = &status["car_geodata"];
    let position = |key: &str| {
        geodata["location"][key]
            .as_f64()
            .or_else(|| geodata[key].as_f64())
    };
    let word = status["state"].as_str().unwrap_or_default();
    VehicleState {
        vin: car["car_details"]["vin"].as_str().map(str::to_string),
        display_name: status["display_name"]
            .as_str()
            .filter(|name| !name.is_empty())
            .or_else(|| car["name"].as_str())
            .map(str::to_string),
        // TeslaMate also says driving, charging, updating or suspended: all awake.
        state: match word {
            "asleep" => "asleep",
            "offline" | "" => "offline",
            _ => "online",
        }
        .to_string(),
        battery_level: battery["battery_level"].as_f64(),
        battery_range_km: km(&battery["rated_battery_range"]),
        charging: Charging {
            state: charging["charging_state"]
                .as_str()
                .filter(|word| !word.is_empty())
                .map(tesla_charging_word),
            minutes_remaining: charging["time_to_full_charge"]
                .as_f64()
                .map(|hours| (hours * 60.0).round()),
            charge_limit: charging["charge_limit_soc"].as_f64(),
            charger_power_kw: charging["charger_power"].as_f64(),
        },
        location: Location {
            latitude: position("latitude"),
            longitude: position("longitude"),
            heading: driving["heading"].as_f64(),
            // TeslaMateApi reports speed in km/h whatever the length unit.
            speed: driving["speed"].as_f64(),
        },
        locked: flags["locked"].as_bool(),
        sentry_mode: flags["sentry_mode"].as_bool(),
        climate: Climate {
            is_on: climate["is_climate_on"].as_bool(),
            inside_temp: celsius(&climate["inside_temp"]),
            outside_temp: celsius(&climate["outside_temp"]),
            target_temp: None,
            is_defrosting: None,
        },
        doors: Doors {
            front_left: flags["driver_front_door_open"].as_bool(),
            front_right: flags["passenger_front_door_open"].as_bool(),
            rear_left: flags["driver_rear_door_open"].as_bool(),
            rear_right: flags["passenger_rear_door_open"].as_bool(),
            frunk: flags["frunk_open"].as_bool(),
            trunk: flags["trunk_open"].as_bool(),
            charge_port: charging["charge_port_door_open"].as_bool(),
        },
        odometer_km: km(&status["odometer"]),
        last_updated: None,
    }
}

/// TeslaMateApi lowercases Tesla's charging state; the shared shape keeps Tesla's spelling.
fn tesla_charging_word(word: &str) -> String {
    [
        "Disconnected",
        "Charging",
        "Complete",
        "Stopped",
        "NoPower",
        "Starting",
    ]
    .iter()
    .find(|known| known.eq_ignore_ascii_case(word))
    .map_or_else(|| word.to_string(), |known| known.to_string())
}

carport_guest::plugin!(TeslaMate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_date_accepts_what_the_date_pattern_accepts() {
        for good in [
            "2026-03-01",
            "2026-03-01T08:00:00",
            "2026-03-01 08:00:00",
            "2026-03-01T08:00:00Z",
            "2026-03-01T08:00:00.123+02:00",
            "2026-03-01T08:00:00-05:00",
        ] {
            assert!(is_date(good), "{good}");
        }
        for bad in [
            "",
            "2026-3-01",
            "2026-03-01T08:00",
            "2026-03-01T08:00:00.",
            "2026-03-01T08:00:00+0200",
            "2026-03-01T08:00:00ZZ",
            "01/03/2026",
            "2026-03-01x",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }

    #[test]
    fn compact_reads_are_checked_against_their_own_schemas() {
        let refused = |arguments: &str| {
            matches!(
                resolve_compact("read", arguments),
                Err(ToolError::InvalidArguments(_))
            )
        };
        assert!(refused(r#"{"endpoint": "get_car"}"#));
        assert!(refused(
            r#"{"endpoint": "get_car", "arguments": {"car_id": 0}}"#
        ));
        assert!(refused(
            r#"{"endpoint": "get_car_charges", "arguments": {"car_id": 1, "start_date": "March"}}"#
        ));
        assert!(refused(
            r#"{"endpoint": "vehicle_state", "arguments": {"car_id": 1}}"#
        ));
        let Ok(Ok((name, arguments))) = resolve_compact(
            "read",
            r#"{"endpoint": "get_car_charges", "arguments": {"car_id": 1, "start_date": "2026-03-01"}}"#,
        ) else {
            panic!("a good read was refused")
        };
        assert_eq!(name, "get_car_charges");
        assert_eq!(
            serde_json::from_str::<Value>(&arguments).unwrap(),
            json!({"car_id": 1, "start_date": "2026-03-01"})
        );
    }
}
