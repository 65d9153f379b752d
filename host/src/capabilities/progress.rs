//! `progress`: a plugin's progress reports, forwarded to whoever asked for them (the MCP
//! layer turns them into `notifications/progress`).

use tokio::sync::mpsc::UnboundedSender;

use super::CallState;
use super::carport::provider::progress::Host;

#[derive(Debug, Clone, PartialEq)]
pub struct ProgressReport {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: String,
}

pub type ProgressSink = UnboundedSender<ProgressReport>;

const MAX_MESSAGE_CHARS: usize = 500;

impl Host for CallState {
    async fn report(
        &mut self,
        progress: f64,
        total: Option<f64>,
        message: String,
    ) -> wasmtime::Result<()> {
        if let Some(sink) = &self.progress {
            // The receiver is gone only when the call's result is no longer wanted.
            let _ = sink.send(ProgressReport {
                progress,
                total,
                message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
            });
        }
        Ok(())
    }
}
