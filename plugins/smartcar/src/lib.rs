//! carport provider for Smartcar's API v3 (<https://smartcar.com/docs/api>): connections,
//! signals, commands and the Management API, for cars of any make Smartcar reaches.
//!
//! Every request carries the application's access token, which the host obtains with the
//! client-credentials grant `[plugins.smartcar.oauth.application]` and refreshes (401 → one new
//! token → one resend); the plugin never sees the token or the client secret. Requests made for
//! a user carry `sc-user-id`. Commands Smartcar runs asynchronously (HTTP 202) are followed to
//! their end with progress reports and are never sent twice. Smartcar's errors become tool
//! errors that name the fix (`errors.rs`); signal codes, units and the shared vehicle shape are
//! in `signals.rs`. Wire details per tool, with sources: WIRE.md.

mod errors;
mod signals;

use carport_guest::compact::{Compact, Group, Resolved};
use carport_guest::http::{Request, Response};
use carport_guest::resources::VehicleStates;
use carport_guest::vehicle::VehicleState;
use carport_guest::{
    Annotations, CallContext, Completion, CompletionRequest, Output, PluginInfo, Provider,
    ResourceContents, ResourceInfo, Settings, Tool, ToolError, ToolMode, args, clock, progress,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use errors::Needs;

const DEFAULT_VEHICLE_API: &str = "https://vehicle.api.smartcar.com/v3";
const DEFAULT_MANAGEMENT_API: &str = "https://management.api.smartcar.com/v3";
/// The `[plugins.smartcar.oauth.<grant>]` table whose token every request carries.
const GRANT: &str = "application";
const DEFAULT_COMMAND_POLL_MS: u32 = 2000;
const DEFAULT_COMMAND_TIMEOUT_SECONDS: u64 = 100;
/// Smartcar's schema has 93 signals; one page of 100 holds them all, so `vehicle_state` is
/// one request.
const ALL_SIGNALS_PAGE_SIZE: u32 = 100;
const MIN_CHARGE_LIMIT: f64 = 50.0;
const MAX_CHARGE_LIMIT: f64 = 100.0;

const STATES: VehicleStates = VehicleStates {
    scheme: "smartcar",
    id_name: "vehicle_id",
    provider: "Smartcar",
};

struct Smartcar;

/// The six commands: tool name, path under `/vehicles/{id}/commands/`, permission, what it does.
const COMMANDS: &[(&str, &str, &str, &str)] = &[
    (
        "lock_vehicle",
        "security/lock",
        "control_security",
        "Lock the vehicle's doors.",
    ),
    (
        "unlock_vehicle",
        "security/unlock",
        "control_security",
        "Unlock the vehicle's doors. Lowers the car's security: only on the owner's explicit request.",
    ),
    (
        "start_charge",
        "charge/start",
        "control_charge",
        "Start charging an electric vehicle that is plugged in.",
    ),
    (
        "stop_charge",
        "charge/stop",
        "control_charge",
        "Stop charging an electric vehicle.",
    ),
    (
        "set_charge_limit",
        "charge/set-limit",
        "control_charge",
        "Set the level (percent, 50-100) at which an electric vehicle stops charging.",
    ),
    (
        "set_navigation_destination",
        "navigation/set-destination",
        "control_navigation",
        "Send a destination (latitude, longitude) to the vehicle's navigation system.",
    ),
];

/// Compact mode: the reads (`vehicle_state` among them) in `read`, everything that changes
/// something in `command`, and `help`. The deletions join the car's commands rather than get a
/// tool of their own: a fourth tool would cost more than the whole budget of a tenth of full
/// mode allows, and `command` is marked destructive anyway (unlock).
const GROUPS: &[Group] = &[
    Group {
        tool: "read",
        title: "Read Smartcar data",
        description: "Read one Smartcar endpoint: a car's state, signals or attributes, the \
                      connections, or the applications.",
        selector: "endpoint",
        member: |tool| tool.annotations.read_only,
    },
    Group {
        tool: "command",
        title: "Command",
        description: "Send one command to a car, or delete a connection or user (cannot be \
                      undone).",
        selector: "command",
        member: |tool| !tool.annotations.read_only,
    },
];

const COMPACT_SUMMARY: &str = "Cars of many makes through Smartcar, in three tools: read \
     {endpoint, arguments} (list_connections first for vehicle and user ids; vehicle_state for \
     a car in km and °C; signals, attributes, applications), command {command, arguments} \
     (lock, unlock, charging, charge limit, navigation, which report what the car did; \
     delete_connection and delete_user cannot be undone), and help {operation} for what an \
     operation does, takes and returns.";

fn compact() -> Compact<'static> {
    Compact {
        full: tools(),
        groups: GROUPS,
        patterns: &[(ID_PATTERN, is_id)],
    }
}

