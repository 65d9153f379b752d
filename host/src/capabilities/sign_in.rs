//! `sign-in`: the user signs in to the vendor in their own browser, and carport keeps what
//! comes back where the plugin cannot read it.
//!
//! `start` builds the vendor's link from `[plugins.<id>.sign_in]` with a fresh `state` (and a
//! PKCE verifier for `response = "code"`), and listens on the configured loopback redirect
//! address until that one sign-in completes or times out. The redirect, whether it reaches the
//! listener or is pasted by the user (`finish`), goes through [`SignIn::complete`]: a redirect
//! without the right state is refused and the sign-in keeps waiting; one with it ends the
//! sign-in, successful or not. A code is exchanged at the grant's token endpoint by the oauth
//! module, which stores the refresh token before it keeps the access token; a token is written
//! to its file secret. Both writes are atomic and owner-only. What the plugin may learn is
//! `status`: signed in or not, the `claims` plugins.toml names, and the expiry when known.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use url::Url;

use super::carport::provider::sign_in::{Account, Host};
use super::{CallState, Grants};
use crate::config::{SignInConfig, SignInResponse};

/// How often a listener checks whether its sign-in is over.
const LISTENER_POLL: Duration = Duration::from_millis(200);
/// How long `start` retries binding while the previous sign-in's listener lets the port go.
const BIND_PATIENCE: Duration = Duration::from_secs(2);
/// Link parameters only plugins.toml and the protocol may set.
const PROTOCOL_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "redirect_uri",
    "state",
];

/// The outcome of one sign-in, for whoever waits on it (`carport login`).
pub type Outcome = Option<Result<Account, String>>;

pub struct SignIn {
    plugin_id: String,
    config: SignInConfig,
    redirect: Url,
    /// What the last successful sign-in reported: claims and expiry, in carport's data dir.
    record_path: PathBuf,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    pending: Option<Pending>,
    listening: bool,
    listeners: Vec<tokio::task::JoinHandle<()>>,
}

struct Pending {
    state: String,
    verifier: Option<String>,
    deadline: Instant,
    outcome: watch::Sender<Outcome>,
}

/// What is kept of a sign-in besides the credential itself.
#[derive(Serialize, Deserialize, Default)]
struct Record {
    claims: Vec<(String, String)>,
    expires_at: Option<u64>,
}

/// A started sign-in: the link for the user, and its outcome once the browser came back.
pub struct Started {
    pub link: String,
    pub outcome: watch::Receiver<Outcome>,
}

/// Why a redirect did not sign the user in; `ends` says whether the sign-in is over.
struct Refusal {
    reason: String,
    ends: bool,
}

