//! The DIMO plugin against the simulated DIMO services: each tool's request on the wire as
//! DIMO documents it, the token chain (one signed challenge and one exchange per vehicle for
//! many calls, renewed after expiry), the license key kept by the host, the ownership guard and
//! fleet mode, GraphQL errors quoted, batches with progress, and bad input refused before
//! anything is sent.

use carport::simulator::{RecordedRequest, Vendor};
use rmcp::model::GetPromptRequestParams;
use serde_json::{Value, json};

use crate::harness::*;
use crate::sign_in::{click_through, free_port};

/// The demo user's Tesla (all privileges but raw data), their Ford (data and location, no
/// commands), someone else's BMW shared with the license, and a Toyota never shared.
const TESLA: u32 = 21957;
const FORD: u32 = 30311;
const BMW: u32 = 40102;
const TOYOTA: u32 = 50007;

/// The demo user's vehicles: `owner_address` set, as `carport demo` does.
async fn start(settings: &str) -> Harness {
    let owner = carport::simulator::sign_in::DIMO_WALLET_ADDRESS;
    Harness::start_with(Options {
        dimo: true,
        dimo_settings: format!("owner_address = {owner:?}\n{settings}"),
        ..Options::default()
    })
    .await
}

fn requests(harness: &Harness, vendor: Vendor) -> Vec<RecordedRequest> {
    harness.vendor_requests(vendor)
}

fn body(request: &RecordedRequest) -> Value {
    serde_json::from_str(&request.body).unwrap_or(Value::Null)
}

fn last(harness: &Harness, vendor: Vendor) -> RecordedRequest {
    requests(harness, vendor)
        .pop()
        .unwrap_or_else(|| panic!("no request to {vendor:?}"))
}

async fn ok(harness: &Harness, tool: &str, arguments: Value) -> Value {
    let result = harness.call(tool, arguments).await;
    assert!(!is_error(&result), "{tool}: {}", text_of(&result));
    result.structured_content.clone().unwrap_or(Value::Null)
}

