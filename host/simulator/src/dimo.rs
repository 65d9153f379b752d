//! DIMO's APIs: auth (Web3 challenge signed by the developer license's signer key, checked by
//! recovering the address), Identity and Telemetry (GraphQL, served by a real GraphQL engine
//! with introspection), token exchange (vehicle tokens whose privileges come from the
//! vehicle's permission grants), device commands, attestations and device definitions.
//!
//! Each service listens on its own port, as each is its own origin at DIMO. Tokens are JWTs
//! signed by the simulator; each service checks the claims the real one checks (telemetry and
//! attestation read `asset`/`permissions`, device commands the older `token_id`/`privilege_ids`).
//! Error bodies follow each service's own shape.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, ErrorExtensions, InputObject, Object, Schema,
    SimpleObject,
};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha3::{Digest, Keccak256};

use super::SimState;

const FIXTURES: &str = include_str!("../fixtures/dimo.json");
/// Developer tokens last 14 days, vehicle tokens 10 minutes.
pub const DEVELOPER_TOKEN_SECONDS: u64 = 14 * 24 * 3600;
pub const VEHICLE_TOKEN_SECONDS: u64 = 600;
const POLYGON: u32 = 137;
const PRIVILEGE_NAMES: [&str; 8] = [
    "GetNonLocationHistory",
    "ExecuteCommands",
    "GetCurrentLocation",
    "GetLocationHistory",
    "GetVINCredential",
    "GetLiveData",
    "GetRawData",
    "GetApproximateLocation",
];

#[derive(Debug, Clone, Deserialize)]
struct Fixtures {
    license: License,
    user: User,
    vehicle_contract: String,
    vehicles: Vec<DimoVehicle>,
    device_definitions: Vec<DeviceDefinition>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct License {
    /// The developer license's address, which is also its OAuth client id.
    pub client_id: String,
    /// The private key of the license's enabled signer (hex); a demo value, not a secret.
    pub signer_key: String,
    pub redirect_uri: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub wallet: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DimoVehicle {
    pub token_id: u32,
    pub vin: String,
    pub name: String,
    pub owner: String,
    pub minted_at: String,
    pub manufacturer: Manufacturer,
    pub definition: Definition,
    pub connection: String,
    pub synthetic_device: Option<NamedToken>,
    /// Whether its integration takes remote commands.
    pub commands: bool,
    pub powertrain_type: String,
    /// Diagnostic trouble codes, comma separated.
    pub dtc: String,
    pub sacds: Vec<Grant>,
    pub location: Location,
    pub signals: BTreeMap<String, f64>,
    pub first_seen: String,
    pub signals_recorded: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, SimpleObject)]
pub struct Manufacturer {
    pub name: String,
    pub token_id: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq, SimpleObject)]
pub struct Definition {
    pub id: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct NamedToken {
    pub token_id: u32,
    pub name: String,
}

/// A permission grant to the developer license (an SACD).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Grant {
    pub privileges: Vec<u32>,
    pub created_at: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, SimpleObject)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub hdop: f64,
}

#[derive(Debug, Clone, Deserialize)]
struct DeviceDefinition {
    id: String,
    name: String,
    make: String,
    model: String,
    year: i32,
    wmi: String,
}

/// The simulated DIMO: its developer license, user, vehicles and issued tokens.
pub struct Account {
    pub license: License,
    pub user: User,
    pub vehicle_contract: String,
    signer_address: String,
    vehicles: Mutex<Vec<DimoVehicle>>,
    definitions: Vec<DeviceDefinition>,
    challenges: Mutex<HashMap<String, String>>,
    /// Tokens issued before this instant (Unix seconds) are refused, as expired ones are.
    valid_from: AtomicU64,
    developer_tokens: AtomicU32,
    exchanges: AtomicU32,
    commands: Mutex<Vec<(u32, String)>>,
    signing_secret: [u8; 32],
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Account {
    pub fn new() -> Account {
        let fixtures: Fixtures = serde_json::from_str(FIXTURES).expect("dimo.json is valid");
        let signer = k256::ecdsa::SigningKey::from_slice(
            &hex::decode(&fixtures.license.signer_key).expect("signer key is hex"),
        )
        .expect("signer key is a valid secp256k1 key");
        let mut signing_secret = [0u8; 32];
        signing_secret.copy_from_slice(&Keccak256::digest(b"carport simulator dimo"));
        Account {
            signer_address: address_of(signer.verifying_key()),
            license: fixtures.license,
            user: fixtures.user,
            vehicle_contract: fixtures.vehicle_contract,
            vehicles: Mutex::new(fixtures.vehicles),
            definitions: fixtures.device_definitions,
            challenges: Mutex::new(HashMap::new()),
            valid_from: AtomicU64::new(0),
            developer_tokens: AtomicU32::new(0),
            exchanges: AtomicU32::new(0),
            commands: Mutex::new(Vec::new()),
            signing_secret,
        }
    }

    pub fn vehicles(&self) -> MutexGuard<'_, Vec<DimoVehicle>> {
        lock(&self.vehicles)
    }

    pub fn vehicle(&self, token_id: u32) -> Option<DimoVehicle> {
        self.vehicles()
            .iter()
            .find(|vehicle| vehicle.token_id == token_id)
            .cloned()
    }

    /// Developer tokens issued so far (successful challenge submissions).
    pub fn developer_tokens(&self) -> u32 {
        self.developer_tokens.load(Ordering::SeqCst)
    }

    /// Vehicle tokens issued so far.
    pub fn exchanges(&self) -> u32 {
        self.exchanges.load(Ordering::SeqCst)
    }

    /// Commands the devices API accepted: (token id, command path such as `doors/lock`).
    pub fn commands(&self) -> Vec<(u32, String)> {
        lock(&self.commands).clone()
    }

    /// Every token issued so far stops working, as when they expire.
    pub fn expire_tokens(&self) {
        self.valid_from.store(now() + 1, Ordering::SeqCst);
    }

    /// The address the license's signer key signs as.
    pub fn signer_address(&self) -> &str {
        &self.signer_address
    }

