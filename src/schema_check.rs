//! Client-side validation of manifests against the generated CRD schemas: the OpenAPI
//! constraints the API server checks (types, required, patterns, lengths, ranges, enums,
//! item counts) plus the CEL `x-kubernetes-validations` rules (through kube's `cel` feature).
//!
//! File mode runs it before reconciling, so `plan`/`apply -f` reject what a cluster would.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::core::cel::Validator;
use regex::Regex;
use serde_json::Value;

/// One violation: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Validate `object` against `schema` (an openAPIV3Schema) and its CEL rules.
/// `old` enables transition rules (`oldSelf`).
pub fn validate(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<Violation> {
    let mut out = Vec::new();
    walk(schema, object, "", &mut out);
    if out.is_empty()
        && let Err(errors) = Validator::new().validate(schema, object, old)
    {
        for e in errors.iter() {
            out.push(Violation {
                path: e.field_path.clone(),
                message: e.message.clone(),
            });
        }
    }
    out
}

/// The CEL rules of a schema, compiled once (see [`validate_compiled`]).
pub use kube::core::cel::CompiledSchema;

/// Compile the CEL rules of `schema` (an openAPIV3Schema) for [`validate_compiled`].
pub fn compile(schema: &Value) -> CompiledSchema {
    kube::core::cel::compile_schema(schema)
}

/// As [`validate`] (without transition rules), with `schema`'s CEL rules compiled once by
/// [`compile`] instead of on every call: file mode checks thousands of documents of a kind.
pub fn validate_compiled(
    schema: &Value,
    compiled: &CompiledSchema,
    object: &Value,
) -> Vec<Violation> {
    let mut out = Vec::new();
    walk(schema, object, "", &mut out);
    if out.is_empty()
        && let Err(errors) = Validator::new().validate_compiled(compiled, object, None)
    {
        for e in errors.iter() {
            out.push(Violation {
                path: e.field_path.clone(),
                message: e.message.clone(),
            });
        }
    }
    out
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let here = if path.is_empty() {
        "<root>".to_string()
    } else {
        path.to_string()
    };
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            out.push(Violation {
                path: here,
                message: "must not be null".into(),
            });
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let type_ok = match ty {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string() || (int_or_string && value.is_i64()),
        Some("integer") => value.is_i64() || value.is_u64() || (int_or_string && value.is_string()),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        out.push(Violation {
            path: here,
            message: format!("must be of type {}", ty.unwrap_or("?")),
        });
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        out.push(Violation {
            path: here.clone(),
            message: format!("must be one of {}", list.join(", ")),
        });
    }
    match value {
        Value::Object(map) => walk_object(schema, map, path, &here, out),
        Value::Array(items) => walk_array(schema, items, &here, out),
        Value::String(s) => check_string(schema, s, here, out),
        Value::Number(n) => check_number(schema, n, here, out),
        _ => {}
    }
}

/// Required members, known members (walked), unknown ones and the member count of an object.
fn walk_object(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    here: &str,
    out: &mut Vec<Violation>,
) {
    for req in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = req.as_str()
            && !map.contains_key(name)
        {
            out.push(Violation {
                path: join(path, name),
                message: "is required".into(),
            });
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    for (k, v) in map {
        if let Some(sub) = props.and_then(|p| p.get(k)) {
            walk(sub, v, &join(path, k), out);
        } else if let Some(sub) = additional.filter(|a| a.is_object()) {
            walk(sub, v, &join(path, k), out);
        } else if props.is_some() && path_is_checked(path) {
            out.push(Violation {
                path: join(path, k),
                message: "is not a known field".into(),
            });
        }
    }
    check_count(
        schema,
        map.len(),
        "minProperties",
        "maxProperties",
        "properties",
        here,
        out,
    );
}

/// The item count of an array, and each item.
fn walk_array(schema: &Value, items: &[Value], here: &str, out: &mut Vec<Violation>) {
    check_count(
        schema,
        items.len(),
        "minItems",
        "maxItems",
        "items",
        here,
        out,
    );
    if let Some(sub) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            walk(sub, item, &format!("{here}[{i}]"), out);
        }
    }
}

