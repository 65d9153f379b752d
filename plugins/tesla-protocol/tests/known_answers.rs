//! Known answers from Tesla's `pkg/protocol/protocol.md` (the published test keys: never pair
//! them with a car), then round trips between the client and the car sides.

use p256::SecretKey;
use tesla_protocol::action::{self, Fields, infotainment};
use tesla_protocol::keys::agreement::{public_bytes, session_key};
use tesla_protocol::messages::{Payload, RoutableMessage, SessionInfo, SubDestination};
use tesla_protocol::metadata::{self, Metadata};
use tesla_protocol::session::{SessionState, carried_session_info, session_info_request};
use tesla_protocol::vehicle::{VehicleDomain, Verdict};
use tesla_protocol::{Domain, Fault, Message, SessionKey};

const CLIENT_SCALAR: &str = "2538CDC29A97C19C1E99A637D6CF4F8C970C118B56EDE1E6323E6D162C4B30DB";
const CLIENT_PUBLIC: &str = "04b2b6bc68c2da0665ce656815594996c62394edd8bea905fe781a754fe6a845a714330902f225e9269d466e05b349981fda9d85cc23c6fb444aa73b629105dc6e";
const VEHICLE_SCALAR: &str = "344EE5B466A7CF1EEB12B6F50331DB2E5EC5834EF5F4BEFCFD8CBE55C2528D70";
const VEHICLE_PUBLIC: &str = "04c7a1f47138486aa4729971494878d33b1a24e39571f748a6e16c5955b3d877d3a6aaa0e955166474af5d32c410f439a2234137ad1bb085fd4e8813c958f11d97";
const VEHICLE_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIDRO5bRmp88e6xK29QMx2y5exYNO9fS+/P2MvlXCUo1woAoGCCqGSM49
AwEHoUQDQgAEx6H0cThIaqRymXFJSHjTOxok45Vx90im4WxZVbPYd9OmqqDpVRZk
dK9dMsQQ9DmiI0E3rRuwhf1OiBPJWPEdlw==
-----END EC PRIVATE KEY-----";
const K: &str = "1b2fce19967b79db696f909cff89ea9a";
const SESSION_INFO_KEY: &str = "fceb679ee7bca756fcd441bf238bf2f338629b41d9eb9c67be1b32c9672ce300";
const VIN: &str = "5YJ30123456789ABC";
const HANDSHAKE_UUID: &str = "1588d5a30eabc6f8fc9a951b11f6fd11";
const SESSION_INFO: &str = "0806124104c7a1f47138486aa4729971494878d33b1a24e39571f748a6e16c5955b3d877d3a6aaa0e955166474af5d32c410f439a2234137ad1bb085fd4e8813c958f11d971a104c463f9cc0d3d26906e982ed224adde6255a0a0000";
const SESSION_INFO_TAG: &str = "996c1fe38331be138f8039c194b14db2198846ed7d8251e6749284d7b32ea002";
const EPOCH: &str = "4c463f9cc0d3d26906e982ed224adde6";

fn secret(scalar: &str) -> SecretKey {
    SecretKey::from_slice(&hex::decode(scalar).unwrap()).unwrap()
}

fn k() -> SessionKey {
    SessionKey::from_slice(&hex::decode(K).unwrap()).unwrap()
}

#[test]
fn public_keys_encode_uncompressed() {
    assert_eq!(
        hex::encode(public_bytes(&secret(CLIENT_SCALAR))),
        CLIENT_PUBLIC
    );
    assert_eq!(
        hex::encode(public_bytes(&secret(VEHICLE_SCALAR))),
        VEHICLE_PUBLIC
    );
}

