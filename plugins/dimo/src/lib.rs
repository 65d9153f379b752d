//! carport provider for DIMO (<https://docs.dimo.org>): the vehicles that shared their data
//! with a developer license, read through DIMO's Identity and Telemetry GraphQL APIs and
//! commanded through its devices API.
//!
//! The license's private key stays with the host: the plugin asks the host's
//! `ethereum-signer` to sign DIMO's login challenge (`tokens.rs`). Tokens are cached in plugin
//! state until shortly before they expire. Vehicle tools first check that the signed-in user
//! owns the vehicle, unless the settings say `fleet_mode = "true"`. Wire details with sources:
//! WIRE.md.

mod graphql;
mod tokens;

use carport_guest::compact::{Compact, Group, Resolved};
use carport_guest::http::{Request, Response};
use carport_guest::resources::VehicleStates;
use carport_guest::vehicle::{
    Charging, Climate, Doors, Location, TirePressures, VehicleExtras, VehicleState, round1,
};
use carport_guest::{
    Annotations, CallContext, Completion, CompletionRequest, Content, Output, PluginInfo, Prompt,
    PromptArgument, PromptMessage, PromptResult, Provider, ResourceContents, ResourceInfo, Role,
    Settings, Tool, ToolError, ToolMode, UpstreamError, args, progress, sign_in,
};
use serde_json::{Map, Value, json};

const VEHICLE_CONTRACT: &str = "0xbA5738a18d83D41847dfFbDC6101d37C69c9B0cF";
const DEFAULT_MAX_QUERY_BYTES: usize = 16 * 1024;
/// Introspection answers are large and change rarely.
const INTROSPECTION_TTL_MS: u64 = 24 * 3600 * 1000;
/// DIMO's pages hold at most 100 vehicles.
const PAGE: u32 = 100;

const STATES: VehicleStates = VehicleStates {
    scheme: "dimo",
    id_name: "tokenId",
    provider: "DIMO",
};

/// The device commands: tool name, devices API path, what it does, annotations.
const COMMANDS: &[(&str, &str, &str, Annotations)] = &[
    (
        "lock_doors",
        "doors/lock",
        "Lock the vehicle's doors.",
        Annotations::SET,
    ),
    (
        "unlock_doors",
        "doors/unlock",
        "Unlock the vehicle's doors. Lowers the car's security: only on the owner's explicit request.",
        Annotations::DESTRUCTIVE,
    ),
    (
        "start_charge",
        "charge/start",
        "Start charging an electric vehicle that is plugged in.",
        Annotations::SET,
    ),
    (
        "stop_charge",
        "charge/stop",
        "Stop charging an electric vehicle.",
        Annotations::SET,
    ),
    (
        "open_trunk",
        "trunk/open",
        "Open the rear trunk.",
        Annotations::ACT,
    ),
    (
        "open_frunk",
        "frunk/open",
        "Open the front trunk (frunk).",
        Annotations::ACT,
    ),
];

struct Urls {
    auth: String,
    identity: String,
    telemetry: String,
    token_exchange: String,
    devices: String,
    attestation: String,
    device_definitions: String,
    login: String,
}

pub struct Dimo {
    client_id: String,
    domain: String,
    /// The secret the host signs with.
    key: String,
    contract: String,
    fleet_mode: bool,
    /// `owner_address` from the settings, used when no user signed in through `init_oauth`.
    configured_owner: Option<String>,
    max_query_bytes: usize,
    urls: Urls,
}

impl Dimo {
    fn new(settings: &Settings) -> Dimo {
        let url = |key: &str, default: &str| {
            settings
                .get_or(key, default)
                .trim_end_matches('/')
                .to_string()
        };
        Dimo {
            client_id: settings.get_or("client_id", "").to_string(),
            domain: settings.get_or("domain", "").to_string(),
            key: settings.get_or("key", "private_key").to_string(),
            contract: settings
                .get_or("vehicle_contract", VEHICLE_CONTRACT)
                .to_string(),
            fleet_mode: settings.get("fleet_mode") == Some("true"),
            configured_owner: settings.get("owner_address").map(str::to_string),
            max_query_bytes: settings
                .get("max_query_bytes")
                .and_then(|bytes| bytes.parse().ok())
                .unwrap_or(DEFAULT_MAX_QUERY_BYTES),
            urls: Urls {
                auth: url("auth_url", "https://auth.dimo.zone"),
                identity: url("identity_url", "https://identity-api.dimo.zone/query"),
                telemetry: url("telemetry_url", "https://telemetry-api.dimo.zone/query"),
                token_exchange: url("token_exchange_url", "https://token-exchange-api.dimo.zone"),
                devices: url("devices_url", "https://devices-api.dimo.zone"),
                attestation: url("attestation_url", "https://attestation-api.dimo.zone"),
                device_definitions: url(
                    "device_definitions_url",
                    "https://device-definitions-api.dimo.zone",
                ),
                login: url("login_url", "https://login.dimo.org"),
            },
        }
    }

    /// The user's wallet: from the sign-in (`init_oauth`), else `owner_address`.
    fn wallet(&self) -> Option<String> {
        sign_in::status()
            .ok()
            .filter(|account| account.signed_in)
            .and_then(|account| account.claim("walletAddress").map(str::to_string))
            .or_else(|| self.configured_owner.clone())
    }

    /// Starts DIMO's login in the user's browser; carport receives the redirect. With
    /// `redirected_url`, completes it from the address a browser that could not reach carport
    /// ended on.
    fn init_oauth(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        if let Some(url) = arguments.get("redirected_url").and_then(Value::as_str) {
            let account = sign_in::finish(url).map_err(ToolError::Auth)?;
            let wallet = account
                .claim("walletAddress")
                .unwrap_or("unknown")
                .to_string();
            return Ok(Output::json_with_text(
                &json!({"status": "signed_in", "wallet": wallet}),
                format!(
                    "Signed in to DIMO as wallet {wallet}. Call check_vehicle_access_status next."
                ),
            ));
        }
        let link = sign_in::start(&[]).map_err(ToolError::Denied)?;
        let port_note = if arguments.contains_key("port") {
            " (`port` is not used: carport listens on the redirect address set in plugins.toml, \
             [plugins.dimo.sign_in] redirect_uri)"
        } else {
            ""
        };
        Ok(Output::json_with_text(
            &json!({"status": "waiting", "url": link}),
            format!(
                "Ask the user to open this link and log in to DIMO: {link}\ncarport receives the \
                 answer itself{port_note}; then call check_vehicle_access_status. If the browser \
                 runs on another machine and cannot come back to this one, have the user paste \
                 the address the browser ends on, and call init_oauth with it as redirected_url."
            ),
        ))
    }