async fn refused(harness: &Harness, tool: &str, arguments: Value) -> String {
    let result = harness.call(tool, arguments).await;
    assert!(
        is_error(&result),
        "{tool} should fail: {}",
        text_of(&result)
    );
    text_of(&result)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tool_sends_dimos_documented_request() {
    let harness = start("").await;
    let account = &harness.simulator.state.dimo;
    let tools = harness.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools
        .iter()
        .filter_map(|tool| tool.name.strip_prefix("dimo_"))
        .collect();
    for seed_tool in [
        "check_vehicle_access_status",
        "generate_vehicle_data_sharing_url",
        "identity_query",
        "identity_introspect",
        "telemetry_query",
        "batch_telemetry_query",
        "telemetry_introspect",
        "vehicle_data_summary",
        "batch_vehicle_data_summary",
        "lock_doors",
        "unlock_doors",
        "start_charge",
        "stop_charge",
        "vin_decode",
        "search_vehicles",
        "attestation_create_vin",
        "attestation_create_odometer",
        "attestation_create_vehicle_health",
        "attestation_create_vehicle_position",
        "mint_vehicle_with_vin",
        "mint_vehicle_with_device_definition",
        "vehicle_state",
        "open_trunk",
        "open_frunk",
    ] {
        assert!(
            names.contains(&seed_tool),
            "dimo_{seed_tool} missing: {names:?}"
        );
    }

    // Identity: a JSON GraphQL request without credentials.
    let status = ok(&harness, "dimo_check_vehicle_access_status", json!({})).await;
    assert_eq!(status["total_count"], 2, "{status}");
    let identity = last(&harness, Vendor::DimoIdentity);
    assert_eq!(
        (identity.method.as_str(), identity.path.as_str()),
        ("POST", "/query")
    );
    assert_eq!(identity.authorization, None);
    assert_eq!(identity.header("content-type"), Some("application/json"));
    assert_eq!(
        body(&identity)["variables"]["clientId"],
        account.license.client_id
    );
    assert_eq!(body(&identity)["variables"]["owner"], account.user.wallet);

    // The developer token: challenge (form body), signature the simulator recovers to the
    // license's signer, submission.
    ok(
        &harness,
        "dimo_vin_decode",
        json!({"vin": "5YJ3E1EA7KF000001"}),
    )
    .await;
    let auth = requests(&harness, Vendor::DimoAuth);
    assert_eq!(auth.len(), 2, "{auth:?}");
    assert_eq!(auth[0].path, "/auth/web3/generate_challenge");
    assert_eq!(
        auth[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = |request: &RecordedRequest| -> Vec<(String, String)> {
        form_urlencoded::parse(request.body.as_bytes())
            .into_owned()
            .collect()
    };
    let field = |fields: &[(String, String)], name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let challenge_fields = form(&auth[0]);
    for (name, value) in [
        ("client_id", account.license.client_id.as_str()),
        ("domain", account.license.redirect_uri.as_str()),
        ("scope", "openid email"),
        ("response_type", "code"),
        ("address", account.license.client_id.as_str()),
    ] {
        assert_eq!(
            field(&challenge_fields, name).as_deref(),
            Some(value),
            "{name}"
        );
    }
    let submit_fields = form(&auth[1]);
    assert_eq!(auth[1].path, "/auth/web3/submit_challenge");
    assert_eq!(
        field(&submit_fields, "grant_type").as_deref(),
        Some("authorization_code")
    );
    let signature = field(&submit_fields, "signature").unwrap();
    assert!(
        signature.starts_with("0x") && signature.len() == 132,
        "{signature}"
    );
    let decode = last(&harness, Vendor::DimoDeviceDefinitions);
    assert_eq!(decode.path, "/device-definitions/decode-vin");
    assert_eq!(
        body(&decode),
        json!({"countryCode": "USA", "vin": "5YJ3E1EA7KF000001"})
    );
    assert!(
        decode
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer ey")
    );

    // Telemetry: the vehicle token from the exchange, with the granted privileges.
    ok(
        &harness,
        "dimo_telemetry_query",
        json!({"tokenId": TESLA,
        "query": "query($tokenId: Int!) { signalsLatest(tokenId: $tokenId) { speed { value } } }"}),
    )
    .await;
    let exchange = last(&harness, Vendor::DimoTokenExchange);
    assert_eq!(exchange.path, "/v1/tokens/exchange");
    assert_eq!(
        body(&exchange),
        json!({"nftContractAddress": account.vehicle_contract, "privileges": [1, 2, 3, 4, 5, 6], "tokenId": TESLA})
    );
    let telemetry = last(&harness, Vendor::DimoTelemetry);
    assert_eq!(body(&telemetry)["variables"], json!({"tokenId": TESLA}));
    assert!(
        telemetry
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer ey")
    );

    // Device commands: POST with an empty JSON body.
    for (tool, path) in [
        ("lock_doors", "doors/lock"),
        ("unlock_doors", "doors/unlock"),
        ("start_charge", "charge/start"),
        ("stop_charge", "charge/stop"),
        ("open_trunk", "trunk/open"),
        ("open_frunk", "frunk/open"),
    ] {
        let answer = ok(&harness, &format!("dimo_{tool}"), json!({"tokenId": TESLA})).await;
        assert_eq!(answer["status"], "queued");
        let command = last(&harness, Vendor::DimoDevices);
        assert_eq!(command.method, "POST");
        assert_eq!(command.path, format!("/v1/vehicle/{TESLA}/commands/{path}"));
        assert_eq!(body(&command), json!({}));
    }
    assert_eq!(account.commands().len(), 6);

    // Attestations: the four v2 routes with their bodies.
    for (tool, arguments, path, expected) in [
        (
            "attestation_create_vin",
            json!({"tokenId": TESLA}),
            "vin",
            json!({}),
        ),
        (
            "attestation_create_odometer",
            json!({"tokenId": TESLA, "timestamp": "2026-11-01T00:00:00Z"}),
            "odometer-statement",
            json!({"timestamp": "2026-11-01T00:00:00Z"}),
        ),
        (
            "attestation_create_vehicle_health",
            json!({"tokenId": TESLA, "startTime": "2026-11-01T00:00:00Z", "endTime": "2026-11-20T00:00:00Z"}),
            "vehicle-health",
            json!({"startTime": "2026-11-01T00:00:00Z", "endTime": "2026-11-20T00:00:00Z"}),
        ),
        (
            "attestation_create_vehicle_position",
            json!({"tokenId": TESLA, "timestamp": "2026-11-01T00:00:00Z"}),
            "vehicle-position",
            json!({"timestamp": "2026-11-01T00:00:00Z"}),
        ),
    ] {
        ok(&harness, &format!("dimo_{tool}"), arguments).await;
        let request = last(&harness, Vendor::DimoAttestation);
        assert_eq!(request.path, format!("/v2/attestation/{path}/{TESLA}"));
        assert_eq!(body(&request), expected, "{tool}");
    }

    // Search: DIMO's slug parameters, no credentials.
    let found = ok(
        &harness,
        "dimo_search_vehicles",
        json!({"query": "model", "make": "Tesla", "model": "Model 3", "year": 2023}),
    )
    .await;
    let search = last(&harness, Vendor::DimoDeviceDefinitions);
    assert_eq!(
        (search.method.as_str(), search.path.as_str()),
        ("GET", "/device-definitions/search")
    );
    assert_eq!(
        search.query_pairs(),
        vec![
            ("query".to_string(), "model".to_string()),
            ("makeSlug".to_string(), "tesla".to_string()),
            ("modelSlug".to_string(), "model-3".to_string()),
            ("year".to_string(), "2023".to_string()),
        ]
    );
    assert_eq!(search.authorization, None);
    assert_eq!(
        found["deviceDefinitions"][0]["id"], "tesla_model_3_2023",
        "{found}"
    );

    let link = ok(
        &harness,
        "dimo_generate_vehicle_data_sharing_url",
        json!({}),
    )
    .await;
    let url = link["url"].as_str().unwrap();
    assert!(
        url.contains("entryState=VEHICLE_MANAGER") && url.contains("permissionTemplateId=1"),
        "{url}"
    );

    let minting = refused(
        &harness,
        "dimo_mint_vehicle_with_vin",
        json!({"vin": "5YJ3E1EA7KF000001"}),
    )
    .await;
    assert!(minting.contains("ERC-4337"), "{minting}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_challenge_and_one_exchange_per_vehicle_until_they_expire() {
    let harness = start("").await;
    let account = &harness.simulator.state.dimo;
    for _ in 0..5 {
        ok(&harness, "dimo_vehicle_state", json!({"tokenId": TESLA})).await;
        ok(
            &harness,
            "dimo_vehicle_data_summary",
            json!({"tokenId": FORD}),
        )
        .await;
    }
    ok(
        &harness,
        "dimo_vin_decode",
        json!({"vin": "1FTFW1E80PFA00003"}),
    )
    .await;
    assert_eq!(account.developer_tokens(), 1);
    assert_eq!(account.exchanges(), 2);

    // Every token DIMO issued stops working: the next call signs in and exchanges again.
    account.expire_tokens();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let state = ok(&harness, "dimo_vehicle_state", json!({"tokenId": TESLA})).await;
    assert_eq!(state["battery_level"], 78.0, "{state}");
    assert_eq!(account.developer_tokens(), 2);
    assert_eq!(account.exchanges(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_license_key_stays_with_the_host() {
    let harness = start("").await;
    let account = &harness.simulator.state.dimo;
    ok(
        &harness,
        "dimo_vin_decode",
        json!({"vin": "5YJ3E1EA7KF000001"}),
    )
    .await;
    // The simulator accepted the signature only because it recovered to the license's signer.
    assert_eq!(account.developer_tokens(), 1);
    let submit = &requests(&harness, Vendor::DimoAuth)[1];
    assert!(submit.body.contains("signature=0x"), "{submit:?}");
    // …and the key itself never left the host: not in any request, not in the plugin's state.
    let key = &account.license.signer_key;
    for request in harness.simulator.requests() {
        assert!(!request.body.contains(key.as_str()), "{request:?}");
        assert!(
            request
                .headers
                .iter()
                .all(|(_, value)| !value.contains(key.as_str()))
        );
    }
    for entry in walk(&harness.dir.path().join("data")) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains(key.as_str()),
            "{} holds the key",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_owners_vehicles_unless_in_fleet_mode() {
    let harness = start("").await;
    let text = refused(&harness, "dimo_vehicle_state", json!({"tokenId": BMW})).await;
    assert!(
        text.contains(&format!("vehicle {BMW} is not owned by the signed-in user")),
        "{text}"
    );
    assert!(text.contains("fleet_mode"), "{text}");
    assert!(requests(&harness, Vendor::DimoTelemetry).is_empty());
    assert!(requests(&harness, Vendor::DimoTokenExchange).is_empty());

    let fleet = start("fleet_mode = \"true\"").await;
    let state = ok(&fleet, "dimo_vehicle_state", json!({"tokenId": BMW})).await;
    assert_eq!(state["location"]["speed"], 62.0, "{state}");
    let status = ok(&fleet, "dimo_check_vehicle_access_status", json!({})).await;
    assert_eq!(status["total_count"], 3, "{status}");
    assert_eq!(status["scope"], "fleet");
}

#[tokio::test(flavor = "multi_thread")]
async fn dimos_errors_are_quoted_and_bad_input_sends_nothing() {
    let harness = start("").await;
    let text = refused(
        &harness,
        "dimo_identity_query",
        json!({"query": "{ vehicle(tokenId: 999) { owner } }"}),
    )
    .await;
    assert!(text.contains("No vehicle with token id 999."), "{text}");

    // A field the schema lacks: DIMO answers 422, quoted.
    let text = refused(
        &harness,
        "dimo_identity_query",
        json!({"query": "{ vehicle(tokenId: 21957) { colour } }"}),
    )
    .await;
    assert!(text.contains("colour"), "{text}");

    // A privilege the license lacks for this vehicle (the Ford shares no VIN credential).
    let text = refused(
        &harness,
        "dimo_telemetry_query",
        json!({"tokenId": FORD,
        "query": "query($tokenId: Int!) { vinVCLatest(tokenId: $tokenId) { vin } }"}),
    )
    .await;
    assert!(text.contains("privilege:GetVINCredential"), "{text}");

    // Commands without the commands privilege.
    let text = refused(&harness, "dimo_lock_doors", json!({"tokenId": FORD})).await;
    assert!(
        text.contains("Token does not contain required privileges"),
        "{text}"
    );
    assert!(text.contains("generate_vehicle_data_sharing_url"), "{text}");

    harness.simulator.clear_requests();
    for (tool, arguments) in [
        (
            "dimo_telemetry_query",
            json!({"tokenId": TESLA, "query": "{ signalsLatest(tokenId: 1) { speed "}),
        ),
        ("dimo_identity_query", json!({"query": "mutation { burn }"})),
        ("dimo_vehicle_state", json!({"tokenId": -4})),
        ("dimo_vehicle_state", json!({"tokenId": "21957"})),
        ("dimo_vin_decode", json!({"vin": "too-short"})),
        ("dimo_batch_vehicle_data_summary", json!({"tokenIds": []})),
    ] {
        refused(&harness, tool, arguments).await;
    }
    assert!(
        harness.simulator.requests().is_empty(),
        "{:?}",
        harness.simulator.requests()
    );

    // An unknown vehicle: refused after Identity says so, before any token or telemetry.
    let text = refused(&harness, "dimo_vehicle_state", json!({"tokenId": 999})).await;
    assert!(text.contains("No vehicle with token id 999."), "{text}");
    assert!(requests(&harness, Vendor::DimoTokenExchange).is_empty());
    assert!(requests(&harness, Vendor::DimoTelemetry).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_report_each_vehicle_with_progress() {
    let harness = start("fleet_mode = \"true\"").await;
    let result = harness
        .call_with_progress(
            "dimo_batch_vehicle_data_summary",
            json!({"tokenIds": [TESLA, FORD, TOYOTA]}),
        )
        .await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let answer = structured(&result);
    assert_eq!(
        answer["summary"],
        json!({"total": 3, "successful": 2, "failed": 1}),
        "{answer}"
    );
    assert_eq!(answer["errors"][0]["tokenId"], TOYOTA);
    assert!(
        answer["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("has not shared"),
        "{answer}"
    );
    let progress = harness.recorder.progress.lock().unwrap().len();
    assert!(progress >= 3, "{progress} progress notifications");
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_change_what_the_car_reports() {
    let harness = start("").await;
    let before = ok(&harness, "dimo_vehicle_state", json!({"tokenId": TESLA})).await;
    assert_eq!(before["locked"], false, "{before}");
    ok(&harness, "dimo_lock_doors", json!({"tokenId": TESLA})).await;
    ok(&harness, "dimo_start_charge", json!({"tokenId": TESLA})).await;
    let after = ok(&harness, "dimo_vehicle_state", json!({"tokenId": TESLA})).await;
    assert_eq!(after["locked"], true, "{after}");
    assert_eq!(after["charging"]["state"], "Charging", "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_are_introspected_once_and_prompts_served() {
    let harness = start("").await;
    let first = harness.call("dimo_telemetry_introspect", json!({})).await;
    let schema = text_of(&first);
    assert!(
        schema.contains("signalsLatest(tokenId: Int!, filter: SignalFilter): SignalCollection"),
        "{schema}"
    );
    assert!(
        schema.contains("powertrainTractionBatteryStateOfChargeCurrent: SignalFloat"),
        "{schema}"
    );
    let again = harness.call("dimo_telemetry_introspect", json!({})).await;
    assert_eq!(text_of(&again), schema);
    assert_eq!(requests(&harness, Vendor::DimoTelemetry).len(), 1);

    let prompts = harness.client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|prompt| prompt.name.as_str()).collect();
    assert!(
        names.contains(&"dimo_vehicle_genius") && names.contains(&"dimo_fleet_genius"),
        "{names:?}"
    );
    let prompt = harness
        .client
        .get_prompt(
            GetPromptRequestParams::new("dimo_vehicle_genius")
                .with_arguments(json!({"tokenId": "21957"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let text = serde_json::to_string(&prompt.messages).unwrap();
    assert!(
        text.contains("vehicle 21957") && text.contains("dimo_vehicle_state"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_signs_in_from_the_assistant_in_a_real_browser() {
    // Nobody signed in and no owner_address: the vehicles stay out of reach.
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let harness = Harness::start_with(Options {
        dimo: true,
        dimo_redirect: redirect.clone(),
        ..Options::default()
    })
    .await;
    harness.simulator.state.sign_in.register_redirect(&redirect);
    let status = ok(&harness, "dimo_check_vehicle_access_status", json!({})).await;
    assert_eq!(status["scope"], "signed_out", "{status}");
    assert_eq!(status["vehicles"], json!([]), "{status}");
    let text = refused(&harness, "dimo_vehicle_state", json!({"tokenId": TESLA})).await;
    assert!(text.contains("init_oauth"), "{text}");

    let started = ok(&harness, "dimo_init_oauth", json!({})).await;
    let link = started["url"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&harness.simulator.url(Vendor::DimoLogin)),
        "{link}"
    );
    let (heading, message) = click_through(&link, "allow").await;
    assert_eq!(heading, "Signed in", "{message}");

    let status = ok(&harness, "dimo_check_vehicle_access_status", json!({})).await;
    assert_eq!(status["scope"], "user", "{status}");
    assert_eq!(
        status["user_wallet"],
        carport::simulator::sign_in::DIMO_WALLET_ADDRESS
    );
    assert_eq!(status["total_count"], 2, "{status}");
    let state = ok(&harness, "dimo_vehicle_state", json!({"tokenId": TESLA})).await;
    assert_eq!(state["battery_level"], 78.0, "{state}");
    // The user's token went to the plugin's secret file, not to the plugin.
    let token = std::fs::read_to_string(harness.dir.path().join("dimo-user-token")).unwrap();
    assert_eq!(token, carport::simulator::sign_in::DIMO_USER_TOKEN);
    assert!(!serde_json::to_string(&status).unwrap().contains(&token));
}
