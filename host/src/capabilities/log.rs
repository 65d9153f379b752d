//! `log`: a plugin's messages go to carport's log (stderr), tagged with the plugin's id, and
//! to the client of the current request when it asked for messages of that level.
//!
//! A plugin must not be able to flood the log or forge lines in it: messages are cut to a
//! maximum length, control characters (line breaks included) are shown escaped, and each plugin
//! has a budget of lines that refills at a steady rate; what goes over it is counted and the
//! count logged once the budget allows again.

use std::time::Instant;

use super::CallState;
use super::carport::provider::log::Host;
pub use super::carport::provider::log::Level;

const MAX_MESSAGE_CHARS: usize = 2000;
/// Lines a plugin may log at once, and how many more it may log each second after that.
const BURST_LINES: f64 = 100.0;
const LINES_PER_SECOND: f64 = 20.0;

/// A token bucket of log lines for one plugin.
pub struct LogBudget {
    available: f64,
    refilled_at: Instant,
    suppressed: u64,
}

impl LogBudget {
    pub fn new() -> LogBudget {
        LogBudget {
            available: BURST_LINES,
            refilled_at: Instant::now(),
            suppressed: 0,
        }
    }

    /// Whether one more line may be logged now, and how many were suppressed before it.
    fn take(&mut self) -> Option<u64> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.available = (self.available + elapsed * LINES_PER_SECOND).min(BURST_LINES);
        self.refilled_at = now;
        if self.available < 1.0 {
            self.suppressed += 1;
            return None;
        }
        self.available -= 1.0;
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget::new()
    }
}

/// The message on one line, control characters escaped (`\n`, `\u{1b}`), at most
/// [`MAX_MESSAGE_CHARS`] characters of the original.
fn sanitised(message: &str) -> String {
    let mut line = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS));
    for c in message.chars().take(MAX_MESSAGE_CHARS) {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    if message.chars().nth(MAX_MESSAGE_CHARS).is_some() {
        line.push_str("… (cut)");
    }
    line
}

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if matches!(level, Level::Error)
            && let Some(reason) = message.strip_prefix("panic: ")
        {
            self.panic_message = Some(sanitised(reason));
        }
        let allowed = self
            .grants
            .log_budget
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(suppressed) = allowed else {
            return Ok(());
        };
        let plugin = self.plugin_id();
        if suppressed > 0 {
            tracing::warn!(
                plugin,
                "{suppressed} log lines of this plugin were dropped: it logged faster than \
                 {LINES_PER_SECOND} lines a second"
            );
        }
        let message = sanitised(&message);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_on_one_line_and_are_cut() {
        assert_eq!(
            sanitised("ok\nINFO carport: forged\r\u{1b}[2J"),
            "ok\\nINFO carport: forged\\r\\u{1b}[2J"
        );
        let long = sanitised(&"x".repeat(5000));
        assert!(long.ends_with("… (cut)"));
        assert_eq!(
            long.chars().filter(|c| *c == 'x').count(),
            MAX_MESSAGE_CHARS
        );
    }

    #[test]
    fn the_budget_allows_a_burst_then_counts_what_it_drops() {
        let mut budget = LogBudget::new();
        for _ in 0..BURST_LINES as usize {
            assert_eq!(budget.take(), Some(0));
        }
        assert_eq!(budget.take(), None);
        assert_eq!(budget.take(), None);
        budget.refilled_at -= std::time::Duration::from_secs(1);
        assert_eq!(budget.take(), Some(2));
    }
}
