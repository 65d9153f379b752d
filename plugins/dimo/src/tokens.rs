//! DIMO's two tokens. The developer token comes from a challenge the host signs with the
//! license's key (the plugin never holds the key); a vehicle token comes from the token
//! exchange with the privileges the vehicle's owner granted the license. Both are kept in
//! plugin state until shortly before they expire, so N calls cost one challenge and one
//! exchange per vehicle.

use carport_guest::http::Request;
use carport_guest::{ToolError, clock, ethereum, state};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Dimo;

/// Renew this long before expiry, so a token never runs out in the middle of a call.
const MARGIN_MS: u64 = 60_000;
const DEVELOPER_TOKEN_KEY: &str = "developer_token";

#[derive(Serialize, Deserialize)]
struct Cached {
    token: String,
    expires_at_ms: u64,
}

fn cached(key: &str) -> Option<String> {
    let bytes = state::get(key).ok()??;
    let cached: Cached = serde_json::from_slice(&bytes).ok()?;
    (cached.expires_at_ms > clock::now_ms() + MARGIN_MS).then_some(cached.token)
}

fn keep(key: &str, token: &str, expires_at_ms: u64) -> Result<(), ToolError> {
    let value = serde_json::to_vec(&Cached {
        token: token.to_string(),
        expires_at_ms,
    })
    .map_err(|error| ToolError::Internal(error.to_string()))?;
    state::set(key, &value).map_err(ToolError::Denied)
}

/// Drops a token the API refused before its time (revoked, or the API restarted).
pub fn forget(key: &str) {
    let _ = state::delete(key);
}

pub fn vehicle_key(token_id: u32) -> String {
    format!("vehicle_token.{token_id}")
}

/// The `exp` claim of a JWT, in milliseconds; the payload is read, not verified: the API that
/// issued it checks it.
fn expiry_ms(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64_url_decode(payload)?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["exp"].as_u64().map(|seconds| seconds * 1000)
}

