"""carport provider for NHTSA's public vehicle-safety services, written in Python.

Built with componentize-py against wit/provider.wit (see `cargo xtask components`), and meant to
be loaded from carport's drop-in folder: nhtsa.toml beside the component says what it asks for.

Tools:
- `decode_vin`: make, model, year and specification of a VIN (vPIC `DecodeVinValues`);
- `recalls`: safety recalls of a make, model and model year, or of a VIN's;
- `complaints`: consumer complaints filed with NHTSA for the same.

Both services are public and keyless, so the plugin holds no secret. Settings: `vpic_url`
(default https://vpic.nhtsa.dot.gov) and `api_url` (default https://api.nhtsa.gov).
"""

import json
from urllib.parse import quote, urlencode

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import http, log, types

VERSION = "0.1.0"
DEFAULT_VPIC_URL = "https://vpic.nhtsa.dot.gov"
DEFAULT_API_URL = "https://api.nhtsa.gov"
VIN_PATTERN = "^[A-HJ-NPR-Z0-9]{17}$"
MAX_COMPLAINTS = 50

# vPIC's own field names, and the name each gets in `decode_vin`'s structured result.
DECODED_FIELDS = [
    ("Make", "make"),
    ("Model", "model"),
    ("ModelYear", "model_year"),
    ("Trim", "trim"),
    ("Manufacturer", "manufacturer"),
    ("VehicleType", "vehicle_type"),
    ("BodyClass", "body_class"),
    ("Doors", "doors"),
    ("DriveType", "drive_type"),
    ("FuelTypePrimary", "fuel_type"),
    ("ElectrificationLevel", "electrification"),
    ("PlantCity", "plant_city"),
    ("PlantCountry", "plant_country"),
]

VEHICLE_PROPERTIES = {
    "vin": {
        "type": "string",
        "pattern": VIN_PATTERN,
        "description": "A 17-character VIN; its make, model and year are decoded first. "
        "Give either this or make, model and model_year.",
    },
    "make": {"type": "string", "minLength": 1, "description": "e.g. Tesla"},
    "model": {"type": "string", "minLength": 1, "description": "e.g. Model 3"},
    "model_year": {"type": "integer", "minimum": 1950, "maximum": 2100},
}

READ_ONLY = types.Annotations(read_only=True, destructive=False, idempotent=True, open_world=True)


def schema(properties, required=()):
    return json.dumps(
        {
            "type": "object",
            "properties": properties,
            "required": list(required),
            "additionalProperties": False,
        }
    )


