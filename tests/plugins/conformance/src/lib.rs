//! The fixtures of the MCP conformance suite's server scenarios
//! (`@modelcontextprotocol/conformance`), as a carport plugin: the tools, resources, prompts and
//! completions the suite calls by their bare names (served with `prefix_names = false`).
//!
//! It is a real component built by the same pipeline as the providers, so a conformance run
//! exercises carport's whole path: MCP, the registry, the sandbox and every host import.

use carport_guest::client::{
    self, Answer, Elicitation, Question, SamplingMessage, SamplingRequest,
};
use carport_guest::{
    Annotations, CallContext, Completion, CompletionReference, CompletionRequest, Content, Media,
    Output, PluginInfo, Prompt, PromptArgument, PromptMessage, PromptResult, Provider,
    ResourceBody, ResourceContents, ResourceInfo, ResourceTemplate, Role, Tool, ToolError, args,
    catalogue, clock, log, progress, state,
};
use serde_json::{Value, json};

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xfc, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x05, 0x02, 0x00, 0x5f, 0xc8, 0xf1, 0xd2, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];
/// A WAV header with two bytes of silence.
const WAV: &[u8] = &[
    0x52, 0x49, 0x46, 0x46, 0x26, 0x00, 0x00, 0x00, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74, 0x20,
    0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x40, 0x1f, 0x00, 0x00, 0x00, 0x7d, 0x00, 0x00,
    0x02, 0x00, 0x10, 0x00, 0x64, 0x61, 0x74, 0x61, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Every tool: name and description; all take no arguments unless `input_schema` says so.
const TOOLS: &[(&str, &str)] = &[
    ("test_simple_text", "Tests simple text content response"),
    ("test_image_content", "Tests image content response"),
    ("test_audio_content", "Tests audio content response"),
    (
        "test_embedded_resource",
        "Tests embedded resource content response",
    ),
    (
        "test_multiple_content_types",
        "Tests response with multiple content types",
    ),
    ("test_error_handling", "Tests error response handling"),
    ("test_tool_with_progress", "Tests progress notifications"),
    (
        "test_tool_with_logging",
        "Tests logging notifications during execution",
    ),
    (
        "test_logging_tool",
        "Logs a message; clients that asked for no logs get none",
    ),
    (
        "test_sampling",
        "Asks the client's model to answer a prompt",
    ),
    ("test_elicitation", "Asks the user for information"),
    (
        "test_elicitation_sep1034_defaults",
        "Asks the user with a form whose fields have defaults",
    ),
    (
        "test_elicitation_sep1330_enums",
        "Asks the user with every kind of enum field",
    ),
    (
        "test_missing_capability",
        "Needs the client's sampling capability",
    ),
    ("test_streaming_elicitation", "Asks the user a question"),
    (
        "test_input_required_result_elicitation",
        "Greets the user by the name they give",
    ),
    (
        "test_input_required_result_sampling",
        "Asks the client's model a question",
    ),
    (
        "test_input_required_result_list_roots",
        "Counts the client's roots",
    ),
    (
        "test_input_required_result_request_state",
        "Asks for a confirmation",
    ),
    (
        "test_input_required_result_multiple_inputs",
        "Asks the user, the model and the roots at once",
    ),
    (
        "test_input_required_result_multi_round",
        "Asks two questions, one after the other",
    ),
    (
        "test_input_required_result_tampered_state",
        "Asks for a confirmation",
    ),
    (
        "test_input_required_result_capabilities",
        "Asks only what the client can answer",
    ),
    (
        "test_trigger_tool_change",
        "Adds test_dynamic_tool, or removes it if it is there",
    ),
    (
        "test_trigger_prompt_change",
        "Adds test_dynamic_prompt, or removes it if it is there",
    ),
];

/// The tool `test_trigger_tool_change` adds and removes, and the state key saying it is there.
const DYNAMIC_TOOL: &str = "test_dynamic_tool";
/// The prompt `test_trigger_prompt_change` adds and removes, likewise.
const DYNAMIC_PROMPT: &str = "test_dynamic_prompt";

/// Whether the dynamic tool or prompt `name` is offered now (its key is in the plugin's state).
fn offered(name: &str) -> bool {
    matches!(state::get(name), Ok(Some(_)))
}

/// Adds or removes the dynamic tool or prompt `name`, and tells the host to ask again.
fn toggle(name: &str) -> Result<Output, ToolError> {
    let added = !offered(name);
    match added {
        true => state::set(name, b"offered"),
        false => state::delete(name),
    }
    .map_err(ToolError::Denied)?;
    catalogue::changed().map_err(ToolError::Denied)?;
    Ok(Output::text(match added {
        true => format!("{name} added"),
        false => format!("{name} removed"),
    }))
}

struct Conformance;

fn input_schema(tool: &str) -> Value {
    let string_argument = |name: &str, description: &str| {
        json!({
            "type": "object",
            "properties": {name: {"type": "string", "description": description}},
            "required": [name],
        })
    };
    match tool {
        "test_sampling" => string_argument("prompt", "The prompt to send to the LLM"),
        "test_elicitation" => string_argument("message", "The message to show the user"),
        _ => json!({"type": "object", "properties": {}}),
    }
}

impl Provider for Conformance {
    fn describe(_context: &CallContext) -> PluginInfo {
        let dynamic_tool = offered(DYNAMIC_TOOL)
            .then_some((DYNAMIC_TOOL, "A tool that test_trigger_tool_change added"));
        let tools = TOOLS
            .iter()
            .copied()
            .chain(dynamic_tool)
            .map(|(name, description)| {
                Tool::new(
                    name,
                    name,
                    description,
                    input_schema(name),
                    Annotations::READ,
                )
            })
            .collect();
        let argument = |name: &str, description: &str| PromptArgument {
            name: name.to_string(),
            description: description.to_string(),
            required: true,
        };
        let prompt = |name: &str, title: &str, description: &str, arguments| Prompt {
            name: name.to_string(),
            title: title.to_string(),
            description: description.to_string(),
            arguments,
        };
        let dynamic_prompt = offered(DYNAMIC_PROMPT).then(|| {
            prompt(
                DYNAMIC_PROMPT,
                "Dynamic Prompt",
                "A prompt that test_trigger_prompt_change added",
                vec![],
            )
        });
        PluginInfo::new(
            "conformance",
            "Fixtures of the MCP conformance suite.",
            tools,
        )
        .with_prompts(
            dynamic_prompt
                .into_iter()
                .chain([
                    prompt(
                        "test_simple_prompt",
                        "Simple Test Prompt",
                        "A simple prompt without arguments",
                        vec![],
                    ),
                    prompt(
                        "test_prompt_with_arguments",
                        "Prompt With Arguments",
                        "A prompt with required arguments",
                        vec![
                            argument("arg1", "First test argument"),
                            argument("arg2", "Second test argument"),
                        ],
                    ),
                    prompt(
                        "test_prompt_with_embedded_resource",
                        "Prompt With Embedded Resource",
                        "A prompt that includes an embedded resource",
                        vec![argument("resourceUri", "URI of the resource to embed")],
                    ),
                    prompt(
                        "test_prompt_with_image",
                        "Prompt With Image",
                        "A prompt that includes an image",
                        vec![],
                    ),
                    prompt(
                        "test_input_required_result_prompt",
                        "Prompt That Asks",
                        "A prompt that asks the user for context first",
                        vec![],
                    ),
                ])
                .collect(),
        )
        .with_resources(
            "test",
            vec![ResourceTemplate {
                uri_template: "test://template/{id}/data".into(),
                name: "template".into(),
                title: "Resource Template".into(),
                description: "A resource template with parameter substitution".into(),
                mime_type: Some("application/json".into()),
            }],
        )
        .with_version("1.0.0")
    }

    fn call_tool(
        name: String,
        arguments: String,
        _context: CallContext,
    ) -> Result<Output, ToolError> {
        let arguments: Value = args::parse(&arguments)?;
        let text = |text: &str| Ok(Output::text(text));
        match name.as_str() {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_trigger_tool_change" => toggle(DYNAMIC_TOOL),
            "test_trigger_prompt_change" => toggle(DYNAMIC_PROMPT),
            DYNAMIC_TOOL => text("This tool was added while carport ran."),
            "test_image_content" => Ok(content(vec![image()])),
            "test_audio_content" => Ok(content(vec![Content::Audio(Media {
                data: WAV.to_vec(),
                mime_type: "audio/wav".into(),
            })])),
            "test_embedded_resource" => {
                Ok(content(vec![Content::EmbeddedResource(text_resource(
                    "test://embedded-resource",
                    "text/plain",
                    "This is an embedded resource content.",
                ))]))
            }
            "test_multiple_content_types" => Ok(content(vec![
                Content::Text("Multiple content types test:".into()),
                image(),
                Content::EmbeddedResource(text_resource(
                    "test://mixed-content-resource",
                    "application/json",
                    r#"{"test":"data","value":123}"#,
                )),
            ])),
            "test_error_handling" => Err(ToolError::Internal(
                "This tool intentionally returns an error for testing".into(),
            )),
            "test_tool_with_progress" => {
                for (step, done) in [0, 50, 100].into_iter().enumerate() {
                    if step > 0 {
                        clock::sleep_ms(50);
                    }
                    progress::report(done, 100, &format!("Completed step {done} of 100"));
                }
                text("Progress reported in three steps.")
            }
            "test_tool_with_logging" => {
                for (step, message) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .into_iter()
                .enumerate()
                {
                    if step > 0 {
                        clock::sleep_ms(50);
                    }
                    log::info(message);
                }
                text("Tool with logging executed successfully")
            }
            "test_logging_tool" => {
                log::info("test_logging_tool ran");
                text("Logged one message.")
            }
            "test_sampling" | "test_missing_capability" | "test_input_required_result_sampling" => {
                let prompt = arguments["prompt"]
                    .as_str()
                    .unwrap_or("What is the capital of France?");
                let reply = sample("capital_question", prompt, 100)?;
                Ok(Output::text(format!("LLM response: {reply}")))
            }
            "test_elicitation" => {
                let message = arguments["message"]
                    .as_str()
                    .unwrap_or("Please provide your information");
                let schema = json!({"type": "object", "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"},
                }, "required": ["username", "email"]});
                let answer =
                    client::elicit("user_info", message, &schema).map_err(ToolError::Internal)?;
                Ok(Output::text(format!(
                    "User response: action={}, content={}",
                    answer.action,
                    answer.content.unwrap_or_default()
                )))
            }
            "test_elicitation_sep1034_defaults" => {
                let schema = json!({"type": "object", "properties": {
                    "name": {"type": "string", "description": "User name", "default": "John Doe"},
                    "age": {"type": "integer", "description": "User age", "default": 30},
                    "score": {"type": "number", "description": "User score", "default": 95.5},
                    "status": {"type": "string", "description": "User status",
                               "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "description": "Verification status", "default": true},
                }, "required": []});
                elicited(
                    "form_with_defaults",
                    "Please review and update the form fields with defaults",
                    &schema,
                )
            }
            "test_elicitation_sep1330_enums" => {
                let titled = |prefix: &str, titles: [&str; 3]| -> Vec<Value> {
                    titles
                        .iter()
                        .enumerate()
                        .map(|(index, title)| json!({"const": format!("{prefix}{}", index + 1), "title": title}))
                        .collect()
                };
                let schema = json!({"type": "object", "properties": {
                    "untitledSingle": {"type": "string", "description": "Select one option",
                                       "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "description": "Select one titled option",
                                     "oneOf": titled("value", ["First Option", "Second Option", "Third Option"])},
                    "legacyEnum": {"type": "string", "description": "Select one (legacy)",
                                   "enum": ["opt1", "opt2", "opt3"],
                                   "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "description": "Select several options",
                                      "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "description": "Select several titled options",
                                    "items": {"anyOf": titled("value", ["First Choice", "Second Choice", "Third Choice"])}},
                }, "required": []});
                elicited("enum_form", "Please choose from the enum fields", &schema)
            }
            "test_streaming_elicitation" | "test_input_required_result_elicitation" => {
                let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
                let answer = client::elicit("user_name", "What is your name?", &schema)
                    .map_err(ToolError::Internal)?;
                let name = answered_field(&answer, "name").unwrap_or_else(|| "unknown".into());
                Ok(Output::text(format!("Hello, {name}!")))
            }
            "test_input_required_result_list_roots" => {
                let roots = roots("client_roots")?;
                Ok(Output::text(format!(
                    "The client has {} roots.",
                    roots.len()
                )))
            }
            "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
                client::elicit("confirm", "Please confirm", &schema)
                    .map_err(ToolError::Internal)?;
                text("state-ok: requestState validated")
            }
            "test_input_required_result_multiple_inputs" => {
                let answers = client::ask(&[
                    (
                        "user_name".into(),
                        elicitation("What is your name?", "name"),
                    ),
                    ("greeting".into(), sampling("Generate a greeting", 50)),
                    ("client_roots".into(), Question::ListRoots),
                ]);
                let mut parts = Vec::new();
                for answer in answers {
                    parts.push(match answer.map_err(ToolError::Internal)? {
                        Answer::Elicited(answer) => format!(
                            "Name: {}",
                            answered_field(&answer, "name").unwrap_or_default()
                        ),
                        Answer::Sampled(reply) => format!("Greeting: {}", text_of(&reply.content)),
                        Answer::Roots(roots) => format!("Roots: {}", roots.len()),
                    });
                }
                Ok(Output::text(parts.join("; ")))
            }
            "test_input_required_result_multi_round" => {
                let name = ask_field("step1", "Step 1: What is your name?", "name")?;
                let color = ask_field("step2", "Step 2: What is your favorite color?", "color")?;
                Ok(Output::text(format!(
                    "Multi-round complete for {name} who likes {color}"
                )))
            }
            "test_input_required_result_capabilities" => {
                let answers = client::ask(&[
                    (
                        "elicit_input".into(),
                        elicitation("What is your name?", "name"),
                    ),
                    ("sample_input".into(), sampling("Sample request", 50)),
                ]);
                let answered = answers.iter().filter(|answer| answer.is_ok()).count();
                Ok(Output::text(format!("{answered} of 2 questions answered")))
            }
            other => Err(ToolError::InvalidArguments(format!(
                "no tool named {other}"
            ))),
        }
    }

    fn list_resources(_context: CallContext) -> Result<Vec<ResourceInfo>, ToolError> {
        let resource =
            |uri: &str, name: &str, title: &str, description: &str, mime: &str| ResourceInfo {
                uri: uri.into(),
                name: name.into(),
                title: title.into(),
                description: description.into(),
                mime_type: Some(mime.into()),
            };
        Ok(vec![
            resource(
                "test://static-text",
                "static-text",
                "Static Text Resource",
                "A static text resource for testing",
                "text/plain",
            ),
            resource(
                "test://static-binary",
                "static-binary",
                "Static Binary Resource",
                "A static binary resource (image) for testing",
                "image/png",
            ),
            resource(
                "test://watched-resource",
                "watched-resource",
                "Watched Resource",
                "A resource whose text changes every 3 seconds",
                "text/plain",
            ),
        ])
    }

    fn read_resource(
        uri: String,
        _context: CallContext,
    ) -> Result<Vec<ResourceContents>, ToolError> {
        let contents = match uri.as_str() {
            "test://static-text" => text_resource(
                &uri,
                "text/plain",
                "This is the content of the static text resource.",
            ),
            "test://static-binary" => ResourceContents {
                uri: uri.clone(),
                mime_type: Some("image/png".into()),
                body: ResourceBody::Blob(PNG.to_vec()),
            },
            "test://watched-resource" => {
                let period = clock::now_ms() / 3000;
                text_resource(
                    &uri,
                    "text/plain",
                    &format!("Watched resource, period {period}"),
                )
            }
            _ => match template_id(&uri) {
                Some(id) => {
                    let data = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                    text_resource(&uri, "application/json", &data.to_string())
                }
                None => return Err(ToolError::NotFound(format!("Resource {uri} not found"))),
            },
        };
        Ok(vec![contents])
    }

    fn get_prompt(
        name: String,
        arguments: Vec<(String, String)>,
        _context: CallContext,
    ) -> Result<PromptResult, ToolError> {
        let argument = |key: &str| {
            arguments
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        let user = |content: Content| PromptMessage {
            role: Role::User,
            content,
        };
        let messages = match name.as_str() {
            "test_simple_prompt" => vec![user(Content::Text(
                "This is a simple prompt for testing.".into(),
            ))],
            DYNAMIC_PROMPT => vec![user(Content::Text(
                "This prompt was added while carport ran.".into(),
            ))],
            "test_prompt_with_arguments" => vec![user(Content::Text(format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                argument("arg1"),
                argument("arg2")
            )))],
            "test_prompt_with_embedded_resource" => vec![
                user(Content::EmbeddedResource(text_resource(
                    &argument("resourceUri"),
                    "text/plain",
                    "Embedded resource content for testing.",
                ))),
                user(Content::Text(
                    "Please process the embedded resource above.".into(),
                )),
            ],
            "test_prompt_with_image" => vec![
                user(image()),
                user(Content::Text("Please analyze the image above.".into())),
            ],
            "test_input_required_result_prompt" => {
                let context = ask_field(
                    "user_context",
                    "What context should the prompt use?",
                    "context",
                )?;
                vec![user(Content::Text(format!(
                    "Prompt with context: {context}"
                )))]
            }
            other => return Err(ToolError::NotFound(format!("no prompt named {other}"))),
        };
        Ok(PromptResult {
            description: None,
            messages,
        })
    }

    fn complete(
        request: CompletionRequest,
        _context: CallContext,
    ) -> Result<Completion, ToolError> {
        match (&request.reference, request.argument_name.as_str()) {
            (CompletionReference::Prompt(prompt), "arg1")
                if prompt == "test_prompt_with_arguments" =>
            {
                Ok(Completion::matching(
                    &request.argument_value,
                    ["test", "testValue1", "paris"],
                ))
            }
            (CompletionReference::ResourceTemplate(_), "id") => Ok(Completion::matching(
                &request.argument_value,
                ["123", "456"],
            )),
            _ => Ok(Completion::default()),
        }
    }
}

