//! What goes wrong in a call, worded for the assistant and the user: each message names the
//! plugin, the rule and, where there is one, the fix.

use std::time::Duration;

use crate::capabilities::ToolError;

#[derive(Debug)]
pub enum CallError {
    UnknownTool(String),
    UnknownPrompt(String),
    /// No loaded plugin serves this URI's scheme.
    UnknownResource(String),
    Disabled {
        tool: String,
        table: String,
    },
    InvalidArguments {
        tool: String,
        reasons: Vec<String>,
    },
    Plugin {
        plugin: String,
        error: ToolError,
    },
    Timeout {
        plugin: String,
        limit: Duration,
    },
    OutOfMemory {
        plugin: String,
        limit_mib: usize,
    },
    Crashed {
        plugin: String,
        trap: String,
    },
    /// The plugin asked the client something it answers with its next request (MCP
    /// 2026-07-28); the caller holds the questions.
    InputRequired,
    Busy {
        plugin: String,
        limit: u32,
    },
    ResultTooLarge {
        plugin: String,
        limit: u64,
    },
    InvalidOutput {
        tool: String,
        reasons: Vec<String>,
    },
}

impl CallError {
    /// Whether the caller asked for something that does not exist (a protocol-level error in
    /// MCP), rather than something that exists and failed.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            CallError::UnknownTool(_)
                | CallError::UnknownPrompt(_)
                | CallError::UnknownResource(_)
                | CallError::Plugin {
                    error: ToolError::NotFound(_),
                    ..
                }
        )
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::UnknownTool(name) => write!(formatter, "there is no tool named {name}"),
            CallError::UnknownPrompt(name) => write!(formatter, "there is no prompt named {name}"),
            CallError::UnknownResource(uri) => write!(
                formatter,
                "no plugin serves the resource {uri}; resources/list and \
                 resources/templates/list show what exists"
            ),
            CallError::Disabled { tool, table } => write!(
                formatter,
                "tool {tool} is turned off by `tools` / `deny_tools` under {table} in plugins.toml"
            ),
            CallError::InvalidArguments { tool, reasons } => write!(
                formatter,
                "invalid arguments for {tool} (nothing was sent): {}",
                reasons.join("; ")
            ),
            CallError::Plugin { plugin, error } => match error {
                ToolError::InvalidArguments(reason) => {
                    write!(formatter, "invalid arguments (nothing was sent): {reason}")
                }
                ToolError::Upstream(upstream) => {
                    match upstream.status {
                        0 => write!(formatter, "{plugin}: {}", upstream.message)?,
                        status => write!(
                            formatter,
                            "{plugin}: the vendor answered HTTP {status}: {}",
                            upstream.message
                        )?,
                    }
                    if let Some(seconds) = upstream.retry_after_seconds {
                        write!(
                            formatter,
                            " (rate limited: retry in {seconds} s, not before)"
                        )?;
                    }
                    Ok(())
                }
                ToolError::Auth(reason) => {
                    write!(formatter, "{plugin}: authentication failed: {reason}")
                }
                ToolError::Denied(reason) => {
                    write!(formatter, "refused by carport's sandbox: {reason}")
                }
                ToolError::Internal(reason) => {
                    write!(formatter, "{plugin}: internal error: {reason}")
                }
                ToolError::NotFound(reason) => write!(formatter, "{plugin}: {reason}"),
            },
            CallError::Timeout { plugin, limit } => write!(
                formatter,
                "plugin `{plugin}` was stopped: it ran past its {} s time limit (timeout_seconds \
                 under [plugins.{plugin}]); the server and other plugins are unaffected",
                limit.as_secs_f64()
            ),
            CallError::OutOfMemory { plugin, limit_mib } => write!(
                formatter,
                "plugin `{plugin}` was stopped: it tried to use more than its {limit_mib} MiB \
                 memory limit (memory_mib under [plugins.{plugin}])"
            ),
            CallError::InputRequired => write!(formatter, "waiting for the client's answers"),
            CallError::Busy { plugin, limit } => write!(
                formatter,
                "plugin `{plugin}` is already running {limit} calls, its limit \
                 (max_concurrent_calls under [plugins.{plugin}]), and none ended within a \
                 second; try again when one has finished"
            ),
            CallError::ResultTooLarge { plugin, limit } => write!(
                formatter,
                "plugin `{plugin}` returned a result larger than its {limit}-byte limit \
                 (max_result_bytes under [plugins.{plugin}]); ask for less, e.g. a smaller page"
            ),
            CallError::InvalidOutput { tool, reasons } => write!(
                formatter,
                "{tool} returned structured output that does not match the tool's own output \
                 schema ({}); this is a bug in its plugin",
                reasons.join("; ")
            ),
            CallError::Crashed { plugin, trap } => write!(
                formatter,
                "plugin `{plugin}` crashed ({trap}); this is a bug in the plugin, the server \
                 keeps running"
            ),
        }
    }
}
