//! The protocol's messages, written by hand with `prost` derive from Tesla's `.proto` files
//! (`universal_message.proto`, `signatures.proto`, the answers of `car_server.proto` and
//! `vcsec.proto`). Only the fields carport reads or writes are declared: protobuf skips the others.

use prost::{Message, Oneof};

/// `UniversalMessage.Domain`: which part of the car a message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum Domain {
    Broadcast = 0,
    /// VCSEC: locks, trunks, keyless driving.
    VehicleSecurity = 2,
    /// Everything else (climate, charging, media, …).
    Infotainment = 3,
}

impl Domain {
    pub fn name(self) -> &'static str {
        match self {
            Domain::Broadcast => "broadcast",
            Domain::VehicleSecurity => "vehicle security (VCSEC)",
            Domain::Infotainment => "infotainment",
        }
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct Destination {
    #[prost(oneof = "SubDestination", tags = "1, 2")]
    pub sub_destination: Option<SubDestination>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum SubDestination {
    #[prost(enumeration = "Domain", tag = "1")]
    Domain(i32),
    #[prost(bytes, tag = "2")]
    RoutingAddress(Vec<u8>),
}

impl Destination {
    pub fn domain(domain: Domain) -> Destination {
        Destination {
            sub_destination: Some(SubDestination::Domain(domain as i32)),
        }
    }

    pub fn routing_address(address: Vec<u8>) -> Destination {
        Destination {
            sub_destination: Some(SubDestination::RoutingAddress(address)),
        }
    }

    pub fn as_domain(&self) -> Option<Domain> {
        match &self.sub_destination {
            Some(SubDestination::Domain(domain)) => Domain::try_from(*domain).ok(),
            _ => None,
        }
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct SessionInfoRequest {
    #[prost(bytes, tag = "1")]
    pub public_key: Vec<u8>,
    #[prost(bytes, tag = "2")]
    pub challenge: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct MessageStatus {
    #[prost(int32, tag = "1")]
    pub operation_status: i32,
    #[prost(int32, tag = "2")]
    pub signed_message_fault: i32,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum Payload {
    /// A `VCSEC.UnsignedMessage` or a `CarServer.Action` (requests), their answers (replies).
    #[prost(bytes, tag = "10")]
    ProtobufMessageAsBytes(Vec<u8>),
    #[prost(message, tag = "14")]
    SessionInfoRequest(SessionInfoRequest),
    /// An encoded [`SessionInfo`]; kept as bytes because its tag covers these exact bytes.
    #[prost(bytes, tag = "15")]
    SessionInfo(Vec<u8>),
}

/// The envelope of every message to and from the car.
#[derive(Clone, PartialEq, Message)]
pub struct RoutableMessage {
    #[prost(message, optional, tag = "6")]
    pub to_destination: Option<Destination>,
    #[prost(message, optional, tag = "7")]
    pub from_destination: Option<Destination>,
    #[prost(oneof = "Payload", tags = "10, 14, 15")]
    pub payload: Option<Payload>,
    #[prost(message, optional, tag = "12")]
    pub signed_message_status: Option<MessageStatus>,
    #[prost(message, optional, tag = "13")]
    pub signature_data: Option<SignatureData>,
    #[prost(bytes, tag = "50")]
    pub request_uuid: Vec<u8>,
    #[prost(bytes, tag = "51")]
    pub uuid: Vec<u8>,
    #[prost(uint32, tag = "52")]
    pub flags: u32,
}

impl RoutableMessage {
    /// The fault the car reported at the protocol layer, if any.
    pub fn fault(&self) -> Option<crate::Fault> {
        let code = self.signed_message_status.as_ref()?.signed_message_fault;
        (code != 0).then(|| crate::Fault::from_code(code))
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyIdentity {
    #[prost(oneof = "IdentityType", tags = "1, 3")]
    pub identity_type: Option<IdentityType>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum IdentityType {
    #[prost(bytes, tag = "1")]
    PublicKey(Vec<u8>),
    #[prost(uint32, tag = "3")]
    Handle(u32),
}

#[derive(Clone, PartialEq, Message)]
pub struct HmacSignatureData {
    #[prost(bytes, tag = "1")]
    pub tag: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct HmacPersonalizedSignatureData {
    #[prost(bytes, tag = "1")]
    pub epoch: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub counter: u32,
    #[prost(fixed32, tag = "3")]
    pub expires_at: u32,
    #[prost(bytes, tag = "4")]
    pub tag: Vec<u8>,
}

/// Present when the car encrypted its answer (requests with `FLAG_ENCRYPT_RESPONSE`).
#[derive(Clone, PartialEq, Message)]
pub struct AesGcmResponseSignatureData {
    #[prost(bytes, tag = "1")]
    pub nonce: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub counter: u32,
    #[prost(bytes, tag = "3")]
    pub tag: Vec<u8>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum SignatureType {
    #[prost(message, tag = "6")]
    SessionInfoTag(HmacSignatureData),
    #[prost(message, tag = "8")]
    HmacPersonalizedData(HmacPersonalizedSignatureData),
    #[prost(message, tag = "9")]
    AesGcmResponseData(AesGcmResponseSignatureData),
}

#[derive(Clone, PartialEq, Message)]
pub struct SignatureData {
    #[prost(message, optional, tag = "1")]
    pub signer_identity: Option<KeyIdentity>,
    #[prost(oneof = "SignatureType", tags = "6, 8, 9")]
    pub sig_type: Option<SignatureType>,
}

impl SignatureData {
    pub fn signer_public_key(&self) -> Option<&[u8]> {
        match self.signer_identity.as_ref()?.identity_type.as_ref()? {
            IdentityType::PublicKey(key) => Some(key),
            IdentityType::Handle(_) => None,
        }
    }
}

/// `Signatures.Session_Info_Status`.
pub const SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST: i32 = 1;

/// A domain's answer to a handshake: its clock, counter and public key.
#[derive(Clone, PartialEq, Message)]
pub struct SessionInfo {
    #[prost(uint32, tag = "1")]
    pub counter: u32,
    #[prost(bytes, tag = "2")]
    pub public_key: Vec<u8>,
    #[prost(bytes, tag = "3")]
    pub epoch: Vec<u8>,
    /// Seconds since the epoch began, on the domain's clock.
    #[prost(fixed32, tag = "4")]
    pub clock_time: u32,
    #[prost(int32, tag = "5")]
    pub status: i32,
    #[prost(uint32, tag = "6")]
    pub handle: u32,
}

/// `CarServer.Response`: the infotainment domain's answer to an action.
#[derive(Clone, PartialEq, Message)]
pub struct CarServerResponse {
    #[prost(message, optional, tag = "1")]
    pub action_status: Option<ActionStatus>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ActionStatus {
    /// 0 OK, 1 error.
    #[prost(int32, tag = "1")]
    pub result: i32,
    #[prost(message, optional, tag = "2")]
    pub result_reason: Option<ResultReason>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResultReason {
    #[prost(string, tag = "1")]
    pub plain_text: String,
}

/// `VCSEC.FromVCSECMessage`, reduced to what says whether a command worked.
#[derive(Clone, PartialEq, Message)]
pub struct FromVcsecMessage {
    #[prost(message, optional, tag = "4")]
    pub command_status: Option<VcsecCommandStatus>,
    #[prost(message, optional, tag = "46")]
    pub nominal_error: Option<NominalError>,
}

#[derive(Clone, PartialEq, Message)]
pub struct VcsecCommandStatus {
    /// 0 OK, 1 wait (busy), 2 error.
    #[prost(int32, tag = "1")]
    pub operation_status: i32,
}

/// `Errors.NominalError`.
#[derive(Clone, PartialEq, Message)]
pub struct NominalError {
    #[prost(int32, tag = "1")]
    pub generic_error: i32,
}

impl NominalError {
    /// What `Errors.GenericError_E` means, in words.
    pub fn explain(&self) -> &'static str {
        match self.generic_error {
            2 => "a door, trunk or window is open",
            3 => "it is already in that state",
            4 => "the owner disabled this command for this user",
            5 => "the vehicle is not in Park",
            6 => "this key is not authorised for it",
            7 => "it is not allowed over this connection",
            _ => "unknown reason",
        }
    }
}
