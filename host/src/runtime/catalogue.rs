//! What the plugins offer, as the MCP layer sees it: tools with their schemas and validators,
//! and prompts, each under the name it is served by.

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::errors::CallError;
use super::plugin::LoadedPlugin;
use crate::capabilities::{Content, Output, Prompt, Tool};

/// A tool call's result once checked: its structured part parsed (once) and valid against the
/// tool's output schema, or absent when the tool declares none.
pub struct Answer {
    pub content: Vec<Content>,
    pub structured: Option<Value>,
}

/// A tool as the MCP layer sees it.
pub struct ToolEntry {
    /// `<plugin id>_<tool name>`, or the tool's own name when the plugin is served unprefixed.
    pub exposed_name: String,
    pub plugin: Arc<LoadedPlugin>,
    pub tool: Tool,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    /// Built at the tool's first call: building all of them would be most of start-up.
    validator: OnceLock<Result<jsonschema::Validator, String>>,
    output_validator: OnceLock<Result<jsonschema::Validator, String>>,
}

pub struct PromptEntry {
    pub exposed_name: String,
    pub plugin: Arc<LoadedPlugin>,
    pub prompt: Prompt,
}

/// Bounds on what a plugin says about itself: it reaches the assistant's instructions and tool
/// list, where it must stay short and cannot pose as carport.
pub const MAX_SUMMARY_CHARS: usize = 400;
pub const MAX_VERSION_CHARS: usize = 32;
const MAX_TITLE_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 4000;

/// Plugin-supplied text on one line (line breaks and other control characters become spaces)
/// and at most `max_chars` long.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        line.push('…');
    }
    line
}

/// The name a plugin's tool or prompt is served by.
pub fn exposed_name(plugin_id: &str, prefix: bool, name: &str) -> String {
    match prefix {
        true => format!("{plugin_id}_{name}"),
        false => name.to_string(),
    }
}

/// MCP clients accept tool names of `^[a-zA-Z0-9_-]{1,64}$`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl ToolEntry {
    pub fn new(
        plugin: Arc<LoadedPlugin>,
        exposed_name: String,
        tool: Tool,
    ) -> Result<ToolEntry, String> {
        let problem = |reason: String| {
            format!(
                "tool {exposed_name} of plugin `{}` skipped: {reason}",
                plugin.id
            )
        };
        if !valid_name(&exposed_name) || tool.name.is_empty() {
            return Err(problem(
                "names must match ^[a-zA-Z0-9_-]{1,64}$ once prefixed with the plugin id".into(),
            ));
        }
        let input_schema: Value = serde_json::from_str(&tool.input_schema)
            .map_err(|error| problem(format!("its input schema is not JSON: {error}")))?;
        if input_schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(problem("its input schema must be of type object".into()));
        }
        let output_schema: Option<Value> = match &tool.output_schema {
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|error| problem(format!("its output schema is not JSON: {error}")))?,
            ),
            None => None,
        };
        if output_schema
            .as_ref()
            .is_some_and(|schema| schema.get("type").and_then(Value::as_str) != Some("object"))
        {
            return Err(problem("its output schema must be of type object".into()));
        }
        let mut tool = tool;
        tool.title = one_line(&tool.title, MAX_TITLE_CHARS);
        if tool.description.chars().count() > MAX_DESCRIPTION_CHARS {
            tool.description = tool
                .description
                .chars()
                .take(MAX_DESCRIPTION_CHARS)
                .collect();
            tool.description.push('…');
        }
        Ok(ToolEntry {
            exposed_name,
            plugin,
            tool,
            input_schema,
            output_schema,
            validator: OnceLock::new(),
            output_validator: OnceLock::new(),
        })
    }

    /// Every way `arguments` violate the input schema, each with where it happened.
    pub fn argument_errors(&self, arguments: &Value) -> Vec<String> {
        schema_errors(
            &self.validator,
            &self.input_schema,
            arguments,
            &self.describe("input"),
        )
    }

    /// A tool with an output schema must return structured data that matches it: MCP clients
    /// trust `structuredContent` to.
    pub fn check_output(&self, output: Output) -> Result<Answer, CallError> {
        let Output {
            content,
            structured,
        } = output;
        let Some(schema) = &self.output_schema else {
            return Ok(Answer {
                content,
                structured: None,
            });
        };
        let invalid = |reasons: Vec<String>| CallError::InvalidOutput {
            tool: self.exposed_name.clone(),
            reasons,
        };
        let Some(text) = structured else {
            return Err(invalid(vec!["no structured result".into()]));
        };
        let value: Value = serde_json::from_str(&text)
            .map_err(|error| invalid(vec![format!("not JSON: {error}")]))?;
        let reasons = schema_errors(
            &self.output_validator,
            schema,
            &value,
            &self.describe("output"),
        );
        match reasons.is_empty() {
            true => Ok(Answer {
                content,
                structured: Some(value),
            }),
            false => Err(invalid(reasons)),
        }
    }

    fn describe(&self, which: &str) -> String {
        format!(
            "plugin `{}` declares an invalid {which} schema for {}",
            self.plugin.id, self.exposed_name
        )
    }
}

impl PromptEntry {
    pub fn new(
        plugin: Arc<LoadedPlugin>,
        exposed_name: String,
        prompt: Prompt,
    ) -> Result<PromptEntry, String> {
        if !valid_name(&exposed_name) {
            return Err(format!(
                "prompt {exposed_name} of plugin `{}` skipped: names must match \
                 ^[a-zA-Z0-9_-]{{1,64}}$",
                plugin.id
            ));
        }
        Ok(PromptEntry {
            exposed_name,
            plugin,
            prompt,
        })
    }

    /// The required arguments the user left out.
    pub fn missing_arguments(&self, given: &[(String, String)]) -> Vec<&str> {
        self.prompt
            .arguments
            .iter()
            .filter(|argument| {
                argument.required && !given.iter().any(|(name, _)| *name == argument.name)
            })
            .map(|argument| argument.name.as_str())
            .collect()
    }
}

/// Where `value` breaks `schema` (at most five places), the validator built at first use.
fn schema_errors(
    validator: &OnceLock<Result<jsonschema::Validator, String>>,
    schema: &Value,
    value: &Value,
    invalid_schema: &str,
) -> Vec<String> {
    let validator = validator.get_or_init(|| {
        jsonschema::validator_for(schema).map_err(|error| format!("{invalid_schema}: {error}"))
    });
    match validator {
        Ok(validator) => validator
            .iter_errors(value)
            .take(5)
            .map(|error| match error.instance_path().as_str() {
                "" => error.to_string(),
                path => format!("{path}: {error}"),
            })
            .collect(),
        Err(problem) => vec![problem.clone()],
    }
}
