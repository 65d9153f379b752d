//! `log`: a plugin's messages go to carport's log (stderr), tagged with the plugin's id.

use super::CallState;
use super::carport::provider::log::{Host, Level};

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
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}
