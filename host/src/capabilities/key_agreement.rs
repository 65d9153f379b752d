//! `key-agreement`: ECDH with a private key the host holds for the plugin (Tesla's Vehicle
//! Command Protocol), so the plugin can sign commands without ever holding the key.
//!
//! The key is a `file` (or `env`) secret of the plugin named by `[plugins.<id>.key_agreement]`,
//! in PEM; it is read at each use (a replaced key takes effect at once), never attached to a
//! request and never revealed. The plugin gets the public key and session keys derived from
//! it, which are only good with the one peer they were agreed with.

use p256::SecretKey;
use tesla_protocol::keys::agreement::{public_bytes, secret_from_pem, session_key};

use super::CallState;
use super::carport::provider::key_agreement::Host;

/// plugins.toml `[plugins.<id>.key_agreement]`: which secret holds the private key.
#[derive(Debug, Clone)]
pub struct KeyAgreementGrant {
    pub secret: String,
}

impl CallState {
    fn vehicle_key(&self) -> Result<SecretKey, String> {
        let plugin = self.plugin_id();
        let Some(grant) = &self.grants.key_agreement else {
            return Err(format!(
                "plugin `{plugin}` asked for a vehicle key agreement, which plugins.toml does not \
                 grant it; to grant it, create a key with `carport keys {plugin}` and add \
                 [plugins.{plugin}.key_agreement] with key = \"<name of a file secret holding \
                 the private key>\""
            ));
        };
        let pem = self.grants.secrets.resolve(&grant.secret)?;
        secret_from_pem(pem.expose()).ok_or_else(|| {
            format!(
                "secret `{}` of plugin `{plugin}` named by [plugins.{plugin}.key_agreement] is \
                 not a P-256 private key in PEM (EC PRIVATE KEY or PRIVATE KEY); create one with \
                 `carport keys {plugin}`",
                grant.secret
            )
        })
    }

    /// Logs a refusal: a warning when a granted key is broken, a debug line when no key is
    /// granted, since the tesla plugin asks before each command whether it may sign.
    fn refused<T>(&self, result: Result<T, String>) -> Result<T, String> {
        if let Err(refusal) = &result {
            match self.grants.key_agreement {
                Some(_) => tracing::warn!(plugin = self.plugin_id(), "refused: {refusal}"),
                None => tracing::debug!(plugin = self.plugin_id(), "refused: {refusal}"),
            }
        }
        result
    }
}

impl Host for CallState {
    async fn public_key(&mut self) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let key = self.vehicle_key().map(|key| public_bytes(&key));
        Ok(self.refused(key))
    }

    async fn session_key(
        &mut self,
        peer_public_key: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let agreed = self.vehicle_key().and_then(|key| {
            session_key(&key, &peer_public_key)
                .map(|shared| shared.0.to_vec())
                .ok_or_else(|| "the peer's public key is not an uncompressed P-256 point".into())
        });
        Ok(self.refused(agreed))
    }

    async fn challenge(&mut self) -> wasmtime::Result<Vec<u8>> {
        let mut bytes = vec![0; 16];
        getrandom::fill(&mut bytes)
            .map_err(|error| wasmtime::Error::msg(format!("no randomness: {error}")))?;
        Ok(bytes)
    }
}
