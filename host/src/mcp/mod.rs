//! The MCP face of carport: a thin translation between MCP and the [`Registry`]. It knows
//! tools, prompts, resources and the client, nothing of vehicles.
//!
//! rmcp marks logging, sampling and roots deprecated because MCP 2026-07-28 drops them; carport
//! still serves them to clients of earlier revisions.
#![allow(deprecated)]

mod client_link;
mod convert;
mod subscriptions;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams,
    CompleteResult, CompletionInfo, ContentBlock, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, LoggingLevel, PaginatedRequestParams,
    ProgressNotificationParam, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Reference, ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
    SubscriptionFilter, Tool, ToolAnnotations, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::capabilities::{CompletionReference, CompletionRequest};
use crate::runtime::{Answer, CallError, CallLink, Registry, ToolEntry};
use client_link::{LogSink, McpClientLink, StateSeal};
use subscriptions::{Notify, Subscriptions};

/// How long clients may cache what does not change while carport runs.
const CATALOGUE_TTL_MS: u64 = 300_000;
/// Vehicle data is live: clients should ask again.
const LIVE_TTL_MS: u64 = 0;

/// What one MCP session chose: its log level and its subscriptions.
#[derive(Default)]
struct Session {
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Subscriptions,
}

/// A registry with its tools as MCP lists them.
#[derive(Clone)]
struct Served {
    registry: Arc<Registry>,
    tools: Arc<Vec<Tool>>,
}

impl Served {
    fn new(registry: Arc<Registry>) -> Served {
        let tools = registry.tools.iter().map(mcp_tool).collect();
        Served {
            registry,
            tools: Arc::new(tools),
        }
    }
}

/// What every session serves now. A reload swaps the registry whole: each request works on the
/// registry it started with, so a call in flight finishes on the plugin it began on.
pub struct Live {
    served: std::sync::RwLock<Served>,
    /// Initialised sessions, told when the lists change.
    peers: Mutex<Vec<rmcp::Peer<RoleServer>>>,
    /// Open 2026-07-28 `subscriptions/listen` streams, told when the lists they asked about
    /// change.
    listeners: Mutex<Vec<(u64, SubscriptionSink)>>,
    next_listener: std::sync::atomic::AtomicU64,
    /// Held while a new registry is built from the current one, so that a drop-in reload and
    /// a plugin's catalogue change never build on the same registry and lose one another.
    rebuilding: tokio::sync::Mutex<()>,
}

impl Live {
    fn new(registry: Arc<Registry>) -> Live {
        Live {
            served: std::sync::RwLock::new(Served::new(registry)),
            peers: Mutex::new(Vec::new()),
            listeners: Mutex::new(Vec::new()),
            next_listener: std::sync::atomic::AtomicU64::new(0),
            rebuilding: tokio::sync::Mutex::new(()),
        }
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.served().registry
    }

