//! OAuth2 access tokens obtained by the host for a plugin, so the plugin never holds a token.
//!
//! A grant (`[plugins.<id>.oauth.<name>]`) uses either the refresh-token grant (Tesla) or the
//! client-credentials grant (Smartcar's machine-to-machine API). Access tokens live in memory
//! only. Refreshes are serialised per grant, so concurrent calls never spend the same
//! single-use refresh token twice, and a rotated refresh token is written to its secret file
//! atomically *before* the new access token is used: a crash at any moment leaves a refresh
//! token that still works.

use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::carport::provider::http::Error;
use super::http::CredentialScope;
use super::secrets::{SecretGrants, SecretValue};
use crate::config::OAuthConfig;

/// Refresh a little before the announced expiry, so a token never dies in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct OAuthGrant {
    plugin_id: String,
    name: String,
    token_url: Url,
    client_id: String,
    client_secret: Option<String>,
    refresh_token_secret: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    /// Built at the first token request: a TLS client loads the system's root certificates,
    /// milliseconds that every start would otherwise pay for each grant.
    client: std::sync::OnceLock<reqwest::Client>,
    current: Mutex<Option<AccessToken>>,
    /// Where the host may attach the access token.
    pub origins: CredentialScope,
}

#[derive(Clone)]
pub struct AccessToken {
    pub value: SecretValue,
    expires_at: Instant,
    /// Which refresh produced it: a 401 on generation N triggers at most one refresh.
    pub generation: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenRefusal {
    error: Option<String>,
    error_description: Option<String>,
}

impl OAuthGrant {
    pub fn new(
        plugin_id: &str,
        name: &str,
        config: &OAuthConfig,
        scope: CredentialScope,
    ) -> anyhow::Result<OAuthGrant> {
        let token_url = Url::parse(&config.token_url)
            .map_err(|error| anyhow::anyhow!("token_url {:?}: {error}", config.token_url))?;
        Ok(OAuthGrant {
            plugin_id: plugin_id.to_string(),
            name: name.to_string(),
            token_url,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            refresh_token_secret: config.refresh_token.clone(),
            scope: config.scope.clone(),
            audience: config.audience.clone(),
            client: std::sync::OnceLock::new(),
            current: Mutex::new(None),
            origins: scope,
        })
    }

    /// The application's id at the vendor, which the sign-in link names.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The file secret that holds the refresh token, if this grant has one.
    pub fn refresh_token_secret(&self) -> Option<&str> {
        self.refresh_token_secret.as_deref()
    }

    /// A valid access token: the cached one, or a fresh one.
    pub async fn token(&self, secrets: &SecretGrants) -> Result<AccessToken, Error> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && token.expires_at > Instant::now()
        {
            return Ok(token.clone());
        }
        self.refresh(&mut current, secrets).await
    }