impl Provider for Smartcar {
    fn describe(context: &CallContext) -> PluginInfo {
        let (summary, tools) = match context.tool_mode {
            ToolMode::Full => (
                "Cars of many makes through Smartcar: list_connections shows which users and \
                 vehicles are connected; vehicle_state reads a car (km, °C, fuel for combustion \
                 cars); lock_vehicle, start_charge and the other commands act on it and report \
                 what the car did.",
                tools(),
            ),
            ToolMode::Compact => (COMPACT_SUMMARY, compact().tools()),
        };
        PluginInfo::new("smartcar", summary, tools)
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_resources(STATES.scheme, vec![STATES.template()])
    }

    fn list_resources(context: CallContext) -> Result<Vec<ResourceInfo>, ToolError> {
        let api = Api::new(Settings::from_context(&context));
        // Smartcar names no car, so each is listed by its vehicle id.
        Ok(api
            .connected_vehicles()?
            .iter()
            .map(|(vehicle, _user)| STATES.resource(vehicle, vehicle))
            .collect())
    }

    /// A car's state is read for the user who connected it.
    fn read_resource(
        uri: String,
        context: CallContext,
    ) -> Result<Vec<ResourceContents>, ToolError> {
        let api = Api::new(Settings::from_context(&context));
        STATES.read(&uri, |vehicle| {
            let user = api
                .connected_vehicles()?
                .into_iter()
                .find(|(connected, _)| connected == vehicle)
                .map(|(_, user)| user)
                .ok_or_else(|| ToolError::NotFound(format!("no connected vehicle {vehicle}")))?;
            let mut arguments = Map::new();
            arguments.insert("vehicle_id".into(), json!(vehicle));
            arguments.insert("user_id".into(), json!(user));
            api.vehicle_state(&arguments)
        })
    }

    fn complete(request: CompletionRequest, context: CallContext) -> Result<Completion, ToolError> {
        let api = Api::new(Settings::from_context(&context));
        // The pairs are (vehicle, user): completion uses the vehicle ids only.
        STATES.complete(&request, || api.connected_vehicles())
    }

    fn call_tool(
        name: String,
        arguments: String,
        context: CallContext,
    ) -> Result<Output, ToolError> {
        let arguments: Map<String, Value> = args::parse(&arguments)?;
        let (name, arguments) = match context.tool_mode {
            ToolMode::Full => (name, arguments),
            ToolMode::Compact => match compact().resolve(&name, arguments)? {
                Resolved::Run(name, arguments) => (name, arguments),
                Resolved::Answer(help) => return Ok(help),
            },
        };
        let api = Api::new(Settings::from_context(&context));
        match name.as_str() {
            "list_connections" => api.list_connections(&arguments),
            "get_connection" => api.connection("GET", &arguments),
            "delete_connection" => api.connection("DELETE", &arguments),
            "delete_user" => api.delete_user(&arguments),
            "get_vehicle" => api.get_vehicle(&arguments),
            "get_signals" => api.get_signals(&arguments),
            "get_signal" => api.get_signal(&arguments),
            "vehicle_state" => api.vehicle_state(&arguments),
            "list_applications" => api.management("/applications", None),
            "get_application" => {
                let id = path_id(&arguments, "applicationId")?;
                api.management(&format!("/applications/{id}"), None)
            }
            "list_application_secrets" => {
                let id = path_id(&arguments, "applicationId")?;
                api.management(&format!("/applications/{id}/secrets"), Some(id))
            }
            command => match COMMANDS.iter().find(|(tool, ..)| *tool == command) {
                Some(row) => api.command(row, &arguments),
                None => Err(ToolError::invalid(format!(
                    "smartcar has no tool named {command}"
                ))),
            },
        }
    }
}

carport_guest::plugin!(Smartcar);

/// Smartcar's ids (users, vehicles, connections, applications), as the schemas allow them.
const ID_PATTERN: &str = "^[A-Za-z0-9_.:-]{1,128}$";

/// Exactly the strings [`ID_PATTERN`] matches.
fn is_id(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_.:-".contains(&byte))
}

fn id_property(what: &str) -> Value {
    json!({"type": "string", "minLength": 1, "pattern": ID_PATTERN, "description": what})
}

