//! The client of one MCP request, as a plugin reaches it through `log` and `client`.
//!
//! Before MCP 2026-07-28 carport asks the client in the middle of the call (server-to-client
//! requests). From 2026-07-28 on, servers may not do that: the call ends with an "input
//! required" result listing the questions, and the client sends the request again with the
//! answers and the `requestState` carport gave it. carport keeps nothing between the two: the
//! answers collected so far travel in `requestState`, sealed with an HMAC so a client cannot
//! forge answers, and the plugin runs again from the start, its questions now answered at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rmcp::model::{
    ClientCapabilities, CreateMessageRequestParams, ElicitRequestParams, InputRequests,
    InputRequiredResult, LoggingLevel, LoggingMessageNotificationParam, ProtocolVersion,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, Peer, RoleServer};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

use super::convert;
use crate::capabilities::ClientLink;
use crate::capabilities::client::{
    Action, Answer, Asked, ElicitationAnswer, Question, Root, SamplingReply,
};
use crate::capabilities::log::Level;

/// Answers carried in a `requestState` are capped: a client must not make carport sign and
/// parse megabytes.
const MAX_STATE_BYTES: usize = 64 * 1024;

/// The key that seals `requestState`, new at every start: a state outlives no restart, and the
/// client then simply asks again.
pub struct StateSeal {
    key: [u8; 32],
}

impl StateSeal {
    pub fn new() -> StateSeal {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system provides random bytes");
        StateSeal { key }
    }

    fn mac(&self, subject: &str, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        mac.update(subject.as_bytes());
        mac.update(&[0]);
        mac.update(payload.as_bytes());
        mac
    }

    /// `answers` sealed for `subject` (the request's method, name and arguments).
    fn seal(&self, subject: &str, answers: &BTreeMap<String, Value>) -> String {
        let payload = URL_SAFE_NO_PAD.encode(
            Value::from(
                answers
                    .clone()
                    .into_iter()
                    .collect::<serde_json::Map<_, _>>(),
            )
            .to_string(),
        );
        let tag = URL_SAFE_NO_PAD.encode(self.mac(subject, &payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    fn open(&self, subject: &str, state: &str) -> Result<BTreeMap<String, Value>, McpError> {
        let refused = || McpError::invalid_params("requestState integrity check failed", None);
        if state.len() > MAX_STATE_BYTES {
            return Err(refused());
        }
        let (payload, tag) = state.split_once('.').ok_or_else(refused)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| refused())?;
        self.mac(subject, payload)
            .verify_slice(&tag)
            .map_err(|_| refused())?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| refused())?;
        serde_json::from_slice(&json).map_err(|_| refused())
    }
}

/// Log notifications and where they go, drained in order before the request's answer.
pub type LogSink = mpsc::UnboundedSender<LoggingMessageNotificationParam>;

pub struct McpClientLink {
    peer: Peer<RoleServer>,
    capabilities: ClientCapabilities,
    /// MCP 2026-07-28 or later: questions are answered by the next request.
    deferred: bool,
    log_level: Option<LoggingLevel>,
    /// Taken by [`McpClientLink::close_logs`] once the call is over.
    logs: Mutex<Option<LogSink>>,
    /// Answers the client has given so far (deferred mode).
    answers: BTreeMap<String, Value>,
    /// Questions the client must answer in its next request (deferred mode).
    pending: Mutex<Vec<(String, Question)>>,
    /// Capabilities the client lacks for every question of an `ask` (deferred mode).
    missing: Mutex<ClientCapabilities>,
}

impl McpClientLink {
    /// The link for `context`'s request. In deferred mode it takes the answers of the
    /// request's `inputResponses` and (verified) `requestState`.
    pub fn new(
        context: &RequestContext<RoleServer>,
        seal: &StateSeal,
        subject: &str,
        input_responses: Option<&BTreeMap<String, Value>>,
        request_state: Option<&str>,
        log_level: Option<LoggingLevel>,
        logs: Option<LogSink>,
    ) -> Result<McpClientLink, McpError> {
        let deferred = context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
        let mut answers = match request_state {
            Some(state) if deferred => seal.open(subject, state)?,
            _ => BTreeMap::new(),
        };
        for (id, answer) in input_responses.into_iter().flatten() {
            if !answer.is_object() {
                return Err(McpError::invalid_params(
                    format!(
                        "inputResponses.{id} must be the result object of the request it answers"
                    ),
                    None,
                ));
            }
            answers.insert(id.clone(), answer.clone());
        }
        Ok(McpClientLink {
            peer: context.peer.clone(),
            capabilities: context.client_capabilities().unwrap_or_default(),
            deferred,
            log_level,
            logs: Mutex::new(logs),
            answers,
            pending: Mutex::new(Vec::new()),
            missing: Mutex::new(ClientCapabilities::default()),
        })
    }

