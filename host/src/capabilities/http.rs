//! `http`: outbound requests, allowed only to the plugin's egress allowlist.
//!
//! Each plugin gets its own client whose redirect policy re-checks the allowlist, so a vendor
//! (or a hostile plugin's accomplice) cannot bounce a request to another host. Credentials
//! named by the plugin are looked up in its secret grants and attached here, marked sensitive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};

use super::CallState;
use super::carport::provider::http::{Credential, Error, Host, Request, Response};

const MAX_REDIRECTS: usize = 5;
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Headers the plugin may not set: they belong to the transport.
const TRANSPORT_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
];

/// One `allow` entry: `scheme://host[:port][/path-prefix]`, host possibly `*.domain`.
#[derive(Debug, Clone, PartialEq)]
struct EgressRule {
    scheme: String,
    host: String,
    port: u16,
    path_prefix: String,
}

impl EgressRule {
    fn parse(entry: &str) -> Result<EgressRule> {
        let (host_pattern, candidate) = match entry.split_once("://*.") {
            Some((scheme, rest)) => (true, format!("{scheme}://wildcard.{rest}")),
            None => (false, entry.to_string()),
        };
        let url = Url::parse(&candidate)
            .map_err(|error| anyhow::anyhow!("allow entry {entry:?} is not a URL: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("allow entry {entry:?}: only http and https are supported");
        }
        if url.query().is_some() || !url.username().is_empty() {
            bail!("allow entry {entry:?}: give scheme, host, optional port and path prefix only");
        }
        let Some(host) = url.host_str() else {
            bail!("allow entry {entry:?} has no host");
        };
        let host = match host_pattern {
            true => format!("*.{}", host.trim_start_matches("wildcard.")),
            false => host.to_string(),
        };
        Ok(EgressRule {
            scheme: url.scheme().to_string(),
            host,
            port: url.port_or_known_default().unwrap_or(443),
            path_prefix: url.path().to_string(),
        })
    }

    fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host_matches = match self.host.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => host.eq_ignore_ascii_case(&self.host),
        };
        host_matches
            && url.scheme() == self.scheme
            && url.port_or_known_default() == Some(self.port)
            && url.path().starts_with(&self.path_prefix)
    }
}

/// A plugin's outbound HTTP: its allowlist, limits and client.
pub struct Egress {
    plugin_id: String,
    rules: Arc<Vec<EgressRule>>,
    client: reqwest::Client,
    request_timeout: Duration,
    max_response_bytes: u64,
}

impl Egress {
    pub fn new(
        plugin_id: &str,
        allow: &[String],
        request_timeout: Duration,
        max_response_bytes: u64,
    ) -> Result<Egress> {
        let rules: Vec<EgressRule> = allow
            .iter()
            .map(|entry| EgressRule::parse(entry))
            .collect::<Result<_>>()?;
        let rules = Arc::new(rules);
        let redirect_rules = rules.clone();
        let client = reqwest::Client::builder()
            .user_agent(concat!("carport/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let allowed = redirect_rules.iter().any(|rule| rule.allows(attempt.url()));
                if attempt.previous().len() < MAX_REDIRECTS && allowed {
                    attempt.follow()
                } else {
                    // The plugin receives the 3xx itself and can explain it.
                    attempt.stop()
                }
            }))
            .build()?;
        Ok(Egress {
            plugin_id: plugin_id.to_string(),
            rules,
            client,
            request_timeout,
            max_response_bytes,
        })
    }

    fn check(&self, url: &Url) -> Result<(), String> {
        if self.rules.iter().any(|rule| rule.allows(url)) {
            return Ok(());
        }
        let plugin = &self.plugin_id;
        let origin = url.origin().ascii_serialization();
        Err(format!(
            "plugin `{plugin}` may not reach {url}: {origin} is not in its egress allowlist; to \
             allow it, add \"{origin}\" to `allow` under [plugins.{plugin}] in plugins.toml"
        ))
    }

    async fn send(&self, state: &CallState, request: Request) -> Result<Response, Error> {
        let plugin = &self.plugin_id;
        let url = Url::parse(&request.url)
            .map_err(|error| Error::Transport(format!("invalid URL {:?}: {error}", request.url)))?;
        self.check(&url).map_err(Error::Denied)?;
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Error::Transport(format!("invalid HTTP method {:?}", request.method)))?;
        let mut builder = self.client.request(method, url.clone());
        for (name, value) in &request.headers {
            if TRANSPORT_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(Error::Denied(format!(
                    "plugin `{plugin}` may not set the {name} header: the host's HTTP client owns it"
                )));
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Transport(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::Transport(format!("invalid value for header {name}")))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            if body.len() > MAX_REQUEST_BYTES {
                return Err(Error::Denied(format!(
                    "plugin `{plugin}` tried to send {} bytes; the limit is {MAX_REQUEST_BYTES}",
                    body.len()
                )));
            }
            builder = builder.body(body);
        }

        let grants = &state.grants;
        let builder = match &request.credential {
            None => builder,
            Some(Credential::Bearer(secret)) => {
                attach_secret(builder, grants, "authorization", secret, "Bearer ")?
            }
            Some(Credential::Header((name, secret))) => {
                attach_secret(builder, grants, name, secret, "")?
            }
            Some(Credential::Oauth(grant)) => {
                return self.send_with_oauth(builder, state, grant).await;
            }
        };
        self.exchange(builder, state.deadline).await
    }

    /// Sends with the grant's access token; on a 401, refreshes the token once and resends.
    async fn send_with_oauth(
        &self,
        builder: reqwest::RequestBuilder,
        state: &CallState,
        grant_name: &str,
    ) -> Result<Response, Error> {
        let plugin = &self.plugin_id;
        let secrets = &state.grants.secrets;
        let grant = state.grants.oauth.get(grant_name).ok_or_else(|| {
            Error::Denied(format!(
                "plugin `{plugin}` used OAuth grant `{grant_name}`, which plugins.toml does not \
                 configure; add [plugins.{plugin}.oauth.{grant_name}] with token_url and client_id"
            ))
        })?;
        let token = grant.token(secrets).await?;
        let retry = builder.try_clone();
        let response = self
            .exchange(bearer(builder, token.value.expose())?, state.deadline)
            .await?;
        match (response.status, retry) {
            (401, Some(retry)) => {
                let fresh = grant.replace_rejected(secrets, token.generation).await?;
                self.exchange(bearer(retry, fresh.value.expose())?, state.deadline)
                    .await
            }
            _ => Ok(response),
        }
    }

    async fn exchange(
        &self,
        builder: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<Response, Error> {
        let timeout = self
            .request_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let exchange = async {
            let mut response = builder.send().await.map_err(transport_error)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
                })
                .collect();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                if (body.len() + chunk.len()) as u64 > self.max_response_bytes {
                    return Err(Error::TooLarge(self.max_response_bytes));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(Error::Timeout))
    }
}

