//! The vendors' sign-in pages: Tesla's authorization server (`auth.tesla.com`'s authorize page
//! and the Fleet token endpoint's authorization-code grant) and DIMO's login page
//! (`login.dimo.org`). Both are real HTML forms a person (or a headless browser) fills in and
//! submits; both send the browser back to a registered redirect address.
//!
//! Tesla: `GET /oauth2/v3/authorize` shows the consent form; submitting it redirects with
//! `code` and `state` (or `error=access_denied`). `POST /oauth2/v3/token` takes the code once,
//! only with the same `client_id` and `redirect_uri` and a `code_verifier` matching the PKCE
//! challenge, and answers with tokens of the simulated Fleet account, so the Fleet API accepts
//! the access token and the existing refresh grant takes the refresh token.
//!
//! DIMO: `GET /` with `clientId` and `redirectUri` shows the login form; submitting it
//! redirects with `token`, `walletAddress` and `email`, plus the pairs of `utm` as DIMO's login
//! does. It never echoes a `state` parameter (DIMO's login parses `state` as its own JSON).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{SimState, lock};

/// The developer application the simulated Tesla accepts.
pub const TESLA_CLIENT_ID: &str = "sim-tesla-client";
pub const TESLA_USER_EMAIL: &str = "owner@example.com";
/// The developer license (client id) the simulated DIMO login accepts.
pub const DIMO_CLIENT_ID: &str = "0x3b9aCa00a4b6D3E1f2C3d4E5f60718293aBcDeF0";
pub const DIMO_USER_EMAIL: &str = "driver@example.com";
/// The simulated DIMO user's smart-contract wallet.
pub const DIMO_WALLET_ADDRESS: &str = "0x5e1d0e2b9F5A4c2d6c7E8f9a0B1c2D3e4F5a6B7c";
/// The user JWT the simulated DIMO login hands out (expires in 2100, `sub` = the wallet).
pub const DIMO_USER_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIweDVlMWQwZTJiOUY1QTRjMmQ2YzdFOGY5YTBCMWMyRDNlNEY1YTZCN2MiLCJleHAiOjQxMDI0NDQ4MDAsImlzcyI6InNpbXVsYXRlZC1kaW1vIn0.c2ltdWxhdGVkLXNpZ25hdHVyZQ";
/// Registered with both simulated vendors from the start (the README's example address).
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:3333/callback";

/// What the simulated sign-in servers remember.
pub struct Accounts {
    /// Redirect addresses registered with the simulated vendors (exact match, as both do).
    redirects: Mutex<Vec<String>>,
    codes: Mutex<HashMap<String, IssuedCode>>,
    issued: AtomicU32,
    /// Authorization codes exchanged for tokens.
    pub exchanges: AtomicU32,
}

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    used: bool,
}

impl Accounts {
    pub fn new() -> Accounts {
        Accounts {
            redirects: Mutex::new(vec![DEFAULT_REDIRECT_URI.to_string()]),
            codes: Mutex::new(HashMap::new()),
            issued: AtomicU32::new(0),
            exchanges: AtomicU32::new(0),
        }
    }

    /// Registers a redirect address, as a developer does in the vendor's dashboard.
    pub fn register_redirect(&self, uri: &str) {
        lock(&self.redirects).push(uri.to_string());
    }

    fn registered(&self, uri: &str) -> bool {
        lock(&self.redirects).iter().any(|known| known == uri)
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::new()
    }
}

type Shared = State<Arc<SimState>>;
type Params = Query<HashMap<String, String>>;

pub fn tesla_router() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/oauth2/v3/authorize",
            axum::routing::get(tesla_consent).post(tesla_decision),
        )
        .route("/oauth2/v3/token", axum::routing::post(tesla_token))
}

pub fn dimo_router() -> Router<Arc<SimState>> {
    Router::new().route("/", axum::routing::get(dimo_login).post(dimo_decision))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn refused_page(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><html><body><h1>Request refused</h1><p id=\"error\">{}</p></body></html>",
            escape(message)
        )),
    )
        .into_response()
}

/// A form that posts every parameter back, with an allow and a deny button.
fn form_page(title: &str, intro: &str, params: &HashMap<String, String>, allow: &str) -> Response {
    let mut hidden: Vec<_> = params.iter().collect();
    hidden.sort();
    let hidden: String = hidden
        .into_iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         </head><body><h1>{title}</h1><p>{intro}</p><form method=\"post\">{hidden}\
         <button id=\"allow\" type=\"submit\" name=\"decision\" value=\"allow\">{allow}</button> \
         <button id=\"deny\" type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button>\
         </form></body></html>",
        title = escape(title),
        intro = escape(intro),
        allow = escape(allow),
    ))
    .into_response()
}

fn form_of(body: &Bytes) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// `uri` with `pairs` added to its query.
fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(uri) else {
        return refused_page("the redirect address is not a URL");
    };
    url.query_pairs_mut().extend_pairs(pairs);
    Redirect::to(url.as_str()).into_response()
}

async fn tesla_consent(State(state): Shared, Query(params): Params) -> Response {
    if let Err(reason) = tesla_request_valid(&state, &params) {
        return refused_page(&reason);
    }
    let scopes = params.get("scope").map_or("", String::as_str);
    form_page(
        "Sign in with Tesla (simulated)",
        &format!(
            "Signed in as {TESLA_USER_EMAIL}. The application {} asks for: {scopes}.",
            params["client_id"]
        ),
        &params,
        "Allow",
    )
}

