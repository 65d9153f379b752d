//! Signed commands (Tesla's Vehicle Command Protocol) end to end: `carport keys tesla` makes
//! the key, the owner pairs it with a simulated car that requires signing, and the real tesla
//! component signs through the host's key agreement, against the simulated car's side of the
//! protocol.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use carport::simulator::{RecordedRequest, Vendor};
use serde_json::{Value, json};
use tesla_protocol::messages::{Payload, SignatureType};
use tesla_protocol::{Domain, Message, RoutableMessage};

use crate::harness::*;
use crate::tesla::{Auth, fleet_requests, tesla_table};

const KEY_GRANT: &str = "\n[plugins.tesla.key_agreement]\nkey = \"vehicle_key\"\n";

fn key_file(dir: &Path) -> PathBuf {
    dir.join("keys").join("vehicle-key.pem")
}

fn signed_table(harness: &Harness) -> String {
    let table = tesla_table(&harness.simulator, harness.dir.path(), Auth::Token, false);
    format!(
        "{table}{KEY_GRANT}[plugins.tesla.secrets.vehicle_key]\nfile = {:?}\norigins = []\n",
        key_file(harness.dir.path()).display().to_string()
    )
}

/// Runs `carport keys tesla`; returns (exit success, stdout, stderr).
fn carport_keys(config: &Path, extra: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_carport"))
        .args(["keys", "tesla", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .expect("carport runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// carport with a key granted; RED_ARROW requires signed commands and, when `paired`, knows
/// the key.
async fn start_signed(paired: bool) -> Harness {
    let mut harness = Harness::start().await;
    let table = signed_table(&harness);
    restart_with_table(&mut harness, &table).await;
    let (created, public_pem, stderr) = carport_keys(&harness.dir.path().join("plugins.toml"), &[]);
    assert!(created, "{stderr}");
    harness.simulator.require_signed_commands(RED_ARROW);
    if paired {
        harness.simulator.pair_key(RED_ARROW, &public_pem).unwrap();
    }
    harness
        .simulator
        .update_vehicle(RED_ARROW, |car| car.locked = false);
    harness.simulator.clear_requests();
    harness
}

async fn restart_with_table(harness: &mut Harness, table: &str) {
    let config = harness.dir.path().join("plugins.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let base = base.split("\n[plugins.tesla]").next().unwrap().to_string();
    std::fs::write(&config, format!("{base}{table}")).unwrap();
    let (client, recorder, stderr) = connect(&config, &cache_dir()).await;
    harness.client = client;
    harness.recorder = recorder;
    harness.stderr = stderr;
}

fn paths(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect()
}

fn signed_requests(harness: &Harness) -> Vec<RoutableMessage> {
    fleet_requests(harness)
        .iter()
        .filter(|request| request.path.ends_with("/signed_command"))
        .map(|request| {
            let body: Value = serde_json::from_str(&request.body).unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body["routable_message"].as_str().unwrap())
                .unwrap();
            RoutableMessage::decode(bytes.as_slice()).unwrap()
        })
        .collect()
}

fn is_handshake(message: &RoutableMessage) -> bool {
    matches!(message.payload, Some(Payload::SessionInfoRequest(_)))
}

fn counter_of(message: &RoutableMessage) -> u32 {
    match &message.signature_data.as_ref().unwrap().sig_type {
        Some(SignatureType::HmacPersonalizedData(data)) => data.counter,
        other => panic!("not an HMAC-signed command: {other:?}"),
    }
}

async fn call_ok(harness: &Harness, tool: &str, arguments: Value) {
    let result = harness.call(tool, arguments).await;
    assert!(!is_error(&result), "{tool}: {}", text_of(&result));
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_lock_honk_and_charge_limit_round_trip() {
    let harness = start_signed(true).await;
    let honks = harness.simulator.vehicle(RED_ARROW).unwrap().horn_honks;

    call_ok(&harness, "tesla_door_lock", json!({})).await;
    assert!(harness.simulator.vehicle(RED_ARROW).unwrap().locked);
    call_ok(&harness, "tesla_honk_horn", json!({})).await;
    call_ok(&harness, "tesla_set_charge_limit", json!({"percent": 75})).await;
    call_ok(&harness, "tesla_honk_horn", json!({})).await;
    let car = harness.simulator.vehicle(RED_ARROW).unwrap();
    assert_eq!(car.horn_honks, honks + 2);
    assert_eq!(car.charge_limit_soc, 75.0);

    let wire = paths(&fleet_requests(&harness));
    let signed_path = format!("POST /api/1/vehicles/{RED_ARROW}/signed_command");
    assert_eq!(
        wire[0], "POST /api/1/vehicles/fleet_status",
        "the car is checked once, first: {wire:?}"
    );
    assert!(
        wire[1..].iter().all(|path| *path == signed_path),
        "nothing goes REST: {wire:?}"
    );
    // One handshake per domain, then one request per command.
    let messages = signed_requests(&harness);
    assert_eq!(messages.len(), 2 + 2 + 1 + 1, "{wire:?}");
    let handshakes: Vec<Option<Domain>> = messages
        .iter()
        .filter(|message| is_handshake(message))
        .map(|message| message.to_destination.as_ref().unwrap().as_domain())
        .collect();
    assert_eq!(
        handshakes,
        [Some(Domain::VehicleSecurity), Some(Domain::Infotainment)]
    );
    let infotainment_counters: Vec<u32> = messages
        .iter()
        .filter(|message| {
            !is_handshake(message)
                && message.to_destination.as_ref().unwrap().as_domain()
                    == Some(Domain::Infotainment)
        })
        .map(counter_of)
        .collect();
    assert_eq!(infotainment_counters, [1, 2, 3]);
    let result = harness.call("tesla_honk_horn", json!({})).await;
    let answer: Value = serde_json::from_str(&text_of(&result)).unwrap();
    assert_eq!(answer, json!({"response": {"result": true, "reason": ""}}));
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_survive_restarts_and_recover_from_a_new_epoch_and_a_stale_counter() {
    let mut harness = start_signed(true).await;
    call_ok(&harness, "tesla_door_lock", json!({})).await;

    // The car reboots: the fault carries fresh session info, one resend, no new handshake.
    harness.simulator.restart_car(RED_ARROW);
    harness.simulator.clear_requests();
    call_ok(&harness, "tesla_door_unlock", json!({})).await;
    assert!(!harness.simulator.vehicle(RED_ARROW).unwrap().locked);
    let messages = signed_requests(&harness);
    assert_eq!(messages.len(), 2, "{:?}", paths(&fleet_requests(&harness)));
    assert!(!messages.iter().any(is_handshake));
    assert_eq!(
        counter_of(&messages[1]),
        1,
        "a new epoch counts from its start"
    );

    // carport restarts: the session and the car's check come from plugin state.
    let table = signed_table(&harness);
    restart_with_table(&mut harness, &table).await;
    harness.simulator.clear_requests();
    call_ok(&harness, "tesla_door_lock", json!({})).await;
    let wire = paths(&fleet_requests(&harness));
    assert_eq!(wire.len(), 1, "no fleet_status, no handshake: {wire:?}");
    assert_eq!(counter_of(&signed_requests(&harness)[0]), 2);

    // Another holder of the key spent counters: stale counter, resynchronised, resent.
    harness.simulator.spend_counters_elsewhere(RED_ARROW, 100);
    harness.simulator.clear_requests();
    call_ok(&harness, "tesla_door_unlock", json!({})).await;
    let messages = signed_requests(&harness);
    assert_eq!(messages.len(), 2);
    assert!(
        counter_of(&messages[1]) > 100,
        "{}",
        counter_of(&messages[1])
    );
    assert!(!harness.simulator.vehicle(RED_ARROW).unwrap().locked);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_car_that_does_not_require_signing_keeps_rest() {
    let harness = start_signed(true).await;
    harness
        .simulator
        .update_vehicle(BLUE_GHOST, |car| car.asleep = false);
    let honks = harness.simulator.vehicle(BLUE_GHOST).unwrap().horn_honks;
    for _ in 0..2 {
        call_ok(
            &harness,
            "tesla_honk_horn",
            json!({"vehicle_tag": BLUE_GHOST}),
        )
        .await;
    }
    assert_eq!(
        harness.simulator.vehicle(BLUE_GHOST).unwrap().horn_honks,
        honks + 2
    );
    assert_eq!(
        paths(&fleet_requests(&harness)),
        [
            "POST /api/1/vehicles/fleet_status".to_string(),
            format!("POST /api/1/vehicles/{BLUE_GHOST}/command/honk_horn"),
            format!("POST /api/1/vehicles/{BLUE_GHOST}/command/honk_horn"),
        ]
    );
    let status = &fleet_requests(&harness)[0];
    let body: Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(body, json!({"vins": [BLUE_GHOST]}));

    // Navigation stays REST even on a car that requires signing, as in Tesla's proxy.
    harness.simulator.clear_requests();
    call_ok(
        &harness,
        "tesla_navigation_request",
        json!({"address": "SFO Airport"}),
    )
    .await;
    assert_eq!(
        paths(&fleet_requests(&harness)),
        [format!(
            "POST /api/1/vehicles/{RED_ARROW}/command/navigation_request"
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_the_car_does_not_know_is_a_clear_error() {
    let harness = start_signed(false).await;
    let result = harness.call("tesla_door_lock", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(text.contains("not paired"), "{text}");
    assert!(text.contains("https://tesla.com/_ak/"), "{text}");
    assert!(text.contains("carport keys tesla"), "{text}");
    assert!(!harness.simulator.vehicle(RED_ARROW).unwrap().locked);
    let result = harness.call("tesla_honk_horn", json!({})).await;
    assert!(text_of(&result).contains("not paired"));
}

#[tokio::test(flavor = "multi_thread")]
async fn carport_keys_writes_an_owner_only_key_and_prints_the_public_one() {
    let harness = Harness::start().await;
    let config = harness.dir.path().join("keys.toml");
    let component = components_dir().join("tesla.wasm").display().to_string();
    let key = key_file(harness.dir.path());
    std::fs::write(
        &config,
        format!(
            "[plugins.tesla]\ncomponent = {component:?}\nallow = [\"https://fleet-api.prd.na.vn.cloud.tesla.com\"]\n\
             [plugins.tesla.settings]\napp_domain = \"carport.example.org\"\n{KEY_GRANT}\
             [plugins.tesla.secrets.vehicle_key]\nfile = {:?}\n",
            key.display().to_string()
        ),
    )
    .unwrap();
    let (created, stdout, stderr) = carport_keys(&config, &[]);
    assert!(created, "{stderr}");
    assert!(
        stdout.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{stdout}"
    );
    assert!(stdout.contains("-----END PUBLIC KEY-----\n"));
    assert!(
        stdout.ends_with("https://tesla.com/_ak/carport.example.org\n"),
        "{stdout}"
    );
    assert!(stderr.contains(".well-known/appspecific/com.tesla.3p.public-key.pem"));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let private = std::fs::read_to_string(&key).unwrap();
    assert!(private.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert!(!stdout.contains(private.lines().nth(1).unwrap()));

    let (replaced, _, refusal) = carport_keys(&config, &[]);
    assert!(!replaced);
    assert!(refusal.contains("--force"), "{refusal}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), private);
    let (replaced, new_public, _) = carport_keys(&config, &["--force"]);
    assert!(replaced);
    assert_ne!(new_public, stdout);
    assert_ne!(std::fs::read_to_string(&key).unwrap(), private);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_private_key_never_reaches_the_plugin() {
    // The hostile plugin holds a key agreement and tries to read the key behind it.
    let mut options = Options {
        hostile_keys: "key_agreement = { key = \"vehicle_key\" }".into(),
        ..Options::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    options.extra_toml = format!(
        "[plugins.hostile.secrets.vehicle_key]\nfile = {:?}\n",
        key.display().to_string()
    );
    let harness = Harness::start_with(options).await;
    let (created, _, stderr) = carport_keys(&harness.dir.path().join("plugins.toml"), &[]);
    assert!(!created, "only plugins with a key agreement get keys");
    assert!(stderr.contains("[plugins.tesla]"), "{stderr}");
    let pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIDRO5bRmp88e6xK29QMx2y5exYNO9fS+/P2MvlXCUo1woAoGCCqGSM49\nAwEHoUQDQgAEx6H0cThIaqRymXFJSHjTOxok45Vx90im4WxZVbPYd9OmqqDpVRZk\ndK9dMsQQ9DmiI0E3rRuwhf1OiBPJWPEdlw==\n-----END EC PRIVATE KEY-----\n";
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, pem).unwrap();

    let result = harness.call("hostile_reveal_vehicle_key", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(text.contains("may not read secret `vehicle_key`"), "{text}");
    // What the import hands out is the public point and a 16-byte session key, nothing else.
    let scalar_bytes = "34, 4e, e5, b4";
    assert!(text.contains("public key [04, c7, a1"), "{text}");
    assert!(!text.contains(scalar_bytes), "{text}");
    assert!(!text.contains("MHcCAQEE"), "{text}");
    assert!(!harness.stderr.lock().unwrap().contains("MHcCAQEE"));

    // A key marked readable is refused before anything loads.
    let config = harness.dir.path().join("plugins.toml");
    let readable = std::fs::read_to_string(&config).unwrap().replace(
        "[plugins.hostile.secrets.vehicle_key]\n",
        "[plugins.hostile.secrets.vehicle_key]\nreadable = true\n",
    );
    std::fs::write(&config, readable).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_carport"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[plugins.hostile.key_agreement]") && stderr.contains("readable = true"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tariff_is_accepted_as_tesla_documents_it_and_bare() {
    let harness = crate::tesla::start(Auth::Token, false).await;
    let tariff = json!({"name": "Sim tariff", "utility": "Sim Power", "seasons": {}});
    for given in [json!({"tariff_content_v2": tariff}), tariff.clone()] {
        harness.simulator.clear_requests();
        call_ok(
            &harness,
            "tesla_energy_time_of_use_settings",
            json!({"tou_settings": given}),
        )
        .await;
        let request = fleet_requests(&harness).pop().unwrap();
        assert_eq!(request.vendor, Vendor::Fleet);
        let body: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body, json!({"tou_settings": {"tariff_content_v2": tariff}}));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleeping_car_is_woken_and_a_refusal_inside_a_200_is_an_error() {
    let harness = start_signed(true).await;
    harness.simulator.update_vehicle(RED_ARROW, |car| {
        car.asleep = true;
        car.charging_state = "Disconnected".into();
    });
    call_ok(&harness, "tesla_door_lock", json!({})).await;
    assert!(harness.simulator.vehicle(RED_ARROW).unwrap().locked);
    let wire = paths(&fleet_requests(&harness));
    assert!(
        wire.contains(&format!("POST /api/1/vehicles/{RED_ARROW}/wake_up")),
        "{wire:?}"
    );

    let result = harness.call("tesla_charge_start", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(
        text.contains("the car refused charge_start: not_connected"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_car_that_refuses_the_handshake_falls_back_to_rest() {
    let harness = start_signed(true).await;
    harness
        .simulator
        .update_vehicle(BLUE_GHOST, |car| car.asleep = false);
    // fleet_status claims the car requires signing; the car answers the handshake with 422.
    harness.simulator.script(carport::simulator::Script {
        vendor: Vendor::Fleet,
        method: Some("POST".into()),
        path_prefix: "/api/1/vehicles/fleet_status".into(),
        status: 200,
        headers: Vec::new(),
        body: json!({"response": {"vehicle_info": {BLUE_GHOST: {"vehicle_command_protocol_required": true}}}}),
        times: 1,
    });
    for _ in 0..2 {
        call_ok(
            &harness,
            "tesla_honk_horn",
            json!({"vehicle_tag": BLUE_GHOST}),
        )
        .await;
    }
    let honk = format!("POST /api/1/vehicles/{BLUE_GHOST}/command/honk_horn");
    assert_eq!(
        paths(&fleet_requests(&harness)),
        [
            "POST /api/1/vehicles/fleet_status".to_string(),
            format!("POST /api/1/vehicles/{BLUE_GHOST}/signed_command"),
            honk.clone(),
            honk,
        ]
    );
}
