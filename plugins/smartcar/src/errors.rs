//! Smartcar's errors as tool errors that say what to do.
//!
//! v3 answers JSON:API error documents, `{"errors": [{status, type, code, title, detail,
//! resolution, …}]}`; the older shape (still in Smartcar's error pages) is one flat object with
//! `type`, `code`, `description`, `resolution`. Both are read. A rate limit is never retried:
//! the error carries `retry-after`. A 401 here means the host already fetched a new token and
//! resent once, so the credentials themselves are wrong.

use carport_guest::http::Response;
use carport_guest::{ToolError, UpstreamError};
use serde_json::Value;

/// What the call needed, so an error can name the missing piece.
pub struct Needs {
    /// The permission the user must grant (e.g. `control_security`), when one applies.
    permission: Option<&'static str>,
    /// The thing a 404 is about: ("connection", id).
    thing: Option<(&'static str, String)>,
}

impl Needs {
    pub fn nothing() -> Needs {
        Needs {
            permission: None,
            thing: None,
        }
    }

    pub fn permission(permission: &'static str) -> Needs {
        Needs {
            permission: Some(permission),
            thing: None,
        }
    }

    pub fn thing(kind: &'static str, id: &str) -> Needs {
        Needs {
            permission: None,
            thing: Some((kind, id.to_string())),
        }
    }
}

/// The fields of one Smartcar error, whichever shape it came in.
#[derive(Debug, Default, PartialEq)]
pub struct SmartcarError {
    pub kind: Option<String>,
    pub code: Option<String>,
    pub detail: Option<String>,
    pub resolution: Option<String>,
}

impl SmartcarError {
    pub fn parse(body: &[u8]) -> SmartcarError {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return SmartcarError::default();
        };
        let error = match value["errors"].as_array().and_then(|errors| errors.first()) {
            Some(first) => first,
            None => &value,
        };
        let text = |field: &str| {
            error[field]
                .as_str()
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        };
        SmartcarError {
            kind: text("type"),
            code: text("code"),
            detail: text("detail")
                .or_else(|| text("description"))
                .or_else(|| text("title")),
            resolution: error["resolution"]["type"]
                .as_str()
                .or_else(|| error["resolution"].as_str())
                .map(str::to_string),
        }
    }

    fn label(&self) -> String {
        match (&self.kind, &self.code) {
            (Some(kind), Some(code)) => format!("{kind}:{code}"),
            (Some(kind), None) => kind.clone(),
            (None, Some(code)) => code.clone(),
            (None, None) => "error".into(),
        }
    }
}

pub fn tool_error(response: &Response, needs: &Needs) -> ToolError {
    let error = SmartcarError::parse(&response.body);
    let status = response.status;
    let label = error.label();
    let said = error
        .detail
        .clone()
        .unwrap_or_else(|| response.vendor_message());
    let retry_after = response.retry_after_seconds();
    let upstream = |message: String| {
        ToolError::Upstream(UpstreamError {
            status,
            message,
            retry_after_seconds: retry_after,
        })
    };
    let kind = error.kind.as_deref().unwrap_or_default();
    let code = error.code.as_deref().unwrap_or_default();
    if status == 401 {
        return ToolError::Auth(format!(
            "Smartcar refused the application's access token even after a fresh one \
             ({label}: {said}); check client_id and the client_secret secret under \
             [plugins.smartcar.oauth.application] in plugins.toml (API Credentials tab of the \
             Smartcar Dashboard)"
        ));
    }
    if status == 429 || kind == "RATE_LIMIT" {
        let when = match retry_after {
            Some(seconds) => format!("come back in {seconds} s"),
            None => "come back in a few minutes".into(),
        };
        return upstream(format!(
            "Smartcar rate limit ({label}): {said}; {when}. carport does not retry, to avoid \
             draining the car's battery and a longer upstream block"
        ));
    }
    if status == 403 || kind == "PERMISSION" || code == "PERMISSION" {
        let fix = match needs.permission {
            Some(permission) => format!(
                "the user has not granted the `{permission}` permission to this application: \
                 have the owner reconnect the car through Smartcar Connect with \
                 `{permission}` in the scope"
            ),
            None => "the user has not granted the permission this needs: have the owner \
                     reconnect the car through Smartcar Connect with the permission in the scope"
                .into(),
        };
        return upstream(format!("Smartcar refused ({label}): {said}; {fix}"));
    }
    if kind == "VEHICLE_STATE" {
        let fix = match code {
            "ASLEEP" => {
                "the car is asleep and did not answer; Smartcar does not wake it for this: try \
                 again when the car is awake (driven, unlocked with its key, or plugged in)"
            }
            "UNREACHABLE" => {
                "the car is unreachable (no mobile coverage, e.g. in a garage): try again when \
                 it is back in coverage"
            }
            "CHARGING_PLUG_NOT_CONNECTED" => "plug the charging cable in first",
            "REMOTE_ACCESS_DISABLED" => "turn remote access on in the car's settings",
            _ => "the car is not in a state that allows this; check vehicle_state",
        };
        return upstream(format!("Smartcar: {label}: {said}; {fix}"));
    }
    if status == 404 || kind == "RESOURCE_NOT_FOUND" {
        let fix = match &needs.thing {
            Some((thing, id)) => format!(
                "no {thing} {id} in this application: list_connections (or list_applications) \
                 shows the valid IDs"
            ),
            None => "check vehicle_id and user_id with list_connections: the vehicle must be \
                     connected by that user"
                .into(),
        };
        return upstream(format!("Smartcar: {label}: {said}; {fix}"));
    }
    if kind == "COMPATIBILITY" {
        return upstream(format!(
            "Smartcar: {label}: {said}; this car (or make) does not support it"
        ));
    }
    if kind == "BILLING" {
        return upstream(format!(
            "Smartcar: {label}: {said}; the Smartcar plan's limits were reached: see the \
             Smartcar Dashboard's billing page"
        ));
    }
    let fix = match error.resolution.as_deref() {
        Some("RETRY_LATER") => "Smartcar suggests trying again later",
        Some("REAUTHENTICATE") => "the owner must reconnect the car through Smartcar Connect",
        Some("CONTACT_SUPPORT") => "Smartcar suggests contacting its support",
        _ => "see Smartcar's error reference for this code",
    };
    upstream(format!(
        "Smartcar answered HTTP {status} ({label}): {said}; {fix}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v3_error_documents_and_the_flat_shape() {
        let v3 = br#"{"errors":[{"status":"409","type":"VEHICLE_STATE","code":"ASLEEP",
            "title":"Vehicle asleep","detail":"The vehicle is asleep.","resolution":{"type":"RETRY_LATER"}}]}"#;
        let flat = br#"{"type":"RATE_LIMIT","code":"VEHICLE","description":"Too many.",
            "statusCode":429,"resolution":{"type":"RETRY_LATER"}}"#;
        assert_eq!(
            SmartcarError::parse(v3),
            SmartcarError {
                kind: Some("VEHICLE_STATE".into()),
                code: Some("ASLEEP".into()),
                detail: Some("The vehicle is asleep.".into()),
                resolution: Some("RETRY_LATER".into()),
            }
        );
        let parsed = SmartcarError::parse(flat);
        assert_eq!(parsed.label(), "RATE_LIMIT:VEHICLE");
        assert_eq!(parsed.detail.as_deref(), Some("Too many."));
        assert_eq!(SmartcarError::parse(b"<html>"), SmartcarError::default());
    }
}
