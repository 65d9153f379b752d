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

/// `help`'s answer: which compact tool serves the operation, its full-mode description and
/// input schema, and the output schema of what it returns (which a compact tool standing for
/// many operations can only state loosely).
pub fn help_answer(tool: &str, full: &Tool) -> Output {
    let parse = |schema: &str| serde_json::from_str(schema).unwrap_or(Value::Null);
    let mut answer = json!({
        "tool": tool,
        "description": full.description,
        "arguments": parse(&full.input_schema),
    });
    if let Some(returns) = &full.output_schema {
        answer["returns"] = parse(returns);
    }
    Output::json(&answer)
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

/// One compact tool standing for the full-mode tools `member` picks.
pub struct Group {
    pub tool: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// The argument that names the operation (`endpoint`, `command`).
    pub selector: &'static str,
    pub member: fn(&Tool) -> bool,
}

/// A catalogue in compact mode: its full-mode tools, served as one [`operations_tool`] per
/// [`Group`] and `help`. Everything compact mode lists and accepts is derived from the full-mode
/// tools, so the two modes cannot drift apart.
pub struct Compact<'a> {
    pub full: Vec<Tool>,
    /// Every full-mode tool belongs to exactly one group.
    pub groups: &'a [Group],
    /// Matchers for the `pattern`s of the full-mode input schemas.
    pub patterns: Patterns<'a>,
}

/// What a compact call comes to.
pub enum Resolved {
    /// Run this full-mode tool with these arguments, already checked against its schema.
    Run(String, Map<String, Value>),
    /// Answered without a request (`help`).
    Answer(Output),
}

