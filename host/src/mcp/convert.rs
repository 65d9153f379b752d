//! The world's types in MCP's shapes. Built through serde from MCP's wire form, so each
//! conversion reads like the specification it follows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rmcp::model::{
    ContentBlock, LoggingLevel, PromptMessage, ResourceContents as McpResourceContents,
    Role as McpRole,
};
use serde_json::{Value, json};

use crate::capabilities::log::Level;
use crate::capabilities::{Content, ResourceBody, ResourceContents, Role};

pub fn content(content: Content) -> ContentBlock {
    if let Content::Text(text) = content {
        return ContentBlock::text(text);
    }
    let wire = match content {
        Content::Text(_) => unreachable!("handled above"),
        Content::Image(media) => json!({
            "type": "image", "data": BASE64.encode(&media.data), "mimeType": media.mime_type,
        }),
        Content::Audio(media) => json!({
            "type": "audio", "data": BASE64.encode(&media.data), "mimeType": media.mime_type,
        }),
        Content::ResourceLink(link) => {
            let mut wire = json!({"type": "resource_link", "uri": link.uri, "name": link.name});
            insert_some(&mut wire, "title", link.title);
            insert_some(&mut wire, "description", link.description);
            insert_some(&mut wire, "mimeType", link.mime_type);
            wire
        }
        Content::EmbeddedResource(contents) => {
            json!({"type": "resource", "resource": resource_contents_wire(contents)})
        }
    };
    serde_json::from_value(wire).unwrap_or_else(|error| {
        ContentBlock::text(format!("(content that MCP cannot carry: {error})"))
    })
}

pub fn resource_contents(contents: ResourceContents) -> McpResourceContents {
    serde_json::from_value(resource_contents_wire(contents))
        .expect("text and blob resource contents are MCP's own shapes")
}

fn resource_contents_wire(contents: ResourceContents) -> Value {
    let mut wire = json!({"uri": contents.uri});
    insert_some(&mut wire, "mimeType", contents.mime_type);
    match contents.body {
        ResourceBody::Text(text) => wire["text"] = Value::String(text),
        ResourceBody::Blob(bytes) => wire["blob"] = Value::String(BASE64.encode(bytes)),
    }
    wire
}

pub fn role(role: Role) -> McpRole {
    match role {
        Role::User => McpRole::User,
        Role::Assistant => McpRole::Assistant,
    }
}

pub fn prompt_message(role_: Role, content_: Content) -> PromptMessage {
    PromptMessage::new(role(role_), content(content_))
}

/// MCP content back into the world's type, for sampling replies.
pub fn content_from_mcp(wire: &Value) -> Content {
    let text = |key: &str| {
        wire.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let media = || crate::capabilities::carport::provider::types::Media {
        data: BASE64.decode(text("data")).unwrap_or_default(),
        mime_type: text("mimeType"),
    };
    match wire.get("type").and_then(Value::as_str) {
        Some("image") => Content::Image(media()),
        Some("audio") => Content::Audio(media()),
        _ => Content::Text(text("text")),
    }
}

pub fn level(level: Level) -> LoggingLevel {
    match level {
        Level::Debug => LoggingLevel::Debug,
        Level::Info => LoggingLevel::Info,
        Level::Notice => LoggingLevel::Notice,
        Level::Warning => LoggingLevel::Warning,
        Level::Error => LoggingLevel::Error,
        Level::Critical => LoggingLevel::Critical,
        Level::Alert => LoggingLevel::Alert,
        Level::Emergency => LoggingLevel::Emergency,
    }
}

/// Severity order of MCP's levels, for comparing against the client's chosen level.
pub fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn insert_some(wire: &mut Value, key: &str, value: Option<String>) {
    if let Some(value) = value {
        wire[key] = Value::String(value);
    }
}
