//! Each car's state as an MCP resource, `<scheme>://vehicles/{id}/state`, the same for every
//! provider: listed from the provider's vehicle list, read through its state tool (which never
//! wakes a car), and its id completed from the same list.

use crate::{
    Completion, CompletionReference, CompletionRequest, Output, ResourceBody, ResourceContents,
    ResourceInfo, ResourceTemplate, ToolError,
};

pub struct VehicleStates {
    /// The plugin's URI scheme, e.g. `tessie`.
    pub scheme: &'static str,
    /// The name of the id in the template, e.g. `vin` or `car_id`.
    pub id_name: &'static str,
    /// The provider's name for people, e.g. `Tessie`.
    pub provider: &'static str,
}

impl VehicleStates {
    fn template_uri(&self) -> String {
        format!("{}://vehicles/{{{}}}/state", self.scheme, self.id_name)
    }

    pub fn template(&self) -> ResourceTemplate {
        ResourceTemplate {
            uri_template: self.template_uri(),
            name: "vehicle_state".into(),
            title: format!("Vehicle state ({})", self.provider),
            description: format!(
                "One car's state through {} in carport's shared vehicle shape (km, km/h, °C): \
                 battery, charging, location, locks, climate. Reading it never wakes the car.",
                self.provider
            ),
            mime_type: Some("application/json".into()),
        }
    }

    /// One resource per car of `vehicles` (id, name), as the provider lists them.
    pub fn list(&self, vehicles: Vec<(String, String)>) -> Vec<ResourceInfo> {
        vehicles
            .iter()
            .map(|(id, name)| self.resource(id, name))
            .collect()
    }

    pub fn resource(&self, id: &str, name: &str) -> ResourceInfo {
        ResourceInfo {
            uri: format!("{}://vehicles/{id}/state", self.scheme),
            name: format!("vehicle_state_{id}"),
            title: format!("{name} ({})", self.provider),
            description: format!("The state of {name}, {} {id}", self.id_name),
            mime_type: Some("application/json".into()),
        }
    }

    /// The id in `uri`, if it names one of these resources.
    pub fn id_of<'a>(&self, uri: &'a str) -> Result<&'a str, ToolError> {
        uri.strip_prefix(self.scheme)
            .and_then(|rest| rest.strip_prefix("://vehicles/"))
            .and_then(|rest| rest.strip_suffix("/state"))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .ok_or_else(|| ToolError::NotFound(format!("no resource {uri}")))
    }

    /// Reads the resource through `state`, the provider's state call for one id.
    pub fn read(
        &self,
        uri: &str,
        state: impl FnOnce(&str) -> Result<Output, ToolError>,
    ) -> Result<Vec<ResourceContents>, ToolError> {
        let output = state(self.id_of(uri)?)?;
        let json = output.structured.ok_or_else(|| {
            ToolError::Internal("the state call returned no structured data".into())
        })?;
        Ok(vec![ResourceContents {
            uri: uri.to_string(),
            mime_type: Some("application/json".into()),
            body: ResourceBody::Text(json),
        }])
    }

    /// Completes the id of the state template from `vehicles` (id, name), asked only for such
    /// a request; other requests get nothing.
    pub fn complete(
        &self,
        request: &CompletionRequest,
        vehicles: impl FnOnce() -> Result<Vec<(String, String)>, ToolError>,
    ) -> Result<Completion, ToolError> {
        let ours = matches!(&request.reference,
            CompletionReference::ResourceTemplate(uri) if *uri == self.template_uri());
        if !ours || request.argument_name != self.id_name {
            return Ok(Completion::default());
        }
        let vehicles = vehicles()?;
        Ok(Completion::matching(
            &request.argument_value,
            vehicles.iter().map(|(id, _)| id.as_str()),
        ))
    }
}