fn base64_url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    for character in text.bytes() {
        let value = match character {
            b'A'..=b'Z' => character - b'A',
            b'a'..=b'z' => character - b'a' + 26,
            b'0'..=b'9' => character - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    Some(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Privilege i is granted when bits 2i and 2i+1 of the grant's permissions are both set.
pub fn decode_permissions(hex_text: &str) -> Vec<u32> {
    let digits = hex_text.trim_start_matches("0x");
    let mut privileges = Vec::new();
    // Least significant digit first: digit k holds bits 4k..4k+3, i.e. privileges 2k and 2k+1.
    for (position, digit) in digits.chars().rev().enumerate() {
        let Some(value) = digit.to_digit(16) else {
            return Vec::new();
        };
        for half in 0..2 {
            if (value >> (2 * half)) & 0b11 == 0b11 {
                let privilege = 2 * position as u32 + half;
                if privilege > 0 {
                    privileges.push(privilege);
                }
            }
        }
    }
    privileges.sort_unstable();
    privileges
}

impl Dimo {
    /// The developer token: from plugin state, else challenge → host signature → submit.
    pub fn developer_token(&self) -> Result<String, ToolError> {
        if let Some(token) = cached(DEVELOPER_TOKEN_KEY) {
            return Ok(token);
        }
        let fields = [
            ("client_id", self.client_id.as_str()),
            ("domain", self.domain.as_str()),
            ("scope", "openid email"),
            ("response_type", "code"),
            ("address", self.client_id.as_str()),
        ];
        let challenge: Value =
            Request::post(format!("{}/auth/web3/generate_challenge", self.urls.auth))
                .form(&fields)
                .send()?
                .success()?
                .json()?;
        let (Some(text), Some(session)) =
            (challenge["challenge"].as_str(), challenge["state"].as_str())
        else {
            return Err(ToolError::Internal(
                "DIMO's auth answered the challenge request without `challenge` and `state`".into(),
            ));
        };
        let signature =
            ethereum::personal_sign(&self.key, text.as_bytes()).map_err(ToolError::Denied)?;
        let signature = format!("0x{}", hex(&signature));
        let submitted = Request::post(format!("{}/auth/web3/submit_challenge", self.urls.auth))
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("domain", self.domain.as_str()),
                ("grant_type", "authorization_code"),
                ("state", session),
                ("signature", signature.as_str()),
            ])
            .send()?;
        if !submitted.is_success() {
            return Err(ToolError::Auth(format!(
                "DIMO refused the signed challenge (HTTP {}: {}); check that client_id is your \
                 developer license, domain its registered redirect URI, and the key an enabled \
                 signer of the license",
                submitted.status,
                submitted.vendor_message()
            )));
        }
        let answer: Value = submitted.json()?;
        let token = answer["access_token"]
            .as_str()
            .ok_or_else(|| ToolError::Internal("DIMO's token answer has no access_token".into()))?
            .to_string();
        let expires_at_ms = expiry_ms(&token).unwrap_or_else(|| {
            clock::now_ms() + answer["expires_in"].as_u64().unwrap_or(3600) * 1000
        });
        keep(DEVELOPER_TOKEN_KEY, &token, expires_at_ms)?;
        Ok(token)
    }

    /// Sends a request with the developer token; a 401 means it was revoked early: fetch a
    /// new one and send once more.
    pub fn with_developer_token(
        &self,
        request: impl Fn(&str) -> Request,
    ) -> Result<carport_guest::http::Response, ToolError> {
        let response = request(&self.developer_token()?).send()?;
        if response.status != 401 {
            return Ok(response);
        }
        forget(DEVELOPER_TOKEN_KEY);
        request(&self.developer_token()?).send()
    }

    /// The privileges the license holds on a vehicle, from its permission grants in Identity.
    fn granted_privileges(&self, token_id: u32) -> Result<Vec<u32>, ToolError> {
        let data = self.identity(
            "query Grants($tokenId: Int!) { vehicle(tokenId: $tokenId) { sacds(first: 100) { nodes { grantee permissions } } } }",
            json!({"tokenId": token_id}),
        )?;
        let grants = data["vehicle"]["sacds"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut privileges: Vec<u32> = grants
            .iter()
            .filter(|grant| {
                grant["grantee"]
                    .as_str()
                    .is_some_and(|grantee| grantee.eq_ignore_ascii_case(&self.client_id))
            })
            .flat_map(|grant| decode_permissions(grant["permissions"].as_str().unwrap_or("")))
            .collect();
        privileges.sort_unstable();
        privileges.dedup();
        Ok(privileges)
    }

    /// The vehicle's token, from plugin state or the token exchange.
    pub fn vehicle_token(&self, token_id: u32) -> Result<String, ToolError> {
        let key = vehicle_key(token_id);
        if let Some(token) = cached(&key) {
            return Ok(token);
        }
        let privileges = self.granted_privileges(token_id)?;
        if privileges.is_empty() {
            return Err(ToolError::Auth(format!(
                "vehicle {token_id} has not shared its data with this developer license; the \
                 owner can share it with the link from generate_vehicle_data_sharing_url"
            )));
        }
        let body = json!({
            "nftContractAddress": self.contract,
            "privileges": privileges,
            "tokenId": token_id,
        });
        let response = self.with_developer_token(|token| {
            Request::post(format!("{}/v1/tokens/exchange", self.urls.token_exchange))
                .header("authorization", &format!("Bearer {token}"))
                .json(&body)
        })?;
        if !response.is_success() {
            return Err(ToolError::Auth(format!(
                "DIMO's token exchange refused vehicle {token_id} (HTTP {}: {})",
                response.status,
                response.vendor_message()
            )));
        }
        let answer: Value = response.json()?;
        let token = answer["token"]
            .as_str()
            .ok_or_else(|| {
                ToolError::Internal("the token exchange answered without `token`".into())
            })?
            .to_string();
        let expires_at_ms = expiry_ms(&token).unwrap_or_else(|| clock::now_ms() + 600_000);
        keep(&key, &token, expires_at_ms)?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_two_bits_per_privilege() {
        assert_eq!(decode_permissions("0x3ffc"), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(decode_permissions("0xc"), vec![1]);
        assert_eq!(decode_permissions("0x30c"), vec![1, 4]);
        assert_eq!(decode_permissions("0x3fffc"), vec![1, 2, 3, 4, 5, 6, 7, 8]);
        // One bit of a pair is not a grant.
        assert_eq!(decode_permissions("0x4"), Vec::<u32>::new());
        assert_eq!(decode_permissions("zz"), Vec::<u32>::new());
    }

    #[test]
    fn reads_the_expiry_claim() {
        // {"exp":1700000000}
        let token = "e30.eyJleHAiOjE3MDAwMDAwMDB9.sig";
        assert_eq!(expiry_ms(token), Some(1_700_000_000_000));
    }
}
