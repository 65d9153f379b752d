//! What the plugins offer, as the MCP layer sees it: tools with their schemas and validators,
//! and prompts, each under the name it is served by.

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::plugin::LoadedPlugin;
use crate::capabilities::{Prompt, Tool};

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
}

pub struct PromptEntry {
    pub exposed_name: String,
    pub plugin: Arc<LoadedPlugin>,
    pub prompt: Prompt,
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
        let output_schema = match &tool.output_schema {
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|error| problem(format!("its output schema is not JSON: {error}")))?,
            ),
            None => None,
        };
        Ok(ToolEntry {
            exposed_name,
            plugin,
            tool,
            input_schema,
            output_schema,
            validator: OnceLock::new(),
        })
    }

    /// Every way `arguments` violate the input schema, each with where it happened.
    pub fn argument_errors(&self, arguments: &Value) -> Vec<String> {
        let validator = self.validator.get_or_init(|| {
            jsonschema::validator_for(&self.input_schema).map_err(|error| {
                format!(
                    "plugin `{}` declares an invalid input schema for {}: {error}",
                    self.plugin.id, self.exposed_name
                )
            })
        });
        let validator = match validator {
            Ok(validator) => validator,
            Err(problem) => return vec![problem.clone()],
        };
        validator
            .iter_errors(arguments)
            .map(|error| match error.instance_path().as_str() {
                "" => error.to_string(),
                path => format!("{path}: {error}"),
            })
            .collect()
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
