//! `client`: a plugin's questions to the client of the request it serves: the user
//! (elicitation), the client's model (sampling) and the client's roots. Each kind is denied
//! unless granted in plugins.toml, and no wait outlives the call's deadline.

use serde_json::Value;

use super::CallState;
use super::carport::provider::client::Host;
pub use super::carport::provider::client::{
    Action, Answer, Elicitation, ElicitationAnswer, Question, Root, SamplingMessage, SamplingReply,
    SamplingRequest,
};

/// A plugin may not ask for an essay on the user's model budget.
const MAX_SAMPLING_TOKENS: u32 = 16_384;
const MAX_QUESTIONS: usize = 16;
const MAX_ID_CHARS: usize = 64;

/// What the client said to a batch of questions.
pub enum Asked {
    /// One result per question, in order.
    Answered(Vec<Result<Answer, String>>),
    /// The call must end now: the client answers in a later request (MCP 2026-07-28), or it
    /// lacks every capability the questions need. The client link knows which.
    Deferred,
}

impl Host for CallState {
    async fn ask(
        &mut self,
        questions: Vec<(String, Question)>,
    ) -> wasmtime::Result<Vec<Result<Answer, String>>> {
        let checked: Vec<Result<(), String>> = questions
            .iter()
            .map(|(id, question)| self.check(id, question))
            .collect();
        if questions.len() > MAX_QUESTIONS {
            return Ok(vec![
                Err(format!(
                    "at most {MAX_QUESTIONS} questions at once"
                ));
                questions.len()
            ]);
        }
        let allowed: Vec<(String, Question)> = questions
            .iter()
            .zip(&checked)
            .filter(|(_, check)| check.is_ok())
            .map(|(question, _)| question.clone())
            .collect();
        let mut answers = match (&self.client, allowed.is_empty()) {
            (_, true) => Vec::new(),
            (None, false) => {
                vec![
                    Err("no client is waiting on this request, so nobody can be asked".to_string());
                    allowed.len()
                ]
            }
            (Some(client), false) => {
                let asked = client.ask(allowed);
                match tokio::time::timeout_at(self.deadline.into(), asked).await {
                    Ok(Asked::Answered(answers)) => answers,
                    Ok(Asked::Deferred) => {
                        self.input_required = true;
                        // Ends the guest at once; the runtime reports "input required".
                        return Err(wasmtime::Error::msg("input required from the client"));
                    }
                    Err(_) => vec![
                        Err(
                            "the client did not answer before the call's time limit".to_string()
                        );
                        questions.len()
                    ],
                }
            }
        }
        .into_iter();
        Ok(checked
            .into_iter()
            .map(|check| match check {
                Ok(()) => answers
                    .next()
                    .unwrap_or_else(|| Err("the client gave no answer".to_string())),
                Err(refusal) => Err(refusal),
            })
            .collect())
    }
}

impl CallState {
    /// Whether this plugin may ask `question`, and whether it is well formed.
    fn check(&self, id: &str, question: &Question) -> Result<(), String> {
        let plugin = self.plugin_id();
        if id.is_empty() || id.len() > MAX_ID_CHARS {
            return Err(format!("a question id is 1 to {MAX_ID_CHARS} characters"));
        }
        let (granted, key) = match question {
            Question::Elicit(_) => (self.grants.elicitation, "elicitation"),
            Question::Sample(_) => (self.grants.sampling, "sampling"),
            Question::ListRoots => (self.grants.roots, "roots"),
        };
        if !granted {
            return Err(format!(
                "plugin `{plugin}` may not ask the client for {key}: add `{key} = true` under \
                 [plugins.{plugin}] in plugins.toml to allow it"
            ));
        }
        match question {
            Question::Elicit(elicitation) => object_schema(&elicitation.requested_schema)
                .map(drop)
                .map_err(|reason| format!("invalid requested schema: {reason}")),
            Question::Sample(request) => {
                if request.messages.is_empty()
                    || request.max_tokens == 0
                    || request.max_tokens > MAX_SAMPLING_TOKENS
                {
                    Err(format!(
                        "a sampling request needs at least one message and 1 to \
                         {MAX_SAMPLING_TOKENS} max tokens"
                    ))
                } else {
                    Ok(())
                }
            }
            Question::ListRoots => Ok(()),
        }
    }
}

/// An elicitation schema is a JSON object schema with properties (MCP's restriction).
pub fn object_schema(text: &str) -> Result<Value, String> {
    let schema: Value = serde_json::from_str(text).map_err(|error| error.to_string())?;
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err("it must be of type object".into());
    }
    if !schema.get("properties").is_some_and(Value::is_object) {
        return Err("it needs `properties`".into());
    }
    Ok(schema)
}