    fn served(&self) -> Served {
        self.served
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Builds a registry from the one served now and serves it, one rebuild at a time.
    pub async fn rebuild<Build, Built>(&self, build: Build)
    where
        Build: FnOnce(Arc<Registry>) -> Built,
        Built: std::future::Future<Output = Registry>,
    {
        let _one_at_a_time = self.rebuilding.lock().await;
        let registry = build(self.registry()).await;
        self.replace(registry).await;
    }

    /// Describes again, round by round, the plugins that say their catalogue changed
    /// (`catalogue.changed`), and serves what they offer now. Runs as long as carport serves.
    pub fn follow_catalogue_changes(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let live = self.clone();
        let changes = self.registry().catalogue_changes();
        tokio::spawn(async move {
            changes
                .follow(|changed| {
                    live.rebuild(move |current| async move { current.redescribe(&changed).await })
                })
                .await;
        })
    }

    /// Serves `registry` from now on and tells every session and listen stream whose lists
    /// changed.
    async fn replace(&self, registry: Registry) {
        let new = Served::new(Arc::new(registry));
        let old = std::mem::replace(
            &mut *self
                .served
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            new.clone(),
        );
        let tools_changed = old.tools != new.tools;
        let prompts_changed = names(&old.registry.prompts) != names(&new.registry.prompts);
        let templates_changed = old.registry.templates.len() != new.registry.templates.len()
            || old
                .registry
                .templates
                .iter()
                .zip(&new.registry.templates)
                .any(|(a, b)| a.template.uri_template != b.template.uri_template);
        if !(tools_changed || prompts_changed || templates_changed) {
            return;
        }
        // Sessions whose transport closed stop being told.
        let peers = {
            let mut peers = self.peers.lock().expect("not poisoned");
            peers.retain(|peer| !peer.is_transport_closed());
            peers.clone()
        };
        for peer in peers {
            let mut sent = Vec::new();
            if tools_changed {
                sent.push(peer.notify_tool_list_changed().await);
            }
            if prompts_changed {
                sent.push(peer.notify_prompt_list_changed().await);
            }
            if templates_changed {
                sent.push(peer.notify_resource_list_changed().await);
            }
            for error in sent.into_iter().filter_map(Result::err) {
                tracing::debug!("list_changed not delivered: {error}");
            }
        }
        let listeners: Vec<SubscriptionSink> = self
            .listeners
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(_, sink)| sink.clone())
            .collect();
        for sink in listeners {
            // Each stream gets only what it asked for; the sink tags each frame with the
            // stream's subscription id.
            let asked = sink.accepted();
            let mut sent = Vec::new();
            if tools_changed && asked.tools_list_changed == Some(true) {
                sent.push(sink.notify_tool_list_changed().await);
            }
            if prompts_changed && asked.prompts_list_changed == Some(true) {
                sent.push(sink.notify_prompt_list_changed().await);
            }
            if templates_changed && asked.resources_list_changed == Some(true) {
                sent.push(sink.notify_resource_list_changed().await);
            }
            for error in sent.into_iter().filter_map(Result::err) {
                tracing::debug!("list_changed not delivered on a listen stream: {error}");
            }
        }
    }

    /// Keeps telling `sink` of list changes until the returned registration is dropped.
    fn listen(self: &Arc<Self>, sink: SubscriptionSink) -> ListenRegistration {
        let id = self
            .next_listener
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.listeners
            .lock()
            .expect("not poisoned")
            .push((id, sink));
        ListenRegistration {
            live: self.clone(),
            id,
        }
    }
}

/// An open listen stream's place among [`Live`]'s listeners; dropped when the stream ends,
/// whether it was cancelled, closed or its task dropped.
struct ListenRegistration {
    live: Arc<Live>,
    id: u64,
}

impl Drop for ListenRegistration {
    fn drop(&mut self) {
        self.live
            .listeners
            .lock()
            .expect("not poisoned")
            .retain(|(id, _)| *id != self.id);
    }
}

fn names(prompts: &[crate::runtime::PromptEntry]) -> Vec<&str> {
    prompts
        .iter()
        .map(|entry| entry.exposed_name.as_str())
        .collect()
}

#[derive(Clone)]
pub struct CarportServer {
    live: Arc<Live>,
    seal: Arc<StateSeal>,
    session: Arc<Session>,
}

impl CarportServer {
    pub fn new(registry: Arc<Registry>) -> CarportServer {
        CarportServer {
            live: Arc::new(Live::new(registry)),
            seal: Arc::new(StateSeal::new()),
            session: Arc::new(Session::default()),
        }
    }

    /// The handle a watcher swaps registries through.
    pub fn live(&self) -> Arc<Live> {
        self.live.clone()
    }

    fn registry(&self) -> Arc<Registry> {
        self.live.registry()
    }