/// The length and pattern of a string.
fn check_string(schema: &Value, s: &str, here: String, out: &mut Vec<Violation>) {
    let len = s.chars().count();
    check_count(
        schema,
        len,
        "minLength",
        "maxLength",
        "characters",
        &here,
        out,
    );
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && !matches_pattern(pattern, s)
    {
        out.push(Violation {
            path: here,
            message: format!("{s:?} does not match {pattern}"),
        });
    }
}

/// The bounds of a number.
fn check_number(schema: &Value, n: &serde_json::Number, here: String, out: &mut Vec<Violation>) {
    if let (Some(min), Some(x)) = (schema.get("minimum").and_then(Value::as_f64), n.as_f64())
        && x < min
    {
        out.push(Violation {
            path: here.clone(),
            message: format!("must be at least {min}"),
        });
    }
    if let (Some(max), Some(x)) = (schema.get("maximum").and_then(Value::as_f64), n.as_f64())
        && x > max
    {
        out.push(Violation {
            path: here,
            message: format!("must be at most {max}"),
        });
    }
}

/// Unknown fields are reported inside `spec` (the API server would prune them silently,
/// which hides typos); metadata and status are left alone.
fn path_is_checked(path: &str) -> bool {
    path == "spec" || path.starts_with("spec.") || path.starts_with("spec[")
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `what` for a count: "1 character", "5 characters" (`what` is given in the plural).
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        what.strip_suffix('s').unwrap_or(what).to_string()
    } else {
        what.to_string()
    }
}

fn check_count(
    schema: &Value,
    n: usize,
    min_key: &str,
    max_key: &str,
    what: &str,
    here: &str,
    out: &mut Vec<Violation>,
) {
    if let Some(min) = schema.get(min_key).and_then(Value::as_u64)
        && (n as u64) < min
    {
        out.push(Violation {
            path: here.to_string(),
            message: format!("must have at least {min} {}", plural(min, what)),
        });
    }
    if let Some(max) = schema.get(max_key).and_then(Value::as_u64)
        && (n as u64) > max
    {
        out.push(Violation {
            path: here.to_string(),
            message: format!("must have at most {max} {}", plural(max, what)),
        });
    }
}

fn matches_pattern(pattern: &str, s: &str) -> bool {
    static CACHE: Mutex<Option<HashMap<String, Option<Regex>>>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    let re = cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok());
    // A pattern the regex crate cannot compile is left to the API server.
    re.as_ref().is_none_or(|re| re.is_match(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn structural_checks() {
        let schema = json!({
            "type": "object",
            "required": ["spec"],
            "properties": {"spec": {"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string", "pattern": "^[0-9]{3}$"},
                "n": {"type": "integer", "minimum": 1, "maximum": 5},
                "kind": {"type": "string", "enum": ["A", "B"]},
                "list": {"type": "array", "maxItems": 1, "items": {"type": "string", "minLength": 2}}
            }}}
        });
        assert!(validate(&schema, &json!({"spec": {"id": "123"}}), None).is_empty());
        let v = validate(
            &schema,
            &json!({"spec": {"id": "12a", "n": 9, "kind": "C", "list": ["x", "yy"], "typo": 1}}),
            None,
        );
        let paths: Vec<&str> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.id",
                "spec.kind",
                "spec.list",
                "spec.list[0]",
                "spec.n",
                "spec.typo"
            ],
            "{v:?}"
        );
        let missing = validate(&schema, &json!({"spec": {}}), None);
        assert_eq!(missing[0].to_string(), "spec.id: is required");
    }

    #[test]
    fn cel_rules_run_after_structure() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "!(has(self.a) && has(self.b))", "message": "set at most one of a and b"}],
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}}});
        assert!(validate(&schema, &json!({"spec": {"a": "x"}}), None).is_empty());
        let v = validate(&schema, &json!({"spec": {"a": "x", "b": "y"}}), None);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].message, "set at most one of a and b");
    }
}
