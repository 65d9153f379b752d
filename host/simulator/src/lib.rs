//! A built-in simulator of the vendors' APIs on loopback, for `carport demo` and the tests.
//!
//! A crate of its own, linked into the one `carport` binary (which re-exports it as
//! `carport::simulator`): `carport demo` needs no second program. Each vendor listens on its own
//! port, so each plugin's egress allowlist names only its own vendor, as in production. The
//! simulator keeps vehicle state between calls, records every request (tests assert on the
//! wire), and can be scripted to answer with a vendor's failure modes.

pub mod dimo;
pub mod fleet;
pub mod fleet_car;
pub mod nhtsa;
pub mod sign_in;
pub mod smartcar;
pub mod teslamate;
pub mod tessie;
pub mod vehicle;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Result;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use vehicle::SimVehicle;

/// The vendors the simulator speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    Tessie,
    TeslaMate,
    /// Tesla's Fleet API in the account's home region (MyTeslaMate's proxy looks the same).
    Fleet,
    /// The same API in another region, for "421 user out of region".
    FleetOtherRegion,
    /// Smartcar's token endpoint, Vehicle API (`/v3`) and Management API (`/management/v3`).
    Smartcar,
    /// DIMO's services, each its own origin: auth, Identity (GraphQL), Telemetry (GraphQL),
    /// token exchange, device commands, attestations and device definitions.
    DimoAuth,
    DimoIdentity,
    DimoTelemetry,
    DimoTokenExchange,
    DimoDevices,
    DimoAttestation,
    DimoDeviceDefinitions,
    /// Tesla's authorization server: the sign-in page and the authorization-code grant.
    TeslaAuth,
    /// DIMO's login page (login.dimo.org), which sends the browser back with a user token.
    DimoLogin,
    /// NHTSA's vPIC VIN decoder (keyless).
    NhtsaVpic,
    /// NHTSA's recalls and complaints API (keyless).
    NhtsaApi,
}

impl Vendor {
    pub const ALL: &[Vendor] = &[
        Vendor::Tessie,
        Vendor::TeslaMate,
        Vendor::Fleet,
        Vendor::FleetOtherRegion,
        Vendor::Smartcar,
        Vendor::DimoAuth,
        Vendor::DimoIdentity,
        Vendor::DimoTelemetry,
        Vendor::DimoTokenExchange,
        Vendor::DimoDevices,
        Vendor::DimoAttestation,
        Vendor::DimoDeviceDefinitions,
        Vendor::TeslaAuth,
        Vendor::DimoLogin,
        Vendor::NhtsaVpic,
        Vendor::NhtsaApi,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Vendor::Tessie => "tessie",
            Vendor::TeslaMate => "teslamate",
            Vendor::Fleet => "fleet",
            Vendor::FleetOtherRegion => "fleet-other-region",
            Vendor::Smartcar => "smartcar",
            Vendor::DimoAuth => "dimo-auth",
            Vendor::DimoIdentity => "dimo-identity",
            Vendor::DimoTelemetry => "dimo-telemetry",
            Vendor::DimoTokenExchange => "dimo-token-exchange",
            Vendor::DimoDevices => "dimo-devices",
            Vendor::DimoAttestation => "dimo-attestation",
            Vendor::DimoDeviceDefinitions => "dimo-device-definitions",
            Vendor::TeslaAuth => "tesla-auth",
            Vendor::DimoLogin => "dimo-login",
            Vendor::NhtsaVpic => "nhtsa-vpic",
            Vendor::NhtsaApi => "nhtsa-api",
        }
    }

    /// The credential a plugin holds for the simulated vendor: an access token, or for
    /// Smartcar the client secret the host exchanges for access tokens; for the sign-in pages
    /// the client id they accept. DIMO's APIs have none: their tokens come from signing a
    /// challenge.
    pub fn token(self) -> &'static str {
        match self {
            Vendor::Tessie => "sim-tessie-token",
            Vendor::TeslaMate => "sim-teslamate-token",
            Vendor::Fleet | Vendor::FleetOtherRegion => fleet::STATIC_TOKEN,
            Vendor::Smartcar => smartcar::CLIENT_SECRET,
            Vendor::DimoAuth
            | Vendor::DimoIdentity
            | Vendor::DimoTelemetry
            | Vendor::DimoTokenExchange
            | Vendor::DimoDevices
            | Vendor::DimoAttestation
            | Vendor::DimoDeviceDefinitions => "",
            Vendor::TeslaAuth => sign_in::TESLA_CLIENT_ID,
            Vendor::DimoLogin => sign_in::DIMO_CLIENT_ID,
            // Keyless: NHTSA's services take no credential.
            Vendor::NhtsaVpic | Vendor::NhtsaApi => "",
        }
    }
}