fn user_property() -> Value {
    id_property(
        "Smartcar user ID the call acts for (sent as the sc-user-id header). Optional when \
         plugins.toml sets `user_id`; list_connections shows each vehicle's user.",
    )
}

fn vehicle_property() -> Value {
    id_property(
        "Smartcar vehicle ID (not the VIN). Optional when plugins.toml sets `vehicle_id`; \
         list_connections shows the connected vehicles.",
    )
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

fn page_properties(mut properties: Value) -> Value {
    properties["pageNumber"] =
        json!({"type": "integer", "minimum": 1, "description": "Page, from 1."});
    properties["pageSize"] = json!({"type": "integer", "minimum": 1, "maximum": 100, "description": "Results per page."});
    properties
}

/// `{ <items>: [...], meta, links }`: one page of a JSON:API collection.
fn listing(items: &str) -> Value {
    json!({"type": "object", "properties": {items: {}, "meta": {}, "links": {}}, "required": [items]})
}

/// One JSON:API resource: `{ id, type, attributes, ... }`.
fn resource() -> Value {
    json!({"type": "object", "properties": {"id": {"type": "string"}, "type": {"type": "string"},
           "attributes": {"type": "object"}}, "required": ["id"]})
}

fn deleted(id: &str) -> Value {
    json!({"type": "object", "properties": {"deleted": {"type": "boolean"}, id: {"type": "string"}},
           "required": ["deleted", id]})
}

fn vehicle_schema() -> Value {
    json!({"type": "object", "properties": {"id": {"type": "string"}, "make": {}, "model": {},
           "year": {}, "mode": {}, "powertrainType": {}}, "required": ["id"]})
}

fn signal_schema() -> Value {
    json!({"type": "object", "properties": {"code": {}, "name": {}, "group": {}, "status": {},
           "body": {"description": "Smartcar's value with its unit"},
           "normalized": {"description": "the value in km, km/h, °C, kPa or litres"},
           "retrieved_at": {"description": "Unix seconds"}}, "required": ["code", "body"]})
}

fn tools() -> Vec<Tool> {
    let connection_id = id_property("Connection ID from list_connections (not the vehicle ID).");
    let application_id = id_property("Application ID from list_applications.");
    let vehicle_and_user = json!({"vehicle_id": vehicle_property(), "user_id": user_property()});
    let mut tools = vec![
        Tool::new(
            "list_connections",
            "List Connections",
            "List the application's vehicle connections (which user connected which vehicle, \
             make, model, year, permissions), newest first, one page at a time. Filters: \
             userId, vehicleId, vehicleMode (live or simulated). Returns { connections: [...], \
             meta: { pageNumber, pageSize, totalCount }, links }. Use a connection's vehicle \
             and user IDs as vehicle_id and user_id of the other tools.",
            object(
                page_properties(json!({
                    "userId": id_property("Only this user's connections."),
                    "vehicleId": id_property("Only this vehicle's connections."),
                    "vehicleMode": {"type": "string", "enum": ["live", "simulated"],
                                    "description": "Only live or only simulated vehicles."},
                })),
                &[],
            ),
            Annotations::READ,
        )
        .with_output_schema(listing("connections")),
        Tool::new(
            "get_connection",
            "Get Connection",
            "One connection by its connection ID: vehicle (make, model, year, mode, \
             powertrainType), user, granted permissions, dates.",
            object(
                json!({"connectionId": connection_id.clone()}),
                &["connectionId"],
            ),
            Annotations::READ,
        )
        .with_output_schema(resource()),
        Tool::new(
            "delete_connection",
            "Delete Connection",
            "Disconnect a vehicle from the application (by connection ID). The application \
             loses access to the car until its owner connects it again through Smartcar \
             Connect. Cannot be undone.",
            object(json!({"connectionId": connection_id}), &["connectionId"]),
            Annotations::DESTRUCTIVE,
        )
        .with_output_schema(deleted("connectionId")),
        Tool::new(
            "delete_user",
            "Delete User",
            "Remove a user from the application: all of the user's connections and data are \
             purged. Cannot be undone.",
            object(
                json!({"userId": id_property("The user to remove.")}),
                &["userId"],
            ),
            Annotations::DESTRUCTIVE,
        )
        .with_output_schema(deleted("userId")),
        Tool::new(
            "get_vehicle",
            "Get Vehicle",
            "A vehicle's attributes: make, model, year, mode (live or simulated) and \
             powertrainType (e.g. BEV, ICE, PHEV).",
            object(json!({"vehicle_id": vehicle_property()}), &[]),
            Annotations::READ,
        )
        .with_output_schema(vehicle_schema()),
        Tool::new(
            "get_signals",
            "Get Signals",
            "All the signals the vehicle reports, one page at a time: { signals: [{ code, \
             name, group, status, body, normalized, retrieved_at }], meta, links }. `body` is \
             Smartcar's value with its unit; `normalized` converts it to km, km/h, °C, kPa or \
             litres when the unit is imperial.",
            object(page_properties(vehicle_and_user.clone()), &[]),
            Annotations::READ,
        )
        .with_output_schema(listing("signals")),
        Tool::new(
            "get_signal",
            "Get Signal",
            "The current value of one signal, by Smartcar's code (e.g. \
             tractionbattery-stateofcharge, odometer-traveleddistance, \
             location-preciselocation, internalcombustionengine-fuellevel, closure-islocked) \
             or the seed's dotted name (e.g. charge.ischarging, ice.fuel.level). An unknown \
             code is refused with the nearest valid ones.",
            object(
                {
                    let mut properties = vehicle_and_user.clone();
                    properties["signal_code"] = json!({"type": "string", "minLength": 1,
                        "maxLength": 80, "description": "Signal code."});
                    properties
                },
                &["signal_code"],
            ),
            Annotations::READ,
        )
        .with_output_schema(signal_schema()),
        Tool::new(
            "vehicle_state",
            "Get Vehicle State",
            "The car in carport's shared vehicle shape, from one signals request: { vin, \
             display_name (make model year), state (online|asleep|offline), battery_level \
             (%), battery_range_km, charging: { state, minutes_remaining, charge_limit, \
             charger_power_kw }, location, locked, climate (°C), doors (true = open), \
             odometer_km, last_updated } plus, when the car reports them, fuel_level (%), \
             fuel_range_km, tire_pressures_kpa and oil_life (%). Does not wake the car.",
            object(vehicle_and_user.clone(), &[]),
            Annotations::READ,
        )
        .with_output_schema(VehicleState::output_schema_with_extras()),
    ];
    for (name, _, permission, what) in COMMANDS {
        let mut properties = vehicle_and_user.clone();
        let mut required = vec![];
        match *name {
            "set_charge_limit" => {
                properties["percent"] = json!({"type": "number", "minimum": MIN_CHARGE_LIMIT,
                    "maximum": MAX_CHARGE_LIMIT, "description": "Charge limit in percent, 50-100."});
                required.push("percent");
            }
            "set_navigation_destination" => {
                properties["latitude"] = json!({"type": "number", "minimum": -90, "maximum": 90});
                properties["longitude"] =
                    json!({"type": "number", "minimum": -180, "maximum": 180});
                required.extend(["latitude", "longitude"]);
            }
            _ => {}
        }
        let annotations = match *name {
            "unlock_vehicle" => Annotations::DESTRUCTIVE,
            "lock_vehicle" | "set_charge_limit" | "start_charge" | "stop_charge" => {
                Annotations::SET
            }
            _ => Annotations::ACT,
        };
        let title = name
            .split('_')
            .map(|word| {
                let mut letters = word.chars();
                letters
                    .next()
                    .map(|first| first.to_uppercase().chain(letters).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ");
        tools.push(
            Tool::new(
                name,
                &title,
                &format!(
                    "{what} Needs the `{permission}` permission. Smartcar may run the command \
                     asynchronously: carport follows it to its end with progress reports and \
                     never sends it twice. Returns {{ command, status (SUCCESS, FAILURE or \
                     PENDING), execution_id, message }}; read the matching signal afterwards \
                     to see the car's new state."
                ),
                object(properties, &required),
                annotations,
            )
            .with_output_schema(json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string"},
                    "status": {"type": "string"},
                    "execution_id": {"type": ["string", "null"]},
                    "message": {"type": "string"}
                },
                "required": ["command", "status", "message"]
            })),
        );
    }
    tools.extend([
        Tool::new(
            "list_applications",
            "List Applications",
            "The Smartcar applications of your organisation (Management API).",
            object(json!({}), &[]),
            Annotations::READ,
        )
        .with_output_schema(listing("data")),
        Tool::new(
            "get_application",
            "Get Application",
            "One Smartcar application's details (Management API).",
            object(
                json!({"applicationId": application_id.clone()}),
                &["applicationId"],
            ),
            Annotations::READ,
        )
        .with_output_schema(listing("data")),
        Tool::new(
            "list_application_secrets",
            "List Application Secrets",
            "The credentials of an application: names, IDs and dates only. Secret values are \
             never returned (carport removes them even if Smartcar sends them).",
            object(json!({"applicationId": application_id}), &["applicationId"]),
            Annotations::READ,
        )
        .with_output_schema(listing("secrets")),
    ]);
    tools
}

fn path_id<'a>(arguments: &'a Map<String, Value>, name: &str) -> Result<&'a str, ToolError> {
    arguments
        .get(name)
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ToolError::invalid(format!("{name} is required")))
}

