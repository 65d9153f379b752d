//! `http`: outbound requests, allowed only to the plugin's egress allowlist.
//!
//! Each plugin gets its own clients whose redirect policy re-checks the allowlist, so a vendor
//! (or a hostile plugin's accomplice) cannot bounce a request to another host. Host names are
//! resolved by carport itself and only vetted addresses are connected to: a name that resolves
//! (or is re-pointed, DNS rebinding) to a loopback, private or link-local address is refused;
//! such an address is reachable only through an `allow` entry that names it literally
//! (`http://192.168.1.20:8080`), which never goes through name resolution. Proxy settings from the environment
//! never apply.
//!
//! Credentials named by the plugin are looked up in its grants and attached here, marked
//! sensitive, only to the origins each credential is bound to, only in `Authorization` or a
//! header the grant names, never over plain `http` except to loopback or an origin the grant
//! names explicitly, and never across a redirect to another origin. Whatever the server sends
//! back has the attached value blanked out, so an endpoint that echoes requests cannot hand it
//! to the plugin.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};

use super::CallState;
use super::carport::provider::http::{Credential, Error, Host, Request, Response};
use super::secrets::SecretValue;

const MAX_REDIRECTS: usize = 5;
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Request headers a plugin may set, and their bytes together: the host's buffers stay small.
const MAX_REQUEST_HEADERS: usize = 100;
const MAX_REQUEST_HEADER_BYTES: usize = 64 * 1024;
/// What a plugin receives instead of a credential value echoed back by a server.
const REDACTED: &str = "[redacted by carport]";
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
/// Headers a credential may travel in without a `header` key in its grant.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key"];

/// One `allow` entry: `scheme://host[:port][/path-prefix]`, host possibly `*.domain`.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressRule {
    scheme: String,
    host: String,
    port: u16,
    path_prefix: String,
}

