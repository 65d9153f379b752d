//! `UniversalMessage.MessageFault_E`: why a car refused a message at the protocol layer.

/// A protocol-layer refusal, with what it means for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault(pub i32);

impl Fault {
    pub const BUSY: Fault = Fault(1);
    pub const TIMEOUT: Fault = Fault(2);
    pub const UNKNOWN_KEY_ID: Fault = Fault(3);
    pub const INACTIVE_KEY: Fault = Fault(4);
    pub const INVALID_SIGNATURE: Fault = Fault(5);
    pub const INVALID_TOKEN_OR_COUNTER: Fault = Fault(6);
    pub const INSUFFICIENT_PRIVILEGES: Fault = Fault(7);
    pub const INVALID_DOMAINS: Fault = Fault(8);
    pub const INVALID_COMMAND: Fault = Fault(9);
    pub const DECODING: Fault = Fault(10);
    pub const INTERNAL: Fault = Fault(11);
    pub const WRONG_PERSONALIZATION: Fault = Fault(12);
    pub const BAD_PARAMETER: Fault = Fault(13);
    pub const INCORRECT_EPOCH: Fault = Fault(15);
    pub const TIME_EXPIRED: Fault = Fault(17);
    pub const TIME_TO_LIVE_TOO_LONG: Fault = Fault(20);
    pub const REMOTE_ACCESS_DISABLED: Fault = Fault(21);

    pub fn from_code(code: i32) -> Fault {
        Fault(code)
    }

    /// The session went out of step with the car (restart, lost or reordered messages): the
    /// session info that comes with the fault, or a new handshake, puts it right.
    pub fn is_out_of_sync(self) -> bool {
        matches!(
            self,
            Fault::INVALID_SIGNATURE
                | Fault::INVALID_TOKEN_OR_COUNTER
                | Fault::INCORRECT_EPOCH
                | Fault::TIME_EXPIRED
        )
    }

    /// The key is not (or no longer) one the car accepts: only the owner can fix it.
    pub fn is_key_refused(self) -> bool {
        matches!(self, Fault::UNKNOWN_KEY_ID | Fault::INACTIVE_KEY)
    }

    /// Tesla's name for the fault.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "BUSY",
            2 => "TIMEOUT",
            3 => "UNKNOWN_KEY_ID",
            4 => "INACTIVE_KEY",
            5 => "INVALID_SIGNATURE",
            6 => "INVALID_TOKEN_OR_COUNTER",
            7 => "INSUFFICIENT_PRIVILEGES",
            8 => "INVALID_DOMAINS",
            9 => "INVALID_COMMAND",
            10 => "DECODING",
            11 => "INTERNAL",
            12 => "WRONG_PERSONALIZATION",
            13 => "BAD_PARAMETER",
            14 => "KEYCHAIN_IS_FULL",
            15 => "INCORRECT_EPOCH",
            16 => "IV_INCORRECT_LENGTH",
            17 => "TIME_EXPIRED",
            18 => "NOT_PROVISIONED_WITH_IDENTITY",
            19 => "COULD_NOT_HASH_METADATA",
            20 => "TIME_TO_LIVE_TOO_LONG",
            21 => "REMOTE_ACCESS_DISABLED",
            22 => "REMOTE_SERVICE_ACCESS_DISABLED",
            23 => "COMMAND_REQUIRES_ACCOUNT_CREDENTIALS",
            24 => "REQUEST_MTU_EXCEEDED",
            25 => "RESPONSE_MTU_EXCEEDED",
            26 => "REPEATED_COUNTER",
            27 => "INVALID_KEY_HANDLE",
            28 => "REQUIRES_RESPONSE_ENCRYPTION",
            _ => "UNKNOWN_FAULT",
        }
    }

    /// What the fault means and what to do, for the person at the other end.
    pub fn explain(self) -> &'static str {
        match self.0 {
            1 => "the car's subsystem is busy; try again in a moment",
            2 => "the car's subsystem did not answer in time; try again",
            3 => "the car does not know this key: it has not been paired with the car",
            4 => "this key has been disabled on the car",
            5 => "the command's signature was not accepted",
            6 => "the command's anti-replay counter was already used",
            7 => "this key's role, or the car's current state, does not allow the command",
            8 => "the command went to a part of the car that does not handle it (older firmware?)",
            9 => "the car does not know this command (older firmware?)",
            10 => "the car could not decode the command",
            11 => "internal error in the car (often while it is still starting up); try again",
            12 => "the command was signed for another VIN",
            13 => "the car refused a parameter of the command",
            14 => "the car's keychain is full",
            15 => "the car restarted since the session began (new epoch)",
            16 => "wrong nonce length",
            17 => "the command expired before the car received it",
            18 => "the car has not been provisioned with its VIN and may need service",
            19 => "internal error in the car",
            20 => "the command's expiry was too far in the future",
            21 => "the owner has turned off mobile access in the car",
            22 => "remote service commands are not enabled on the car",
            23 => "the command must be sent through the Fleet API",
            24 | 25 => "the message was too large",
            26 => "the counter was already used",
            27 => "unknown key handle",
            28 => "the car requires encrypted responses",
            _ => "the car refused the command",
        }
    }
}
