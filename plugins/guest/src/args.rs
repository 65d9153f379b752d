//! Typed access to a tool's JSON arguments.
//!
//! The host has already validated the arguments against the tool's input schema, so a
//! deserialisation failure here means the schema and the plugin disagree: reported as invalid
//! arguments with serde's message, which names the field.

use serde::de::DeserializeOwned;

use crate::ToolError;

pub fn parse<T: DeserializeOwned>(arguments: &str) -> Result<T, ToolError> {
    let raw = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    serde_json::from_str(raw).map_err(|error| ToolError::invalid(error.to_string()))
}
