//! Signed commands (Tesla's Vehicle Command Protocol) for cars that refuse unsigned REST ones.
//!
//! Only with a key granted by the host (`[plugins.tesla.key_agreement]`); without one every
//! command stays REST as before. Each car is checked once with `fleet_status` (remembered in
//! state). A command then goes to `POST /api/1/vehicles/{vin}/signed_command` as a routable
//! message signed with HMAC-SHA256 in a session per car and domain: the handshake's result
//! (the car's key, epoch, counter and clock) is kept in plugin state across calls and
//! restarts, the counter is stored before each command leaves, and the session key is asked
//! from the host at each use, so the state holds nothing secret. A car that restarted, a stale
//! counter or an expired command is answered with a fault carrying fresh session info: the
//! plugin resynchronises from it (or shakes hands again) and sends once more.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use carport_guest::http::Request;
use carport_guest::{Output, ToolError, UpstreamError, clock, key_agreement, state};
use serde_json::{Map, Value, json};
use tesla_protocol::session::{Refusal, SessionState, announced_public_key, session_info_request};
use tesla_protocol::{Domain, Fault, Message, RoutableMessage, SessionKey, application_outcome};

use crate::Api;

const REQUIRED_PREFIX: &str = "vcp.required.";
const SESSION_PREFIX: &str = "vcp.session.";

/// The answer to one `signed_command` request.
enum Exchange {
    Reply(Box<RoutableMessage>),
    /// The car was asleep and has been woken: build the message again.
    Asleep,
    /// 422 to a handshake: the car does not speak the protocol (Tesla's proxy then uses REST).
    Unsupported,
}

fn session_state_key(vin: &str, domain: Domain) -> String {
    format!("{SESSION_PREFIX}{vin}.{}", domain as i32)
}

fn not_paired(vin: &str, domain: Domain) -> ToolError {
    ToolError::Auth(format!(
        "car {vin} does not know carport's key: its {} refused it as not paired, and nothing \
         was done. Pair it: publish the public key printed by `carport keys tesla` at \
         https://<your app domain>/.well-known/appspecific/com.tesla.3p.public-key.pem, open \
         https://tesla.com/_ak/<your app domain> on the phone with the Tesla app and approve \
         the key, then try again",
        domain.name()
    ))
}

fn refused(command: &str, domain: Domain, fault: Fault) -> ToolError {
    ToolError::Upstream(UpstreamError {
        status: 200,
        message: format!(
            "the car refused {command}: {} ({} from its {})",
            fault.explain(),
            fault.name(),
            domain.name()
        ),
        retry_after_seconds: None,
    })
}

fn protocol_error(what: &str) -> ToolError {
    ToolError::Internal(format!(
        "the car's answer broke Tesla's command protocol: {what}"
    ))
}

fn session_key(car_public_key: &[u8]) -> Result<SessionKey, ToolError> {
    let bytes = key_agreement::session_key(car_public_key).map_err(ToolError::Denied)?;
    SessionKey::from_slice(&bytes).ok_or_else(|| protocol_error("a session key of a wrong size"))
}

impl Api {
    /// Sends `endpoint` signed when the car needs it and carport holds a key: Some(result),
    /// or None for REST.
    pub(crate) fn try_signed(
        &self,
        command: &str,
        arguments: &Map<String, Value>,
        known_required: bool,
    ) -> Result<Option<Output>, ToolError> {
        let Some((domain, payload)) = crate::actions::action_of(command, arguments) else {
            return Ok(None);
        };
        // No key granted: REST, as for a proxy that signs (MyTeslaMate) or an older car.
        let Ok(client_public) = key_agreement::public_key() else {
            return Ok(None);
        };
        let vin = self.vin_of(arguments)?;
        if known_required {
            let _ = state::set(&format!("{REQUIRED_PREFIX}{vin}"), b"true");
        } else if !self.requires_signing(&vin)? {
            return Ok(None);
        }
        let signer = Signer {
            api: self,
            vin,
            client_public,
            command,
            arguments,
            woke: std::cell::Cell::new(false),
        };
        signer.send(domain, payload)
    }

