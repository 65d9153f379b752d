//! Application payloads: `CarServer.Action` for infotainment, `VCSEC.UnsignedMessage` for
//! vehicle security, written field by field (proto3 rules: scalar defaults are left out, oneof
//! members always written), and a reader of protobuf fields for whoever has to take them apart.

use prost::bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};

/// Field numbers of `CarServer.VehicleAction`'s oneof, one per action.
pub mod infotainment {
    pub const CHARGING_SET_LIMIT: u32 = 5;
    pub const CHARGING_START_STOP: u32 = 6;
    pub const DRIVING_CLEAR_SPEED_LIMIT_PIN: u32 = 7;
    pub const DRIVING_SET_SPEED_LIMIT: u32 = 8;
    pub const DRIVING_SPEED_LIMIT: u32 = 9;
    pub const HVAC_AUTO: u32 = 10;
    pub const HVAC_SET_PRECONDITIONING_MAX: u32 = 12;
    pub const HVAC_STEERING_WHEEL_HEATER: u32 = 13;
    pub const HVAC_TEMPERATURE_ADJUSTMENT: u32 = 14;
    pub const MEDIA_PLAY: u32 = 15;
    pub const MEDIA_UPDATE_VOLUME: u32 = 16;
    pub const MEDIA_NEXT_FAVORITE: u32 = 17;
    pub const MEDIA_PREVIOUS_FAVORITE: u32 = 18;
    pub const MEDIA_NEXT_TRACK: u32 = 19;
    pub const MEDIA_PREVIOUS_TRACK: u32 = 20;
    pub const CANCEL_SOFTWARE_UPDATE: u32 = 25;
    pub const FLASH_LIGHTS: u32 = 26;
    pub const HONK_HORN: u32 = 27;
    pub const RESET_VALET_PIN: u32 = 28;
    pub const SCHEDULE_SOFTWARE_UPDATE: u32 = 29;
    pub const SET_SENTRY_MODE: u32 = 30;
    pub const SET_VALET_MODE: u32 = 31;
    pub const TRIGGER_HOMELINK: u32 = 33;
    pub const WINDOW: u32 = 34;
    pub const HVAC_BIOWEAPON_MODE: u32 = 35;
    pub const HVAC_SEAT_HEATER: u32 = 36;
    pub const SCHEDULED_CHARGING: u32 = 41;
    pub const SET_CHARGING_AMPS: u32 = 43;
    pub const HVAC_CLIMATE_KEEPER: u32 = 44;
    pub const AUTO_SEAT_CLIMATE: u32 = 48;
    pub const HVAC_SEAT_COOLER: u32 = 49;
    pub const SET_CABIN_OVERHEAT_PROTECTION: u32 = 50;
    pub const SET_VEHICLE_NAME: u32 = 54;
    pub const CHARGE_PORT_DOOR_CLOSE: u32 = 61;
    pub const CHARGE_PORT_DOOR_OPEN: u32 = 62;
    pub const GUEST_MODE: u32 = 65;
    pub const SET_COP_TEMP: u32 = 66;
    pub const ERASE_USER_DATA: u32 = 72;
    pub const SET_PIN_TO_DRIVE: u32 = 77;
    pub const RESET_PIN_TO_DRIVE: u32 = 78;
    pub const DRIVING_CLEAR_SPEED_LIMIT_PIN_ADMIN: u32 = 79;
    pub const RESET_PIN_TO_DRIVE_ADMIN: u32 = 89;
    pub const REMOVE_CHARGE_SCHEDULE: u32 = 98;
    pub const REMOVE_PRECONDITION_SCHEDULE: u32 = 100;
    pub const SET_LOW_POWER_MODE: u32 = 130;
    pub const SET_KEEP_ACCESSORY_POWER_MODE: u32 = 138;

    /// `ChargingStartStopAction`'s oneof members (each an empty `Void`).
    pub const CHARGING_START: u32 = 2;
    pub const CHARGING_START_STANDARD: u32 = 3;
    pub const CHARGING_START_MAX_RANGE: u32 = 4;
    pub const CHARGING_STOP: u32 = 5;
    /// `VehicleControlWindowAction`'s oneof members.
    pub const WINDOW_VENT: u32 = 3;
    pub const WINDOW_CLOSE: u32 = 4;
}

/// `VCSEC.UnsignedMessage` fields and values.
pub mod vcsec {
    pub const RKE_ACTION: u32 = 2;
    pub const CLOSURE_MOVE_REQUEST: u32 = 4;

    pub const RKE_UNLOCK: i32 = 0;
    pub const RKE_LOCK: i32 = 1;
    pub const RKE_REMOTE_DRIVE: i32 = 20;

    /// `ClosureMoveRequest` fields.
    pub const REAR_TRUNK: u32 = 5;
    pub const FRONT_TRUNK: u32 = 6;
    pub const CLOSURE_MOVE: i32 = 1;
}

