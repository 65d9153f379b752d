//! The car's side of one domain: answers handshakes and checks what a real car checks before it
//! runs a command (paired key, domain, epoch, tag, expiry, anti-replay counter), answering
//! faults with fresh session info so the client can resynchronise. Used by the simulator.

use p256::SecretKey;
use prost::Message;

use crate::keys::agreement::{public_bytes, session_key};
use crate::keys::tags_match;
use crate::messages::{
    Destination, HmacSignatureData, MessageStatus, Payload, RoutableMessage,
    SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST, SessionInfo, SignatureData, SignatureType,
};
use crate::{Domain, Fault};

/// How far back an out-of-order counter is still accepted (Tesla's verifier uses 32).
const COUNTER_WINDOW: u32 = 32;
/// The longest a command may stay valid (a real car refuses far-future expiries).
const MAX_TTL_SECONDS: u32 = 3600;

pub struct VehicleDomain {
    pub domain: Domain,
    vin: String,
    secret: SecretKey,
    epoch: [u8; 16],
    started_ms: u64,
    /// The highest counter accepted in this epoch; bit i of `window` = counter - 1 - i seen.
    counter: u32,
    window: u64,
}

/// What to do with a message.
pub enum Verdict {
    /// Authentic and fresh: run this application payload, then answer with [`VehicleDomain::reply`].
    Execute(Vec<u8>),
    /// A handshake answer or a refusal, to send back as it is.
    Answer(Box<RoutableMessage>),
}

fn answer(message: RoutableMessage) -> Verdict {
    Verdict::Answer(Box::new(message))
}

impl VehicleDomain {
    pub fn new(
        domain: Domain,
        vin: &str,
        secret: SecretKey,
        epoch: [u8; 16],
        now_ms: u64,
    ) -> VehicleDomain {
        VehicleDomain {
            domain,
            vin: vin.to_string(),
            secret,
            epoch,
            started_ms: now_ms,
            counter: 0,
            window: 0,
        }
    }

    /// A reboot: a new epoch, the clock and the counters start again.
    pub fn restart(&mut self, epoch: [u8; 16], now_ms: u64) {
        self.epoch = epoch;
        self.started_ms = now_ms;
        self.counter = 0;
        self.window = 0;
    }

    /// Counters spent by another client holding the same key (say, a second carport with a
    /// copy of it): a client that did not see them now sends a stale counter.
    pub fn skip_counters(&mut self, count: u32) {
        let _ = self.accept_counter(self.counter.saturating_add(count));
    }

    pub fn public_key(&self) -> Vec<u8> {
        public_bytes(&self.secret)
    }

    /// Seconds since the epoch began.
    pub fn clock(&self, now_ms: u64) -> u32 {
        u32::try_from(now_ms.saturating_sub(self.started_ms) / 1000).unwrap_or(u32::MAX)
    }

    fn addressed_back(&self, request: &RoutableMessage) -> RoutableMessage {
        RoutableMessage {
            to_destination: request.from_destination.clone(),
            from_destination: Some(Destination::domain(self.domain)),
            request_uuid: request.uuid.clone(),
            ..RoutableMessage::default()
        }
    }

    /// Session info for `client_public`, tagged for the request's uuid.
    fn with_session_info(
        &self,
        mut answer: RoutableMessage,
        request: &RoutableMessage,
        client_public: &[u8],
        paired: bool,
        now_ms: u64,
    ) -> RoutableMessage {
        let info = SessionInfo {
            counter: self.counter,
            public_key: self.public_key(),
            epoch: self.epoch.to_vec(),
            clock_time: self.clock(now_ms),
            status: if paired {
                0
            } else {
                SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST
            },
            handle: 0,
        }
        .encode_to_vec();
        if let Some(key) = session_key(&self.secret, client_public) {
            let tag = key.session_info_tag(&self.vin, &request.uuid, &info);
            answer.signature_data = Some(SignatureData {
                signer_identity: None,
                sig_type: Some(SignatureType::SessionInfoTag(HmacSignatureData {
                    tag: tag.to_vec(),
                })),
            });
        }
        answer.payload = Some(Payload::SessionInfo(info));
        answer
    }

    fn fault(&self, request: &RoutableMessage, fault: Fault) -> RoutableMessage {
        RoutableMessage {
            signed_message_status: Some(MessageStatus {
                operation_status: 2,
                signed_message_fault: fault.0,
            }),
            ..self.addressed_back(request)
        }
    }

