//! GraphQL on the plugin's side: queries checked before anything is sent, DIMO's `errors`
//! turned into tool errors, and introspection printed as a compact schema an assistant can read.

use carport_guest::ToolError;
use graphql_parser::query::{Definition, OperationDefinition};
use serde_json::Value;

/// Refuses a query that is too large, does not parse, or is not a read: Identity and Telemetry
/// are read-only, so a mutation or subscription is a mistake caught before it costs a request.
pub fn check_query(query: &str, variables: &Value, max_bytes: usize) -> Result<(), ToolError> {
    if query.len() > max_bytes {
        return Err(ToolError::invalid(format!(
            "the query is {} bytes; the limit is {max_bytes} (plugins.toml setting \
             max_query_bytes): ask for fewer fields",
            query.len()
        )));
    }
    let variables_size = variables.to_string().len();
    if variables_size > max_bytes {
        return Err(ToolError::invalid(format!(
            "the variables are {variables_size} bytes; the limit is {max_bytes}"
        )));
    }
    let document = graphql_parser::parse_query::<&str>(query)
        .map_err(|error| ToolError::invalid(format!("the query is not valid GraphQL: {error}")))?;
    for definition in &document.definitions {
        if let Definition::Operation(
            OperationDefinition::Mutation(_) | OperationDefinition::Subscription(_),
        ) = definition
        {
            return Err(ToolError::invalid(
                "DIMO's Identity and Telemetry APIs only answer queries; send a `query`, not a \
                 mutation or subscription",
            ));
        }
    }
    Ok(())
}

/// `data`, or the API's own messages when it answered with `errors` and no data at all.
/// With partial data (a signal the token may not read), the data is kept and the messages
/// travel beside it, as DIMO sends them.
pub fn answer(api: &str, body: Value) -> Result<Value, ToolError> {
    let messages: Vec<String> = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    let message = error["message"].as_str().unwrap_or("unknown error");
                    match error["path"].as_array() {
                        Some(path) if !path.is_empty() => {
                            let path: Vec<String> = path
                                .iter()
                                .map(|part| part.as_str().map_or(part.to_string(), str::to_string))
                                .collect();
                            format!("{message} (at {})", path.join("."))
                        }
                        _ => message.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let data_present = body["data"]
        .as_object()
        .is_some_and(|data| data.values().any(|value| !value.is_null()));
    if messages.is_empty() {
        return Ok(body["data"].clone());
    }
    if !data_present {
        return Err(ToolError::Upstream(carport_guest::UpstreamError {
            status: 200,
            retry_after_seconds: None,
            message: format!(
                "DIMO {api} answered with errors: {}. Call {}_introspect to see the schema.",
                messages.join("; "),
                api.to_ascii_lowercase()
            ),
        }));
    }
    let mut partial = serde_json::Map::new();
    partial.insert("data".into(), body["data"].clone());
    partial.insert("errors".into(), Value::from(messages));
    Ok(Value::Object(partial))
}

/// The standard introspection query, trimmed to what [`print_schema`] prints.
pub const INTROSPECTION_QUERY: &str = "query IntrospectionQuery { __schema { queryType { name } \
    types { kind name description fields(includeDeprecated: false) { name description \
    args { name type { ...TypeRef } defaultValue } type { ...TypeRef } } \
    inputFields { name type { ...TypeRef } defaultValue } enumValues(includeDeprecated: false) { name } } } } \
    fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }";

const BUILT_IN_SCALARS: &[&str] = &["String", "Int", "Float", "Boolean", "ID"];

/// An SDL-like rendering of an introspection answer: types, fields with arguments and the
/// first sentence of each description.
pub fn print_schema(schema: &Value) -> Result<String, ToolError> {
    let types = schema["__schema"]["types"]
        .as_array()
        .ok_or_else(|| ToolError::Internal("the introspection answer has no types".into()))?;
    let mut out = String::new();
    for kind in &types[..] {
        let name = kind["name"].as_str().unwrap_or_default();
        if name.starts_with("__") || BUILT_IN_SCALARS.contains(&name) {
            continue;
        }
        if let Some(description) = first_sentence(&kind["description"]) {
            out.push_str(&format!("# {description}\n"));
        }
        match kind["kind"].as_str().unwrap_or_default() {
            "SCALAR" => out.push_str(&format!("scalar {name}\n\n")),
            "ENUM" => {
                let values: Vec<&str> = kind["enumValues"]
                    .as_array()
                    .map(|values| values.iter().filter_map(|v| v["name"].as_str()).collect())
                    .unwrap_or_default();
                out.push_str(&format!("enum {name} {{ {} }}\n\n", values.join(" ")));
            }
            "INPUT_OBJECT" => {
                out.push_str(&format!("input {name} {{\n"));
                for field in kind["inputFields"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "  {}: {}\n",
                        field["name"].as_str().unwrap_or_default(),
                        type_ref(&field["type"])
                    ));
                }
                out.push_str("}\n\n");
            }
            other => {
                let keyword = match other {
                    "INTERFACE" => "interface",
                    "UNION" => "union",
                    _ => "type",
                };
                out.push_str(&format!("{keyword} {name} {{\n"));
                for field in kind["fields"].as_array().into_iter().flatten() {
                    let arguments: Vec<String> = field["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|argument| {
                            format!(
                                "{}: {}",
                                argument["name"].as_str().unwrap_or_default(),
                                type_ref(&argument["type"])
                            )
                        })
                        .collect();
                    let arguments = if arguments.is_empty() {
                        String::new()
                    } else {
                        format!("({})", arguments.join(", "))
                    };
                    let comment = first_sentence(&field["description"])
                        .map(|text| format!("  # {text}"))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  {}{arguments}: {}{comment}\n",
                        field["name"].as_str().unwrap_or_default(),
                        type_ref(&field["type"])
                    ));
                }
                out.push_str("}\n\n");
            }
        }
    }
    Ok(out)
}

fn type_ref(kind: &Value) -> String {
    match kind["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&kind["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&kind["ofType"])),
        _ => kind["name"].as_str().unwrap_or("?").to_string(),
    }
}

fn first_sentence(description: &Value) -> Option<String> {
    let text = description.as_str()?.trim();
    if text.is_empty() {
        return None;
    }
    let line = text.lines().next().unwrap_or_default();
    let sentence = match line.find(". ") {
        Some(end) => &line[..=end],
        None => line,
    };
    Some(sentence.chars().take(160).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_what_cannot_be_a_read() {
        let none = json!({});
        assert!(check_query("{ vehicle(tokenId: 1) { owner } }", &none, 1000).is_ok());
        assert!(check_query("{ vehicle(tokenId: 1) { owner }", &none, 1000).is_err());
        assert!(check_query("mutation { burn }", &none, 1000).is_err());
        assert!(check_query(&"{ a }".repeat(300), &none, 1000).is_err());
    }

    #[test]
    fn errors_without_data_quote_dimo() {
        let body = json!({"errors": [{"message": "No vehicle with token id 9.", "path": ["vehicle"]}],
                          "data": {"vehicle": null}});
        let Err(ToolError::Upstream(error)) = answer("Identity", body) else {
            panic!("expected an upstream error");
        };
        assert!(
            error
                .message
                .contains("No vehicle with token id 9. (at vehicle)")
        );
        let partial = json!({"errors": [{"message": "unauthorized"}], "data": {"a": 1}});
        assert_eq!(answer("Telemetry", partial).unwrap()["data"]["a"], 1);
    }
}
