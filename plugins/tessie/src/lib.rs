//! carport provider for the Tessie API (<https://developer.tessie.com>).
//!
//! The reference plugin: small enough to read in one go, and complete in what it does. Tools:
//! `list_vehicles`, `tesla_state` (the shared vehicle shape), `tesla_command` (16 commands).
//! Settings: `base_url` (default `https://api.tessie.com`), `vin` (default vehicle).
//! Secret: `token`, attached by the host as a bearer header; the plugin never sees it.

use carport_guest::http::Request;
use carport_guest::resources::VehicleStates;
use carport_guest::vehicle::VehicleState;
use carport_guest::{
    Annotations, CallContext, Completion, CompletionRequest, Output, PluginInfo, Provider,
    ResourceContents, ResourceInfo, Settings, Tool, ToolError, args, progress,
};
use serde::Deserialize;
use serde_json::{Value, json};

const DEFAULT_BASE_URL: &str = "https://api.tessie.com";
const TOKEN_SECRET: &str = "token";
const MIN_TEMPERATURE_C: f64 = 15.0;
const MAX_TEMPERATURE_C: f64 = 28.0;
const STATES: VehicleStates = VehicleStates {
    scheme: "tessie",
    id_name: "vin",
    provider: "Tessie",
};

struct Tessie;

/// Each command of `tesla_command`: its name, Tessie's endpoint under `/{vin}/command/`, and
/// what the assistant is told it does.
const COMMANDS: &[(&str, &str, &str)] = &[
    ("lock", "lock", "lock the doors"),
    ("unlock", "unlock", "unlock the doors"),
    ("start_climate", "start_climate", "start HVAC"),
    ("stop_climate", "stop_climate", "stop HVAC"),
    (
        "set_temperature",
        "set_temperatures",
        "set cabin temperature; requires temperature (15-28 °C)",
    ),
    ("start_defrost", "start_max_defrost", "start max defrost"),
    ("stop_defrost", "stop_max_defrost", "stop max defrost"),
    (
        "open_frunk",
        "activate_front_trunk",
        "open the front trunk (one-way: it closes by hand)",
    ),
    (
        "open_trunk",
        "activate_rear_trunk",
        "open the rear trunk (closes it if powered and open)",
    ),
    (
        "open_charge_port",
        "open_charge_port",
        "open the charge port door",
    ),
    (
        "close_charge_port",
        "close_charge_port",
        "close the charge port door",
    ),
    ("enable_sentry", "enable_sentry", "turn sentry mode on"),
    ("disable_sentry", "disable_sentry", "turn sentry mode off"),
    ("flash", "flash", "flash the headlights"),
    ("honk", "honk", "honk the horn"),
    (
        "share",
        "share",
        "send a destination to the car's navigation; requires destination",
    ),
];

fn vin_property() -> Value {
    json!({
        "type": "string",
        "description": "Vehicle VIN. Optional when plugins.toml sets a default `vin`; call \
                        list_vehicles to see the account's VINs.",
        "pattern": "^[A-HJ-NPR-Z0-9]{17}$"
    })
}