fn tesla_request_valid(state: &SimState, params: &HashMap<String, String>) -> Result<(), String> {
    let param = |name: &str| params.get(name).map_or("", String::as_str);
    if param("response_type") != "code" {
        return Err("response_type must be code".into());
    }
    if param("client_id") != TESLA_CLIENT_ID {
        return Err(format!("unknown client_id {:?}", param("client_id")));
    }
    if !state.sign_in.registered(param("redirect_uri")) {
        return Err(format!(
            "redirect_uri {:?} is not registered for this application",
            param("redirect_uri")
        ));
    }
    if param("state").is_empty() {
        return Err("state is required".into());
    }
    if params.contains_key("code_challenge") && param("code_challenge_method") != "S256" {
        return Err("code_challenge_method must be S256".into());
    }
    Ok(())
}

async fn tesla_decision(State(state): Shared, body: Bytes) -> Response {
    let form = form_of(&body);
    if let Err(reason) = tesla_request_valid(&state, &form) {
        return refused_page(&reason);
    }
    let redirect_uri = &form["redirect_uri"];
    let client_state = &form["state"];
    if form.get("decision").map(String::as_str) != Some("allow") {
        return redirect_with(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied access"),
                ("state", client_state),
            ],
        );
    }
    let number = state.sign_in.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let code = format!("sim-tesla-code-{number}");
    lock(&state.sign_in.codes).insert(
        code.clone(),
        IssuedCode {
            client_id: form["client_id"].clone(),
            redirect_uri: redirect_uri.clone(),
            challenge: form.get("code_challenge").cloned(),
            used: false,
        },
    );
    redirect_with(redirect_uri, &[("code", &code), ("state", client_state)])
}

fn token_refusal(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The token endpoint: the authorization-code grant here, the refresh grant as the Fleet
/// token endpoint has it.
async fn tesla_token(state: Shared, body: Bytes) -> Response {
    let form = form_of(&body);
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return super::fleet::token(state, body).await;
    }
    let State(state) = state;
    let param = |name: &str| form.get(name).map_or("", String::as_str);
    {
        let mut codes = lock(&state.sign_in.codes);
        let Some(issued) = codes.get_mut(param("code")) else {
            return token_refusal("invalid_grant", "The authorization code is invalid");
        };
        if issued.used {
            return token_refusal("invalid_grant", "The authorization code was already used");
        }
        // A code is spent by any attempt, as OAuth servers do.
        issued.used = true;
        if issued.client_id != param("client_id") {
            return token_refusal("invalid_client", "client_id does not match the code");
        }
        if issued.redirect_uri != param("redirect_uri") {
            return token_refusal(
                "invalid_grant",
                "redirect_uri does not match the authorization request",
            );
        }
        if let Some(challenge) = &issued.challenge {
            let verifier = param("code_verifier");
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
                return token_refusal("invalid_grant", "code_verifier does not match");
            }
        }
    }
    let round = state.sign_in.exchanges.fetch_add(1, Ordering::SeqCst) + 1;
    let refresh = format!("sim-fleet-refresh-signin-{round}");
    let access = format!("sim-fleet-access-signin-{round}");
    *lock(&state.fleet.refresh_token) = refresh.clone();
    state.fleet.lock_tokens().push(access.clone());
    Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "id_token": "sim",
        "expires_in": 28800,
        "token_type": "Bearer"
    }))
    .into_response()
}

async fn dimo_login(State(state): Shared, Query(params): Params) -> Response {
    if let Err(reason) = dimo_request_valid(&state, &params) {
        return refused_page(&reason);
    }
    form_page(
        "Login with DIMO (simulated)",
        &format!("Continue as {DIMO_USER_EMAIL} to share your account with the application."),
        &params,
        "Continue",
    )
}

fn dimo_request_valid(state: &SimState, params: &HashMap<String, String>) -> Result<(), String> {
    let param = |name: &str| params.get(name).map_or("", String::as_str);
    if param("clientId") != DIMO_CLIENT_ID {
        return Err("Invalid client ID or redirect URI.".into());
    }
    if !state.sign_in.registered(param("redirectUri")) {
        return Err("Invalid client ID or redirect URI.".into());
    }
    Ok(())
}

async fn dimo_decision(State(state): Shared, body: Bytes) -> Response {
    let form = form_of(&body);
    if let Err(reason) = dimo_request_valid(&state, &form) {
        return refused_page(&reason);
    }
    // DIMO's login adds the pairs of `utm` to the redirect (or `utm=<value>` for a bare one).
    let utm = form.get("utm").cloned().unwrap_or_default();
    let mut pairs: Vec<(String, String)> = if utm.contains('=') {
        form_urlencoded::parse(utm.as_bytes())
            .into_owned()
            .collect()
    } else if !utm.trim().is_empty() {
        vec![("utm".into(), utm)]
    } else {
        Vec::new()
    };
    if form.get("decision").map(String::as_str) == Some("allow") {
        pairs.push(("token".into(), DIMO_USER_TOKEN.into()));
        pairs.push(("walletAddress".into(), DIMO_WALLET_ADDRESS.into()));
        pairs.push(("email".into(), DIMO_USER_EMAIL.into()));
    } else {
        pairs.push(("error".into(), "User cancelled the login".into()));
    }
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    redirect_with(&form["redirectUri"], &pairs)
}
