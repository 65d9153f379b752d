//! `clock`: wall time, and sleeping that never outlives the call's deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::CallState;
use super::carport::provider::clock::Host;

impl Host for CallState {
    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }

    async fn sleep_ms(&mut self, ms: u32) -> wasmtime::Result<()> {
        let wake_at = Instant::now() + Duration::from_millis(u64::from(ms));
        // Sleeping past the deadline would only delay the inevitable interrupt.
        tokio::time::sleep_until(wake_at.min(self.deadline).into()).await;
        Ok(())
    }
}