    /// Why the request ended early: the client lacks capabilities the plugin needs (an error
    /// that names them), or it must answer the plugin's questions first.
    pub fn deferred_outcome(
        &self,
        seal: &StateSeal,
        subject: &str,
    ) -> Result<InputRequiredResult, McpError> {
        let missing = self.missing.lock().expect("not poisoned").clone();
        if missing.elicitation.is_some() || missing.sampling.is_some() || missing.roots.is_some() {
            return Err(McpError::missing_required_client_capability(missing));
        }
        Ok(self.input_required(seal, subject))
    }

    /// The "input required" result for the questions the plugin asked, with the answers so
    /// far sealed into `requestState`.
    fn input_required(&self, seal: &StateSeal, subject: &str) -> InputRequiredResult {
        let pending = std::mem::take(&mut *self.pending.lock().expect("not poisoned"));
        let requests: InputRequests = pending
            .iter()
            .filter_map(|(id, question)| {
                let request = serde_json::from_value(input_request(question)).ok()?;
                Some((id.clone(), request))
            })
            .collect();
        InputRequiredResult::new(Some(requests), Some(seal.seal(subject, &self.answers)))
    }

    /// Ends the log stream, so its forwarder can finish delivering.
    pub fn close_logs(&self) {
        self.logs.lock().expect("not poisoned").take();
    }

    fn can_answer(&self, question: &Question) -> Result<(), String> {
        let (supported, what) = match question {
            Question::Elicit(_) => (self.capabilities.elicitation.is_some(), "elicitation"),
            Question::Sample(_) => (self.capabilities.sampling.is_some(), "sampling"),
            Question::ListRoots => (self.capabilities.roots.is_some(), "roots"),
        };
        match supported {
            true => Ok(()),
            false => Err(format!(
                "the client does not support {what}, so it cannot be asked"
            )),
        }
    }
}

impl ClientLink for McpClientLink {
    fn log(&self, plugin_id: &str, level: Level, message: &str) {
        let Some(threshold) = self.log_level else {
            return;
        };
        let logs = self.logs.lock().expect("not poisoned");
        let Some(logs) = logs.as_ref() else {
            return;
        };
        let level = convert::level(level);
        if convert::severity(level) >= convert::severity(threshold) {
            let mut notice =
                LoggingMessageNotificationParam::new(level, Value::String(message.to_string()));
            notice.logger = Some(plugin_id.to_string());
            let _ = logs.send(notice);
        }
    }

    fn ask(
        &self,
        questions: Vec<(String, Question)>,
    ) -> Pin<Box<dyn Future<Output = Asked> + Send>> {
        if self.deferred {
            // A client that can answer none of the questions gets an error naming what it
            // lacks, rather than a request it cannot fulfil.
            if questions
                .iter()
                .all(|(_, question)| self.can_answer(question).is_err())
            {
                let mut missing = self.missing.lock().expect("not poisoned");
                for (_, question) in &questions {
                    match question {
                        Question::Elicit(_) => missing.elicitation = Some(Default::default()),
                        Question::Sample(_) => missing.sampling = Some(Default::default()),
                        Question::ListRoots => missing.roots = Some(Default::default()),
                    }
                }
                return Box::pin(std::future::ready(Asked::Deferred));
            }
            let mut answers = Vec::new();
            let mut pending = Vec::new();
            for (id, question) in questions {
                match (self.can_answer(&question), self.answers.get(&id)) {
                    (Err(reason), _) => answers.push(Err(reason)),
                    (Ok(()), Some(answer)) => answers.push(parse_answer(&question, answer)),
                    (Ok(()), None) => pending.push((id, question)),
                }
            }
            if pending.is_empty() {
                return Box::pin(std::future::ready(Asked::Answered(answers)));
            }
            *self.pending.lock().expect("not poisoned") = pending;
            return Box::pin(std::future::ready(Asked::Deferred));
        }
        let peer = self.peer.clone();
        let checks: Vec<Result<(), String>> = questions
            .iter()
            .map(|(_, question)| self.can_answer(question))
            .collect();
        Box::pin(async move {
            let mut answers = Vec::new();
            for ((_, question), check) in questions.into_iter().zip(checks) {
                answers.push(match check {
                    Ok(()) => ask_now(&peer, question).await,
                    Err(reason) => Err(reason),
                });
            }
            Asked::Answered(answers)
        })
    }
}

/// Sends one question to the client as a server-to-client request and waits for its answer.
#[allow(
    deprecated,
    reason = "sampling and roots are deprecated only from MCP 2026-07-28 on"
)]
async fn ask_now(peer: &Peer<RoleServer>, question: Question) -> Result<Answer, String> {
    let failed = |error: rmcp::service::ServiceError| format!("the client did not answer: {error}");
    let wire = input_request(&question)["params"].clone();
    let answer = match question {
        Question::Elicit(_) => {
            let params: ElicitRequestParams =
                serde_json::from_value(wire).map_err(|error| error.to_string())?;
            serde_json::to_value(peer.create_elicitation(params).await.map_err(failed)?)
        }
        Question::Sample(_) => {
            let params: CreateMessageRequestParams =
                serde_json::from_value(wire).map_err(|error| error.to_string())?;
            serde_json::to_value(peer.create_message(params).await.map_err(failed)?)
        }
        Question::ListRoots => serde_json::to_value(peer.list_roots().await.map_err(failed)?),
    }
    .map_err(|error| error.to_string())?;
    parse_answer(&question, &answer)
}

