//! `progress`: a plugin's progress reports, forwarded to whoever asked for them (the MCP
//! layer turns them into `notifications/progress`).
//!
//! A plugin can report in a tight loop. Reports therefore pass a per-call budget (a burst, then
//! a few a second) and a short queue that is never waited on: what does not fit is dropped.
//! Memory stays bounded and the call's answer never waits behind a backlog of reports.

use std::time::Instant;

use tokio::sync::mpsc;

use super::CallState;
use super::carport::provider::progress::Host;

#[derive(Debug, Clone, PartialEq)]
pub struct ProgressReport {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: String,
}

const MAX_MESSAGE_CHARS: usize = 500;
/// Reports waiting to be forwarded; more are dropped.
const QUEUE_LENGTH: usize = 16;
/// Reports a call may make at once, and how many more each second after that.
const BURST_REPORTS: f64 = 10.0;
const REPORTS_PER_SECOND: f64 = 5.0;

/// Where one call's progress reports go.
pub struct ProgressSink {
    sender: mpsc::Sender<ProgressReport>,
    available: f64,
    refilled_at: Instant,
}

/// A sink for one call, and the receiving end for whoever forwards its reports.
pub fn channel() -> (ProgressSink, mpsc::Receiver<ProgressReport>) {
    let (sender, receiver) = mpsc::channel(QUEUE_LENGTH);
    let sink = ProgressSink {
        sender,
        available: BURST_REPORTS,
        refilled_at: Instant::now(),
    };
    (sink, receiver)
}

impl ProgressSink {
    fn send(&mut self, report: ProgressReport) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.available = (self.available + elapsed * REPORTS_PER_SECOND).min(BURST_REPORTS);
        self.refilled_at = now;
        if self.available < 1.0 {
            return;
        }
        self.available -= 1.0;
        // A full queue or a receiver that is gone (the result is no longer wanted): dropped.
        let _ = self.sender.try_send(report);
    }
}

impl Host for CallState {
    async fn report(
        &mut self,
        progress: f64,
        total: Option<f64>,
        message: String,
    ) -> wasmtime::Result<()> {
        if let Some(sink) = &mut self.progress {
            sink.send(ProgressReport {
                progress,
                total,
                message: message
                    .chars()
                    .take(MAX_MESSAGE_CHARS)
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_budget_and_the_queue() {
        let (mut sink, mut receiver) = channel();
        let started = std::time::Instant::now();
        for step in 0..100_000 {
            sink.send(ProgressReport {
                progress: f64::from(step),
                total: None,
                message: String::from("x"),
            });
        }
        // The budget refills while the loop runs; a slow machine earns a few more reports.
        let refilled = started.elapsed().as_secs_f64() * REPORTS_PER_SECOND;
        drop(sink);
        let mut received = 0;
        while let Ok(report) = receiver.try_recv() {
            assert!(report.message.len() <= 10_000);
            received += 1;
        }
        assert!(
            received as f64 <= BURST_REPORTS + refilled.ceil() + 1.0,
            "{received} reports passed in {refilled:.1} refills"
        );
        assert!(received >= 1);
    }
}
