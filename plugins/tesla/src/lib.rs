//! carport provider for Tesla's Fleet API, directly (a Tesla developer app and a region) or
//! through MyTeslaMate's proxy (the default, as the seed server).
//!
//! Every tool is a row of [`catalogue::ENDPOINTS`]; this file turns rows into tool descriptions
//! and requests, and handles the Fleet API's behaviour once for all of them:
//! - a sleeping car (408) is woken and polled until online, with progress, then the request is
//!   sent once more; reads wake the car only when asked (`wake: true`);
//! - a 429 is never retried: the error says when to come back, and calls to the same tool fail
//!   fast until then (remembered in plugin state);
//! - a 421 "user out of region, use base URL: …" switches to that base URL (if allowlisted),
//!   remembers it, and retries once;
//! - cars that require Tesla's Vehicle Command Protocol get signed commands when the host holds
//!   a key for the plugin (`signed.rs`); without one, a 403 "Vehicle Command Protocol required"
//!   explains what the car needs;
//! - with `auth = "oauth"`, the host attaches and refreshes the access token (401 → refresh →
//!   one resend), so the plugin never sees a token.

mod actions;
pub mod catalogue;
mod compact;
mod sign_in;
mod signed;

use carport_guest::http::{Request, Response};
use carport_guest::resources::VehicleStates;
use carport_guest::vehicle::VehicleState;
use carport_guest::{
    Annotations, CallContext, Completion, CompletionRequest, Output, PluginInfo, Provider,
    ResourceContents, ResourceInfo, Settings, Tool, ToolError, ToolMode, UpstreamError, clock,
    progress, state,
};
use catalogue::{ENDPOINTS, Effect, Endpoint, Fixed, Param, Route, To, Ty};
use serde_json::{Map, Value, json};

const DEFAULT_BASE_URL: &str = "https://api.myteslamate.com";
const TOKEN_SECRET: &str = "token";
const OAUTH_GRANT: &str = "fleet";
const REGION_KEY: &str = "base_url";
const DEFAULT_WAKE_TIMEOUT_SECONDS: u64 = 60;
const DEFAULT_WAKE_POLL_MS: u32 = 2000;
/// What `vehicle_state` reads: everything its shape needs, location included.
const STATE_SECTIONS: &str = "charge_state;climate_state;closures_state;drive_state;gui_settings;location_data;vehicle_config;vehicle_state";

/// The full-mode name of the shared-shape state tool (`state` in compact mode).
const VEHICLE_STATE: &str = "vehicle_state";

const FULL_SUMMARY: &str = "Tesla vehicles and energy sites through the Fleet API, one tool per \
     endpoint: start with list_vehicles_and_energy_sites, read a car with vehicle_state (km, °C), \
     command it with the command tools.";

/// What every tool shares, said once here (the server's instructions) rather than in each tool;
/// `state_tool` is the state tool's name in the mode served.
fn shared_summary(state_tool: &str) -> String {
    format!(
        "vehicle_tag is the car's VIN (or numeric id) from list_vehicles_and_energy_sites, and \
         energy_site_id an energy site's id from the same list; either may be omitted when \
         plugins.toml sets a default (`vin`, `energy_site_id`). Commands wake a sleeping car \
         first (10-30 s, with progress), are sent once and return {{result, reason}}: confirm \
         with {state_tool} afterwards. Reads never wake a car unless called with wake: true \
         (waking drains the battery and Tesla bills it). Endpoint reads return Tesla's answer as \
         {{response}}."
    )
}

const STATES: VehicleStates = VehicleStates {
    scheme: "tesla",
    id_name: "vin",
    provider: "Tesla Fleet API",
};

struct Tesla;

