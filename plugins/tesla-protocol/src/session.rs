//! The client's side: the handshake and signing commands within a session.

use prost::Message;

use crate::keys::{SessionKey, tags_match};
use crate::messages::{
    Destination, HmacPersonalizedSignatureData, IdentityType, KeyIdentity, Payload,
    RoutableMessage, SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST, SessionInfo, SessionInfoRequest,
    SignatureData, SignatureType,
};
use crate::{Domain, Fault};

/// How long a command stays valid on the car's clock.
pub const COMMAND_TTL_SECONDS: u32 = 15;

/// What a domain told us in its (authenticated) session info.
#[derive(Clone, PartialEq, Message)]
pub struct SessionState {
    /// The domain's public key, uncompressed; the host derives K from it.
    #[prost(bytes, tag = "1")]
    pub car_public_key: Vec<u8>,
    #[prost(bytes, tag = "2")]
    pub epoch: Vec<u8>,
    /// The last counter used (or the car's, right after a handshake).
    #[prost(uint32, tag = "3")]
    pub counter: u32,
    /// The car's clock (seconds into the epoch) when the session info arrived…
    #[prost(uint32, tag = "4")]
    pub clock_time: u32,
    /// …and our clock then, in Unix milliseconds.
    #[prost(uint64, tag = "5")]
    pub received_at_ms: u64,
}

/// A handshake request to `domain`; `uuid` must be fresh and unpredictable, as the answer's
/// tag covers it.
pub fn session_info_request(
    domain: Domain,
    public_key: &[u8],
    routing_address: &[u8],
    uuid: &[u8],
) -> RoutableMessage {
    RoutableMessage {
        to_destination: Some(Destination::domain(domain)),
        from_destination: Some(Destination::routing_address(routing_address.to_vec())),
        payload: Some(Payload::SessionInfoRequest(SessionInfoRequest {
            public_key: public_key.to_vec(),
            challenge: Vec::new(),
        })),
        uuid: uuid.to_vec(),
        ..RoutableMessage::default()
    }
}

/// Why a car's answer could not be used.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// The car does not know our key (session info status, or `UNKNOWN_KEY_ID`).
    KeyNotPaired,
    /// The car refused at the protocol layer.
    Fault(Fault),
    /// The answer is not what the protocol allows (bad tag, missing fields…).
    Malformed(&'static str),
}

/// The session info an answer carries, with its tag, if any: handshake replies, and faults the
/// car attaches it to so the client can resynchronise.
pub fn carried_session_info(reply: &RoutableMessage) -> Option<(SessionInfo, &[u8], &[u8])> {
    let Some(Payload::SessionInfo(bytes)) = &reply.payload else {
        return None;
    };
    let info = SessionInfo::decode(bytes.as_slice()).ok()?;
    let tag = match reply.signature_data.as_ref()?.sig_type.as_ref()? {
        SignatureType::SessionInfoTag(tag) => tag.tag.as_slice(),
        _ => return None,
    };
    Some((info, bytes.as_slice(), tag))
}

/// The car's public key in a session info answer, before it is authenticated (K depends on
/// it); Err when the car says the key is not paired, or sent no session info.
pub fn announced_public_key(reply: &RoutableMessage) -> Result<Vec<u8>, Refusal> {
    if reply.fault().is_some_and(Fault::is_key_refused) {
        return Err(Refusal::KeyNotPaired);
    }
    match carried_session_info(reply) {
        Some((info, _, _)) if info.status == SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST => {
            Err(Refusal::KeyNotPaired)
        }
        Some((info, _, _)) => Ok(info.public_key),
        None => Err(reply
            .fault()
            .map_or(Refusal::Malformed("no session info"), Refusal::Fault)),
    }
}

impl SessionState {
    /// Authenticates the session info in `reply` (an answer to the message whose uuid was
    /// `challenge`) with K and returns the new state. When `previous` is the same epoch, the
    /// counter never goes back and an older clock reading is ignored.
    pub fn from_reply(
        reply: &RoutableMessage,
        key: &SessionKey,
        vin: &str,
        challenge: &[u8],
        now_ms: u64,
        previous: Option<&SessionState>,
    ) -> Result<SessionState, Refusal> {
        let (info, bytes, tag) =
            carried_session_info(reply).ok_or(Refusal::Malformed("no session info"))?;
        if info.status == SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST {
            return Err(Refusal::KeyNotPaired);
        }
        if !tags_match(&key.session_info_tag(vin, challenge, bytes), tag) {
            return Err(Refusal::Malformed("session info with a wrong tag"));
        }
        if info.epoch.len() != 16 {
            return Err(Refusal::Malformed("session info without a 16-byte epoch"));
        }
        let fresh = SessionState {
            car_public_key: info.public_key,
            epoch: info.epoch,
            counter: info.counter,
            clock_time: info.clock_time,
            received_at_ms: now_ms,
        };
        Ok(match previous {
            Some(old) if old.epoch == fresh.epoch && old.clock_time > fresh.clock_time => {
                SessionState {
                    counter: old.counter.max(fresh.counter),
                    ..old.clone()
                }
            }
            Some(old) if old.epoch == fresh.epoch => SessionState {
                counter: old.counter.max(fresh.counter),
                ..fresh
            },
            _ => fresh,
        })
    }

    /// Seconds into the epoch on the car's clock, now.
    pub fn car_time(&self, now_ms: u64) -> u32 {
        let elapsed = now_ms.saturating_sub(self.received_at_ms) / 1000;
        self.clock_time
            .saturating_add(u32::try_from(elapsed).unwrap_or(u32::MAX))
    }

    /// Signs `payload` for `domain` with the next counter (HMAC-SHA256, as the Fleet API
    /// requires), advancing the counter.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        &mut self,
        key: &SessionKey,
        client_public_key: &[u8],
        domain: Domain,
        vin: &str,
        payload: Vec<u8>,
        routing_address: &[u8],
        uuid: &[u8],
        now_ms: u64,
    ) -> RoutableMessage {
        self.counter = self.counter.wrapping_add(1);
        let expires_at = self.car_time(now_ms).saturating_add(COMMAND_TTL_SECONDS);
        let flags = 0;
        let metadata = crate::metadata::command_metadata(
            domain,
            vin,
            &self.epoch,
            expires_at,
            self.counter,
            flags,
        );
        let tag = key.command_tag(&metadata, &payload);
        RoutableMessage {
            to_destination: Some(Destination::domain(domain)),
            from_destination: Some(Destination::routing_address(routing_address.to_vec())),
            payload: Some(Payload::ProtobufMessageAsBytes(payload)),
            signature_data: Some(SignatureData {
                signer_identity: Some(KeyIdentity {
                    identity_type: Some(IdentityType::PublicKey(client_public_key.to_vec())),
                }),
                sig_type: Some(SignatureType::HmacPersonalizedData(
                    HmacPersonalizedSignatureData {
                        epoch: self.epoch.clone(),
                        counter: self.counter,
                        expires_at,
                        tag: tag.to_vec(),
                    },
                )),
            }),
            uuid: uuid.to_vec(),
            flags,
            ..RoutableMessage::default()
        }
    }
}