    fn issue(&self, claims: Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","kid":"sim"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.signing_secret)
            .expect("HMAC takes any key length");
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// The claims of a token this simulator issued that has not expired.
    fn verify(&self, token: &str) -> Option<Value> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.signing_secret).ok()?;
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?)
            .ok()?;
        let payload = signing_input.split('.').nth(1)?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let issued = claims["iat"].as_u64()?;
        let expires = claims["exp"].as_u64()?;
        (issued >= self.valid_from.load(Ordering::SeqCst) && expires > now()).then_some(claims)
    }

    fn asset_did(&self, token_id: u32) -> String {
        format!("did:erc721:{POLYGON}:{}:{token_id}", self.vehicle_contract)
    }

    /// The privileges the license holds on a vehicle now (unexpired grants).
    fn granted(&self, vehicle: &DimoVehicle) -> Vec<u32> {
        let today = chrono::Utc::now().to_rfc3339();
        let mut privileges: Vec<u32> = vehicle
            .sacds
            .iter()
            .filter(|grant| grant.expires_at.as_str() > today.as_str())
            .flat_map(|grant| grant.privileges.iter().copied())
            .collect();
        privileges.sort_unstable();
        privileges.dedup();
        privileges
    }
}

impl Default for Account {
    fn default() -> Self {
        Account::new()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// The EIP-55 checksummed address of a public key.
pub fn address_of(key: &VerifyingKey) -> String {
    let point = key.to_encoded_point(false);
    let lower = hex::encode(&Keccak256::digest(&point.as_bytes()[1..])[12..]);
    checksummed(&lower)
}

fn checksummed(lower_hex: &str) -> String {
    let lower = lower_hex.to_ascii_lowercase();
    let hash = hex::encode(Keccak256::digest(lower.as_bytes()));
    let mut address = String::from("0x");
    for (digit, nibble) in lower.chars().zip(hash.chars()) {
        let upper = nibble.to_digit(16).unwrap_or(0) >= 8;
        address.push(if upper {
            digit.to_ascii_uppercase()
        } else {
            digit
        });
    }
    address
}

/// The address that signed `message` with EIP-191 `personal_sign`.
pub fn recover_personal_signer(message: &[u8], signature_hex: &str) -> Option<String> {
    let bytes = hex::decode(signature_hex.trim_start_matches("0x")).ok()?;
    if bytes.len() != 65 {
        return None;
    }
    let mut hasher = Keccak256::new();
    hasher.update(b"\x19Ethereum Signed Message:\n");
    hasher.update(message.len().to_string().as_bytes());
    hasher.update(message);
    let digest = hasher.finalize();
    let signature = Signature::from_slice(&bytes[..64]).ok()?;
    let v = bytes[64];
    let recovery = RecoveryId::from_byte(if v >= 27 { v - 27 } else { v })?;
    let key = VerifyingKey::recover_from_prehash(&digest, &signature, recovery).ok()?;
    Some(address_of(&key))
}

/// The 2-bits-per-privilege encoding of grants: privilege i sets bits 2i and 2i+1.
pub fn permissions_hex(privileges: &[u32]) -> String {
    let bits = privileges
        .iter()
        .filter(|privilege| (1..64).contains(*privilege))
        .fold(0u128, |bits, privilege| {
            bits | (0b11u128 << (2 * privilege))
        });
    format!("0x{bits:x}")
}

type Shared = State<Arc<SimState>>;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
}

/// gofiber's JWT middleware, which the REST services use: plain-text refusals.
fn fiber_claims(
    state: &SimState,
    headers: &HeaderMap,
) -> Result<Value, (StatusCode, &'static str)> {
    let Some(token) = bearer(headers) else {
        return Err((StatusCode::BAD_REQUEST, "missing or malformed JWT"));
    };
    state
        .dimo
        .verify(token)
        .ok_or((StatusCode::UNAUTHORIZED, "Invalid or expired JWT"))
}

fn coded(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16(), "message": message})),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Auth (auth.dimo.zone)

pub fn auth_router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/auth/web3/generate_challenge", post(generate_challenge))
        .route("/auth/web3/submit_challenge", post(submit_challenge))
}

fn auth_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": 400, "message": message})),
    )
        .into_response()
}

fn form_and_query(query: &HashMap<String, String>, body: &[u8]) -> HashMap<String, String> {
    let mut fields = query.clone();
    fields.extend(
        form_urlencoded::parse(body).map(|(key, value)| (key.into_owned(), value.into_owned())),
    );
    fields
}

async fn generate_challenge(
    State(state): Shared,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let fields = form_and_query(&query, &body);
    let account = &state.dimo;
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let address = field("address");
    if !is_address(address) {
        return auth_error("Invalid Ethereum address.");
    }
    if !field("client_id").eq_ignore_ascii_case(&account.license.client_id)
        || field("domain") != account.license.redirect_uri
    {
        return auth_error("Invalid redirect URI.");
    }
    if field("scope") != "openid email" || field("response_type") != "code" {
        return auth_error("Couldn't parse parameters.");
    }
    let nonce = hex::encode(&Keccak256::digest(now().to_string() + address)[..15]);
    let state_id = hex::encode(&Keccak256::digest(nonce.as_bytes())[..12]);
    let challenge = format!(
        "auth.dimo.zone wants you to sign in with your Ethereum account:\n{}\n\n{} is asking \
         you sign in.\n\nURI: https://auth.dimo.zone\nVersion: 1\nChain ID: 1\nNonce: {nonce}\n\
         Issued At: {}",
        checksummed(address.trim_start_matches("0x")),
        account.license.redirect_uri,
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
    );
    lock(&account.challenges).insert(state_id.clone(), challenge.clone());
    Json(json!({"state": state_id, "challenge": challenge})).into_response()
}

fn is_address(text: &str) -> bool {
    text.strip_prefix("0x")
        .is_some_and(|digits| digits.len() == 40 && digits.chars().all(|c| c.is_ascii_hexdigit()))
}

async fn submit_challenge(State(state): Shared, body: Bytes) -> Response {
    let fields = form_and_query(&HashMap::new(), &body);
    let account = &state.dimo;
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "authorization_code"
        || !field("client_id").eq_ignore_ascii_case(&account.license.client_id)
        || field("domain") != account.license.redirect_uri
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "Invalid client or redirect URI."})),
        )
            .into_response();
    }
    let Some(challenge) = lock(&account.challenges).remove(field("state")) else {
        return auth_error("Requested resource does not exist.");
    };
    // The license contract approves signatures of its enabled signer (ERC-1271).
    let signer = recover_personal_signer(challenge.as_bytes(), field("signature"));
    if signer.as_deref() != Some(account.signer_address()) {
        return auth_error("Could not verify signature.");
    }
    account.developer_tokens.fetch_add(1, Ordering::SeqCst);
    let issued = now();
    let token = account.issue(json!({
        "iss": "https://auth.dimo.zone",
        "aud": [account.license.client_id],
        "ethereum_address": account.license.client_id,
        "kind": "developer",
        "iat": issued,
        "exp": issued + DEVELOPER_TOKEN_SECONDS,
    }));
    (
        [("cache-control", "no-store"), ("pragma", "no-cache")],
        Json(json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": DEVELOPER_TOKEN_SECONDS - 1,
            "id_token": token,
        })),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Token exchange (token-exchange-api.dimo.zone)