impl Provider for Tesla {
    fn describe(context: &CallContext) -> PluginInfo {
        let (summary, tools) = match context.tool_mode {
            ToolMode::Full => {
                let mut tools: Vec<Tool> = ENDPOINTS.iter().map(tool_of).collect();
                tools.push(vehicle_state_tool(VEHICLE_STATE, VEHICLE_STATE_DOC));
                (
                    format!("{FULL_SUMMARY} {}", shared_summary(VEHICLE_STATE)),
                    tools,
                )
            }
            ToolMode::Compact => (
                format!("{} {}", compact::SUMMARY, shared_summary("state")),
                compact::tools(),
            ),
        };
        let mut tools = tools;
        // Sign-in fits only Tesla's own OAuth (the host keeps the tokens).
        if Settings::from_context(context).get("auth") == Some("oauth") {
            tools.push(sign_in::tool());
        }
        PluginInfo::new("tesla", &summary, tools)
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_resources(STATES.scheme, vec![STATES.template()])
    }

    fn list_resources(context: CallContext) -> Result<Vec<ResourceInfo>, ToolError> {
        let api = Api::new(Settings::from_context(&context));
        Ok(STATES.list(api.vehicles()?))
    }

    fn read_resource(
        uri: String,
        context: CallContext,
    ) -> Result<Vec<ResourceContents>, ToolError> {
        let api = Api::new(Settings::from_context(&context));
        STATES.read(&uri, |vin| {
            let mut arguments = Map::new();
            arguments.insert("vin".into(), Value::from(vin));
            api.vehicle_state(&arguments)
        })
    }

    fn complete(request: CompletionRequest, context: CallContext) -> Result<Completion, ToolError> {
        let api = Api::new(Settings::from_context(&context));
        STATES.complete(&request, || api.vehicles())
    }

    fn call_tool(
        name: String,
        arguments: String,
        context: CallContext,
    ) -> Result<Output, ToolError> {
        let mut api = Api::new(Settings::from_context(&context));
        let arguments: Map<String, Value> = carport_guest::args::parse(&arguments)?;
        if name == sign_in::TOOL {
            return sign_in::run(&mut api, &arguments);
        }
        if let Err(error) = sign_in::settle_region(&mut api) {
            carport_guest::log::warning(&format!(
                "kept the configured region: asking Tesla for the signed-in account's failed: {error:?}"
            ));
        }
        match context.tool_mode {
            ToolMode::Full => api.run(&name, &arguments),
            ToolMode::Compact => match compact::resolve(&name, arguments)? {
                compact::Resolved::Run(operation, arguments) => api.run(operation, &arguments),
                compact::Resolved::Answer(output) => Ok(output),
            },
        }
    }
}

carport_guest::plugin!(Tesla);

fn annotations(effect: Effect) -> Annotations {
    match effect {
        Effect::Read => Annotations::READ,
        Effect::Set => Annotations::SET,
        Effect::Act => Annotations::ACT,
        Effect::Danger => Annotations::DESTRUCTIVE,
    }
}

fn schema_of(ty: Ty, doc: &str) -> Value {
    let mut schema = match ty {
        Ty::Str => json!({"type": "string", "minLength": 1}),
        Ty::Int(min, max) => json!({"type": "integer", "minimum": min, "maximum": max}),
        Ty::Num(min, max) => json!({"type": "number", "minimum": min, "maximum": max}),
        Ty::Bool => json!({"type": "boolean"}),
        Ty::Choice(values) => json!({"type": "string", "enum": values}),
        Ty::Ints => json!({"type": "array", "items": {"type": "integer"}, "minItems": 1}),
        Ty::Strs => json!({"type": "array", "items": {"type": "string"}, "minItems": 1}),
        Ty::Object => json!({"type": "object"}),
    };
    schema["description"] = Value::from(doc);
    schema
}

fn vehicle_tag_schema() -> Value {
    json!({"type": "string", "minLength": 1, "description": "VIN; default: see instructions."})
}

fn energy_site_schema() -> Value {
    json!({"type": ["string", "integer"], "description": "Default: see instructions."})
}

fn wake_schema() -> Value {
    json!({
        "type": "boolean",
        "description": "Wake an asleep car (10-30 s, drains battery). Default false: reported, not woken."
    })
}

/// Reads return Tesla's answer as it came, in its `response` envelope: an object, a list, text
/// or null depending on the endpoint, so only the envelope is promised.
fn response_schema() -> Value {
    json!({"type": "object", "required": ["response"]})
}