    /// A fault with the session info the client needs to recover.
    fn resync(
        &self,
        request: &RoutableMessage,
        client_public: &[u8],
        fault: Fault,
        now_ms: u64,
    ) -> Verdict {
        answer(self.with_session_info(
            self.fault(request, fault),
            request,
            client_public,
            true,
            now_ms,
        ))
    }

    /// Checks one message against the keys paired with the car (uncompressed public keys).
    pub fn receive(
        &mut self,
        request: &RoutableMessage,
        paired: &[Vec<u8>],
        now_ms: u64,
    ) -> Verdict {
        if request
            .to_destination
            .as_ref()
            .and_then(Destination::as_domain)
            != Some(self.domain)
        {
            return answer(self.fault(request, Fault::INVALID_DOMAINS));
        }
        match &request.payload {
            Some(Payload::SessionInfoRequest(handshake)) => {
                let known = paired.contains(&handshake.public_key);
                answer(self.with_session_info(
                    self.addressed_back(request),
                    request,
                    &handshake.public_key,
                    known,
                    now_ms,
                ))
            }
            Some(Payload::ProtobufMessageAsBytes(payload)) => {
                self.check_command(request, payload, paired, now_ms)
            }
            _ => answer(self.fault(request, Fault::DECODING)),
        }
    }

    fn check_command(
        &mut self,
        request: &RoutableMessage,
        payload: &[u8],
        paired: &[Vec<u8>],
        now_ms: u64,
    ) -> Verdict {
        let Some(signature) = &request.signature_data else {
            return answer(self.fault(request, Fault::INVALID_SIGNATURE));
        };
        let Some(client) = signature.signer_public_key() else {
            return answer(self.fault(request, Fault::UNKNOWN_KEY_ID));
        };
        if !paired.iter().any(|key| key == client) {
            return answer(self.fault(request, Fault::UNKNOWN_KEY_ID));
        }
        let Some(SignatureType::HmacPersonalizedData(data)) = &signature.sig_type else {
            return answer(self.fault(request, Fault::INVALID_SIGNATURE));
        };
        if data.epoch != self.epoch {
            return self.resync(request, client, Fault::INCORRECT_EPOCH, now_ms);
        }
        let Some(key) = session_key(&self.secret, client) else {
            return answer(self.fault(request, Fault::UNKNOWN_KEY_ID));
        };
        let metadata = crate::metadata::command_metadata(
            self.domain,
            &self.vin,
            &data.epoch,
            data.expires_at,
            data.counter,
            request.flags,
        );
        if !tags_match(&key.command_tag(&metadata, payload), &data.tag) {
            return self.resync(request, client, Fault::INVALID_SIGNATURE, now_ms);
        }
        let now = self.clock(now_ms);
        if data.expires_at < now {
            return self.resync(request, client, Fault::TIME_EXPIRED, now_ms);
        }
        if data.expires_at - now > MAX_TTL_SECONDS {
            return answer(self.fault(request, Fault::TIME_TO_LIVE_TOO_LONG));
        }
        if !self.accept_counter(data.counter) {
            return self.resync(request, client, Fault::INVALID_TOKEN_OR_COUNTER, now_ms);
        }
        Verdict::Execute(payload.to_vec())
    }

    /// The anti-replay window: each counter once, at most `COUNTER_WINDOW` behind the highest.
    fn accept_counter(&mut self, counter: u32) -> bool {
        if counter == 0 {
            return false;
        }
        if counter > self.counter {
            let shift = counter - self.counter;
            self.window = if shift >= 64 {
                0
            } else {
                (self.window << shift) | (1 << (shift - 1))
            };
            self.counter = counter;
            return true;
        }
        let behind = self.counter - counter;
        if behind == 0 || behind > COUNTER_WINDOW {
            return false;
        }
        let bit = 1u64 << (behind - 1);
        if self.window & bit != 0 {
            return false;
        }
        self.window |= bit;
        true
    }

    /// The answer to an executed command, carrying the application's answer.
    pub fn reply(&self, request: &RoutableMessage, payload: Vec<u8>) -> RoutableMessage {
        RoutableMessage {
            payload: Some(Payload::ProtobufMessageAsBytes(payload)),
            ..self.addressed_back(request)
        }
    }
}