    /// The same server for another MCP session (streamable HTTP has one per client).
    fn for_new_session(&self) -> CarportServer {
        CarportServer {
            session: Arc::new(Session::default()),
            ..self.clone()
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
            move || Ok(self.for_new_session()),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default(),
        );
        let router = axum::Router::new().nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind(address).await?;
        tracing::info!(
            "MCP over streamable HTTP at http://{}/mcp",
            listener.local_addr()?
        );
        // An answer leaves in more than one write; without TCP_NODELAY the last one waits for
        // the client's delayed acknowledgement (about 40 ms on Linux).
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY not set: {error}");
            }
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    }

    /// The client of one request, as its plugin call reaches it.
    fn request_client(
        &self,
        context: &RequestContext<RoleServer>,
        subject: &str,
        input_responses: Option<&std::collections::BTreeMap<String, Value>>,
        request_state: Option<&str>,
    ) -> Result<RequestClient, McpError> {
        // A client receives log messages only once it has asked for them: by logging/setLevel
        // for its session, or (MCP 2026-07-28) by a level in the request's metadata. Without a
        // level there is nothing to forward, and no task to start for it.
        let level = context.meta.log_level().or(*self
            .session
            .log_level
            .lock()
            .expect("not poisoned"));
        let (logs, forwarder) = match level {
            Some(_) => {
                let (logs, forwarder) = Forwarder::logs(context);
                (Some(logs), forwarder)
            }
            None => (None, Forwarder(Vec::new())),
        };
        let link = McpClientLink::new(
            context,
            &self.seal,
            subject,
            input_responses,
            request_state,
            level,
            logs,
        )?;
        Ok(RequestClient {
            link: Arc::new(link),
            forwarder,
        })
    }
}

/// The client of one request as a plugin reaches it: the link for log messages and questions,
/// and the forwarder that delivers the call's notifications before its answer.
struct RequestClient {
    link: Arc<McpClientLink>,
    forwarder: Forwarder,
}

impl RequestClient {
    /// What the plugin call is given; progress goes to the client only when it sent a token.
    fn call_link(&mut self, context: &RequestContext<RoleServer>) -> CallLink {
        CallLink {
            progress: self.forwarder.progress(context),
            client: Some(self.link.clone()),
        }
    }

    /// Delivers every notification of the finished call, then gives the link back for the
    /// answer (its pending questions). The log stream must end first, or the flush would wait
    /// for it forever.
    async fn finish(self) -> Arc<McpClientLink> {
        self.link.close_logs();
        self.forwarder.flush().await;
        self.link
    }
}

/// Delivers a call's notifications in order, and is awaited before the call's answer so they
/// arrive first.
struct Forwarder(Vec<tokio::task::JoinHandle<()>>);