/// The input schema of one row's tool; compact mode checks the chosen operation against it.
fn input_schema_of(endpoint: &Endpoint) -> Value {
    let mut properties = Map::new();
    let mut required: Vec<&str> = Vec::new();
    if endpoint.on_vehicle() {
        properties.insert("vehicle_tag".into(), vehicle_tag_schema());
    }
    if matches!(endpoint.route, Route::Site(..)) {
        properties.insert("energy_site_id".into(), energy_site_schema());
    }
    if takes_wake(endpoint) {
        properties.insert("wake".into(), wake_schema());
    }
    for param in endpoint.params {
        properties.insert(param.arg.into(), schema_of(param.ty, param.doc));
        if param.required {
            required.push(param.arg);
        }
    }
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// Reads of live data may wake the car when asked.
fn takes_wake(endpoint: &Endpoint) -> bool {
    endpoint.needs_awake_car() && endpoint.effect == Effect::Read
}

fn tool_of(endpoint: &Endpoint) -> Tool {
    let mut description = endpoint.doc.to_string();
    if matches!(endpoint.route, Route::Command) {
        description.push_str(" Wakes the car.");
    }
    let tool = Tool::new(
        endpoint.name,
        &title_of(endpoint.name),
        &description,
        input_schema_of(endpoint),
        annotations(endpoint.effect),
    );
    if endpoint.effect == Effect::Read {
        tool.with_output_schema(response_schema())
    } else {
        tool
    }
}

fn title_of(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut characters = spaced.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// The state tool; `description` is the full one in full mode and a short one in compact mode,
/// where the output schema alone carries the shape.
fn vehicle_state_tool(name: &str, description: &str) -> Tool {
    Tool::new(
        name,
        "Vehicle state summary",
        description,
        json!({
            "type": "object",
            "properties": {"vehicle_tag": vehicle_tag_schema(), "wake": wake_schema()},
            "additionalProperties": false
        }),
        Annotations::READ,
    )
    .with_output_schema(VehicleState::output_schema())
}

const VEHICLE_STATE_DOC: &str = "The car in carport's shared vehicle shape, the same for every provider: { vin, display_name, state, battery_level (%), battery_range_km, charging { state, minutes_remaining, charge_limit, charger_power_kw }, location { latitude, longitude, heading, speed (km/h) }, locked, sentry_mode, climate { is_on, inside_temp, outside_temp, target_temp (°C), is_defrosting }, doors { … true = open }, odometer_km, last_updated }. An asleep car returns state 'asleep' with no live data unless wake is true.";

struct Api {
    settings: Settings,
    base_url: String,
}

/// Why a request failed in a way this plugin handles itself.
enum Outcome {
    Done(Response),
    Asleep(Response),
    WrongRegion(String, Response),
}

impl Api {
    fn new(settings: Settings) -> Api {
        // A base URL learnt from a 421 wins over the configured one.
        let remembered = state::get(REGION_KEY)
            .ok()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let base_url = remembered
            .unwrap_or_else(|| settings.get_or("base_url", DEFAULT_BASE_URL).to_string())
            .trim_end_matches('/')
            .to_string();
        Api { settings, base_url }
    }

    /// Runs one operation by its full-mode tool name, with its full-mode arguments.
    fn run(&self, name: &str, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        if name == VEHICLE_STATE {
            return self.vehicle_state(arguments);
        }
        let endpoint = ENDPOINTS
            .iter()
            .find(|endpoint| endpoint.name == name)
            .ok_or_else(|| ToolError::invalid(format!("tesla has no tool named {name}")))?;
        self.call(endpoint, arguments)
    }

    /// The host attaches the credential: an OAuth access token it refreshes itself
    /// (`auth = "oauth"`), or the `token` secret as a bearer.
    fn authorised(&self, request: Request) -> Request {
        match self.settings.get("auth") {
            Some("oauth") => request.oauth(OAUTH_GRANT),
            _ => request.bearer_secret(TOKEN_SECRET),
        }
    }

    fn vehicle_tag(&self, arguments: &Map<String, Value>) -> Result<String, ToolError> {
        match arguments.get("vehicle_tag").and_then(Value::as_str) {
            Some(tag) => Ok(tag.to_string()),
            None => self.settings.get("vin").map(str::to_string).ok_or_else(|| {
                ToolError::invalid(
                    "no vehicle_tag given and no default `vin` in plugins.toml: call \
                     list_vehicles_and_energy_sites and pass a vin",
                )
            }),
        }
    }

    fn path_of(
        &self,
        endpoint: &Endpoint,
        arguments: &Map<String, Value>,
    ) -> Result<String, ToolError> {
        let path = match endpoint.route {
            Route::Command => format!(
                "/api/1/vehicles/{}/command/{}",
                encode(&self.vehicle_tag(arguments)?),
                endpoint.name
            ),
            Route::Vehicle(_, "") => {
                format!("/api/1/vehicles/{}", encode(&self.vehicle_tag(arguments)?))
            }
            Route::Vehicle(_, suffix) => {
                format!(
                    "/api/1/vehicles/{}/{suffix}",
                    encode(&self.vehicle_tag(arguments)?)
                )
            }
            Route::Site(_, suffix) => {
                let site = match arguments.get("energy_site_id") {
                    Some(Value::String(id)) => id.clone(),
                    Some(Value::Number(id)) => id.to_string(),
                    _ => self
                        .settings
                        .get("energy_site_id")
                        .map(str::to_string)
                        .ok_or_else(|| {
                            ToolError::invalid(
                                "no energy_site_id given and none in plugins.toml: call \
                             list_vehicles_and_energy_sites",
                            )
                        })?,
                };
                format!("/api/1/energy_sites/{}/{suffix}", encode(&site))
            }
            Route::Account(_, path) => {
                let mut path = path.to_string();
                for param in endpoint
                    .params
                    .iter()
                    .filter(|param| matches!(param.to, To::Path))
                {
                    let value = arguments
                        .get(param.arg)
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    path = path.replace(&format!("{{{}}}", param.arg), &encode(value));
                }
                path
            }
        };
        Ok(path)
    }

    fn request_of(
        &self,
        endpoint: &Endpoint,
        arguments: &Map<String, Value>,
    ) -> Result<Request, ToolError> {
        let url = format!("{}{}", self.base_url, self.path_of(endpoint, arguments)?);
        let mut request = self.authorised(Request::new(endpoint.method(), url));
        let mut body = Map::new();
        for param in endpoint.params {
            let Some(value) = arguments.get(param.arg) else {
                continue;
            };
            place(param, value, &mut body);
            request = match param.to {
                To::Query(key) => request.query(key, &query_text(value)),
                To::QueryJoined(key) => request.query(key, &joined(value)),
                _ => request,
            };
        }
        for fixed in endpoint.fixed {
            match *fixed {
                Fixed::Body(key, value) => {
                    body.insert(key.into(), Value::from(value));
                }
                Fixed::BodyNowMs(key) => {
                    body.insert(key.into(), Value::from(clock::now_ms()));
                }
                Fixed::Query(key, value) => request = request.query(key, value),
            }
        }
        // Commands always carry a JSON object; other requests only when they have fields.
        if matches!(endpoint.route, Route::Command) || !body.is_empty() {
            request = request.json(&Value::Object(body));
        }
        Ok(request)
    }

    fn call(
        &self,
        endpoint: &Endpoint,
        arguments: &Map<String, Value>,
    ) -> Result<Output, ToolError> {
        let rate_key = format!("retry_at.{}", endpoint.name);
        if let Some(wait) = remaining_wait(&rate_key) {
            return Err(rate_limited(
                wait,
                "not sent: Tesla asked to wait before calling this endpoint again",
            ));
        }
        if matches!(endpoint.route, Route::Command)
            && let Some(output) = self.try_signed(endpoint.name, arguments, false)?
        {
            return Ok(output);
        }
        let may_wake = matches!(endpoint.route, Route::Command)
            || (endpoint.needs_awake_car() && arguments.get("wake") == Some(&Value::Bool(true)));
        let response = match self.send(endpoint, arguments, &rate_key)? {
            Outcome::Done(response) => response,
            Outcome::Asleep(_) if may_wake => {
                self.wake(arguments, endpoint.name)?;
                match self.send(endpoint, arguments, &rate_key)? {
                    Outcome::Done(response)
                    | Outcome::Asleep(response)
                    | Outcome::WrongRegion(_, response) => response,
                }
            }
            Outcome::Asleep(_) => {
                return Err(ToolError::Upstream(UpstreamError {
                    status: 408,
                    message: "the car is asleep or offline; it was not woken because reading does \
                              not wake it: call again with wake: true, or use get_vehicle to see \
                              its state"
                        .into(),
                    retry_after_seconds: None,
                }));
            }
            Outcome::WrongRegion(url, response) => {
                self.switch_region(endpoint, arguments, &rate_key, url, response)?
            }
        };
        // fleet_status said otherwise, or was not answered: the car's own word wins.
        if matches!(endpoint.route, Route::Command)
            && requires_protocol(&response)
            && let Some(output) = self.try_signed(endpoint.name, arguments, true)?
        {
            return Ok(output);
        }
        finish(response)
    }

    /// Sends once and sorts the answer; a 429 is recorded so the next call fails fast.
    fn send(
        &self,
        endpoint: &Endpoint,
        arguments: &Map<String, Value>,
        rate_key: &str,
    ) -> Result<Outcome, ToolError> {
        let response = self.request_of(endpoint, arguments)?.send()?;
        if response.status == 429 {
            let wait = response
                .retry_after_seconds()
                .or_else(|| seconds_in(&response.vendor_message()))
                .unwrap_or(60);
            let until = clock::now_ms() + wait * 1000;
            // Best effort: without state the next call simply asks Tesla again.
            let _ = state::set(rate_key, until.to_string().as_bytes());
            return Err(rate_limited(wait, &response.vendor_message()));
        }
        let message = response.vendor_message();
        if response.status == 408 || message.contains("offline or asleep") {
            return Ok(Outcome::Asleep(response));
        }
        if response.status == 421
            && let Some(url) = region_url(&message)
            && url.trim_end_matches('/') != self.base_url
        {
            return Ok(Outcome::WrongRegion(url, response));
        }
        Ok(Outcome::Done(response))
    }

    fn switch_region(
        &self,
        endpoint: &Endpoint,
        arguments: &Map<String, Value>,
        rate_key: &str,
        url: String,
        original: Response,
    ) -> Result<Response, ToolError> {
        let moved = Api {
            settings: self.settings.clone(),
            base_url: url.trim_end_matches('/').to_string(),
        };
        carport_guest::log::info(&format!(
            "Tesla says this account lives at {}; switching",
            moved.base_url
        ));
        let retried = match moved.send(endpoint, arguments, rate_key) {
            Ok(outcome) => outcome,
            Err(ToolError::Denied(reason)) => {
                return Err(ToolError::Upstream(UpstreamError {
                    status: 421,
                    message: format!(
                        "{} — carport did not switch because that region is not allowed: {reason}",
                        original.vendor_message()
                    ),
                    retry_after_seconds: None,
                }));
            }
            Err(error) => return Err(error),
        };
        let _ = state::set(REGION_KEY, moved.base_url.as_bytes());
        match retried {
            Outcome::Done(response)
            | Outcome::Asleep(response)
            | Outcome::WrongRegion(_, response) => Ok(response),
        }
    }

    /// Wakes the car and polls until it is online, reporting progress; bounded by
    /// `wake_timeout_seconds`.
    fn wake(&self, arguments: &Map<String, Value>, for_what: &str) -> Result<(), ToolError> {
        let tag = encode(&self.vehicle_tag(arguments)?);
        let timeout_ms = self
            .settings
            .get("wake_timeout_seconds")
            .and_then(|text| text.parse::<u64>().ok())
            .unwrap_or(DEFAULT_WAKE_TIMEOUT_SECONDS)
            * 1000;
        let poll_ms = self
            .settings
            .get("wake_poll_ms")
            .and_then(|text| text.parse::<u32>().ok())
            .unwrap_or(DEFAULT_WAKE_POLL_MS);
        let steps = (timeout_ms / u64::from(poll_ms.max(1))).max(1) as u32 + 1;
        progress::report(
            0,
            steps,
            &format!("The car is asleep; waking it for {for_what} (10-30 s)"),
        );
        let auth = |request: Request| self.authorised(request);
        auth(Request::post(format!(
            "{}/api/1/vehicles/{tag}/wake_up",
            self.base_url
        )))
        .send()?
        .success()?;
        let started = clock::now_ms();
        let mut step = 1;
        loop {
            let answer: Value = auth(Request::get(format!(
                "{}/api/1/vehicles/{tag}",
                self.base_url
            )))
            .send()?
            .success()?
            .json()?;
            if answer["response"]["state"].as_str() == Some("online") {
                progress::report(
                    steps,
                    steps,
                    &format!("The car is awake; sending {for_what}"),
                );
                return Ok(());
            }
            if clock::now_ms().saturating_sub(started) >= timeout_ms {
                return Err(ToolError::Upstream(UpstreamError {
                    status: 408,
                    message: format!(
                        "the car did not wake within {} s (it may be out of coverage); nothing \
                         was sent. Try again later",
                        timeout_ms / 1000
                    ),
                    retry_after_seconds: None,
                }));
            }
            progress::report(step, steps, "Waiting for the car to come online");
            step = (step + 1).min(steps - 1);
            clock::sleep_ms(poll_ms);
        }
    }

    /// The account's cars (not its energy sites): VIN and display name.
    fn vehicles(&self) -> Result<Vec<(String, String)>, ToolError> {
        let products = ENDPOINTS
            .iter()
            .find(|endpoint| endpoint.name == "list_vehicles_and_energy_sites")
            .expect("the catalogue has list_vehicles_and_energy_sites");
        let products = response_of(self.call(products, &Map::new())?);
        Ok(products
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|product| {
                let vin = product["vin"].as_str()?.to_string();
                let name = product["display_name"].as_str().unwrap_or(&vin).to_string();
                Some((vin, name))
            })
            .collect())
    }

    fn vehicle_state(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let data_endpoint = ENDPOINTS
            .iter()
            .find(|endpoint| endpoint.name == "get_vehicle_data")
            .expect("the catalogue has get_vehicle_data");
        let mut query = arguments.clone();
        query.insert(
            "endpoints".into(),
            Value::from(STATE_SECTIONS.split(';').collect::<Vec<_>>()),
        );
        let data = match self.call(data_endpoint, &query) {
            Ok(output) => response_of(output),
            // Asleep and not to be woken: what Tesla knows without waking it.
            Err(ToolError::Upstream(UpstreamError { status: 408, .. })) => {
                let vehicle = ENDPOINTS
                    .iter()
                    .find(|endpoint| endpoint.name == "get_vehicle")
                    .expect("get_vehicle");
                response_of(self.call(vehicle, arguments)?)
            }
            Err(error) => return Err(error),
        };
        let state = VehicleState::from_tesla_vehicle_data(&data);
        Ok(Output::json_with_text(&state.to_json(), state.summary()))
    }
}

/// Puts a body parameter where the row says.
fn place(param: &Param, value: &Value, body: &mut Map<String, Value>) {
    match param.to {
        To::Body(key) => {
            body.insert(key.into(), value.clone());
        }
        To::Bodies(keys) => {
            for key in keys {
                body.insert((*key).into(), value.clone());
            }
        }
        To::Nested(outer, inner) => {
            let slot = body
                .entry(outer)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(nested) = slot {
                nested.insert(inner.into(), value.clone());
            }
        }
        To::NestedUnlessWrapped(outer, inner) => {
            let wrapped = match value {
                Value::Object(object) if object.contains_key(inner) => value.clone(),
                _ => Value::Object(Map::from_iter([(inner.to_string(), value.clone())])),
            };
            body.insert(outer.into(), wrapped);
        }
        To::Query(_) | To::QueryJoined(_) | To::Path => {}
    }
}

fn query_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn joined(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(query_text).collect::<Vec<_>>().join(";"))
        .unwrap_or_else(|| query_text(value))
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn requires_protocol(response: &Response) -> bool {
    response.status == 403
        && response
            .vendor_message()
            .contains("Vehicle Command Protocol required")
}

fn finish(response: Response) -> Result<Output, ToolError> {
    if requires_protocol(&response) {
        return Err(ToolError::Upstream(UpstreamError {
            status: 403,
            message: "this car only accepts signed commands (Tesla Vehicle Command Protocol, cars \
                      from 2021 on). Let carport sign them: create a key with `carport keys \
                      tesla`, grant it with [plugins.tesla.key_agreement] and pair it with the \
                      car (README, Tesla section). Or send commands through a signing proxy \
                      (Tesla's tesla-http-proxy, set as base_url and allowed in plugins.toml), or \
                      use the Tessie plugin, which signs for you. Reads keep working."
                .into(),
            retry_after_seconds: None,
        }));
    }
    let response = response.success()?;
    let is_json = response
        .header("content-type")
        .is_none_or(|kind| kind.contains("json"));
    if !is_json {
        let kind = response.header("content-type").unwrap_or("unknown type");
        let text = format!(
            "{} answer of {} bytes ({kind}), not shown",
            response.status,
            response.body.len(),
        );
        let summary = json!({"response": null, "content_type": kind, "bytes": response.body.len()});
        return Ok(Output::json_with_text(&summary, text));
    }
    let answer: Value = response.json()?;
    let data = match answer {
        Value::Object(mut object) if object.contains_key("response") => {
            object.remove("response").unwrap_or(Value::Null)
        }
        other => other,
    };
    Ok(Output::json(&json!({ "response": data })))
}

/// The `response` of a structured result of [`finish`].
fn response_of(output: Output) -> Value {
    output
        .structured
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .map(|mut answer| answer["response"].take())
        .unwrap_or(Value::Null)
}

fn rate_limited(seconds: u64, message: &str) -> ToolError {
    ToolError::Upstream(UpstreamError {
        status: 429,
        message: message.to_string(),
        retry_after_seconds: Some(seconds),
    })
}

/// Seconds left before `key`'s rate-limit window ends, if it has not.
fn remaining_wait(key: &str) -> Option<u64> {
    let until: u64 = String::from_utf8(state::get(key).ok()??)
        .ok()?
        .parse()
        .ok()?;
    let now = clock::now_ms();
    (until > now).then(|| (until - now).div_ceil(1000))
}

/// "Retry in 37829 seconds" → 37829.
fn seconds_in(message: &str) -> Option<u64> {
    let after = message.split("etry in ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// "user out of region, use base URL: https://fleet-api.prd.eu.vn.cloud.tesla.com" → the URL.
fn region_url(message: &str) -> Option<String> {
    let start = message
        .find("https://")
        .or_else(|| message.find("http://"))?;
    let url: String = message[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | ',' | ')'))
        .collect();
    Some(url.trim_end_matches(['.', '/']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wait_and_the_region_from_tesla_messages() {
        assert_eq!(
            seconds_in("Rate limit exceeded. Retry in 37829 seconds"),
            Some(37829)
        );
        assert_eq!(
            region_url(
                "user out of region, use base URL: https://fleet-api.prd.eu.vn.cloud.tesla.com"
            ),
            Some("https://fleet-api.prd.eu.vn.cloud.tesla.com".to_string())
        );
    }

    #[test]
    fn every_row_is_a_valid_tool() {
        for endpoint in ENDPOINTS {
            let tool = tool_of(endpoint);
            assert!(
                tool.name.len() <= 58,
                "{} is too long once prefixed",
                tool.name
            );
            let schema: Value = serde_json::from_str(&tool.input_schema).unwrap();
            for required in schema["required"].as_array().into_iter().flatten() {
                assert!(
                    schema["properties"]
                        .get(required.as_str().unwrap())
                        .is_some()
                );
            }
        }
    }
}