    /// The VIN the messages are personalised with: the vehicle tag itself, or the VIN of a
    /// numeric vehicle id.
    fn vin_of(&self, arguments: &Map<String, Value>) -> Result<String, ToolError> {
        let tag = self.vehicle_tag(arguments)?;
        if tag.len() == 17 && tag.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(tag);
        }
        let url = format!("{}/api/1/vehicles/{}", self.base_url, crate::encode(&tag));
        let answer: Value = self
            .authorised(Request::get(url))
            .send()?
            .success()?
            .json()?;
        answer["response"]["vin"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ToolError::NotFound(format!("Tesla did not say the VIN of car {tag}")))
    }

    /// Whether `fleet_status` says the car requires signed commands; asked once per car.
    fn requires_signing(&self, vin: &str) -> Result<bool, ToolError> {
        let key = format!("{REQUIRED_PREFIX}{vin}");
        if let Some(known) = state::get(&key).ok().flatten() {
            return Ok(known == b"true");
        }
        let url = format!("{}/api/1/vehicles/fleet_status", self.base_url);
        let answer: Value = self
            .authorised(Request::post(url))
            .json(&json!({ "vins": [vin] }))
            .send()?
            .success()?
            .json()?;
        let required = answer["response"]["vehicle_info"][vin]["vehicle_command_protocol_required"]
            .as_bool()
            .unwrap_or(false);
        let _ = state::set(&key, if required { b"true" } else { b"false" });
        Ok(required)
    }
}

struct Signer<'a> {
    api: &'a Api,
    vin: String,
    client_public: Vec<u8>,
    command: &'a str,
    arguments: &'a Map<String, Value>,
    /// The car is woken at most once per command.
    woke: std::cell::Cell<bool>,
}

