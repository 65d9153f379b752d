//! The Smartcar plugin against the simulated Smartcar API v3: every tool's request on the wire
//! compared with Smartcar's documented request, the application token (one token request for
//! many calls, shared by concurrent calls, one refresh on expiry or 401), asynchronous commands
//! followed once, every error class, unit normalisation and arguments refused before sending.

use carport::simulator::{RecordedRequest, Script, Vendor};
use serde_json::{Value, json};

use crate::harness::*;

const ALEX: &str = "sc-user-alex";
const SAM: &str = "sc-user-sam";
const VW: &str = "sc-veh-vw-id4";
const FORD: &str = "sc-veh-ford-f150";
const HYUNDAI: &str = "sc-veh-hyundai-ioniq5";

async fn start() -> Harness {
    Harness::start_with(Options {
        smartcar: true,
        ..Options::default()
    })
    .await
}

/// Requests to the Vehicle and Management APIs: the token endpoint and command-execution
/// reads left out.
fn api_requests(harness: &Harness) -> Vec<RecordedRequest> {
    harness
        .smartcar_requests()
        .into_iter()
        .filter(|request| request.path != "/oauth2/token")
        .filter(|request| !request.path.contains("/command-executions/"))
        .collect()
}

fn token_requests(harness: &Harness) -> u32 {
    harness.simulator.state.smartcar.token_requests()
}

/// What Smartcar's v3 reference documents for a call.
struct Expected {
    method: &'static str,
    path: String,
    query: Vec<(&'static str, &'static str)>,
    user: Option<&'static str>,
    body: Option<Value>,
}

fn expect(method: &'static str, path: impl Into<String>) -> Expected {
    Expected {
        method,
        path: path.into(),
        query: vec![],
        user: None,
        body: None,
    }
}