/// A request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub vendor: Vendor,
    pub method: String,
    pub path: String,
    /// Raw query string, without `?`.
    pub query: String,
    pub body: String,
    pub authorization: Option<String>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Decoded query parameters.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    }
}

/// A canned answer for the next `times` requests that match.
#[derive(Debug, Clone)]
pub struct Script {
    pub vendor: Vendor,
    pub method: Option<String>,
    pub path_prefix: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub times: u32,
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// How long a sleeping car takes to wake (real cars: 10-30 s).
    pub wake_delay: Duration,
    /// Port of the first vendor; the others follow. 0 picks free ports.
    pub base_port: u16,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            wake_delay: Duration::from_secs(2),
            base_port: 0,
        }
    }
}

pub struct SimState {
    pub options: SimOptions,
    pub fleet: FleetAccount,
    pub smartcar: smartcar::Account,
    pub dimo: dimo::Account,
    pub sign_in: sign_in::Accounts,
    vehicles: Mutex<Vec<SimVehicle>>,
    requests: Mutex<Vec<RecordedRequest>>,
    scripts: Mutex<Vec<Script>>,
    /// While a test holds it, every answer waits (its request is recorded first).
    hold: Arc<tokio::sync::RwLock<()>>,
}

/// The simulated Tesla account: its tokens and which cars need signed commands.
pub struct FleetAccount {
    /// The one refresh token the token endpoint accepts now; it rotates at each use.
    pub refresh_token: Mutex<String>,
    pub refreshes: std::sync::atomic::AtomicU32,
    access_tokens: Mutex<Vec<String>>,
    /// The account's region (`/api/1/users/region`): the simulated Fleet API's own address.
    pub home_base_url: std::sync::OnceLock<String>,
    signed_only: Mutex<std::collections::HashSet<String>>,
    /// The protocol side of the cars that require signed commands, by VIN.
    protocol_cars: Mutex<std::collections::HashMap<String, fleet_car::ProtocolCar>>,
}

impl FleetAccount {
    fn new() -> FleetAccount {
        FleetAccount {
            refresh_token: Mutex::new(fleet::FIRST_REFRESH_TOKEN.to_string()),
            refreshes: std::sync::atomic::AtomicU32::new(0),
            access_tokens: Mutex::new(vec![fleet::STATIC_TOKEN.to_string()]),
            home_base_url: std::sync::OnceLock::new(),
            signed_only: Mutex::new(std::collections::HashSet::new()),
            protocol_cars: Mutex::new(std::collections::HashMap::new()),
        }
    }

    pub fn lock_tokens(&self) -> MutexGuard<'_, Vec<String>> {
        lock(&self.access_tokens)
    }

    pub fn lock_signed_only(&self) -> MutexGuard<'_, std::collections::HashSet<String>> {
        lock(&self.signed_only)
    }

    pub fn lock_protocol_cars(
        &self,
    ) -> MutexGuard<'_, std::collections::HashMap<String, fleet_car::ProtocolCar>> {
        lock(&self.protocol_cars)
    }
}

impl SimState {
    pub fn vehicles(&self) -> MutexGuard<'_, Vec<SimVehicle>> {
        self.vehicles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Clone)]
pub struct Simulator {
    pub state: Arc<SimState>,
    addresses: Vec<(Vendor, SocketAddr)>,
}

