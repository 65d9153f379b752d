//! Shared helpers for carport provider plugins.
//!
//! A provider implements [`bindings::exports::carport::provider::provider::Guest`] and exports it
//! with [`export_plugin!`]. Everything a provider may do outside its sandbox goes through the
//! host imports wrapped here: [`http`], [`progress`], [`log`], [`clock`], [`state`],
//! [`sign_in`].

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
pub mod compact;
pub mod http;
pub mod resources;
pub mod schema;
pub mod tool;
pub mod vehicle;

pub use bindings::carport::provider::types::{
    Annotations, CallContext, Completion, CompletionReference, CompletionRequest, Content, Media,
    Output, PluginInfo, Prompt, PromptArgument, PromptMessage, PromptResult, ResourceBody,
    ResourceContents, ResourceInfo, ResourceLink, ResourceTemplate, Role, Tool, ToolError,
    ToolMode, UpstreamError,
};
pub use bindings::export_plugin;
pub use bindings::exports::carport::provider::provider::Guest;

/// What a provider implements; [`plugin!`] exports it. Only `describe` and `call_tool` are
/// required: a provider without resources, prompts or completions keeps the defaults.
pub trait Provider {
    fn describe(context: &CallContext) -> PluginInfo;

    fn call_tool(
        name: String,
        arguments: String,
        context: CallContext,
    ) -> Result<Output, ToolError>;

    fn list_resources(_context: CallContext) -> Result<Vec<ResourceInfo>, ToolError> {
        Ok(Vec::new())
    }

    fn read_resource(
        uri: String,
        _context: CallContext,
    ) -> Result<Vec<ResourceContents>, ToolError> {
        Err(ToolError::NotFound(format!("no resource {uri}")))
    }

    fn get_prompt(
        name: String,
        _arguments: Vec<(String, String)>,
        _context: CallContext,
    ) -> Result<PromptResult, ToolError> {
        Err(ToolError::NotFound(format!("no prompt named {name}")))
    }

    fn complete(
        _request: CompletionRequest,
        _context: CallContext,
    ) -> Result<Completion, ToolError> {
        Ok(Completion::default())
    }
}