#[derive(Deserialize)]
struct CommandArgs {
    vehicle_id: Option<String>,
    user_id: Option<String>,
    percent: Option<f64>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

struct Api {
    vehicle_api: String,
    management_api: String,
    default_user: Option<String>,
    default_vehicle: Option<String>,
    poll_ms: u32,
    command_timeout_ms: u64,
}

impl Api {
    fn new(settings: Settings) -> Api {
        let url = |key: &str, default: &str| {
            settings
                .get_or(key, default)
                .trim_end_matches('/')
                .to_string()
        };
        Api {
            vehicle_api: url("base_url", DEFAULT_VEHICLE_API),
            management_api: url("management_url", DEFAULT_MANAGEMENT_API),
            default_user: settings.get("user_id").map(str::to_string),
            default_vehicle: settings.get("vehicle_id").map(str::to_string),
            poll_ms: settings
                .get("command_poll_ms")
                .and_then(|text| text.parse().ok())
                .unwrap_or(DEFAULT_COMMAND_POLL_MS),
            command_timeout_ms: settings
                .get("command_timeout_seconds")
                .and_then(|text| text.parse::<u64>().ok())
                .unwrap_or(DEFAULT_COMMAND_TIMEOUT_SECONDS)
                * 1000,
        }
    }

    fn user(&self, requested: Option<&str>) -> Result<String, ToolError> {
        requested
            .map(str::to_string)
            .or_else(|| self.default_user.clone())
            .ok_or_else(|| {
                ToolError::invalid(
                    "no user_id given and no default `user_id` in plugins.toml: call \
                     list_connections and pass the vehicle's user ID",
                )
            })
    }

