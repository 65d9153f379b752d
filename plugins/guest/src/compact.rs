//! Building blocks for compact mode (`tool_mode = "compact"`), where one tool stands for many:
//! a tool that takes an operation's name (an enum) and that operation's own arguments, a `help`
//! tool that shows one operation's full description and input schema, and the check that gives
//! a compact call the same validation as the operation's own tool before anything is sent.

use serde_json::{Map, Value, json};

use crate::schema::Patterns;
use crate::{Annotations, Output, Tool, ToolError};

/// A tool whose `selector` argument names one of `operations`, with their own arguments under
/// `arguments`.
pub fn operations_tool(
    name: &str,
    title: &str,
    description: &str,
    selector: &str,
    operations: &[&str],
    annotations: Annotations,
) -> Tool {
    Tool::new(
        name,
        title,
        description,
        json!({
            "type": "object",
            "properties": {
                selector: {"type": "string", "enum": operations},
                "arguments": {"type": "object", "description": "As help lists them."}
            },
            "required": [selector],
            "additionalProperties": false
        }),
        annotations,
    )
}

/// The `help` tool: what an operation does and takes; it sends nothing.
pub fn help_tool() -> Tool {
    Tool::new(
        "help",
        "Describe an operation",
        "What an operation does and takes. Sends nothing.",
        json!({
            "type": "object",
            "properties": {"operation": {"type": "string"}},
            "required": ["operation"],
            "additionalProperties": false
        }),
        Annotations {
            open_world: false,
            ..Annotations::READ
        },
    )
    .with_output_schema(json!({"type": "object", "required": ["tool", "description", "arguments"]}))
}

/// `help`'s answer: which compact tool serves the operation, and its full-mode description and
/// input schema.
pub fn help_answer(tool: &str, full: &Tool) -> Output {
    let arguments: Value = serde_json::from_str(&full.input_schema).unwrap_or(Value::Null);
    Output::json(&json!({
        "tool": tool,
        "description": full.description,
        "arguments": arguments,
    }))
}

/// The operation `selector` names in a call of an [`operations_tool`], and its arguments.
pub fn take_operation(
    mut arguments: Map<String, Value>,
    selector: &str,
) -> Result<(String, Map<String, Value>), ToolError> {
    let name = arguments
        .remove(selector)
        .and_then(|name| name.as_str().map(str::to_string))
        .ok_or_else(|| ToolError::invalid(format!("{selector} is required")))?;
    let own = match arguments.remove("arguments") {
        Some(Value::Object(own)) => own,
        None => Map::new(),
        Some(_) => return Err(ToolError::invalid("arguments must be an object")),
    };
    Ok((name, own))
}

/// Checks an operation's arguments against its full-mode input schema, as the host checks a
/// full-mode call, so that nothing is sent when they are wrong.
pub fn checked(
    operation: &str,
    full_schema: &Value,
    arguments: Map<String, Value>,
    patterns: Patterns,
) -> Result<Map<String, Value>, ToolError> {
    let arguments = Value::Object(arguments);
    crate::schema::check_with(full_schema, &arguments, "", patterns).map_err(|problem| {
        ToolError::invalid(format!(
            "{operation}: {problem}; nothing was sent (help with operation {operation} lists \
             its arguments)"
        ))
    })?;
    match arguments {
        Value::Object(arguments) => Ok(arguments),
        _ => unreachable!("built as an object above"),
    }
}