pub fn token_exchange_router() -> Router<Arc<SimState>> {
    Router::new().route("/v1/tokens/exchange", post(exchange))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExchangeRequest {
    nft_contract_address: String,
    privileges: Vec<u32>,
    token_id: u32,
}

async fn exchange(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let claims = match fiber_claims(&state, &headers) {
        Ok(claims) => claims,
        Err(refusal) => return refusal.into_response(),
    };
    let account = &state.dimo;
    if claims["kind"] != "developer" {
        return coded(
            StatusCode::FORBIDDEN,
            &format!(
                "not a dev license: {}",
                claims["ethereum_address"].as_str().unwrap_or_default()
            ),
        );
    }
    let Ok(request) = serde_json::from_slice::<ExchangeRequest>(&body) else {
        return coded(StatusCode::BAD_REQUEST, "Couldn't parse request body.");
    };
    if !request
        .nft_contract_address
        .eq_ignore_ascii_case(&account.vehicle_contract)
    {
        return coded(
            StatusCode::BAD_REQUEST,
            &format!(
                "Invalid NFT contract address \"{}\".",
                request.nft_contract_address
            ),
        );
    }
    if request.privileges.is_empty() {
        return coded(
            StatusCode::BAD_REQUEST,
            "Please provide at least one privilege or cloudevent",
        );
    }
    let unknown: Vec<u32> = request
        .privileges
        .iter()
        .copied()
        .filter(|privilege| !(1..=8).contains(privilege))
        .collect();
    if !unknown.is_empty() {
        return coded(
            StatusCode::BAD_REQUEST,
            &format!("unknown privileges {}", go_list(&unknown)),
        );
    }
    let granted = account
        .vehicle(request.token_id)
        .map(|vehicle| account.granted(&vehicle))
        .unwrap_or_default();
    let missing: Vec<u32> = request
        .privileges
        .iter()
        .copied()
        .filter(|privilege| !granted.contains(privilege))
        .collect();
    if !missing.is_empty() {
        return coded(
            StatusCode::FORBIDDEN,
            &format!(
                "Address {} lacks permissions {} for asset {}.",
                account.license.client_id,
                go_list(&missing),
                account.asset_did(request.token_id)
            ),
        );
    }
    account.exchanges.fetch_add(1, Ordering::SeqCst);
    let issued = now();
    let token = account.issue(json!({
        "iss": "https://auth-roles-rights.dimo.zone",
        "sub": account.license.client_id,
        "aud": ["dimo.zone"],
        "kind": "vehicle",
        "iat": issued,
        "exp": issued + VEHICLE_TOKEN_SECONDS,
        "asset": account.asset_did(request.token_id),
        "permissions": request.privileges.iter().map(|privilege| format!("privilege:{}", PRIVILEGE_NAMES[*privilege as usize - 1])).collect::<Vec<_>>(),
        "contract_address": account.vehicle_contract,
        "token_id": request.token_id.to_string(),
        "privilege_ids": request.privileges,
    }));
    Json(json!({"token": token})).into_response()
}

fn go_list(numbers: &[u32]) -> String {
    let items: Vec<String> = numbers.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(" "))
}

/// The vehicle token's claims as telemetry and attestation read them.
struct VehicleGrant {
    token_id: u32,
    permissions: Vec<String>,
}

impl VehicleGrant {
    fn from_claims(account: &Account, claims: &Value) -> Option<VehicleGrant> {
        let asset = claims["asset"].as_str()?;
        let prefix = format!("did:erc721:{POLYGON}:{}:", account.vehicle_contract);
        let token_id = asset.strip_prefix(&prefix)?.parse().ok()?;
        let permissions = claims["permissions"]
            .as_array()?
            .iter()
            .filter_map(|permission| permission.as_str().map(str::to_string))
            .collect();
        Some(VehicleGrant {
            token_id,
            permissions,
        })
    }

    fn has(&self, privilege: u32) -> bool {
        let wanted = format!("privilege:{}", PRIVILEGE_NAMES[privilege as usize - 1]);
        self.permissions.contains(&wanted)
    }
}

// ---------------------------------------------------------------------------------------------
// Devices API commands (devices-api.dimo.zone)

pub fn devices_router() -> Router<Arc<SimState>> {
    Router::new().route(
        "/v1/vehicle/{token_id}/commands/{group}/{action}",
        post(command),
    )
}

async fn command(
    State(state): Shared,
    headers: HeaderMap,
    Path((token_id, group, action)): Path<(String, String, String)>,
) -> Response {
    let claims = match fiber_claims(&state, &headers) {
        Ok(claims) => claims,
        Err(refusal) => return refusal.into_response(),
    };
    let account = &state.dimo;
    if claims["token_id"].as_str() != Some(token_id.as_str()) {
        return coded(
            StatusCode::UNAUTHORIZED,
            "Unauthorized! Wrong device token provided",
        );
    }
    if !claims["contract_address"]
        .as_str()
        .is_some_and(|contract| contract.eq_ignore_ascii_case(&account.vehicle_contract))
    {
        return coded(
            StatusCode::UNAUTHORIZED,
            &format!(
                "Provided token is for the wrong contract: {}",
                claims["contract_address"]
            ),
        );
    }
    let may_command = claims["privilege_ids"]
        .as_array()
        .is_some_and(|privileges| privileges.contains(&json!(2)));
    if !may_command {
        return coded(
            StatusCode::UNAUTHORIZED,
            "Unauthorized! Token does not contain required privileges",
        );
    }
    let signal = match (group.as_str(), action.as_str()) {
        ("doors", "lock") => ("bodyLockIsLocked", 1.0),
        ("doors", "unlock") => ("bodyLockIsLocked", 0.0),
        ("trunk", "open") => ("bodyTrunkRearIsOpen", 1.0),
        ("frunk", "open") => ("bodyTrunkFrontIsOpen", 1.0),
        ("charge", "start") => ("powertrainTractionBatteryChargingIsCharging", 1.0),
        ("charge", "stop") => ("powertrainTractionBatteryChargingIsCharging", 0.0),
        _ => return coded(StatusCode::NOT_FOUND, "Cannot POST"),
    };
    let Ok(token_number) = token_id.parse::<u32>() else {
        return coded(StatusCode::NOT_FOUND, "Vehicle NFT not found.");
    };
    let mut vehicles = account.vehicles();
    let Some(vehicle) = vehicles
        .iter_mut()
        .find(|vehicle| vehicle.token_id == token_number)
    else {
        return coded(StatusCode::NOT_FOUND, "Vehicle NFT not found.");
    };
    if !vehicle.commands {
        return coded(
            StatusCode::NOT_FOUND,
            "No command-capable integrations found for this vehicle.",
        );
    }
    vehicle.signals.insert(signal.0.to_string(), signal.1);
    drop(vehicles);
    let path = format!("{group}/{action}");
    let mut commands = lock(&account.commands);
    commands.push((token_number, path));
    let request_id = format!("2{:026}", commands.len());
    Json(json!({"requestId": request_id})).into_response()
}

