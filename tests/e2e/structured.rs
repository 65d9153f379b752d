//! Every read of the Tessie and TeslaMate plugins answers with structured content that matches
//! its tool's output schema (the Tesla plugin's tools are checked in `compact.rs`, in both
//! modes).

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn tessie_and_teslamate_results_match_their_output_schemas() {
    let harness = Harness::start_with(Options {
        teslamate: true,
        ..Options::default()
    })
    .await;
    let tools = harness.client.list_all_tools().await.unwrap();
    let cases = [
        ("tessie_list_vehicles", json!({})),
        ("tessie_tesla_state", json!({})),
        ("tessie_tesla_state", json!({"vin": BLUE_GHOST})),
        ("tessie_tesla_command", json!({"command": "lock"})),
        ("teslamate_get_cars", json!({})),
        ("teslamate_get_car", json!({"car_id": 2})),
        ("teslamate_get_car_status", json!({"car_id": 1})),
        ("teslamate_get_car_charges", json!({"car_id": 1})),
        (
            "teslamate_get_car_charge",
            json!({"car_id": 1, "charge_id": 3}),
        ),
        ("teslamate_get_car_drives", json!({"car_id": 1})),
        (
            "teslamate_get_car_drive",
            json!({"car_id": 2, "drive_id": 4}),
        ),
        ("teslamate_get_car_battery_health", json!({"car_id": 1})),
        ("teslamate_get_car_updates", json!({"car_id": 1})),
        ("teslamate_vehicle_state", json!({"car_id": 1})),
        ("teslamate_vehicle_state", json!({"car_id": 2})),
    ];
    let mut checked: Vec<&str> = Vec::new();
    for (name, arguments) in cases {
        let tool = tools
            .iter()
            .find(|tool| tool.name == name)
            .unwrap_or_else(|| panic!("{name} is not served"));
        let result = harness.call(name, arguments).await;
        assert!(!is_error(&result), "{name}: {}", text_of(&result));
        assert_structured_matches(tool, &result);
        checked.push(name);
    }
    for tool in &tools {
        if tool.name.starts_with("tessie_") || tool.name.starts_with("teslamate_") {
            assert!(
                checked.contains(&tool.name.as_ref()),
                "{} is not checked",
                tool.name
            );
        }
    }
}