#[test]
fn both_sides_derive_the_published_session_key() {
    let vehicle_public = hex::decode(VEHICLE_PUBLIC).unwrap();
    let client_public = hex::decode(CLIENT_PUBLIC).unwrap();
    assert_eq!(
        session_key(&secret(CLIENT_SCALAR), &vehicle_public),
        Some(k())
    );
    assert_eq!(
        session_key(&secret(VEHICLE_SCALAR), &client_public),
        Some(k())
    );
    let from_pem = tesla_protocol::keys::agreement::secret_from_pem(VEHICLE_PEM).unwrap();
    assert_eq!(session_key(&from_pem, &client_public), Some(k()));
    assert_eq!(
        session_key(&secret(CLIENT_SCALAR), b"\x04not a point"),
        None
    );
}

#[test]
fn session_info_key_and_tag_match_the_published_ones() {
    assert_eq!(hex::encode(k().session_info_key()), SESSION_INFO_KEY);
    let challenge = hex::decode(HANDSHAKE_UUID).unwrap();
    assert_eq!(
        hex::encode(metadata::session_info_metadata(VIN, &challenge)),
        "000106021135594a333031323334353637383941424306101588d5a30eabc6f8fc9a951b11f6fd11ff"
    );
    let info = hex::decode(SESSION_INFO).unwrap();
    assert_eq!(
        hex::encode(k().session_info_tag(VIN, &challenge, &info)),
        SESSION_INFO_TAG
    );
    let decoded = SessionInfo::decode(info.as_slice()).unwrap();
    assert_eq!(decoded.counter, 6);
    assert_eq!(decoded.clock_time, 2650);
    assert_eq!(hex::encode(&decoded.epoch), EPOCH);
    assert_eq!(hex::encode(&decoded.public_key), VEHICLE_PUBLIC);
}

#[test]
fn metadata_serialises_as_published() {
    let epoch = hex::decode(EPOCH).unwrap();
    let serialised = Metadata::new()
        .add(
            metadata::TAG_SIGNATURE_TYPE,
            &[metadata::SIGNATURE_TYPE_AES_GCM_PERSONALIZED],
        )
        .add(metadata::TAG_DOMAIN, &[Domain::Infotainment as u8])
        .add(metadata::TAG_PERSONALIZATION, VIN.as_bytes())
        .add(metadata::TAG_EPOCH, &epoch)
        .add_u32(metadata::TAG_EXPIRES_AT, 2655)
        .add_u32(metadata::TAG_COUNTER, 7)
        .finish();
    assert_eq!(
        hex::encode(serialised),
        "000105010103021135594a333031323334353637383941424303104c463f9cc0d3d26906e982ed224adde6040400000a5f050400000007ff"
    );
    assert_eq!(
        hex::encode(Metadata::new().add(2, b"abc").add_u32(5, 100).finish()),
        "0203616263050400000064ff"
    );
}

#[test]
fn actions_encode_as_tesla_encodes_them() {
    // protocol.md: `vehicleAction { hvacAutoAction { power_on: true } }`.
    let climate_on = action::vehicle_action(infotainment::HVAC_AUTO, Fields::new().bool(1, true));
    assert_eq!(hex::encode(climate_on), "120452020801");
    // protocol.md's debug line carries `InformationRequest { GET_WHITELIST_INFO }`; the RKE
    // unlock (0) must still be written, as a oneof member.
    assert_eq!(hex::encode(action::rke_action(0)), "1000");
}

#[test]
fn a_published_routable_message_decodes() {
    let wire = hex::decode("320208023a1212100a7962c10d38b61dd2a7722780a4f0969a031005514f57616bcc81a8ce0f9d7b48322952040a020805").unwrap();
    let message = RoutableMessage::decode(wire.as_slice()).unwrap();
    assert_eq!(
        message.to_destination.unwrap().as_domain(),
        Some(Domain::VehicleSecurity)
    );
    assert_eq!(
        message.from_destination.unwrap().sub_destination,
        Some(SubDestination::RoutingAddress(
            hex::decode("0a7962c10d38b61dd2a7722780a4f096").unwrap()
        ))
    );
    assert_eq!(
        message.payload,
        Some(Payload::ProtobufMessageAsBytes(vec![
            0x0a, 0x02, 0x08, 0x05
        ]))
    );
    assert_eq!(
        hex::encode(message.uuid),
        "05514f57616bcc81a8ce0f9d7b483229"
    );
}

