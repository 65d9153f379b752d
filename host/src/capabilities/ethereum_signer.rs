//! `ethereum-signer`: EIP-191 signatures with secp256k1 keys the host holds.
//!
//! A plugin may sign with the secrets plugins.toml lists in its `ethereum_keys`; such a secret
//! is never attached to a request nor readable (the configuration refuses either), so the key
//! never enters the sandbox: the plugin gets signatures and the address, nothing else.

use std::collections::BTreeSet;

use k256::ecdsa::{SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};

use super::CallState;
use super::carport::provider::ethereum_signer::Host;

/// The keys one plugin may sign with.
#[derive(Debug, Default)]
pub struct SigningKeys {
    names: BTreeSet<String>,
}

impl SigningKeys {
    pub fn new(names: impl IntoIterator<Item = String>) -> SigningKeys {
        SigningKeys {
            names: names.into_iter().collect(),
        }
    }
}

/// The digest `personal_sign` signs: Keccak-256 of the EIP-191 prefix, the message's length in
/// decimal, and the message.
pub fn personal_message_digest(message: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(b"\x19Ethereum Signed Message:\n");
    hasher.update(message.len().to_string().as_bytes());
    hasher.update(message);
    hasher.finalize().into()
}

/// The signature as wallets produce it: r ‖ s ‖ v, s in the lower half, v = 27 + recovery id.
pub fn personal_sign(key: &SigningKey, message: &[u8]) -> Result<[u8; 65], String> {
    let digest = personal_message_digest(message);
    let (signature, recovery) = key
        .sign_prehash_recoverable(&digest)
        .map_err(|error| format!("signing failed: {error}"))?;
    let mut bytes = [0u8; 65];
    bytes[..64].copy_from_slice(&signature.to_bytes());
    bytes[64] = 27 + recovery.to_byte();
    Ok(bytes)
}

/// The EIP-55 checksummed address of a public key.
pub fn address(key: &VerifyingKey) -> String {
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let lower = hex::encode(&hash[12..]);
    let checksum = hex::encode(Keccak256::digest(lower.as_bytes()));
    let mut checksummed = String::from("0x");
    for (digit, nibble) in lower.chars().zip(checksum.chars()) {
        let upper = nibble.to_digit(16).unwrap_or(0) >= 8;
        checksummed.push(if upper {
            digit.to_ascii_uppercase()
        } else {
            digit
        });
    }
    checksummed
}

/// A key as operators store it: 64 hex digits, with or without `0x`.
fn parse_key(text: &str) -> Option<SigningKey> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0x").unwrap_or(digits);
    let bytes = hex::decode(digits).ok()?;
    SigningKey::from_slice(&bytes).ok()
}

impl CallState {
    fn signing_key(&self, name: &str) -> Result<SigningKey, String> {
        let plugin = self.plugin_id();
        if !self.grants.ethereum_keys.names.contains(name) {
            return Err(format!(
                "plugin `{plugin}` asked to sign with `{name}`, which plugins.toml does not let \
                 it sign with; to allow it, add \"{name}\" to ethereum_keys in [plugins.{plugin}] \
                 and grant the key as [plugins.{plugin}.secrets.{name}] with origins = []"
            ));
        }
        let value = self.grants.secrets.resolve(name)?;
        parse_key(value.expose()).ok_or_else(|| {
            format!(
                "secret `{name}` of plugin `{plugin}` is not a secp256k1 private key; store 64 \
                 hexadecimal digits (optionally prefixed with 0x)"
            )
        })
    }

    fn signing_refused<T>(&self, result: Result<T, String>) -> Result<T, String> {
        if let Err(refusal) = &result {
            tracing::warn!(plugin = self.plugin_id(), "ethereum-signer: {refusal}");
        }
        result
    }
}

impl Host for CallState {
    async fn address(&mut self, key: String) -> wasmtime::Result<Result<String, String>> {
        let result = self
            .signing_key(&key)
            .map(|signing| address(signing.verifying_key()));
        Ok(self.signing_refused(result))
    }

    async fn personal_sign(
        &mut self,
        key: String,
        message: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let result = self
            .signing_key(&key)
            .and_then(|signing| personal_sign(&signing, &message))
            .map(|signature| signature.to_vec());
        Ok(self.signing_refused(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of web3.js's `eth.accounts.sign` documentation, which DIMO's JavaScript SDK
    /// uses for its challenge.
    #[test]
    fn signs_as_web3_does() {
        let key = parse_key("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
            .unwrap();
        assert_eq!(
            address(key.verifying_key()),
            "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
        );
        let signature = personal_sign(&key, b"Some data").unwrap();
        assert_eq!(
            hex::encode(signature),
            "b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd\
             6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a029\
             1c"
        );
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        assert!(parse_key("not hex").is_none());
        assert!(parse_key("00").is_none());
        assert!(parse_key(&"0".repeat(64)).is_none());
    }
}