impl Forwarder {
    fn logs(context: &RequestContext<RoleServer>) -> (LogSink, Forwarder) {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let peer = context.peer.clone();
        let task = tokio::spawn(async move {
            while let Some(notice) = receiver.recv().await {
                #[allow(
                    deprecated,
                    reason = "logging is deprecated only from MCP 2026-07-28 on"
                )]
                if let Err(error) = peer.notify_logging_message(notice).await {
                    tracing::debug!("log notification not delivered: {error}");
                }
            }
        });
        (sender, Forwarder(vec![task]))
    }

    fn progress(
        &mut self,
        context: &RequestContext<RoleServer>,
    ) -> Option<crate::capabilities::progress::ProgressSink> {
        let token = context.meta.get_progress_token()?;
        let (sender, mut receiver) = crate::capabilities::progress::channel();
        let peer = context.peer.clone();
        self.0.push(tokio::spawn(async move {
            while let Some(report) = receiver.recv().await {
                let crate::capabilities::progress::ProgressReport {
                    progress,
                    total,
                    message,
                } = report;
                let mut notification =
                    ProgressNotificationParam::new(token.clone(), progress).with_message(message);
                if let Some(total) = total {
                    notification = notification.with_total(total);
                }
                if let Err(error) = peer.notify_progress(notification).await {
                    tracing::debug!("progress notification not delivered: {error}");
                }
            }
        }));
        Some(sender)
    }

    /// Waits until every notification the call produced has been sent. The senders are gone
    /// once the call's store is dropped, which ends each task.
    async fn flush(self) {
        for task in self.0 {
            let _ = task.await;
        }
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
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_completions()
            .enable_logging()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("carport", env!("CARGO_PKG_VERSION")).with_title("carport"),
            )
            .with_instructions(instructions(&self.registry()))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(
            ListToolsResult::with_all_items(self.live.served().tools.as_ref().clone())
                .with_ttl_ms(CATALOGUE_TTL_MS)
                .with_cache_scope(CacheScope::Public),
        )
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.live
            .served()
            .tools
            .iter()
            .find(|tool| tool.name == name)
            .cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let registry = self.registry();
        let Some(entry) = registry.tool(&request.name) else {
            return Err(McpError::invalid_params(
                registry.unavailable(&request.name).to_string(),
                None,
            ));
        };
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let subject = format!("tools/call\n{}\n{arguments}", request.name);
        let mut client = self.request_client(
            &context,
            &subject,
            request.input_responses.as_ref(),
            request.request_state.as_deref(),
        )?;
        let call_link = client.call_link(&context);
        let outcome = tokio::select! {
            outcome = registry.call(&request.name, arguments, call_link) => outcome,
            () = context.ct.cancelled() => {
                return Err(McpError::internal_error("the client cancelled the call", None));
            }
        };
        let link = client.finish().await;
        if let Err(CallError::InputRequired) = outcome {
            return Ok(link.deferred_outcome(&self.seal, &subject)?.into());
        }
        Ok(to_result(entry, outcome).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let prompts = self
            .registry()
            .prompts
            .iter()
            .map(|entry| {
                let arguments: Vec<Value> = entry
                    .prompt
                    .arguments
                    .iter()
                    .map(|argument| {
                        json!({
                            "name": argument.name,
                            "description": argument.description,
                            "required": argument.required,
                        })
                    })
                    .collect();
                let mut wire = json!({
                    "name": entry.exposed_name,
                    "title": entry.prompt.title,
                    "description": entry.prompt.description,
                });
                if !arguments.is_empty() {
                    wire["arguments"] = Value::Array(arguments);
                }
                serde_json::from_value(wire).expect("MCP's prompt shape")
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts)
            .with_ttl_ms(CATALOGUE_TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let arguments: Vec<(String, String)> = request
            .arguments
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| match value {
                Value::String(text) => (name, text),
                other => (name, other.to_string()),
            })
            .collect();
        let subject = format!("prompts/get\n{}\n{arguments:?}", request.name);
        let mut client = self.request_client(
            &context,
            &subject,
            request.input_responses.as_ref(),
            request.request_state.as_deref(),
        )?;
        let call_link = client.call_link(&context);
        let outcome = self
            .registry()
            .get_prompt(&request.name, arguments, call_link)
            .await;
        let link = client.finish().await;
        match outcome {
            Ok(result) => {
                let messages = result
                    .messages
                    .into_iter()
                    .map(|message| convert::prompt_message(message.role, message.content))
                    .collect();
                let mut prompt = GetPromptResult::new(messages);
                prompt.description = result.description;
                Ok(prompt.into())
            }
            Err(CallError::InputRequired) => {
                Ok(link.deferred_outcome(&self.seal, &subject)?.into())
            }
            Err(error) => Err(protocol_error(error, None)),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let resources = self
            .registry()
            .list_resources()
            .await
            .into_iter()
            .map(|resource| {
                let mut wire = json!({
                    "uri": resource.uri, "name": resource.name, "title": resource.title,
                    "description": resource.description,
                });
                if let Some(mime_type) = resource.mime_type {
                    wire["mimeType"] = Value::String(mime_type);
                }
                serde_json::from_value(wire).expect("MCP's resource shape")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources)
            .with_ttl_ms(LIVE_TTL_MS)
            .with_cache_scope(CacheScope::Private))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let templates = self
            .registry()
            .templates
            .iter()
            .map(|entry| {
                let template = &entry.template;
                let mut wire = json!({
                    "uriTemplate": template.uri_template, "name": template.name,
                    "title": template.title, "description": template.description,
                });
                if let Some(mime_type) = &template.mime_type {
                    wire["mimeType"] = Value::String(mime_type.clone());
                }
                serde_json::from_value(wire).expect("MCP's resource template shape")
            })
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates)
            .with_ttl_ms(CATALOGUE_TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let subject = format!("resources/read\n{}", request.uri);
        let mut client = self.request_client(
            &context,
            &subject,
            request.input_responses.as_ref(),
            request.request_state.as_deref(),
        )?;
        let call_link = client.call_link(&context);
        let outcome = self.registry().read_resource(&request.uri, call_link).await;
        let link = client.finish().await;
        match outcome {
            Ok(contents) if !contents.is_empty() => {
                let contents = contents
                    .into_iter()
                    .map(convert::resource_contents)
                    .collect();
                Ok(ReadResourceResult::new(contents)
                    .with_ttl_ms(LIVE_TTL_MS)
                    .with_cache_scope(CacheScope::Private)
                    .into())
            }
            Ok(_) => Err(protocol_error(
                CallError::UnknownResource(request.uri.clone()),
                Some(&request.uri),
            )),
            Err(CallError::InputRequired) => {
                Ok(link.deferred_outcome(&self.seal, &subject)?.into())
            }
            Err(error) => Err(protocol_error(error, Some(&request.uri))),
        }
    }

    #[allow(
        deprecated,
        reason = "resources/subscribe serves clients before MCP 2026-07-28"
    )]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.session
            .subscriptions
            .subscribe(self.registry(), request.uri, Notify::Peer(context.peer))
            .map_err(|reason| McpError::invalid_params(reason, None))
    }

    #[allow(
        deprecated,
        reason = "resources/unsubscribe serves clients before MCP 2026-07-28"
    )]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.session.subscriptions.unsubscribe(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| self.registry().resource_plugin(uri).is_ok())
            .cloned()
            .collect();
        // The lists change when the drop-in folder, plugins.toml or a plugin's catalogue does;
        // rmcp keeps only what was both asked for and advertised.
        let mut accepted = SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.prompts_list_changed = requested.prompts_list_changed;
        accepted.resources_list_changed = requested.resources_list_changed;
        accepted.resource_subscriptions = Some(uris);
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let _told_of_list_changes = self.live.listen(context.sink().clone());
        let subscriptions = Subscriptions::default();
        for uri in context.accepted().resource_subscriptions.iter().flatten() {
            let notify = Notify::Listen(context.sink().clone());
            if let Err(reason) = subscriptions.subscribe(self.registry(), uri.clone(), notify) {
                tracing::debug!("subscription to {uri} not started: {reason}");
            }
        }
        context.cancelled().await;
        Ok(())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let reference = match &request.r#ref {
            Reference::Prompt(prompt) => CompletionReference::Prompt(prompt.name.clone()),
            Reference::Resource(resource) => {
                CompletionReference::ResourceTemplate(resource.uri.clone())
            }
            _ => {
                return Err(McpError::invalid_params(
                    "completion is offered for prompts and resource templates",
                    None,
                ));
            }
        };
        let context_arguments = request
            .context
            .and_then(|context| context.arguments)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let completion = self
            .registry()
            .complete(CompletionRequest {
                reference,
                argument_name: request.argument.name,
                argument_value: request.argument.value,
                context_arguments,
            })
            .await
            .map_err(|error| protocol_error(error, None))?;
        let mut info = CompletionInfo::new(completion.values)
            .map_err(|reason| McpError::internal_error(reason, None))?;
        info.total = completion.total;
        info.has_more = Some(completion.has_more);
        Ok(CompleteResult::new(info))
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        self.live
            .peers
            .lock()
            .expect("not poisoned")
            .push(context.peer);
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        *self.session.log_level.lock().expect("not poisoned") = Some(request.level);
        Ok(())
    }
}

/// A failed prompt, resource or completion request as a JSON-RPC error: MCP has no error
/// result for these, unlike tool calls.
fn protocol_error(error: CallError, uri: Option<&str>) -> McpError {
    let data = uri.map(|uri| json!({"uri": uri}));
    match &error {
        error if error.is_not_found() => McpError::invalid_params(error.to_string(), data),
        CallError::InvalidArguments { .. } => McpError::invalid_params(error.to_string(), data),
        _ => McpError::internal_error(error.to_string(), data),
    }
}

fn to_result(entry: &ToolEntry, outcome: Result<Answer, CallError>) -> CallToolResult {
    match outcome {
        Ok(answer) => {
            let content: Vec<ContentBlock> =
                answer.content.into_iter().map(convert::content).collect();
            let mut result = CallToolResult::success(content);
            result.structured_content = answer.structured;
            result
        }
        Err(error) => {
            tracing::info!("{} failed: {error}", entry.exposed_name);
            CallToolResult::error(vec![ContentBlock::text(error.to_string())])
        }
    }
}
