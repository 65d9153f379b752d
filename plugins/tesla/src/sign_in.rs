//! Signing the owner in to Tesla from the assistant (`sign_in`), through the host's `sign-in`
//! capability: the link goes to the user, the tokens go to the host, never here.
//!
//! After a sign-in the account's region is asked once (`GET /api/1/users/region`) and its
//! `fleet_api_base_url` becomes the base URL, remembered in state like a 421's; the allowlist
//! still decides whether carport may go there. Since the browser comes back to the host, not to
//! the plugin, a started sign-in leaves a mark in state and the first call after it completes
//! does the region lookup.

use carport_guest::http::Request;
use carport_guest::sign_in as host;
use carport_guest::{Annotations, Output, Tool, ToolError, state};
use serde_json::{Map, Value, json};

use super::{Api, REGION_KEY};

pub const TOOL: &str = "sign_in";
/// Present from a started sign-in until the region of the signed-in account is known.
const REGION_DUE_KEY: &str = "sign_in.region_due";

pub fn tool() -> Tool {
    Tool::new(
        TOOL,
        "Sign in to Tesla",
        "Sign the car owner in to Tesla in their browser. start (default): a link for the user. \
         check: whether they completed it. finish: redirected_url, the address their browser \
         ended on when it could not reach carport.",
        json!({
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": ["start", "check", "finish"]},
                "redirected_url": {"type": "string", "minLength": 1},
                "locale": {"type": "string", "description": "language of Tesla's page, e.g. en-US"}
            },
            "additionalProperties": false
        }),
        Annotations {
            read_only: false,
            destructive: false,
            idempotent: false,
            open_world: true,
        },
    )
    .with_output_schema(json!({
        "type": "object",
        "properties": {
            "signed_in": {"type": "boolean"},
            "link": {"type": "string"},
            "base_url": {"type": "string"}
        },
        "required": ["signed_in"]
    }))
}

pub fn run(api: &mut Api, arguments: &Map<String, Value>) -> Result<Output, ToolError> {
    let text = |key: &str| arguments.get(key).and_then(Value::as_str);
    match text("action").unwrap_or("start") {
        "start" => {
            let extra: Vec<(String, String)> = text("locale")
                .map(|locale| vec![("locale".to_string(), locale.to_string())])
                .unwrap_or_default();
            let link = host::start(&extra).map_err(ToolError::Denied)?;
            state::set(REGION_DUE_KEY, b"1").map_err(ToolError::internal)?;
            Ok(Output::json_with_text(
                &json!({"signed_in": false, "link": link}),
                format!(
                    "Give the user this link to sign in to Tesla and approve carport's access:\n\
                     {link}\nTheir browser comes back to carport on this machine. Then call \
                     sign_in with action check. If the browser shows that it cannot connect \
                     (carport runs elsewhere), ask the user for the whole address in the \
                     address bar and call sign_in with action finish and redirected_url."
                ),
            ))
        }
        "check" => {
            let account = host::status().map_err(ToolError::Denied)?;
            report(api, account.signed_in)
        }
        "finish" => {
            let url = text("redirected_url").ok_or_else(|| {
                ToolError::invalid(
                    "action finish needs redirected_url, the address pasted by the user",
                )
            })?;
            let account = host::finish(url).map_err(ToolError::Auth)?;
            report(api, account.signed_in)
        }
        other => Err(ToolError::invalid(format!("unknown action {other}"))),
    }
}

fn report(api: &mut Api, signed_in: bool) -> Result<Output, ToolError> {
    if !signed_in {
        return Ok(Output::json_with_text(
            &json!({"signed_in": false}),
            "Not signed in yet: the user has not approved in the browser (or the link timed \
             out; start again).",
        ));
    }
    let note = settle_region(api)?.unwrap_or_default();
    Ok(Output::json_with_text(
        &json!({"signed_in": true, "base_url": api.base_url}),
        format!("Signed in to Tesla; requests go to {}.{note}", api.base_url),
    ))
}

/// After a completed sign-in, asks Tesla where the account lives and moves there if the
/// allowlist permits; a note for the user when it does not.
pub fn settle_region(api: &mut Api) -> Result<Option<String>, ToolError> {
    if !matches!(state::get(REGION_DUE_KEY), Ok(Some(_))) {
        return Ok(None);
    }
    if !host::status().is_ok_and(|account| account.signed_in) {
        return Ok(None);
    }
    let region: Value = api
        .authorised(Request::get(format!("{}/api/1/users/region", api.base_url)))
        .send()?
        .success()?
        .json()?;
    let Some(home) = region["response"]["fleet_api_base_url"].as_str() else {
        return Err(ToolError::internal(
            "Tesla's /api/1/users/region answered without fleet_api_base_url",
        ));
    };
    let home = home.trim_end_matches('/').to_string();
    let _ = state::delete(REGION_DUE_KEY);
    if home == api.base_url {
        return Ok(None);
    }
    // The allowlist decides: a region outside it is reported, not followed.
    let probe = api
        .authorised(Request::get(format!("{home}/api/1/users/region")))
        .send();
    if let Err(ToolError::Denied(reason)) = probe {
        return Ok(Some(format!(
            " Tesla says this account lives at {home}, which carport may not reach: {reason}"
        )));
    }
    let _ = state::set(REGION_KEY, home.as_bytes());
    carport_guest::log::info(&format!("signed-in account lives at {home}; switching"));
    api.base_url = home;
    Ok(None)
}
