//! Which REST commands become which protocol actions, as Tesla's `vehicle-command` proxy maps
//! them (`pkg/proxy/command.go`, `pkg/vehicle/*.go`); commands absent here stay REST even on
//! cars that require signing (navigation, boombox, …: see WIRE.md).

use serde_json::{Map, Value};
use tesla_protocol::Domain;
use tesla_protocol::action::{
    Fields, closure_move, infotainment as car, rke_action, vcsec, vehicle_action,
};

type Arguments = Map<String, Value>;

fn flag(arguments: &Arguments, name: &str) -> bool {
    arguments
        .get(name)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn integer(arguments: &Arguments, name: &str) -> i64 {
    arguments.get(name).and_then(Value::as_i64).unwrap_or(0)
}

fn number(arguments: &Arguments, name: &str) -> f64 {
    arguments.get(name).and_then(Value::as_f64).unwrap_or(0.0)
}

fn text<'a>(arguments: &'a Arguments, name: &str) -> &'a str {
    arguments.get(name).and_then(Value::as_str).unwrap_or("")
}

fn infotainment(field: u32, body: Fields) -> Option<(Domain, Vec<u8>)> {
    Some((Domain::Infotainment, vehicle_action(field, body)))
}

fn empty(field: u32) -> Option<(Domain, Vec<u8>)> {
    infotainment(field, Fields::new())
}

/// A `Void` member of a oneof.
fn void(field: u32) -> Fields {
    Fields::new().message(field, Fields::new())
}

