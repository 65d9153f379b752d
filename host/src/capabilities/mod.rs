//! The host side of the WIT world: one module per imported interface, each checking its
//! capability at the boundary. A plugin's whole view of the world is [`CallState`].

pub mod catalogue;
pub mod client;
pub mod clock;
pub mod ethereum_signer;
pub mod http;
pub mod key_agreement;
pub mod log;
pub mod oauth;
pub mod progress;
pub mod secrets;
pub mod sign_in;
pub mod state;
pub mod wasi;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::limits::MemoryCap;

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    // What `describe` returns is cached on disk beside the compiled component.
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use carport::provider::types::{
    CallContext, Completion, CompletionReference, CompletionRequest, Content, Output, PluginInfo,
    Prompt, PromptResult, ResourceBody, ResourceContents, ResourceInfo, ResourceTemplate, Role,
    Tool, ToolError, ToolMode,
};

/// What the host grants one plugin, shared by all its calls.
pub struct Grants {
    pub plugin_id: String,
    pub http: http::Egress,
    pub secrets: secrets::SecretGrants,
    pub oauth: std::collections::BTreeMap<String, oauth::OAuthGrant>,
    /// plugins.toml `ethereum_keys`.
    pub ethereum_keys: ethereum_signer::SigningKeys,
    /// plugins.toml `[plugins.<id>.key_agreement]`; None denies the `key-agreement` import.
    pub key_agreement: Option<key_agreement::KeyAgreementGrant>,
    pub state: state::PluginState,
    /// `[plugins.<id>.sign_in]`: browser sign-in of the user.
    pub sign_in: Option<sign_in::SignIn>,
    /// plugins.toml `elicitation = true`.
    pub elicitation: bool,
    /// plugins.toml `sampling = true`.
    pub sampling: bool,
    /// plugins.toml `roots = true`.
    pub roots: bool,
    /// plugins.toml `dynamic_catalogue = true`; None denies the `catalogue` import.
    pub catalogue: Option<catalogue::CatalogueGrant>,
    /// How many more lines the plugin may log now; shared by all its calls.
    pub log_budget: std::sync::Mutex<log::LogBudget>,
}

/// The client of the request a plugin is serving, as far as the plugin may reach it. The MCP
/// layer implements it; the capabilities know nothing of MCP.
pub trait ClientLink: Send + Sync {
    /// Forwards a log message if the client wants messages of this level.
    fn log(&self, plugin_id: &str, level: log::Level, message: &str);
    /// Asks questions the plugin is allowed to ask.
    fn ask(
        &self,
        questions: Vec<(String, client::Question)>,
    ) -> Pin<Box<dyn Future<Output = client::Asked> + Send>>;
}

/// The store data of one call: the plugin's grants plus this call's deadline, progress sink and
/// link to the client.
pub struct CallState {
    pub grants: Arc<Grants>,
    pub memory: MemoryCap,
    pub deadline: Instant,
    pub progress: Option<progress::ProgressSink>,
    pub client: Option<Arc<dyn ClientLink>>,
    /// The plugin's own account of a panic, logged just before it traps.
    pub panic_message: Option<String>,
    /// The plugin asked the client something that will be answered in a later request.
    pub input_required: bool,
    /// The empty WASI of a component that imports it; see [`wasi`]. In a mutex only so that
    /// the call state stays `Sync`: it is reached through `&mut` and never locked.
    pub wasi: Option<std::sync::Mutex<wasi::EmptyWasi>>,
}

impl CallState {
    pub fn plugin_id(&self) -> &str {
        &self.grants.plugin_id
    }
}

impl carport::provider::types::Host for CallState {}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    Plugin::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}