impl Simulator {
    /// Binds one loopback listener per vendor and serves them in the background.
    pub async fn start(options: SimOptions) -> Result<Simulator> {
        let state = Arc::new(SimState {
            options: options.clone(),
            fleet: FleetAccount::new(),
            smartcar: smartcar::Account::new(),
            dimo: dimo::Account::new(),
            sign_in: sign_in::Accounts::new(),
            vehicles: Mutex::new(SimVehicle::garage()),
            requests: Mutex::new(Vec::new()),
            scripts: Mutex::new(Vec::new()),
            hold: Arc::new(tokio::sync::RwLock::new(())),
        });
        let mut addresses = Vec::new();
        for (offset, vendor) in Vendor::ALL.iter().enumerate() {
            let port = match options.base_port {
                0 => 0,
                base => base + offset as u16,
            };
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            addresses.push((*vendor, listener.local_addr()?));
            let router = match vendor {
                Vendor::Tessie => tessie::router(),
                Vendor::TeslaMate => teslamate::router(),
                Vendor::Fleet | Vendor::FleetOtherRegion => fleet::router(),
                Vendor::Smartcar => smartcar::router(),
                Vendor::DimoAuth => dimo::auth_router(),
                Vendor::DimoIdentity => dimo::identity_router(),
                Vendor::DimoTelemetry => dimo::telemetry_router(),
                Vendor::DimoTokenExchange => dimo::token_exchange_router(),
                Vendor::DimoDevices => dimo::devices_router(),
                Vendor::DimoAttestation => dimo::attestation_router(),
                Vendor::DimoDeviceDefinitions => dimo::device_definitions_router(),
                Vendor::TeslaAuth => sign_in::tesla_router(),
                Vendor::DimoLogin => sign_in::dimo_router(),
                Vendor::NhtsaVpic => nhtsa::vpic_router(),
                Vendor::NhtsaApi => nhtsa::api_router(),
            }
            .layer(middleware::from_fn_with_state(
                (state.clone(), *vendor),
                record_and_script,
            ))
            .with_state(state.clone());
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, router).await {
                    tracing::error!("simulator stopped: {error}");
                }
            });
        }
        let simulator = Simulator { state, addresses };
        let home = simulator.url(Vendor::Fleet);
        let _ = simulator.state.fleet.home_base_url.set(home);
        Ok(simulator)
    }

    /// Base URL of a vendor's simulated API, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self, vendor: Vendor) -> String {
        let address = self
            .addresses
            .iter()
            .find(|(candidate, _)| *candidate == vendor)
            .map(|(_, address)| *address)
            .expect("every vendor is bound at start");
        format!("http://{address}")
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// Holds every answer until the returned guard is dropped: a test's call stays in flight.
    pub async fn hold_answers(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.state.hold.clone().write_owned().await
    }

    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }

    pub fn script(&self, script: Script) {
        lock(&self.state.scripts).push(script);
    }

    /// Every Fleet access token stops working, as when they expire.
    pub fn expire_fleet_tokens(&self) {
        self.state.fleet.lock_tokens().clear();
    }

    /// The car answers unsigned commands with 403 "Vehicle Command Protocol required" and
    /// takes signed ones at `signed_command`, from keys paired with [`Simulator::pair_key`].
    pub fn require_signed_commands(&self, vin: &str) {
        self.state.fleet.lock_signed_only().insert(vin.to_string());
        self.state
            .fleet
            .lock_protocol_cars()
            .entry(vin.to_string())
            .or_insert_with(|| fleet_car::ProtocolCar::new(vin));
    }

    /// The owner pairs a public key (PEM, as `carport keys` prints it) with a car that
    /// requires signed commands.
    pub fn pair_key(&self, vin: &str, public_key_pem: &str) -> Result<()> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::DecodePublicKey;
        let key = p256::PublicKey::from_public_key_pem(public_key_pem.trim())
            .map_err(|error| anyhow::anyhow!("not a P-256 public key in PEM: {error}"))?;
        let mut cars = self.state.fleet.lock_protocol_cars();
        let car = cars
            .get_mut(vin)
            .ok_or_else(|| anyhow::anyhow!("{vin} does not require signed commands"))?;
        car.paired
            .push(key.to_encoded_point(false).as_bytes().to_vec());
        Ok(())
    }

    /// The car reboots: both protocol domains start a new epoch.
    pub fn restart_car(&self, vin: &str) {
        if let Some(car) = self.state.fleet.lock_protocol_cars().get_mut(vin) {
            car.restart();
        }
    }

    /// Another client with the same key sent `count` commands to each domain.
    pub fn spend_counters_elsewhere(&self, vin: &str, count: u32) {
        if let Some(car) = self.state.fleet.lock_protocol_cars().get_mut(vin) {
            car.spend_counters_elsewhere(count);
        }
    }

    pub fn vehicle(&self, vin: &str) -> Option<SimVehicle> {
        self.state
            .vehicles()
            .iter()
            .find(|vehicle| vehicle.vin == vin)
            .cloned()
    }

    pub fn update_vehicle(&self, vin: &str, change: impl FnOnce(&mut SimVehicle)) {
        if let Some(vehicle) = self
            .state
            .vehicles()
            .iter_mut()
            .find(|vehicle| vehicle.vin == vin)
        {
            change(vehicle);
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Records each request, then answers from a matching script or passes it to the vendor.
async fn record_and_script(
    State((state, vendor)): State<(Arc<SimState>, Vendor)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let recorded = RecordedRequest {
        vendor,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        authorization: parts
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
        headers: parts
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect(),
    };
    let scripted = {
        let mut scripts = lock(&state.scripts);
        let position = scripts.iter().position(|script| {
            script.vendor == vendor
                && script.times > 0
                && recorded.path.starts_with(&script.path_prefix)
                && script
                    .method
                    .as_deref()
                    .is_none_or(|method| method == recorded.method)
        });
        position.map(|position| {
            let script = &mut scripts[position];
            script.times -= 1;
            let answer = script.clone();
            if script.times == 0 {
                scripts.remove(position);
            }
            answer
        })
    };
    lock(&state.requests).push(recorded);
    let _released = state.hold.read().await;
    if let Some(script) = scripted {
        let mut headers = HeaderMap::new();
        for (name, value) in &script.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let status =
            StatusCode::from_u16(script.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, headers, axum::Json(script.body)).into_response();
    }
    next.run(axum::http::Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Checks `Authorization: Bearer <token>`.
pub fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        == Some(token)
}
