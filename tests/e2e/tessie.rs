//! The Tessie plugin against the simulated Tessie API.

use serde_json::json;

use crate::harness::*;

/// Query parameters a request must carry.
type Query = Vec<(&'static str, &'static str)>;

/// Every `tesla_command` command: its arguments, then the path and query Tessie must receive.
fn command_table() -> Vec<(serde_json::Value, &'static str, Query)> {
    vec![
        (command("lock"), "lock", vec![]),
        (command("unlock"), "unlock", vec![]),
        (command("start_climate"), "start_climate", vec![]),
        (command("stop_climate"), "stop_climate", vec![]),
        (
            json!({"command": "set_temperature", "temperature": 22.5}),
            "set_temperatures",
            vec![("temperature", "22.5")],
        ),
        (command("start_defrost"), "start_max_defrost", vec![]),
        (command("stop_defrost"), "stop_max_defrost", vec![]),
        (command("open_frunk"), "activate_front_trunk", vec![]),
        (command("open_trunk"), "activate_rear_trunk", vec![]),
        (command("open_charge_port"), "open_charge_port", vec![]),
        (command("close_charge_port"), "close_charge_port", vec![]),
        (command("enable_sentry"), "enable_sentry", vec![]),
        (command("disable_sentry"), "disable_sentry", vec![]),
        (command("flash"), "flash", vec![]),
        (command("honk"), "honk", vec![]),
        (
            json!({"command": "share", "destination": "SFO Airport & Terminal 2", "locale": "en-US"}),
            "share",
            vec![("value", "SFO Airport & Terminal 2"), ("locale", "en-US")],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_the_tessie_tools_with_schemas_and_annotations() {
    let harness = Harness::start().await;
    let tools = harness.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    for expected in [
        "tessie_list_vehicles",
        "tessie_tesla_state",
        "tessie_tesla_command",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let state = tools
        .iter()
        .find(|tool| tool.name == "tessie_tesla_state")
        .unwrap();
    let annotations = state.annotations.as_ref().unwrap();
    assert_eq!(annotations.read_only_hint, Some(true));
    assert!(state.output_schema.is_some());
    let command = tools
        .iter()
        .find(|tool| tool.name == "tessie_tesla_command")
        .unwrap();
    let annotations = command.annotations.as_ref().unwrap();
    assert_eq!(annotations.read_only_hint, Some(false));
    assert_eq!(annotations.destructive_hint, Some(true));
    let commands = &command.input_schema["properties"]["command"]["enum"];
    assert_eq!(commands.as_array().unwrap().len(), 16);
    assert_eq!(
        command.input_schema["properties"]["temperature"]["maximum"],
        json!(28.0)
    );
    for tool in &tools {
        let valid = tool.name.len() <= 64
            && tool
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        assert!(
            valid,
            "tool name {} is not accepted by every client",
            tool.name
        );
    }
    let info = harness.client.peer_info().unwrap();
    let instructions = info.instructions.as_deref().unwrap();
    assert!(instructions.contains("tessie"), "{instructions}");
    assert!(
        instructions.contains("tessie_tesla_state"),
        "{instructions}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_sends_the_right_request() {
    let harness = Harness::start().await;
    for (arguments, endpoint, query) in command_table() {
        harness.simulator.clear_requests();
        let result = harness
            .call("tessie_tesla_command", arguments.clone())
            .await;
        assert!(!is_error(&result), "{arguments}: {}", text_of(&result));
        let answer = structured(&result);
        assert_eq!(answer["success"], json!(true), "{arguments}");
        assert_eq!(answer["command"], arguments["command"]);

        let requests = harness.tessie_requests();
        let sent = requests.last().expect("a request reached Tessie");
        assert_eq!(sent.method, "POST", "{arguments}");
        assert_eq!(
            sent.path,
            format!("/{RED_ARROW}/command/{endpoint}"),
            "{arguments}"
        );
        let expected: Vec<(String, String)> = query
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        assert_eq!(sent.query_pairs(), expected, "{arguments}");
        assert!(sent.body.is_empty(), "Tessie commands carry no body");
        assert_eq!(
            sent.authorization.as_deref(),
            Some("Bearer sim-tessie-token")
        );
        // An awake car is not woken: status check, then the command.
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert_eq!(requests[0].path, format!("/{RED_ARROW}/status"));
    }
    let car = harness.simulator.vehicle(RED_ARROW).unwrap();
    assert_eq!(car.driver_temp_c, 22.5);
    assert_eq!(
        car.navigation_destination.as_deref(),
        Some("SFO Airport & Terminal 2")
    );
    assert_eq!((car.horn_honks, car.light_flashes), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_change_what_the_state_reports() {
    let harness = Harness::start().await;
    let before = structured(&harness.call("tessie_tesla_state", json!({})).await);
    assert_eq!(before["locked"], json!(false));
    assert_eq!(before["sentry_mode"], json!(false));

    for name in [
        "lock",
        "enable_sentry",
        "open_frunk",
        "open_charge_port",
        "start_defrost",
    ] {
        let result = harness.call("tessie_tesla_command", command(name)).await;
        assert!(!is_error(&result), "{name}: {}", text_of(&result));
    }
    let after = structured(&harness.call("tessie_tesla_state", json!({})).await);
    assert_eq!(after["locked"], json!(true));
    assert_eq!(after["sentry_mode"], json!(true));
    assert_eq!(after["doors"]["frunk"], json!(true));
    assert_eq!(after["doors"]["charge_port"], json!(true));
    assert_eq!(after["climate"]["is_defrosting"], json!(true));
    assert_eq!(after["climate"]["is_on"], json!(true));

    harness
        .call("tessie_tesla_command", command("unlock"))
        .await;
    let unlocked = structured(&harness.call("tessie_tesla_state", json!({})).await);
    assert_eq!(unlocked["locked"], json!(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn state_is_normalised_to_kilometres() {
    let harness = Harness::start().await;
    harness.simulator.update_vehicle(RED_ARROW, |car| {
        car.battery_range_mi = 200.0;
        car.odometer_mi = 10_000.0;
        car.speed_mph = Some(50.0);
        car.driver_rear = 1;
    });
    let result = harness.call("tessie_tesla_state", json!({})).await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let state = structured(&result);
    assert_eq!(state["vin"], json!(RED_ARROW));
    assert_eq!(state["display_name"], json!("Red Arrow"));
    assert_eq!(state["state"], json!("online"));
    assert_eq!(state["battery_level"], json!(76.0));
    assert_eq!(state["battery_range_km"], json!(321.9));
    assert_eq!(state["odometer_km"], json!(16093.4));
    assert_eq!(state["location"]["speed"], json!(80.5));
    assert_eq!(state["location"]["latitude"], json!(37.4925));
    assert_eq!(state["charging"]["state"], json!("Disconnected"));
    assert_eq!(state["charging"]["charge_limit"], json!(80.0));
    assert_eq!(state["climate"]["target_temp"], json!(21.0));
    assert_eq!(state["doors"]["rear_left"], json!(true));
    assert_eq!(state["doors"]["front_left"], json!(false));
    assert!(state["last_updated"].as_str().unwrap().ends_with('Z'));
    assert!(text_of(&result).contains("Red Arrow is online"));
    let sent = harness.tessie_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].path.as_str()),
        ("GET", &*format!("/{RED_ARROW}/state"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn several_cars_list_and_pick_by_vin() {
    let harness = Harness::start().await;
    let listed = structured(&harness.call("tessie_list_vehicles", json!({})).await);
    let vins: Vec<&str> = listed["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|car| car["vin"].as_str().unwrap())
        .collect();
    assert_eq!(vins, vec![RED_ARROW, BLUE_GHOST]);
    let ghost = structured(
        &harness
            .call("tessie_tesla_state", json!({"vin": BLUE_GHOST}))
            .await,
    );
    assert_eq!(ghost["display_name"], json!("Blue Ghost"));
    // Reading a sleeping car does not wake it.
    assert_eq!(ghost["state"], json!("asleep"));
    assert!(harness.simulator.vehicle(BLUE_GHOST).unwrap().asleep);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleeping_car_is_woken_with_progress_before_the_command() {
    let harness = Harness::start().await;
    let result = harness
        .call_with_progress(
            "tessie_tesla_command",
            json!({"command": "honk", "vin": BLUE_GHOST}),
        )
        .await;
    assert!(!is_error(&result), "{}", text_of(&result));
    assert_eq!(structured(&result)["success"], json!(true));
    let paths: Vec<(String, String)> = harness
        .tessie_requests()
        .into_iter()
        .map(|request| (request.method, request.path))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("GET".to_string(), format!("/{BLUE_GHOST}/status")),
            ("POST".to_string(), format!("/{BLUE_GHOST}/wake")),
            ("POST".to_string(), format!("/{BLUE_GHOST}/command/honk")),
        ]
    );
    let car = harness.simulator.vehicle(BLUE_GHOST).unwrap();
    assert!(!car.asleep);
    assert_eq!(car.horn_honks, 1);
    let progress = harness.recorder.progress.lock().unwrap().clone();
    assert_eq!(progress.len(), 2, "{progress:?}");
    assert!(progress[0].message.as_deref().unwrap().contains("asleep"));
    assert_eq!((progress[0].progress, progress[1].progress), (0.0, 1.0));
    assert_eq!(progress[1].total, Some(2.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_refused_before_any_request() {
    let harness = Harness::start().await;
    let cases = [
        (
            json!({"command": "set_temperature", "temperature": 40}),
            "maximum",
        ),
        (
            json!({"command": "set_temperature", "temperature": 10}),
            "minimum",
        ),
        (json!({"command": "set_temperature"}), "needs temperature"),
        (json!({"command": "share"}), "needs destination"),
        (
            json!({"command": "share", "destination": ""}),
            "destination",
        ),
        (json!({"command": "self_destruct"}), "self_destruct"),
        (json!({"command": "lock", "vin": "not-a-vin"}), "vin"),
        (json!({"command": "lock", "colour": "red"}), "colour"),
        (json!({}), "command"),
    ];
    for (arguments, mentions) in cases {
        let result = harness
            .call("tessie_tesla_command", arguments.clone())
            .await;
        assert!(is_error(&result), "{arguments} was accepted");
        let text = text_of(&result);
        assert!(text.contains(mentions), "{arguments}: {text}");
        assert!(text.contains("nothing was sent"), "{arguments}: {text}");
    }
    assert_eq!(
        harness.tessie_requests(),
        vec![],
        "a refused call reached the vendor"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_token_gives_a_clear_message() {
    let harness = Harness::start_with(Options {
        tessie_token: "expired-token".into(),
        ..Options::default()
    })
    .await;
    let result = harness.call("tessie_tesla_state", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(text.contains("plugins.toml"), "{text}");
    assert!(
        !text.contains("expired-token"),
        "the secret leaked into the error: {text}"
    );
    let sent = harness.tessie_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].authorization.as_deref(),
        Some("Bearer expired-token")
    );
    assert!(
        !harness.stderr.lock().unwrap().contains("expired-token"),
        "the secret leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_is_reported_with_the_wait() {
    let harness = Harness::start().await;
    harness.simulator.script(carport::simulator::Script {
        vendor: carport::simulator::Vendor::Tessie,
        method: Some("GET".into()),
        path_prefix: format!("/{RED_ARROW}/state"),
        status: 429,
        headers: vec![("retry-after".into(), "37".into())],
        body: json!({"error": "Too many requests"}),
        times: 1,
    });
    let result = harness.call("tessie_tesla_state", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(text.contains("HTTP 429"), "{text}");
    assert!(text.contains("retry in 37 s"), "{text}");
    assert!(text.contains("Too many requests"), "{text}");
    assert_eq!(
        harness.tessie_requests().len(),
        1,
        "a rate-limited read must not be retried"
    );
}