fn tools() -> Vec<Tool> {
    let command_list: String = COMMANDS
        .iter()
        .map(|(name, _, what)| format!("\n- {name}: {what}"))
        .collect();
    vec![
        Tool::new(
            "list_vehicles",
            "List Vehicles",
            "List the vehicles on the Tessie account. Returns [{ vin, display_name, state, \
             battery_level, locked }]. Use a vin from here as the `vin` argument of the other \
             tools when the account has several cars.",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            Annotations::READ,
        )
        .with_output_schema(json!({
            "type": "object",
            "properties": {
                "vehicles": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "vin": {"type": "string"},
                            "display_name": {"type": ["string", "null"]},
                            "state": {"type": "string"},
                            "battery_level": {"type": ["number", "null"]},
                            "locked": {"type": ["boolean", "null"]}
                        },
                        "required": ["vin", "state"]
                    }
                }
            },
            "required": ["vehicles"]
        })),
        Tool::new(
            "tesla_state",
            "Get Vehicle State",
            "Fetch the vehicle's current status. Does not wake a sleeping car: an asleep car \
             returns its last known data with state 'asleep'.\nReturns: { vin, display_name, \
             state ('online'|'asleep'|'offline'), battery_level (%), battery_range_km, charging: \
             { state, minutes_remaining, charge_limit (%), charger_power_kw }, location: { \
             latitude, longitude, heading, speed (km/h) }, locked, sentry_mode, climate: { is_on, \
             inside_temp, outside_temp, target_temp (°C), is_defrosting }, doors: { front_left, \
             front_right, rear_left, rear_right, frunk, trunk, charge_port } (true = open), \
             odometer_km, last_updated }.\nNext: use this before commands, and after them to \
             verify (locked=true after 'lock').",
            json!({
                "type": "object",
                "properties": {"vin": vin_property()},
                "additionalProperties": false
            }),
            Annotations::READ,
        )
        .with_output_schema(VehicleState::output_schema()),
        Tool::new(
            "tesla_command",
            "Execute Vehicle Command",
            &format!(
                "Execute a command on the vehicle. A sleeping car is woken first (10-30 s, with \
                 progress reports).\nCommands:{command_list}\nReturns: {{ success, command, \
                 message }}.\nNext: call tesla_state to verify the command took effect."
            ),
            json!({
                "type": "object",
                "properties": {
                    "command": {
                        "type": "string",
                        "enum": COMMANDS.iter().map(|(name, _, _)| *name).collect::<Vec<_>>(),
                    },
                    "temperature": {
                        "type": "number",
                        "minimum": MIN_TEMPERATURE_C,
                        "maximum": MAX_TEMPERATURE_C,
                        "description": "Cabin temperature in °C, for set_temperature."
                    },
                    "destination": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Address or place name, for share (e.g. 'SFO Airport')."
                    },
                    "locale": {
                        "type": "string",
                        "description": "Locale of the destination text, for share (e.g. 'en-US')."
                    },
                    "vin": vin_property()
                },
                "required": ["command"],
                "additionalProperties": false
            }),
            // unlock is among the commands, so the tool as a whole lowers security.
            Annotations::DESTRUCTIVE,
        )
        .with_output_schema(json!({
            "type": "object",
            "properties": {
                "success": {"type": "boolean"},
                "command": {"type": "string"},
                "message": {"type": "string"}
            },
            "required": ["success", "command", "message"]
        })),
    ]
}

impl Provider for Tessie {
    fn describe(_context: &CallContext) -> PluginInfo {
        PluginInfo::new(
            "tessie",
            "Tesla vehicles through Tessie: call tesla_state first, then tesla_command \
             (lock, climate, trunks, charge port, sentry, navigation).",
            tools(),
        )
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_resources(STATES.scheme, vec![STATES.template()])
    }

    fn list_resources(context: CallContext) -> Result<Vec<ResourceInfo>, ToolError> {
        let api = Api::new(&Settings::from_context(&context));
        Ok(STATES.list(api.vehicles()?))
    }

    fn read_resource(
        uri: String,
        context: CallContext,
    ) -> Result<Vec<ResourceContents>, ToolError> {
        let api = Api::new(&Settings::from_context(&context));
        STATES.read(&uri, |vin| api.state(vin))
    }

    fn complete(request: CompletionRequest, context: CallContext) -> Result<Completion, ToolError> {
        let api = Api::new(&Settings::from_context(&context));
        STATES.complete(&request, || api.vehicles())
    }

    fn call_tool(
        name: String,
        arguments: String,
        context: CallContext,
    ) -> Result<Output, ToolError> {
        let api = Api::new(&Settings::from_context(&context));
        match name.as_str() {
            "list_vehicles" => api.list_vehicles(),
            "tesla_state" => {
                let VinOnly { vin } = args::parse(&arguments)?;
                api.state(&api.vin(vin)?)
            }
            "tesla_command" => api.command(args::parse(&arguments)?),
            other => Err(ToolError::invalid(format!(
                "tessie has no tool named {other}"
            ))),
        }
    }
}

#[derive(Deserialize)]
struct VinOnly {
    vin: Option<String>,
}

#[derive(Deserialize)]
struct CommandArgs {
    command: String,
    temperature: Option<f64>,
    destination: Option<String>,
    locale: Option<String>,
    vin: Option<String>,
}

struct Api {
    base_url: String,
    default_vin: Option<String>,
}

impl Api {
    fn new(settings: &Settings) -> Api {
        Api {
            base_url: settings
                .get_or("base_url", DEFAULT_BASE_URL)
                .trim_end_matches('/')
                .to_string(),
            default_vin: settings.get("vin").map(str::to_string),
        }
    }

    fn vin(&self, requested: Option<String>) -> Result<String, ToolError> {
        requested.or_else(|| self.default_vin.clone()).ok_or_else(|| {
            ToolError::invalid(
                "no vin given and no default `vin` in plugins.toml: call list_vehicles and pass \
                 one of its vins",
            )
        })
    }

    fn get(&self, path: &str) -> Request {
        Request::get(format!("{}{path}", self.base_url)).bearer_secret(TOKEN_SECRET)
    }

