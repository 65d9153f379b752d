//! Compact mode (`tool_mode = "compact"`): the same catalogue as four tools for small context
//! windows. `read` and `command` take the operation's name (an enum built from the rows) and
//! the arguments of its full-mode tool; the arguments are checked against the operation's own full-mode
//! schema before anything is sent, then the operation runs exactly as its full-mode tool would,
//! so the requests on the wire are the same. `help` gives one operation's description and
//! arguments, which full mode spreads over a hundred tool descriptions.

use carport_guest::{Annotations, Output, Tool, ToolError, compact};
use serde_json::{Map, Value};

use crate::catalogue::{ENDPOINTS, Effect, Endpoint};
use crate::{VEHICLE_STATE, input_schema_of, response_schema, tool_of, vehicle_state_tool};

pub const SUMMARY: &str = "Tesla vehicles and energy sites through the Fleet API, in four tools: \
     state (a car in km and °C), read {endpoint, arguments} for Tesla's other data (start with \
     list_vehicles_and_energy_sites), command {command, arguments} for the car's commands and \
     the other changes (energy sites, drivers, sharing), and help {operation} for what an \
     operation does and the arguments it takes (vehicle_tag, energy_site_id and wake included).";

const STATE_DOC: &str = "The car in carport's shared vehicle shape (km, km/h, °C; see the \
     output schema). An asleep car is reported as asleep, without live data, unless wake is true.";

/// Which compact tool serves a row.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Group {
    Read,
    /// Everything that is not a read: the car's commands, and the few other writes (energy
    /// sites, drivers, sharing, subscriptions, telemetry, waking the car).
    Command,
}

impl Group {
    const ALL: [Group; 2] = [Group::Read, Group::Command];

    fn of(endpoint: &Endpoint) -> Group {
        if endpoint.effect == Effect::Read {
            Group::Read
        } else {
            Group::Command
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Group::Read => "read",
            Group::Command => "command",
        }
    }

    /// The argument that names the operation.
    fn selector(self) -> &'static str {
        match self {
            Group::Read => "endpoint",
            Group::Command => "command",
        }
    }

    fn members(self) -> impl Iterator<Item = &'static Endpoint> {
        ENDPOINTS
            .iter()
            .filter(move |endpoint| Group::of(endpoint) == self)
    }

    fn described(self) -> Tool {
        let names: Vec<&str> = self.members().map(|endpoint| endpoint.name).collect();
        let (title, description, annotations) = match self {
            Group::Read => (
                "Read Tesla data",
                "Read one Fleet API endpoint.",
                Annotations::READ,
            ),
            Group::Command => (
                "Command",
                "Send one command to the car, or change an energy site, drivers, sharing or \
                 subscriptions.",
                Annotations::DESTRUCTIVE,
            ),
        };
        compact::operations_tool(
            self.tool(),
            title,
            description,
            self.selector(),
            &names,
            annotations,
        )
        .with_output_schema(response_schema())
    }
}

pub fn tools() -> Vec<Tool> {
    let mut tools = vec![vehicle_state_tool("state", STATE_DOC)];
    tools.extend(Group::ALL.map(Group::described));
    tools.push(compact::help_tool());
    tools
}

/// What a compact call comes to.
pub enum Resolved {
    /// Run this full-mode operation with these full-mode arguments.
    Run(&'static str, Map<String, Value>),
    /// Answered without a request.
    Answer(Output),
}

pub fn resolve(tool: &str, arguments: Map<String, Value>) -> Result<Resolved, ToolError> {
    if tool == "state" {
        return Ok(Resolved::Run(VEHICLE_STATE, arguments));
    }
    if tool == "help" {
        let operation = arguments
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return help(operation).map(Resolved::Answer);
    }
    let group = Group::ALL
        .into_iter()
        .find(|group| group.tool() == tool)
        .ok_or_else(|| ToolError::invalid(format!("tesla has no compact tool named {tool}")))?;
    let (name, arguments) = compact::take_operation(arguments, group.selector())?;
    let endpoint = group
        .members()
        .find(|endpoint| endpoint.name == name)
        .ok_or_else(|| ToolError::invalid(format!("{tool} has no operation named {name:?}")))?;
    let arguments = compact::checked(&name, &input_schema_of(endpoint), arguments, &[])?;
    Ok(Resolved::Run(endpoint.name, arguments))
}

fn help(operation: &str) -> Result<Output, ToolError> {
    if operation == VEHICLE_STATE || operation == "state" {
        let tool = vehicle_state_tool("state", crate::VEHICLE_STATE_DOC);
        return Ok(compact::help_answer("state", &tool));
    }
    let endpoint = ENDPOINTS
        .iter()
        .find(|endpoint| endpoint.name == operation)
        .ok_or_else(|| {
            ToolError::invalid(format!(
                "no operation named {operation:?}: the enums of read and command list them \
                 all"
            ))
        })?;
    Ok(compact::help_answer(
        Group::of(endpoint).tool(),
        &tool_of(endpoint),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Route;
    use serde_json::json;

    #[test]
    fn every_row_is_in_exactly_one_compact_tool() {
        let served: usize = Group::ALL.map(|group| group.members().count()).iter().sum();
        assert_eq!(served, ENDPOINTS.len());
        assert!(
            Group::Read
                .members()
                .all(|endpoint| endpoint.effect == Effect::Read)
        );
        assert!(
            ENDPOINTS
                .iter()
                .filter(|endpoint| matches!(endpoint.route, Route::Command))
                .all(|endpoint| Group::of(endpoint) == Group::Command)
        );
    }

    #[test]
    fn a_wrong_argument_for_the_chosen_command_is_refused() {
        let call = |arguments: Value| {
            let Value::Object(arguments) = arguments else {
                panic!()
            };
            resolve("command", arguments)
        };
        assert!(matches!(
            call(json!({"command": "set_charge_limit", "arguments": {"percent": 80}})),
            Ok(Resolved::Run("set_charge_limit", _))
        ));
        for bad in [
            json!({"command": "set_charge_limit", "arguments": {"percent": 20}}),
            json!({"command": "set_charge_limit"}),
            json!({"command": "set_charge_limit", "arguments": {"percent": 80, "level": 1}}),
            json!({"command": "honk_horn", "arguments": {"wake": true}}),
            json!({"command": "honk_horn", "arguments": {"vehicle_tag": ""}}),
        ] {
            assert!(
                matches!(call(bad.clone()), Err(ToolError::InvalidArguments(_))),
                "{bad}"
            );
        }
    }
}