fn content(content: Vec<Content>) -> Output {
    Output {
        content,
        structured: None,
    }
}

fn image() -> Content {
    Content::Image(Media {
        data: PNG.to_vec(),
        mime_type: "image/png".into(),
    })
}

fn text_resource(uri: &str, mime_type: &str, text: &str) -> ResourceContents {
    ResourceContents {
        uri: uri.into(),
        mime_type: Some(mime_type.into()),
        body: ResourceBody::Text(text.into()),
    }
}

/// The `{id}` of `test://template/{id}/data`.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn elicitation(message: &str, field: &str) -> Question {
    Question::Elicit(Elicitation {
        message: message.into(),
        requested_schema: json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}).to_string(),
    })
}

fn sampling(prompt: &str, max_tokens: u32) -> Question {
    Question::Sample(SamplingRequest {
        messages: vec![SamplingMessage {
            role: Role::User,
            content: Content::Text(prompt.into()),
        }],
        system_prompt: None,
        max_tokens,
        temperature: None,
        stop_sequences: Vec::new(),
        model_hints: Vec::new(),
    })
}

fn elicited(id: &str, message: &str, schema: &Value) -> Result<Output, ToolError> {
    let answer = client::elicit(id, message, schema).map_err(ToolError::Internal)?;
    Ok(Output::text(format!(
        "Elicitation completed: action={}, content={}",
        answer.action,
        answer.content.unwrap_or_default()
    )))
}