/// The domain and payload of a command, from its full-mode arguments (already checked against
/// the tool's schema); None when the command stays REST.
pub fn action_of(name: &str, arguments: &Arguments) -> Option<(Domain, Vec<u8>)> {
    let on = || flag(arguments, "on");
    match name {
        "door_lock" => Some((Domain::VehicleSecurity, rke_action(vcsec::RKE_LOCK))),
        "door_unlock" => Some((Domain::VehicleSecurity, rke_action(vcsec::RKE_UNLOCK))),
        "remote_start_drive" => {
            Some((Domain::VehicleSecurity, rke_action(vcsec::RKE_REMOTE_DRIVE)))
        }
        "actuate_trunk" => {
            let closure = match text(arguments, "which_trunk") {
                "front" => vcsec::FRONT_TRUNK,
                _ => vcsec::REAR_TRUNK,
            };
            Some((Domain::VehicleSecurity, closure_move(closure)))
        }
        "honk_horn" => empty(car::HONK_HORN),
        "flash_lights" => empty(car::FLASH_LIGHTS),
        "auto_conditioning_start" => infotainment(car::HVAC_AUTO, Fields::new().bool(1, true)),
        "auto_conditioning_stop" => infotainment(car::HVAC_AUTO, Fields::new().bool(1, false)),
        "set_temps" => infotainment(
            car::HVAC_TEMPERATURE_ADJUSTMENT,
            Fields::new()
                // Tesla's client sends the level as TEMP_MAX beside the two temperatures.
                .message(5, void(3))
                .float(6, number(arguments, "driver_temp") as f32)
                .float(7, number(arguments, "passenger_temp") as f32),
        ),
        "set_climate_keeper_mode" => infotainment(
            car::HVAC_CLIMATE_KEEPER,
            Fields::new()
                .int32(1, integer(arguments, "climate_keeper_mode") as i32)
                .bool(2, flag(arguments, "manual_override")),
        ),
        "set_bioweapon_mode" => infotainment(
            car::HVAC_BIOWEAPON_MODE,
            Fields::new()
                .bool(1, on())
                .bool(2, flag(arguments, "manual_override")),
        ),
        "set_cabin_overheat_protection" => infotainment(
            car::SET_CABIN_OVERHEAT_PROTECTION,
            Fields::new()
                .bool(1, on())
                .bool(2, flag(arguments, "fan_only")),
        ),
        // REST's 0 low, 1 medium, 2 high are the protocol's Low (1), Medium (2), High (3).
        "set_cop_temp" => infotainment(
            car::SET_COP_TEMP,
            Fields::new().int32(1, integer(arguments, "cop_level") as i32 + 1),
        ),
        "set_preconditioning_max" => infotainment(
            car::HVAC_SET_PRECONDITIONING_MAX,
            Fields::new()
                .bool(1, on())
                .bool(2, flag(arguments, "manual_override")),
        ),
        // Seat numbers 0-8 are the oneof members CAR_SEAT_FRONT_LEFT (7) … THIRD_ROW_RIGHT (15);
        // levels 0-3 are SEAT_HEATER_OFF (2) … HIGH (5).
        "remote_seat_heater_request" => infotainment(
            car::HVAC_SEAT_HEATER,
            Fields::new().message(
                1,
                Fields::new()
                    .message(integer(arguments, "level") as u32 + 2, Fields::new())
                    .message(integer(arguments, "heater") as u32 + 7, Fields::new()),
            ),
        ),
        // Levels 0 off to 3 high are HvacSeatCoolerLevel Off (1) … High (4).
        "remote_seat_cooler_request" => infotainment(
            car::HVAC_SEAT_COOLER,
            Fields::new().message(
                1,
                Fields::new()
                    .int32(1, integer(arguments, "seat_cooler_level") as i32 + 1)
                    .int32(2, integer(arguments, "seat_position") as i32),
            ),
        ),
        "remote_auto_seat_climate_request" => infotainment(
            car::AUTO_SEAT_CLIMATE,
            Fields::new().message(
                1,
                Fields::new()
                    .bool(1, flag(arguments, "auto_climate_on"))
                    .int32(2, integer(arguments, "auto_seat_position") as i32),
            ),
        ),
        "remote_steering_wheel_heater_request" => {
            infotainment(car::HVAC_STEERING_WHEEL_HEATER, Fields::new().bool(1, on()))
        }
        "charge_start" => infotainment(car::CHARGING_START_STOP, void(car::CHARGING_START)),
        "charge_stop" => infotainment(car::CHARGING_START_STOP, void(car::CHARGING_STOP)),
        "charge_standard" => {
            infotainment(car::CHARGING_START_STOP, void(car::CHARGING_START_STANDARD))
        }
        "charge_max_range" => infotainment(
            car::CHARGING_START_STOP,
            void(car::CHARGING_START_MAX_RANGE),
        ),
        "charge_port_door_open" => empty(car::CHARGE_PORT_DOOR_OPEN),
        "charge_port_door_close" => empty(car::CHARGE_PORT_DOOR_CLOSE),
        "set_charge_limit" => infotainment(
            car::CHARGING_SET_LIMIT,
            Fields::new().int32(1, integer(arguments, "percent") as i32),
        ),
        "set_charging_amps" => infotainment(
            car::SET_CHARGING_AMPS,
            Fields::new().int32(1, integer(arguments, "charging_amps") as i32),
        ),
        "set_scheduled_charging" => infotainment(
            car::SCHEDULED_CHARGING,
            Fields::new()
                .bool(1, flag(arguments, "enable"))
                .int32(2, integer(arguments, "time") as i32),
        ),
        "remove_charge_schedule" => infotainment(
            car::REMOVE_CHARGE_SCHEDULE,
            Fields::new().uint64(1, integer(arguments, "schedule_id") as u64),
        ),
        "remove_precondition_schedule" => infotainment(
            car::REMOVE_PRECONDITION_SCHEDULE,
            Fields::new().uint64(1, integer(arguments, "schedule_id") as u64),
        ),
        "adjust_volume" => infotainment(
            car::MEDIA_UPDATE_VOLUME,
            Fields::new().float(3, number(arguments, "volume") as f32),
        ),
        "media_toggle_playback" => empty(car::MEDIA_PLAY),
        "media_next_track" => empty(car::MEDIA_NEXT_TRACK),
        "media_prev_track" => empty(car::MEDIA_PREVIOUS_TRACK),
        "media_next_fav" => empty(car::MEDIA_NEXT_FAVORITE),
        "media_prev_fav" => empty(car::MEDIA_PREVIOUS_FAVORITE),
        "media_volume_down" => infotainment(car::MEDIA_UPDATE_VOLUME, Fields::new().sint32(1, -1)),
        "window_control" => {
            let action = match text(arguments, "command") {
                "close" => car::WINDOW_CLOSE,
                _ => car::WINDOW_VENT,
            };
            infotainment(car::WINDOW, void(action))
        }
        "trigger_homelink" => infotainment(
            car::TRIGGER_HOMELINK,
            Fields::new().message(
                1,
                Fields::new()
                    .float(1, number(arguments, "lat") as f32)
                    .float(2, number(arguments, "lon") as f32),
            ),
        ),
        "set_sentry_mode" => infotainment(car::SET_SENTRY_MODE, Fields::new().bool(1, on())),
        "set_valet_mode" => infotainment(
            car::SET_VALET_MODE,
            Fields::new()
                .bool(1, on())
                .string(2, text(arguments, "password")),
        ),
        "reset_valet_pin" => empty(car::RESET_VALET_PIN),
        "speed_limit_set_limit" => infotainment(
            car::DRIVING_SET_SPEED_LIMIT,
            Fields::new().double(1, number(arguments, "limit_mph")),
        ),
        "speed_limit_activate" => infotainment(
            car::DRIVING_SPEED_LIMIT,
            Fields::new()
                .bool(1, true)
                .string(2, text(arguments, "pin")),
        ),
        "speed_limit_deactivate" => infotainment(
            car::DRIVING_SPEED_LIMIT,
            Fields::new()
                .bool(1, false)
                .string(2, text(arguments, "pin")),
        ),
        "speed_limit_clear_pin" => infotainment(
            car::DRIVING_CLEAR_SPEED_LIMIT_PIN,
            Fields::new().string(1, text(arguments, "pin")),
        ),
        "speed_limit_clear_pin_admin" => empty(car::DRIVING_CLEAR_SPEED_LIMIT_PIN_ADMIN),
        "set_pin_to_drive" => infotainment(
            car::SET_PIN_TO_DRIVE,
            Fields::new()
                .bool(1, on())
                .string(2, text(arguments, "password")),
        ),
        "reset_pin_to_drive_pin" => empty(car::RESET_PIN_TO_DRIVE),
        "clear_pin_to_drive_admin" => empty(car::RESET_PIN_TO_DRIVE_ADMIN),
        "guest_mode" => infotainment(car::GUEST_MODE, Fields::new().bool(1, on())),
        "erase_user_data" => empty(car::ERASE_USER_DATA),
        "schedule_software_update" => infotainment(
            car::SCHEDULE_SOFTWARE_UPDATE,
            Fields::new().int32(1, integer(arguments, "offset_sec") as i32),
        ),
        "cancel_software_update" => empty(car::CANCEL_SOFTWARE_UPDATE),
        "set_vehicle_name" => infotainment(
            car::SET_VEHICLE_NAME,
            Fields::new().string(1, text(arguments, "vehicle_name")),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{ENDPOINTS, Route};

    /// Commands of the catalogue that stay REST on every car, with Tesla's reason.
    const REST_ONLY: &[(&str, &str)] = &[
        (
            "navigation_request",
            "Tesla's proxy forwards it unsigned (ErrCommandUseRESTAPI)",
        ),
        (
            "navigation_gps_request",
            "no protocol action in Tesla's proxy",
        ),
        (
            "navigation_sc_request",
            "no protocol action in Tesla's proxy",
        ),
        (
            "remote_boombox",
            "Tesla's proxy does not implement it (ErrCommandNotImplemented)",
        ),
        ("sun_roof_control", "no protocol action in Tesla's proxy"),
        (
            "remote_steering_wheel_heat_level_request",
            "no protocol action in Tesla's proxy",
        ),
        (
            "remote_auto_steering_wheel_heat_climate_request",
            "no protocol action in Tesla's proxy",
        ),
        (
            "add_charge_schedule",
            "a protocol action exists (addChargeScheduleAction); carport does not build it yet",
        ),
        (
            "add_precondition_schedule",
            "a protocol action exists (addPreconditionScheduleAction); carport does not build it yet",
        ),
    ];

    #[test]
    fn every_command_is_signed_or_listed_as_rest() {
        for endpoint in ENDPOINTS
            .iter()
            .filter(|endpoint| matches!(endpoint.route, Route::Command))
        {
            let signed = action_of(endpoint.name, &Map::new()).is_some();
            let rest = REST_ONLY.iter().any(|(name, _)| *name == endpoint.name);
            assert!(
                signed != rest,
                "{} must be either signed or REST-only",
                endpoint.name
            );
        }
    }
}