    fn configured(&self) -> Result<(), ToolError> {
        if self.client_id.is_empty() || self.domain.is_empty() {
            return Err(ToolError::Auth(
                "set client_id (your developer license's address) and domain (its redirect \
                 URI) under [plugins.dimo.settings] in plugins.toml"
                    .into(),
            ));
        }
        Ok(())
    }

    fn graphql(
        &self,
        api: &str,
        url: &str,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> Result<Response, ToolError> {
        let mut request = Request::post(url).json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.header("authorization", &format!("Bearer {token}"));
        }
        let response = request.send()?;
        if response.status == 422 || response.status == 400 {
            let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            return Err(graphql::answer(api, body)
                .err()
                .unwrap_or_else(|| response.into_error()));
        }
        Ok(response)
    }

    fn identity(&self, query: &str, variables: Value) -> Result<Value, ToolError> {
        let response = self.graphql("Identity", &self.urls.identity, query, variables, None)?;
        graphql::answer("Identity", response.success()?.json()?)
    }

    /// A telemetry query with the vehicle's token; a token refused before its time is
    /// renewed once.
    fn telemetry(&self, token_id: u32, query: &str, variables: Value) -> Result<Value, ToolError> {
        let token = self.vehicle_token(token_id)?;
        let mut response = self.graphql(
            "Telemetry",
            &self.urls.telemetry,
            query,
            variables.clone(),
            Some(&token),
        )?;
        if response.status == 401 {
            tokens::forget(&tokens::vehicle_key(token_id));
            let token = self.vehicle_token(token_id)?;
            response = self.graphql(
                "Telemetry",
                &self.urls.telemetry,
                query,
                variables,
                Some(&token),
            )?;
        }
        graphql::answer("Telemetry", response.success()?.json()?)
    }

    /// The seed's guard: the signed-in user must own the vehicle, unless in fleet mode.
    fn check_access(&self, token_id: u32) -> Result<(), ToolError> {
        self.configured()?;
        if self.fleet_mode {
            return Ok(());
        }
        let Some(owner) = self.wallet() else {
            return Err(ToolError::Auth(
                "no DIMO user is signed in: call init_oauth and have the user log in, or set \
                 owner_address (the user's wallet) under [plugins.dimo.settings], or \
                 fleet_mode = \"true\" to act on every vehicle shared with the license"
                    .into(),
            ));
        };
        let data = self.identity(
            "query Owner($tokenId: Int!) { vehicle(tokenId: $tokenId) { owner } }",
            json!({"tokenId": token_id}),
        )?;
        let actual = data["vehicle"]["owner"].as_str().unwrap_or_default();
        if !actual.eq_ignore_ascii_case(&owner) {
            return Err(ToolError::Denied(format!(
                "vehicle {token_id} is not owned by the signed-in user {owner}; in fleet mode \
                 (fleet_mode = \"true\") every vehicle shared with the license may be used"
            )));
        }
        Ok(())
    }

    fn check_access_status(&self) -> Result<Output, ToolError> {
        self.configured()?;
        let node = "tokenId name tokenDID owner mintedAt manufacturer { name tokenId } \
                    definition { make model year } imageURI syntheticDevice { tokenId name connection { name } }";
        let wallet = self.wallet();
        let (query, variables, scope) = match (&wallet, self.fleet_mode) {
            (Some(owner), false) => (
                format!(
                    "query Vehicles($clientId: Address!, $owner: Address!) {{ vehicles(filterBy: {{privileged: $clientId, owner: $owner}}, first: {PAGE}) {{ totalCount nodes {{ {node} }} }} }}"
                ),
                json!({"clientId": self.client_id, "owner": owner}),
                "user",
            ),
            (_, true) => (
                format!(
                    "query Vehicles($clientId: Address!) {{ vehicles(filterBy: {{privileged: $clientId}}, first: {PAGE}) {{ totalCount nodes {{ {node} }} }} }}"
                ),
                json!({"clientId": self.client_id}),
                "fleet",
            ),
            // Nobody signed in and not a fleet: how many vehicles share, but not whose.
            (None, false) => (
                "query Vehicles($clientId: Address!) { vehicles(filterBy: {privileged: $clientId}, first: 10) { totalCount } }".to_string(),
                json!({"clientId": self.client_id}),
                "signed_out",
            ),
        };
        let data = self.identity(&query, variables)?;
        let vehicles = &data["vehicles"];
        let result = json!({
            "client_id": self.client_id,
            "fleet_mode": self.fleet_mode,
            "user_wallet": wallet,
            "scope": scope,
            "total_count": vehicles["totalCount"],
            "vehicles": vehicles["nodes"].as_array().cloned().unwrap_or_default(),
        });
        let count = vehicles["totalCount"].as_u64().unwrap_or(0);
        let text = match scope {
            "user" => format!("{count} of the user's vehicles are shared with this license"),
            "fleet" => format!("{count} vehicles are shared with this license (fleet mode)"),
            _ => format!(
                "{count} vehicles are shared with this license; nobody is signed in, so call \
                 init_oauth for the user to log in before using their vehicles"
            ),
        };
        Ok(Output::json_with_text(&result, text))
    }

    fn sharing_url(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        self.configured()?;
        let template = arguments
            .get("permissionTemplateId")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let mut url = format!("{}/?", self.urls.login);
        url.push_str(
            &[
                ("clientId", self.client_id.clone()),
                ("redirectUri", self.domain.clone()),
                ("permissionTemplateId", template.to_string()),
                ("entryState", "VEHICLE_MANAGER".to_string()),
            ]
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&"),
        );
        Ok(Output::json_with_text(
            &json!({"url": url, "permission_template_id": template}),
            format!(
                "Send the vehicle owner this link to share their vehicle with the license: {url}"
            ),
        ))
    }

    fn introspect(&self, api: &str, url: &str) -> Result<Output, ToolError> {
        let key = format!("introspection.{}", api.to_ascii_lowercase());
        let now = carport_guest::clock::now_ms();
        if let Some(bytes) = carport_guest::state::get(&key).ok().flatten()
            && let Ok(cached) = serde_json::from_slice::<Value>(&bytes)
            && cached["expires_at_ms"]
                .as_u64()
                .is_some_and(|expiry| expiry > now)
            && let Some(schema) = cached["schema"].as_str()
        {
            return Ok(schema_output(api, schema));
        }
        let response = self.graphql(api, url, graphql::INTROSPECTION_QUERY, json!({}), None)?;
        let data = graphql::answer(api, response.success()?.json()?)?;
        let schema = graphql::print_schema(&data)?;
        let cached = json!({"schema": schema, "expires_at_ms": now + INTROSPECTION_TTL_MS});
        // A schema too large for the state quota is still answered, just not cached.
        let _ = carport_guest::state::set(&key, cached.to_string().as_bytes());
        Ok(schema_output(api, &schema))
    }