impl EgressRule {
    pub fn parse(entry: &str) -> Result<EgressRule> {
        const PLACEHOLDER: &str = "wildcard-placeholder.";
        let (host_pattern, candidate) = match entry.split_once("://*.") {
            Some((scheme, rest)) => (true, format!("{scheme}://{PLACEHOLDER}{rest}")),
            None => (false, entry.to_string()),
        };
        let url = Url::parse(&candidate)
            .map_err(|error| anyhow::anyhow!("allow entry {entry:?} is not a URL: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("allow entry {entry:?}: only http and https are supported");
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            bail!("allow entry {entry:?}: give scheme, host, optional port and path prefix only");
        }
        let Some(host) = url.host_str() else {
            bail!("allow entry {entry:?} has no host");
        };
        let host = match host_pattern {
            true => match host.strip_prefix(PLACEHOLDER) {
                Some(domain) if !domain.is_empty() => format!("*.{domain}"),
                _ => bail!("allow entry {entry:?}: `*.` must be followed by a domain"),
            },
            false => host.to_string(),
        };
        Ok(EgressRule {
            scheme: url.scheme().to_string(),
            host,
            port: url.port_or_known_default().unwrap_or(443),
            path_prefix: url.path().to_string(),
        })
    }

    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host_matches = match self.host.strip_prefix("*.") {
            Some(domain) => {
                literal_address(url).is_none()
                    && host
                        .strip_suffix(domain)
                        .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1)
            }
            None => host.eq_ignore_ascii_case(&self.host),
        };
        host_matches
            && url.scheme() == self.scheme
            && url.port_or_known_default() == Some(self.port)
            && self.path_matches(url.path())
    }

    /// A prefix ends on a segment boundary: `/api` admits `/api` and `/api/x`, not `/apix`.
    fn path_matches(&self, path: &str) -> bool {
        let prefix = self.path_prefix.as_str();
        match path.strip_prefix(prefix) {
            Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

/// The origins one credential may be attached to, from its grant in plugins.toml.
#[derive(Debug, Clone)]
pub struct CredentialScope {
    rules: Vec<EgressRule>,
    /// Written out by the operator (`origins`), rather than the default: only then may it
    /// name a plain-`http` origin beyond loopback.
    explicit: bool,
    /// A header the grant names for this credential, besides [`CREDENTIAL_HEADERS`].
    header: Option<String>,
}

impl CredentialScope {
    pub fn new(
        origins: &[String],
        explicit: bool,
        header: Option<&str>,
    ) -> Result<CredentialScope> {
        Ok(CredentialScope {
            rules: origins
                .iter()
                .map(|entry| EgressRule::parse(entry))
                .collect::<Result<_>>()?,
            explicit,
            header: header.map(str::to_ascii_lowercase),
        })
    }

    /// Why `credential` (described for the message, e.g. "secret `token`") may not go to `url`
    /// in header `header`, if it may not.
    fn refusal(
        &self,
        plugin: &str,
        credential: &str,
        table: &str,
        url: &Url,
        header: &str,
    ) -> Option<String> {
        let origin = url.origin().ascii_serialization();
        if !self.rules.iter().any(|rule| rule.allows(url)) {
            return Some(format!(
                "plugin `{plugin}` may not send {credential} to {origin}: it is bound to other \
                 origins; to allow it, add \"{origin}\" to `origins` under {table} in plugins.toml"
            ));
        }
        if url.scheme() == "http" && !is_loopback_host(url) && !self.explicit {
            return Some(format!(
                "plugin `{plugin}` may not send {credential} over plain http to {origin}: \
                 credentials travel over https, or http to loopback; name \"{origin}\" in \
                 `origins` under {table} to accept an unencrypted link"
            ));
        }
        let header = header.to_ascii_lowercase();
        if !CREDENTIAL_HEADERS.contains(&header.as_str()) && self.header.as_ref() != Some(&header) {
            return Some(format!(
                "plugin `{plugin}` may not put {credential} in the {header} header: credentials \
                 go in Authorization or X-Api-Key; set header = \"{header}\" under {table} if \
                 the vendor expects it there"
            ));
        }
        None
    }
}

/// The address a URL names literally (`http://127.0.0.1/`, `http://[::1]/`), if it does.
fn literal_address(url: &Url) -> Option<IpAddr> {
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

fn is_loopback_host(url: &Url) -> bool {
    match literal_address(url) {
        Some(address) => address.is_loopback(),
        None => url
            .host_str()
            .is_some_and(|name| name.eq_ignore_ascii_case("localhost")),
    }
}

/// Whether an address is reachable on the public internet; everything else (loopback,
/// private, link-local, shared, documentation, multicast…) is refused unless named literally.
fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || (first == 0x0064 && v6.segments()[1] == 0xff9b)
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

/// Why a resolved address was refused; recognised in the error chain to answer `denied`.
#[derive(Debug)]
struct AddressRefused(String);

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for AddressRefused {}

/// carport's own resolution step: reqwest connects only to the addresses this returns. URLs
/// with a literal address skip it: the allowlist has matched that address exactly.
struct VettingResolver {
    plugin_id: String,
}

impl reqwest::dns::Resolve for VettingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        let plugin = self.plugin_id.clone();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let (vetted, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
                .into_iter()
                .partition(|address| is_public(address.ip()));
            if vetted.is_empty() && !refused.is_empty() {
                let address = refused[0].ip();
                let refusal = AddressRefused(format!(
                    "plugin `{plugin}` may not reach {name}: it resolves to {address}, a \
                     loopback, private or link-local address; carport connects to those only \
                     when an `allow` entry under [plugins.{plugin}] names the address itself \
                     (e.g. http://192.168.1.20:8080), never through a name"
                ));
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(vetted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A plugin's outbound HTTP: its allowlist, limits and clients.
pub struct Egress {
    plugin_id: String,
    rules: Arc<Vec<EgressRule>>,
    resolver: Arc<VettingResolver>,
    /// Follows redirects that stay within the allowlist. Built at the first request: a TLS
    /// client loads the system's root certificates, a few milliseconds that start-up is spared.
    client: OnceLock<reqwest::Client>,
    /// For requests that carry a credential: also stops at a redirect that leaves the origin,
    /// so the credential never follows it. The plugin receives the 3xx itself.
    credentialed_client: OnceLock<reqwest::Client>,
    request_timeout: Duration,
    max_response_bytes: u64,
}

/// A credential ready to attach: where it goes, its value, and whether the plugin may see it.
struct Attachment {
    header: HeaderName,
    value: SecretValue,
    /// Set for attach-only secrets and access tokens: blanked out of the response.
    hidden: bool,
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
        let resolver = Arc::new(VettingResolver {
            plugin_id: plugin_id.to_string(),
        });
        Ok(Egress {
            plugin_id: plugin_id.to_string(),
            resolver,
            client: OnceLock::new(),
            credentialed_client: OnceLock::new(),
            rules,
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
        let keep_origin = request.credential.is_some();
        let slot = match keep_origin {
            true => &self.credentialed_client,
            false => &self.client,
        };
        let client = match slot.get() {
            Some(client) => client,
            None => {
                let built = client(&self.rules, &self.resolver, keep_origin)
                    .map_err(|error| Error::Transport(format!("no HTTP client: {error}")))?;
                slot.get_or_init(|| built)
            }
        };
        let header_bytes: usize = request
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        if request.headers.len() > MAX_REQUEST_HEADERS || header_bytes > MAX_REQUEST_HEADER_BYTES {
            return Err(Error::Denied(format!(
                "plugin `{plugin}` tried to send {} headers of {header_bytes} bytes; the limit is \
                 {MAX_REQUEST_HEADERS} headers of {MAX_REQUEST_HEADER_BYTES} bytes together",
                request.headers.len()
            )));
        }
        let mut builder = client.request(method, url.clone());
        for (name, value) in &request.headers {
            let lowercase = name.to_ascii_lowercase();
            if TRANSPORT_HEADERS.contains(&lowercase.as_str()) {
                return Err(Error::Denied(format!(
                    "plugin `{plugin}` may not set the {name} header: the host's HTTP client owns it"
                )));
            }
            // A compressed answer would hide an echoed credential from redaction.
            if lowercase == "accept-encoding" && request.credential.is_some() {
                return Err(Error::Denied(format!(
                    "plugin `{plugin}` may not set {name} on a request that carries a \
                     credential: the host reads such answers uncompressed"
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
        let attachment = match &request.credential {
            None => None,
            Some(Credential::Bearer(secret)) => {
                Some(self.secret_attachment(grants, &url, "authorization", secret, "Bearer ")?)
            }
            Some(Credential::Header((name, secret))) => {
                Some(self.secret_attachment(grants, &url, name, secret, "")?)
            }
            Some(Credential::Oauth(grant)) => {
                return self.send_with_oauth(builder, state, &url, grant).await;
            }
        };
        let (builder, hidden) = match attachment {
            Some(attachment) => {
                let hidden = attachment.hidden.then(|| attachment.value.clone());
                (attach(builder, attachment)?, hidden)
            }
            None => (builder, None),
        };
        let response = self.exchange(builder, state.deadline).await?;
        Ok(redact(response, hidden.as_ref()))
    }

    /// A granted secret, checked against its grant for this URL and header.
    fn secret_attachment(
        &self,
        grants: &super::Grants,
        url: &Url,
        header: &str,
        secret: &str,
        prefix: &str,
    ) -> Result<Attachment, Error> {
        let plugin = &self.plugin_id;
        let grant = grants.secrets.grant(secret).map_err(Error::Denied)?;
        let table = format!("[plugins.{plugin}.secrets.{secret}]");
        if let Some(refusal) =
            grant
                .scope
                .refusal(plugin, &format!("secret `{secret}`"), &table, url, header)
        {
            return Err(Error::Denied(refusal));
        }
        let value = grants.secrets.resolve(secret).map_err(Error::Denied)?;
        let name = HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
            .map_err(|_| Error::Transport(format!("invalid header name {header:?}")))?;
        HeaderValue::from_str(value.expose())
            .map_err(|_| Error::Denied(format!("secret `{secret}` is not a valid header value")))?;
        Ok(Attachment {
            header: name,
            value: SecretValue::new(format!("{prefix}{}", value.expose())),
            hidden: !grant.readable,
        })
    }

    /// Sends with the grant's access token; on a 401, refreshes the token once and resends.
    /// Waiting for the token (a refresh by another call, the token endpoint) ends by the call's
    /// deadline.
    async fn send_with_oauth(
        &self,
        builder: reqwest::RequestBuilder,
        state: &CallState,
        url: &Url,
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
        let table = format!("[plugins.{plugin}.oauth.{grant_name}]");
        if let Some(refusal) = grant.origins.refusal(
            plugin,
            &format!("the access token of `{grant_name}`"),
            &table,
            url,
            "authorization",
        ) {
            return Err(Error::Denied(refusal));
        }
        let deadline = state.deadline;
        let token = within(deadline, grant.token(secrets)).await?;
        let retry = builder.try_clone();
        let response = self
            .exchange(bearer(builder, token.value.expose())?, deadline)
            .await?;
        let (response, token) = match (response.status, retry) {
            (401, Some(retry)) => {
                let fresh =
                    within(deadline, grant.replace_rejected(secrets, token.generation)).await?;
                let response = self
                    .exchange(bearer(retry, fresh.value.expose())?, deadline)
                    .await?;
                (response, fresh)
            }
            (_, _) => (response, token),
        };
        Ok(redact(response, Some(&token.value)))
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

/// A client that connects only to vetted addresses, ignores proxy settings from the
/// environment, and follows redirects only within the allowlist (and, with `keep_origin`, only
/// within the request's origin).
fn client(
    rules: &Arc<Vec<EgressRule>>,
    resolver: &Arc<VettingResolver>,
    keep_origin: bool,
) -> Result<reqwest::Client> {
    let redirect_rules = rules.clone();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let allowed = redirect_rules.iter().any(|rule| rule.allows(attempt.url()));
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() < MAX_REDIRECTS && allowed && (same_origin || !keep_origin) {
            attempt.follow()
        } else {
            // The plugin receives the 3xx itself and can explain it.
            attempt.stop()
        }
    });
    Ok(reqwest::Client::builder()
        .user_agent(concat!("carport/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .no_proxy()
        .dns_resolver(resolver.clone())
        .redirect(policy)
        .build()?)
}

/// Waits for `future`, but not past `deadline`.
async fn within<T>(
    deadline: Instant,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout_at(deadline.into(), future)
        .await
        .unwrap_or(Err(Error::Timeout))
}

fn bearer(builder: reqwest::RequestBuilder, token: &str) -> Result<reqwest::RequestBuilder, Error> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::Auth("the access token is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(builder.header(reqwest::header::AUTHORIZATION, value))
}

fn attach(
    builder: reqwest::RequestBuilder,
    attachment: Attachment,
) -> Result<reqwest::RequestBuilder, Error> {
    let mut value = HeaderValue::from_str(attachment.value.expose())
        .map_err(|_| Error::Denied("the credential is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(builder.header(attachment.header, value))
}

/// Blanks out a hidden credential wherever the server echoed it: headers and body.
fn redact(mut response: Response, hidden: Option<&SecretValue>) -> Response {
    let Some(hidden) = hidden else {
        return response;
    };
    // The bare value as well as "Bearer <value>": servers echo either.
    let value = hidden.expose();
    let bare = value.strip_prefix("Bearer ").unwrap_or(value);
    if bare.is_empty() {
        return response;
    }
    for (_, header) in &mut response.headers {
        if header.contains(bare) {
            *header = header.replace(bare, REDACTED);
        }
    }
    let needle = bare.as_bytes();
    if response
        .body
        .windows(needle.len())
        .any(|window| window == needle)
    {
        let mut redacted = Vec::with_capacity(response.body.len());
        let mut rest = response.body.as_slice();
        while !rest.is_empty() {
            if rest.starts_with(needle) {
                redacted.extend_from_slice(REDACTED.as_bytes());
                rest = &rest[needle.len()..];
            } else {
                redacted.push(rest[0]);
                rest = &rest[1..];
            }
        }
        response.body = redacted;
    }
    response
}

fn transport_error(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        return Error::Timeout;
    }
    // reqwest's Display hides the cause ("error sending request"); the chain says why.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<AddressRefused>() {
            return Error::Denied(refused.to_string());
        }
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
    fn path_prefixes_end_on_a_segment_boundary() {
        assert!(allows("https://x.com/api", "https://x.com/api"));
        assert!(allows("https://x.com/api", "https://x.com/api/v1"));
        assert!(!allows("https://x.com/api", "https://x.com/apix"));
        assert!(!allows("https://x.com/api", "https://x.com/api-admin/x"));
        assert!(!allows("https://x.com/api", "https://x.com/api/../admin"));
    }

    #[test]
    fn a_wildcard_keeps_its_whole_domain() {
        assert!(allows("https://*.wildcard.io", "https://a.wildcard.io/x"));
        assert!(!allows("https://*.wildcard.io", "https://evil.io/x"));
        assert!(!allows("https://*.wildcard.io", "https://a.b.io/x"));
        let numeric = Url::parse("https://127.0.0.1/x").unwrap();
        // Refused outright as an entry, or at least never matching an address.
        if let Ok(rule) = EgressRule::parse("https://*.0.1") {
            assert!(!rule.allows(&numeric));
        }
        assert!(!allows("https://*.tesla.com", "https://127.0.0.1/x"));
    }

    #[test]
    fn userinfo_fragments_and_numeric_hosts_do_not_fool_the_allowlist() {
        assert!(!allows(
            "https://api.tessie.com",
            "https://api.tessie.com@evil.net/x"
        ));
        assert!(allows(
            "https://api.tessie.com",
            "https://user@api.tessie.com/x#@evil.net"
        ));
        assert!(allows("http://127.0.0.1:80", "http://2130706433/x"));
        assert!(!allows("http://10.0.0.1", "http://[::ffff:10.0.0.1]/x"));
    }

    #[test]
    fn only_public_addresses_are_reachable_by_name() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(!is_public(address.parse().unwrap()), "{address}");
        }
        for address in ["93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(address.parse().unwrap()), "{address}");
        }
    }

    #[test]
    fn echoed_credentials_are_blanked_out() {
        let response = Response {
            status: 200,
            headers: vec![("x-echo".into(), "Bearer s3cr3t-value".into())],
            body: br#"{"authorization":"Bearer s3cr3t-value","n":1}"#.to_vec(),
        };
        let hidden = SecretValue::new("Bearer s3cr3t-value".into());
        let response = redact(response, Some(&hidden));
        assert_eq!(response.headers[0].1, format!("Bearer {REDACTED}"));
        assert_eq!(
            String::from_utf8(response.body).unwrap(),
            format!(r#"{{"authorization":"Bearer {REDACTED}","n":1}}"#)
        );
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