// ---------------------------------------------------------------------------------------------
// Attestation API (attestation-api.dimo.zone)

pub fn attestation_router() -> Router<Arc<SimState>> {
    Router::new().route("/v2/attestation/{kind}/{token_id}", post(attest))
}

fn attestation_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "code": status.as_u16()})),
    )
        .into_response()
}

async fn attest(
    State(state): Shared,
    headers: HeaderMap,
    Path((kind, token_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let claims = match fiber_claims(&state, &headers) {
        Ok(claims) => claims,
        Err(refusal) => return refusal.into_response(),
    };
    let account = &state.dimo;
    let Ok(token_number) = token_id.parse::<u32>() else {
        return attestation_error(StatusCode::BAD_REQUEST, "invalid token_id format");
    };
    let Some(grant) = VehicleGrant::from_claims(account, &claims) else {
        return attestation_error(StatusCode::UNAUTHORIZED, "Unauthorized! invalid asset");
    };
    if grant.token_id != token_number {
        return attestation_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized! mismatch token Id provided",
        );
    }
    let (needed, fields): (&[u32], &[&str]) = match kind.as_str() {
        "vin" => (&[5], &[]),
        "odometer-statement" => (&[1], &[]),
        "vehicle-health" => (&[1, 4], &["startTime", "endTime"]),
        "vehicle-position" => (&[4], &["timestamp"]),
        _ => return attestation_error(StatusCode::NOT_FOUND, "Cannot POST"),
    };
    if !needed.iter().all(|privilege| grant.has(*privilege)) {
        return attestation_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized! Token does not contain required privileges",
        );
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut times = Vec::new();
    for field in fields {
        let parsed = request[field]
            .as_str()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok());
        match parsed {
            Some(time) => times.push(time),
            None => return attestation_error(StatusCode::BAD_REQUEST, "invalid request body"),
        }
    }
    if let [start, end] = times[..] {
        if start >= end {
            return attestation_error(StatusCode::BAD_REQUEST, "startTime must be before endTime");
        }
        if end - start > chrono::Duration::days(30) {
            return attestation_error(StatusCode::BAD_REQUEST, "time range cannot exceed 30 days");
        }
    }
    if kind == "vin" {
        return Json(json!({
            "vcUrl": "https://telemetry-api.dimo.zone/query",
            "vcQuery": format!("query {{vinVCLatest(tokenId: {token_number}) {{rawVC}}}}"),
            "message": "VC generated successfully. Retrieve using the provided GQL URL and query parameter.",
        }))
        .into_response();
    }
    Json(
        json!({"message": "VC generated successfully, retrieve using the provided telemetry-api."}),
    )
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Device definitions (device-definitions-api.dimo.zone)

pub fn device_definitions_router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/device-definitions/decode-vin", post(decode_vin))
        .route("/device-definitions/search", get(search_definitions))
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        Json(json!({
            "type": "about:blank",
            "title": "An error occurred while processing your request.",
            "status": status.as_u16(),
            "detail": detail,
        })),
    )
        .into_response()
}

/// The model year a VIN's tenth character stands for (the 30-year cycle from 2001).
fn model_year(code: char) -> Option<i32> {
    const CODES: &str = "123456789ABCDEFGHJKLMNPRSTVWXY";
    CODES.find(code).map(|position| 2001 + position as i32)
}

async fn decode_vin(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = fiber_claims(&state, &headers) {
        return refusal.into_response();
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(_) => return problem(StatusCode::BAD_REQUEST, "Couldn't parse request body."),
    };
    let vin = request["vin"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let country = request["countryCode"].as_str().unwrap_or_default();
    if vin.len() != 17 || country.len() != 3 {
        return problem(StatusCode::BAD_REQUEST, "Couldn't parse request body.");
    }
    let year = vin.chars().nth(9).and_then(model_year);
    let found = state.dimo.definitions.iter().find(|definition| {
        vin.starts_with(&definition.wmi)
            && year.is_some_and(|year| {
                // The cycle repeats every 30 years: 'A' is 2010 or 1980.
                definition.year == year || definition.year == year - 30
            })
    });
    match found {
        Some(definition) => {
            Json(json!({"deviceDefinitionId": definition.id, "newTransactionHash": ""}))
                .into_response()
        }
        None => problem(StatusCode::INTERNAL_SERVER_ERROR, "Couldn't decode VIN."),
    }
}

async fn search_definitions(
    State(state): Shared,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| query.get(name).map(|value| value.to_ascii_lowercase());
    let text = field("query").unwrap_or_default();
    let slug = |value: &str| value.to_ascii_lowercase().replace(' ', "-");
    let matching: Vec<&DeviceDefinition> = state
        .dimo
        .definitions
        .iter()
        .filter(|definition| {
            text.is_empty() || definition.name.to_ascii_lowercase().contains(&text)
        })
        .filter(|definition| field("makeSlug").is_none_or(|make| slug(&definition.make) == make))
        .filter(|definition| {
            field("modelSlug").is_none_or(|model| slug(&definition.model) == model)
        })
        .filter(|definition| field("year").is_none_or(|year| year == definition.year.to_string()))
        .collect();
    let page: usize = field("page")
        .and_then(|page| page.parse().ok())
        .unwrap_or(1)
        .max(1);
    let page_size: usize = field("pageSize")
        .and_then(|size| size.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let facet = |key: fn(&DeviceDefinition) -> String| {
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for definition in &matching {
            *counts.entry(key(definition)).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(name, count)| json!({"name": name, "count": count}))
            .collect::<Vec<_>>()
    };
    let items: Vec<Value> = matching
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(|definition| {
            json!({
                "id": definition.id, "legacy_ksuid": format!("2Rb{:0>24}", definition.id.len()),
                "name": definition.name, "make": definition.make, "model": definition.model,
                "year": definition.year,
                "imageUrl": format!("https://images.dimo.zone/{}.png", definition.id),
            })
        })
        .collect();
    Json(json!({
        "deviceDefinitions": items,
        "facets": {
            "makes": facet(|definition| definition.make.clone()),
            "models": facet(|definition| definition.model.clone()),
            "years": facet(|definition| definition.year.to_string()),
        },
        "pagination": {
            "page": page, "pageSize": page_size, "totalItems": matching.len(),
            "totalPages": matching.len().div_ceil(page_size),
        },
    }))
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// GraphQL: Identity and Telemetry

#[derive(Deserialize)]
struct GraphQlBody {
    query: String,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<String>,
}

/// Runs a GraphQL request as gqlgen does: 400 for a body that is not JSON, 422 when the
/// document does not parse or validate, 200 with `errors` for resolver failures.
async fn run_graphql<Q, D>(
    schema: &Schema<Q, EmptyMutation, EmptySubscription>,
    body: &[u8],
    data: D,
) -> Response
where
    Q: async_graphql::ObjectType + 'static,
    D: std::any::Any + Send + Sync,
{
    let parsed: GraphQlBody = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"errors": [{"message": format!("json body could not be decoded: {error}")}], "data": null})),
            )
                .into_response();
        }
    };
    let mut request = async_graphql::Request::new(parsed.query);
    if let Some(variables) = parsed.variables {
        request = request.variables(async_graphql::Variables::from_json(variables));
    }
    if let Some(name) = parsed.operation_name {
        request = request.operation_name(name);
    }
    request = request.data(data);
    let response = schema.execute(request).await;
    let invalid = response.data == async_graphql::Value::Null && !response.errors.is_empty();
    let mut body = serde_json::to_value(&response).unwrap_or(Value::Null);
    if invalid {
        let code =
            if body.to_string().contains("Unexpected") || body.to_string().contains("expected") {
                "GRAPHQL_PARSE_FAILED"
            } else {
                "GRAPHQL_VALIDATION_FAILED"
            };
        if let Some(errors) = body["errors"].as_array_mut() {
            for error in errors {
                error["extensions"]["code"] = json!(code);
            }
        }
        body["data"] = Value::Null;
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
    }
    Json(body).into_response()
}