impl Signer<'_> {
    /// The signed command's result, or None when the car turned out not to speak the protocol.
    fn send(&self, domain: Domain, payload: Vec<u8>) -> Result<Option<Output>, ToolError> {
        let mut session = match self.stored_session(domain) {
            Some(session) => session,
            None => match self.handshake(domain)? {
                Some(session) => session,
                None => return Ok(None),
            },
        };
        let mut resynchronised = false;
        loop {
            let key = session_key(&session.car_public_key)?;
            let uuid = key_agreement::challenge();
            let routing_address = key_agreement::challenge();
            let message = session.sign(
                &key,
                &self.client_public,
                domain,
                &self.vin,
                payload.clone(),
                &routing_address,
                &uuid,
                clock::now_ms(),
            );
            // The counter is spent before the message leaves, so it is never used twice.
            self.store_session(domain, &session)?;
            let reply = match self.exchange(&message, false)? {
                Exchange::Reply(reply) => reply,
                Exchange::Asleep => continue,
                Exchange::Unsupported => return Ok(None),
            };
            match reply.fault() {
                None => return self.outcome(domain, &reply).map(Some),
                Some(fault) if fault.is_key_refused() => return Err(not_paired(&self.vin, domain)),
                Some(fault) if fault.is_out_of_sync() && !resynchronised => {
                    resynchronised = true;
                    carport_guest::log::info(&format!(
                        "car {} ({}): {}; resynchronising the session",
                        self.vin,
                        domain.name(),
                        fault.name()
                    ));
                    session = match self.resynchronised(&reply, &uuid, &session) {
                        Some(fresh) => fresh,
                        None => match self.handshake(domain)? {
                            Some(fresh) => fresh,
                            None => return Ok(None),
                        },
                    };
                    self.store_session(domain, &session)?;
                }
                Some(fault) => return Err(refused(self.command, domain, fault)),
            }
        }
    }

    /// The session info a fault carries, authenticated against the request it answers.
    fn resynchronised(
        &self,
        reply: &RoutableMessage,
        uuid: &[u8],
        session: &SessionState,
    ) -> Option<SessionState> {
        let car_public = announced_public_key(reply).ok()?;
        let key = session_key(&car_public).ok()?;
        SessionState::from_reply(reply, &key, &self.vin, uuid, clock::now_ms(), Some(session)).ok()
    }

    /// A new session, or None when the car does not speak the protocol (remembered, so its
    /// commands go REST from now on).
    fn handshake(&self, domain: Domain) -> Result<Option<SessionState>, ToolError> {
        loop {
            let uuid = key_agreement::challenge();
            let routing_address = key_agreement::challenge();
            let request =
                session_info_request(domain, &self.client_public, &routing_address, &uuid);
            let reply = match self.exchange(&request, true)? {
                Exchange::Reply(reply) => reply,
                Exchange::Asleep => continue,
                Exchange::Unsupported => {
                    carport_guest::log::info(&format!(
                        "car {} does not take signed commands (422); using REST",
                        self.vin
                    ));
                    let _ = state::set(&format!("{REQUIRED_PREFIX}{}", self.vin), b"false");
                    return Ok(None);
                }
            };
            let car_public = match announced_public_key(&reply) {
                Ok(key) => key,
                Err(Refusal::KeyNotPaired) => return Err(not_paired(&self.vin, domain)),
                Err(Refusal::Fault(fault)) => return Err(refused(self.command, domain, fault)),
                Err(Refusal::Malformed(what)) => return Err(protocol_error(what)),
            };
            let key = session_key(&car_public)?;
            let session =
                SessionState::from_reply(&reply, &key, &self.vin, &uuid, clock::now_ms(), None)
                    .map_err(|refusal| match refusal {
                        Refusal::KeyNotPaired => not_paired(&self.vin, domain),
                        Refusal::Fault(fault) => refused(self.command, domain, fault),
                        Refusal::Malformed(what) => protocol_error(what),
                    })?;
            self.store_session(domain, &session)?;
            return Ok(Some(session));
        }
    }

    /// Posts one routable message; a sleeping car is woken once (then the caller builds the
    /// message again, with a fresh expiry).
    fn exchange(&self, message: &RoutableMessage, handshake: bool) -> Result<Exchange, ToolError> {
        let url = format!(
            "{}/api/1/vehicles/{}/signed_command",
            self.api.base_url,
            crate::encode(&self.vin)
        );
        let body = json!({ "routable_message": BASE64.encode(message.encode_to_vec()) });
        let response = self.api.authorised(Request::post(url)).json(&body).send()?;
        let asleep =
            response.status == 408 || response.vendor_message().contains("offline or asleep");
        if asleep && !self.woke.get() {
            self.woke.set(true);
            self.api.wake(self.arguments, self.command)?;
            return Ok(Exchange::Asleep);
        }
        if handshake && response.status == 422 {
            return Ok(Exchange::Unsupported);
        }
        if response.status == 429 {
            let wait = response.retry_after_seconds().unwrap_or(60);
            return Err(crate::rate_limited(wait, &response.vendor_message()));
        }
        let answer: Value = response.success()?.json()?;
        let encoded = answer["response"]
            .as_str()
            .ok_or_else(|| protocol_error("no base64 `response` in Tesla's answer"))?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| protocol_error("a `response` that is not base64"))?;
        RoutableMessage::decode(bytes.as_slice())
            .map(|reply| Exchange::Reply(Box::new(reply)))
            .map_err(|_| protocol_error("a `response` that is not a routable message"))
    }

    fn outcome(&self, domain: Domain, reply: &RoutableMessage) -> Result<Output, ToolError> {
        let payload = match &reply.payload {
            Some(tesla_protocol::messages::Payload::ProtobufMessageAsBytes(bytes)) => bytes,
            _ => &Vec::new(),
        };
        match application_outcome(domain, payload) {
            Ok(()) => Ok(Output::json(
                &json!({"response": {"result": true, "reason": ""}}),
            )),
            Err(reason) => Err(ToolError::Upstream(UpstreamError {
                status: 200,
                message: format!("the car refused {}: {reason}", self.command),
                retry_after_seconds: None,
            })),
        }
    }

    fn stored_session(&self, domain: Domain) -> Option<SessionState> {
        let bytes = state::get(&session_state_key(&self.vin, domain))
            .ok()
            .flatten()?;
        SessionState::decode(bytes.as_slice()).ok()
    }

    fn store_session(&self, domain: Domain, session: &SessionState) -> Result<(), ToolError> {
        state::set(
            &session_state_key(&self.vin, domain),
            &session.encode_to_vec(),
        )
        .map_err(|error| {
            ToolError::Denied(format!(
                "cannot keep the command session in plugin state ({error}); nothing was sent"
            ))
        })
    }
}
