//! The MCP face of carport: a thin translation between MCP and the [`Registry`]. It knows tools,
//! arguments and results, nothing of vehicles.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities,
    ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

use crate::runtime::{CallError, Registry, ToolEntry};

#[derive(Clone)]
pub struct CarportServer {
    registry: Arc<Registry>,
    tools: Arc<Vec<Tool>>,
    instructions: Arc<String>,
}

impl CarportServer {
    pub fn new(registry: Arc<Registry>) -> CarportServer {
        let tools = registry.tools.iter().map(mcp_tool).collect();
        let instructions = instructions(&registry);
        CarportServer {
            registry,
            tools: Arc::new(tools),
            instructions: Arc::new(instructions),
        }
    }

    /// Serves MCP on stdin/stdout until the client disconnects.
    pub async fn serve_stdio(self) -> Result<()> {
        let running = self.serve(rmcp::transport::stdio()).await?;
        running.waiting().await?;
        Ok(())
    }

    /// Serves MCP's streamable HTTP transport at `http://<address>/mcp` until Ctrl-C.
    pub async fn serve_http(self, address: SocketAddr) -> Result<()> {
        use rmcp::transport::streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
        };
        let service = StreamableHttpService::new(
            move || Ok(self.clone()),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default(),
        );
        let router = axum::Router::new().nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind(address).await?;
        tracing::info!(
            "MCP over streamable HTTP at http://{}/mcp",
            listener.local_addr()?
        );
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    }
}

fn mcp_tool(entry: &ToolEntry) -> Tool {
    let schema = |value: &Value| Arc::new(value.as_object().cloned().unwrap_or_default());
    let hints = &entry.tool.annotations;
    let annotations = ToolAnnotations::with_title(entry.tool.title.clone())
        .read_only(hints.read_only)
        .destructive(hints.destructive)
        .idempotent(hints.idempotent)
        .open_world(hints.open_world);
    let mut tool = Tool::new_with_raw(
        entry.exposed_name.clone(),
        Some(entry.tool.description.clone().into()),
        schema(&entry.input_schema),
    )
    .with_title(entry.tool.title.clone())
    .with_annotations(annotations);
    if let Some(output_schema) = &entry.output_schema {
        tool = tool.with_raw_output_schema(schema(output_schema));
    }
    tool
}

fn instructions(registry: &Registry) -> String {
    let mut text = String::from(
        "carport connects you to vehicles through sandboxed provider plugins. Tool names start \
         with the provider's id. Read tools never change the vehicle; call a provider's state \
         tool before and after commands to confirm their effect.\n\nProviders:",
    );
    for plugin in &registry.plugins {
        let tools: Vec<&str> = registry
            .tools
            .iter()
            .filter(|entry| Arc::ptr_eq(&entry.plugin, plugin))
            .map(|entry| entry.exposed_name.as_str())
            .collect();
        // The summary is the plugin's own words (one bounded line): quoted, never carport's.
        text.push_str(&format!(
            "\n- {} ({:?}), in the plugin's own words: {:?} Tools: {}.",
            plugin.id,
            plugin.version,
            plugin.summary,
            tools.join(", ")
        ));
    }
    if registry.plugins.is_empty() {
        text.push_str("\n- none loaded: check carport's log and plugins.toml.");
    }
    if !registry.problems.is_empty() {
        text.push_str("\n\nNot available (tell the user if they ask for these):");
        for problem in &registry.problems {
            text.push_str(&format!("\n- {problem}"));
        }
    }
    text
}

impl ServerHandler for CarportServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("carport", env!("CARGO_PKG_VERSION")).with_title("carport"),
            )
            .with_instructions(self.instructions.as_str())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|tool| tool.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(entry) = self.registry.tool(&request.name) else {
            return Err(McpError::invalid_params(
                self.registry.unavailable(&request.name).to_string(),
                None,
            ));
        };
        let arguments = Value::Object(request.arguments.unwrap_or_default());

        let progress_token = context.meta.get_progress_token();
        let (sink, forwarder) = match progress_token {
            Some(token) => {
                let (sender, mut receiver) = crate::capabilities::progress::channel();
                let peer = context.peer.clone();
                let forwarder = tokio::spawn(async move {
                    while let Some(report) = receiver.recv().await {
                        let crate::capabilities::progress::ProgressReport {
                            progress,
                            total,
                            message,
                        } = report;
                        let mut notification =
                            ProgressNotificationParam::new(token.clone(), progress)
                                .with_message(message);
                        if let Some(total) = total {
                            notification = notification.with_total(total);
                        }
                        if let Err(error) = peer.notify_progress(notification).await {
                            tracing::debug!("progress notification not delivered: {error}");
                        }
                    }
                });
                (Some(sender), Some(forwarder))
            }
            None => (None, None),
        };

        let outcome = tokio::select! {
            outcome = self.registry.call(&request.name, arguments, sink) => outcome,
            () = context.ct.cancelled() => {
                return Err(McpError::internal_error("the client cancelled the call", None));
            }
        };
        if let Some(forwarder) = forwarder {
            // Every report was sent before the call returned; let them reach the client first.
            let _ = forwarder.await;
        }
        Ok(self.to_result(entry, outcome).into())
    }
}

impl CarportServer {
    fn to_result(
        &self,
        entry: &ToolEntry,
        outcome: Result<crate::capabilities::Output, CallError>,
    ) -> CallToolResult {
        match outcome {
            Ok(output) => {
                let structured = output
                    .structured
                    .as_deref()
                    .and_then(|text| serde_json::from_str::<Value>(text).ok());
                let mut result = CallToolResult::success(vec![ContentBlock::text(output.text)]);
                if entry.output_schema.is_some() {
                    match structured {
                        Some(value) => result.structured_content = Some(value),
                        None => {
                            return CallToolResult::error(vec![ContentBlock::text(format!(
                                "plugin `{}` returned no valid structured result for {}",
                                entry.plugin.id, entry.exposed_name
                            ))]);
                        }
                    }
                }
                result
            }
            Err(error) => {
                tracing::info!("{} failed: {error}", entry.exposed_name);
                CallToolResult::error(vec![ContentBlock::text(error.to_string())])
            }
        }
    }
}
