//! Outbound HTTP through the host's `http` capability.
//!
//! The host enforces the egress allowlist, timeouts and size caps and attaches credentials; this
//! module only makes requests pleasant to build and maps vendor failures to [`ToolError`]s an
//! assistant can act on.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::carport::provider::http::{self as host, Credential};
use crate::{ToolError, UpstreamError};

pub struct Request {
    method: &'static str,
    url: String,
    query: Option<form_urlencoded::Serializer<'static, String>>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    credential: Option<Credential>,
}

impl Request {
    pub fn new(method: &'static str, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            query: None,
            headers: vec![("accept".into(), "application/json".into())],
            body: None,
            credential: None,
        }
    }

    pub fn get(url: impl Into<String>) -> Request {
        Request::new("GET", url)
    }

    pub fn post(url: impl Into<String>) -> Request {
        Request::new("POST", url)
    }

    /// Adds `name=value` to the query string, percent-encoded.
    pub fn query(mut self, name: &str, value: &str) -> Request {
        self.query
            .get_or_insert_with(|| form_urlencoded::Serializer::new(String::new()))
            .append_pair(name, value);
        self
    }

    /// Asks the host to attach the access token of the plugin's `[oauth.<grant>]` table; the
    /// host refreshes it (and resends once) when the vendor answers 401.
    pub fn oauth(mut self, grant: &str) -> Request {
        self.credential = Some(Credential::Oauth(grant.to_string()));
        self
    }

    /// Asks the host to send the named secret as `Authorization: Bearer …`.
    pub fn bearer_secret(mut self, secret: &str) -> Request {
        self.credential = Some(Credential::Bearer(secret.to_string()));
        self
    }

    /// Asks the host to send the named secret as the whole value of `header` (e.g. an
    /// `Authorization: Basic …` the user stored as the secret).
    pub fn header_secret(mut self, header: &str, secret: &str) -> Request {
        self.credential = Some(Credential::Header((header.to_string(), secret.to_string())));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn json(mut self, body: &Value) -> Request {
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self.body = Some(body.to_string().into_bytes());
        self
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(mut self, fields: &[(&str, &str)]) -> Request {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            body.append_pair(name, value);
        }
        self.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        self.body = Some(body.finish().into_bytes());
        self
    }

    pub fn send(self) -> Result<Response, ToolError> {
        let url = match self.query {
            Some(mut query) => {
                let separator = if self.url.contains('?') { '&' } else { '?' };
                format!("{}{separator}{}", self.url, query.finish())
            }
            None => self.url,
        };
        let request = host::Request {
            method: self.method.to_string(),
            url: url.clone(),
            headers: self.headers,
            body: self.body,
            credential: self.credential,
        };
        match host::send(&request) {
            Ok(response) => Ok(Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(host::Error::Denied(message)) => Err(ToolError::Denied(message)),
            Err(host::Error::Auth(message)) => Err(ToolError::Auth(message)),
            Err(host::Error::Timeout) => Err(ToolError::Upstream(UpstreamError {
                status: 0,
                message: format!("no answer from {url} before the timeout; try again later"),
                retry_after_seconds: None,
            })),
            Err(host::Error::TooLarge(limit)) => Err(ToolError::Upstream(UpstreamError {
                status: 0,
                message: format!("the answer from {url} is larger than the {limit}-byte limit"),
                retry_after_seconds: None,
            })),
            Err(host::Error::Transport(message)) => Err(ToolError::Upstream(UpstreamError {
                status: 0,
                message: format!("could not reach {url}: {message}"),
                retry_after_seconds: None,
            })),
        }
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, whatever the status.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ToolError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            ToolError::internal(format!(
                "the vendor's answer (HTTP {}) is not the expected JSON: {error}",
                self.status
            ))
        })
    }

    /// The response if its status is 2xx, else the matching [`ToolError`].
    pub fn success(self) -> Result<Response, ToolError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(self.into_error())
        }
    }

    /// The vendor's own words: the usual JSON error fields, else the start of the body.
    pub fn vendor_message(&self) -> String {
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&self.body) {
            let fields = ["error_description", "error", "message", "reason"];
            let said: Vec<&str> = fields
                .iter()
                .filter_map(|field| body.get(*field)?.as_str())
                .filter(|text| !text.is_empty())
                .collect();
            if !said.is_empty() {
                return said.join(": ");
            }
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.is_empty() {
            "(empty body)".to_string()
        } else {
            text.chars().take(300).collect()
        }
    }

    /// Seconds to wait, from `Retry-After` (delta seconds) or `RateLimit-Reset`.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        ["retry-after", "ratelimit-reset", "x-ratelimit-reset"]
            .iter()
            .find_map(|name| self.header(name)?.trim().parse().ok())
    }

    pub fn into_error(self) -> ToolError {
        let message = self.vendor_message();
        match self.status {
            401 => ToolError::Auth(format!(
                "the vendor rejected the access token (HTTP 401: {message}); the token is \
                 missing, expired or revoked: put a valid one in this plugin's secret in \
                 plugins.toml"
            )),
            status => ToolError::Upstream(UpstreamError {
                status,
                retry_after_seconds: self.retry_after_seconds(),
                message,
            }),
        }
    }
}
