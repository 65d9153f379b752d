//! The simulated cars. One model serves every vendor; each vendor module renders it in that
//! vendor's shapes and units (Tesla's APIs speak miles, mph and °C).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

const GARAGE: &str = include_str!("../fixtures/vehicles.json");

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SimVehicle {
    pub id: u64,
    pub vehicle_id: u64,
    pub vin: String,
    pub display_name: String,
    pub asleep: bool,
    pub battery_level: f64,
    /// Rated range in miles, as Tesla reports it.
    pub battery_range_mi: f64,
    pub charging_state: String,
    pub charge_limit_soc: f64,
    pub minutes_to_full_charge: f64,
    pub charger_power_kw: f64,
    pub charge_port_door_open: bool,
    pub locked: bool,
    pub sentry_mode: bool,
    /// Door and trunk positions, Tesla style: 0 closed, non-zero open.
    pub driver_front: u8,
    pub driver_rear: u8,
    pub passenger_front: u8,
    pub passenger_rear: u8,
    pub front_trunk: u8,
    pub rear_trunk: u8,
    pub climate_on: bool,
    pub inside_temp_c: f64,
    pub outside_temp_c: f64,
    pub driver_temp_c: f64,
    pub passenger_temp_c: f64,
    pub defrost_mode: u8,
    pub latitude: f64,
    pub longitude: f64,
    pub heading: f64,
    pub speed_mph: Option<f64>,
    pub odometer_mi: f64,
    pub car_version: String,
    /// Last destination shared to the car's navigation.
    pub navigation_destination: Option<String>,
    pub horn_honks: u32,
    pub light_flashes: u32,
}

impl SimVehicle {
    /// The demo garage (fixtures/vehicles.json): one car awake and parked, one asleep at home.
    pub fn garage() -> Vec<SimVehicle> {
        serde_json::from_str(GARAGE).expect("the garage fixture is valid JSON")
    }

    pub fn state_word(&self) -> &'static str {
        if self.asleep { "asleep" } else { "online" }
    }

    /// Tesla's nested vehicle data (Fleet API `vehicle_data`, Tessie `/{vin}/state`).
    pub fn tesla_vehicle_data(&self) -> Value {
        let now = now_ms();
        json!({
            "id": self.id,
            "vehicle_id": self.vehicle_id,
            "vin": self.vin,
            "id_s": self.id.to_string(),
            "display_name": self.display_name,
            "state": self.state_word(),
            "access_type": "OWNER",
            "in_service": false,
            "api_version": 84,
            "charge_state": {
                "battery_level": self.battery_level,
                "usable_battery_level": self.battery_level,
                "battery_range": self.battery_range_mi,
                "est_battery_range": self.battery_range_mi * 0.92,
                "ideal_battery_range": self.battery_range_mi,
                "charging_state": self.charging_state,
                "charge_limit_soc": self.charge_limit_soc,
                "charge_limit_soc_min": 50,
                "charge_limit_soc_max": 100,
                "minutes_to_full_charge": self.minutes_to_full_charge,
                "time_to_full_charge": self.minutes_to_full_charge / 60.0,
                "charger_power": self.charger_power_kw,
                "charger_voltage": if self.charger_power_kw > 0.0 { 230 } else { 0 },
                "charge_rate": if self.charger_power_kw > 0.0 { 28.4 } else { 0.0 },
                "charge_port_door_open": self.charge_port_door_open,
                "charge_port_latch": "Engaged",
                "conn_charge_cable": if self.charging_state == "Disconnected" { "<invalid>" } else { "IEC" },
                "timestamp": now
            },
            "climate_state": {
                "inside_temp": self.inside_temp_c,
                "outside_temp": self.outside_temp_c,
                "driver_temp_setting": self.driver_temp_c,
                "passenger_temp_setting": self.passenger_temp_c,
                "is_climate_on": self.climate_on,
                "is_auto_conditioning_on": self.climate_on,
                "defrost_mode": self.defrost_mode,
                "is_front_defroster_on": self.defrost_mode != 0,
                "is_rear_defroster_on": self.defrost_mode != 0,
                "min_avail_temp": 15,
                "max_avail_temp": 28,
                "timestamp": now
            },
            "drive_state": {
                "latitude": self.latitude,
                "longitude": self.longitude,
                "heading": self.heading,
                "speed": self.speed_mph,
                "shift_state": Value::Null,
                "power": 0,
                "gps_as_of": now / 1000,
                "timestamp": now
            },
            "gui_settings": {
                "gui_distance_units": "km/hr",
                "gui_temperature_units": "C",
                "gui_charge_rate_units": "kW",
                "gui_24_hour_time": true,
                "timestamp": now
            },
            "vehicle_config": {
                "car_type": if self.vin.starts_with("7SAY") { "modely" } else { "model3" },
                "can_actuate_trunks": true,
                "can_accept_navigation_requests": true,
                "motorized_charge_port": true,
                "timestamp": now
            },
            "vehicle_state": {
                "vehicle_name": self.display_name,
                "car_version": self.car_version,
                "locked": self.locked,
                "sentry_mode": self.sentry_mode,
                "sentry_mode_available": true,
                "df": self.driver_front,
                "dr": self.driver_rear,
                "pf": self.passenger_front,
                "pr": self.passenger_rear,
                "ft": self.front_trunk,
                "rt": self.rear_trunk,
                "fd_window": 0, "fp_window": 0, "rd_window": 0, "rp_window": 0,
                "odometer": self.odometer_mi,
                "is_user_present": false,
                "valet_mode": false,
                "timestamp": now
            }
        })
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default()
}