    fn vehicle(&self, requested: Option<&str>) -> Result<String, ToolError> {
        requested
            .map(str::to_string)
            .or_else(|| self.default_vehicle.clone())
            .ok_or_else(|| {
                ToolError::invalid(
                    "no vehicle_id given and no default `vehicle_id` in plugins.toml: call \
                     list_connections and pass one of its vehicle IDs",
                )
            })
    }

    fn vehicle_and_user(
        &self,
        arguments: &Map<String, Value>,
    ) -> Result<(String, String), ToolError> {
        let text = |name: &str| arguments.get(name).and_then(Value::as_str);
        Ok((
            self.vehicle(text("vehicle_id"))?,
            self.user(text("user_id"))?,
        ))
    }

    fn request(&self, method: &'static str, url: String) -> Request {
        Request::new(method, url).oauth(GRANT)
    }

    fn for_user(&self, method: &'static str, path: &str, user: &str) -> Request {
        self.request(method, format!("{}{path}", self.vehicle_api))
            .header("sc-user-id", user)
    }

    /// Sends and returns the JSON body of a 2xx answer, or the error that names the fix.
    fn exchange(&self, request: Request, needs: &Needs) -> Result<Value, ToolError> {
        let response = request.send()?;
        if !response.is_success() {
            return Err(errors::tool_error(&response, needs));
        }
        body_json(&response)
    }

    /// Every connected vehicle with the user who connected it (the first page of 100).
    fn connected_vehicles(&self) -> Result<Vec<(String, String)>, ToolError> {
        let request = self
            .request("GET", format!("{}/connections", self.vehicle_api))
            .query("page[size]", "100");
        let answer = self.exchange(request, &Needs::nothing())?;
        Ok(answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|connection| {
                let related = &connection["relationships"];
                Some((
                    related["vehicle"]["data"]["id"].as_str()?.to_string(),
                    related["user"]["data"]["id"].as_str()?.to_string(),
                ))
            })
            .collect())
    }

    fn list_connections(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let mut request = self.request("GET", format!("{}/connections", self.vehicle_api));
        for (argument, parameter) in [
            ("userId", "filter[userId]"),
            ("vehicleId", "filter[vehicleId]"),
            ("vehicleMode", "filter[vehicle.mode]"),
        ] {
            if let Some(value) = arguments.get(argument).and_then(Value::as_str) {
                request = request.query(parameter, value);
            }
        }
        request = page_query(request, arguments, "page[number]", "page[size]");
        let answer = self.exchange(request, &Needs::nothing())?;
        let connections = answer["data"].as_array().cloned().unwrap_or_default();
        let text = format!(
            "{} connection(s) on this page of {} in all: {}",
            connections.len(),
            answer["meta"]["totalCount"],
            Value::from(connections.clone())
        );
        let result = json!({
            "connections": connections,
            "meta": answer["meta"],
            "links": answer["links"],
        });
        Ok(Output::json_with_text(&result, text))
    }

