//! Checks a JSON value against the small subset of JSON Schema that plugins generate for their
//! tools' arguments (`type`, `enum`, `minimum`, `maximum`, `minLength`, `maxLength`, `minItems`,
//! `maxItems`, `uniqueItems`, `items`, `properties`, `required`, `additionalProperties: false`,
//! and `pattern` through a matcher the
//! plugin supplies, since a guest carries no regular-expression engine; a pattern without one
//! is refused rather than let through).
//!
//! The host validates every call against the tool's input schema before the plugin runs; a
//! plugin needs this only when one tool stands for many (compact mode), so that the operation
//! chosen in the arguments gets the same checks as its own tool would, before anything is sent.

use serde_json::Value;

/// Matchers for the `pattern`s a plugin's schemas use: the pattern's text and a function that
/// accepts exactly the strings it matches.
pub type Patterns<'a> = &'a [(&'a str, fn(&str) -> bool)];

/// `Err` names the first offending field (`at` is its path so far, e.g. `arguments`).
pub fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    check_with(schema, value, at, &[])
}

/// [`check`] for schemas that use `pattern`.
pub fn check_with(
    schema: &Value,
    value: &Value,
    at: &str,
    patterns: Patterns,
) -> Result<(), String> {
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.iter().any(|kind| is_of_type(value, kind)) {
            return Err(format!("{at} must be {}", allowed.join(" or ")));
        }
    }
    if let Some(Value::Array(choices)) = schema.get("enum")
        && !choices.contains(value)
    {
        let names: Vec<String> = choices.iter().map(Value::to_string).collect();
        return Err(format!("{at} must be one of {}", names.join(", ")));
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64)
            && number < minimum
        {
            return Err(format!("{at} must be at least {}", schema["minimum"]));
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64)
            && number > maximum
        {
            return Err(format!("{at} must be at most {}", schema["maximum"]));
        }
    }
    if let (Some(text), Some(least)) = (
        value.as_str(),
        schema.get("minLength").and_then(Value::as_u64),
    ) && (text.chars().count() as u64) < least
    {
        return Err(format!("{at} must have at least {least} characters"));
    }
    if let (Some(text), Some(most)) = (
        value.as_str(),
        schema.get("maxLength").and_then(Value::as_u64),
    ) && (text.chars().count() as u64) > most
    {
        return Err(format!("{at} must have at most {most} characters"));
    }
    if let (Some(text), Some(pattern)) = (
        value.as_str(),
        schema.get("pattern").and_then(Value::as_str),
    ) {
        let matcher = patterns
            .iter()
            .find(|(known, _)| *known == pattern)
            .map(|(_, matcher)| matcher)
            .ok_or_else(|| format!("{at}: the plugin cannot check the pattern {pattern}"))?;
        if !matcher(text) {
            return Err(format!("{at} must match {pattern}"));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(least) = schema.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < least
        {
            return Err(format!("{at} must have at least {least} items"));
        }
        if let Some(most) = schema.get("maxItems").and_then(Value::as_u64)
            && (items.len() as u64) > most
        {
            return Err(format!("{at} must have at most {most} items"));
        }
        if schema.get("uniqueItems") == Some(&Value::Bool(true))
            && let Some(repeated) = items
                .iter()
                .enumerate()
                .find(|(index, item)| items[..*index].iter().any(|earlier| same(earlier, item)))
                .map(|(_, item)| item)
        {
            return Err(format!("{at} must not repeat {repeated}"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                check_with(item_schema, item, &format!("{at}[{index}]"), patterns)?;
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(required) {
                return Err(format!("{} is required", joined(at, required)));
            }
        }
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        for (key, field) in object {
            match properties.and_then(|properties| properties.get(key)) {
                Some(field_schema) => check_with(field_schema, field, &joined(at, key), patterns)?,
                None if closed => {
                    let known: Vec<&str> = properties
                        .into_iter()
                        .flat_map(|properties| properties.keys())
                        .map(String::as_str)
                        .collect();
                    return Err(format!(
                        "{} is not an argument here (it takes: {})",
                        joined(at, key),
                        if known.is_empty() {
                            "nothing".to_string()
                        } else {
                            known.join(", ")
                        }
                    ));
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// JSON Schema's equality: numbers by value (`1` and `1.0` are the same), the rest as JSON.
fn same(left: &Value, right: &Value) -> bool {
    match (left.as_f64(), right.as_f64()) {
        (Some(left), Some(right)) => left == right,
        _ => left == right,
    }
}

fn joined(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn is_of_type(value: &Value, kind: &str) -> bool {
    match kind {
        "string" => value.is_string(),
        // JSON Schema counts 2.0 as an integer, as the host's validator does.
        "integer" => value.as_f64().is_some_and(|number| number.fract() == 0.0),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_what_the_schema_refuses() {
        let schema = json!({
            "type": "object",
            "properties": {
                "percent": {"type": "integer", "minimum": 50, "maximum": 100},
                "which": {"type": "string", "enum": ["front", "rear"]},
                "vins": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "name": {"type": "string", "minLength": 1, "maxLength": 4},
                "ids": {"type": "array", "maxItems": 2, "uniqueItems": true},
                "day": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"}
            },
            "required": ["percent"],
            "additionalProperties": false
        });
        assert!(check(&schema, &json!({"percent": 80, "which": "rear"}), "").is_ok());
        assert!(check(&schema, &json!({"percent": 80.0}), "").is_ok());
        assert!(
            check(
                &schema,
                &json!({"percent": 80, "name": "Ünïc", "ids": [1, 2]}),
                ""
            )
            .is_ok()
        );
        for (bad, says) in [
            (json!({}), "percent is required"),
            (json!({"percent": 20}), "at least 50"),
            (json!({"percent": 80.5}), "must be integer"),
            (json!({"percent": 80, "which": "side"}), "one of"),
            (json!({"percent": 80, "vins": []}), "at least 1 items"),
            (
                json!({"percent": 80, "vins": [1]}),
                "vins[0] must be string",
            ),
            (json!({"percent": 80, "name": ""}), "at least 1 characters"),
            (
                json!({"percent": 80, "name": "Ünïcø"}),
                "at most 4 characters",
            ),
            (json!({"percent": 80, "ids": [1, 2, 3]}), "at most 2 items"),
            (
                json!({"percent": 80, "ids": [1, 1.0]}),
                "must not repeat 1.0",
            ),
            (json!({"percent": 80, "colour": "red"}), "not an argument"),
            (
                json!({"percent": 80, "day": "2026-11-01"}),
                "cannot check the pattern",
            ),
        ] {
            let error = check(&schema, &bad, "").unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
        let digits = |text: &str| text.len() == 10 && text.as_bytes()[4] == b'-';
        let patterns: Patterns = &[("^\\d{4}-\\d{2}-\\d{2}$", digits)];
        let day = |day: &str| json!({"percent": 80, "day": day});
        assert!(check_with(&schema, &day("2026-11-01"), "", patterns).is_ok());
        let error = check_with(&schema, &day("1 Nov"), "", patterns).unwrap_err();
        assert!(error.contains("day must match"), "{error}");
    }
}
