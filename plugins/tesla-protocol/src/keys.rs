//! The keys derived from the session key K, and the tags made with them.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// K = SHA1(ECDH(private, peer public).x)[:16], shared by the client and one domain of the car.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(pub [u8; 16]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SessionKey(…)")
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl SessionKey {
    pub fn from_slice(bytes: &[u8]) -> Option<SessionKey> {
        Some(SessionKey(bytes.try_into().ok()?))
    }

    /// HMAC-SHA256(K, "session info"): authenticates the car's session info.
    pub fn session_info_key(&self) -> [u8; 32] {
        hmac(&self.0, &[b"session info"])
    }

    /// HMAC-SHA256(K, "authenticated command"): tags commands.
    pub fn command_key(&self) -> [u8; 32] {
        hmac(&self.0, &[b"authenticated command"])
    }

    /// The tag of a session info answer to the request whose uuid was `challenge`.
    pub fn session_info_tag(&self, vin: &str, challenge: &[u8], session_info: &[u8]) -> [u8; 32] {
        let metadata = crate::metadata::session_info_metadata(vin, challenge);
        hmac(&self.session_info_key(), &[&metadata, session_info])
    }

    /// The tag of a command: HMAC-SHA256(K', metadata || payload).
    pub fn command_tag(&self, metadata: &[u8], payload: &[u8]) -> [u8; 32] {
        hmac(&self.command_key(), &[metadata, payload])
    }
}

/// Compares tags in constant time.
pub fn tags_match(expected: &[u8], received: &[u8]) -> bool {
    expected.len() == received.len() && bool::from(expected.ct_eq(received))
}

#[cfg(feature = "ecdh")]
pub mod agreement {
    //! ECDH on P-256 and the derivation of K, for whoever holds a private key (the host, the
    //! simulated car).

    use super::SessionKey;
    use p256::{PublicKey, SecretKey};
    use sha1::{Digest, Sha1};

    /// The uncompressed SEC1 encoding (0x04 || x || y) the protocol uses for public keys.
    pub fn public_bytes(secret: &SecretKey) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// K for `secret` and the peer's uncompressed public key; None if the bytes are not a point
    /// of P-256.
    pub fn session_key(secret: &SecretKey, peer_public: &[u8]) -> Option<SessionKey> {
        let peer = PublicKey::from_sec1_bytes(peer_public).ok()?;
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
        let digest = Sha1::digest(shared.raw_secret_bytes());
        SessionKey::from_slice(&digest[..16])
    }

    /// Reads a private key in PEM: SEC1 ("EC PRIVATE KEY", as `openssl ecparam` and Tesla's
    /// tools write it) or PKCS#8 ("PRIVATE KEY").
    pub fn secret_from_pem(pem: &str) -> Option<SecretKey> {
        use p256::pkcs8::DecodePrivateKey;
        SecretKey::from_sec1_pem(pem)
            .ok()
            .or_else(|| SecretKey::from_pkcs8_pem(pem).ok())
    }
}