    fn connection(
        &self,
        method: &'static str,
        arguments: &Map<String, Value>,
    ) -> Result<Output, ToolError> {
        let id = path_id(arguments, "connectionId")?;
        let request = self.request(method, format!("{}/connections/{id}", self.vehicle_api));
        let answer = self.exchange(request, &Needs::thing("connection", id))?;
        if method == "DELETE" {
            let result = json!({"deleted": true, "connectionId": id});
            return Ok(Output::json_with_text(
                &result,
                format!("connection {id} deleted: the application no longer reaches that car"),
            ));
        }
        Ok(Output::json(&answer["data"]))
    }

    fn delete_user(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let id = path_id(arguments, "userId")?;
        let request = self.request("DELETE", format!("{}/users/{id}", self.vehicle_api));
        self.exchange(request, &Needs::thing("user", id))?;
        let result = json!({"deleted": true, "userId": id});
        Ok(Output::json_with_text(
            &result,
            format!("user {id} and all of the user's connections deleted"),
        ))
    }

    fn get_vehicle(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let vehicle = self.vehicle(arguments.get("vehicle_id").and_then(Value::as_str))?;
        let request = self.request("GET", format!("{}/vehicles/{vehicle}", self.vehicle_api));
        let answer = self.exchange(request, &Needs::permission("read_vehicle_info"))?;
        let attributes = &answer["data"]["attributes"];
        let result = json!({
            "id": answer["data"]["id"],
            "make": attributes["make"],
            "model": attributes["model"],
            "year": attributes["year"],
            "mode": attributes["mode"],
            "powertrainType": attributes["powertrainType"],
        });
        let text = format!(
            "{} {} {}",
            attributes["make"].as_str().unwrap_or("?"),
            attributes["model"].as_str().unwrap_or("?"),
            attributes["year"]
        );
        Ok(Output::json_with_text(&result, text))
    }

    fn signals_page(
        &self,
        vehicle: &str,
        user: &str,
        arguments: &Map<String, Value>,
        needs: &Needs,
    ) -> Result<Value, ToolError> {
        let request = self.for_user("GET", &format!("/vehicles/{vehicle}/signals"), user);
        let request = page_query(request, arguments, "page", "pageSize");
        self.exchange(request, needs)
    }

    fn get_signals(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let (vehicle, user) = self.vehicle_and_user(arguments)?;
        let answer = self.signals_page(&vehicle, &user, arguments, &Needs::nothing())?;
        let signals: Vec<Value> = answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(signals::summarise)
            .collect();
        let result = json!({"signals": signals, "meta": answer["meta"], "links": answer["links"]});
        Ok(Output::json(&result))
    }

    fn get_signal(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let requested = path_id(arguments, "signal_code")?;
        let signal = signals::resolve(requested)?;
        let (vehicle, user) = self.vehicle_and_user(arguments)?;
        let request = self.for_user(
            "GET",
            &format!("/vehicles/{vehicle}/signals/{}", signal.code),
            &user,
        );
        let answer = self.exchange(request, &Needs::permission(signal.permission))?;
        // The reference shows the signal at the top level; JSON:API documents wrap it in `data`.
        let document = if answer["data"].is_object() {
            &answer["data"]
        } else {
            &answer
        };
        Ok(Output::json(&signals::summarise(document)))
    }

    fn vehicle_state(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let (vehicle, user) = self.vehicle_and_user(arguments)?;
        let mut page = Map::new();
        page.insert("pageSize".into(), json!(ALL_SIGNALS_PAGE_SIZE));
        let answer = self.signals_page(&vehicle, &user, &page, &Needs::nothing())?;
        let (state, extras) = signals::vehicle_state(&answer);
        let mut text = state.summary();
        if let Some(fuel) = extras.fuel_level {
            let range = extras
                .fuel_range_km
                .map(|km| format!(" ({km:.0} km range)"))
                .unwrap_or_default();
            text.push_str(&format!(", fuel {fuel:.0}%{range}"));
        }
        if let Some(km) = state.odometer_km {
            text.push_str(&format!(", odometer {km:.0} km"));
        }
        Ok(Output::json_with_text(&state.to_json_with(&extras), text))
    }

