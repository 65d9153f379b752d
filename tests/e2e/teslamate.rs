//! The TeslaMate plugin against the simulated TeslaMateApi.

use carport::simulator::{Script, Vendor};
use serde_json::{Value, json};

use crate::harness::*;

const TOOLS: [&str; 10] = [
    "teslamate_get_cars",
    "teslamate_get_car",
    "teslamate_get_car_status",
    "teslamate_get_car_charges",
    "teslamate_get_car_charge",
    "teslamate_get_car_drives",
    "teslamate_get_car_drive",
    "teslamate_get_car_battery_health",
    "teslamate_get_car_updates",
    "teslamate_vehicle_state",
];

async fn start() -> Harness {
    Harness::start_with(Options {
        teslamate: true,
        ..Options::default()
    })
    .await
}

/// The `data` the simulated TeslaMateApi answers at `path`, fetched directly.
async fn data_at(harness: &Harness, path: &str) -> Value {
    let url = format!("{}{path}", harness.simulator.url(Vendor::TeslaMate));
    let body: Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(Vendor::TeslaMate.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].clone()
}

fn ids(list: &Value, key: &str) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item[key].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_the_teslamate_tools_read_only_with_strict_schemas() {
    let harness = start().await;
    let tools = harness.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools
        .iter()
        .map(|tool| tool.name.as_ref())
        .filter(|name| name.starts_with("teslamate_"))
        .collect();
    assert_eq!(names.len(), TOOLS.len(), "{names:?}");
    for expected in TOOLS {
        let tool = tools
            .iter()
            .find(|tool| tool.name == expected)
            .unwrap_or_else(|| panic!("{expected} missing from {names:?}"));
        let annotations = tool.annotations.as_ref().unwrap();
        assert_eq!(annotations.read_only_hint, Some(true), "{expected}");
        assert_eq!(annotations.destructive_hint, Some(false), "{expected}");
        assert_eq!(
            tool.input_schema["additionalProperties"],
            json!(false),
            "{expected}"
        );
        assert!(tool.output_schema.is_some(), "{expected}");
        assert!(
            tool.description.as_deref().unwrap().len() > 80,
            "{expected}"
        );
        if expected != "teslamate_get_cars" {
            let car_id = &tool.input_schema["properties"]["car_id"];
            assert_eq!(car_id["type"], json!("integer"), "{expected}");
            assert_eq!(car_id["minimum"], json!(1), "{expected}");
            assert_eq!(tool.input_schema["required"][0], json!("car_id"));
        }
    }
    let state = tools
        .iter()
        .find(|tool| tool.name == "teslamate_vehicle_state")
        .unwrap();
    let schema = state.output_schema.as_ref().unwrap();
    assert!(schema["properties"]["battery_range_km"].is_object());
    let instructions = harness.client.peer_info().unwrap().instructions.clone();
    assert!(instructions.unwrap().contains("teslamate"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tool_sends_the_right_request_and_returns_the_data() {
    let harness = start().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("teslamate_get_cars", json!({}), "/api/v1/cars"),
        ("teslamate_get_car", json!({"car_id": 2}), "/api/v1/cars/2"),
        (
            "teslamate_get_car_status",
            json!({"car_id": 1}),
            "/api/v1/cars/1/status",
        ),
        (
            "teslamate_get_car_charges",
            json!({"car_id": 1}),
            "/api/v1/cars/1/charges",
        ),
        (
            "teslamate_get_car_charge",
            json!({"car_id": 1, "charge_id": 3}),
            "/api/v1/cars/1/charges/3",
        ),
        (
            "teslamate_get_car_drives",
            json!({"car_id": 1}),
            "/api/v1/cars/1/drives",
        ),
        (
            "teslamate_get_car_drive",
            json!({"car_id": 2, "drive_id": 4}),
            "/api/v1/cars/2/drives/4",
        ),
        (
            "teslamate_get_car_battery_health",
            json!({"car_id": 1}),
            "/api/v1/cars/1/battery-health",
        ),
        (
            "teslamate_get_car_updates",
            json!({"car_id": 1}),
            "/api/v1/cars/1/updates",
        ),
    ];
    for (tool, arguments, path) in cases {
        harness.simulator.clear_requests();
        let result = harness.call(tool, arguments.clone()).await;
        assert!(!is_error(&result), "{tool}: {}", text_of(&result));
        let sent = harness.teslamate_requests();
        assert_eq!(sent.len(), 1, "{tool}: {sent:?}");
        assert_eq!(
            (sent[0].method.as_str(), sent[0].path.as_str()),
            ("GET", path)
        );
        assert_eq!(sent[0].query, "", "{tool}");
        assert_eq!(
            sent[0].authorization.as_deref(),
            Some("Bearer sim-teslamate-token")
        );
        let answer = structured(&result);
        assert!(answer.get("data").is_none(), "{tool}: still wrapped");
        // The cars and the live status carry clock-dependent times; the rest is a fixed history.
        if !tool.ends_with("cars") && !tool.ends_with("_car") && !tool.ends_with("status") {
            assert_eq!(answer, data_at(&harness, path).await, "{tool}");
        }
        match tool {
            "teslamate_get_cars" => {
                assert_eq!(ids(&answer["cars"], "car_id"), vec![1, 2]);
                assert_eq!(answer["cars"][0]["car_details"]["vin"], json!(RED_ARROW));
                assert!(text_of(&result).contains("car_id 2 = Blue Ghost"));
            }
            "teslamate_get_car" => {
                assert_eq!(answer["cars"][0]["name"], json!("Blue Ghost"));
                assert_eq!(answer["cars"][0]["car_details"]["vin"], json!(BLUE_GHOST));
            }
            "teslamate_get_car_status" => {
                assert_eq!(answer["status"]["display_name"], json!("Red Arrow"));
                assert_eq!(answer["units"]["unit_of_length"], json!("km"));
            }
            "teslamate_get_car_charges" => {
                assert_eq!(ids(&answer["charges"], "charge_id"), vec![6, 5, 3, 1]);
            }
            "teslamate_get_car_charge" => {
                assert_eq!(
                    answer["charge"]["address"],
                    json!("Tesla Supercharger Gilroy")
                );
                assert_eq!(
                    answer["charge"]["charge_details"].as_array().unwrap().len(),
                    3
                );
            }
            "teslamate_get_car_drives" => {
                assert_eq!(ids(&answer["drives"], "drive_id"), vec![6, 5, 3, 1]);
                assert_eq!(answer["summary"]["drives"], json!(4));
            }
            "teslamate_get_car_drive" => {
                assert_eq!(answer["car"]["car_name"], json!("Blue Ghost"));
                assert_eq!(
                    answer["drive"]["odometer_details"]["odometer_distance"],
                    json!(46.3)
                );
            }
            "teslamate_get_car_battery_health" => {
                assert!(
                    answer["battery_health"]["battery_health_percentage"].as_f64() > Some(90.0)
                );
            }
            "teslamate_get_car_updates" => {
                let versions: Vec<&str> = answer["updates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|update| update["version"].as_str().unwrap())
                    .collect();
                assert_eq!(versions, vec!["2026.20.5", "2025.44.25.5", "2025.38.9"]);
                assert!(text_of(&result).contains("installed now: 2026.20.5"));
            }
            _ => unreachable!(),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn date_filters_and_pages_reach_the_api_under_its_names() {
    let harness = start().await;
    // A bare date is the whole day, sent as local date and time (TeslaMate's time zone).
    let result = harness
        .call(
            "teslamate_get_car_charges",
            json!({"car_id": 1, "start_date": "2026-03-01", "end_date": "2026-03-10"}),
        )
        .await;
    assert!(!is_error(&result), "{}", text_of(&result));
    assert_eq!(
        ids(&structured(&result)["charges"], "charge_id"),
        vec![5, 3]
    );
    let sent = harness.teslamate_requests();
    assert_eq!(
        sent[0].query_pairs(),
        vec![
            ("startDate".to_string(), "2026-03-01T00:00:00".to_string()),
            ("endDate".to_string(), "2026-03-10T23:59:59".to_string()),
        ]
    );

    // RFC 3339 goes through as given; a drive ending after endDate is left out.
    harness.simulator.clear_requests();
    let result = harness
        .call(
            "teslamate_get_car_drives",
            json!({"car_id": 1, "start_date": "2026-03-04T00:00:00Z",
                   "end_date": "2026-03-08T18:00:00+02:00"}),
        )
        .await;
    let answer = structured(&result);
    assert_eq!(ids(&answer["drives"], "drive_id"), vec![3]);
    assert_eq!(answer["summary"]["drives"], json!(1));
    assert_eq!(
        harness.teslamate_requests()[0].query_pairs(),
        vec![
            ("startDate".to_string(), "2026-03-04T00:00:00Z".to_string()),
            (
                "endDate".to_string(),
                "2026-03-08T18:00:00+02:00".to_string()
            ),
        ]
    );

    // Pages, newest first; a full page says there may be more.
    harness.simulator.clear_requests();
    let result = harness
        .call(
            "teslamate_get_car_drives",
            json!({"car_id": 1, "page": 2, "show": 2}),
        )
        .await;
    assert_eq!(ids(&structured(&result)["drives"], "drive_id"), vec![3, 1]);
    assert!(text_of(&result).contains("page=3"), "{}", text_of(&result));
    assert_eq!(
        harness.teslamate_requests()[0].query_pairs(),
        vec![
            ("page".to_string(), "2".to_string()),
            ("show".to_string(), "2".to_string()),
        ]
    );

    // Nothing in range: TeslaMateApi says null, the tool says [].
    let result = harness
        .call(
            "teslamate_get_car_charges",
            json!({"car_id": 2, "start_date": "2030-01-01"}),
        )
        .await;
    assert_eq!(structured(&result)["charges"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn api_errors_become_tool_errors_with_their_message() {
    let harness = start().await;
    let cases = [
        (
            "teslamate_get_car_charges",
            json!({"car_id": 1, "start_date": "2026-02-30"}),
            vec!["TeslaMate API reported an error", "Invalid date format."],
        ),
        (
            "teslamate_get_car_charge",
            json!({"car_id": 1, "charge_id": 2}),
            vec!["no charge 2 for car_id 1", "No rows were returned!"],
        ),
        (
            "teslamate_get_car_drive",
            json!({"car_id": 1, "drive_id": 99}),
            vec!["no drive 99 for car_id 1", "get_car_drives"],
        ),
        (
            "teslamate_get_car_status",
            json!({"car_id": 7}),
            vec!["no status for car_id 7", "no info on this car ID"],
        ),
        (
            "teslamate_get_car",
            json!({"car_id": 9}),
            vec!["no car with car_id 9", "get_cars"],
        ),
        (
            "teslamate_vehicle_state",
            json!({"car_id": 9}),
            vec!["no car with car_id 9"],
        ),
    ];
    for (tool, arguments, mentions) in cases {
        let result = harness.call(tool, arguments.clone()).await;
        assert!(is_error(&result), "{tool} {arguments} was accepted");
        let text = text_of(&result);
        for mention in mentions {
            assert!(text.contains(mention), "{tool} {arguments}: {text}");
        }
        assert!(!text.contains("HTTP 200"), "{text}");
    }

    harness.simulator.script(Script {
        vendor: Vendor::TeslaMate,
        method: Some("GET".into()),
        path_prefix: "/api/v1/cars/1/battery-health".into(),
        status: 200,
        headers: vec![],
        body: json!({"error": "Unable to load battery health data."}),
        times: 1,
    });
    let result = harness
        .call("teslamate_get_car_battery_health", json!({"car_id": 1}))
        .await;
    assert!(is_error(&result));
    assert!(
        text_of(&result).contains("Unable to load battery health data."),
        "{}",
        text_of(&result)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_token_gives_a_clear_message() {
    let harness = Harness::start_with(Options {
        teslamate: true,
        teslamate_token: "not-the-api-token".into(),
        ..Options::default()
    })
    .await;
    let result = harness.call("teslamate_get_cars", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(text.contains("authentication failed"), "{text}");
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains("not-the-api-token"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn vehicle_state_is_the_shared_shape_in_km() {
    let harness = start().await;
    harness.simulator.update_vehicle(RED_ARROW, |car| {
        car.battery_range_mi = 200.0;
        car.odometer_mi = 10_000.0;
        car.speed_mph = Some(50.0);
        car.driver_rear = 1;
        car.locked = true;
    });
    let result = harness
        .call("teslamate_vehicle_state", json!({"car_id": 1}))
        .await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let state = structured(&result);
    assert_eq!(state["vin"], json!(RED_ARROW));
    assert_eq!(state["display_name"], json!("Red Arrow"));
    // TeslaMate says "driving": awake.
    assert_eq!(state["state"], json!("online"));
    assert_eq!(state["battery_level"], json!(76.0));
    assert_eq!(state["battery_range_km"], json!(321.9));
    assert_eq!(state["odometer_km"], json!(16093.4));
    assert_eq!(state["location"]["speed"], json!(80.0));
    assert_eq!(state["location"]["latitude"], json!(37.4925));
    assert_eq!(state["locked"], json!(true));
    assert_eq!(state["doors"]["rear_left"], json!(true));
    assert_eq!(state["doors"]["front_left"], json!(false));
    assert_eq!(state["charging"]["state"], json!("Disconnected"));
    assert_eq!(state["charging"]["charge_limit"], json!(80.0));
    assert_eq!(state["climate"]["inside_temp"], json!(24.5));
    assert_eq!(state["climate"]["target_temp"], Value::Null);
    assert!(text_of(&result).contains("Red Arrow is online"));
    let paths: Vec<String> = harness
        .teslamate_requests()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(paths, vec!["/api/v1/cars/1", "/api/v1/cars/1/status"]);

    let ghost = structured(
        &harness
            .call("teslamate_vehicle_state", json!({"car_id": 2}))
            .await,
    );
    assert_eq!(ghost["state"], json!("asleep"));
    assert_eq!(ghost["charging"]["state"], json!("Charging"));
    assert_eq!(ghost["charging"]["minutes_remaining"], json!(95.0));
    assert_eq!(ghost["doors"]["charge_port"], json!(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn vehicle_state_converts_a_teslamate_set_to_miles_and_fahrenheit() {
    let harness = start().await;
    harness.simulator.script(Script {
        vendor: Vendor::TeslaMate,
        method: Some("GET".into()),
        path_prefix: "/api/v1/cars/1/status".into(),
        status: 200,
        headers: vec![],
        body: json!({"data": {
            "car": {"car_id": 1, "car_name": "Red Arrow"},
            "status": {
                "display_name": "Red Arrow", "state": "charging", "odometer": 10000.0,
                "battery_details": {"battery_level": 76, "rated_battery_range": 200.0},
                "climate_details": {"inside_temp": 76.1, "outside_temp": 64.4},
                "driving_details": {"speed": 0, "heading": 90},
                "charging_details": {"charging_state": "nopower", "time_to_full_charge": 0.0}
            },
            "units": {"unit_of_length": "mi", "unit_of_pressure": "psi", "unit_of_temperature": "F"}
        }}),
        times: 1,
    });
    let state = structured(
        &harness
            .call("teslamate_vehicle_state", json!({"car_id": 1}))
            .await,
    );
    assert_eq!(state["state"], json!("online"));
    assert_eq!(state["battery_range_km"], json!(321.9));
    assert_eq!(state["odometer_km"], json!(16093.4));
    assert_eq!(state["climate"]["inside_temp"], json!(24.5));
    assert_eq!(state["climate"]["outside_temp"], json!(18.0));
    assert_eq!(state["location"]["speed"], json!(0.0));
    assert_eq!(state["charging"]["state"], json!("NoPower"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_refused_before_any_request() {
    let harness = start().await;
    let cases = [
        ("teslamate_get_car", json!({"car_id": 0}), "minimum"),
        ("teslamate_get_car_status", json!({"car_id": -3}), "minimum"),
        (
            "teslamate_get_car",
            json!({"car_id": 1, "vin": RED_ARROW}),
            "vin",
        ),
        ("teslamate_get_cars", json!({"extra": true}), "extra"),
        ("teslamate_vehicle_state", json!({}), "car_id"),
        (
            "teslamate_get_car_updates",
            json!({"car_id": "1"}),
            "integer",
        ),
        (
            "teslamate_get_car_charge",
            json!({"car_id": 1}),
            "charge_id",
        ),
        (
            "teslamate_get_car_drive",
            json!({"car_id": 1, "drive_id": 0}),
            "drive_id",
        ),
        (
            "teslamate_get_car_charges",
            json!({"car_id": 1, "start_date": "last week"}),
            "start_date",
        ),
        (
            "teslamate_get_car_drives",
            json!({"car_id": 1, "show": 500}),
            "maximum",
        ),
        (
            "teslamate_get_car_drives",
            json!({"car_id": 1, "startDate": "2026-03-01"}),
            "startDate",
        ),
    ];
    for (tool, arguments, mentions) in cases {
        let result = harness.call(tool, arguments.clone()).await;
        assert!(is_error(&result), "{tool} {arguments} was accepted");
        let text = text_of(&result);
        assert!(text.contains(mentions), "{tool} {arguments}: {text}");
        assert!(
            text.contains("nothing was sent"),
            "{tool} {arguments}: {text}"
        );
    }
    assert_eq!(
        harness.teslamate_requests(),
        vec![],
        "a refused call reached TeslaMate"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_base_url_names_plugins_toml() {
    let harness = Harness::start_with(Options {
        extra_toml: format!(
            "\n[plugins.selfhosted]\ncomponent = {:?}\n",
            components_dir()
                .join("teslamate.wasm")
                .display()
                .to_string()
        ),
        ..Options::default()
    })
    .await;
    let result = harness.call("selfhosted_get_cars", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(text.contains("base_url"), "{text}");
    assert!(text.contains("plugins.toml"), "{text}");
    assert!(text.contains("nothing was sent"), "{text}");
    assert!(harness.simulator.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_authorization_header_can_be_the_secret() {
    // For a TeslaMateApi behind a proxy with its own scheme (e.g. basic auth), the secret holds
    // the whole header value and `auth = "header"` sends it as is.
    let harness = Harness::start_with(Options {
        teslamate: true,
        teslamate_token: format!("Bearer {}", Vendor::TeslaMate.token()),
        teslamate_settings: "auth = \"header\"".into(),
        ..Options::default()
    })
    .await;
    let result = harness.call("teslamate_get_cars", json!({})).await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let sent = harness.teslamate_requests();
    assert_eq!(
        sent[0].authorization.as_deref(),
        Some("Bearer sim-teslamate-token")
    );
}
