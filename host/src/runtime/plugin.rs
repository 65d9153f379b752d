//! One loaded plugin and the calls into it.
//!
//! Every call gets a fresh instance from a pre-linked [`PluginPre`] (~15 µs), its own store
//! with a memory cap, and a wall-clock deadline enforced by epoch interruption. A trap, a
//! timeout or an exhausted memory cap ends that call only; the plugin's next call starts clean.
//! A plugin runs at most `max_concurrent_calls` tool calls at once, each on a thread of its own,
//! so a plugin that spins on every one of them leaves the async runtime (and every other
//! plugin) to the operating system's fair scheduling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::errors::CallError;
use super::limits::MemoryCap;
use crate::capabilities::progress::ProgressSink;
use crate::capabilities::{
    CallContext, CallState, ClientLink, Completion, CompletionRequest, Content, Grants, Output,
    Plugin, PluginInfo, PluginPre, PromptResult, ResourceBody, ResourceContents, ResourceInfo,
};

/// How long a tool call waits for one of its plugin's `max_concurrent_calls` to end.
const PERMIT_WAIT: Duration = Duration::from_secs(1);
/// How long past its deadline a call's host-side wait may run before the call is dropped.
const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// Where a call's progress reports, log messages and questions go: the request's client.
#[derive(Default)]
pub struct CallLink {
    pub progress: Option<ProgressSink>,
    pub client: Option<Arc<dyn ClientLink>>,
}

pub struct LoadedPlugin {
    pub id: String,
    pub version: String,
    pub summary: String,
    pub digest: String,
    pub(super) pre: PluginPre<CallState>,
    pub(super) grants: Arc<Grants>,
    pub(super) context: CallContext,
    pub(super) timeout: Duration,
    pub(super) memory_bytes: usize,
    /// Every resource URI of this plugin starts with `<scheme>:`; empty for none.
    pub resource_scheme: String,
    /// How often subscriptions read a resource again.
    pub resource_poll: Duration,
    pub(super) max_result_bytes: u64,
    /// One permit per tool call that may run at once.
    pub(super) calls: Arc<tokio::sync::Semaphore>,
    pub(super) max_concurrent_calls: u32,
}

/// Runs one export in a fresh instance and turns whatever went wrong into a [`CallError`].
macro_rules! invoke {
    ($plugin:expr, $timeout:expr, $link:expr, |$store:ident, $exports:ident| $call:expr) => {{
        let plugin: &LoadedPlugin = $plugin;
        let timeout: Duration = $timeout;
        let (mut store, instance) = plugin.instantiate(timeout, $link).await?;
        // Epoch interruption stops guest code; a host wait the guest started (a WASI poll)
        // ends here, with the call's deadline and a little grace for the guest to return.
        let outcome = {
            let $store = &mut store;
            let $exports = instance.carport_provider_provider();
            tokio::time::timeout(timeout + DEADLINE_GRACE, $call)
                .await
                .unwrap_or_else(|_| Err(wasmtime::Error::from(Trap::Interrupt)))
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(CallError::Plugin {
                plugin: plugin.id.clone(),
                error,
            }),
            Err(error) => Err(plugin.classify(&store, timeout, error)),
        }
    }};
}

impl LoadedPlugin {
    pub(super) async fn describe(&self, timeout: Duration) -> Result<PluginInfo, CallError> {
        let timeout = self.timeout.min(timeout);
        let (mut store, instance) = self.instantiate(timeout, CallLink::default()).await?;
        let described = instance
            .carport_provider_provider()
            .call_describe(&mut store, &self.context)
            .await;
        described.map_err(|error| self.classify(&store, timeout, error))
    }

    /// Runs one tool call on a thread of its own, if the plugin has a call to spare.
    pub async fn call_tool(
        self: Arc<Self>,
        name: String,
        arguments: String,
        link: CallLink,
    ) -> Result<Output, CallError> {
        let plugin = self.clone();
        self.isolated(async move { plugin.run_tool(&name, &arguments, link).await })
            .await
    }

