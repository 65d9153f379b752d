//! The one vehicle shape every provider returns from its state tool, so an assistant sees the
//! same fields whichever vendor serves the car. Distances are km, speeds km/h, temperatures °C.

use serde::Serialize;
use serde_json::{Value, json};

pub const KM_PER_MILE: f64 = 1.609_344;

#[derive(Debug, Serialize, PartialEq)]
pub struct VehicleState {
    pub vin: Option<String>,
    pub display_name: Option<String>,
    /// `online`, `asleep` or `offline`.
    pub state: String,
    pub battery_level: Option<f64>,
    pub battery_range_km: Option<f64>,
    pub charging: Charging,
    pub location: Location,
    pub locked: Option<bool>,
    pub sentry_mode: Option<bool>,
    pub climate: Climate,
    pub doors: Doors,
    pub odometer_km: Option<f64>,
    /// RFC 3339 time of the vendor's newest reading.
    pub last_updated: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Charging {
    /// Tesla's words: `Disconnected`, `Charging`, `Complete`, `Stopped`, `NoPower`, `Starting`.
    pub state: Option<String>,
    pub minutes_remaining: Option<f64>,
    pub charge_limit: Option<f64>,
    pub charger_power_kw: Option<f64>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Location {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub heading: Option<f64>,
    pub speed: Option<f64>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Climate {
    pub is_on: Option<bool>,
    pub inside_temp: Option<f64>,
    pub outside_temp: Option<f64>,
    pub target_temp: Option<f64>,
    pub is_defrosting: Option<bool>,
}

/// What a combustion or non-Tesla car adds to the shared shape. Kept apart from
/// [`VehicleState`] so existing providers' answers stay exactly as they were: only the fields a
/// provider knows are added to its JSON.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct VehicleExtras {
    /// Percent of the tank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_level: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_range_km: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tire_pressures_kpa: Option<TirePressures>,
    /// Percent of engine oil life left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oil_life: Option<f64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct TirePressures {
    pub front_left: Option<f64>,
    pub front_right: Option<f64>,
    pub rear_left: Option<f64>,
    pub rear_right: Option<f64>,
}

/// `true` means open.
#[derive(Debug, Serialize, PartialEq)]
pub struct Doors {
    pub front_left: Option<bool>,
    pub front_right: Option<bool>,
    pub rear_left: Option<bool>,
    pub rear_right: Option<bool>,
    pub frunk: Option<bool>,
    pub trunk: Option<bool>,
    pub charge_port: Option<bool>,
}

impl VehicleState {
    /// Normalises Tesla's nested vehicle data (Fleet API `vehicle_data`, Tessie `/{vin}/state`,
    /// both in miles) into the shared shape.
    pub fn from_tesla_vehicle_data(data: &Value) -> VehicleState {
        let charge = &data["charge_state"];
        let climate = &data["climate_state"];
        let drive = &data["drive_state"];
        let vehicle = &data["vehicle_state"];
        let number = |value: &Value| value.as_f64();
        let miles_to_km = |value: &Value| value.as_f64().map(|miles| round1(miles * KM_PER_MILE));
        let open = |value: &Value| value.as_i64().map(|position| position != 0);
        let newest = [
            "charge_state",
            "climate_state",
            "drive_state",
            "vehicle_state",
        ]
        .iter()
        .filter_map(|section| data[*section]["timestamp"].as_i64())
        .max();
        VehicleState {
            vin: data["vin"].as_str().map(str::to_string),
            display_name: data["display_name"]
                .as_str()
                .or_else(|| vehicle["vehicle_name"].as_str())
                .map(str::to_string),
            state: data["state"].as_str().unwrap_or("online").to_string(),
            battery_level: number(&charge["battery_level"]),
            battery_range_km: miles_to_km(&charge["battery_range"]),
            charging: Charging {
                state: charge["charging_state"].as_str().map(str::to_string),
                minutes_remaining: number(&charge["minutes_to_full_charge"]),
                charge_limit: number(&charge["charge_limit_soc"]),
                charger_power_kw: number(&charge["charger_power"]),
            },
            location: Location {
                latitude: number(&drive["latitude"]),
                longitude: number(&drive["longitude"]),
                heading: number(&drive["heading"]),
                speed: miles_to_km(&drive["speed"]),
            },
            locked: vehicle["locked"].as_bool(),
            sentry_mode: vehicle["sentry_mode"].as_bool(),
            climate: Climate {
                is_on: climate["is_climate_on"].as_bool(),
                inside_temp: number(&climate["inside_temp"]),
                outside_temp: number(&climate["outside_temp"]),
                target_temp: number(&climate["driver_temp_setting"]),
                is_defrosting: climate["defrost_mode"]
                    .as_i64()
                    .map(|mode| mode != 0)
                    .or_else(|| climate["is_front_defroster_on"].as_bool()),
            },
            doors: Doors {
                front_left: open(&vehicle["df"]),
                front_right: open(&vehicle["pf"]),
                rear_left: open(&vehicle["dr"]),
                rear_right: open(&vehicle["pr"]),
                frunk: open(&vehicle["ft"]),
                trunk: open(&vehicle["rt"]),
                charge_port: charge["charge_port_door_open"].as_bool(),
            },
            odometer_km: miles_to_km(&vehicle["odometer"]),
            last_updated: newest.map(rfc3339_from_unix_ms),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The shared shape with the extras the provider knows; absent extras are left out.
    pub fn to_json_with(&self, extras: &VehicleExtras) -> Value {
        let mut value = self.to_json();
        if let (Value::Object(state), Ok(Value::Object(more))) =
            (&mut value, serde_json::to_value(extras))
        {
            state.extend(more);
        }
        value
    }

    /// One line for the assistant's text channel.
    pub fn summary(&self) -> String {
        let name = self.display_name.as_deref().unwrap_or("The vehicle");
        let mut parts = vec![format!("{name} is {}", self.state)];
        if let Some(level) = self.battery_level {
            let range = self
                .battery_range_km
                .map(|km| format!(" ({km:.0} km range)"))
                .unwrap_or_default();
            parts.push(format!("battery {level:.0}%{range}"));
        }
        if let Some(state) = &self.charging.state {
            parts.push(format!("charging: {state}"));
        }
        match self.locked {
            Some(true) => parts.push("locked".into()),
            Some(false) => parts.push("unlocked".into()),
            None => {}
        }
        if let Some(inside) = self.climate.inside_temp {
            parts.push(format!("inside {inside:.1} °C"));
        }
        parts.join(", ")
    }

    /// JSON Schema of [`VehicleState`], declared as the state tools' output schema.
    pub fn output_schema() -> Value {
        let number = json!({"type": ["number", "null"]});
        let boolean = json!({"type": ["boolean", "null"]});
        let string = json!({"type": ["string", "null"]});
        let object = |properties: Value| json!({"type": "object", "properties": properties});
        json!({
            "type": "object",
            "properties": {
                "vin": string,
                "display_name": string,
                "state": {"type": "string", "description": "online, asleep or offline"},
                "battery_level": {"type": ["number", "null"], "description": "percent"},
                "battery_range_km": number,
                "charging": object(json!({
                    "state": string, "minutes_remaining": number,
                    "charge_limit": {"type": ["number", "null"], "description": "percent"},
                    "charger_power_kw": number,
                })),
                "location": object(json!({
                    "latitude": number, "longitude": number, "heading": number,
                    "speed": {"type": ["number", "null"], "description": "km/h"},
                })),
                "locked": boolean,
                "sentry_mode": boolean,
                "climate": object(json!({
                    "is_on": boolean,
                    "inside_temp": {"type": ["number", "null"], "description": "°C"},
                    "outside_temp": {"type": ["number", "null"], "description": "°C"},
                    "target_temp": {"type": ["number", "null"], "description": "°C"},
                    "is_defrosting": boolean,
                })),
                "doors": {
                    "type": "object",
                    "description": "true = open",
                    "properties": {
                        "front_left": boolean, "front_right": boolean, "rear_left": boolean,
                        "rear_right": boolean, "frunk": boolean, "trunk": boolean,
                        "charge_port": boolean,
                    },
                },
                "odometer_km": number,
                "last_updated": string,
            },
            "required": ["state", "charging", "location", "climate", "doors"],
        })
    }

    /// [`VehicleState::output_schema`] with the [`VehicleExtras`] that makes beyond Tesla
    /// report, for providers that fill them (`to_json_with`).
    pub fn output_schema_with_extras() -> Value {
        let number = json!({"type": ["number", "null"]});
        let mut schema = VehicleState::output_schema();
        let properties = schema["properties"]
            .as_object_mut()
            .expect("the schema has properties");
        properties.insert(
            "fuel_level".into(),
            json!({"type": "number", "description": "percent; combustion cars only"}),
        );
        properties.insert(
            "fuel_range_km".into(),
            json!({"type": "number", "description": "combustion cars only"}),
        );
        properties.insert(
            "tire_pressures_kpa".into(),
            json!({"type": "object", "properties": {
                "front_left": number, "front_right": number,
                "rear_left": number, "rear_right": number,
            }}),
        );
        properties.insert(
            "oil_life".into(),
            json!({"type": "number", "description": "percent of engine oil life left"}),
        );
        schema
    }
}

pub fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Formats Unix milliseconds as RFC 3339 UTC (Hinnant's days-to-civil algorithm).
pub fn rfc3339_from_unix_ms(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_milliseconds_as_rfc3339() {
        assert_eq!(rfc3339_from_unix_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_from_unix_ms(1_701_139_037_461),
            "2023-11-28T02:37:17Z"
        );
        assert_eq!(
            rfc3339_from_unix_ms(951_782_400_000),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn normalises_miles_doors_and_defrost() {
        let data = json!({
            "vin": "5YJ3E1EA7KF000001", "display_name": "Red", "state": "online",
            "charge_state": {"battery_level": 75, "battery_range": 100.0, "charging_state": "Charging",
                             "charge_port_door_open": true, "timestamp": 1000},
            "climate_state": {"defrost_mode": 2, "driver_temp_setting": 21.5},
            "drive_state": {"speed": 10.0},
            "vehicle_state": {"locked": false, "df": 1, "pf": 0, "odometer": 1.0, "timestamp": 2000}
        });
        let state = VehicleState::from_tesla_vehicle_data(&data);
        assert_eq!(state.battery_range_km, Some(160.9));
        assert_eq!(state.location.speed, Some(16.1));
        assert_eq!(state.odometer_km, Some(1.6));
        assert_eq!(state.doors.front_left, Some(true));
        assert_eq!(state.doors.front_right, Some(false));
        assert_eq!(state.doors.charge_port, Some(true));
        assert_eq!(state.climate.is_defrosting, Some(true));
        assert_eq!(state.climate.target_temp, Some(21.5));
        assert_eq!(state.last_updated.as_deref(), Some("1970-01-01T00:00:02Z"));
    }

    #[test]
    fn extras_are_added_only_when_known() {
        let state = VehicleState::from_tesla_vehicle_data(&json!({}));
        assert_eq!(
            state.to_json_with(&VehicleExtras::default()),
            state.to_json()
        );
        let extras = VehicleExtras {
            fuel_level: Some(40.0),
            ..VehicleExtras::default()
        };
        let value = state.to_json_with(&extras);
        assert_eq!(value["fuel_level"], 40.0);
        assert!(value.get("oil_life").is_none());
    }
}
