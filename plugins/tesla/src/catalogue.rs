//! Every Fleet API tool as one row: where it goes, what it takes, what it does.
//!
//! The tool list, the input schemas, the annotations and the requests are all derived from
//! these rows (see `lib.rs`); adding a Tesla endpoint is adding a row. The wire format follows
//! Tesla's Fleet API documentation, Tesla's own `vehicle-command` proxy and Teslemetry's
//! `tesla-fleet-api` library where the seed server differs (listed in WIRE.md and README.md).

/// Where a tool's request goes.
#[derive(Debug, Clone, Copy)]
pub enum Route {
    /// `POST /api/1/vehicles/{vehicle_tag}/command/<tool name>` with a JSON body (`{}` at least).
    Command,
    /// `<method> /api/1/vehicles/{vehicle_tag}/<suffix>`.
    Vehicle(&'static str, &'static str),
    /// `<method> /api/1/energy_sites/{energy_site_id}/<suffix>`.
    Site(&'static str, &'static str),
    /// `<method> <path>`, where `{arg}` in the path is a path parameter.
    Account(&'static str, &'static str),
}

/// What calling the tool does to the world: becomes the MCP annotations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    Read,
    /// Changes state; repeating it changes nothing more.
    Set,
    /// Acts each time it is called (honk, toggle a trunk, create an invite).
    Act,
    /// Lowers security, moves the car or cannot be undone remotely.
    Danger,
}

#[derive(Debug, Clone, Copy)]
pub enum To {
    Body(&'static str),
    /// The same value under several body keys (Tesla renamed some keys; both are sent).
    Bodies(&'static [&'static str]),
    /// `{outer: {inner: value}}`.
    Nested(&'static str, &'static str),
    /// `{outer: value}` when the value already holds `inner` (the shape Tesla documents),
    /// otherwise `{outer: {inner: value}}`.
    NestedUnlessWrapped(&'static str, &'static str),
    Query(&'static str),
    /// A list joined with `;` in the query.
    QueryJoined(&'static str),
    /// `{arg}` in the route's path.
    Path,
}

#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    Int(i64, i64),
    Num(f64, f64),
    Bool,
    Choice(&'static [&'static str]),
    Ints,
    Strs,
    Object,
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub arg: &'static str,
    pub to: To,
    pub ty: Ty,
    pub required: bool,
    pub doc: &'static str,
}