    /// Runs `work` (one export of a fresh instance) once the plugin has a call to spare, on a
    /// thread of its own. Every way into a plugin goes through here: a plugin that spins in
    /// each of its calls occupies at most `max_concurrent_calls` threads, never the async
    /// runtime, and the instances alive at once stay within the host's pool.
    async fn isolated<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, CallError>> + Send + 'static,
    ) -> Result<T, CallError> {
        // A burst of quick calls queues briefly; a plugin whose calls all hang refuses more.
        let permit = tokio::time::timeout(PERMIT_WAIT, self.calls.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| CallError::Busy {
                plugin: self.id.clone(),
                limit: self.max_concurrent_calls,
            })?;
        let runtime = tokio::runtime::Handle::current();
        // The permit lives as long as the guest runs, even when the caller gave up waiting.
        let running = tokio::task::spawn_blocking(move || {
            let outcome = runtime.block_on(work);
            drop(permit);
            outcome
        });
        running.await.unwrap_or_else(|error| {
            Err(CallError::Crashed {
                plugin: self.id.clone(),
                trap: format!("the host thread running it failed: {error}"),
            })
        })
    }

    async fn run_tool(
        &self,
        name: &str,
        arguments: &str,
        link: CallLink,
    ) -> Result<Output, CallError> {
        let output: Output = invoke!(self, self.timeout, link, |store, exports| exports
            .call_call_tool(store, name, arguments, &self.context))?;
        let bytes: usize = output.content.iter().map(content_bytes).sum::<usize>()
            + output.structured.as_ref().map_or(0, String::len);
        if bytes as u64 > self.max_result_bytes {
            return Err(CallError::ResultTooLarge {
                plugin: self.id.clone(),
                limit: self.max_result_bytes,
            });
        }
        Ok(output)
    }

    pub async fn list_resources(self: Arc<Self>) -> Result<Vec<ResourceInfo>, CallError> {
        let plugin = self.clone();
        self.isolated(async move {
            let (plugin, link) = (&*plugin, CallLink::default());
            invoke!(plugin, plugin.timeout, link, |store, exports| {
                exports.call_list_resources(store, &plugin.context)
            })
        })
        .await
    }

    pub async fn read_resource(
        self: Arc<Self>,
        uri: String,
        link: CallLink,
    ) -> Result<Vec<ResourceContents>, CallError> {
        let plugin = self.clone();
        self.isolated(async move {
            let plugin = &*plugin;
            invoke!(plugin, plugin.timeout, link, |store, exports| {
                exports.call_read_resource(store, &uri, &plugin.context)
            })
        })
        .await
    }

    pub async fn get_prompt(
        self: Arc<Self>,
        name: String,
        arguments: Vec<(String, String)>,
        link: CallLink,
    ) -> Result<PromptResult, CallError> {
        let plugin = self.clone();
        self.isolated(async move {
            let plugin = &*plugin;
            invoke!(plugin, plugin.timeout, link, |store, exports| {
                exports.call_get_prompt(store, &name, &arguments, &plugin.context)
            })
        })
        .await
    }

    pub async fn complete(
        self: Arc<Self>,
        request: CompletionRequest,
    ) -> Result<Completion, CallError> {
        let plugin = self.clone();
        self.isolated(async move {
            let (plugin, link) = (&*plugin, CallLink::default());
            invoke!(plugin, plugin.timeout, link, |store, exports| {
                exports.call_complete(store, &request, &plugin.context)
            })
        })
        .await
    }

    async fn instantiate(
        &self,
        timeout: Duration,
        link: CallLink,
    ) -> Result<(Store<CallState>, Plugin), CallError> {
        let state = CallState {
            grants: self.grants.clone(),
            memory: MemoryCap::new(self.memory_bytes),
            deadline: Instant::now() + timeout,
            progress: link.progress,
            client: link.client,
            panic_message: None,
            input_required: false,
            wasi: None,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        // Checked every epoch tick: past the deadline the guest is interrupted; before it, the
        // guest yields so that a busy plugin never monopolises a runtime thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|context| {
            if Instant::now() >= context.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => Ok((store, instance)),
            Err(error) => Err(self.classify(&store, timeout, error)),
        }
    }

    fn classify(
        &self,
        store: &Store<CallState>,
        timeout: Duration,
        error: wasmtime::Error,
    ) -> CallError {
        let plugin = self.id.clone();
        if store.data().input_required {
            return CallError::InputRequired;
        }
        if store.data().memory.exceeded {
            return CallError::OutOfMemory {
                plugin,
                limit_mib: self.memory_bytes / (1024 * 1024),
            };
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return CallError::Timeout {
                plugin,
                limit: timeout,
            };
        }
        let trap = match (error.downcast_ref::<Trap>(), &store.data().panic_message) {
            (Some(trap), Some(panic)) => format!("wasm trap: {trap}, after it panicked at {panic}"),
            (Some(trap), None) => format!("wasm trap: {trap}"),
            (None, _) => format!("{error:#}"),
        };
        tracing::warn!(plugin = %self.id, "call failed: {error:?}");
        CallError::Crashed { plugin, trap }
    }

    /// Whether `uri` belongs to this plugin's resources.
    pub fn owns_uri(&self, uri: &str) -> bool {
        !self.resource_scheme.is_empty()
            && uri
                .strip_prefix(self.resource_scheme.as_str())
                .is_some_and(|rest| rest.starts_with(':'))
    }
}

/// The size of one content block as the client will receive it, near enough.
fn content_bytes(content: &Content) -> usize {
    match content {
        Content::Text(text) => text.len(),
        Content::Image(media) | Content::Audio(media) => media.data.len() * 4 / 3,
        Content::ResourceLink(link) => link.uri.len() + link.name.len(),
        Content::EmbeddedResource(contents) => match &contents.body {
            ResourceBody::Text(text) => text.len(),
            ResourceBody::Blob(bytes) => bytes.len() * 4 / 3,
        },
    }
}