fn bearer(builder: reqwest::RequestBuilder, token: &str) -> Result<reqwest::RequestBuilder, Error> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::Auth("the access token is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(builder.header(reqwest::header::AUTHORIZATION, value))
}

/// Adds a granted secret as a header; the plugin named the secret, never saw its value.
fn attach_secret(
    builder: reqwest::RequestBuilder,
    grants: &super::Grants,
    header: &str,
    secret: &str,
    prefix: &str,
) -> Result<reqwest::RequestBuilder, Error> {
    let value = grants.secrets.resolve(secret).map_err(Error::Denied)?;
    let name = HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
        .map_err(|_| Error::Transport(format!("invalid header name {header:?}")))?;
    let mut value = HeaderValue::from_str(&format!("{prefix}{}", value.expose()))
        .map_err(|_| Error::Denied(format!("secret `{secret}` is not a valid header value")))?;
    value.set_sensitive(true);
    Ok(builder.header(name, value))
}

fn transport_error(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        return Error::Timeout;
    }
    // reqwest's Display hides the cause ("error sending request"); the chain says why.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Transport(message)
}

impl Host for CallState {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let started = Instant::now();
        let (method, url) = (request.method.clone(), request.url.clone());
        let grants = self.grants.clone();
        let result = grants.http.send(self, request).await;
        match &result {
            Ok(response) => tracing::debug!(
                plugin = self.plugin_id(),
                "{method} {url} -> {} in {:?}",
                response.status,
                started.elapsed()
            ),
            Err(Error::Denied(reason)) => {
                tracing::warn!(
                    plugin = self.plugin_id(),
                    "refused {method} {url}: {reason}"
                )
            }
            Err(error) => tracing::debug!(
                plugin = self.plugin_id(),
                "{method} {url} failed: {error:?}"
            ),
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entry: &str, url: &str) -> bool {
        EgressRule::parse(entry)
            .unwrap()
            .allows(&Url::parse(url).unwrap())
    }

    #[test]
    fn rules_match_scheme_host_port_and_path_prefix() {
        assert!(allows(
            "https://api.tessie.com",
            "https://api.tessie.com/VIN/state"
        ));
        assert!(allows(
            "https://API.tessie.com",
            "https://api.tessie.com:443/x"
        ));
        assert!(!allows("https://api.tessie.com", "http://api.tessie.com/x"));
        assert!(!allows(
            "https://api.tessie.com",
            "https://api.tessie.com:8443/x"
        ));
        assert!(!allows(
            "https://api.tessie.com",
            "https://api.tessie.com.evil.net/x"
        ));
        assert!(allows("http://127.0.0.1:8080", "http://127.0.0.1:8080/a"));
        assert!(!allows("http://127.0.0.1:8080", "http://127.0.0.1:8081/a"));
        assert!(allows("https://x.com/api/", "https://x.com/api/1"));
        assert!(!allows("https://x.com/api/", "https://x.com/admin"));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        assert!(allows(
            "https://*.tesla.com",
            "https://fleet-api.prd.na.vn.cloud.tesla.com/x"
        ));
        assert!(!allows("https://*.tesla.com", "https://tesla.com/x"));
        assert!(!allows("https://*.tesla.com", "https://eviltesla.com/x"));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        assert!(EgressRule::parse("api.tessie.com").is_err());
        assert!(EgressRule::parse("ftp://x.com").is_err());
        assert!(EgressRule::parse("https://u:p@x.com").is_err());
    }
}