fn ask_field(id: &str, message: &str, field: &str) -> Result<String, ToolError> {
    let schema =
        json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]});
    let answer = client::elicit(id, message, &schema).map_err(ToolError::Internal)?;
    answered_field(&answer, field)
        .ok_or_else(|| ToolError::InvalidArguments(format!("no {field} was given")))
}

fn answered_field(answer: &client::ElicitationAnswer, field: &str) -> Option<String> {
    let content: Value = serde_json::from_str(answer.content.as_deref()?).ok()?;
    content.get(field)?.as_str().map(str::to_string)
}

fn sample(id: &str, prompt: &str, max_tokens: u32) -> Result<String, ToolError> {
    match client::ask(&[(id.into(), sampling(prompt, max_tokens))]).pop() {
        Some(Ok(Answer::Sampled(reply))) => Ok(text_of(&reply.content)),
        Some(Err(reason)) => Err(ToolError::Internal(reason)),
        _ => Err(ToolError::Internal(
            "the client gave no sampling answer".into(),
        )),
    }
}

fn roots(id: &str) -> Result<Vec<client::Root>, ToolError> {
    match client::ask(&[(id.into(), Question::ListRoots)]).pop() {
        Some(Ok(Answer::Roots(roots))) => Ok(roots),
        Some(Err(reason)) => Err(ToolError::Internal(reason)),
        _ => Err(ToolError::Internal("the client gave no roots".into())),
    }
}

fn text_of(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        _ => String::from("(not text)"),
    }
}

carport_guest::plugin!(Conformance);