/// Checks that a redirect address is plain `http` to this machine, and returns it parsed.
pub fn loopback_redirect(address: &str) -> Result<Url, String> {
    let url = Url::parse(address).map_err(|error| format!("{address:?}: {error}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "{address:?} must be an http:// address on this machine (carport listens there \
             itself), e.g. http://localhost:3333/callback"
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if !loopback {
        return Err(format!(
            "{address:?} is not a loopback address: carport listens for the browser only on \
             localhost, 127.0.0.0/8 or [::1]"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{address:?} must not carry a query or fragment"));
    }
    Ok(url)
}

/// 32 random bytes, base64url: a state or a PKCE verifier.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 S256: base64url(SHA-256(verifier)).
fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// The `exp` of a JWT, in milliseconds, read without verifying (only to tell the plugin when
/// to sign in again).
fn jwt_expiry_ms(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["exp"].as_u64()?.checked_mul(1000)
}

impl SignIn {
    pub fn new(plugin_id: &str, config: &SignInConfig, data_dir: &std::path::Path) -> SignIn {
        SignIn {
            plugin_id: plugin_id.to_string(),
            config: config.clone(),
            redirect: loopback_redirect(&config.redirect_uri)
                .expect("Config::validate checks redirect_uri"),
            record_path: data_dir.join("sign-in").join(format!("{plugin_id}.json")),
            waiting: Mutex::new(Waiting::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn table(&self) -> String {
        format!("[plugins.{}.sign_in]", self.plugin_id)
    }

    /// Starts a sign-in (replacing an unfinished one) and listens for the browser.
    pub async fn start(
        grants: &Arc<Grants>,
        extra_params: Vec<(String, String)>,
    ) -> Result<Started, String> {
        let sign_in = granted(grants)?;
        let state = random_token();
        let verifier = (sign_in.config.response == SignInResponse::Code && sign_in.config.pkce)
            .then(random_token);
        let link = sign_in.link(grants, &state, verifier.as_deref(), extra_params)?;
        let (sender, receiver) = watch::channel(None);
        let must_listen = {
            let mut waiting = sign_in.lock();
            waiting.pending = Some(Pending {
                state,
                verifier,
                deadline: Instant::now() + Duration::from_secs(sign_in.config.timeout_seconds),
                outcome: sender,
            });
            !std::mem::replace(&mut waiting.listening, true)
        };
        if must_listen && let Err(reason) = sign_in.listen(grants.clone()).await {
            let mut waiting = sign_in.lock();
            waiting.pending = None;
            waiting.listening = false;
            return Err(reason);
        }
        tracing::info!(
            plugin = %sign_in.plugin_id,
            "sign-in started; waiting for the browser at {} for {} s",
            sign_in.redirect,
            sign_in.config.timeout_seconds
        );
        Ok(Started {
            link,
            outcome: receiver,
        })
    }

    fn link(
        &self,
        grants: &Grants,
        state: &str,
        verifier: Option<&str>,
        extra_params: Vec<(String, String)>,
    ) -> Result<String, String> {
        let config = &self.config;
        let mut link = Url::parse(&config.authorize_url).map_err(|error| error.to_string())?;
        let state_in_params = config
            .params
            .values()
            .any(|value| value.contains("{state}"));
        {
            let mut query = link.query_pairs_mut();
            if config.response == SignInResponse::Code {
                let grant = self.grant(grants)?;
                query.append_pair("response_type", "code");
                query.append_pair("client_id", grant.client_id());
            }
            query.append_pair(&config.redirect_param, &config.redirect_uri);
            if !config.scopes.is_empty() {
                query.append_pair("scope", &config.scopes.join(" "));
            }
            if !state_in_params {
                query.append_pair(&config.state_param, state);
            }
            if let Some(verifier) = verifier {
                query.append_pair("code_challenge", &pkce_challenge(verifier));
                query.append_pair("code_challenge_method", "S256");
            }
            for (name, value) in &config.params {
                query.append_pair(name, &value.replace("{state}", state));
            }
            for (name, value) in &extra_params {
                let reserved = PROTOCOL_PARAMS.contains(&name.as_str())
                    || *name == config.redirect_param
                    || *name == config.state_param
                    || config.params.contains_key(name);
                if reserved {
                    return Err(format!(
                        "plugin `{}` may not set the sign-in link's parameter `{name}`: \
                         plugins.toml ({}) or the protocol sets it",
                        self.plugin_id,
                        self.table()
                    ));
                }
                query.append_pair(name, value);
            }
        }
        Ok(link.into())
    }

    fn grant<'a>(&self, grants: &'a Grants) -> Result<&'a super::oauth::OAuthGrant, String> {
        let name = self.config.grant.as_deref().unwrap_or_default();
        grants.oauth.get(name).ok_or_else(|| {
            format!(
                "{} names grant `{name}`, which has no [plugins.{}.oauth.{name}]",
                self.table(),
                self.plugin_id
            )
        })
    }

    /// Binds the redirect address (both loopback families for `localhost`) and serves the
    /// callback until no sign-in waits any more.
    async fn listen(&self, grants: Arc<Grants>) -> Result<(), String> {
        let port = self.redirect.port_or_known_default().unwrap_or(80);
        let addresses: Vec<SocketAddr> = match self.redirect.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            _ => vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            ],
        };
        let mut listeners = Vec::new();
        for (index, address) in addresses.iter().enumerate() {
            match bind(*address).await {
                Ok(listener) => listeners.push(listener),
                // `localhost` on a machine without IPv6: the first family is enough.
                Err(_) if index > 0 => {}
                Err(error) => {
                    return Err(format!(
                        "cannot listen for the browser at {address} ({}, from {} redirect_uri): \
                         {error}; close what uses that port or register another loopback \
                         redirect address with the vendor",
                        self.redirect,
                        self.table()
                    ));
                }
            }
        }
        let router = axum::Router::new()
            .route(self.redirect.path(), axum::routing::get(callback))
            .fallback(|| async {
                (
                    StatusCode::NOT_FOUND,
                    page("Not found", "This address is not a carport sign-in."),
                )
            })
            .with_state(grants.clone());
        for listener in listeners {
            let router = router.clone();
            let grants = grants.clone();
            let serving = tokio::spawn(async move {
                let over = async move {
                    loop {
                        tokio::time::sleep(LISTENER_POLL).await;
                        let Some(sign_in) = &grants.sign_in else {
                            break;
                        };
                        if sign_in.stop_listening_if_over() {
                            break;
                        }
                    }
                };
                if let Err(error) = axum::serve(listener, router)
                    .with_graceful_shutdown(over)
                    .await
                {
                    tracing::warn!("the sign-in listener stopped: {error}");
                }
            });
            let mut waiting = self.lock();
            waiting.listeners.retain(|listener| !listener.is_finished());
            waiting.listeners.push(serving);
        }
        Ok(())
    }

    /// Waits until the listeners have answered the browser and let the port go, so a process
    /// that ends after a sign-in (`carport login`) does not cut the browser's page short.
    pub async fn listeners_stopped(&self) {
        let listeners = std::mem::take(&mut self.lock().listeners);
        for listener in listeners {
            let _ = tokio::time::timeout(Duration::from_secs(5), listener).await;
        }
    }

    /// True when no sign-in waits any more (a timed-out one is dropped here, and its waiter
    /// told); then the listeners stop.
    fn stop_listening_if_over(&self) -> bool {
        let mut waiting = self.lock();
        if let Some(pending) = &waiting.pending
            && pending.deadline <= Instant::now()
        {
            let reason = format!(
                "the sign-in timed out after {} s without the browser coming back; start it again",
                self.config.timeout_seconds
            );
            pending.outcome.send_replace(Some(Err(reason)));
            waiting.pending = None;
        }
        let over = waiting.pending.is_none();
        if over {
            waiting.listening = false;
        }
        over
    }

    /// The headless path: the address the browser was sent back to, pasted by the user.
    pub async fn finish(grants: &Grants, redirected_url: &str) -> Result<Account, String> {
        let sign_in = granted(grants)?;
        let url = Url::parse(redirected_url.trim()).map_err(|error| {
            format!("the pasted address is not a URL ({error}); paste the whole address bar")
        })?;
        let same_place = url.scheme() == sign_in.redirect.scheme()
            && url.host_str() == sign_in.redirect.host_str()
            && url.port_or_known_default() == sign_in.redirect.port_or_known_default()
            && url.path() == sign_in.redirect.path();
        if !same_place {
            return Err(format!(
                "the pasted address does not start with the sign-in's redirect address {}: \
                 paste the address the browser ended on after signing in",
                sign_in.redirect
            ));
        }
        sign_in
            .complete(grants, url.query().unwrap_or_default())
            .await
            .map_err(|refusal| refusal.reason)
    }

    /// Checks a redirect's query against the waiting sign-in and finishes it.
    async fn complete(&self, grants: &Grants, query: &str) -> Result<Account, Refusal> {
        let parameters: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let (verifier, outcome) = {
            let mut waiting = self.lock();
            let Some(pending) = &waiting.pending else {
                return Err(Refusal {
                    reason: "no sign-in is waiting (it finished, timed out or was never \
                             started); start it again"
                        .into(),
                    ends: false,
                });
            };
            if pending.deadline <= Instant::now() {
                let reason = "the sign-in timed out; start it again".to_string();
                pending.outcome.send_replace(Some(Err(reason.clone())));
                waiting.pending = None;
                return Err(Refusal { reason, ends: true });
            }
            if parameters.get(&self.config.state_param) != Some(&pending.state) {
                let vendor = vendor_error(&parameters)
                    .map(|error| format!(" (it also reports: {error})"))
                    .unwrap_or_default();
                return Err(Refusal {
                    reason: format!(
                        "this redirect does not belong to the sign-in carport started: its \
                         `{}` does not match{vendor}; the sign-in keeps waiting for the right one",
                        self.config.state_param
                    ),
                    ends: false,
                });
            }
            let pending = waiting.pending.take().expect("checked above");
            (pending.verifier, pending.outcome)
        };
        let result = match vendor_error(&parameters) {
            Some(error) => Err(format!("the vendor did not sign you in: {error}")),
            None => self.keep(grants, &parameters, verifier.as_deref()).await,
        };
        match &result {
            Ok(_) => tracing::info!(plugin = %self.plugin_id, "signed in"),
            Err(reason) => {
                tracing::warn!(plugin = %self.plugin_id, "sign-in failed: {reason}")
            }
        }
        outcome.send_replace(Some(result.clone()));
        result.map_err(|reason| Refusal { reason, ends: true })
    }

    /// Stores what the vendor sent back: the code's tokens, or the token itself.
    async fn keep(
        &self,
        grants: &Grants,
        parameters: &BTreeMap<String, String>,
        verifier: Option<&str>,
    ) -> Result<Account, String> {
        let config = &self.config;
        let expires_at = match config.response {
            SignInResponse::Code => {
                let code = parameters
                    .get("code")
                    .filter(|code| !code.is_empty())
                    .ok_or("the redirect carries no `code`")?;
                self.grant(grants)?
                    .authorization_code(
                        &grants.secrets,
                        code,
                        config.redirect_uri.as_str(),
                        verifier,
                    )
                    .await
                    .map_err(|error| match error {
                        super::carport::provider::http::Error::Auth(reason)
                        | super::carport::provider::http::Error::Transport(reason) => reason,
                        other => format!("{other:?}"),
                    })?;
                None
            }
            SignInResponse::Token => {
                let name = config.token_param.as_deref().unwrap_or("token");
                let token = parameters
                    .get(name)
                    .filter(|token| !token.is_empty())
                    .ok_or_else(|| format!("the redirect carries no `{name}`"))?;
                let store = config.store.as_deref().unwrap_or_default();
                grants.secrets.store(store, token)?;
                jwt_expiry_ms(token)
            }
        };
        let record = Record {
            claims: config
                .claims
                .iter()
                .filter_map(|claim| Some((claim.clone(), parameters.get(claim)?.clone())))
                .collect(),
            expires_at,
        };
        self.write_record(&record)?;
        Ok(Account {
            signed_in: true,
            claims: record.claims,
            expires_at: record.expires_at,
        })
    }

    fn write_record(&self, record: &Record) -> Result<(), String> {
        let folder = self
            .record_path
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let written = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .and_then(|()| {
                let bytes = serde_json::to_vec(record).unwrap_or_default();
                super::secrets::write_atomically(&self.record_path, &bytes)
            });
        written.map_err(|error| {
            format!(
                "signed in, but cannot keep the account's details in {}: {error}",
                self.record_path.display()
            )
        })
    }

    /// Signed in or not (a credential is stored and not known to have expired), with the
    /// claims plugins.toml lets the plugin read.
    pub fn status(grants: &Grants) -> Result<Account, String> {
        let sign_in = granted(grants)?;
        let credential = match sign_in.config.response {
            SignInResponse::Code => sign_in
                .grant(grants)
                .ok()
                .and_then(|grant| grant.refresh_token_secret()),
            SignInResponse::Token => sign_in.config.store.as_deref(),
        };
        let stored = credential.is_some_and(|name| grants.secrets.resolve(name).is_ok());
        let record: Record = std::fs::read(&sign_in.record_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let expired = record.expires_at.is_some_and(|at| at <= now_ms());
        let signed_in = stored && !expired;
        Ok(Account {
            signed_in,
            claims: if signed_in { record.claims } else { Vec::new() },
            expires_at: record.expires_at.filter(|_| stored),
        })
    }
}

fn granted(grants: &Grants) -> Result<&SignIn, String> {
    grants.sign_in.as_ref().ok_or_else(|| {
        let plugin = &grants.plugin_id;
        format!(
            "plugin `{plugin}` may not sign users in: plugins.toml grants it no \
             [plugins.{plugin}.sign_in]; add that table with authorize_url, redirect_uri and \
             response (see README, plugins.toml reference)"
        )
    })
}

/// `error` (and `error_description`) of an OAuth error redirect, or of DIMO's login.
fn vendor_error(parameters: &BTreeMap<String, String>) -> Option<String> {
    let error = parameters.get("error")?;
    Some(match parameters.get("error_description") {
        Some(description) if !description.is_empty() => format!("{error}: {description}"),
        _ => error.clone(),
    })
}

async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let started = Instant::now();
    loop {
        match tokio::net::TcpListener::bind(address).await {
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrInUse
                    && started.elapsed() < BIND_PATIENCE =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

async fn callback(State(grants): State<Arc<Grants>>, RawQuery(query): RawQuery) -> Response {
    let Some(sign_in) = &grants.sign_in else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match sign_in
        .complete(&grants, query.as_deref().unwrap_or_default())
        .await
    {
        Ok(_) => page(
            "Signed in",
            &format!(
                "carport is signed in for {}. You can close this window and go back to your \
                 assistant or terminal.",
                sign_in.plugin_id
            ),
        )
        .into_response(),
        Err(Refusal { reason, ends }) => {
            let next = if ends {
                "You can close this window and start the sign-in again."
            } else {
                "You can close this window."
            };
            (
                StatusCode::BAD_REQUEST,
                page("Sign-in failed", &format!("{reason}. {next}")),
            )
                .into_response()
        }
    }
}

fn page(title: &str, message: &str) -> Html<String> {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>carport: {title}\
         </title></head><body><h1 id=\"outcome\">{title}</h1><p id=\"message\">{message}</p>\
         </body></html>",
        title = escape(title),
        message = escape(message)
    ))
}

impl Host for CallState {
    async fn start(
        &mut self,
        extra_params: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<String, String>> {
        let started = SignIn::start(&self.grants, extra_params).await;
        if let Err(refusal) = &started {
            tracing::warn!(plugin = self.plugin_id(), "refused: {refusal}");
        }
        Ok(started.map(|started| started.link))
    }

    async fn finish(
        &mut self,
        redirected_url: String,
    ) -> wasmtime::Result<Result<Account, String>> {
        Ok(SignIn::finish(&self.grants, &redirected_url).await)
    }

    async fn status(&mut self) -> wasmtime::Result<Result<Account, String>> {
        Ok(SignIn::status(&self.grants))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let verifier = random_token();
        assert_eq!(verifier.len(), 43, "RFC 7636 wants 43-128 characters");
        assert_ne!(verifier, random_token());
    }

    #[tokio::test]
    async fn a_plugin_cannot_replace_the_links_protocol_or_configured_parameters() {
        let folder = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let text = format!(
            "[carport]\ndata_dir = \"data\"\n[plugins.t]\ncomponent = \"t.wasm\"\n\
             [plugins.t.secrets.token]\nfile = \"token\"\norigins = []\n[plugins.t.sign_in]\n\
             authorize_url = \"https://login.example/\"\n\
             redirect_uri = \"http://127.0.0.1:{port}/cb\"\nresponse = \"token\"\n\
             redirect_param = \"redirectUri\"\nstore = \"token\"\n\
             params = {{ clientId = \"app\" }}\n"
        );
        let config = crate::config::Config::parse(&text, folder.path()).unwrap();
        let plugin = &config.plugins["t"];
        let grants = Arc::new(
            crate::runtime::grants::grants(&config, "t", plugin, &Arc::default()).unwrap(),
        );
        for reserved in [
            "redirectUri",
            "clientId",
            "state",
            "redirect_uri",
            "client_id",
        ] {
            let refused = SignIn::start(&grants, vec![(reserved.into(), "x".into())]).await;
            let Err(message) = refused else {
                panic!("{reserved} was accepted")
            };
            assert!(
                message.contains(&format!("parameter `{reserved}`")),
                "{message}"
            );
        }
        let started = SignIn::start(&grants, vec![("lang".into(), "de".into())])
            .await
            .unwrap();
        let link = Url::parse(&started.link).unwrap();
        let pairs: BTreeMap<String, String> = link.query_pairs().into_owned().collect();
        assert_eq!(pairs["clientId"], "app");
        assert_eq!(pairs["redirectUri"], format!("http://127.0.0.1:{port}/cb"));
        assert_eq!(pairs["lang"], "de");
        assert_eq!(pairs["state"].len(), 43);
        assert!(
            !pairs.contains_key("code_challenge"),
            "no PKCE for a token response"
        );
    }

    #[test]
    fn only_loopback_http_redirects() {
        assert!(loopback_redirect("http://localhost:3333/callback").is_ok());
        assert!(loopback_redirect("http://127.0.0.1:3333/cb").is_ok());
        assert!(loopback_redirect("http://[::1]:3333/cb").is_ok());
        for refused in [
            "https://localhost:3333/callback",
            "http://example.com/callback",
            "http://192.168.1.2:3333/callback",
            "http://localhost.example.com/cb",
            "http://localhost:3333/cb?x=1",
        ] {
            assert!(
                loopback_redirect(refused).is_err(),
                "{refused} was accepted"
            );
        }
    }

    #[test]
    fn a_jwt_expiry_is_read_and_anything_else_is_none() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":1900000000,"sub":"x"}"#);
        assert_eq!(
            jwt_expiry_ms(&format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig")),
            Some(1_900_000_000_000)
        );
        assert_eq!(jwt_expiry_ms("opaque-token"), None);
    }
}