    fn command(
        &self,
        (name, path, permission, _): &(&str, &str, &'static str, &str),
        arguments: &Map<String, Value>,
    ) -> Result<Output, ToolError> {
        let parsed: CommandArgs = serde_json::from_value(Value::Object(arguments.clone()))
            .map_err(|error| ToolError::invalid(error.to_string()))?;
        let vehicle = self.vehicle(parsed.vehicle_id.as_deref())?;
        let user = self.user(parsed.user_id.as_deref())?;
        let mut request = self.for_user(
            "POST",
            &format!("/vehicles/{vehicle}/commands/{path}"),
            &user,
        );
        match *name {
            "set_charge_limit" => {
                let percent = parsed
                    .percent
                    .filter(|percent| (MIN_CHARGE_LIMIT..=MAX_CHARGE_LIMIT).contains(percent))
                    .ok_or_else(|| ToolError::invalid("percent must be between 50 and 100"))?;
                request = request.json(&json!({"data": {"attributes": {"percent": percent}}}));
            }
            "set_navigation_destination" => {
                let (Some(latitude), Some(longitude)) = (parsed.latitude, parsed.longitude) else {
                    return Err(ToolError::invalid("latitude and longitude are required"));
                };
                if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
                    return Err(ToolError::invalid(
                        "latitude must be within -90..90 and longitude within -180..180",
                    ));
                }
                request = request.json(
                    &json!({"data": {"attributes": {"latitude": latitude, "longitude": longitude}}}),
                );
            }
            _ => {}
        }
        let needs = Needs::permission(permission);
        let response = request.send()?;
        if !response.is_success() {
            return Err(errors::tool_error(&response, &needs));
        }
        let mut execution = body_json(&response)?;
        if response.status == 202 || !is_final(&execution) {
            execution = self.follow(name, &vehicle, &user, execution, &needs)?;
        }
        command_output(name, &execution)
    }

    /// Reads a long-running command's execution until it ends. Only the execution is read
    /// again; the command itself is never resent.
    fn follow(
        &self,
        name: &str,
        vehicle: &str,
        user: &str,
        mut execution: Value,
        needs: &Needs,
    ) -> Result<Value, ToolError> {
        let Some(id) = execution["data"]["id"].as_str().map(str::to_string) else {
            return Ok(execution);
        };
        let started = clock::now_ms();
        let most_polls = u32::try_from(self.command_timeout_ms / u64::from(self.poll_ms.max(1)))
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let mut step = 0;
        progress::report(
            step,
            most_polls,
            &format!("{name} accepted by Smartcar; waiting for the car to carry it out"),
        );
        while !is_final(&execution) {
            if clock::now_ms().saturating_sub(started) >= self.command_timeout_ms {
                return Ok(execution);
            }
            clock::sleep_ms(self.poll_ms);
            step += 1;
            let request = self.for_user(
                "GET",
                &format!("/vehicles/{vehicle}/command-executions/{id}"),
                user,
            );
            execution = self.exchange(request, needs)?;
            progress::report(
                step.min(most_polls),
                most_polls,
                &format!("{name}: {}", status_of(&execution).unwrap_or("PENDING")),
            );
        }
        Ok(execution)
    }