    /// Called when the vendor answered 401 to a token of `generation`: refreshes once, unless
    /// another call already did.
    pub async fn replace_rejected(
        &self,
        secrets: &SecretGrants,
        generation: u64,
    ) -> Result<AccessToken, Error> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && token.generation > generation
        {
            return Ok(token.clone());
        }
        self.refresh(&mut current, secrets).await
    }

    /// Exchanges the authorization code of a browser sign-in (`sign-in` capability) for
    /// tokens: the refresh token is stored before the access token is kept, as at a refresh.
    pub async fn authorization_code(
        &self,
        secrets: &SecretGrants,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<AccessToken, Error> {
        let mut current = self.current.lock().await;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("client_id", self.client_id.clone()),
            ("code", code.to_string()),
            ("redirect_uri", redirect_uri.to_string()),
        ];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier.to_string()));
        }
        self.add_client_secret(&mut form, secrets)?;
        if let Some(audience) = &self.audience {
            form.push(("audience", audience.clone()));
        }
        let answer = self
            .request_tokens(&form, "start the sign-in again".to_string())
            .await?;
        if self.refresh_token_secret.is_some() && answer.refresh_token.is_none() {
            return Err(Error::Auth(format!(
                "the token endpoint of [plugins.{}.oauth.{}] answered the sign-in without a \
                 refresh token: ask for the `offline_access` scope in [plugins.{}.sign_in] scopes",
                self.plugin_id, self.name, self.plugin_id
            )));
        }
        self.keep(&mut current, secrets, answer)
    }

    async fn refresh(
        &self,
        current: &mut Option<AccessToken>,
        secrets: &SecretGrants,
    ) -> Result<AccessToken, Error> {
        let mut form: Vec<(&str, String)> = vec![("client_id", self.client_id.clone())];
        match &self.refresh_token_secret {
            Some(secret) => {
                let refresh_token = secrets.resolve(secret).map_err(Error::Auth)?;
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", refresh_token.expose().to_string()));
            }
            None => form.push(("grant_type", "client_credentials".into())),
        }
        self.add_client_secret(&mut form, secrets)?;
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.clone()));
        }
        if let Some(audience) = &self.audience {
            form.push(("audience", audience.clone()));
        }
        let remedy = match &self.refresh_token_secret {
            Some(secret) => format!(
                "sign in to the vendor again (`carport login {}`) or store a new refresh token \
                 in secret `{secret}` of plugin `{}`",
                self.plugin_id, self.plugin_id
            ),
            None => "check client_id and client_secret".to_string(),
        };
        let answer = self.request_tokens(&form, remedy).await?;
        self.keep(current, secrets, answer)
    }

    fn add_client_secret(
        &self,
        form: &mut Vec<(&'static str, String)>,
        secrets: &SecretGrants,
    ) -> Result<(), Error> {
        if let Some(secret) = &self.client_secret {
            let client_secret = secrets.resolve(secret).map_err(Error::Auth)?;
            form.push(("client_secret", client_secret.expose().to_string()));
        }
        Ok(())
    }

    /// Posts a token request; a refusal says what the vendor said and `remedy`.
    async fn request_tokens(
        &self,
        form: &[(&str, String)],
        remedy: String,
    ) -> Result<TokenAnswer, Error> {
        let table = format!("[plugins.{}.oauth.{}]", self.plugin_id, self.name);
        let client = match self.client.get() {
            Some(client) => client,
            None => {
                let built = reqwest::Client::builder()
                    .user_agent(concat!("carport/", env!("CARGO_PKG_VERSION")))
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .timeout(TOKEN_TIMEOUT)
                    .build()
                    .map_err(|error| Error::Transport(format!("no HTTP client: {error}")))?;
                self.client.get_or_init(|| built)
            }
        };
        let response = client
            .post(self.token_url.clone())
            .form(form)
            .send()
            .await
            .map_err(|error| {
                Error::Transport(format!(
                    "token endpoint {} unreachable: {error}",
                    self.token_url
                ))
            })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|error| {
            Error::Transport(format!("token endpoint {}: {error}", self.token_url))
        })?;
        if !status.is_success() {
            let refusal: Option<TokenRefusal> = serde_json::from_slice(&body).ok();
            let reason = refusal
                .map(|refusal| {
                    [refusal.error, refusal.error_description]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ")
                })
                .filter(|reason| !reason.is_empty())
                .unwrap_or_else(|| format!("HTTP {status}"));
            tracing::warn!(plugin = %self.plugin_id, "token request for {table} refused: {reason}");
            return Err(Error::Auth(format!(
                "the token endpoint refused {table} ({reason}); {remedy}"
            )));
        }
        serde_json::from_slice(&body).map_err(|error| {
            Error::Transport(format!("token endpoint answered unexpected JSON: {error}"))
        })
    }

    /// Stores a new refresh token, then keeps the access token: see the module comment.
    fn keep(
        &self,
        current: &mut Option<AccessToken>,
        secrets: &SecretGrants,
        answer: TokenAnswer,
    ) -> Result<AccessToken, Error> {
        if let (Some(secret), Some(rotated)) = (&self.refresh_token_secret, &answer.refresh_token) {
            secrets.store(secret, rotated).map_err(Error::Auth)?;
        }
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let token = AccessToken {
            value: SecretValue::new(answer.access_token),
            expires_at: Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN),
            generation: current.as_ref().map_or(1, |token| token.generation + 1),
        };
        tracing::info!(
            plugin = %self.plugin_id,
            "obtained an access token for [plugins.{}.oauth.{}]",
            self.plugin_id,
            self.name
        );
        *current = Some(token.clone());
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::Form;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use serde_json::json;

    use super::*;
    use crate::capabilities::secrets::{SecretGrant, SecretSource};

    /// A token endpoint that accepts only the latest refresh token and rotates it each time.
    struct Issuer {
        refreshes: AtomicU32,
        valid: std::sync::Mutex<String>,
    }

    async fn issue(
        State(issuer): State<Arc<Issuer>>,
        Form(form): Form<HashMap<String, String>>,
    ) -> Response {
        let mut valid = issuer.valid.lock().unwrap();
        if form.get("grant_type").map(String::as_str) != Some("refresh_token")
            || form.get("refresh_token") != Some(&*valid)
            || form.get("client_id").map(String::as_str) != Some("app")
        {
            let refusal =
                json!({"error": "invalid_grant", "error_description": "refresh_token is invalid"});
            return (StatusCode::UNAUTHORIZED, axum::Json(refusal)).into_response();
        }
        let round = issuer.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
        *valid = format!("refresh-{round}");
        axum::Json(json!({
            "access_token": format!("access-{round}"),
            "refresh_token": *valid,
            "expires_in": 28800,
            "token_type": "Bearer"
        }))
        .into_response()
    }

    async fn issuer(first_refresh_token: &str) -> (Arc<Issuer>, String) {
        let issuer = Arc::new(Issuer {
            refreshes: AtomicU32::new(0),
            valid: std::sync::Mutex::new(first_refresh_token.to_string()),
        });
        let router = axum::Router::new()
            .route("/oauth2/v3/token", axum::routing::post(issue))
            .with_state(issuer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/oauth2/v3/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (issuer, url)
    }

    fn grant_and_secrets(url: &str, file: &std::path::Path) -> (OAuthGrant, SecretGrants) {
        let config = OAuthConfig {
            token_url: url.to_string(),
            client_id: "app".into(),
            client_secret: None,
            refresh_token: Some("refresh".into()),
            scope: None,
            audience: None,
            origins: None,
        };
        let secrets = SecretGrants::new(
            "tesla",
            BTreeMap::from([(
                "refresh".to_string(),
                SecretGrant {
                    source: SecretSource::File(file.to_path_buf()),
                    readable: false,
                    scope: CredentialScope::new(&[url.to_string()], false, None).unwrap(),
                },
            )]),
        );
        let scope = CredentialScope::new(&[url.to_string()], false, None).unwrap();
        (
            OAuthGrant::new("tesla", "fleet", &config, scope).unwrap(),
            secrets,
        )
    }

    #[tokio::test]
    async fn a_rotated_refresh_token_is_stored_before_the_access_token_is_used() {
        let (issuer, url) = issuer("refresh-0").await;
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("tesla-refresh-token");
        std::fs::write(&file, "refresh-0\n").unwrap();
        let (grant, secrets) = grant_and_secrets(&url, &file);

        let token = grant.token(&secrets).await.unwrap();
        assert_eq!(token.value.expose(), "access-1");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "refresh-1");
        // Cached: no second refresh while the token is valid.
        assert_eq!(
            grant.token(&secrets).await.unwrap().value.expose(),
            "access-1"
        );
        assert_eq!(issuer.refreshes.load(Ordering::SeqCst), 1);

        // A process that starts now (a crash right after the refresh) reads the new token.
        let (restarted, secrets_after_restart) = grant_and_secrets(&url, &file);
        let token = restarted.token(&secrets_after_restart).await.unwrap();
        assert_eq!(token.value.expose(), "access-2");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "refresh-2");
        let leftovers = std::fs::read_dir(folder.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temporary files were left behind");
    }

    #[tokio::test]
    async fn concurrent_rejections_refresh_once() {
        let (issuer, url) = issuer("refresh-0").await;
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("token");
        std::fs::write(&file, "refresh-0").unwrap();
        let (grant, secrets) = grant_and_secrets(&url, &file);
        let first = grant.token(&secrets).await.unwrap();
        let (a, b) = tokio::join!(
            grant.replace_rejected(&secrets, first.generation),
            grant.replace_rejected(&secrets, first.generation)
        );
        assert_eq!(a.unwrap().value.expose(), "access-2");
        assert_eq!(b.unwrap().value.expose(), "access-2");
        assert_eq!(issuer.refreshes.load(Ordering::SeqCst), 2);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "refresh-2");
    }

    #[tokio::test]
    async fn a_refused_refresh_token_says_what_to_do_and_keeps_the_file() {
        let (_issuer, url) = issuer("refresh-7").await;
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("token");
        std::fs::write(&file, "stale").unwrap();
        let (grant, secrets) = grant_and_secrets(&url, &file);
        let Err(Error::Auth(message)) = grant.token(&secrets).await else {
            panic!("a refused refresh token must be an auth error");
        };
        assert!(message.contains("[plugins.tesla.oauth.fleet]"), "{message}");
        assert!(message.contains("invalid_grant"), "{message}");
        assert!(message.contains("secret `refresh`"), "{message}");
        assert!(!message.contains("stale"), "the token leaked: {message}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "stale");
    }

    #[tokio::test]
    async fn no_access_token_is_handed_out_when_the_new_refresh_token_cannot_be_stored() {
        let (_issuer, url) = issuer("refresh-0").await;
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("token");
        std::fs::write(&file, "refresh-0").unwrap();
        let (grant, secrets) = grant_and_secrets(&url, &file);
        // A folder where the temporary file must go: the rotated token cannot be persisted.
        std::fs::create_dir(
            folder
                .path()
                .join(format!("token.tmp{}", std::process::id())),
        )
        .unwrap();
        let outcome = grant.token(&secrets).await;
        let Err(Error::Auth(message)) = outcome else {
            panic!("expected an auth error")
        };
        assert!(message.contains("cannot store the new value"), "{message}");
        assert!(
            grant.current.lock().await.is_none(),
            "an access token was kept"
        );
    }
}
