//! Validation problems and the field reader that collects them.
//!
//! Imports must report **every** problem at once (content.md "Import formats"), which
//! serde's first-error-wins deserialization cannot do. So documents are parsed into a
//! `serde_json::Value` and walked with a [`Reader`] that records a [`Problem`] for each
//! bad field, substitutes a placeholder and carries on.

use serde::Serialize;
use serde_json::{Map, Value};

/// One thing wrong with an imported document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// RFC 6901 JSON pointer to the offending value (`""` for the whole document).
    pub pointer: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl Problem {
    /// A problem at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub fn push_token(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// Appends an array index to a JSON pointer.
pub fn push_index(pointer: &str, index: usize) -> String {
    format!("{pointer}/{index}")
}

/// The JSON type name of a value, for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Collects problems while reading fields out of JSON objects.
#[derive(Default)]
pub struct Reader {
    /// Every problem found so far, in document order.
    pub problems: Vec<Problem>,
}

impl Reader {
    /// Records a problem.
    pub fn report(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(pointer, message));
    }

    /// `value` as an object, reporting every key not in `allowed`; `None` (reported) if
    /// `value` is not an object.
    pub fn object<'v>(
        &mut self,
        value: &'v Value,
        pointer: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            self.report(
                pointer,
                format!("expected an object, found {}", type_name(value)),
            );
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.report(push_token(pointer, key), format!("unknown field '{key}'"));
            }
        }
        Some(map)
    }

    /// A required string field; `""` (reported) when missing or not a string.
    pub fn req_str(&mut self, map: &Map<String, Value>, pointer: &str, key: &str) -> String {
        match map.get(key) {
            Some(Value::String(s)) => s.clone(),
            None => {
                self.report(push_token(pointer, key), format!("missing field '{key}'"));
                String::new()
            }
            Some(v) => {
                self.report(
                    push_token(pointer, key),
                    format!("expected a string, found {}", type_name(v)),
                );
                String::new()
            }
        }
    }

    /// An optional string field (absent or `null` → `None`).
    pub fn opt_str(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Option<String> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.report(
                    push_token(pointer, key),
                    format!("expected a string or null, found {}", type_name(v)),
                );
                None
            }
        }
    }

    /// An optional boolean field with a default.
    pub fn bool_or(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
        default: bool,
    ) -> bool {
        match map.get(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                self.report(
                    push_token(pointer, key),
                    format!("expected a boolean, found {}", type_name(v)),
                );
                default
            }
        }
    }

    /// An optional integer field in `0..=max` with a default.
    pub fn u32_or(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
        default: u32,
        max: u32,
    ) -> u32 {
        let Some(v) = map.get(key) else {
            return default;
        };
        match v.as_u64() {
            Some(n) if n <= u64::from(max) => n as u32,
            _ => {
                let what = if v.is_number() {
                    format!("{v} is out of range")
                } else {
                    format!("found {}", type_name(v))
                };
                self.report(
                    push_token(pointer, key),
                    format!("expected an integer from 0 to {max}, {what}"),
                );
                default
            }
        }
    }

    /// An optional finite number `>= 0` with a default.
    pub fn non_negative_or(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
        default: f64,
    ) -> f64 {
        let Some(v) = map.get(key) else {
            return default;
        };
        match v.as_f64() {
            Some(x) if x >= 0.0 && x.is_finite() => x,
            _ => {
                self.report(
                    push_token(pointer, key),
                    format!("expected a number >= 0, found {v}"),
                );
                default
            }
        }
    }

    /// A required array field; empty (reported) when missing or not an array.
    pub fn req_array<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> &'v [Value] {
        match map.get(key) {
            Some(Value::Array(a)) => a,
            None => {
                self.report(push_token(pointer, key), format!("missing field '{key}'"));
                &[]
            }
            Some(v) => {
                self.report(
                    push_token(pointer, key),
                    format!("expected an array, found {}", type_name(v)),
                );
                &[]
            }
        }
    }

    /// An optional array field (absent or `null` → empty).
    pub fn opt_array<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> &'v [Value] {
        match map.get(key) {
            None | Some(Value::Null) => &[],
            Some(_) => self.req_array(map, pointer, key),
        }
    }
}

/// Whether `id` matches `^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$` (content.md "Ids").
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    bytes.len() <= 128
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether `s` is a `#RRGGBB` color.
pub fn is_valid_color(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7 && b[0] == b'#' && b[1..].iter().all(u8::is_ascii_hexdigit)
}
