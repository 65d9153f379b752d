//! Building tool descriptions with little ceremony.

use serde_json::Value;

use crate::{Annotations, Tool};

impl Annotations {
    /// Reads vendor data and changes nothing.
    pub const READ: Annotations = Annotations {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: true,
    };
    /// Changes the vehicle; repeating it leaves the same state (lock, set temperature).
    pub const SET: Annotations = Annotations {
        read_only: false,
        destructive: false,
        idempotent: true,
        open_world: true,
    };
    /// Acts on the vehicle; repeating it acts again (honk, toggle the trunk).
    pub const ACT: Annotations = Annotations {
        read_only: false,
        destructive: false,
        idempotent: false,
        open_world: true,
    };
    /// Lowers security or cannot be undone remotely (unlock, erase data).
    pub const DESTRUCTIVE: Annotations = Annotations {
        read_only: false,
        destructive: true,
        idempotent: false,
        open_world: true,
    };
}

impl Tool {
    pub fn new(
        name: &str,
        title: &str,
        description: &str,
        input_schema: Value,
        annotations: Annotations,
    ) -> Tool {
        Tool {
            name: name.to_string(),
            title: title.to_string(),
            description: description.to_string(),
            input_schema: input_schema.to_string(),
            output_schema: None,
            annotations,
        }
    }

    pub fn with_output_schema(mut self, schema: Value) -> Tool {
        self.output_schema = Some(schema.to_string());
        self
    }
}