    fn identity_query(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let query = text_argument(arguments, "query")?;
        let variables = object_argument(arguments, "variables");
        graphql::check_query(query, &variables, self.max_query_bytes)?;
        Ok(Output::json(&self.identity(query, variables)?))
    }

    fn telemetry_query(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let query = text_argument(arguments, "query")?;
        let token_id = token_id(arguments)?;
        let variables = with_token_id(object_argument(arguments, "variables"), token_id);
        graphql::check_query(query, &variables, self.max_query_bytes)?;
        self.check_access(token_id)?;
        Ok(Output::json(&self.telemetry(token_id, query, variables)?))
    }

    /// Runs `one` for each vehicle in turn with progress, and reports each success and
    /// failure, as the seed's batch tools do.
    fn batch(
        &self,
        token_ids: Vec<u32>,
        what: &str,
        one: impl Fn(u32) -> Result<Value, ToolError>,
    ) -> Result<Output, ToolError> {
        let total = token_ids.len() as u32;
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for (done, token_id) in token_ids.into_iter().enumerate() {
            progress::report(done as u32, total, &format!("{what}: vehicle {token_id}"));
            match self.check_access(token_id).and_then(|()| one(token_id)) {
                Ok(data) => results.push(json!({"tokenId": token_id, "data": data})),
                Err(error) => {
                    errors.push(json!({"tokenId": token_id, "error": describe_error(&error)}))
                }
            }
        }
        progress::report(total, total, &format!("{what}: done"));
        let summary = json!({"total": total, "successful": results.len(), "failed": errors.len()});
        let text = format!(
            "{what}: {} of {total} vehicles succeeded, {} failed",
            results.len(),
            errors.len()
        );
        Ok(Output::json_with_text(
            &json!({"summary": summary, "results": results, "errors": errors}),
            text,
        ))
    }

    fn batch_telemetry_query(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let query = text_argument(arguments, "query")?;
        let variables = object_argument(arguments, "variables");
        graphql::check_query(query, &variables, self.max_query_bytes)?;
        self.batch(token_ids(arguments)?, "telemetry query", |token_id| {
            self.telemetry(token_id, query, with_token_id(variables.clone(), token_id))
        })
    }

    fn data_summary(&self, token_id: u32) -> Result<Value, ToolError> {
        let data = self.telemetry(
            token_id,
            "query Summary($tokenId: Int!) { dataSummary(tokenId: $tokenId) { numberOfSignals availableSignals firstSeen lastSeen signalDataSummary { name numberOfSignals firstSeen lastSeen } } }",
            json!({"tokenId": token_id}),
        )?;
        Ok(data["dataSummary"].clone())
    }

    fn vehicle_state(&self, token_id: u32) -> Result<Output, ToolError> {
        self.check_access(token_id)?;
        let signals = [
            "speed",
            "powertrainTractionBatteryStateOfChargeCurrent",
            "powertrainRange",
            "powertrainTractionBatteryRange",
            "powertrainFuelSystemRelativeLevel",
            "powertrainTransmissionTravelledDistance",
            "isIgnitionOn",
            "powertrainTractionBatteryChargingIsCharging",
            "powertrainTractionBatteryChargingChargeLimit",
            "powertrainTractionBatteryCurrentPower",
            "exteriorAirTemperature",
            "chassisAxleRow1WheelLeftTirePressure",
            "chassisAxleRow1WheelRightTirePressure",
            "chassisAxleRow2WheelLeftTirePressure",
            "chassisAxleRow2WheelRightTirePressure",
            "bodyLockIsLocked",
            "cabinDoorRow1DriverSideIsOpen",
            "bodyTrunkRearIsOpen",
            "bodyTrunkFrontIsOpen",
            "currentLocationHeading",
        ];
        let fields: Vec<String> = signals
            .iter()
            .map(|signal| format!("{signal} {{ value }}"))
            .collect();
        let query = format!(
            "query State($tokenId: Int!) {{ signalsLatest(tokenId: $tokenId) {{ lastSeen {} currentLocationCoordinates {{ value {{ latitude longitude }} }} }} }}",
            fields.join(" ")
        );
        let answer = self.telemetry(token_id, &query, json!({"tokenId": token_id}))?;
        // A signal the license may not read comes back null with an error beside it: the
        // state shows what is readable.
        let latest = match answer.get("data") {
            Some(data) if answer.get("errors").is_some() => data["signalsLatest"].clone(),
            _ => answer["signalsLatest"].clone(),
        };
        let (state, extras) = state_from_signals(&latest);
        let mut text = format!("Vehicle {token_id}: {}", state.summary());
        if let Some(fuel) = extras.fuel_level {
            text.push_str(&format!(", fuel {fuel:.0}%"));
        }
        Ok(Output::json_with_text(&state.to_json_with(&extras), text))
    }

    fn command(&self, name: &str, path: &str, token_id: u32) -> Result<Output, ToolError> {
        self.check_access(token_id)?;
        let send = |token: &str| {
            Request::post(format!(
                "{}/v1/vehicle/{token_id}/commands/{path}",
                self.urls.devices
            ))
            .header("authorization", &format!("Bearer {token}"))
            .json(&json!({}))
            .send()
        };
        let mut response = send(&self.vehicle_token(token_id)?)?;
        let stale = response.status == 401
            && String::from_utf8_lossy(&response.body).contains("Invalid or expired JWT");
        if stale {
            tokens::forget(&tokens::vehicle_key(token_id));
            response = send(&self.vehicle_token(token_id)?)?;
        }
        if !response.is_success() {
            let message = response.vendor_message();
            let hint = if message.contains("privileges") {
                ": the owner has not granted this license the commands privilege; share again \
                 with a template that includes commands (generate_vehicle_data_sharing_url)"
            } else {
                ""
            };
            return Err(ToolError::Upstream(UpstreamError {
                status: response.status,
                retry_after_seconds: response.retry_after_seconds(),
                message: format!("DIMO refused {name} for vehicle {token_id}: {message}{hint}"),
            }));
        }
        let answer: Value = response.json()?;
        let request_id = answer["requestId"].as_str().unwrap_or_default();
        Ok(Output::json_with_text(
            &json!({"tokenId": token_id, "command": path, "requestId": request_id, "status": "queued"}),
            format!(
                "{name} sent to vehicle {token_id} (request {request_id}). DIMO queues commands: \
                 check the result with vehicle_state in a few seconds."
            ),
        ))
    }

