//! Shared helpers for carport provider plugins.
//!
//! A provider implements [`bindings::exports::carport::provider::provider::Guest`] and exports it
//! with [`export_plugin!`]. Everything a provider may do outside its sandbox goes through the
//! host imports wrapped here: [`http`], [`progress`], [`log`], [`clock`], [`state`].

pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "carport_guest::bindings",
    });
}

pub mod args;
pub mod http;
pub mod tool;
pub mod vehicle;

pub use bindings::carport::provider::types::{
    Annotations, CallContext, Output, PluginInfo, Tool, ToolError, UpstreamError,
};
pub use bindings::export_plugin;
pub use bindings::exports::carport::provider::provider::Guest;

/// What a provider implements; [`plugin!`] exports it.
pub trait Provider {
    fn describe() -> PluginInfo;
    fn call_tool(
        name: String,
        arguments: String,
        context: CallContext,
    ) -> Result<Output, ToolError>;
}

/// Exports a [`Provider`] as the component's `provider` interface, with a panic hook that
/// sends the panic message to the host's log, so a crash is reported with its reason rather
/// than as a bare `unreachable` trap.
#[macro_export]
macro_rules! plugin {
    ($provider:ty) => {
        struct CarportPluginExport;

        impl $crate::Guest for CarportPluginExport {
            fn describe() -> $crate::PluginInfo {
                $crate::install_panic_hook();
                <$provider as $crate::Provider>::describe()
            }

            fn call_tool(
                name: String,
                arguments: String,
                context: $crate::CallContext,
            ) -> Result<$crate::Output, $crate::ToolError> {
                $crate::install_panic_hook();
                <$provider as $crate::Provider>::call_tool(name, arguments, context)
            }
        }

        $crate::export_plugin!(CarportPluginExport);
    };
}

/// The host recognises error log lines starting with `panic: ` as the reason of a crash.
pub fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            bindings::carport::provider::log::log(
                bindings::carport::provider::log::Level::Error,
                &format!("panic: {info}"),
            );
        }));
    });
}

/// Host log, routed to carport's stderr log with the plugin's id.
pub mod log {
    use crate::bindings::carport::provider::log::{Level, log};

    pub fn info(message: &str) {
        log(Level::Info, message);
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message);
    }
    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }
}

pub mod clock {
    pub use crate::bindings::carport::provider::clock::{now_ms, sleep_ms};
}

pub mod state {
    pub use crate::bindings::carport::provider::state::{delete, get, set};
}

pub mod progress {
    /// Reports step `done` of `total` to the assistant's client (MCP progress notification).
    pub fn report(done: u32, total: u32, message: &str) {
        crate::bindings::carport::provider::progress::report(
            f64::from(done),
            Some(f64::from(total)),
            message,
        );
    }
}

/// The plugin's settings from plugins.toml, as handed over with each call.
#[derive(Clone)]
pub struct Settings(Vec<(String, String)>);

impl Settings {
    pub fn from_context(context: &CallContext) -> Self {
        Settings(context.settings.clone())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }
}

impl Output {
    /// A structured result whose text is the same JSON, for clients that ignore structuredContent.
    pub fn json(value: &serde_json::Value) -> Output {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        Output {
            structured: Some(value.to_string()),
            text,
        }
    }

    /// A structured result with a short human summary as its text.
    pub fn json_with_text(value: &serde_json::Value, text: impl Into<String>) -> Output {
        Output {
            structured: Some(value.to_string()),
            text: text.into(),
        }
    }
}

impl ToolError {
    pub fn invalid(message: impl Into<String>) -> ToolError {
        ToolError::InvalidArguments(message.into())
    }

    pub fn internal(message: impl Into<String>) -> ToolError {
        ToolError::Internal(message.into())
    }
}