    fn post(&self, path: &str) -> Request {
        Request::post(format!("{}{path}", self.base_url)).bearer_secret(TOKEN_SECRET)
    }

    /// The account's cars: VIN and display name.
    fn vehicles(&self) -> Result<Vec<(String, String)>, ToolError> {
        let answer: Value = self.get("/vehicles").send()?.success()?.json()?;
        Ok(answer["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|vehicle| {
                let vin = vehicle["vin"].as_str()?.to_string();
                let name = vehicle["last_state"]["display_name"]
                    .as_str()
                    .unwrap_or(&vin)
                    .to_string();
                Some((vin, name))
            })
            .collect())
    }

    fn list_vehicles(&self) -> Result<Output, ToolError> {
        let answer: Value = self.get("/vehicles").send()?.success()?.json()?;
        let vehicles: Vec<Value> = answer["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|vehicle| {
                let state = VehicleState::from_tesla_vehicle_data(&vehicle["last_state"]);
                json!({
                    "vin": vehicle["vin"],
                    "display_name": state.display_name,
                    "state": state.state,
                    "battery_level": state.battery_level,
                    "locked": state.locked,
                })
            })
            .collect();
        let text = format!(
            "{} vehicle(s): {}",
            vehicles.len(),
            Value::from(vehicles.clone())
        );
        Ok(Output::json_with_text(
            &json!({ "vehicles": vehicles }),
            text,
        ))
    }

    fn state(&self, vin: &str) -> Result<Output, ToolError> {
        let data: Value = self
            .get(&format!("/{vin}/state"))
            .send()?
            .success()?
            .json()?;
        let state = VehicleState::from_tesla_vehicle_data(&data);
        Ok(Output::json_with_text(&state.to_json(), state.summary()))
    }

    fn command(&self, arguments: CommandArgs) -> Result<Output, ToolError> {
        let Some((name, endpoint, _)) = COMMANDS
            .iter()
            .find(|(name, _, _)| *name == arguments.command)
        else {
            return Err(ToolError::invalid(format!(
                "unknown command {}",
                arguments.command
            )));
        };
        let vin = self.vin(arguments.vin)?;
        let mut request = self.post(&format!("/{vin}/command/{endpoint}"));
        match *name {
            "set_temperature" => {
                let temperature = arguments.temperature.ok_or_else(|| {
                    ToolError::invalid("set_temperature needs temperature (15-28 °C)")
                })?;
                if !(MIN_TEMPERATURE_C..=MAX_TEMPERATURE_C).contains(&temperature) {
                    return Err(ToolError::invalid(format!(
                        "temperature {temperature} °C is outside 15-28 °C"
                    )));
                }
                request = request.query("temperature", &temperature.to_string());
            }
            "share" => {
                let destination = arguments
                    .destination
                    .filter(|text| !text.trim().is_empty())
                    .ok_or_else(|| ToolError::invalid("share needs destination"))?;
                request = request.query("value", &destination);
                if let Some(locale) = arguments.locale {
                    request = request.query("locale", &locale);
                }
            }
            _ => {}
        }
        self.wake_if_asleep(&vin, name)?;
        let answer: Value = request.send()?.success()?.json()?;
        let success = answer["result"].as_bool().unwrap_or(false);
        let message = if success {
            format!("{name} done")
        } else {
            let reason = answer["reason"].as_str().unwrap_or("no reason given");
            format!("{name} was not carried out: {reason}")
        };
        let result = json!({"success": success, "command": name, "message": message});
        Ok(Output::json_with_text(&result, message))
    }

    /// Tessie's `/status` is cheap and does not wake the car; `/wake` blocks until the car is
    /// awake (or 90 s pass), so one call suffices.
    fn wake_if_asleep(&self, vin: &str, command: &str) -> Result<(), ToolError> {
        let status: Value = self
            .get(&format!("/{vin}/status"))
            .send()?
            .success()?
            .json()?;
        if status["status"].as_str() != Some("asleep") {
            return Ok(());
        }
        progress::report(
            0,
            2,
            &format!("The car is asleep; waking it before {command} (10-30 s)"),
        );
        let woke: Value = self
            .post(&format!("/{vin}/wake"))
            .send()?
            .success()?
            .json()?;
        if woke["result"].as_bool() != Some(true) {
            return Err(ToolError::Upstream(carport_guest::UpstreamError {
                status: 200,
                message: "the car did not wake up; it may be out of coverage. Try again later."
                    .into(),
                retry_after_seconds: None,
            }));
        }
        progress::report(1, 2, &format!("The car is awake; sending {command}"));
        Ok(())
    }
}

carport_guest::plugin!(Tessie);