/// A question as the MCP request that asks it.
fn input_request(question: &Question) -> Value {
    match question {
        Question::Elicit(elicitation) => {
            let schema: Value =
                serde_json::from_str(&elicitation.requested_schema).unwrap_or_default();
            json!({"method": "elicitation/create", "params": {
                "message": elicitation.message, "requestedSchema": schema,
            }})
        }
        Question::Sample(request) => {
            let messages: Vec<Value> = request
                .messages
                .iter()
                .map(|message| {
                    json!({
                        "role": convert::role(message.role),
                        "content": convert::content(message.content.clone()),
                    })
                })
                .collect();
            let mut params = json!({"messages": messages, "maxTokens": request.max_tokens});
            if let Some(system) = &request.system_prompt {
                params["systemPrompt"] = json!(system);
            }
            if let Some(temperature) = request.temperature {
                params["temperature"] = json!(temperature);
            }
            if !request.stop_sequences.is_empty() {
                params["stopSequences"] = json!(request.stop_sequences);
            }
            if !request.model_hints.is_empty() {
                let hints: Vec<Value> = request
                    .model_hints
                    .iter()
                    .map(|name| json!({"name": name}))
                    .collect();
                params["modelPreferences"] = json!({"hints": hints});
            }
            json!({"method": "sampling/createMessage", "params": params})
        }
        Question::ListRoots => json!({"method": "roots/list", "params": {}}),
    }
}

/// The client's result object as the answer to `question`.
fn parse_answer(question: &Question, answer: &Value) -> Result<Answer, String> {
    let malformed = |what: &str| format!("the client's answer is not a {what} result");
    match question {
        Question::Elicit(_) => {
            let action = match answer.get("action").and_then(Value::as_str) {
                Some("accept") => Action::Accept,
                Some("decline") => Action::Decline,
                Some("cancel") => Action::Cancel,
                _ => return Err(malformed("elicitation")),
            };
            let content = answer
                .get("content")
                .filter(|content| content.is_object())
                .map(Value::to_string);
            Ok(Answer::Elicited(ElicitationAnswer { action, content }))
        }
        Question::Sample(_) => {
            let content = answer.get("content").ok_or_else(|| malformed("sampling"))?;
            let role = match answer.get("role").and_then(Value::as_str) {
                Some("user") => crate::capabilities::Role::User,
                _ => crate::capabilities::Role::Assistant,
            };
            Ok(Answer::Sampled(SamplingReply {
                role,
                content: convert::content_from_mcp(content),
                model: answer
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                stop_reason: answer
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }))
        }
        Question::ListRoots => {
            let roots = answer
                .get("roots")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed("roots"))?;
            Ok(Answer::Roots(
                roots
                    .iter()
                    .filter_map(|root| {
                        Some(Root {
                            uri: root.get("uri")?.as_str()?.to_string(),
                            name: root.get("name").and_then(Value::as_str).map(str::to_string),
                        })
                    })
                    .collect(),
            ))
        }
    }
}
