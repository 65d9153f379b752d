//! Tesla's Vehicle Command Protocol, as its `protocol.md` and `.proto` files describe it (in
//! Tesla's `vehicle-command` repository): the routable-message envelope, the handshake, session
//! keys, HMAC-SHA256 personalised command tags over the TLV metadata, application payloads and
//! fault codes. The client side runs in the `tesla` plugin (Wasm), which never holds a private
//! key: the host derives session keys for it. With the `ecdh` feature, the key agreement and the
//! car's side ([`vehicle`]) serve the host and the simulator.

pub mod action;
mod fault;
pub mod keys;
pub mod messages;
pub mod metadata;
pub mod session;
#[cfg(feature = "ecdh")]
pub mod vehicle;

pub use fault::Fault;
pub use keys::SessionKey;
pub use messages::{Domain, RoutableMessage};
pub use prost::Message;

use messages::{CarServerResponse, FromVcsecMessage};

/// What the car's application layer said about a command it authenticated: Ok, or why it
/// refused, in words.
pub fn application_outcome(domain: Domain, payload: &[u8]) -> Result<(), String> {
    match domain {
        Domain::Infotainment => {
            let answer = CarServerResponse::decode(payload)
                .map_err(|_| "the car's answer could not be decoded".to_string())?;
            match answer.action_status {
                Some(status) if status.result != 0 => Err(status
                    .result_reason
                    .map(|reason| reason.plain_text)
                    .filter(|text| !text.is_empty())
                    .unwrap_or_else(|| "the car reported an error".into())),
                _ => Ok(()),
            }
        }
        Domain::VehicleSecurity => {
            let answer = FromVcsecMessage::decode(payload)
                .map_err(|_| "the car's answer could not be decoded".to_string())?;
            if let Some(error) = answer.nominal_error {
                return Err(error.explain().to_string());
            }
            match answer.command_status.map(|status| status.operation_status) {
                Some(1) => Err("the car's security controller is busy; try again".into()),
                Some(2) => Err("the car's security controller reported an error".into()),
                _ => Ok(()),
            }
        }
        Domain::Broadcast => Ok(()),
    }
}

/// The infotainment answer to an action: OK, or an error with Tesla's reason text.
pub fn car_server_answer(error: Option<&str>) -> Vec<u8> {
    let status = match error {
        None => messages::ActionStatus {
            result: 0,
            result_reason: None,
        },
        Some(reason) => messages::ActionStatus {
            result: 1,
            result_reason: Some(messages::ResultReason {
                plain_text: reason.to_string(),
            }),
        },
    };
    CarServerResponse {
        action_status: Some(status),
    }
    .encode_to_vec()
}
