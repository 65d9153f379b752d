//! The host side of the WIT world: one module per imported interface, each checking its
//! capability at the boundary. A plugin's whole view of the world is [`CallState`].

pub mod clock;
pub mod http;
pub mod log;
pub mod oauth;
pub mod progress;
pub mod secrets;
pub mod state;

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::limits::MemoryCap;

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use carport::provider::types::{CallContext, Output, PluginInfo, Tool, ToolError};

/// What the host grants one plugin, shared by all its calls.
pub struct Grants {
    pub plugin_id: String,
    pub http: http::Egress,
    pub secrets: secrets::SecretGrants,
    pub oauth: std::collections::BTreeMap<String, oauth::OAuthGrant>,
    pub state: state::PluginState,
    /// How many more lines the plugin may log now; shared by all its calls.
    pub log_budget: std::sync::Mutex<log::LogBudget>,
}

/// The store data of one call: the plugin's grants plus this call's deadline and progress sink.
pub struct CallState {
    pub grants: Arc<Grants>,
    pub memory: MemoryCap,
    pub deadline: Instant,
    pub progress: Option<progress::ProgressSink>,
    /// The plugin's own account of a panic, logged just before it traps.
    pub panic_message: Option<String>,
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
