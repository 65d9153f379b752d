//! NHTSA's two public, keyless services, as they answer (fixtures/nhtsa.json):
//!
//! - vPIC (`vpic.nhtsa.dot.gov`): `GET /api/vehicles/DecodeVinValues/{vin}?format=json[&modelyear=]`
//!   answers 200 `{"Count", "Message", "SearchCriteria", "Results": [one flat row]}`, every
//!   value a string and unknown ones `""`. A VIN it cannot decode is still a 200: the row's
//!   `ErrorCode` says why (`"0"` is a clean decode). Without `format=json` it answers XML.
//! - `api.nhtsa.gov`: `GET /recalls/recallsByVehicle?make&model&modelYear` answers
//!   `{"Count", "Message", "results": [...]}` (capitalised counters, lower-case list) and
//!   `GET /complaints/complaintsByVehicle?make&model&modelYear` answers
//!   `{"count", "message", "results": [...]}`; make and model match without regard to case.
//!   A request missing one of the three parameters is a 400 (its exact body is not
//!   documented; the simulator's is a guess and marked so in plugins/nhtsa/WIRE.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::SimState;

type Params = Query<HashMap<String, String>>;

const VPIC_MESSAGE: &str = "Results returned successfully. NOTE: Any missing decoded values \
    should be interpreted as NHTSA does not have data on the specific variable. Missing value \
    should NOT be interpreted as an indication that a specific feature or technology is NOT \
    present.";

#[derive(Deserialize)]
struct Fixtures {
    decodes: BTreeMap<String, Map<String, Value>>,
    unknown_decode: Map<String, Value>,
    recalls: Vec<Value>,
    complaints: Vec<Value>,
}

static FIXTURES: LazyLock<Fixtures> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../fixtures/nhtsa.json")).expect("fixtures/nhtsa.json")
});

/// vPIC, on a port of its own.
pub fn vpic_router() -> Router<Arc<SimState>> {
    Router::new().route(
        "/api/vehicles/DecodeVinValues/{vin}",
        get(decode_vin_values),
    )
}

/// api.nhtsa.gov's recalls and complaints, on a port of its own.
pub fn api_router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/recalls/recallsByVehicle", get(recalls_by_vehicle))
        .route(
            "/complaints/complaintsByVehicle",
            get(complaints_by_vehicle),
        )
}

async fn decode_vin_values(Path(vin): Path<String>, Query(params): Params) -> Response {
    let vin = vin.to_ascii_uppercase();
    let mut row = FIXTURES
        .decodes
        .get(&vin)
        .cloned()
        .unwrap_or_else(|| FIXTURES.unknown_decode.clone());
    row.insert("VIN".into(), Value::String(vin.clone()));
    if let Some(year) = params.get("modelyear") {
        row.insert("ModelYear".into(), Value::String(year.clone()));
    }
    let format = params
        .get("format")
        .map(|format| format.to_ascii_lowercase());
    if format.as_deref() != Some("json") {
        let xml = format!(
            "<?xml version=\"1.0\"?><Response><Count>1</Count><Message>{VPIC_MESSAGE}</Message>\
             <SearchCriteria>VIN:{vin}</SearchCriteria></Response>"
        );
        return ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response();
    }
    Json(json!({
        "Count": 1,
        "Message": VPIC_MESSAGE,
        "SearchCriteria": format!("VIN:{vin}"),
        "Results": [row],
    }))
    .into_response()
}

/// The make, model and model year of a request, when it gives all three.
fn vehicle(params: &HashMap<String, String>) -> Option<(String, String, String)> {
    let get = |name: &str| params.get(name).filter(|value| !value.is_empty()).cloned();
    Some((get("make")?, get("model")?, get("modelYear")?))
}

fn missing_vehicle() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(
            json!({"Count": 0, "Message": "make, model and modelYear are required", "results": []}),
        ),
    )
        .into_response()
}

async fn recalls_by_vehicle(Query(params): Params) -> Response {
    let Some((make, model, year)) = vehicle(&params) else {
        return missing_vehicle();
    };
    let results: Vec<&Value> = FIXTURES
        .recalls
        .iter()
        .filter(|recall| {
            field_is(recall, "Make", &make)
                && field_is(recall, "Model", &model)
                && field_is(recall, "ModelYear", &year)
        })
        .collect();
    Json(json!({
        "Count": results.len(),
        "Message": "Results returned successfully",
        "results": results,
    }))
    .into_response()
}

async fn complaints_by_vehicle(Query(params): Params) -> Response {
    let Some((make, model, year)) = vehicle(&params) else {
        return missing_vehicle();
    };
    let results: Vec<&Value> = FIXTURES
        .complaints
        .iter()
        .filter(|complaint| {
            complaint["products"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|product| {
                    field_is(product, "productMake", &make)
                        && field_is(product, "productModel", &model)
                        && field_is(product, "productYear", &year)
                })
        })
        .collect();
    Json(json!({
        "count": results.len(),
        "message": "Results returned successfully",
        "results": results,
    }))
    .into_response()
}

fn field_is(record: &Value, field: &str, wanted: &str) -> bool {
    record[field]
        .as_str()
        .is_some_and(|value| value.eq_ignore_ascii_case(wanted.trim()))
}