async_graphql::scalar!(
    Address,
    "Address",
    "A 0x-prefixed, hex-encoded Ethereum address."
);
async_graphql::scalar!(Time, "Time", "A point in time, RFC 3339 in UTC.");

#[derive(Clone, Serialize, Deserialize)]
pub struct Address(String);
#[derive(Clone, Serialize, Deserialize)]
pub struct Time(String);

fn graphql_error(message: impl Into<String>, code: &str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, extensions| extensions.set("code", code))
}

/// Identity's view of the account for one request.
struct IdentityView {
    vehicles: Vec<DimoVehicle>,
    granted: HashMap<u32, Vec<u32>>,
    license: String,
    contract: String,
}

pub fn identity_router() -> Router<Arc<SimState>> {
    let schema = Schema::new(IdentityQuery, EmptyMutation, EmptySubscription);
    Router::new().route(
        "/query",
        post(move |State(state): Shared, body: Bytes| async move {
            let account = &state.dimo;
            let vehicles = account.vehicles().clone();
            let view = IdentityView {
                granted: vehicles
                    .iter()
                    .map(|vehicle| (vehicle.token_id, account.granted(vehicle)))
                    .collect(),
                vehicles,
                license: account.license.client_id.clone(),
                contract: account.vehicle_contract.clone(),
            };
            run_graphql(&schema, &body, view).await
        }),
    )
}

/// Cursor pagination as DIMO's GraphQL APIs do it: `first` or `last`, at most 100.
fn page_bounds(first: Option<i32>, last: Option<i32>) -> async_graphql::Result<(bool, usize)> {
    match (first, last) {
        (Some(_), Some(_)) | (None, None) => Err(graphql_error(
            "Pass `first` or `last`, but not both.",
            "BAD_USER_INPUT",
        )),
        (Some(count), None) | (None, Some(count)) if !(0..=100).contains(&count) => {
            Err(graphql_error(
                format!("the value {count} for `first` or `last` exceeds the limit 100"),
                "BAD_USER_INPUT",
            ))
        }
        (Some(count), None) => Ok((true, count as usize)),
        (None, Some(count)) => Ok((false, count as usize)),
    }
}

fn cursor(token_id: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(token_id.to_string())
}

fn from_cursor(text: &str) -> Option<u32> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok()?.parse().ok()
}

#[derive(SimpleObject)]
#[graphql(name = "PageInfo")]
struct PageInfo {
    start_cursor: Option<String>,
    end_cursor: Option<String>,
    has_previous_page: bool,
    has_next_page: bool,
}

#[derive(InputObject)]
struct VehiclesFilter {
    privileged: Option<Address>,
    owner: Option<Address>,
    make: Option<String>,
    model: Option<String>,
    year: Option<i32>,
    manufacturer_token_id: Option<i32>,
    device_definition_id: Option<String>,
}

struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// A vehicle by its token id or its DID; exactly one of them.
    async fn vehicle(
        &self,
        context: &Context<'_>,
        token_id: Option<i32>,
        #[graphql(name = "tokenDID")] token_did: Option<String>,
    ) -> async_graphql::Result<Option<VehicleNode>> {
        let view = context.data::<IdentityView>()?;
        let token_id = match (token_id, token_did) {
            (Some(id), None) => id,
            (None, Some(did)) => did
                .rsplit(':')
                .next()
                .and_then(|id| id.parse().ok())
                .unwrap_or(-1),
            _ => {
                return Err(graphql_error(
                    "Provide exactly one of `tokenId` or `tokenDID`.",
                    "BAD_USER_INPUT",
                ));
            }
        };
        let found = view
            .vehicles
            .iter()
            .find(|vehicle| vehicle.token_id as i64 == token_id as i64);
        match found {
            Some(vehicle) => Ok(Some(VehicleNode::new(view, vehicle))),
            None => Err(graphql_error(
                format!("No vehicle with token id {token_id}."),
                "NOT_FOUND",
            )),
        }
    }

    /// Vehicles, newest token first.
    async fn vehicles(
        &self,
        context: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter_by: Option<VehiclesFilter>,
    ) -> async_graphql::Result<VehicleConnection> {
        let view = context.data::<IdentityView>()?;
        let (forward, count) = page_bounds(first, last)?;
        let same = |a: &str, b: &Address| a.eq_ignore_ascii_case(&b.0);
        let mut matching: Vec<&DimoVehicle> = view
            .vehicles
            .iter()
            .filter(|vehicle| {
                let Some(filter) = &filter_by else {
                    return true;
                };
                let privileged = filter.privileged.as_ref().is_none_or(|grantee| {
                    same(&vehicle.owner, grantee)
                        || (same(&view.license, grantee)
                            && !view.granted[&vehicle.token_id].is_empty())
                });
                privileged
                    && filter
                        .owner
                        .as_ref()
                        .is_none_or(|owner| same(&vehicle.owner, owner))
                    && filter
                        .make
                        .as_ref()
                        .is_none_or(|make| vehicle.definition.make.as_ref() == Some(make))
                    && filter
                        .model
                        .as_ref()
                        .is_none_or(|model| vehicle.definition.model.as_ref() == Some(model))
                    && filter
                        .year
                        .is_none_or(|year| vehicle.definition.year == Some(year))
                    && filter
                        .manufacturer_token_id
                        .is_none_or(|id| vehicle.manufacturer.token_id as i32 == id)
                    && filter
                        .device_definition_id
                        .as_ref()
                        .is_none_or(|id| vehicle.definition.id.as_ref() == Some(id))
            })
            .collect();
        matching.sort_by_key(|vehicle| std::cmp::Reverse(vehicle.token_id));
        let total_count = matching.len() as i32;
        let after = after.as_deref().and_then(from_cursor);
        let before = before.as_deref().and_then(from_cursor);
        matching.retain(|vehicle| {
            after.is_none_or(|after| vehicle.token_id < after)
                && before.is_none_or(|before| vehicle.token_id > before)
        });
        let available = matching.len();
        let page: Vec<&DimoVehicle> = if forward {
            matching.into_iter().take(count).collect()
        } else {
            let skip = available.saturating_sub(count);
            matching.into_iter().skip(skip).collect()
        };
        let more = available > page.len();
        let nodes: Vec<VehicleNode> = page
            .iter()
            .map(|vehicle| VehicleNode::new(view, vehicle))
            .collect();
        Ok(VehicleConnection {
            total_count,
            page_info: PageInfo {
                start_cursor: page.first().map(|vehicle| cursor(vehicle.token_id)),
                end_cursor: page.last().map(|vehicle| cursor(vehicle.token_id)),
                has_next_page: forward && more,
                has_previous_page: !forward && more,
            },
            edges: nodes
                .iter()
                .map(|node| VehicleEdge {
                    cursor: cursor(node.vehicle.token_id),
                    node: node.clone(),
                })
                .collect(),
            nodes,
        })
    }
}

#[derive(SimpleObject)]
struct VehicleConnection {
    total_count: i32,
    edges: Vec<VehicleEdge>,
    nodes: Vec<VehicleNode>,
    page_info: PageInfo,
}

#[derive(SimpleObject)]
struct VehicleEdge {
    node: VehicleNode,
    cursor: String,
}

#[derive(Clone)]
struct VehicleNode {
    vehicle: DimoVehicle,
    grants: Vec<(Grant, Vec<u32>)>,
    license: String,
    contract: String,
}

impl VehicleNode {
    fn new(view: &IdentityView, vehicle: &DimoVehicle) -> VehicleNode {
        let today = chrono::Utc::now().to_rfc3339();
        VehicleNode {
            grants: vehicle
                .sacds
                .iter()
                .filter(|grant| grant.expires_at.as_str() > today.as_str())
                .map(|grant| (grant.clone(), grant.privileges.clone()))
                .collect(),
            vehicle: vehicle.clone(),
            license: view.license.clone(),
            contract: view.contract.clone(),
        }
    }
}

#[derive(SimpleObject)]
struct AftermarketDevice {
    token_id: i32,
    serial: Option<String>,
    manufacturer: Manufacturer,
}

#[derive(SimpleObject)]
struct SyntheticDevice {
    token_id: i32,
    name: String,
    connection: Connection,
}

#[derive(SimpleObject)]
struct Connection {
    name: String,
}

#[derive(SimpleObject)]
struct Sacd {
    grantee: Address,
    permissions: String,
    source: String,
    created_at: Time,
    expires_at: Time,
}

#[derive(SimpleObject)]
struct SacdConnection {
    total_count: i32,
    nodes: Vec<Sacd>,
    page_info: PageInfo,
}

#[Object]
impl VehicleNode {
    async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(format!("V_{}", cursor(self.vehicle.token_id)))
    }
    async fn token_id(&self) -> i32 {
        self.vehicle.token_id as i32
    }
    #[graphql(name = "tokenDID")]
    async fn token_did(&self) -> String {
        format!(
            "did:erc721:{POLYGON}:{}:{}",
            self.contract, self.vehicle.token_id
        )
    }
    async fn owner(&self) -> Address {
        Address(self.vehicle.owner.clone())
    }
    async fn minted_at(&self) -> Time {
        Time(self.vehicle.minted_at.clone())
    }
    async fn name(&self) -> &str {
        &self.vehicle.name
    }
    #[graphql(name = "imageURI")]
    async fn image_uri(&self) -> String {
        format!(
            "https://identity-api.dimo.zone/vehicle/{}/image",
            self.vehicle.token_id
        )
    }
    async fn manufacturer(&self) -> &Manufacturer {
        &self.vehicle.manufacturer
    }
    async fn definition(&self) -> &Definition {
        &self.vehicle.definition
    }
    async fn aftermarket_device(&self) -> Option<AftermarketDevice> {
        None
    }
    async fn synthetic_device(&self) -> Option<SyntheticDevice> {
        self.vehicle
            .synthetic_device
            .as_ref()
            .map(|device| SyntheticDevice {
                token_id: device.token_id as i32,
                name: device.name.clone(),
                connection: Connection {
                    name: self.vehicle.connection.clone(),
                },
            })
    }
    /// Unexpired permission grants, newest first.
    async fn sacds(
        &self,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<SacdConnection> {
        let (_, count) = page_bounds(first, last)?;
        let _ = (after, before);
        let nodes: Vec<Sacd> = self
            .grants
            .iter()
            .take(count)
            .map(|(grant, privileges)| Sacd {
                grantee: Address(self.license.clone()),
                permissions: permissions_hex(privileges),
                source: format!("ipfs://QmSim{}", self.vehicle.token_id),
                created_at: Time(grant.created_at.clone()),
                expires_at: Time(grant.expires_at.clone()),
            })
            .collect();
        Ok(SacdConnection {
            total_count: self.grants.len() as i32,
            page_info: PageInfo {
                start_cursor: None,
                end_cursor: None,
                has_previous_page: false,
                has_next_page: nodes.len() < self.grants.len(),
            },
            nodes,
        })
    }
}

// Telemetry -----------------------------------------------------------------------------------

/// Who is asking telemetry: the vehicle token's grant, if any, and the vehicles at that moment.
struct TelemetryView {
    grant: Option<VehicleGrant>,
    vehicles: Vec<DimoVehicle>,
    timestamp: String,
    contract: String,
}

