//! Resource subscriptions: carport reads a subscribed resource again every
//! `resource_poll_seconds` of its plugin and tells the client when the contents changed.
//! Plugins' resource reads never wake a car, so polling costs the car nothing.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use rmcp::model::{ResourceUpdatedNotificationParam, ServerNotification};
use rmcp::service::SubscriptionSink;
use rmcp::{Peer, RoleServer};
use tokio::task::JoinHandle;

use crate::runtime::Registry;

/// Where change notices go: a legacy session's peer, or a 2026-07-28 `subscriptions/listen`
/// stream.
#[derive(Clone)]
pub enum Notify {
    Peer(Peer<RoleServer>),
    Listen(SubscriptionSink),
}

impl Notify {
    /// False once the client is gone, which ends the subscription.
    async fn updated(&self, uri: &str) -> bool {
        let params = ResourceUpdatedNotificationParam::new(uri);
        match self {
            Notify::Peer(peer) => peer.notify_resource_updated(params).await.is_ok(),
            Notify::Listen(sink) => sink
                .send(ServerNotification::ResourceUpdatedNotification(
                    rmcp::model::ResourceUpdatedNotification::new(params),
                ))
                .await
                .is_ok(),
        }
    }
}

/// One session's subscriptions, by URI.
#[derive(Default)]
pub struct Subscriptions {
    watchers: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Subscriptions {
    /// Starts watching `uri` (again, if it was watched already).
    pub fn subscribe(
        &self,
        registry: Arc<Registry>,
        uri: String,
        notify: Notify,
    ) -> Result<(), String> {
        let poll = registry
            .resource_plugin(&uri)
            .map_err(|error| error.to_string())?
            .resource_poll;
        let watched = uri.clone();
        let watcher = tokio::spawn(async move {
            let mut last = fingerprint(&registry, &watched).await;
            loop {
                tokio::time::sleep(poll).await;
                let now = fingerprint(&registry, &watched).await;
                if now.is_some() && now != last {
                    last = now;
                    if !notify.updated(&watched).await {
                        return;
                    }
                }
            }
        });
        if let Some(previous) = self.lock().insert(uri, watcher) {
            previous.abort();
        }
        Ok(())
    }

    pub fn unsubscribe(&self, uri: &str) {
        if let Some(watcher) = self.lock().remove(uri) {
            watcher.abort();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, JoinHandle<()>>> {
        self.watchers.lock().expect("not poisoned")
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for watcher in self.lock().values() {
            watcher.abort();
        }
    }
}

/// A hash of the resource's contents; `None` when it cannot be read right now (a failed read
/// is not a change).
async fn fingerprint(registry: &Registry, uri: &str) -> Option<u64> {
    let contents = registry.read_resource(uri, Default::default()).await.ok()?;
    let mut hasher = DefaultHasher::new();
    for item in contents {
        item.uri.hash(&mut hasher);
        match item.body {
            crate::capabilities::ResourceBody::Text(text) => text.hash(&mut hasher),
            crate::capabilities::ResourceBody::Blob(bytes) => bytes.hash(&mut hasher),
        }
    }
    Some(hasher.finish())
}
