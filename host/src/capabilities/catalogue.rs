//! `catalogue`: a plugin whose tools depend on its own state (after a sign-in, the account's
//! permissions decide which commands exist) says that its `describe` may answer differently now.
//!
//! The plugin only marks itself changed; the host describes it again later, outside the call,
//! and serves the new lists. A plugin calling `changed` in a loop must not cause a storm of
//! `describe` runs, so changes are coalesced: the plugins marked since the last round are taken
//! together, one round runs at a time, and rounds are at least [`MIN_ROUND_INTERVAL`] apart.
//! Marks made while a round runs are kept for the next one, so the last change is never lost.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::CallState;
use super::carport::provider::catalogue::Host;

/// The shortest time between two rounds of describing changed plugins again.
pub const MIN_ROUND_INTERVAL: Duration = Duration::from_millis(250);

/// The plugins whose catalogue changed and that have not been described again yet. One per
/// runtime, shared by every plugin granted `dynamic_catalogue`.
#[derive(Default)]
pub struct CatalogueChanges {
    pending: Mutex<BTreeSet<String>>,
    /// Holds at most one wake-up, so a burst of marks wakes the follower once.
    marked: Notify,
}

impl CatalogueChanges {
    fn mark(&self, plugin_id: &str) {
        let newly = self
            .pending
            .lock()
            .expect("not poisoned")
            .insert(plugin_id.to_string());
        if newly {
            self.marked.notify_one();
        }
    }

    /// Hands the plugins marked changed to `describe_again`, one round at a time, forever.
    pub async fn follow<F, Round>(&self, mut describe_again: F)
    where
        F: FnMut(Vec<String>) -> Round,
        Round: Future<Output = ()>,
    {
        loop {
            self.marked.notified().await;
            let changed: Vec<String> =
                std::mem::take(&mut *self.pending.lock().expect("not poisoned"))
                    .into_iter()
                    .collect();
            if changed.is_empty() {
                continue;
            }
            describe_again(changed).await;
            tokio::time::sleep(MIN_ROUND_INTERVAL).await;
        }
    }
}

/// plugins.toml `dynamic_catalogue = true`.
pub struct CatalogueGrant {
    pub changes: Arc<CatalogueChanges>,
}

impl Host for CallState {
    async fn changed(&mut self) -> wasmtime::Result<Result<(), String>> {
        let plugin = self.plugin_id();
        let Some(grant) = &self.grants.catalogue else {
            let refusal = format!(
                "plugin `{plugin}` said its catalogue changed, which plugins.toml does not let \
                 it do (rule: a plugin's tools are those it described at load); to let it \
                 change its tools, prompts and resource templates while carport runs, add \
                 `dynamic_catalogue = true` to [plugins.{plugin}]"
            );
            // A plugin asking in a loop would flood the log; the refusal is its answer.
            tracing::debug!(plugin, "refused: {refusal}");
            return Ok(Err(refusal));
        };
        grant.changes.mark(plugin);
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_folds_into_one_round_and_marks_during_a_round_into_the_next() {
        let changes = Arc::new(CatalogueChanges::default());
        for _ in 0..100 {
            changes.mark("a");
        }
        changes.mark("b");
        let (rounds, mut round) = tokio::sync::mpsc::unbounded_channel();
        let follower = tokio::spawn({
            let changes = changes.clone();
            async move {
                let mut count = 0;
                changes
                    .follow(|changed| {
                        count += 1;
                        let (changes, rounds) = (changes.clone(), rounds.clone());
                        let first = count == 1;
                        async move {
                            if first {
                                for _ in 0..100 {
                                    changes.mark("a");
                                }
                            }
                            rounds.send(changed).unwrap();
                        }
                    })
                    .await;
            }
        });
        assert_eq!(round.recv().await.unwrap(), ["a", "b"]);
        assert_eq!(round.recv().await.unwrap(), ["a"]);
        changes.mark("c");
        assert_eq!(
            round.recv().await.unwrap(),
            ["c"],
            "nothing of the bursts was left for a third round"
        );
        follower.abort();
    }
}