impl TelemetryView {
    fn vehicle(&self, token_id: i32) -> async_graphql::Result<DimoVehicle> {
        if token_id <= 0 {
            return Err(graphql_error(
                "invalid argument: tokenID is not a positive integer",
                "BAD_REQUEST",
            ));
        }
        let Some(grant) = &self.grant else {
            return Err(graphql_error("unauthorized: jwt missing", "UNAUTHORIZED"));
        };
        if grant.token_id as i32 != token_id {
            return Err(graphql_error(
                "unauthorized: token id does not match",
                "UNAUTHORIZED",
            ));
        }
        self.vehicles
            .iter()
            .find(|vehicle| vehicle.token_id as i32 == token_id)
            .cloned()
            .ok_or_else(|| graphql_error("vehicle not found", "NOT_FOUND"))
    }

    fn require(&self, privilege: u32) -> async_graphql::Result<()> {
        match &self.grant {
            Some(grant) if grant.has(privilege) => Ok(()),
            _ => Err(graphql_error(
                format!(
                    "unauthorized: missing required privilege(s) privilege:{}",
                    PRIVILEGE_NAMES[privilege as usize - 1]
                ),
                "UNAUTHORIZED",
            )),
        }
    }
}

pub fn telemetry_router() -> Router<Arc<SimState>> {
    let schema = Schema::new(TelemetryQuery, EmptyMutation, EmptySubscription);
    Router::new().route(
        "/query",
        post(
            move |State(state): Shared, headers: HeaderMap, body: Bytes| async move {
                let account = &state.dimo;
                let grant = match bearer(&headers) {
                    None => None,
                    Some(token) => match account.verify(token) {
                        Some(claims) => VehicleGrant::from_claims(account, &claims),
                        None => {
                            return (
                                StatusCode::UNAUTHORIZED,
                                Json(json!({"message": "JWT is invalid."})),
                            )
                                .into_response();
                        }
                    },
                };
                let view = TelemetryView {
                    grant,
                    vehicles: account.vehicles().clone(),
                    timestamp: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    contract: account.vehicle_contract.clone(),
                };
                run_graphql(&schema, &body, view).await
            },
        ),
    )
}

#[derive(InputObject)]
struct SignalFilter {
    source: Option<String>,
}

#[derive(SimpleObject)]
struct SignalFloat {
    timestamp: Time,
    value: f64,
}

#[derive(SimpleObject)]
struct SignalString {
    timestamp: Time,
    value: String,
}

#[derive(SimpleObject)]
struct SignalLocation {
    timestamp: Time,
    value: Location,
}

#[derive(SimpleObject)]
struct SignalDataSummary {
    name: String,
    number_of_signals: u64,
    first_seen: Time,
    last_seen: Time,
}

#[derive(SimpleObject)]
struct EventDataSummary {
    name: String,
    number_of_events: u64,
    first_seen: Time,
    last_seen: Time,
}

#[derive(SimpleObject)]
struct DataSummary {
    number_of_signals: u64,
    available_signals: Vec<String>,
    first_seen: Time,
    last_seen: Time,
    signal_data_summary: Vec<SignalDataSummary>,
    event_data_summary: Vec<EventDataSummary>,
}

#[derive(SimpleObject)]
#[graphql(name = "VINVC")]
struct VinCredential {
    vehicle_token_id: Option<i32>,
    vin: Option<String>,
    recorded_by: Option<String>,
    recorded_at: Option<Time>,
    country_code: Option<String>,
    vehicle_contract_address: Option<String>,
    valid_from: Option<Time>,
    valid_to: Option<Time>,
    #[graphql(name = "rawVC")]
    raw_vc: String,
}

fn signal_names(vehicle: &DimoVehicle) -> Vec<String> {
    let mut names: Vec<String> = vehicle.signals.keys().cloned().collect();
    names.push("currentLocationCoordinates".to_string());
    names.push("powertrainType".to_string());
    if !vehicle.dtc.is_empty() {
        names.push("obdDTCList".to_string());
    }
    names.sort();
    names
}

struct TelemetryQuery;

#[Object]
impl TelemetryQuery {
    /// The latest value of each signal.
    async fn signals_latest(
        &self,
        context: &Context<'_>,
        token_id: i32,
        filter: Option<SignalFilter>,
    ) -> async_graphql::Result<Option<SignalCollection>> {
        let view = context.data::<TelemetryView>()?;
        let _ = filter.and_then(|filter| filter.source);
        let vehicle = view.vehicle(token_id)?;
        Ok(Some(SignalCollection {
            vehicle,
            timestamp: view.timestamp.clone(),
        }))
    }

    async fn available_signals(
        &self,
        context: &Context<'_>,
        token_id: i32,
        filter: Option<SignalFilter>,
    ) -> async_graphql::Result<Option<Vec<String>>> {
        let view = context.data::<TelemetryView>()?;
        let _ = filter;
        Ok(Some(signal_names(&view.vehicle(token_id)?)))
    }

    async fn data_summary(
        &self,
        context: &Context<'_>,
        token_id: i32,
        filter: Option<SignalFilter>,
    ) -> async_graphql::Result<Option<DataSummary>> {
        let view = context.data::<TelemetryView>()?;
        let _ = filter;
        let vehicle = view.vehicle(token_id)?;
        let names = signal_names(&vehicle);
        let each = vehicle.signals_recorded / names.len().max(1) as u64;
        Ok(Some(DataSummary {
            number_of_signals: vehicle.signals_recorded,
            first_seen: Time(vehicle.first_seen.clone()),
            last_seen: Time(view.timestamp.clone()),
            signal_data_summary: names
                .iter()
                .map(|name| SignalDataSummary {
                    name: name.clone(),
                    number_of_signals: each,
                    first_seen: Time(vehicle.first_seen.clone()),
                    last_seen: Time(view.timestamp.clone()),
                })
                .collect(),
            available_signals: names,
            event_data_summary: Vec::new(),
        }))
    }

