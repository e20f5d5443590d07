//! The error of every validating parser, and the field reader that produces its messages.
//!
//! Serde's own messages for a wrong type ("invalid type: integer `5`, expected a string") do
//! not name the field, so the validating parsers read a [`serde_json::Value`] field by field
//! instead and say which field is wrong, what it must be and what it was.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::names::NamedEnum;

/// The first problem found in a JSON document: its field (if one is to blame) and a message.
///
/// The message names the field and says what is wrong, without a trailing period, e.g.
/// `"runs_per_instance_type" must be a positive integer, got 0`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ValidationError {
    field: Option<String>,
    message: String,
}

impl ValidationError {
    /// An error about one field (a path such as `ruby_bench.modes[1]`).
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// An error about the document as a whole.
    pub fn document(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }

    /// The path of the field to blame, if the problem is in one field.
    pub fn field_path(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The human-readable message; the same text as `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The result of a validating parser.
pub(crate) type Result<T, E = ValidationError> = std::result::Result<T, E>;

/// Parses `bytes` as a JSON object; `what` names the document in messages ("run config").
/// No string in it, key or value, may hold a NUL character: Postgres text cannot store one.
pub(crate) fn parse_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ValidationError::document(format!("{what} is not valid JSON: {e}")))?;
    if let Some(path) = nul_at(&value, "") {
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" at {}", quoted(&path))
        };
        return Err(ValidationError::document(format!(
            "{what} holds a NUL character (\\u0000){at}: no string may contain one"
        )));
    }
    match value {
        Value::Object(map) => Ok(map),
        other => Err(not_an_object(&other, what)),
    }
}

/// The path of the first string in `value` (a key or a value) that holds a NUL character.
fn nul_at(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(s) => s.contains('\0').then(|| path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(path)
            } else {
                nul_at(item, &path)
            }
        }),
        _ => None,
    }
}

/// Checks that `value` is a JSON object; `what` names the document in messages.
pub(crate) fn as_object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>> {
    value.as_object().ok_or_else(|| not_an_object(value, what))
}

fn not_an_object(value: &Value, what: &str) -> ValidationError {
    ValidationError::document(format!(
        "{what} must be a JSON object, got {}",
        describe(value)
    ))
}

/// Describes a JSON value for a "got ..." clause: scalars as JSON text, containers by kind.
pub(crate) fn describe(value: &Value) -> String {
    const MAX_CHARS: usize = 40;
    match value {
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        Value::String(s) if s.chars().count() > MAX_CHARS => {
            let head: String = s.chars().take(MAX_CHARS).collect();
            format!("{}...", Value::String(head))
        }
        scalar => scalar.to_string(),
    }
}

/// Quotes a field path or a name for a message: `"aws"`.
pub(crate) fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Reads the fields of one JSON object; `prefix` is its path with a trailing dot, or empty.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    /// Reads the top-level object of a document.
    pub(crate) fn new(map: &'a Map<String, Value>) -> Self {
        Self { map, prefix: "" }
    }

    /// Reads a nested object whose own path is `prefix` followed by a dot.
    pub(crate) fn nested(map: &'a Map<String, Value>, prefix: &'a str) -> Self {
        Self { map, prefix }
    }

    /// The full path of `key`, e.g. `ruby_bench.warmup`.
    pub(crate) fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// An error about `key` whose message starts with the quoted path.
    pub(crate) fn error(&self, key: &str, rest: impl std::fmt::Display) -> ValidationError {
        let path = self.path(key);
        ValidationError::field(&path, format!("{} {rest}", quoted(&path)))
    }

    /// The value of `key`; absent and `null` both count as not given.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Rejects the first key (in sorted order) that is not in `known`; `hint` completes the
    /// message for that key and its value.
    pub(crate) fn reject_unknown(
        &self,
        known: &[&str],
        hint: impl Fn(&Value) -> String,
    ) -> Result<()> {
        match self.map.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some((key, value)) => {
                let path = self.path(key);
                Err(ValidationError::field(
                    &path,
                    format!("unknown field {}: {}", quoted(&path), hint(value)),
                ))
            }
        }
    }

    /// The value of a required field; `hint` follows the "missing field" message if non-empty.
    pub(crate) fn required(&self, key: &str, hint: &str) -> Result<&'a Value> {
        self.get(key).ok_or_else(|| {
            let path = self.path(key);
            let message = if hint.is_empty() {
                format!("missing field {}", quoted(&path))
            } else {
                format!("missing field {}: {hint}", quoted(&path))
            };
            ValidationError::field(&path, message)
        })
    }

    /// A required string that is not empty or only whitespace.
    pub(crate) fn required_text(&self, key: &str, hint: &str) -> Result<String> {
        let value = self.required(key, hint)?;
        self.text(key, value)
    }

    /// An optional string; when given it must not be empty or only whitespace.
    pub(crate) fn optional_text(&self, key: &str) -> Result<Option<String>> {
        self.get(key).map(|v| self.text(key, v)).transpose()
    }

    fn text(&self, key: &str, value: &Value) -> Result<String> {
        match value {
            Value::String(s) if s.trim().is_empty() => Err(self.error(key, "is empty")),
            Value::String(s) => Ok(s.clone()),
            other => Err(self.error(key, format!("must be a string, got {}", describe(other)))),
        }
    }

    /// A required name of a `named_enum!` type, e.g. a provider.
    pub(crate) fn required_name<T: NamedEnum>(&self, key: &str, hint: &str) -> Result<T> {
        let value = self.required(key, hint)?;
        let Value::String(name) = value else {
            return Err(self.error(
                key,
                format!("must be one of {}, got {}", T::EXPECTED, describe(value)),
            ));
        };
        name.parse().map_err(|_| {
            self.error(
                key,
                format!("{} is not one of {}", quoted(name), T::EXPECTED),
            )
        })
    }

    /// An optional string that may be empty.
    pub(crate) fn optional_string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(self.error(key, format!("must be a string, got {}", describe(other))))
            }
        }
    }

    /// An optional boolean.
    pub(crate) fn optional_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(
                key,
                format!("must be true or false, got {}", describe(other)),
            )),
        }
    }

    /// An optional integer in `min..=max`; `what` describes the expected value in messages,
    /// e.g. "a positive integer".
    pub(crate) fn optional_integer(
        &self,
        key: &str,
        min: i64,
        max: i64,
        what: &str,
    ) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => self.integer(key, value, min, max, what).map(Some),
        }
    }

    /// An integer in `min..=max` read from `value`, the value of `key`.
    pub(crate) fn integer(
        &self,
        key: &str,
        value: &Value,
        min: i64,
        max: i64,
        what: &str,
    ) -> Result<i64> {
        // JSON has one number type: 8.0 is the integer 8 (as JSON Schema says too).
        let integral = || {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(53))
                .map(|f| f as i64)
        };
        value
            .as_i64()
            .or_else(integral)
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| self.error(key, format!("must be {what}, got {}", describe(value))))
    }

    /// An optional array, as its elements.
    pub(crate) fn optional_array(&self, key: &str, what: &str) -> Result<Option<&'a [Value]>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(self.error(
                key,
                format!("must be an array of {what}, got {}", describe(other)),
            )),
        }
    }
}

/// Reads the elements of an array field as strings; `path` is the field's path and the
/// element's path is `path[i]`.
pub(crate) fn string_items<'v>(path: &str, items: &'v [Value]) -> Result<Vec<(String, &'v str)>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item_path = format!("{path}[{i}]");
            match item {
                Value::String(s) => Ok((item_path, s.as_str())),
                other => Err(ValidationError::field(
                    &item_path,
                    format!(
                        "{} must be a string, got {}",
                        quoted(&item_path),
                        describe(other)
                    ),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describe_names_containers_and_quotes_scalars() {
        assert_eq!(describe(&json!([1])), "an array");
        assert_eq!(describe(&json!({})), "an object");
        assert_eq!(describe(&json!("3")), "\"3\"");
        assert_eq!(describe(&json!(2.5)), "2.5");
        assert_eq!(describe(&json!(null)), "null");
        assert_eq!(
            describe(&json!("x".repeat(50))),
            format!("\"{}\"...", "x".repeat(40))
        );
    }

    #[test]
    fn syntax_errors_name_the_document_and_the_position() {
        let err = parse_object(b"{\"a\": ", "run config").unwrap_err();
        assert_eq!(
            err.to_string(),
            "run config is not valid JSON: EOF while parsing a value at line 1 column 6"
        );
        assert_eq!(err.field_path(), None);
        let err = parse_object(b"[1, 2]", "request body").unwrap_err();
        assert_eq!(
            err.to_string(),
            "request body must be a JSON object, got an array"
        );
    }
}