/// The client's session after a handshake with `car`.
fn handshake(
    car: &mut VehicleDomain,
    client: &SecretKey,
    uuid: &[u8],
    now_ms: u64,
) -> SessionState {
    let client_public = public_bytes(client);
    let request = session_info_request(car.domain, &client_public, b"route", uuid);
    let Verdict::Answer(reply) =
        car.receive(&request, std::slice::from_ref(&client_public), now_ms)
    else {
        panic!("a handshake is answered");
    };
    let key = session_key(client, &car.public_key()).unwrap();
    SessionState::from_reply(&reply, &key, VIN, uuid, now_ms, None).unwrap()
}

fn send(
    car: &mut VehicleDomain,
    client: &SecretKey,
    session: &mut SessionState,
    now_ms: u64,
) -> (RoutableMessage, Verdict) {
    let client_public = public_bytes(client);
    let key = session_key(client, &session.car_public_key).unwrap();
    let payload = action::vehicle_action(infotainment::HONK_HORN, Fields::new());
    let message = session.sign(
        &key,
        &client_public,
        car.domain,
        VIN,
        payload,
        b"route",
        b"uuid-2",
        now_ms,
    );
    let verdict = car.receive(&message, &[client_public], now_ms);
    (message, verdict)
}

#[test]
fn the_car_accepts_a_signed_command_once() {
    let client = secret(CLIENT_SCALAR);
    let mut car = VehicleDomain::new(
        Domain::Infotainment,
        VIN,
        secret(VEHICLE_SCALAR),
        [7; 16],
        1_000_000,
    );
    let mut session = handshake(&mut car, &client, b"challenge-1", 1_005_000);
    assert_eq!(session.clock_time, 5);
    let (message, verdict) = send(&mut car, &client, &mut session, 1_006_000);
    assert!(matches!(verdict, Verdict::Execute(_)));
    // The same message again is a replay.
    let Verdict::Answer(replayed) = car.receive(&message, &[public_bytes(&client)], 1_006_000)
    else {
        panic!("a replay is refused");
    };
    assert_eq!(replayed.fault(), Some(Fault::INVALID_TOKEN_OR_COUNTER));
    assert!(carried_session_info(&replayed).is_some());
}

#[test]
fn the_car_refuses_what_a_real_car_refuses() {
    let client = secret(CLIENT_SCALAR);
    let stranger = secret(VEHICLE_SCALAR);
    let mut car = VehicleDomain::new(
        Domain::Infotainment,
        VIN,
        secret(VEHICLE_SCALAR),
        [7; 16],
        0,
    );
    let mut session = handshake(&mut car, &client, b"c", 0);

    // Expired: the car's clock is past expires_at.
    let key = session_key(&client, &session.car_public_key).unwrap();
    let late = session.sign(
        &key,
        &public_bytes(&client),
        Domain::Infotainment,
        VIN,
        vec![],
        b"r",
        b"u",
        0,
    );
    let Verdict::Answer(answer) = car.receive(&late, &[public_bytes(&client)], 60_000) else {
        panic!()
    };
    assert_eq!(answer.fault(), Some(Fault::TIME_EXPIRED));

    // A tag made with another key.
    let wrong = SessionKey([9; 16]);
    let forged = session.sign(
        &wrong,
        &public_bytes(&client),
        Domain::Infotainment,
        VIN,
        vec![],
        b"r",
        b"u",
        0,
    );
    let Verdict::Answer(answer) = car.receive(&forged, &[public_bytes(&client)], 0) else {
        panic!()
    };
    assert_eq!(answer.fault(), Some(Fault::INVALID_SIGNATURE));

    // A key the car does not know: handshake says so, commands get UNKNOWN_KEY_ID.
    let request = session_info_request(Domain::Infotainment, &public_bytes(&stranger), b"r", b"u");
    let Verdict::Answer(answer) = car.receive(&request, &[public_bytes(&client)], 0) else {
        panic!()
    };
    assert_eq!(
        tesla_protocol::session::announced_public_key(&answer),
        Err(tesla_protocol::session::Refusal::KeyNotPaired)
    );
    let (_, verdict) = send(&mut car, &client, &mut session, 0);
    assert!(matches!(verdict, Verdict::Execute(_)));
    let key = session_key(&client, &session.car_public_key).unwrap();
    let unpaired = session.sign(
        &key,
        &public_bytes(&client),
        Domain::Infotainment,
        VIN,
        vec![],
        b"r",
        b"u",
        0,
    );
    let Verdict::Answer(answer) = car.receive(&unpaired, &[], 0) else {
        panic!()
    };
    assert_eq!(answer.fault(), Some(Fault::UNKNOWN_KEY_ID));

    // Another domain.
    let mut vcsec = VehicleDomain::new(
        Domain::VehicleSecurity,
        VIN,
        secret(VEHICLE_SCALAR),
        [8; 16],
        0,
    );
    let elsewhere = session.sign(
        &key,
        &public_bytes(&client),
        Domain::Infotainment,
        VIN,
        vec![],
        b"r",
        b"u",
        0,
    );
    let Verdict::Answer(answer) = vcsec.receive(&elsewhere, &[public_bytes(&client)], 0) else {
        panic!()
    };
    assert_eq!(answer.fault(), Some(Fault::INVALID_DOMAINS));
}

