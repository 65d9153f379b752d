//! Smartcar's signals: the codes (with the seed's dotted names as aliases), unit conversion to
//! carport's units, and the shared vehicle shape built from one signals page.

use carport_guest::ToolError;
use carport_guest::vehicle::{
    Charging, Climate, Doors, KM_PER_MILE, Location, TirePressures, VehicleExtras, VehicleState,
    rfc3339_from_unix_ms, round1,
};
use serde_json::{Map, Value, json};

const CATALOGUE: &str = include_str!("signals.txt");
const KPA_PER_PSI: f64 = 6.894_757;
const KPA_PER_BAR: f64 = 100.0;
const LITRES_PER_US_GALLON: f64 = 3.785_412;

pub struct Signal {
    pub code: &'static str,
    pub permission: &'static str,
}

/// (vendor code, permission, seed aliases) for each line of the catalogue.
fn catalogue() -> impl Iterator<Item = (&'static str, &'static str, Vec<&'static str>)> {
    CATALOGUE
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?, words.next()?, words.collect()))
        })
}

/// A vendor code or a seed name, case-insensitively; otherwise the nearest names.
pub fn resolve(requested: &str) -> Result<Signal, ToolError> {
    let wanted = requested.trim().to_ascii_lowercase();
    for (code, permission, aliases) in catalogue() {
        if code == wanted
            || aliases
                .iter()
                .any(|alias| alias.to_ascii_lowercase() == wanted)
        {
            return Ok(Signal { code, permission });
        }
    }
    let mut names: Vec<(usize, &str)> = catalogue()
        .flat_map(|(code, _, aliases)| std::iter::once(code).chain(aliases))
        .map(|name| (distance(&wanted, &name.to_ascii_lowercase()), name))
        .collect();
    names.sort();
    let nearest: Vec<&str> = names.iter().take(3).map(|(_, name)| *name).collect();
    Err(ToolError::invalid(format!(
        "unknown signal code {requested:?}: nearest valid codes are {}; get_signals lists the \
         vehicle's signals",
        nearest.join(", ")
    )))
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, left) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, right) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(left != *right);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// A reading in carport's units: km, km/h, °C, kPa, litres; other units pass unchanged.
pub fn normalize(value: f64, unit: &str) -> (f64, String) {
    let unit = unit.to_ascii_lowercase();
    let (converted, unit) = match unit.as_str() {
        "mi" | "miles" | "mile" => (value * KM_PER_MILE, "km"),
        "km" | "kilometers" | "kilometres" | "kilometer" => (value, "km"),
        "mph" | "miles_per_hour" | "miles/hour" => (value * KM_PER_MILE, "km/h"),
        "kph" | "km/h" | "kmh" | "kilometers_per_hour" => (value, "km/h"),
        "f" | "fahrenheit" | "°f" => ((value - 32.0) * 5.0 / 9.0, "°C"),
        "c" | "celsius" | "°c" => (value, "°C"),
        "psi" => (value * KPA_PER_PSI, "kPa"),
        "bar" => (value * KPA_PER_BAR, "kPa"),
        "kpa" | "kilopascals" => (value, "kPa"),
        "gal" | "gallons" | "gallon" => (value * LITRES_PER_US_GALLON, "l"),
        "l" | "liters" | "litres" => (value, "l"),
        _ => return (value, unit),
    };
    (round1(converted), unit.to_string())
}

/// `{value, unit}` in carport's units, when the body is one number with a unit.
fn normalized_body(body: &Value) -> Value {
    match (body["value"].as_f64(), body["unit"].as_str()) {
        (Some(value), Some(unit)) => {
            let (value, unit) = normalize(value, unit);
            json!({"value": value, "unit": unit})
        }
        _ => match body["values"].as_array() {
            Some(items) => Value::from(
                items
                    .iter()
                    .map(|item| match item.as_object() {
                        Some(fields) => Value::Object(normalized_item(fields)),
                        None => item.clone(),
                    })
                    .collect::<Vec<_>>(),
            ),
            None => Value::Null,
        },
    }
}