/// A protobuf message under construction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(Vec<u8>);

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    fn varint(mut self, tag: u32, value: u64) -> Fields {
        if value != 0 {
            encode_key(tag, WireType::Varint, &mut self.0);
            encode_varint(value, &mut self.0);
        }
        self
    }

    pub fn bool(self, tag: u32, value: bool) -> Fields {
        self.varint(tag, u64::from(value))
    }

    /// int32 and enum fields (negative values take ten bytes, as protobuf says).
    pub fn int32(self, tag: u32, value: i32) -> Fields {
        self.varint(tag, i64::from(value) as u64)
    }

    pub fn uint64(self, tag: u32, value: u64) -> Fields {
        self.varint(tag, value)
    }

    pub fn sint32(self, tag: u32, value: i32) -> Fields {
        self.varint(tag, ((value << 1) ^ (value >> 31)) as u32 as u64)
    }

    pub fn float(mut self, tag: u32, value: f32) -> Fields {
        if value != 0.0 {
            encode_key(tag, WireType::ThirtyTwoBit, &mut self.0);
            self.0.extend_from_slice(&value.to_le_bytes());
        }
        self
    }

    pub fn double(mut self, tag: u32, value: f64) -> Fields {
        if value != 0.0 {
            encode_key(tag, WireType::SixtyFourBit, &mut self.0);
            self.0.extend_from_slice(&value.to_le_bytes());
        }
        self
    }

    pub fn string(self, tag: u32, value: &str) -> Fields {
        if value.is_empty() {
            self
        } else {
            self.bytes(tag, value.as_bytes())
        }
    }

    fn bytes(mut self, tag: u32, value: &[u8]) -> Fields {
        encode_key(tag, WireType::LengthDelimited, &mut self.0);
        encode_varint(value.len() as u64, &mut self.0);
        self.0.extend_from_slice(value);
        self
    }

    /// A nested message, written even when empty (oneof members and `Void`s are).
    pub fn message(self, tag: u32, message: Fields) -> Fields {
        self.bytes(tag, &message.0)
    }

    /// An enum member of a oneof: written even when 0.
    pub fn oneof_enum(mut self, tag: u32, value: i32) -> Fields {
        encode_key(tag, WireType::Varint, &mut self.0);
        encode_varint(i64::from(value) as u64, &mut self.0);
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// `CarServer.Action { vehicleAction { <field>: body } }`.
pub fn vehicle_action(field: u32, body: Fields) -> Vec<u8> {
    Fields::new()
        .message(2, Fields::new().message(field, body))
        .into_bytes()
}

/// `VCSEC.UnsignedMessage { RKEAction: action }`.
pub fn rke_action(action: i32) -> Vec<u8> {
    Fields::new()
        .oneof_enum(vcsec::RKE_ACTION, action)
        .into_bytes()
}

/// `VCSEC.UnsignedMessage { closureMoveRequest { <closure>: MOVE } }`.
pub fn closure_move(closure: u32) -> Vec<u8> {
    Fields::new()
        .message(
            vcsec::CLOSURE_MOVE_REQUEST,
            Fields::new().int32(closure, vcsec::CLOSURE_MOVE),
        )
        .into_bytes()
}

/// One field as read from the wire.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Bytes(Vec<u8>),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Varint(value) => Some(*value),
            _ => None,
        }
    }

    pub fn as_f32(&self) -> Option<f32> {
        match self {
            Value::Fixed32(bits) => Some(f32::from_bits(*bits)),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Fixed64(bits) => Some(f64::from_bits(*bits)),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// The fields of an encoded message, in order; None if it is not valid protobuf.
pub fn read_fields(mut bytes: &[u8]) -> Option<Vec<(u32, Value)>> {
    let mut fields = Vec::new();
    while bytes.has_remaining() {
        let (tag, wire_type) = decode_key(&mut bytes).ok()?;
        let value = match wire_type {
            WireType::Varint => Value::Varint(decode_varint(&mut bytes).ok()?),
            WireType::ThirtyTwoBit if bytes.remaining() >= 4 => Value::Fixed32(bytes.get_u32_le()),
            WireType::SixtyFourBit if bytes.remaining() >= 8 => Value::Fixed64(bytes.get_u64_le()),
            WireType::LengthDelimited => {
                let length = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
                if bytes.remaining() < length {
                    return None;
                }
                let (value, rest) = bytes.split_at(length);
                bytes = rest;
                Value::Bytes(value.to_vec())
            }
            _ => return None,
        };
        fields.push((tag, value));
    }
    Some(fields)
}

/// The last value of field `tag` (protobuf's rule for repeated scalars in a singular field).
pub fn field(fields: &[(u32, Value)], tag: u32) -> Option<&Value> {
    fields
        .iter()
        .rev()
        .find(|(candidate, _)| *candidate == tag)
        .map(|(_, value)| value)
}

/// The only field of a oneof wrapper: (field number, its bytes).
pub fn only_message(bytes: &[u8]) -> Option<(u32, Vec<u8>)> {
    match read_fields(bytes)?.as_slice() {
        [(tag, Value::Bytes(inner))] => Some((*tag, inner.clone())),
        _ => None,
    }
}