#[test]
fn a_restart_is_recovered_from_the_fault_s_session_info() {
    let client = secret(CLIENT_SCALAR);
    let mut car = VehicleDomain::new(
        Domain::VehicleSecurity,
        VIN,
        secret(VEHICLE_SCALAR),
        [1; 16],
        0,
    );
    let mut session = handshake(&mut car, &client, b"c", 0);
    for _ in 0..3 {
        assert!(matches!(
            send(&mut car, &client, &mut session, 1000).1,
            Verdict::Execute(_)
        ));
    }
    car.restart([2; 16], 2000);
    let (message, verdict) = send(&mut car, &client, &mut session, 3000);
    let Verdict::Answer(answer) = verdict else {
        panic!()
    };
    assert_eq!(answer.fault(), Some(Fault::INCORRECT_EPOCH));
    let key = session_key(&client, &session.car_public_key).unwrap();
    let resynced =
        SessionState::from_reply(&answer, &key, VIN, &message.uuid, 3000, Some(&session)).unwrap();
    assert_eq!(resynced.epoch, vec![2; 16]);
    assert_eq!(resynced.counter, 0, "a new epoch starts the counter again");
    session = resynced;
    assert!(matches!(
        send(&mut car, &client, &mut session, 3000).1,
        Verdict::Execute(_)
    ));
}

#[test]
fn fields_read_back() {
    let bytes = Fields::new()
        .bool(1, true)
        .int32(2, -1)
        .sint32(3, -1)
        .float(4, 21.5)
        .double(5, 65.0)
        .string(6, "pin")
        .uint64(7, 42)
        .into_bytes();
    let fields = action::read_fields(&bytes).unwrap();
    assert_eq!(action::field(&fields, 1).and_then(|v| v.as_u64()), Some(1));
    assert_eq!(
        action::field(&fields, 2).and_then(|v| v.as_u64()),
        Some(u64::MAX)
    );
    assert_eq!(action::field(&fields, 3).and_then(|v| v.as_u64()), Some(1));
    assert_eq!(
        action::field(&fields, 4).and_then(|v| v.as_f32()),
        Some(21.5)
    );
    assert_eq!(
        action::field(&fields, 5).and_then(|v| v.as_f64()),
        Some(65.0)
    );
    assert_eq!(
        action::field(&fields, 6).and_then(|v| v.as_bytes()),
        Some(&b"pin"[..])
    );
    assert_eq!(action::field(&fields, 7).and_then(|v| v.as_u64()), Some(42));
    assert_eq!(action::read_fields(&[0x0a, 0x05, 0x01]), None);
}