/// Exports a [`Provider`] as the component's `provider` interface, with a panic hook that
/// sends the panic message to the host's log, so a crash is reported with its reason rather
/// than as a bare `unreachable` trap.
#[macro_export]
macro_rules! plugin {
    ($provider:ty) => {
        struct CarportPluginExport;

        impl $crate::Guest for CarportPluginExport {
            fn describe(context: $crate::CallContext) -> $crate::PluginInfo {
                $crate::install_panic_hook();
                <$provider as $crate::Provider>::describe(&context)
            }

            fn call_tool(
                name: String,
                arguments: String,
                context: $crate::CallContext,
            ) -> Result<$crate::Output, $crate::ToolError> {
                $crate::install_panic_hook();
                <$provider as $crate::Provider>::call_tool(name, arguments, context)
            }

            fn list_resources(
                context: $crate::CallContext,
            ) -> Result<Vec<$crate::ResourceInfo>, $crate::ToolError> {
                $crate::install_panic_hook();
                <$provider as $crate::Provider>::list_resources(context)
            }

            fn read_resource(
                uri: String,
                context: $crate::CallContext,
            ) -> Result<Vec<$crate::ResourceContents>, $crate::ToolError> {
                $crate::install_panic_hook();
                <$provider as $crate::Provider>::read_resource(uri, context)
            }

            fn get_prompt(
                name: String,
                arguments: Vec<(String, String)>,
                context: $crate::CallContext,
            ) -> Result<$crate::PromptResult, $crate::ToolError> {
                $crate::install_panic_hook();
                <$provider as $crate::Provider>::get_prompt(name, arguments, context)
            }

            fn complete(
                request: $crate::CompletionRequest,
                context: $crate::CallContext,
            ) -> Result<$crate::Completion, $crate::ToolError> {
                $crate::install_panic_hook();
                <$provider as $crate::Provider>::complete(request, context)
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
    pub fn warning(message: &str) {
        log(Level::Warning, message);
    }
    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }
}

/// Questions to the client of the request: the user (needs `elicitation = true` in
/// plugins.toml), the client's model (`sampling = true`) and its roots (`roots = true`).
/// Clients of MCP 2026-07-28 answer by sending the request again: the plugin then runs again
/// from the start, so ask before acting and keep each question's id stable.
pub mod client {
    pub use crate::bindings::carport::provider::client::{
        Action, Answer, Elicitation, ElicitationAnswer, Question, Root, SamplingMessage,
        SamplingReply, SamplingRequest, ask,
    };

    impl std::fmt::Display for Action {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str(match self {
                Action::Accept => "accept",
                Action::Decline => "decline",
                Action::Cancel => "cancel",
            })
        }
    }

    /// Asks the user one question; `schema` is a JSON Schema object of flat fields.
    pub fn elicit(
        id: &str,
        message: &str,
        schema: &serde_json::Value,
    ) -> Result<ElicitationAnswer, String> {
        let question = Question::Elicit(Elicitation {
            message: message.to_string(),
            requested_schema: schema.to_string(),
        });
        match ask(&[(id.to_string(), question)]).pop() {
            Some(Ok(Answer::Elicited(answer))) => Ok(answer),
            Some(Ok(_)) => Err("the client answered another question".into()),
            Some(Err(reason)) => Err(reason),
            None => Err("the client gave no answer".into()),
        }
    }
}

pub mod clock {
    pub use crate::bindings::carport::provider::clock::{now_ms, sleep_ms};
}

/// Signatures by Ethereum keys the host holds (`ethereum_keys` in plugins.toml): the plugin
/// names the key's secret and gets signatures back, never the key.
pub mod ethereum {
    pub use crate::bindings::carport::provider::ethereum_signer::{address, personal_sign};
}

/// Key agreements with a private key the host holds (granted by `[plugins.<id>.key_agreement]`).
pub mod key_agreement {
    pub use crate::bindings::carport::provider::key_agreement::{
        challenge, public_key, session_key,
    };
}

pub mod state {
    pub use crate::bindings::carport::provider::state::{delete, get, set};
}

/// For a plugin whose tools depend on its state (granted `dynamic_catalogue` in plugins.toml):
/// `changed()` has the host run `describe` again and serve its new answer.
pub mod catalogue {
    pub use crate::bindings::carport::provider::catalogue::changed;
}

/// Browser sign-in of the user to the vendor (needs `[plugins.<id>.sign_in]` in plugins.toml):
/// `start` returns the link for the user, `finish` takes the address the browser ended on when
/// it could not reach carport, `status` says whether the user is signed in. What the sign-in
/// stores stays with the host.
pub mod sign_in {
    pub use crate::bindings::carport::provider::sign_in::{Account, finish, start, status};

    impl Account {
        /// A claim the vendor sent back and plugins.toml lets the plugin read.
        pub fn claim(&self, name: &str) -> Option<&str> {
            self.claims
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        }
    }
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

impl PluginInfo {
    /// A provider with tools only; add prompts and resources with the builders below.
    pub fn new(id: &str, summary: &str, tools: Vec<Tool>) -> PluginInfo {
        PluginInfo {
            id: id.to_string(),
            version: String::new(),
            summary: summary.to_string(),
            tools,
            prompts: Vec::new(),
            resource_templates: Vec::new(),
            resource_scheme: String::new(),
        }
    }

    pub fn with_version(mut self, version: &str) -> PluginInfo {
        self.version = version.to_string();
        self
    }

    pub fn with_prompts(mut self, prompts: Vec<Prompt>) -> PluginInfo {
        self.prompts = prompts;
        self
    }

    /// Declares the URI scheme of the plugin's resources and their templates.
    pub fn with_resources(mut self, scheme: &str, templates: Vec<ResourceTemplate>) -> PluginInfo {
        self.resource_scheme = scheme.to_string();
        self.resource_templates = templates;
        self
    }
}

impl Output {
    /// Plain text for the assistant, nothing structured.
    pub fn text(text: impl Into<String>) -> Output {
        Output {
            content: vec![Content::Text(text.into())],
            structured: None,
        }
    }

    /// A structured result whose text is the same JSON, for clients that ignore structuredContent.
    /// Compact, not indented: an assistant reads it as well either way, and indentation would
    /// add a third to the tokens of every nested answer.
    pub fn json(value: &serde_json::Value) -> Output {
        let json = value.to_string();
        Output {
            content: vec![Content::Text(json.clone())],
            structured: Some(json),
        }
    }

    /// A structured result with a short human summary as its text.
    pub fn json_with_text(value: &serde_json::Value, text: impl Into<String>) -> Output {
        Output {
            content: vec![Content::Text(text.into())],
            structured: Some(value.to_string()),
        }
    }
}

impl ResourceContents {
    /// A JSON document as a resource's contents.
    pub fn json(uri: &str, value: &serde_json::Value) -> ResourceContents {
        ResourceContents {
            uri: uri.to_string(),
            mime_type: Some("application/json".into()),
            body: ResourceBody::Text(value.to_string()),
        }
    }
}

impl Completion {
    /// The candidates that start with what the user typed (case-insensitive), at most 100.
    pub fn matching<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Completion {
        let typed = typed.to_lowercase();
        let matches: Vec<String> = candidates
            .into_iter()
            .filter(|candidate| candidate.to_lowercase().starts_with(&typed))
            .map(str::to_string)
            .collect();
        let total = u32::try_from(matches.len()).ok();
        let has_more = matches.len() > 100;
        Completion {
            values: matches.into_iter().take(100).collect(),
            total,
            has_more,
        }
    }
}

// The bindings generate `Completion`, so it cannot derive `Default` here.
#[allow(clippy::derivable_impls)]
impl Default for Completion {
    fn default() -> Completion {
        Completion {
            values: Vec::new(),
            total: None,
            has_more: false,
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