impl Expected {
    fn query(mut self, query: &[(&'static str, &'static str)]) -> Expected {
        self.query = query.to_vec();
        self
    }
    fn user(mut self, user: &'static str) -> Expected {
        self.user = Some(user);
        self
    }
    fn body(mut self, body: Value) -> Expected {
        self.body = Some(body);
        self
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tool_sends_smartcars_documented_request() {
    let harness = start().await;
    let tools = harness.client.list_all_tools().await.unwrap();
    let smartcar_tools: Vec<_> = tools
        .iter()
        .filter(|tool| tool.name.starts_with("smartcar_"))
        .collect();
    let listed = serde_json::to_string(&smartcar_tools).unwrap();
    eprintln!(
        "smartcar: {} tools, {} bytes of tools/list",
        smartcar_tools.len(),
        listed.len()
    );
    assert_eq!(smartcar_tools.len(), 17);
    assert!(
        listed.len() < 32 * 1024,
        "tools/list grew to {}",
        listed.len()
    );

    let v = |path: &str| format!("/v3{path}");
    let m = |path: &str| format!("/management/v3{path}");
    // Deletions last: they remove what the other calls read.
    let table: Vec<(&str, Value, Expected)> = vec![
        (
            "list_connections",
            json!({"userId": ALEX, "vehicleMode": "live", "pageNumber": 1, "pageSize": 5}),
            expect("GET", v("/connections")).query(&[
                ("filter[userId]", ALEX),
                ("filter[vehicle.mode]", "live"),
                ("page[number]", "1"),
                ("page[size]", "5"),
            ]),
        ),
        (
            "list_connections",
            json!({"vehicleId": FORD}),
            expect("GET", v("/connections")).query(&[("filter[vehicleId]", FORD)]),
        ),
        (
            "get_connection",
            json!({"connectionId": "sc-conn-0001"}),
            expect("GET", v("/connections/sc-conn-0001")),
        ),
        (
            "get_vehicle",
            json!({"vehicle_id": FORD}),
            expect("GET", v(&format!("/vehicles/{FORD}"))),
        ),
        (
            "get_signals",
            json!({"vehicle_id": VW, "user_id": ALEX, "pageNumber": 2, "pageSize": 3}),
            expect("GET", v(&format!("/vehicles/{VW}/signals")))
                .query(&[("page", "2"), ("pageSize", "3")])
                .user(ALEX),
        ),
        (
            "get_signal",
            json!({"vehicle_id": VW, "user_id": ALEX, "signal_code": "tractionbattery.stateofcharge"}),
            expect(
                "GET",
                v(&format!(
                    "/vehicles/{VW}/signals/tractionbattery-stateofcharge"
                )),
            )
            .user(ALEX),
        ),
        (
            "vehicle_state",
            json!({}),
            expect("GET", v(&format!("/vehicles/{VW}/signals")))
                .query(&[("pageSize", "100")])
                .user(ALEX),
        ),
        (
            "lock_vehicle",
            json!({}),
            expect("POST", v(&format!("/vehicles/{VW}/commands/security/lock"))).user(ALEX),
        ),
        (
            "unlock_vehicle",
            json!({"vehicle_id": FORD, "user_id": ALEX}),
            expect(
                "POST",
                v(&format!("/vehicles/{FORD}/commands/security/unlock")),
            )
            .user(ALEX),
        ),
        (
            "start_charge",
            json!({}),
            expect("POST", v(&format!("/vehicles/{VW}/commands/charge/start"))).user(ALEX),
        ),
        (
            "stop_charge",
            json!({}),
            expect("POST", v(&format!("/vehicles/{VW}/commands/charge/stop"))).user(ALEX),
        ),
        (
            "set_charge_limit",
            json!({"percent": 85}),
            expect(
                "POST",
                v(&format!("/vehicles/{VW}/commands/charge/set-limit")),
            )
            .user(ALEX)
            .body(json!({"data": {"attributes": {"percent": 85.0}}})),
        ),
        (
            "set_navigation_destination",
            json!({"latitude": 52.5163, "longitude": 13.3777}),
            expect(
                "POST",
                v(&format!(
                    "/vehicles/{VW}/commands/navigation/set-destination"
                )),
            )
            .user(ALEX)
            .body(json!({"data": {"attributes": {"latitude": 52.5163, "longitude": 13.3777}}})),
        ),
        (
            "list_applications",
            json!({}),
            expect("GET", m("/applications")),
        ),
        (
            "get_application",
            json!({"applicationId": "app-7f3c2a"}),
            expect("GET", m("/applications/app-7f3c2a")),
        ),
        (
            "list_application_secrets",
            json!({"applicationId": "app-7f3c2a"}),
            expect("GET", m("/applications/app-7f3c2a/secrets")),
        ),
        (
            "delete_connection",
            json!({"connectionId": "sc-conn-0002"}),
            expect("DELETE", v("/connections/sc-conn-0002")),
        ),
        (
            "delete_user",
            json!({"userId": SAM}),
            expect("DELETE", v(&format!("/users/{SAM}"))),
        ),
    ];
    let mut covered: Vec<&str> = vec![];
    for (tool, arguments, expected) in table {
        harness.simulator.clear_requests();
        let result = harness.call(&format!("smartcar_{tool}"), arguments).await;
        assert!(!is_error(&result), "{tool}: {}", text_of(&result));
        let sent = api_requests(&harness);
        assert_eq!(sent.len(), 1, "{tool} sent {sent:?}");
        let request = &sent[0];
        assert_eq!(request.method, expected.method, "{tool}");
        assert_eq!(request.path, expected.path, "{tool}");
        let query: Vec<(String, String)> = expected
            .query
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        assert_eq!(request.query_pairs(), query, "{tool}");
        assert_eq!(request.header("sc-user-id"), expected.user, "{tool}");
        let authorization = request.authorization.as_deref().unwrap_or_default();
        assert!(
            authorization.starts_with("Bearer sim-smartcar-access-"),
            "{tool}: {authorization}"
        );
        match expected.body {
            Some(body) => {
                assert_eq!(request.header("content-type"), Some("application/json"));
                let sent: Value = serde_json::from_str(&request.body).unwrap();
                assert_eq!(sent, body, "{tool}");
            }
            None => assert_eq!(request.body, "", "{tool}"),
        }
        covered.push(tool);
    }
    for tool in &smartcar_tools {
        let name = tool.name.trim_start_matches("smartcar_");
        assert!(covered.contains(&name), "{name} has no wire check");
    }
    // The deletions took effect.
    let connections = structured(&harness.call("smartcar_list_connections", json!({})).await);
    let left: Vec<&str> = connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|connection| connection["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec!["sc-conn-0001"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_token_request_serves_many_calls_and_concurrent_calls_share_it() {
    let harness = start().await;
    assert_eq!(
        token_requests(&harness),
        0,
        "no token before the first call"
    );
    let (first, second) = tokio::join!(
        harness.call("smartcar_vehicle_state", json!({})),
        harness.call("smartcar_get_vehicle", json!({"vehicle_id": FORD})),
    );
    assert!(!is_error(&first) && !is_error(&second));
    assert_eq!(
        token_requests(&harness),
        1,
        "concurrent calls share one token request"
    );
    for _ in 0..5 {
        let result = harness.call("smartcar_list_connections", json!({})).await;
        assert!(!is_error(&result), "{}", text_of(&result));
    }
    assert_eq!(token_requests(&harness), 1);
    let token_calls: Vec<RecordedRequest> = harness
        .smartcar_requests()
        .into_iter()
        .filter(|request| request.path == "/oauth2/token")
        .collect();
    assert_eq!(token_calls.len(), 1);
    let form = token_calls[0].query_pairs_of_body();
    assert!(form.contains(&("grant_type".into(), "client_credentials".into())));
    assert!(form.contains(&(
        "client_id".into(),
        carport::simulator::smartcar::CLIENT_ID.into()
    )));
    assert!(
        token_calls[0]
            .header("content-type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
}

trait FormBody {
    fn query_pairs_of_body(&self) -> Vec<(String, String)>;
}

impl FormBody for RecordedRequest {
    fn query_pairs_of_body(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_refreshes_the_token_once_and_resends_once() {
    let harness = start().await;
    assert!(!is_error(
        &harness.call("smartcar_vehicle_state", json!({})).await
    ));
    assert_eq!(token_requests(&harness), 1);

    harness.simulator.state.smartcar.expire_tokens();
    harness.simulator.clear_requests();
    let result = harness.call("smartcar_vehicle_state", json!({})).await;
    assert!(!is_error(&result), "{}", text_of(&result));
    assert_eq!(token_requests(&harness), 2, "exactly one refresh");
    let sent = api_requests(&harness);
    assert_eq!(sent.len(), 2, "the rejected request and one resend");
    assert_ne!(sent[0].authorization, sent[1].authorization);
    assert!(!is_error(
        &harness.call("smartcar_vehicle_state", json!({})).await
    ));
    assert_eq!(token_requests(&harness), 2);

    // A token refused even when fresh: one refresh, one resend, then an error naming the fix.
    harness.simulator.clear_requests();
    harness.simulator.script(Script {
        vendor: Vendor::Smartcar,
        method: Some("GET".into()),
        path_prefix: format!("/v3/vehicles/{VW}/signals"),
        status: 401,
        headers: vec![],
        body: json!({"errors": [{"status": "401", "type": "AUTHENTICATION", "code": "UNAUTHORIZED",
                                 "detail": "The access token is invalid."}]}),
        times: 2,
    });
    let refused = harness.call("smartcar_vehicle_state", json!({})).await;
    assert!(is_error(&refused));
    let text = text_of(&refused);
    assert!(
        text.contains("client_secret") && text.contains("oauth.application"),
        "{text}"
    );
    assert_eq!(token_requests(&harness), 3);
    assert_eq!(api_requests(&harness).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_about_to_expire_is_replaced_once() {
    let harness = start().await;
    let account = &harness.simulator.state.smartcar;
    // 60 s is the host's safety margin: the token counts as expired as soon as it arrives.
    account.set_token_lifetime(60);
    assert!(!is_error(
        &harness.call("smartcar_vehicle_state", json!({})).await
    ));
    assert_eq!(account.token_requests(), 1);
    account.set_token_lifetime(3600);
    harness.simulator.clear_requests();
    assert!(!is_error(
        &harness.call("smartcar_vehicle_state", json!({})).await
    ));
    assert_eq!(
        account.token_requests(),
        2,
        "the expiring token was replaced once"
    );
    assert_eq!(api_requests(&harness).len(), 1, "and nothing was rejected");
    assert!(!is_error(
        &harness.call("smartcar_vehicle_state", json!({})).await
    ));
    assert_eq!(account.token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_asynchronous_command_reports_progress_and_is_sent_once() {
    let harness = start().await;
    let result = harness
        .call_with_progress("smartcar_start_charge", json!({}))
        .await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let answer = structured(&result);
    assert_eq!(answer["status"], "SUCCESS");
    assert!(
        answer["execution_id"]
            .as_str()
            .unwrap()
            .starts_with("exec_")
    );
    let posts: Vec<RecordedRequest> = harness
        .smartcar_requests()
        .into_iter()
        .filter(|request| request.method == "POST" && request.path.contains("/commands/"))
        .collect();
    assert_eq!(posts.len(), 1, "the command is sent once");
    let polls = harness
        .smartcar_requests()
        .into_iter()
        .filter(|request| request.path.contains("/command-executions/"))
        .count();
    assert!(polls >= 1, "the execution was followed");
    let progress = harness.recorder.progress.lock().unwrap().clone();
    assert!(progress.len() >= 2, "{progress:?}");
    assert!(
        progress[0].message.as_deref().unwrap().contains("accepted"),
        "{progress:?}"
    );
    assert!(
        progress
            .windows(2)
            .all(|pair| pair[0].progress <= pair[1].progress)
    );
    let account = &harness.simulator.state.smartcar;
    assert!(account.car(VW).unwrap().charging);
    let carried_out: Vec<_> = account
        .commands
        .lock()
        .unwrap()
        .iter()
        .filter(|(car, command)| car == VW && command == "charge-start")
        .cloned()
        .collect();
    assert_eq!(carried_out.len(), 1, "the car carried it out once");

    // A synchronous command answers at once: no execution to follow.
    harness.simulator.clear_requests();
    let locked = harness.call("smartcar_unlock_vehicle", json!({})).await;
    assert_eq!(structured(&locked)["status"], "SUCCESS");
    assert!(!account.car(VW).unwrap().locked);
    assert_eq!(harness.smartcar_requests().len(), 1);
}

fn scripted_error(status: u16, kind: &str, code: &str, detail: &str) -> Value {
    json!({"errors": [{"status": status.to_string(), "type": kind, "code": code,
                       "title": "Error", "detail": detail, "resolution": {"type": "RETRY_LATER"}}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn smartcar_errors_name_the_fix() {
    let harness = start().await;
    let signals = format!("/v3/vehicles/{VW}/signals");

    // Rate limit: when to come back, and no retry.
    harness.simulator.script(Script {
        vendor: Vendor::Smartcar,
        method: None,
        path_prefix: signals.clone(),
        status: 429,
        headers: vec![("retry-after".into(), "120".into())],
        body: scripted_error(
            429,
            "RATE_LIMIT",
            "VEHICLE",
            "You have reached the throttling rate limit for this vehicle.",
        ),
        times: 1,
    });
    harness.simulator.clear_requests();
    let limited = harness.call("smartcar_vehicle_state", json!({})).await;
    assert!(is_error(&limited));
    let text = text_of(&limited);
    assert!(
        text.contains("RATE_LIMIT:VEHICLE") && text.contains("120 s"),
        "{text}"
    );
    assert!(text.contains("does not retry"), "{text}");
    assert_eq!(
        api_requests(&harness).len(),
        1,
        "a rate limit is not retried"
    );

    // A permission the user did not grant, from the connection's permissions.
    let refused = harness
        .call("smartcar_start_charge", json!({"vehicle_id": FORD}))
        .await;
    let text = text_of(&refused);
    assert!(
        is_error(&refused) && text.contains("`control_charge`"),
        "{text}"
    );
    assert!(text.contains("Smartcar Connect"), "{text}");

    // A scripted permission error on a signal names the signal's permission.
    harness.simulator.script(Script {
        vendor: Vendor::Smartcar,
        method: None,
        path_prefix: format!("{signals}/closure-islocked"),
        status: 403,
        headers: vec![],
        body: scripted_error(403, "PERMISSION", "PERMISSION", "Permission not granted."),
        times: 1,
    });
    let refused = harness
        .call(
            "smartcar_get_signal",
            json!({"signal_code": "closure.lock"}),
        )
        .await;
    let text = text_of(&refused);
    assert!(
        is_error(&refused) && text.contains("`read_security`"),
        "{text}"
    );

    // A sleeping car says so.
    let asleep = harness
        .call(
            "smartcar_lock_vehicle",
            json!({"vehicle_id": HYUNDAI, "user_id": SAM}),
        )
        .await;
    let text = text_of(&asleep);
    assert!(is_error(&asleep) && text.contains("asleep"), "{text}");

    // An unreachable car says so.
    harness.simulator.script(Script {
        vendor: Vendor::Smartcar,
        method: Some("POST".into()),
        path_prefix: format!("/v3/vehicles/{VW}/commands/"),
        status: 409,
        headers: vec![],
        body: scripted_error(
            409,
            "VEHICLE_STATE",
            "UNREACHABLE",
            "The vehicle could not be reached.",
        ),
        times: 1,
    });
    let unreachable = harness.call("smartcar_lock_vehicle", json!({})).await;
    let text = text_of(&unreachable);
    assert!(
        is_error(&unreachable) && text.contains("unreachable"),
        "{text}"
    );

    // An unknown connection points to list_connections.
    let missing = harness
        .call(
            "smartcar_get_connection",
            json!({"connectionId": "sc-conn-9999"}),
        )
        .await;
    let text = text_of(&missing);
    assert!(
        is_error(&missing) && text.contains("list_connections"),
        "{text}"
    );

    // A signal the car does not have.
    let incapable = harness
        .call(
            "smartcar_get_signal",
            json!({"signal_code": "vehicleidentification-trim"}),
        )
        .await;
    let text = text_of(&incapable);
    assert!(
        is_error(&incapable) && text.contains("does not support"),
        "{text}"
    );

    // A user who does not own the car.
    let foreign = harness
        .call("smartcar_vehicle_state", json!({"vehicle_id": HYUNDAI}))
        .await;
    let text = text_of(&foreign);
    assert!(
        is_error(&foreign) && text.contains("connected by that user"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_are_normalised_to_carports_units() {
    let harness = start().await;
    // The Ford reports miles, °F and psi.
    let ford = structured(
        &harness
            .call("smartcar_vehicle_state", json!({"vehicle_id": FORD}))
            .await,
    );
    let near = |value: &Value, expected: f64| {
        let value = value.as_f64().unwrap_or(f64::NAN);
        assert!((value - expected).abs() <= 0.2, "{value} is not {expected}");
    };
    assert_eq!(ford["display_name"], "FORD F-150 2021");
    assert_eq!(ford["vin"], "1FTFW1E50MFA00202");
    near(&ford["odometer_km"], 61220.4);
    near(&ford["fuel_range_km"], 611.6);
    near(&ford["fuel_level"], 63.0);
    near(&ford["oil_life"], 42.0);
    near(&ford["climate"]["inside_temp"], 22.0);
    near(&ford["tire_pressures_kpa"]["front_left"], 241.3);
    near(&ford["tire_pressures_kpa"]["rear_right"], 234.4);
    assert_eq!(ford["doors"]["front_left"], true);
    assert_eq!(ford["locked"], false);
    assert!(ford["battery_level"].is_null());
    assert!(ford.get("fuel_level").is_some());

    let vw = structured(&harness.call("smartcar_vehicle_state", json!({})).await);
    assert_eq!(vw["display_name"], "Blue ID.4");
    assert_eq!(vw["state"], "online");
    near(&vw["battery_level"], 68.0);
    near(&vw["battery_range_km"], 291.0);
    assert_eq!(vw["charging"]["state"], "Stopped");
    near(&vw["charging"]["charge_limit"], 80.0);
    near(&vw["location"]["latitude"], 52.520008);
    assert!(vw.get("fuel_level").is_none(), "an EV has no fuel fields");
    assert!(vw["last_updated"].as_str().unwrap().ends_with('Z'));

    let ioniq = structured(
        &harness
            .call(
                "smartcar_vehicle_state",
                json!({"vehicle_id": HYUNDAI, "user_id": SAM}),
            )
            .await,
    );
    assert_eq!(ioniq["state"], "asleep");

    let odometer = structured(
        &harness
            .call(
                "smartcar_get_signal",
                json!({"vehicle_id": FORD, "signal_code": "odometer.distance"}),
            )
            .await,
    );
    assert_eq!(odometer["body"]["unit"], "miles");
    assert_eq!(odometer["normalized"]["unit"], "km");
    near(&odometer["normalized"]["value"], 61220.4);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_refused_with_nothing_sent() {
    let harness = start().await;
    for (tool, arguments, says) in [
        ("set_charge_limit", json!({"percent": 30}), "percent"),
        ("set_charge_limit", json!({}), "percent"),
        (
            "set_navigation_destination",
            json!({"latitude": 91, "longitude": 0}),
            "latitude",
        ),
        (
            "get_signal",
            json!({"signal_code": "tractionbattery.stateofcharg"}),
            "tractionbattery.stateofcharge",
        ),
        (
            "get_signal",
            json!({"signal_code": "charge.session.kwhaded"}),
            "charge.session.kwhadded",
        ),
        (
            "list_connections",
            json!({"vehicleMode": "test"}),
            "vehicleMode",
        ),
        ("get_connection", json!({}), "connectionId"),
        ("lock_vehicle", json!({"vin": "X"}), "vin"),
        ("delete_user", json!({"userId": "a/../b"}), "userId"),
    ] {
        let result = harness.call(&format!("smartcar_{tool}"), arguments).await;
        assert!(is_error(&result), "{tool} was accepted");
        let text = text_of(&result);
        assert!(text.contains(says), "{tool}: {text}");
    }
    assert!(
        harness.smartcar_requests().is_empty(),
        "nothing reached Smartcar, not even the token endpoint"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_values_are_never_returned_or_logged() {
    let harness = start().await;
    let result = harness
        .call(
            "smartcar_list_application_secrets",
            json!({"applicationId": "app-7f3c2a"}),
        )
        .await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let answer = structured(&result);
    assert_eq!(answer["secrets"].as_array().unwrap().len(), 2);
    assert_eq!(answer["secrets"][0]["attributes"]["name"], "ci");
    let everything = format!("{}{answer}", text_of(&result));
    assert!(!everything.contains("DO-NOT-LEAK"), "{everything}");
    let log = harness.stderr.lock().unwrap().clone();
    assert!(!log.contains("DO-NOT-LEAK"));
    assert!(
        !log.contains(Vendor::Smartcar.token()),
        "the client secret leaked"
    );
}