    fn attestation(&self, kind: &str, token_id: u32, body: Value) -> Result<Output, ToolError> {
        self.check_access(token_id)?;
        let send = |token: &str| {
            Request::post(format!(
                "{}/v2/attestation/{kind}/{token_id}",
                self.urls.attestation
            ))
            .header("authorization", &format!("Bearer {token}"))
            .json(&body)
            .send()
        };
        let response = send(&self.vehicle_token(token_id)?)?;
        let answer: Value = response.success()?.json()?;
        let message = answer["message"]
            .as_str()
            .unwrap_or("attestation created")
            .to_string();
        Ok(Output::json_with_text(&answer, message))
    }

    fn vin_decode(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        self.configured()?;
        let vin = text_argument(arguments, "vin")?.to_ascii_uppercase();
        let country = arguments
            .get("countryCode")
            .and_then(Value::as_str)
            .unwrap_or("USA");
        let body = json!({"countryCode": country, "vin": vin});
        let response = self.with_developer_token(|token| {
            Request::post(format!(
                "{}/device-definitions/decode-vin",
                self.urls.device_definitions
            ))
            .header("authorization", &format!("Bearer {token}"))
            .json(&body)
        })?;
        let answer: Value = response.success()?.json()?;
        let id = answer["deviceDefinitionId"].as_str().unwrap_or_default();
        Ok(Output::json_with_text(
            &answer,
            format!("VIN {vin} is device definition {id} (make_model_year)"),
        ))
    }

    fn search(&self, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
        let mut request = Request::get(format!(
            "{}/device-definitions/search",
            self.urls.device_definitions
        ));
        let slug = |text: &str| text.trim().to_ascii_lowercase().replace(' ', "-");
        if let Some(query) = arguments.get("query").and_then(Value::as_str) {
            request = request.query("query", query);
        }
        // DIMO filters by slugs (`makeSlug`, `modelSlug`); the seed sent `model`, which the
        // API ignores.
        if let Some(make) = arguments.get("make").and_then(Value::as_str) {
            request = request.query("makeSlug", &slug(make));
        }
        if let Some(model) = arguments.get("model").and_then(Value::as_str) {
            request = request.query("modelSlug", &slug(model));
        }
        if let Some(year) = arguments.get("year").and_then(Value::as_u64) {
            request = request.query("year", &year.to_string());
        }
        let answer: Value = request.send()?.success()?.json()?;
        let count = answer["pagination"]["totalItems"].as_u64().unwrap_or(0);
        Ok(Output::json_with_text(
            &answer,
            format!("{count} device definitions match"),
        ))
    }

    /// Vehicles for resources and completion: the user's, or in fleet mode all shared ones.
    fn vehicle_list(&self) -> Result<Vec<(String, String)>, ToolError> {
        self.configured()?;
        let (query, variables) = match (self.wallet(), self.fleet_mode) {
            (Some(owner), false) => (
                format!(
                    "query V($clientId: Address!, $owner: Address!) {{ vehicles(filterBy: {{privileged: $clientId, owner: $owner}}, first: {PAGE}) {{ nodes {{ tokenId name definition {{ make model year }} }} }} }}"
                ),
                json!({"clientId": self.client_id, "owner": owner}),
            ),
            _ => (
                format!(
                    "query V($clientId: Address!) {{ vehicles(filterBy: {{privileged: $clientId}}, first: {PAGE}) {{ nodes {{ tokenId name definition {{ make model year }} }} }} }}"
                ),
                json!({"clientId": self.client_id}),
            ),
        };
        let data = self.identity(&query, variables)?;
        Ok(data["vehicles"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|node| {
                let definition = &node["definition"];
                let label = format!(
                    "{} {} {} ({})",
                    definition["year"],
                    definition["make"].as_str().unwrap_or(""),
                    definition["model"].as_str().unwrap_or(""),
                    node["name"].as_str().unwrap_or("")
                );
                (node["tokenId"].to_string(), label)
            })
            .collect())
    }
}

/// An API's schema: as text for the assistant to read, and structured for clients that take
/// structured results.
fn schema_output(api: &str, schema: &str) -> Output {
    Output::json_with_text(&json!({"api": api, "schema": schema}), schema)
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn describe_error(error: &ToolError) -> String {
    match error {
        ToolError::InvalidArguments(message)
        | ToolError::Auth(message)
        | ToolError::Denied(message)
        | ToolError::Internal(message)
        | ToolError::NotFound(message) => message.clone(),
        ToolError::Upstream(upstream) => upstream.message.clone(),
    }
}

fn text_argument<'a>(arguments: &'a Map<String, Value>, name: &str) -> Result<&'a str, ToolError> {
    arguments
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::invalid(format!("`{name}` is required")))
}

fn object_argument(arguments: &Map<String, Value>, name: &str) -> Value {
    match arguments.get(name) {
        Some(Value::Object(object)) => Value::Object(object.clone()),
        _ => json!({}),
    }
}

fn with_token_id(mut variables: Value, token_id: u32) -> Value {
    variables["tokenId"] = json!(token_id);
    variables
}

fn token_id(arguments: &Map<String, Value>) -> Result<u32, ToolError> {
    arguments
        .get("tokenId")
        .and_then(Value::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ToolError::invalid("`tokenId` must be a vehicle token id (a positive integer)")
        })
}

fn token_ids(arguments: &Map<String, Value>) -> Result<Vec<u32>, ToolError> {
    let ids = arguments
        .get("tokenIds")
        .and_then(Value::as_array)
        .ok_or_else(|| ToolError::invalid("`tokenIds` is required"))?;
    ids.iter()
        .map(|id| {
            id.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .filter(|id| *id > 0)
                .ok_or_else(|| ToolError::invalid("each of `tokenIds` must be a positive integer"))
        })
        .collect()
}