def tools():
    return [
        types.Tool(
            name="decode_vin",
            title="Decode a VIN",
            description="Decodes a vehicle identification number with NHTSA's vPIC catalogue: "
            "make, model, model year, trim, body, drive, fuel, electrification and plant. "
            "Fields NHTSA has no data for are left out. `error_code` 0 means a clean decode; "
            "other codes (e.g. 1, wrong check digit) come with NHTSA's explanation in "
            "`error_text`, and the fields may then be partial.",
            input_schema=schema(
                {
                    "vin": VEHICLE_PROPERTIES["vin"] | {"description": "A 17-character VIN."},
                    "model_year": VEHICLE_PROPERTIES["model_year"]
                    | {"description": "Helps older or ambiguous VINs decode."},
                },
                ["vin"],
            ),
            output_schema=json.dumps(
                {
                    "type": "object",
                    "properties": {"vin": {"type": "string"}, "error_code": {"type": "string"}}
                    | {field: {"type": "string"} for _, field in DECODED_FIELDS},
                    "required": ["vin", "error_code"],
                }
            ),
            annotations=READ_ONLY,
        ),
        types.Tool(
            name="recalls",
            title="Safety recalls",
            description="Safety recalls NHTSA lists for a make, model and model year (or a "
            "VIN's): campaign number, date, component, summary, consequence and remedy, and "
            "whether the maker says to park the car (outside) or fixes it over the air.",
            input_schema=schema(VEHICLE_PROPERTIES),
            output_schema=json.dumps(
                {
                    "type": "object",
                    "properties": {
                        "vehicle": {"type": "object"},
                        "count": {"type": "integer"},
                        "recalls": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["vehicle", "count", "recalls"],
                }
            ),
            annotations=READ_ONLY,
        ),
        types.Tool(
            name="complaints",
            title="Owner complaints",
            description="Complaints owners filed with NHTSA about a make, model and model year "
            "(or a VIN's), newest first: date, components, crash or fire, injuries, deaths and "
            "the owner's summary. `limit` caps how many are returned (default 10, at most 50); "
            "`count` is how many NHTSA holds.",
            input_schema=schema(
                VEHICLE_PROPERTIES
                | {"limit": {"type": "integer", "minimum": 1, "maximum": MAX_COMPLAINTS}}
            ),
            output_schema=json.dumps(
                {
                    "type": "object",
                    "properties": {
                        "vehicle": {"type": "object"},
                        "count": {"type": "integer"},
                        "complaints": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["vehicle", "count", "complaints"],
                }
            ),
            annotations=READ_ONLY,
        ),
    ]


def fail(error):
    raise Err(error)


def invalid(message):
    fail(types.ToolError_InvalidArguments(message))


def get_json(url):
    """GETs `url` through carport's http import and returns its JSON body."""
    try:
        response = http.send(
            http.Request(method="GET", url=url, headers=[("accept", "application/json")], body=None, credential=None)
        )
    except Err as refused:
        error = refused.value
        if isinstance(error, http.Error_Denied):
            fail(types.ToolError_Denied(error.value))
        if isinstance(error, http.Error_Timeout):
            fail(types.ToolError_Upstream(types.UpstreamError(504, "NHTSA did not answer in time", None)))
        fail(types.ToolError_Upstream(types.UpstreamError(502, f"NHTSA unreachable: {error}", None)))
    body = bytes(response.body).decode("utf-8", "replace")
    if response.status == 429:
        retry = next((value for name, value in response.headers if name.lower() == "retry-after"), None)
        seconds = int(retry) if retry and retry.isdigit() else None
        fail(types.ToolError_Upstream(types.UpstreamError(429, "NHTSA's rate limit: " + body[:300], seconds)))
    if response.status >= 400:
        fail(types.ToolError_Upstream(types.UpstreamError(response.status, body[:500], None)))
    try:
        return json.loads(body)
    except ValueError:
        fail(types.ToolError_Internal(f"NHTSA answered {url} with something other than JSON"))


class Settings:
    def __init__(self, context):
        settings = dict(context.settings)
        self.vpic_url = settings.get("vpic_url", DEFAULT_VPIC_URL).rstrip("/")
        self.api_url = settings.get("api_url", DEFAULT_API_URL).rstrip("/")


def decode(settings, vin, model_year=None):
    query = {"format": "json"}
    if model_year is not None:
        query["modelyear"] = str(model_year)
    answer = get_json(f"{settings.vpic_url}/api/vehicles/DecodeVinValues/{quote(vin)}?{urlencode(query)}")
    results = answer.get("Results") or []
    if not results:
        fail(types.ToolError_Internal("vPIC answered without a result"))
    row = results[0]
    decoded = {"vin": vin, "error_code": str(row.get("ErrorCode", "")).strip()}
    if row.get("ErrorText"):
        decoded["error_text"] = row["ErrorText"]
    for source, field in DECODED_FIELDS:
        value = str(row.get(source) or "").strip()
        if value:
            decoded[field] = value
    return decoded


def vehicle_of(settings, arguments):
    """The make, model and model year the arguments name, decoding a VIN when given one."""
    if "vin" in arguments:
        if any(key in arguments for key in ("make", "model", "model_year")):
            invalid("give either `vin` or `make`, `model` and `model_year`, not both")
        decoded = decode(settings, arguments["vin"])
        missing = [field for field in ("make", "model", "model_year") if field not in decoded]
        if missing:
            fail(
                types.ToolError_NotFound(
                    f"NHTSA cannot tell the {', '.join(missing)} of VIN {arguments['vin']} "
                    f"({decoded.get('error_text', 'no detail')}); give make, model and model_year"
                )
            )
        return {"make": decoded["make"], "model": decoded["model"], "model_year": int(decoded["model_year"])}
    missing = [field for field in ("make", "model", "model_year") if field not in arguments]
    if missing:
        invalid(f"missing {', '.join(missing)}: give a `vin`, or `make`, `model` and `model_year`")
    return {"make": arguments["make"], "model": arguments["model"], "model_year": arguments["model_year"]}


def vehicle_query(vehicle):
    return urlencode({"make": vehicle["make"], "model": vehicle["model"], "modelYear": str(vehicle["model_year"])})


def recalls(settings, arguments):
    vehicle = vehicle_of(settings, arguments)
    answer = get_json(f"{settings.api_url}/recalls/recallsByVehicle?{vehicle_query(vehicle)}")
    listed = [
        {
            "campaign": row.get("NHTSACampaignNumber"),
            "reported": row.get("ReportReceivedDate"),
            "component": row.get("Component"),
            "summary": row.get("Summary"),
            "consequence": row.get("Consequence"),
            "remedy": row.get("Remedy"),
            "park_it": bool(row.get("parkIt")),
            "park_outside": bool(row.get("parkOutSide")),
            "over_the_air": bool(row.get("overTheAirUpdate")),
        }
        for row in answer.get("results") or []
    ]
    return {"vehicle": vehicle, "count": len(listed), "recalls": listed}


def complaints(settings, arguments):
    vehicle = vehicle_of(settings, arguments)
    limit = arguments.get("limit", 10)
    answer = get_json(f"{settings.api_url}/complaints/complaintsByVehicle?{vehicle_query(vehicle)}")
    rows = answer.get("results") or []
    rows.sort(key=lambda row: filed_order(row.get("dateComplaintFiled")), reverse=True)
    listed = [
        {
            "odi_number": row.get("odiNumber"),
            "filed": row.get("dateComplaintFiled"),
            "incident": row.get("dateOfIncident"),
            "components": row.get("components"),
            "crash": bool(row.get("crash")),
            "fire": bool(row.get("fire")),
            "injuries": row.get("numberOfInjuries") or 0,
            "deaths": row.get("numberOfDeaths") or 0,
            "summary": row.get("summary"),
        }
        for row in rows[:limit]
    ]
    return {"vehicle": vehicle, "count": answer.get("count", len(rows)), "complaints": listed}


def filed_order(date):
    """NHTSA writes dates as MM/DD/YYYY; this sorts them as YYYYMMDD."""
    parts = (date or "").split("/")
    return parts[2] + parts[0] + parts[1] if len(parts) == 3 else ""


def summary_line(name, result):
    if name == "decode_vin":
        described = " ".join(result.get(field, "") for field in ("model_year", "make", "model", "trim")).split()
        return f"{result['vin']}: {' '.join(described) or 'not decoded'} (vPIC error code {result['error_code']})"
    vehicle = result["vehicle"]
    what = f"{vehicle['model_year']} {vehicle['make']} {vehicle['model']}"
    return f"{result['count']} {name} for the {what}:\n" + json.dumps(result[name], indent=1)


HANDLERS = {
    "decode_vin": lambda settings, arguments: decode(settings, arguments["vin"], arguments.get("model_year")),
    "recalls": recalls,
    "complaints": complaints,
}


class Provider(exports.Provider):
    def describe(self, context):
        return types.PluginInfo(
            id="nhtsa",
            version=VERSION,
            summary="NHTSA's public safety data for US vehicles of any make: VIN decoding, "
            "recalls and owner complaints. Needs no account.",
            tools=tools(),
            prompts=[],
            resource_templates=[],
            resource_scheme="",
        )

    def call_tool(self, name, arguments, context):
        handler = HANDLERS.get(name)
        if handler is None:
            fail(types.ToolError_NotFound(f"no tool {name}"))
        result = handler(Settings(context), json.loads(arguments))
        log.log(log.Level.DEBUG, f"{name}: answered")
        return types.Output(
            content=[types.Content_Text(summary_line(name, result))],
            structured=json.dumps(result),
        )

    def list_resources(self, context):
        return []

    def read_resource(self, uri, context):
        fail(types.ToolError_NotFound(f"plugin nhtsa serves no resource {uri}"))

    def get_prompt(self, name, arguments, context):
        fail(types.ToolError_NotFound(f"plugin nhtsa serves no prompt {name}"))

    def complete(self, request, context):
        return types.Completion(values=[], total=None, has_more=False)
