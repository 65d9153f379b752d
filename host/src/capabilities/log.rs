//! `log`: a plugin's messages go to carport's log (stderr), tagged with the plugin's id, and
//! to the client of the current request when it asked for messages of that level.

use super::CallState;
use super::carport::provider::log::Host;
pub use super::carport::provider::log::Level;

/// Longer messages are cut: a plugin must not be able to flood the log.
const MAX_MESSAGE_CHARS: usize = 2000;

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        if matches!(level, Level::Error)
            && let Some(reason) = message.strip_prefix("panic: ")
        {
            self.panic_message = Some(reason.to_string());
        }
        let plugin = self.plugin_id();
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info | Level::Notice => tracing::info!(plugin, "{message}"),
            Level::Warning => tracing::warn!(plugin, "{message}"),
            Level::Error | Level::Critical | Level::Alert | Level::Emergency => {
                tracing::error!(plugin, "{message}")
            }
        }
        if let Some(client) = &self.client {
            client.log(plugin, level, &message);
        }
        Ok(())
    }
}