/// A list item such as a tyre `{row, column, tirePressure, unit}`: numbers in carport's units.
fn normalized_item(fields: &Map<String, Value>) -> Map<String, Value> {
    let unit = fields.get("unit").and_then(Value::as_str);
    let mut out = Map::new();
    for (key, value) in fields {
        match (value.as_f64(), unit) {
            (Some(number), Some(unit)) if !matches!(key.as_str(), "row" | "column") => {
                let (number, unit) = normalize(number, unit);
                out.insert(key.clone(), json!(number));
                out.insert("unit".into(), json!(unit));
            }
            _ => {
                out.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    out
}

/// One signal for the assistant: what it is, Smartcar's body, and the body in carport's units.
pub fn summarise(signal: &Value) -> Value {
    let attributes = &signal["attributes"];
    json!({
        "code": attributes["code"],
        "name": attributes["name"],
        "group": attributes["group"],
        "status": attributes["status"]["value"],
        "body": attributes["body"],
        "normalized": normalized_body(&attributes["body"]),
        "retrieved_at": signal["meta"]["retrievedAt"],
    })
}

/// Smartcar's timestamps: Unix seconds (or milliseconds) in signals, RFC 3339 elsewhere.
fn timestamp_ms(value: &Value) -> Option<i64> {
    let number = value.as_i64()?;
    Some(if number > 100_000_000_000 {
        number
    } else {
        number * 1000
    })
}

/// The shared vehicle shape from one page of signals (`GET /vehicles/{id}/signals`).
pub fn vehicle_state(page: &Value) -> (VehicleState, VehicleExtras) {
    let mut bodies: Map<String, Value> = Map::new();
    let mut newest: Option<i64> = None;
    for signal in page["data"].as_array().into_iter().flatten() {
        let attributes = &signal["attributes"];
        let Some(code) = attributes["code"].as_str() else {
            continue;
        };
        if attributes["status"]["value"]
            .as_str()
            .is_some_and(|status| status != "SUCCESS")
        {
            continue;
        }
        if let Some(at) = timestamp_ms(&signal["meta"]["retrievedAt"]) {
            newest = Some(newest.map_or(at, |known| known.max(at)));
        }
        bodies.insert(code.to_ascii_lowercase(), attributes["body"].clone());
    }
    let body = |code: &str| bodies.get(code).cloned().unwrap_or(Value::Null);
    let number = |code: &str| {
        let body = body(code);
        let value = body["value"].as_f64()?;
        Some(match body["unit"].as_str() {
            Some(unit) => normalize(value, unit).0,
            None => value,
        })
    };
    let flag = |code: &str| body(code)["value"].as_bool();
    let location = body("location-preciselocation");
    let vehicle = &page["included"]["vehicle"]["attributes"];
    let display_name = body("vehicleidentification-nickname")["value"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            let parts: Vec<String> = ["make", "model"]
                .iter()
                .filter_map(|key| vehicle[*key].as_str().map(str::to_string))
                .chain(vehicle["year"].as_i64().map(|year| year.to_string()))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
    let state = match (
        flag("connectivitystatus-isasleep"),
        flag("connectivitystatus-isonline"),
    ) {
        (Some(true), _) => "asleep",
        (_, Some(false)) => "offline",
        _ => "online",
    };
    let doors = doors(&body("closure-doors"));
    let charge_limit = body("charge-chargelimits")["values"]
        .as_array()
        .and_then(|limits| {
            limits
                .iter()
                .find(|limit| limit["type"].as_str().is_none_or(|kind| kind == "global"))
        })
        .and_then(|limit| limit["limit"].as_f64())
        .or_else(|| number("charge-chargelimits"));
    let vehicle_state = VehicleState {
        vin: body("vehicleidentification-vin")["value"]
            .as_str()
            .map(str::to_string),
        display_name,
        state: state.to_string(),
        battery_level: number("tractionbattery-stateofcharge"),
        battery_range_km: number("tractionbattery-range"),
        charging: Charging {
            state: charging_state(
                body("charge-detailedchargingstatus")["value"].as_str(),
                flag("charge-ischarging"),
                flag("charge-ischargingcableconnected"),
            ),
            minutes_remaining: number("charge-timetocomplete"),
            charge_limit,
            charger_power_kw: number("charge-wattage"),
        },
        location: Location {
            latitude: location["latitude"].as_f64(),
            longitude: location["longitude"].as_f64(),
            heading: location["heading"].as_f64(),
            speed: number("motion-currentspeed"),
        },
        locked: flag("closure-islocked"),
        sentry_mode: flag("surveillance-isenabled"),
        climate: Climate {
            is_on: flag("hvac-iscabinhvacactive"),
            inside_temp: number("climate-internaltemperature"),
            outside_temp: number("climate-externaltemperature"),
            target_temp: number("hvac-cabintargettemperature"),
            is_defrosting: flag("hvac-isfrontdefrosteractive"),
        },
        doors: Doors {
            frunk: body("closure-fronttrunk")["isOpen"].as_bool(),
            trunk: body("closure-reartrunk")["isOpen"].as_bool(),
            charge_port: flag("charge-ischargingportflapopen"),
            ..doors
        },
        odometer_km: number("odometer-traveleddistance"),
        last_updated: newest.map(rfc3339_from_unix_ms),
    };
    let extras = VehicleExtras {
        fuel_level: number("internalcombustionengine-fuellevel"),
        fuel_range_km: number("internalcombustionengine-range"),
        tire_pressures_kpa: tires(&body("wheel-tires")),
        oil_life: number("internalcombustionengine-oillife"),
    };
    (vehicle_state, extras)
}

/// Tesla's words, which the shared shape uses.
fn charging_state(
    detailed: Option<&str>,
    charging: Option<bool>,
    cable: Option<bool>,
) -> Option<String> {
    let word = match (detailed, charging, cable) {
        (Some("CHARGING"), ..) | (_, Some(true), _) => "Charging",
        (Some("FULLY_CHARGED" | "CHARGING_COMPLETE"), ..) => "Complete",
        (_, _, Some(false)) => "Disconnected",
        (_, Some(false), Some(true)) => "Stopped",
        _ => return None,
    };
    Some(word.to_string())
}

/// `{values: [{row, column, isOpen}]}`, row 0 at the front and column 0 on the left.
fn doors(body: &Value) -> Doors {
    let open = |row: i64, column: i64| {
        body["values"].as_array()?.iter().find_map(|door| {
            (door["row"].as_i64() == Some(row) && door["column"].as_i64() == Some(column))
                .then(|| door["isOpen"].as_bool())
                .flatten()
        })
    };
    Doors {
        front_left: open(0, 0),
        front_right: open(0, 1),
        rear_left: open(1, 0),
        rear_right: open(1, 1),
        frunk: None,
        trunk: None,
        charge_port: None,
    }
}

/// `{values: [{row, column, tirePressure, unit}]}` in kPa.
fn tires(body: &Value) -> Option<TirePressures> {
    let values = body["values"].as_array()?;
    let pressure = |row: i64, column: i64| {
        values.iter().find_map(|tire| {
            if tire["row"].as_i64() != Some(row) || tire["column"].as_i64() != Some(column) {
                return None;
            }
            let value = tire["tirePressure"].as_f64()?;
            Some(normalize(value, tire["unit"].as_str().unwrap_or("kpa")).0)
        })
    };
    Some(TirePressures {
        front_left: pressure(0, 0),
        front_right: pressure(0, 1),
        rear_left: pressure(1, 0),
        rear_right: pressure(1, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_names_and_vendor_codes_resolve_and_typos_get_suggestions() {
        assert_eq!(
            resolve("ice.fuel.level").unwrap().code,
            "internalcombustionengine-amountremaining"
        );
        assert_eq!(
            resolve("Odometer-TraveledDistance").unwrap().code,
            "odometer-traveleddistance"
        );
        assert_eq!(resolve("closure.lock").unwrap().permission, "read_security");
        let Err(ToolError::InvalidArguments(message)) = resolve("tractionbatery-stateofcharge")
        else {
            panic!("a typo must be refused")
        };
        assert!(
            message.contains("tractionbattery-stateofcharge"),
            "{message}"
        );
    }

    #[test]
    fn imperial_units_become_carports() {
        assert_eq!(normalize(100.0, "miles"), (160.9, "km".to_string()));
        assert_eq!(normalize(212.0, "fahrenheit"), (100.0, "°C".to_string()));
        assert_eq!(normalize(35.0, "psi"), (241.3, "kPa".to_string()));
        assert_eq!(normalize(80.0, "percent"), (80.0, "percent".to_string()));
    }

    #[test]
    fn the_catalogue_has_every_schema_signal_once() {
        let codes: Vec<&str> = catalogue().map(|(code, ..)| code).collect();
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(codes.len(), 93);
        assert_eq!(unique.len(), codes.len());
    }
}
