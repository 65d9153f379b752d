//! What world 0.2.0 brings to a client, through the providers and the conformance fixture:
//! cars as resources with subscriptions, completion of their ids, prompts, questions to the
//! user and logging, each over a real MCP session with real components.
#![allow(deprecated)]

use std::time::Duration;

use rmcp::model::{
    ArgumentInfo, CompleteRequestParams, GetPromptRequestParams, LoggingLevel,
    ReadResourceRequestParams, Reference, ResourceContents, SetLevelRequestParams,
    SubscribeRequestParams,
};
use serde_json::{Value, json};

use crate::harness::{
    BLUE_GHOST, Harness, Options, RED_ARROW, Recorder, cache_dir, components_dir, connect_with,
    is_error, text_of, write_config,
};

fn state_uri(vin: &str) -> String {
    format!("tessie://vehicles/{vin}/state")
}

fn resource_json(contents: &[ResourceContents]) -> Value {
    match &contents[0] {
        ResourceContents::TextResourceContents { text, .. } => serde_json::from_str(text).unwrap(),
        other => panic!("expected text contents, got {other:?}"),
    }
}

/// The conformance fixture served twice: `asker` may ask the user, `mute` may not.
fn fixture_plugins() -> String {
    let component = components_dir()
        .join("conformance.wasm")
        .display()
        .to_string();
    format!(
        "\n[plugins.asker]\ncomponent = {component:?}\nelicitation = true\n\
         [plugins.mute]\ncomponent = {component:?}\n"
    )
}

async fn start_with_client(
    recorder: Recorder,
) -> (
    Harness,
    rmcp::service::RunningService<rmcp::RoleClient, Recorder>,
) {
    let options = Options {
        tessie_keys: "resource_poll_seconds = 1\n".into(),
        extra_toml: fixture_plugins(),
        ..Options::default()
    };
    let harness = Harness::start_with(options).await;
    let config = harness.dir.path().join("plugins.toml");
    let (client, _, _) = connect_with(&config, &cache_dir(), recorder, &[]).await;
    (harness, client)
}

#[tokio::test]
async fn cars_are_resources_that_notify_when_they_change_without_waking() {
    let options = Options {
        tessie_keys: "resource_poll_seconds = 1\n".into(),
        ..Options::default()
    };
    let harness = Harness::start_with(options).await;
    let resources = harness.client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = resources
        .iter()
        .map(|resource| resource.uri.as_str())
        .collect();
    assert!(uris.contains(&state_uri(RED_ARROW).as_str()), "{uris:?}");
    assert!(uris.contains(&state_uri(BLUE_GHOST).as_str()), "{uris:?}");
    let templates = harness.client.list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|template| template.uri_template == "tessie://vehicles/{vin}/state"),
        "{templates:?}"
    );

    let read = harness
        .client
        .read_resource(ReadResourceRequestParams::new(state_uri(RED_ARROW)))
        .await
        .unwrap();
    let state = resource_json(&read.contents);
    assert_eq!(state["vin"], RED_ARROW);
    let locked_before = state["locked"].clone();

    // Reading the sleeping car's resource must not wake it.
    let sleeping = harness
        .client
        .read_resource(ReadResourceRequestParams::new(state_uri(BLUE_GHOST)))
        .await
        .unwrap();
    assert_eq!(resource_json(&sleeping.contents)["state"], "asleep");
    assert!(
        !harness
            .tessie_requests()
            .iter()
            .any(|request| request.path.contains("wake")),
        "a resource read woke the car: {:?}",
        harness.tessie_requests()
    );

    harness
        .client
        .subscribe(SubscribeRequestParams::new(state_uri(RED_ARROW)))
        .await
        .unwrap();
    let command = if locked_before == json!(true) {
        "unlock"
    } else {
        "lock"
    };
    let result = harness
        .call("tessie_tesla_command", json!({"command": command}))
        .await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while harness.recorder.resource_updates.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no resources/updated notification"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        harness.recorder.resource_updates.lock().unwrap()[0],
        state_uri(RED_ARROW)
    );
}

#[tokio::test]
async fn vins_are_completed_from_the_vehicle_list() {
    let harness = Harness::start().await;
    let complete = |value: &str| {
        CompleteRequestParams::new(
            Reference::for_resource("tessie://vehicles/{vin}/state"),
            ArgumentInfo::new("vin", value),
        )
    };
    let blue = harness.client.complete(complete("7sa")).await.unwrap();
    assert_eq!(blue.completion.values, vec![BLUE_GHOST.to_string()]);
    let both = harness.client.complete(complete("")).await.unwrap();
    assert_eq!(
        both.completion.values.len(),
        2,
        "{:?}",
        both.completion.values
    );
}