/// DIMO's latest signals in the shared vehicle shape (km, km/h, °C, kPa).
fn state_from_signals(latest: &Value) -> (VehicleState, VehicleExtras) {
    let value = |name: &str| latest[name]["value"].as_f64();
    let flag = |name: &str| value(name).map(|number| number >= 0.5);
    let ignition = flag("isIgnitionOn");
    let charging = flag("powertrainTractionBatteryChargingIsCharging");
    let battery = value("powertrainTractionBatteryStateOfChargeCurrent");
    let location = &latest["currentLocationCoordinates"]["value"];
    let state = VehicleState {
        vin: None,
        display_name: None,
        state: match (latest["lastSeen"].is_string(), ignition) {
            (false, _) => "offline".into(),
            (true, Some(true)) => "online".into(),
            (true, _) => "parked".into(),
        },
        battery_level: battery,
        battery_range_km: battery
            .and(value("powertrainTractionBatteryRange").or(value("powertrainRange")))
            .map(round1),
        charging: Charging {
            state: charging.map(|on| if on { "Charging" } else { "Stopped" }.to_string()),
            minutes_remaining: None,
            charge_limit: value("powertrainTractionBatteryChargingChargeLimit"),
            charger_power_kw: value("powertrainTractionBatteryCurrentPower")
                .filter(|_| charging == Some(true))
                .map(|watts| round1(watts / 1000.0)),
        },
        location: Location {
            latitude: location["latitude"].as_f64(),
            longitude: location["longitude"].as_f64(),
            heading: value("currentLocationHeading"),
            speed: value("speed"),
        },
        locked: flag("bodyLockIsLocked"),
        sentry_mode: None,
        climate: Climate {
            is_on: None,
            inside_temp: None,
            outside_temp: value("exteriorAirTemperature"),
            target_temp: None,
            is_defrosting: None,
        },
        doors: Doors {
            front_left: flag("cabinDoorRow1DriverSideIsOpen"),
            front_right: None,
            rear_left: None,
            rear_right: None,
            frunk: flag("bodyTrunkFrontIsOpen"),
            trunk: flag("bodyTrunkRearIsOpen"),
            charge_port: None,
        },
        odometer_km: value("powertrainTransmissionTravelledDistance").map(round1),
        last_updated: latest["lastSeen"].as_str().map(str::to_string),
    };
    let tires = TirePressures {
        front_left: value("chassisAxleRow1WheelLeftTirePressure"),
        front_right: value("chassisAxleRow1WheelRightTirePressure"),
        rear_left: value("chassisAxleRow2WheelLeftTirePressure"),
        rear_right: value("chassisAxleRow2WheelRightTirePressure"),
    };
    let has_tires = tires.front_left.is_some() || tires.front_right.is_some();
    let extras = VehicleExtras {
        fuel_level: value("powertrainFuelSystemRelativeLevel"),
        fuel_range_km: value("powertrainFuelSystemRelativeLevel")
            .and(value("powertrainRange"))
            .map(round1),
        tire_pressures_kpa: has_tires.then_some(tires),
        oil_life: None,
    };
    (state, extras)
}

struct DimoProvider;

const MINTING_UNAVAILABLE: &str = "minting is not available in carport: DIMO mints through an \
    ERC-4337 smart account (Kernel v3.1, EntryPoint 0.7) with a ZeroDev bundler and paymaster, \
    which carport does not implement yet. Mint the vehicle in the DIMO app or with DIMO's \
    @dimo-network/transactions SDK, then share it with this license \
    (generate_vehicle_data_sharing_url).";

/// Compact mode: the reads (`vehicle_state`, GraphQL, schemas, VIN decoding, search, the
/// sharing link) in `read`, everything that acts in `command` (the car's commands,
/// attestations, the user's sign-in, minting), and `help`.
const GROUPS: &[Group] = &[
    Group {
        tool: "read",
        title: "Read DIMO data",
        description: "Run one DIMO read: a car's state, GraphQL, schemas, VIN decoding, search.",
        selector: "endpoint",
        member: |tool| tool.annotations.read_only,
    },
    Group {
        tool: "command",
        title: "Command DIMO",
        description: "Command a car, create an attestation, or sign the user in.",
        selector: "command",
        member: |tool| !tool.annotations.read_only,
    },
];

const COMPACT_SUMMARY: &str = "Vehicles shared with a DIMO developer license, in three tools: \
     read {endpoint, arguments} (check_vehicle_access_status first for token ids; vehicle_state \
     for a car in km and °C; identity_query and telemetry_query run GraphQL, *_introspect give \
     the schemas), command {command, arguments} (lock_doors, unlock_doors, charging, trunk, \
     frunk; attestations; init_oauth signs the user in), and help {operation} for what an \
     operation does, takes and returns.";

const VIN_PATTERN: &str = "^[A-HJ-NPR-Za-hj-npr-z0-9]{17}$";
const COUNTRY_PATTERN: &str = "^[A-Z]{3}$";

/// Exactly the strings [`VIN_PATTERN`] matches: 17 letters and digits, without I, O or Q.
fn is_vin(text: &str) -> bool {
    text.len() == 17
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() && !b"IOQioq".contains(&byte))
}

/// Exactly the strings [`COUNTRY_PATTERN`] matches.
fn is_country(text: &str) -> bool {
    text.len() == 3 && text.bytes().all(|byte| byte.is_ascii_uppercase())
}

fn compact() -> Compact<'static> {
    Compact {
        full: tools(),
        groups: GROUPS,
        patterns: &[(VIN_PATTERN, is_vin), (COUNTRY_PATTERN, is_country)],
    }
}

impl Provider for DimoProvider {
    fn describe(context: &CallContext) -> PluginInfo {
        let (summary, tools) = match context.tool_mode {
            ToolMode::Full => (
                "Vehicles shared with a DIMO developer license: call check_vehicle_access_status \
                 first; vehicle_state reads a car in the shared shape, telemetry_query and \
                 identity_query run GraphQL (see *_introspect for the schemas), lock_doors and \
                 the other commands act on a car.",
                tools(),
            ),
            ToolMode::Compact => (COMPACT_SUMMARY, compact().tools()),
        };
        PluginInfo::new("dimo", summary, tools)
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_prompts(prompts())
            .with_resources(STATES.scheme, vec![STATES.template()])
    }

    fn list_resources(context: CallContext) -> Result<Vec<ResourceInfo>, ToolError> {
        let dimo = Dimo::new(&Settings::from_context(&context));
        Ok(dimo
            .vehicle_list()?
            .iter()
            .map(|(id, name)| STATES.resource(id, name))
            .collect())
    }

    fn read_resource(
        uri: String,
        context: CallContext,
    ) -> Result<Vec<ResourceContents>, ToolError> {
        let dimo = Dimo::new(&Settings::from_context(&context));
        STATES.read(&uri, |id| {
            let token_id = id
                .parse::<u32>()
                .map_err(|_| ToolError::NotFound(format!("no resource {uri}")))?;
            dimo.vehicle_state(token_id)
        })
    }