impl Compact<'_> {
    fn members<'t>(&'t self, group: &'t Group) -> impl Iterator<Item = &'t Tool> {
        self.full.iter().filter(|tool| (group.member)(tool))
    }

    fn group_of(&self, tool: &Tool) -> Option<&Group> {
        self.groups.iter().find(|group| (group.member)(tool))
    }

    /// The compact tools: one per group, then `help`. A group's annotations are the most
    /// cautious of its members'; its output schema is theirs when they share one, else any
    /// object (every full-mode result is an object).
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools: Vec<Tool> = self
            .groups
            .iter()
            .map(|group| {
                let members: Vec<&Tool> = self.members(group).collect();
                let names: Vec<&str> = members.iter().map(|tool| tool.name.as_str()).collect();
                let annotations = Annotations {
                    read_only: members.iter().all(|tool| tool.annotations.read_only),
                    destructive: members.iter().any(|tool| tool.annotations.destructive),
                    idempotent: members.iter().all(|tool| tool.annotations.idempotent),
                    open_world: members.iter().any(|tool| tool.annotations.open_world),
                };
                let shared = members
                    .first()
                    .and_then(|first| first.output_schema.as_deref())
                    .filter(|first| {
                        members
                            .iter()
                            .all(|tool| tool.output_schema.as_deref() == Some(*first))
                    })
                    .and_then(|schema| serde_json::from_str(schema).ok());
                operations_tool(
                    group.tool,
                    group.title,
                    group.description,
                    group.selector,
                    &names,
                    annotations,
                )
                .with_output_schema(shared.unwrap_or_else(|| json!({"type": "object"})))
            })
            .collect();
        tools.push(help_tool());
        tools
    }

    /// The full-mode call a compact call stands for, its arguments checked against the
    /// full-mode tool's schema as the host checks a full-mode call, or `help`'s answer.
    pub fn resolve(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
    ) -> Result<Resolved, ToolError> {
        if tool == "help" {
            let operation = arguments
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (full, group) = self
                .full
                .iter()
                .find(|full| full.name == operation)
                .and_then(|full| Some((full, self.group_of(full)?)))
                .ok_or_else(|| {
                    ToolError::invalid(format!(
                        "no operation named {operation:?}: the enums of {} list them all",
                        self.groups
                            .iter()
                            .map(|group| group.tool)
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ))
                })?;
            return Ok(Resolved::Answer(help_answer(group.tool, full)));
        }
        let group = self
            .groups
            .iter()
            .find(|group| group.tool == tool)
            .ok_or_else(|| ToolError::invalid(format!("there is no compact tool named {tool}")))?;
        let (name, own) = take_operation(arguments, group.selector)?;
        let full = self
            .members(group)
            .find(|full| full.name == name)
            .ok_or_else(|| ToolError::invalid(format!("{tool} has no operation named {name:?}")))?;
        let schema: Value = serde_json::from_str(&full.input_schema)
            .map_err(|error| ToolError::internal(format!("{name}'s input schema: {error}")))?;
        let own = checked(&name, &schema, own, self.patterns)?;
        Ok(Resolved::Run(name, own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Compact<'static> {
        let tool = |name: &str, annotations, output: Option<Value>| {
            let schema = json!({"type": "object", "properties": {"id": {"type": "integer",
                "minimum": 1}}, "required": ["id"], "additionalProperties": false});
            let tool = Tool::new(name, name, &format!("{name} it."), schema, annotations);
            match output {
                Some(output) => tool.with_output_schema(output),
                None => tool,
            }
        };
        let done = json!({"type": "object", "required": ["done"]});
        Compact {
            full: vec![
                tool("look", Annotations::READ, Some(json!({"type": "object"}))),
                tool("lock", Annotations::SET, Some(done.clone())),
                tool("unlock", Annotations::DESTRUCTIVE, Some(done)),
            ],
            groups: &[
                Group {
                    tool: "read",
                    title: "Read",
                    description: "Read.",
                    selector: "endpoint",
                    member: |tool| tool.annotations.read_only,
                },
                Group {
                    tool: "command",
                    title: "Command",
                    description: "Act.",
                    selector: "command",
                    member: |tool| !tool.annotations.read_only,
                },
            ],
            patterns: &[],
        }
    }

    #[test]
    fn groups_derive_their_tools_from_their_members() {
        let tools = catalogue().tools();
        let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(names, ["read", "command", "help"]);
        let command = &tools[1];
        assert!(command.annotations.destructive && !command.annotations.idempotent);
        assert_eq!(
            command.output_schema.as_deref(),
            Some(
                json!({"type": "object", "required": ["done"]})
                    .to_string()
                    .as_str()
            )
        );
        let input: Value = serde_json::from_str(&command.input_schema).unwrap();
        assert_eq!(
            input["properties"]["command"]["enum"],
            json!(["lock", "unlock"])
        );
        assert!(tools[0].annotations.read_only);
    }

    #[test]
    fn calls_resolve_to_checked_full_mode_calls() {
        let compact = catalogue();
        let call = |tool: &str, arguments: Value| {
            let Value::Object(arguments) = arguments else {
                panic!()
            };
            compact.resolve(tool, arguments)
        };
        let Ok(Resolved::Run(name, arguments)) = call(
            "command",
            json!({"command": "lock", "arguments": {"id": 2}}),
        ) else {
            panic!("lock was refused")
        };
        assert_eq!(
            (name.as_str(), Value::Object(arguments)),
            ("lock", json!({"id": 2}))
        );
        for (tool, bad) in [
            (
                "command",
                json!({"command": "lock", "arguments": {"id": 0}}),
            ),
            ("command", json!({"command": "lock"})),
            (
                "command",
                json!({"command": "look", "arguments": {"id": 2}}),
            ),
            (
                "read",
                json!({"endpoint": "look", "arguments": {"id": 2, "x": 1}}),
            ),
            ("write", json!({"command": "lock", "arguments": {"id": 2}})),
            ("help", json!({"operation": "fly"})),
        ] {
            assert!(
                matches!(call(tool, bad.clone()), Err(ToolError::InvalidArguments(_))),
                "{tool} {bad}"
            );
        }
        let Ok(Resolved::Answer(help)) = call("help", json!({"operation": "unlock"})) else {
            panic!("help was refused")
        };
        let help: Value = serde_json::from_str(help.structured.as_deref().unwrap()).unwrap();
        assert_eq!(help["tool"], "command");
        assert_eq!(help["description"], "unlock it.");
        assert_eq!(help["returns"]["required"], json!(["done"]));
    }
}