#[tokio::test]
async fn a_plugin_asks_the_user_only_when_granted_and_the_client_can_answer() {
    let accepting = Recorder {
        elicitation_answer: Some(
            json!({"action": "accept", "content": {"username": "ann", "email": "a@x"}}),
        ),
        ..Recorder::default()
    };
    let (_harness, client) = start_with_client(accepting).await;
    let ask = |plugin: &str| {
        rmcp::model::CallToolRequestParams::new(format!("{plugin}_test_elicitation"))
            .with_arguments(
                json!({"message": "Unlock the car?"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
    };
    let accepted = client.call_tool(ask("asker")).await.unwrap();
    assert!(!is_error(&accepted), "{}", text_of(&accepted));
    assert!(
        text_of(&accepted).contains("action=accept"),
        "{}",
        text_of(&accepted)
    );
    assert!(text_of(&accepted).contains("ann"), "{}", text_of(&accepted));

    let refused = client.call_tool(ask("mute")).await.unwrap();
    assert!(is_error(&refused));
    assert!(
        text_of(&refused).contains("add `elicitation = true` under [plugins.mute]"),
        "{}",
        text_of(&refused)
    );

    let declining = Recorder {
        elicitation_answer: Some(json!({"action": "decline"})),
        ..Recorder::default()
    };
    let (_harness, client) = start_with_client(declining).await;
    let declined = client.call_tool(ask("asker")).await.unwrap();
    assert!(
        text_of(&declined).contains("action=decline"),
        "{}",
        text_of(&declined)
    );

    let (_harness, client) = start_with_client(Recorder::default()).await;
    let unsupported = client.call_tool(ask("asker")).await.unwrap();
    assert!(is_error(&unsupported));
    assert!(
        text_of(&unsupported).contains("does not support elicitation"),
        "{}",
        text_of(&unsupported)
    );
}

#[tokio::test]
async fn log_messages_reach_the_client_at_the_level_it_chose() {
    let (harness, client) = start_with_client(Recorder::default()).await;
    let _ = harness;
    let call = || rmcp::model::CallToolRequestParams::new("asker_test_tool_with_logging");
    let recorder = client.service().clone();

    client.call_tool(call()).await.unwrap();
    assert!(
        recorder.logs.lock().unwrap().is_empty(),
        "logs before the client asked for them"
    );

    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .unwrap();
    client.call_tool(call()).await.unwrap();
    assert!(
        recorder.logs.lock().unwrap().is_empty(),
        "info logs above a warning level"
    );

    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await
        .unwrap();
    client.call_tool(call()).await.unwrap();
    let logs = recorder.logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert_eq!(logs[0].logger.as_deref(), Some("asker"));
    assert_eq!(logs[0].data, json!("Tool execution started"));
}

#[tokio::test]
async fn prompts_are_listed_and_filled_with_their_arguments() {
    let (_harness, client) = start_with_client(Recorder::default()).await;
    let prompts = client.list_all_prompts().await.unwrap();
    let with_arguments = prompts
        .iter()
        .find(|prompt| prompt.name == "asker_test_prompt_with_arguments")
        .expect("the prefixed prompt is listed");
    assert_eq!(with_arguments.arguments.as_ref().map(Vec::len), Some(2));

    let arguments = json!({"arg1": "one", "arg2": "two"});
    let filled = client
        .get_prompt(
            GetPromptRequestParams::new("asker_test_prompt_with_arguments")
                .with_arguments(arguments.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let text = serde_json::to_string(&filled.messages).unwrap();
    assert!(
        text.contains("arg1='one'") && text.contains("arg2='two'"),
        "{text}"
    );

    let missing = client
        .get_prompt(GetPromptRequestParams::new(
            "asker_test_prompt_with_arguments",
        ))
        .await
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("missing required arguments: arg1, arg2"),
        "{missing}"
    );
}

#[tokio::test]
async fn unprefixed_names_that_collide_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let simulator = carport::simulator::Simulator::start(Default::default())
        .await
        .unwrap();
    let component = components_dir()
        .join("conformance.wasm")
        .display()
        .to_string();
    let options = Options {
        extra_toml: format!(
            "\n[plugins.first]\ncomponent = {component:?}\nprefix_names = false\n\
             [plugins.second]\ncomponent = {component:?}\nprefix_names = false\n"
        ),
        ..Options::default()
    };
    let config = write_config(&dir, &simulator, &options);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_carport"))
        .args(["check", "--config"])
        .arg(&config)
        .env("CARPORT_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{log}");
    assert!(
        log.contains("plugin `second` was not loaded")
            && log.contains("already served by plugin `first`"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_smartcar_vehicle_is_a_resource_read_for_the_user_who_connected_it() {
    let harness = Harness::start_with(Options {
        smartcar: true,
        ..Options::default()
    })
    .await;
    let uri = "smartcar://vehicles/sc-veh-vw-id4/state";
    let resources = harness.client.list_all_resources().await.unwrap();
    assert!(
        resources.iter().any(|resource| resource.uri == uri),
        "{resources:?}"
    );
    let read = harness
        .client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap();
    assert!(resource_json(&read.contents)["battery_level"].is_number());
    let signals = harness
        .smartcar_requests()
        .into_iter()
        .find(|request| request.path.ends_with("/signals"))
        .expect("the state was read from the signals");
    assert_eq!(signals.header("sc-user-id"), Some("sc-user-alex"));
}