    /// The latest VIN credential (needs privilege 5, VIN credential).
    #[graphql(name = "vinVCLatest")]
    async fn vin_vc_latest(
        &self,
        context: &Context<'_>,
        token_id: i32,
    ) -> async_graphql::Result<Option<VinCredential>> {
        let view = context.data::<TelemetryView>()?;
        let vehicle = view.vehicle(token_id)?;
        view.require(5)?;
        let credential = json!({
            "type": ["VerifiableCredential"],
            "credentialSubject": {"vehicleTokenId": vehicle.token_id, "vehicleIdentificationNumber": vehicle.vin},
        });
        Ok(Some(VinCredential {
            vehicle_token_id: Some(vehicle.token_id as i32),
            vin: Some(vehicle.vin.clone()),
            recorded_by: Some(format!("did:ethr:{POLYGON}:{}", view.contract)),
            recorded_at: Some(Time(view.timestamp.clone())),
            country_code: Some("USA".to_string()),
            vehicle_contract_address: Some(view.contract.clone()),
            valid_from: Some(Time(view.timestamp.clone())),
            valid_to: None,
            raw_vc: credential.to_string(),
        }))
    }
}

struct SignalCollection {
    vehicle: DimoVehicle,
    timestamp: String,
}

impl SignalCollection {
    fn float(
        &self,
        context: &Context<'_>,
        name: &str,
        privilege: u32,
    ) -> async_graphql::Result<Option<SignalFloat>> {
        context.data::<TelemetryView>()?.require(privilege)?;
        Ok(self.vehicle.signals.get(name).map(|value| SignalFloat {
            timestamp: Time(self.timestamp.clone()),
            value: *value,
        }))
    }
}

/// Each float signal with the privilege it needs: 1 (non-location data) or 4 (location).
macro_rules! signal_collection {
    ($($signal:ident => $privilege:literal),* $(,)?) => {
        #[Object]
        #[allow(non_snake_case)]
        impl SignalCollection {
            async fn last_seen(&self) -> Option<Time> {
                Some(Time(self.timestamp.clone()))
            }
            $(
                async fn $signal(
                    &self,
                    context: &Context<'_>,
                ) -> async_graphql::Result<Option<SignalFloat>> {
                    self.float(context, stringify!($signal), $privilege)
                }
            )*
            async fn current_location_coordinates(
                &self,
                context: &Context<'_>,
            ) -> async_graphql::Result<Option<SignalLocation>> {
                context.data::<TelemetryView>()?.require(4)?;
                Ok(Some(SignalLocation {
                    timestamp: Time(self.timestamp.clone()),
                    value: self.vehicle.location,
                }))
            }
            /// The centre of the H3 cell (resolution 6) around the car: about 3 km across.
            async fn current_location_approximate_coordinates(
                &self,
                context: &Context<'_>,
            ) -> async_graphql::Result<Option<SignalLocation>> {
                let view = context.data::<TelemetryView>()?;
                if view.require(8).is_err() {
                    view.require(4)?;
                }
                let round = |degrees: f64| (degrees * 50.0).round() / 50.0;
                Ok(Some(SignalLocation {
                    timestamp: Time(self.timestamp.clone()),
                    value: Location {
                        latitude: round(self.vehicle.location.latitude),
                        longitude: round(self.vehicle.location.longitude),
                        hdop: 0.0,
                    },
                }))
            }
            #[graphql(name = "obdDTCList")]
            async fn obd_dtc_list(
                &self,
                context: &Context<'_>,
            ) -> async_graphql::Result<Option<SignalString>> {
                context.data::<TelemetryView>()?.require(1)?;
                Ok((!self.vehicle.dtc.is_empty()).then(|| SignalString {
                    timestamp: Time(self.timestamp.clone()),
                    value: self.vehicle.dtc.clone(),
                }))
            }
            async fn powertrain_type(
                &self,
                context: &Context<'_>,
            ) -> async_graphql::Result<Option<SignalString>> {
                context.data::<TelemetryView>()?.require(1)?;
                Ok(Some(SignalString {
                    timestamp: Time(self.timestamp.clone()),
                    value: self.vehicle.powertrain_type.clone(),
                }))
            }
        }
    };
}

signal_collection! {
    speed => 1,
    powertrainTractionBatteryStateOfChargeCurrent => 1,
    powertrainRange => 1,
    powertrainTractionBatteryRange => 1,
    powertrainFuelSystemRelativeLevel => 1,
    powertrainTransmissionTravelledDistance => 1,
    isIgnitionOn => 1,
    powertrainTractionBatteryChargingIsCharging => 1,
    powertrainTractionBatteryChargingChargeLimit => 1,
    powertrainTractionBatteryCurrentPower => 1,
    exteriorAirTemperature => 1,
    chassisAxleRow1WheelLeftTirePressure => 1,
    chassisAxleRow1WheelRightTirePressure => 1,
    chassisAxleRow2WheelLeftTirePressure => 1,
    chassisAxleRow2WheelRightTirePressure => 1,
    lowVoltageBatteryCurrentVoltage => 1,
    bodyLockIsLocked => 1,
    cabinDoorRow1DriverSideIsOpen => 1,
    bodyTrunkRearIsOpen => 1,
    bodyTrunkFrontIsOpen => 1,
    currentLocationHeading => 4,
    currentLocationAltitude => 4,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_use_dimo_names() {
        let telemetry = Schema::new(TelemetryQuery, EmptyMutation, EmptySubscription).sdl();
        for field in [
            "signalsLatest(tokenId: Int!, filter: SignalFilter): SignalCollection",
            "chassisAxleRow1WheelLeftTirePressure: SignalFloat",
            "powertrainTractionBatteryStateOfChargeCurrent: SignalFloat",
            "obdDTCList: SignalString",
            "vinVCLatest(tokenId: Int!): VINVC",
            "currentLocationCoordinates: SignalLocation",
        ] {
            assert!(
                telemetry.contains(field),
                "{field} missing from\n{telemetry}"
            );
        }
        let identity = Schema::new(IdentityQuery, EmptyMutation, EmptySubscription).sdl();
        for field in [
            "tokenDID: String!",
            "imageURI: String!",
            "owner: Address!",
            "privileged: Address",
        ] {
            assert!(identity.contains(field), "{field} missing from\n{identity}");
        }
    }

    /// The login page and the APIs serve the same license and user.
    #[test]
    fn the_login_page_and_the_apis_agree() {
        let account = Account::new();
        assert_eq!(account.license.client_id, crate::sign_in::DIMO_CLIENT_ID);
        assert_eq!(account.user.wallet, crate::sign_in::DIMO_WALLET_ADDRESS);
        assert_eq!(account.user.email, crate::sign_in::DIMO_USER_EMAIL);
        assert_eq!(
            account.license.redirect_uri,
            crate::sign_in::DEFAULT_REDIRECT_URI
        );
    }

    #[test]
    fn permissions_use_two_bits_per_privilege() {
        assert_eq!(permissions_hex(&[1, 2, 3, 4, 5, 6]), "0x3ffc");
        assert_eq!(permissions_hex(&[1]), "0xc");
        assert_eq!(permissions_hex(&[4]), "0x300");
    }
}