    fn management(&self, path: &str, secrets_of: Option<&str>) -> Result<Output, ToolError> {
        let request = self.request("GET", format!("{}{path}", self.management_api));
        let needs = match secrets_of {
            Some(id) => Needs::thing("application", id),
            None => Needs::nothing(),
        };
        let answer = self.exchange(request, &needs)?;
        if secrets_of.is_some() {
            let secrets: Vec<Value> = answer["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(without_secret_values)
                .collect();
            let text = format!(
                "{} credential(s); secret values are never shown: {}",
                secrets.len(),
                Value::from(secrets.clone())
            );
            return Ok(Output::json_with_text(
                &json!({"secrets": secrets, "meta": answer["meta"]}),
                text,
            ));
        }
        Ok(Output::json(&answer))
    }
}

fn page_query(
    mut request: Request,
    arguments: &Map<String, Value>,
    number: &str,
    size: &str,
) -> Request {
    if let Some(page) = arguments.get("pageNumber").and_then(Value::as_u64) {
        request = request.query(number, &page.to_string());
    }
    if let Some(page_size) = arguments.get("pageSize").and_then(Value::as_u64) {
        request = request.query(size, &page_size.to_string());
    }
    request
}

fn body_json(response: &Response) -> Result<Value, ToolError> {
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    response.json()
}

fn status_of(execution: &Value) -> Option<&str> {
    execution["data"]["attributes"]["status"]["value"].as_str()
}

fn is_final(execution: &Value) -> bool {
    matches!(
        status_of(execution),
        Some("SUCCESS" | "FAILURE" | "FAILED" | "ERROR")
    )
}

fn command_output(name: &str, execution: &Value) -> Result<Output, ToolError> {
    let data = &execution["data"];
    let status = status_of(execution).unwrap_or("SUCCESS");
    let reason = data["attributes"]["status"]["reason"]
        .as_str()
        .or_else(|| data["attributes"]["status"]["detail"].as_str());
    let message = match status {
        "SUCCESS" => format!("{name}: the car reported success"),
        "FAILURE" | "FAILED" | "ERROR" => format!(
            "{name}: the car reported failure ({})",
            reason.unwrap_or("no reason given")
        ),
        other => format!(
            "{name} is still {other} on Smartcar's side after the wait; it was sent once and \
             is not resent: read the matching signal later to see whether it took effect"
        ),
    };
    let result = json!({
        "command": name,
        "status": status,
        "execution_id": data["id"],
        "message": message,
    });
    if matches!(status, "FAILURE" | "FAILED" | "ERROR") {
        return Err(ToolError::Upstream(carport_guest::UpstreamError {
            status: 200,
            message,
            retry_after_seconds: None,
        }));
    }
    Ok(Output::json_with_text(&result, message))
}

/// Keeps only what describes a credential; anything that could hold its value is dropped.
fn without_secret_values(secret: &Value) -> Value {
    const DESCRIPTIVE: &[&str] = &[
        "name",
        "description",
        "type",
        "status",
        "createdAt",
        "updatedAt",
        "lastUsedAt",
        "expiresAt",
    ];
    let attributes: Map<String, Value> = secret["attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| DESCRIPTIVE.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    json!({"id": secret["id"], "type": secret["type"], "attributes": attributes})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_survive() {
        let secret = json!({"id": "s1", "type": "secret", "attributes": {
            "name": "ci", "secret": "hunter2", "value": "hunter2", "hash": "x", "createdAt": "2025"}});
        let kept = without_secret_values(&secret);
        assert!(!kept.to_string().contains("hunter2"), "{kept}");
        assert_eq!(kept["attributes"]["name"], "ci");
    }

    #[test]
    fn compact_mode_serves_every_tool_through_read_or_command() {
        let full = tools();
        let listed = compact().tools();
        let mut served: Vec<String> = listed
            .iter()
            .filter_map(|tool| serde_json::from_str::<Value>(&tool.input_schema).ok())
            .flat_map(|schema| {
                ["endpoint", "command"]
                    .map(|selector| schema["properties"][selector]["enum"].clone())
            })
            .flat_map(|names| names.as_array().cloned().unwrap_or_default())
            .filter_map(|name| name.as_str().map(str::to_string))
            .collect();
        let mut expected: Vec<String> = full.iter().map(|tool| tool.name.clone()).collect();
        expected.sort();
        served.sort();
        assert_eq!(served, expected);
        // Every full-mode result is an object, so the groups' `{"type": "object"}` holds.
        for tool in &full {
            let output: Value =
                serde_json::from_str(tool.output_schema.as_deref().unwrap()).unwrap();
            assert_eq!(output["type"], "object", "{}", tool.name);
        }
        let command = listed.iter().find(|tool| tool.name == "command").unwrap();
        assert!(command.annotations.destructive);
    }

    #[test]
    fn the_id_matcher_agrees_with_the_pattern() {
        for id in ["sc-veh-vw-id4", "a", "A.b:c_d-9", &"x".repeat(128)] {
            assert!(is_id(id), "{id}");
        }
        for id in ["", "sc veh", "sc/veh", "é", &"x".repeat(129), "id\n"] {
            assert!(!is_id(id), "{id:?}");
        }
    }

    #[test]
    fn every_command_has_a_tool_and_annotations_mark_unlock_and_deletes() {
        let tools = tools();
        assert_eq!(tools.len(), 17);
        for destructive in ["unlock_vehicle", "delete_connection", "delete_user"] {
            let tool = tools.iter().find(|tool| tool.name == destructive).unwrap();
            assert!(tool.annotations.destructive, "{destructive}");
        }
        let lock = tools
            .iter()
            .find(|tool| tool.name == "lock_vehicle")
            .unwrap();
        assert!(!lock.annotations.destructive);
    }
}
