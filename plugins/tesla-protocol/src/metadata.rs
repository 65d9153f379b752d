//! The canonical serialisation of signed metadata: tag-length-value items in ascending tag
//! order, closed by 0xFF. Tags from `Signatures.Tag`.

pub const TAG_SIGNATURE_TYPE: u8 = 0;
pub const TAG_DOMAIN: u8 = 1;
pub const TAG_PERSONALIZATION: u8 = 2;
pub const TAG_EPOCH: u8 = 3;
pub const TAG_EXPIRES_AT: u8 = 4;
pub const TAG_COUNTER: u8 = 5;
pub const TAG_CHALLENGE: u8 = 6;
pub const TAG_FLAGS: u8 = 7;
const TAG_END: u8 = 0xFF;

/// `Signatures.SignatureType` values used as metadata.
pub const SIGNATURE_TYPE_AES_GCM_PERSONALIZED: u8 = 5;
pub const SIGNATURE_TYPE_HMAC: u8 = 6;
pub const SIGNATURE_TYPE_HMAC_PERSONALIZED: u8 = 8;

/// Builds a metadata string; items must be added in ascending tag order, as the verifier
/// recomputes it that way.
#[derive(Default)]
pub struct Metadata {
    bytes: Vec<u8>,
    last_tag: Option<u8>,
}

impl Metadata {
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Adds one item. Values are at most 255 bytes (a VIN, an epoch, a challenge).
    pub fn add(mut self, tag: u8, value: &[u8]) -> Metadata {
        assert!(
            self.last_tag.is_none_or(|last| last < tag),
            "metadata tags must ascend"
        );
        let length = u8::try_from(value.len()).expect("metadata values fit in 255 bytes");
        self.bytes.push(tag);
        self.bytes.push(length);
        self.bytes.extend_from_slice(value);
        self.last_tag = Some(tag);
        self
    }

    pub fn add_u32(self, tag: u8, value: u32) -> Metadata {
        self.add(tag, &value.to_be_bytes())
    }

    /// The serialised string, with its end marker.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.push(TAG_END);
        self.bytes
    }
}

/// The metadata an HMAC-personalised command is signed over.
pub fn command_metadata(
    domain: crate::Domain,
    vin: &str,
    epoch: &[u8],
    expires_at: u32,
    counter: u32,
    flags: u32,
) -> Vec<u8> {
    let metadata = Metadata::new()
        .add(TAG_SIGNATURE_TYPE, &[SIGNATURE_TYPE_HMAC_PERSONALIZED])
        .add(TAG_DOMAIN, &[domain as u8])
        .add(TAG_PERSONALIZATION, vin.as_bytes())
        .add(TAG_EPOCH, epoch)
        .add_u32(TAG_EXPIRES_AT, expires_at)
        .add_u32(TAG_COUNTER, counter);
    // Flags are signed only when some are set.
    if flags == 0 {
        metadata.finish()
    } else {
        metadata.add_u32(TAG_FLAGS, flags).finish()
    }
}

/// The metadata a session info answer is tagged over: the challenge is the request's uuid.
pub fn session_info_metadata(vin: &str, challenge: &[u8]) -> Vec<u8> {
    Metadata::new()
        .add(TAG_SIGNATURE_TYPE, &[SIGNATURE_TYPE_HMAC])
        .add(TAG_PERSONALIZATION, vin.as_bytes())
        .add(TAG_CHALLENGE, challenge)
        .finish()
}