    fn complete(request: CompletionRequest, context: CallContext) -> Result<Completion, ToolError> {
        let dimo = Dimo::new(&Settings::from_context(&context));
        STATES.complete(&request, || dimo.vehicle_list())
    }

    fn get_prompt(
        name: String,
        arguments: Vec<(String, String)>,
        context: CallContext,
    ) -> Result<PromptResult, ToolError> {
        // Every operation the prompts name is a read: its own tool in full mode, `read` with
        // it as the endpoint in compact mode.
        let read = |operation: &str| match context.tool_mode {
            ToolMode::Full => format!("dimo_{operation}"),
            ToolMode::Compact => format!("dimo_read (endpoint {operation})"),
        };
        let argument = |key: &str| {
            arguments
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        let text = match name.as_str() {
            "vehicle_genius" => {
                let vehicle = argument("tokenId")
                    .map(|id| format!("vehicle {id}"))
                    .unwrap_or_else(|| "my vehicle".into());
                format!(
                    "You are Vehicle Genius, an expert on one car's data in DIMO. For {vehicle}: \
                     1) call {} to confirm it is shared; 2) call {} for its current state, and \
                     {} to learn which signals exist and since when; 3) for history or signals \
                     not in the state, call {} once, then {} with only the fields you need. \
                     Explain what the numbers mean for the owner (range, charging, tyre \
                     pressures, trouble codes) in plain words, with units. Before any command \
                     (lock, unlock, charge, trunk) say what it will do and ask for confirmation.",
                    read("check_vehicle_access_status"),
                    read("vehicle_state"),
                    read("vehicle_data_summary"),
                    read("telemetry_introspect"),
                    read("telemetry_query"),
                )
            }
            "fleet_genius" => {
                let focus = argument("focus").unwrap_or_else(|| "overall health".into());
                format!(
                    "You are Fleet Genius, an analyst of every vehicle shared with this DIMO \
                     developer license. Focus: {focus}. 1) Call {} to list the vehicles; \
                     2) use {} and {} over their token ids rather than one call per vehicle; \
                     3) report per vehicle and for the fleet (averages, outliers, vehicles \
                     needing attention), naming each vehicle by token id and make/model, and \
                     list the vehicles whose data could not be read with the reason.",
                    read("check_vehicle_access_status"),
                    read("batch_vehicle_data_summary"),
                    read("batch_telemetry_query"),
                )
            }
            _ => return Err(ToolError::NotFound(format!("no prompt named {name}"))),
        };
        Ok(PromptResult {
            description: None,
            messages: vec![PromptMessage {
                role: Role::User,
                content: Content::Text(text),
            }],
        })
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
        let dimo = Dimo::new(&Settings::from_context(&context));
        match name.as_str() {
            "check_vehicle_access_status" => dimo.check_access_status(),
            "init_oauth" => dimo.init_oauth(&arguments),
            "generate_vehicle_data_sharing_url" => dimo.sharing_url(&arguments),
            "identity_query" => dimo.identity_query(&arguments),
            "identity_introspect" => dimo.introspect("Identity", &dimo.urls.identity),
            "telemetry_query" => dimo.telemetry_query(&arguments),
            "batch_telemetry_query" => dimo.batch_telemetry_query(&arguments),
            "telemetry_introspect" => dimo.introspect("Telemetry", &dimo.urls.telemetry),
            "vehicle_data_summary" => {
                let id = token_id(&arguments)?;
                dimo.check_access(id)?;
                let summary = dimo.data_summary(id)?;
                let count = summary["numberOfSignals"].as_u64().unwrap_or(0);
                Ok(Output::json_with_text(
                    &summary,
                    format!("vehicle {id}: {count} signals recorded"),
                ))
            }
            "batch_vehicle_data_summary" => {
                dimo.batch(token_ids(&arguments)?, "data summary", |id| dimo.data_summary(id))
            }
            "vehicle_state" => dimo.vehicle_state(token_id(&arguments)?),
            "vin_decode" => dimo.vin_decode(&arguments),
            "search_vehicles" => dimo.search(&arguments),
            "attestation_create_vin" => dimo.attestation("vin", token_id(&arguments)?, json!({})),
            "attestation_create_odometer" => {
                let mut body = json!({});
                if let Some(timestamp) = arguments.get("timestamp") {
                    body["timestamp"] = timestamp.clone();
                }
                dimo.attestation("odometer-statement", token_id(&arguments)?, body)
            }
            "attestation_create_vehicle_health" => dimo.attestation(
                "vehicle-health",
                token_id(&arguments)?,
                json!({"startTime": arguments.get("startTime"), "endTime": arguments.get("endTime")}),
            ),
            "attestation_create_vehicle_position" => dimo.attestation(
                "vehicle-position",
                token_id(&arguments)?,
                json!({"timestamp": arguments.get("timestamp")}),
            ),
            "mint_vehicle_with_vin" | "mint_vehicle_with_device_definition" => {
                Err(ToolError::Denied(MINTING_UNAVAILABLE.into()))
            }
            command => match COMMANDS.iter().find(|(tool, ..)| *tool == command) {
                Some((tool, path, ..)) => dimo.command(tool, path, token_id(&arguments)?),
                None => Err(ToolError::invalid(format!("dimo has no tool named {command}"))),
            },
        }
    }
}

carport_guest::plugin!(DimoProvider);

fn prompts() -> Vec<Prompt> {
    vec![
        Prompt {
            name: "vehicle_genius".into(),
            title: "Vehicle Genius".into(),
            description: "Explain one vehicle's state and data, and act on it with confirmation."
                .into(),
            arguments: vec![PromptArgument {
                name: "tokenId".into(),
                description: "The vehicle's token id (check_vehicle_access_status lists them)."
                    .into(),
                required: false,
            }],
        },
        Prompt {
            name: "fleet_genius".into(),
            title: "Fleet Genius".into(),
            description: "Analyse every vehicle shared with the license at once.".into(),
            arguments: vec![PromptArgument {
                name: "focus".into(),
                description: "What to look at, e.g. battery health, utilisation, maintenance."
                    .into(),
                required: false,
            }],
        },
    ]
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

fn token_id_property() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 4294967295u64,
           "description": "The vehicle's DIMO token id (check_vehicle_access_status lists them)."})
}

fn token_ids_property() -> Value {
    json!({"type": "array", "minItems": 1, "maxItems": 100, "uniqueItems": true,
           "items": {"type": "integer", "minimum": 1, "maximum": 4294967295u64},
           "description": "Vehicle token ids."})
}