/// Values the tool always sends.
#[derive(Debug, Clone, Copy)]
pub enum Fixed {
    Body(&'static str, &'static str),
    /// The current time in Unix milliseconds.
    BodyNowMs(&'static str),
    Query(&'static str, &'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub name: &'static str,
    pub route: Route,
    pub effect: Effect,
    pub doc: &'static str,
    pub params: &'static [Param],
    pub fixed: &'static [Fixed],
}

impl Endpoint {
    pub fn method(&self) -> &'static str {
        match self.route {
            Route::Command => "POST",
            Route::Vehicle(method, _) | Route::Site(method, _) | Route::Account(method, _) => {
                method
            }
        }
    }

    pub fn on_vehicle(&self) -> bool {
        matches!(self.route, Route::Command | Route::Vehicle(..))
    }

    /// Needs the car awake: commands and live data.
    pub fn needs_awake_car(&self) -> bool {
        matches!(self.route, Route::Command)
            || matches!(self.route, Route::Vehicle(_, "vehicle_data"))
    }
}

const fn row(
    name: &'static str,
    route: Route,
    effect: Effect,
    doc: &'static str,
    params: &'static [Param],
) -> Endpoint {
    Endpoint {
        name,
        route,
        effect,
        doc,
        params,
        fixed: &[],
    }
}

const fn with_fixed(endpoint: Endpoint, fixed: &'static [Fixed]) -> Endpoint {
    Endpoint { fixed, ..endpoint }
}

/// A required body parameter sent under its own name.
const fn req(arg: &'static str, ty: Ty, doc: &'static str) -> Param {
    Param {
        arg,
        to: To::Body(arg),
        ty,
        required: true,
        doc,
    }
}

/// An optional body parameter sent under its own name.
const fn opt(arg: &'static str, ty: Ty, doc: &'static str) -> Param {
    Param {
        arg,
        to: To::Body(arg),
        ty,
        required: false,
        doc,
    }
}

const fn to(param: Param, to: To) -> Param {
    Param { to, ..param }
}

const fn query(arg: &'static str, ty: Ty, doc: &'static str) -> Param {
    Param {
        arg,
        to: To::Query(arg),
        ty,
        required: false,
        doc,
    }
}

use Effect::{Act, Danger, Read, Set};
use Route::{Account, Command, Site, Vehicle};
use Ty::{Bool, Choice, Int, Ints, Num, Object, Str, Strs};

// The table and its shared parameters are kept one row per line: rustfmt would spread each row
// over a dozen lines and hide the table.

#[rustfmt::skip]
const VIN_QUERY: Param = Param { arg: "vin", to: To::Query("vin"), ty: Str, required: true, doc: "Vehicle VIN (17 characters)." };
#[rustfmt::skip]
const ON: Param = req("on", Bool, "true to turn on, false to turn off.");
#[rustfmt::skip]
const PIN: Param = req("pin", Str, "4-digit PIN.");
#[rustfmt::skip]
const DAYS: Param = req("days_of_week", Str, "Days the schedule runs: comma-separated day names (Monday,Tuesday…), or All, or Weekdays.");
#[rustfmt::skip]
const SCHEDULE_LAT: Param = to(req("latitude", Num(-90.0, 90.0), "Latitude of the place the schedule applies to (usually home)."), To::Body("lat"));
#[rustfmt::skip]
const SCHEDULE_LON: Param = to(req("longitude", Num(-180.0, 180.0), "Longitude of that place."), To::Body("lon"));
#[rustfmt::skip]
const SCHEDULE_ID: Param = to(req("schedule_id", Int(0, i64::MAX), "Schedule id, from vehicle_data's charge_schedule_data / preconditioning_schedule_data."), To::Body("id"));
#[rustfmt::skip]
const HISTORY_START: Param = to(req("start_date", Str, "Start, RFC 3339 with offset (e.g. 2026-11-01T00:00:00-08:00)."), To::Query("start_date"));
#[rustfmt::skip]
const HISTORY_END: Param = to(req("end_date", Str, "End, RFC 3339 with offset."), To::Query("end_date"));
#[rustfmt::skip]
const PERIOD: Param = query("period", Choice(&["day", "week", "month", "year", "lifetime"]), "Aggregation period.");
#[rustfmt::skip]
const TIME_ZONE: Param = query("time_zone", Str, "IANA time zone, e.g. Europe/Paris.");
#[rustfmt::skip]
const CHARGING_FILTERS: &[Param] = &[
    query("vin", Str, "Only this vehicle."),
    to(query("page", Int(0, 10_000), "Page number, from 0."), To::Query("pageNo")),
    to(query("page_size", Int(1, 100), "Results per page."), To::Query("pageSize")),
    to(query("start_time", Str, "Earliest session start, RFC 3339."), To::Query("startTime")),
    to(query("end_time", Str, "Latest session start, RFC 3339."), To::Query("endTime")),
    to(query("sort_by", Str, "Field to sort by, e.g. chargeStartDateTime."), To::Query("sortBy")),
    to(query("sort_order", Choice(&["ASC", "DESC"]), "Sort order."), To::Query("sortOrder")),
];

#[rustfmt::skip]
pub const ENDPOINTS: &[Endpoint] = &[
    // Vehicles and account.
    row("list_vehicles_and_energy_sites", Account("GET", "/api/1/products"), Read,
        "List the account's vehicles (vin, id, display_name, state) and energy sites (energy_site_id, site_name). Call first: other tools take a vehicle_tag (VIN) or energy_site_id from here.", &[]),
    row("get_vehicle", Vehicle("GET", ""), Read,
        "Basic information about one vehicle, including its state (online, asleep, offline). Cheap and does not wake the car: use it to check whether the car is awake.", &[]),
    row("get_vehicle_data", Vehicle("GET", "vehicle_data"), Read,
        "Live data of an awake car: charge_state, climate_state, drive_state, vehicle_state, vehicle_config, gui_settings (Tesla units: miles, mph, °C). Location needs endpoints containing location_data on firmware 2023.38+. An asleep car answers 'offline or asleep' unless wake is true. For a compact summary in km use vehicle_state.",
        &[Param { arg: "endpoints", to: To::QueryJoined("endpoints"), ty: Strs, required: false,
                  doc: "Sections to return: charge_state, climate_state, closures_state, drive_state, gui_settings, location_data, charge_schedule_data, preconditioning_schedule_data, vehicle_config, vehicle_state, vehicle_data_combo." }]),
    row("wake_up_vehicle", Vehicle("POST", "wake_up"), Act,
        "Wake the car. Returns at once; the car is online 10-30 s later (check with get_vehicle). Commands wake the car by themselves, so this is rarely needed. Waking drains the battery and Tesla bills and rate-limits wakes.", &[]),
    row("get_mobile_enabled", Vehicle("GET", "mobile_enabled"), Read,
        "Whether mobile access (the Tesla app and third-party apps) is enabled in the car.", &[]),
    row("get_nearby_charging_sites", Vehicle("GET", "nearby_charging_sites"), Read,
        "Superchargers and destination chargers near the car, with distance and, for Superchargers, available stalls.",
        &[query("count", Int(1, 100), "How many sites to return."),
          query("radius", Int(1, 1000), "Search radius in miles."),
          query("detail", Bool, "Include site details.")]),
    row("get_service_data", Vehicle("GET", "service_data"), Read, "The car's service status (in service or not, and the service visit).", &[]),
    row("get_release_notes", Vehicle("GET", "release_notes"), Read,
        "Release notes of the installed (or staged) firmware.",
        &[query("staged", Bool, "true for the notes of the downloaded update waiting to install."),
          query("language", Int(0, 1000), "Language code number.")]),
    row("get_recent_alerts", Vehicle("GET", "recent_alerts"), Read, "Recent alerts the car raised (name, time, audience).", &[]),
    row("get_fleet_status", Account("POST", "/api/1/vehicles/fleet_status"), Read,
        "For each VIN: firmware version, whether the app's virtual key is paired, and whether the car requires signed commands (vehicle_command_protocol_required).",
        &[req("vins", Strs, "VINs to check.")]),
    row("get_vehicle_options", Account("GET", "/api/1/dx/vehicles/options"), Read, "The car's factory options (codes and names).", &[VIN_QUERY]),
    row("get_eligible_upgrades", Account("GET", "/api/1/dx/vehicles/upgrades/eligibility"), Read, "Software upgrades the car can buy.", &[VIN_QUERY]),
    row("get_eligible_subscriptions", Account("GET", "/api/1/dx/vehicles/subscriptions/eligibility"), Read, "Subscriptions (e.g. connectivity) the car can take.", &[VIN_QUERY]),
    row("get_drivers", Vehicle("GET", "drivers"), Read, "People allowed to drive the car (owner only).", &[]),
    row("remove_driver", Vehicle("DELETE", "drivers"), Danger, "Remove a driver's access to the car (owner only).",
        &[query("share_user_id", Str, "The driver's share_user_id from get_drivers; omit to remove your own access.")]),
    row("get_share_invites", Vehicle("GET", "invitations"), Read, "Active share invitations of the car.",
        &[query("page", Int(1, 10_000), "Page number."), query("page_size", Int(1, 100), "Results per page.")]),
    row("create_share_invite", Vehicle("POST", "invitations"), Act,
        "Create a single-use invitation link (valid 24 h) that gives someone driver access.", &[]),
    row("get_fleet_telemetry_config", Vehicle("GET", "fleet_telemetry_config"), Read, "The car's fleet telemetry streaming configuration.", &[]),
    row("delete_fleet_telemetry_config", Vehicle("DELETE", "fleet_telemetry_config"), Danger, "Stop the car streaming fleet telemetry to this application.", &[]),
    row("get_fleet_telemetry_errors", Vehicle("GET", "fleet_telemetry_errors"), Read, "Recent errors of the car's fleet telemetry client.", &[]),
    row("get_subscriptions", Account("GET", "/api/1/subscriptions"), Read, "Push-notification subscriptions of a mobile device.",
        &[query("device_token", Str, "The device's push token.")]),
    row("set_subscriptions", Account("POST", "/api/1/subscriptions"), Set, "Subscribe a mobile device to push notifications of vehicles.",
        &[req("device_token", Str, "The device's push token."), req("vehicle_ids", Ints, "Numeric vehicle ids.")]),
    row("get_vehicle_subscriptions", Account("GET", "/api/1/vehicle_subscriptions"), Read, "Vehicle push-notification subscriptions.", &[]),
    row("set_vehicle_subscriptions", Account("POST", "/api/1/vehicle_subscriptions"), Set, "Set vehicle push-notification subscriptions.",
        &[req("vehicle_ids", Ints, "Numeric vehicle ids.")]),
    row("get_warranty_details", Account("GET", "/api/1/dx/warranty/details"), Read, "Warranty coverage of a vehicle (or of all the account's vehicles).",
        &[query("vin", Str, "Vehicle VIN; omit for every vehicle.")]),
    row("get_user_info", Account("GET", "/api/1/users/me"), Read, "The signed-in user's name, email and profile.", &[]),
    row("get_user_feature_config", Account("GET", "/api/1/users/feature_config"), Read, "Feature flags of the user's account.", &[]),
    row("get_user_region", Account("GET", "/api/1/users/region"), Read, "The user's region and the Fleet API base URL to use for it.", &[]),
    row("get_user_orders", Account("GET", "/api/1/users/orders"), Read, "The user's vehicle orders.", &[]),

    // Doors, trunks, windows.
    row("door_lock", Command, Set, "Lock the doors.", &[]),
    row("door_unlock", Command, Danger, "Unlock the doors. Only when the user clearly asked: anyone near the car can then open it.", &[]),
    row("actuate_trunk", Command, Danger, "Open the front trunk, or open/close the rear trunk (a powered rear trunk toggles).",
        &[req("which_trunk", Choice(&["front", "rear"]), "front (frunk, opens only) or rear.")]),
    row("window_control", Command, Set, "Vent or close all windows.",
        &[req("command", Choice(&["vent", "close"]), "vent or close."),
          opt("lat", Num(-90.0, 90.0), "User's latitude; older cars need it (with lon) to close windows."),
          opt("lon", Num(-180.0, 180.0), "User's longitude.")]),
    row("sun_roof_control", Command, Set, "Move the panoramic sunroof (older Model S only).",
        &[req("state", Choice(&["vent", "close", "stop"]), "vent, close or stop.")]),

    // Climate.
    row("auto_conditioning_start", Command, Set, "Start climate control at the set temperature.", &[]),
    row("auto_conditioning_stop", Command, Set, "Stop climate control.", &[]),
    row("set_temps", Command, Set, "Set the cabin temperatures in °C (whatever the car's display units). Both are sent, as Tesla requires.",
        &[req("driver_temp", Num(15.0, 28.0), "Driver side, °C (15-28)."),
          req("passenger_temp", Num(15.0, 28.0), "Passenger side, °C (15-28).")]),
    row("set_climate_keeper_mode", Command, Set, "Keep climate running while parked: 0 off, 1 keep, 2 dog mode, 3 camp mode.",
        &[req("climate_keeper_mode", Int(0, 3), "0 off, 1 keep, 2 dog, 3 camp."),
          opt("manual_override", Bool, "Override the car's automatic decisions.")]),
    row("set_bioweapon_mode", Command, Set, "Turn Bioweapon Defense Mode (HEPA max filtration) on or off.",
        &[ON, req("manual_override", Bool, "Override the car's automatic decisions (Tesla requires the key).")]),
    row("set_cabin_overheat_protection", Command, Set, "Turn cabin overheat protection on or off, optionally fan only.",
        &[ON, opt("fan_only", Bool, "Use the fan only, no air conditioning.")]),
    row("set_cop_temp", Command, Set, "Temperature at which cabin overheat protection starts: 0 low (30 °C), 1 medium (35 °C), 2 high (40 °C).",
        &[to(req("cop_level", Int(0, 2), "0 low, 1 medium, 2 high."), To::Body("cop_temp"))]),
    row("set_preconditioning_max", Command, Set, "Turn max preconditioning (defrost, highest heat) on or off.",
        &[ON, opt("manual_override", Bool, "Override the car's automatic decisions.")]),
    row("remote_seat_heater_request", Command, Set,
        "Set a seat heater level. Seats: 0 front left, 1 front right, 2 rear left, 4 rear center, 5 rear right, 6 third row left, 7 third row right. Levels 0 off to 3 high. Climate must be on.",
        &[to(req("heater", Int(0, 8), "Seat number."), To::Bodies(&["heater", "seat_position"])),
          req("level", Int(0, 3), "0 off, 1 low, 2 medium, 3 high.")]),
    row("remote_seat_cooler_request", Command, Set, "Set a front seat's ventilation: seat 1 front left, 2 front right; level 0 off to 3 high.",
        &[req("seat_position", Int(1, 2), "1 front left, 2 front right."), req("seat_cooler_level", Int(0, 3), "0 off to 3 high.")]),
    row("remote_auto_seat_climate_request", Command, Set, "Let the car manage a front seat's heating/cooling automatically.",
        &[req("auto_seat_position", Int(1, 2), "1 front left, 2 front right."), req("auto_climate_on", Bool, "true for automatic.")]),
    row("remote_steering_wheel_heater_request", Command, Set, "Turn the steering wheel heater on or off.", &[ON]),
    row("remote_steering_wheel_heat_level_request", Command, Set, "Set the steering wheel heat level: 0 off, 1 low, 3 high.",
        &[req("level", Int(0, 3), "0 off, 1 low, 3 high.")]),
    row("remote_auto_steering_wheel_heat_climate_request", Command, Set, "Let the car manage the steering wheel heater automatically.", &[ON]),

    // Charging.
    row("charge_start", Command, Set, "Start charging (the cable must be connected).", &[]),
    row("charge_stop", Command, Set, "Stop charging.", &[]),
    row("charge_port_door_open", Command, Set, "Open the charge port door (unlocks a connected cable).", &[]),
    row("charge_port_door_close", Command, Set, "Close the charge port door.", &[]),
    row("set_charge_limit", Command, Set, "Set the charge limit in percent (50-100; 80-90 for daily use).",
        &[req("percent", Int(50, 100), "Charge limit, %.")]),
    row("charge_standard", Command, Set, "Set the charge limit to the standard (daily) level.", &[]),
    row("charge_max_range", Command, Set, "Set the charge limit to 100 % for a trip.", &[]),
    row("set_charging_amps", Command, Set, "Set the charging current in amperes (up to charge_state.charge_current_request_max).",
        &[req("charging_amps", Int(0, 80), "Amperes.")]),
    row("set_scheduled_charging", Command, Set, "Turn scheduled charging on or off; time is when charging starts, in minutes after midnight (car's local time).",
        &[req("enable", Bool, "true to schedule."), req("time", Int(0, 1439), "Minutes after midnight, e.g. 120 = 02:00.")]),
    row("add_charge_schedule", Command, Act,
        "Add a charge schedule at a place: charge between start_time and end_time (minutes after midnight) on the given days. Returns nothing: read charge_schedule_data to see its id.",
        &[DAYS, req("enabled", Bool, "Whether the schedule is active."),
          opt("start_enabled", Bool, "Whether start_time applies."), opt("start_time", Int(0, 1439), "Start, minutes after midnight."),
          opt("end_enabled", Bool, "Whether end_time applies."), opt("end_time", Int(0, 1439), "End, minutes after midnight."),
          SCHEDULE_LAT, SCHEDULE_LON, opt("one_time", Bool, "Run once, then delete."),
          opt("id", Int(0, i64::MAX), "Existing schedule id to replace.")]),
    row("remove_charge_schedule", Command, Danger, "Delete a charge schedule.", &[SCHEDULE_ID]),
    row("add_precondition_schedule", Command, Act,
        "Add a preconditioning schedule: the cabin is ready at precondition_time (minutes after midnight) on the given days.",
        &[DAYS, req("enabled", Bool, "Whether the schedule is active."),
          req("precondition_time", Int(0, 1439), "When the car should be ready, minutes after midnight."),
          SCHEDULE_LAT, SCHEDULE_LON, opt("one_time", Bool, "Run once, then delete."),
          opt("id", Int(0, i64::MAX), "Existing schedule id to replace.")]),
    row("remove_precondition_schedule", Command, Danger, "Delete a preconditioning schedule.", &[SCHEDULE_ID]),

    // Lights, sound, media, navigation.
    row("flash_lights", Command, Act, "Flash the headlights once.", &[]),
    row("honk_horn", Command, Act, "Honk the horn once.", &[]),
    row("remote_boombox", Command, Act, "Play a sound from the external speaker: 0 random fart, 2000 locate ping.",
        &[req("sound", Int(0, 2000), "0 fart, 2000 locate ping.")]),
    row("adjust_volume", Command, Set, "Set the media volume (0-11). Someone must be in the car.",
        &[req("volume", Num(0.0, 11.0), "Volume, 0 to 11.")]),
    row("media_toggle_playback", Command, Act, "Play or pause the media. Someone must be in the car.", &[]),
    row("media_next_track", Command, Act, "Next track.", &[]),
    row("media_prev_track", Command, Act, "Previous track.", &[]),
    row("media_next_fav", Command, Act, "Next favourite.", &[]),
    row("media_prev_fav", Command, Act, "Previous favourite.", &[]),
    row("media_volume_down", Command, Act, "Turn the volume down one step.", &[]),
    with_fixed(
        row("navigation_request", Command, Act, "Send an address or place name to the car's navigation.",
            &[to(req("address", Str, "Address or place name, e.g. 'SFO Airport'."), To::Nested("value", "android.intent.extra.TEXT")),
              opt("locale", Str, "Locale of the text, e.g. en-US.")]),
        &[Fixed::Body("type", "share_ext_content_raw"), Fixed::BodyNowMs("timestamp_ms")],
    ),
    row("navigation_gps_request", Command, Act, "Send coordinates to the car's navigation.",
        &[req("lat", Num(-90.0, 90.0), "Latitude."), req("lon", Num(-180.0, 180.0), "Longitude."),
          opt("order", Int(0, 100), "Position of this stop in a trip.")]),
    row("navigation_sc_request", Command, Act, "Navigate to a Supercharger.",
        &[req("id", Int(0, i64::MAX), "Supercharger id (from get_nearby_charging_sites)."), opt("order", Int(0, 100), "Position of this stop in a trip.")]),
    row("trigger_homelink", Command, Danger, "Press HomeLink (opens or closes a garage door) near the given position.",
        &[req("lat", Num(-90.0, 90.0), "Car's latitude."), req("lon", Num(-180.0, 180.0), "Car's longitude.")]),

    // Security.
    row("set_sentry_mode", Command, Set, "Turn Sentry Mode on or off.", &[ON]),
    row("set_valet_mode", Command, Danger, "Turn Valet Mode on or off, with an optional 4-digit PIN.",
        &[ON, opt("password", Str, "4-digit valet PIN.")]),
    row("reset_valet_pin", Command, Danger, "Clear the valet PIN.", &[]),
    row("speed_limit_set_limit", Command, Set, "Set the speed limit in mph (50-120).", &[req("limit_mph", Num(50.0, 120.0), "Limit in mph.")]),
    row("speed_limit_activate", Command, Danger, "Activate Speed Limit Mode with its PIN.", &[PIN]),
    row("speed_limit_deactivate", Command, Danger, "Deactivate Speed Limit Mode with its PIN.", &[PIN]),
    row("speed_limit_clear_pin", Command, Danger, "Clear the Speed Limit Mode PIN.", &[PIN]),
    row("speed_limit_clear_pin_admin", Command, Danger, "Clear the Speed Limit Mode PIN as fleet manager (no PIN needed).", &[]),
    row("set_pin_to_drive", Command, Danger, "Turn PIN to Drive on or off.", &[ON, opt("password", Str, "4-digit PIN.")]),
    row("reset_pin_to_drive_pin", Command, Danger, "Clear the PIN to Drive PIN.", &[]),
    row("clear_pin_to_drive_admin", Command, Danger, "Turn PIN to Drive off as fleet manager.", &[]),
    row("remote_start_drive", Command, Danger, "Allow keyless driving for two minutes. Only when the user is at the car and asked for it.", &[]),
    row("guest_mode", Command, Set, "Turn Guest Mode on or off (limits what a guest driver can see and do).",
        &[to(req("on", Bool, "true to turn on."), To::Body("enable"))]),
    row("erase_user_data", Command, Danger, "Erase user data (profiles, history) from the car's screen. Cannot be undone.", &[]),

    // Software and name.
    row("schedule_software_update", Command, Danger, "Install the downloaded update after offset_sec seconds (0 = now). The car cannot be driven while installing.",
        &[req("offset_sec", Int(0, 86_400), "Delay in seconds.")]),
    row("cancel_software_update", Command, Set, "Cancel a scheduled update.", &[]),
    row("set_vehicle_name", Command, Set, "Rename the car.", &[req("vehicle_name", Str, "New name.")]),

    // Energy sites.
    row("energy_site_info", Site("GET", "site_info"), Read, "Site configuration: components, backup reserve, operation mode, tariff.", &[]),
    row("energy_live_status", Site("GET", "live_status"), Read, "Live power flows in W (solar, battery, grid, load) and battery charge %.", &[]),
    with_fixed(row("energy_history", Site("GET", "calendar_history"), Read, "Energy totals (Wh) per period between two dates.",
        &[HISTORY_START, HISTORY_END, PERIOD, TIME_ZONE]), &[Fixed::Query("kind", "energy")]),
    with_fixed(row("energy_backup_history", Site("GET", "calendar_history"), Read, "Grid outages the site rode through (backup events).",
        &[HISTORY_START, HISTORY_END, PERIOD, TIME_ZONE]), &[Fixed::Query("kind", "backup")]),
    with_fixed(row("energy_charge_history", Site("GET", "telemetry_history"), Read, "Wall Connector charging history.",
        &[HISTORY_START, HISTORY_END, TIME_ZONE]), &[Fixed::Query("kind", "charge")]),
    row("energy_operation", Site("POST", "operation"), Set, "Set the Powerwall operation mode.",
        &[req("default_real_mode", Choice(&["self_consumption", "autonomous", "backup"]), "self_consumption, autonomous (time-based control) or backup.")]),
    row("energy_backup", Site("POST", "backup"), Set, "Set the backup reserve in percent.",
        &[req("backup_reserve_percent", Int(0, 100), "Reserve kept for outages, %.")]),
    row("energy_off_grid_vehicle_charging_reserve", Site("POST", "off_grid_vehicle_charging_reserve"), Set,
        "Battery level below which the Powerwall stops charging vehicles during an outage.",
        &[req("off_grid_vehicle_charging_reserve_percent", Int(0, 100), "Percent.")]),
    row("energy_storm_mode", Site("POST", "storm_mode"), Set, "Turn Storm Watch on or off.", &[req("enabled", Bool, "true to turn on.")]),
    row("energy_grid_import_export", Site("POST", "grid_import_export"), Set, "Grid charging and export rules.",
        &[opt("disallow_charge_from_grid_with_solar_installed", Bool, "true forbids charging the battery from the grid."),
          opt("customer_preferred_export_rule", Choice(&["pv_only", "battery_ok", "never"]), "What may be exported.")]),
    row("energy_time_of_use_settings", Site("POST", "time_of_use_settings"), Danger, "Replace the site's utility rate plan.",
        &[to(req("tou_settings", Object, "Tesla's tou_settings object holding tariff_content_v2, or the tariff_content_v2 object itself."), To::NestedUnlessWrapped("tou_settings", "tariff_content_v2"))]),

    // Supercharging.
    row("charging_history", Account("GET", "/api/1/dx/charging/history"), Read, "Paid Supercharger sessions with fees.", CHARGING_FILTERS),
    row("charging_invoice", Account("GET", "/api/1/dx/charging/invoice/{invoice_id}"), Read, "The PDF invoice of a charging session (returned as text).",
        &[to(req("invoice_id", Str, "Invoice id from charging_history."), To::Path)]),
    row("charging_sessions", Account("GET", "/api/1/dx/charging/sessions"), Read, "Charging sessions with pricing and energy (business fleet accounts only).",
        &[query("vin", Str, "Only this vehicle."),
          to(query("start_time", Str, "From, RFC 3339."), To::Query("date_from")),
          to(query("end_time", Str, "To, RFC 3339."), To::Query("date_to")),
          to(query("page_size", Int(1, 100), "Results per page."), To::Query("limit")),
          to(query("page", Int(0, 10_000), "Results to skip."), To::Query("offset"))]),
];
