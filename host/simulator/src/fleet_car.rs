//! The car's side of Tesla's Vehicle Command Protocol, behind the Fleet API's
//! `signed_command`: each car that requires signed commands has a vehicle-security and an
//! infotainment domain, each with its own key, epoch, clock and counters, and a list of paired
//! client keys. Messages are checked as a real car checks them (`tesla_protocol::vehicle`);
//! an authentic command is translated into the REST command of the same effect and applied to
//! the simulated car, so both routes change the car alike.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::SecretKey;
use serde_json::{Value, json};
use tesla_protocol::action::{field, infotainment as car, only_message, read_fields, vcsec};
use tesla_protocol::vehicle::{VehicleDomain, Verdict};
use tesla_protocol::{Domain, Message, RoutableMessage, car_server_answer};

use super::SimVehicle;
use super::vehicle::now_ms;

/// One car that speaks the protocol.
pub struct ProtocolCar {
    /// Client public keys (uncompressed points) the owner paired with the car.
    pub paired: Vec<Vec<u8>>,
    security: VehicleDomain,
    infotainment: VehicleDomain,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the simulator needs randomness");
    bytes
}

fn domain_key() -> SecretKey {
    loop {
        if let Ok(key) = SecretKey::from_slice(&random_bytes::<32>()) {
            return key;
        }
    }
}

impl ProtocolCar {
    pub fn new(vin: &str) -> ProtocolCar {
        let now = now_ms();
        ProtocolCar {
            paired: Vec::new(),
            security: VehicleDomain::new(
                Domain::VehicleSecurity,
                vin,
                domain_key(),
                random_bytes(),
                now,
            ),
            infotainment: VehicleDomain::new(
                Domain::Infotainment,
                vin,
                domain_key(),
                random_bytes(),
                now,
            ),
        }
    }

    /// Both domains reboot: new epochs, clocks and counters.
    pub fn restart(&mut self) {
        let now = now_ms();
        self.security.restart(random_bytes(), now);
        self.infotainment.restart(random_bytes(), now);
    }

    /// Another client with the same key spent `count` counters in each domain.
    pub fn spend_counters_elsewhere(&mut self, count: u32) {
        self.security.skip_counters(count);
        self.infotainment.skip_counters(count);
    }

    /// Answers one `signed_command` body: Err is an HTTP 400 message.
    pub fn handle(&mut self, body: &Value, vehicle: &mut SimVehicle) -> Result<Value, String> {
        let encoded = body["routable_message"]
            .as_str()
            .ok_or("missing routable_message")?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| "routable_message is not base64")?;
        let request =
            RoutableMessage::decode(bytes.as_slice()).map_err(|_| "invalid routable_message")?;
        let domain = match request
            .to_destination
            .as_ref()
            .and_then(|to| to.as_domain())
        {
            Some(Domain::VehicleSecurity) => &mut self.security,
            _ => &mut self.infotainment,
        };
        let answer = match domain.receive(&request, &self.paired, now_ms()) {
            Verdict::Answer(answer) => *answer,
            Verdict::Execute(payload) => {
                let result = match domain.domain {
                    Domain::VehicleSecurity => vcsec_answer(&payload, vehicle),
                    _ => infotainment_answer(&payload, vehicle),
                };
                domain.reply(&request, result)
            }
        };
        Ok(json!({ "response": BASE64.encode(answer.encode_to_vec()) }))
    }
}

/// A VCSEC command; VCSEC answers success with an empty message.
fn vcsec_answer(payload: &[u8], vehicle: &mut SimVehicle) -> Vec<u8> {
    let Some(fields) = read_fields(payload) else {
        return Vec::new();
    };
    if let Some(action) = field(&fields, vcsec::RKE_ACTION).and_then(|value| value.as_u64()) {
        match action as i32 {
            vcsec::RKE_LOCK => vehicle.locked = true,
            vcsec::RKE_UNLOCK => vehicle.locked = false,
            _ => {}
        }
    }
    if let Some(closures) = field(&fields, vcsec::CLOSURE_MOVE_REQUEST)
        .and_then(|value| value.as_bytes())
        .and_then(read_fields)
    {
        let trunk = |which| json!({ "which_trunk": which });
        if field(&closures, vcsec::FRONT_TRUNK).is_some() {
            let _ = super::fleet::apply(vehicle, "actuate_trunk", &trunk("front"));
        }
        if field(&closures, vcsec::REAR_TRUNK).is_some() {
            let _ = super::fleet::apply(vehicle, "actuate_trunk", &trunk("rear"));
        }
    }
    Vec::new()
}

/// An infotainment action, answered with a `CarServer.Response`.
fn infotainment_answer(payload: &[u8], vehicle: &mut SimVehicle) -> Vec<u8> {
    let Some((2, action)) = only_message(payload) else {
        return car_server_answer(Some("invalid action"));
    };
    let Some((kind, body)) = only_message(&action) else {
        return car_server_answer(Some("invalid action"));
    };
    let fields = read_fields(&body).unwrap_or_default();
    let flag = |tag| field(&fields, tag).and_then(|value| value.as_u64()) == Some(1);
    let integer = |tag| {
        field(&fields, tag)
            .and_then(|value| value.as_u64())
            .unwrap_or(0) as i64
    };
    let float = |tag| {
        field(&fields, tag)
            .and_then(|value| value.as_f32())
            .unwrap_or(0.0) as f64
    };
    let (name, arguments) = match kind {
        car::HONK_HORN => ("honk_horn", json!({})),
        car::FLASH_LIGHTS => ("flash_lights", json!({})),
        car::HVAC_AUTO if flag(1) => ("auto_conditioning_start", json!({})),
        car::HVAC_AUTO => ("auto_conditioning_stop", json!({})),
        car::HVAC_TEMPERATURE_ADJUSTMENT => (
            "set_temps",
            json!({"driver_temp": float(6), "passenger_temp": float(7)}),
        ),
        car::HVAC_SET_PRECONDITIONING_MAX => ("set_preconditioning_max", json!({"on": flag(1)})),
        car::SET_SENTRY_MODE => ("set_sentry_mode", json!({"on": flag(1)})),
        car::CHARGE_PORT_DOOR_OPEN => ("charge_port_door_open", json!({})),
        car::CHARGE_PORT_DOOR_CLOSE => ("charge_port_door_close", json!({})),
        car::CHARGING_SET_LIMIT => ("set_charge_limit", json!({"percent": integer(1)})),
        car::CHARGING_START_STOP => match fields.first().map(|(tag, _)| *tag) {
            Some(car::CHARGING_START) => ("charge_start", json!({})),
            Some(car::CHARGING_STOP) => ("charge_stop", json!({})),
            Some(car::CHARGING_START_STANDARD) => ("charge_standard", json!({})),
            Some(car::CHARGING_START_MAX_RANGE) => ("charge_max_range", json!({})),
            _ => return car_server_answer(Some("invalid charging action")),
        },
        car::SET_VEHICLE_NAME => {
            let name = field(&fields, 1)
                .and_then(|value| value.as_bytes())
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            ("set_vehicle_name", json!({"vehicle_name": name}))
        }
        // Every other action the catalogue signs is accepted without a simulated effect.
        _ => ("", json!({})),
    };
    match super::fleet::apply(vehicle, name, &arguments) {
        Ok(()) => car_server_answer(None),
        Err(reason) => car_server_answer(Some(&reason)),
    }
}