fn query_property(api: &str) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 65536,
           "description": format!("A GraphQL query for DIMO's {api} API (queries only). Call {}_introspect for the schema.", api.to_ascii_lowercase())})
}

fn variables_property() -> Value {
    json!({"type": "object", "description": "GraphQL variables."})
}

fn time_property(what: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": what})
}

fn tools() -> Vec<Tool> {
    let batch_output = json!({"type": "object", "properties": {
        "summary": {"type": "object", "properties": {"total": {"type": "integer"},
                    "successful": {"type": "integer"}, "failed": {"type": "integer"}}},
        "results": {"type": "array"}, "errors": {"type": "array"}},
        "required": ["summary", "results", "errors"]});
    let attestation_output =
        json!({"type": "object", "properties": {"message": {"type": "string"}}});
    let introspection_output = json!({"type": "object", "properties": {"api": {"type": "string"},
        "schema": {"type": "string", "description": "SDL-like"}}, "required": ["schema"]});
    let mut tools = vec![
        Tool::new(
            "check_vehicle_access_status",
            "Check Vehicle Access",
            "Call first. Lists the vehicles shared with this developer license: the signed-in \
             user's (owner_address) or, in fleet mode, all of them, with token id, make, model, \
             year and owner. Use the token ids with the other tools.",
            object(json!({}), &[]),
            Annotations::READ,
        )
        .with_output_schema(json!({"type": "object", "properties": {"client_id": {"type": "string"}, "fleet_mode": {"type": "boolean"}, "user_wallet": {"type": ["string", "null"]}, "scope": {"enum": ["user", "fleet", "signed_out"]}, "total_count": {"type": "integer"}, "vehicles": {"type": "array"}}, "required": ["scope", "total_count", "vehicles"]})),
        Tool::new(
            "init_oauth",
            "Sign In to DIMO",
            "Signs the vehicle owner in: returns DIMO's login link for the user to open; carport \
             receives the answer and keeps the user's token itself. Then vehicle tools act on \
             the user's vehicles. Pass redirected_url (the address the browser ended on) when the \
             browser could not come back to this machine.",
            object(json!({"port": {"type": "integer", "minimum": 1, "maximum": 65535,
                    "description": "Accepted for compatibility; the redirect address is set in plugins.toml."},
                "redirected_url": {"type": "string", "maxLength": 8192, "format": "uri",
                    "description": "The address the browser ended on after logging in."}}), &[]),
            Annotations { read_only: false, destructive: false, idempotent: false, open_world: true },
        )
        .with_output_schema(json!({"type": "object", "properties": {"status": {"enum": ["waiting", "signed_in"]},
            "url": {"type": "string"}, "wallet": {"type": "string"}}, "required": ["status"]})),
        Tool::new(
            "generate_vehicle_data_sharing_url",
            "Vehicle Sharing Link",
            "A DIMO login link the vehicle owner opens to share their vehicle with this license. \
             Template 1 includes commands; others share data only. Sends nothing.",
            object(json!({"permissionTemplateId": {"type": "integer", "minimum": 1, "default": 1,
                "description": "Permission template (1: data and commands)."}}), &[]),
            Annotations { read_only: true, destructive: false, idempotent: true, open_world: false },
        )
        .with_output_schema(json!({"type": "object", "properties": {"url": {"type": "string"}, "permission_template_id": {"type": "integer"}}, "required": ["url"]})),
        Tool::new(
            "identity_query",
            "Identity GraphQL Query",
            "Runs a GraphQL query on DIMO's Identity API (public: vehicles, owners, devices, \
             permission grants). Lists need `first` or `last` (at most 100).",
            object(json!({"query": query_property("Identity"), "variables": variables_property()}), &["query"]),
            Annotations::READ,
        )
        .with_output_schema(json!({"type": "object", "description": "GraphQL `data`, or {data, errors} when part of it could not be read"})),
        Tool::new(
            "identity_introspect",
            "Identity Schema",
            "The Identity API's schema (types, fields, arguments), cached for a day.",
            object(json!({}), &[]),
            Annotations::READ,
        )
        .with_output_schema(introspection_output.clone()),
        Tool::new(
            "telemetry_query",
            "Telemetry GraphQL Query",
            "Runs a GraphQL query on DIMO's Telemetry API for one vehicle, with its token \
             (`$tokenId` is set for you). E.g. signalsLatest(tokenId: $tokenId) { speed { value \
             timestamp } }, signals(tokenId, interval: \"1h\", from, to) for history. Booleans \
             are 0/1; units km, km/h, °C, kPa.",
            object(json!({"query": query_property("Telemetry"), "tokenId": token_id_property(),
                "variables": variables_property()}), &["query", "tokenId"]),
            Annotations::READ,
        )
        .with_output_schema(json!({"type": "object", "description": "GraphQL `data`, or {data, errors} when part of it could not be read"})),
        Tool::new(
            "batch_telemetry_query",
            "Telemetry Query, Many Vehicles",
            "telemetry_query for several vehicles in turn, with progress; returns each \
             vehicle's result or error and a summary.",
            object(json!({"query": query_property("Telemetry"), "tokenIds": token_ids_property(),
                "variables": variables_property()}), &["query", "tokenIds"]),
            Annotations::READ,
        )
        .with_output_schema(batch_output.clone()),
        Tool::new(
            "telemetry_introspect",
            "Telemetry Schema",
            "The Telemetry API's schema (signals, types, arguments), cached for a day.",
            object(json!({}), &[]),
            Annotations::READ,
        )
        .with_output_schema(introspection_output),
        Tool::new(
            "vehicle_data_summary",
            "Vehicle Data Summary",
            "Which signals a vehicle has sent, how many, first and last seen.",
            object(json!({"tokenId": token_id_property()}), &["tokenId"]),
            Annotations::READ,
        )
        .with_output_schema(json!({"type": "object", "properties": {"numberOfSignals": {"type": "integer"}, "availableSignals": {"type": "array", "items": {"type": "string"}}, "firstSeen": {"type": "string"}, "lastSeen": {"type": "string"}, "signalDataSummary": {"type": "array"}}})),
        Tool::new(
            "batch_vehicle_data_summary",
            "Data Summary, Many Vehicles",
            "vehicle_data_summary for several vehicles in turn, with progress.",
            object(json!({"tokenIds": token_ids_property()}), &["tokenIds"]),
            Annotations::READ,
        )
        .with_output_schema(batch_output),
        Tool::new(
            "vehicle_state",
            "Vehicle State",
            "A vehicle's latest state in carport's shared shape (battery or fuel, range km, \
             locked, doors, location, odometer km, tyre kPa), from its latest signals. Fields \
             the license may not read are null.",
            object(json!({"tokenId": token_id_property()}), &["tokenId"]),
            Annotations::READ,
        )
        .with_output_schema(VehicleState::output_schema_with_extras()),
        Tool::new(
            "vin_decode",
            "Decode VIN",
            "The DIMO device definition (make_model_year id) of a VIN.",
            object(json!({"vin": {"type": "string", "pattern": VIN_PATTERN,
                    "description": "17-character VIN."},
                "countryCode": {"type": "string", "pattern": COUNTRY_PATTERN, "default": "USA",
                    "description": "ISO 3166 alpha-3 country."}}), &["vin"]),
            Annotations::READ,
        )
        .with_output_schema(json!({"type": "object", "properties": {"deviceDefinitionId": {"type": "string"}, "newTransactionHash": {"type": "string"}}, "required": ["deviceDefinitionId"]})),
        Tool::new(
            "search_vehicles",
            "Search Vehicle Models",
            "Searches DIMO's device definitions (makes, models, years).",
            object(json!({"query": {"type": "string", "maxLength": 200, "description": "Free text, e.g. \"model 3\"."},
                "make": {"type": "string", "maxLength": 100}, "model": {"type": "string", "maxLength": 100},
                "year": {"type": "integer", "minimum": 1900, "maximum": 2100}}), &[]),
            Annotations::READ,
        )
        .with_output_schema(json!({"type": "object", "properties": {"deviceDefinitions": {"type": ["array", "null"]}, "facets": {}, "pagination": {}}})),
        Tool::new(
            "attestation_create_vin",
            "Create VIN Credential",
            "Creates (or returns the unexpired) verifiable credential of the vehicle's VIN; \
             needs the VIN-credential privilege. Read it with telemetry_query vinVCLatest.",
            object(json!({"tokenId": token_id_property(), "force": {"type": "boolean", "default": false,
                "description": "Accepted for the seed's sake; DIMO's API has no such option."}}), &["tokenId"]),
            Annotations::ACT,
        )
        .with_output_schema(attestation_output.clone()),
        Tool::new(
            "attestation_create_odometer",
            "Create Odometer Statement",
            "Creates a verifiable odometer statement (now, or at `timestamp`).",
            object(json!({"tokenId": token_id_property(), "timestamp": time_property("RFC 3339 time; default now.")}), &["tokenId"]),
            Annotations::ACT,
        )
        .with_output_schema(attestation_output.clone()),
        Tool::new(
            "attestation_create_vehicle_health",
            "Create Vehicle Health Attestation",
            "Creates a vehicle health attestation over a period of at most 30 days.",
            object(json!({"tokenId": token_id_property(), "startTime": time_property("Start, RFC 3339."),
                "endTime": time_property("End, RFC 3339.")}), &["tokenId", "startTime", "endTime"]),
            Annotations::ACT,
        )
        .with_output_schema(attestation_output.clone()),
        Tool::new(
            "attestation_create_vehicle_position",
            "Create Vehicle Position Attestation",
            "Creates an attestation of where the vehicle was at `timestamp`.",
            object(json!({"tokenId": token_id_property(), "timestamp": time_property("RFC 3339 time.")}), &["tokenId", "timestamp"]),
            Annotations::ACT,
        )
        .with_output_schema(attestation_output),
        Tool::new(
            "mint_vehicle_with_vin",
            "Mint Vehicle (VIN)",
            "Not available in carport yet (DIMO mints through an ERC-4337 smart account); \
             answers with how to mint instead.",
            object(json!({"vin": {"type": "string", "pattern": VIN_PATTERN},
                "countryCode": {"type": "string", "pattern": COUNTRY_PATTERN, "default": "USA"}}), &["vin"]),
            Annotations::ACT,
        ),
        Tool::new(
            "mint_vehicle_with_device_definition",
            "Mint Vehicle (Make/Model/Year)",
            "Not available in carport yet (DIMO mints through an ERC-4337 smart account); \
             answers with how to mint instead.",
            object(json!({"make": {"type": "string", "maxLength": 100}, "model": {"type": "string", "maxLength": 100},
                "year": {"type": "integer", "minimum": 1900, "maximum": 2100}}), &["make", "model", "year"]),
            Annotations::ACT,
        ),
    ];
    let command_output = json!({"type": "object", "properties": {"tokenId": {"type": "integer"},
        "command": {"type": "string"}, "requestId": {"type": "string"}, "status": {"type": "string"}},
        "required": ["tokenId", "command", "requestId"]});
    for (name, _path, description, annotations) in COMMANDS {
        let title = name
            .split('_')
            .map(|word| {
                let mut letters = word.chars();
                letters
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + letters.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ");
        tools.push(
            Tool::new(
                name,
                &title,
                &format!("{description} Needs the commands privilege; DIMO queues the command and answers with a request id."),
                object(json!({"tokenId": token_id_property()}), &["tokenId"]),
                *annotations,
            )
            .with_output_schema(command_output.clone()),
        );
    }
    tools
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_mode_serves_every_tool_through_read_or_command() {
        let full = tools();
        let listed = compact().tools();
        let names: Vec<&str> = listed.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(names, ["read", "command", "help"]);
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
        served.sort();
        expected.sort();
        assert_eq!(served, expected);
        // The groups promise an object: every tool that can succeed returns one; the minting
        // tools never succeed.
        for tool in &full {
            match tool.output_schema.as_deref() {
                Some(schema) => {
                    let schema: Value = serde_json::from_str(schema).unwrap();
                    assert_eq!(schema["type"], "object", "{}", tool.name);
                }
                None => assert!(tool.name.starts_with("mint_"), "{}", tool.name),
            }
        }
    }

    #[test]
    fn the_matchers_agree_with_the_patterns() {
        for vin in ["5YJ3E1EA7KF000001", "1ftfw1e80pfa00003"] {
            assert!(is_vin(vin), "{vin}");
        }
        for vin in [
            "5YJ3E1EA7KF00000",
            "5YJ3E1EA7KF0000011",
            "5YJ3E1EA7KF00000I",
            "5YJ3E1EA7KF00000é",
        ] {
            assert!(!is_vin(vin), "{vin}");
        }
        assert!(is_country("USA"));
        for country in ["usa", "US", "USAA", "U1A"] {
            assert!(!is_country(country), "{country}");
        }
    }
}
