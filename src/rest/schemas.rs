//! The OpenAPI schemas of REST bodies and answers, from the GraphQL schema's types: input types
//! as components (`additionalProperties: false`, required fields, defaults, enums, the limits their
//! descriptions state), and each route's answer from the fields its document selects.

use std::collections::{BTreeMap, HashMap};

use async_graphql::parser::types::{ExecutableDocument, SelectionSet};
use serde_json::{Map, Value, json};

use super::case::to_snake;
use super::typed::{Def, Signature, Ty, Types, fields_of};

/// The JSON Schema of the value at `field` (`app.reviews`) of the response data.
pub fn response_schema(sig: &Signature, types: &Types, field: &str, doc: &mut DocBuilder) -> Value {
    let (document, mut set, root) = sig.selection();
    let mut parent = root.to_string();
    let mut schema = Value::Null;
    for (i, name) in field.split('.').enumerate() {
        let Some(f) = fields_of(document, set).into_iter().find(|f| f.response_key().node == name) else {
            return json!({});
        };
        let Some(def) = types.field(&parent, &f.name.node) else { return json!({}) };
        if i == field.split('.').count() - 1 {
            schema = output_schema(types, document, &def.ty, &f.selection_set.node, doc);
            if let Some(d) = &def.description {
                schema = with_description(schema, d);
            }
        } else {
            parent = def.ty.named().to_string();
            set = &f.selection_set.node;
        }
    }
    schema
}

/// Collects the named schemas (`components/schemas`) the document refers to.
#[derive(Default)]
pub struct DocBuilder {
    pub components: BTreeMap<String, Value>,
    /// Output objects by their schema text: routes selecting the same fields share a component
    /// (named after the type; `Type2`, `Type3`… for other selections of it).
    outputs: HashMap<String, String>,
}

impl DocBuilder {
    /// The object schema behind `$ref`, `anyOf` (null removed) and `allOf` wrappers.
    pub fn deref(&self, s: &Value) -> Value {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or("");
            return self.components.get(name).map(|c| self.deref(c)).unwrap_or(Value::Null);
        }
        for key in ["anyOf", "allOf"] {
            if let Some(Value::Array(options)) = s.get(key)
                && let Some(first) = options.iter().find(|o| o.get("type") != Some(&json!("null")))
            {
                return self.deref(first);
            }
        }
        s.clone()
    }

    /// Drops components nothing in `root` refers to (directly or through other components).
    pub fn keep_reachable(&mut self, root: &Value) {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref")
                        && let Some(name) = r.strip_prefix("#/components/schemas/")
                    {
                        out.push(name.to_string());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut todo = Vec::new();
        refs(root, &mut todo);
        let mut seen = std::collections::BTreeSet::new();
        while let Some(name) = todo.pop() {
            if seen.insert(name.clone())
                && let Some(c) = self.components.get(&name)
            {
                refs(c, &mut todo);
            }
        }
        self.components.retain(|k, _| seen.contains(k));
    }

    fn output_component(&mut self, type_name: &str, schema: Value) -> Value {
        let text = schema.to_string();
        let name = match self.outputs.get(&text) {
            Some(name) => name.clone(),
            None => {
                let mut name = type_name.to_string();
                let mut n = 1;
                while self.components.contains_key(&name) {
                    n += 1;
                    name = format!("{type_name}{n}");
                }
                self.components.insert(name.clone(), schema);
                self.outputs.insert(text, name.clone());
                name
            }
        };
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }
}

fn nullable_schema(s: Value, nullable: bool) -> Value {
    if !nullable {
        return s;
    }
    match s.get("type").cloned() {
        Some(Value::String(t)) if s.get("$ref").is_none() && s.get("enum").is_none() => {
            let mut s = s;
            s["type"] = json!([t, "null"]);
            s
        }
        _ => json!({ "anyOf": [s, { "type": "null" }] }),
    }
}

fn scalar_schema(name: &str) -> Option<Value> {
    Some(match name {
        "Int" => json!({ "type": "integer", "format": "int32" }),
        "Float" => json!({ "type": "number", "format": "double" }),
        "Boolean" => json!({ "type": "boolean" }),
        "String" => json!({ "type": "string" }),
        "ID" => json!({ "type": "string" }),
        "DateTime" => json!({ "type": "string", "format": "date-time" }),
        "JSON" => json!({ "description": "Any JSON value (passed as is: keys are not converted)" }),
        _ => return None,
    })
}

/// The schema of an input value of `ty` (named input objects and enums become components).
pub fn input_schema(types: &Types, ty: &Ty, doc: &mut DocBuilder) -> Value {
    let s = match ty {
        Ty::List { of, .. } => json!({ "type": "array", "items": input_schema(types, of, doc) }),
        Ty::Named { name, .. } => named_schema(types, name, doc),
    };
    // `JSON` already admits null.
    if ty.named() == "JSON" && matches!(ty, Ty::Named { .. }) { s } else { nullable_schema(s, ty.nullable()) }
}

fn named_schema(types: &Types, name: &str, doc: &mut DocBuilder) -> Value {
    if let Some(s) = scalar_schema(name) {
        return s;
    }
    let reference = json!({ "$ref": format!("#/components/schemas/{name}") });
    if doc.components.contains_key(name) {
        return reference;
    }
    let description = types.descriptions.get(name).cloned();
    let schema = match types.defs.get(name) {
        Some(Def::Enum(values)) => json!({ "type": "string", "enum": values }),
        Some(Def::Input(fields)) => {
            // A placeholder first: input types may refer to themselves.
            doc.components.insert(name.to_string(), json!({}));
            let mut props = Map::new();
            let mut required = Vec::new();
            for f in fields {
                let mut s = input_schema(types, &f.ty, doc);
                if let Some(d) = &f.description {
                    if let Ty::Named { name, .. } = &f.ty {
                        for (keyword, n) in stated_limits(d, name) {
                            s = with_key(s, keyword, json!(n));
                        }
                    }
                    s = with_description(s, d);
                }
                if let Some(d) = &f.default {
                    s = with_key(s, "default", d.clone());
                }
                let key = to_snake(&f.name);
                if !f.ty.nullable() && f.default.is_none() {
                    required.push(key.clone());
                }
                props.insert(key, s);
            }
            let mut s = json!({ "type": "object", "properties": props, "additionalProperties": false });
            if !required.is_empty() {
                s["required"] = json!(required);
            }
            s
        }
        _ => json!({}),
    };
    let schema = match description {
        Some(d) => with_description(schema, &d),
        None => schema,
    };
    doc.components.insert(name.to_string(), schema);
    reference
}

pub fn with_key(s: Value, key: &str, v: Value) -> Value {
    if s.get("$ref").is_some() {
        // Siblings of `$ref` are allowed in 3.1, but keep refs clean for older tools.
        json!({ "allOf": [s], key: v })
    } else {
        let mut s = s;
        s[key] = v;
        s
    }
}

pub fn with_description(s: Value, d: &str) -> Value {
    with_key(s, "description", json!(d))
}

/// The schema of what a selection of `ty` returns: objects inline (each selection differs),
/// enums as components.
fn output_schema(types: &Types, doc: &ExecutableDocument, ty: &Ty, set: &SelectionSet, b: &mut DocBuilder) -> Value {
    let s = match ty {
        Ty::List { of, .. } => json!({ "type": "array", "items": output_schema(types, doc, of, set, b) }),
        Ty::Named { name, .. } => match types.defs.get(name.as_str()) {
            Some(Def::Object(_)) => {
                let mut props = Map::new();
                let mut required = Vec::new();
                for f in fields_of(doc, set) {
                    let key = to_snake(&f.response_key().node);
                    let Some(def) = types.field(name, &f.name.node) else { continue };
                    let mut s = output_schema(types, doc, &def.ty, &f.selection_set.node, b);
                    if let Some(d) = &def.description {
                        s = with_description(s, d);
                    }
                    if let Some(reason) = &def.deprecated {
                        s = with_key(s, "deprecated", json!(true));
                        s = with_key(s, "x-deprecation-reason", json!(reason));
                    }
                    if !def.ty.nullable() {
                        required.push(key.clone());
                    }
                    props.insert(key, s);
                }
                let mut s = json!({ "type": "object", "properties": props });
                if !required.is_empty() {
                    s["required"] = json!(required);
                }
                if let Some(d) = types.descriptions.get(name.as_str()) {
                    s["description"] = json!(d);
                }
                b.output_component(name, s)
            }
            Some(Def::Union(_)) => json!({ "type": "object" }),
            _ => named_schema(types, name, b),
        },
    };
    if ty.named() == "JSON" && matches!(ty, Ty::Named { .. }) { s } else { nullable_schema(s, ty.nullable()) }
}

/// The limits a description states in the schema's own wording, as JSON Schema keywords: for a
/// `String`, "1 to 100 characters", "1–100 characters", "Up to 1000 characters", "at most 255
/// characters", "≤ 500 characters"; for an `Int`, its first range "1–100".
pub fn stated_limits(description: &str, scalar: &str) -> Vec<(&'static str, u64)> {
    /// The number a text ends with (`20,000` is 20000), and the text before it.
    fn trailing_number(text: &str) -> Option<(u64, &str)> {
        let text = text.trim_end();
        let start = text
            .rfind(|c: char| !(c.is_ascii_digit() || c == ','))
            .map_or(0, |i| i + text[i..].chars().next().map_or(1, char::len_utf8));
        let digits: String = text[start..].chars().filter(char::is_ascii_digit).collect();
        Some((digits.parse().ok()?, &text[..start]))
    }
    match scalar {
        "String" => {
            for (at, _) in description.match_indices(" characters") {
                let Some((max, before)) = trailing_number(&description[..at]) else { continue };
                let before = before.trim_end();
                for joiner in [" to", "–"] {
                    if let Some(rest) = before.strip_suffix(joiner)
                        && let Some((min, _)) = trailing_number(rest)
                    {
                        return vec![("minLength", min), ("maxLength", max)];
                    }
                }
                let lower = before.to_lowercase();
                if ["up to", "at most", "≤"].iter().any(|w| lower.ends_with(w)) {
                    return vec![("maxLength", max)];
                }
            }
            Vec::new()
        }
        "Int" => {
            for (at, _) in description.match_indices('–') {
                let Some((min, _)) = trailing_number(&description[..at]) else { continue };
                let after = &description[at + '–'.len_utf8()..];
                let run: String = after.chars().take_while(|c| c.is_ascii_digit() || *c == ',').collect();
                let run = run.trim_end_matches(',');
                let digits: String = run.chars().filter(char::is_ascii_digit).collect();
                if let Ok(max) = digits.parse()
                    && !after[run.len()..].trim_start().starts_with("characters")
                {
                    return vec![("minimum", min), ("maximum", max)];
                }
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// An example value of an input type, generated from the type: required fields (or, when none is,
/// the first), strings shaped by their field's name within the stated limits, the first enum
/// value, one item per list. It binds: a test runs every route's example through its signature.
pub fn input_example(types: &Types, ty: &Ty, field: &str) -> Value {
    match ty {
        Ty::List { of, .. } => json!([input_example(types, of, field)]),
        Ty::Named { name, .. } => match (name.as_str(), types.defs.get(name.as_str())) {
            ("Int", _) => json!(1),
            ("Float", _) => json!(1.5),
            ("Boolean", _) => json!(false),
            ("DateTime", _) => json!("2026-01-01T00:00:00Z"),
            ("JSON", _) => json!({ "team": "payments" }),
            ("ID", _) => {
                json!(format!("{}_0000000000000000example", to_snake(field).split('_').next().unwrap_or("id")))
            }
            ("String", _) => json!(string_example(field)),
            (_, Some(Def::Enum(values))) => json!(values.first().cloned().unwrap_or_default()),
            (_, Some(Def::Input(fields))) => {
                let required: Vec<_> = fields.iter().filter(|f| !f.ty.nullable() && f.default.is_none()).collect();
                let chosen = if required.is_empty() { fields.iter().take(1).collect() } else { required };
                let mut out = Map::new();
                for f in chosen {
                    let mut v = input_example(types, &f.ty, &f.name);
                    if let (Value::String(text), Some(d), Ty::Named { name, .. }) = (&mut v, &f.description, &f.ty) {
                        for (keyword, n) in stated_limits(d, name) {
                            let n = n as usize;
                            match keyword {
                                "minLength" if text.chars().count() < n => {
                                    text.extend(std::iter::repeat_n('x', n - text.chars().count()))
                                }
                                "maxLength" if text.chars().count() > n => *text = text.chars().take(n).collect(),
                                _ => {}
                            }
                        }
                    }
                    out.insert(to_snake(&f.name), v);
                }
                Value::Object(out)
            }
            _ => json!("example"),
        },
    }
}

/// A string for a field, by its name.
fn string_example(field: &str) -> &'static str {
    let f = field.to_ascii_lowercase();
    match () {
        _ if f.contains("email") => "dev@example.com",
        _ if f.contains("password") => "correct horse battery staple",
        _ if f.contains("url") || f.contains("uri") => "https://example.com/hooks/gantry",
        _ if f.contains("scope") => "keys:read",
        _ if f.contains("token") => "tok_example",
        _ if f.contains("secret") || f.contains("key") => "gk_test_example",
        _ if f.ends_with("id") => "id_example",
        _ if f.contains("slug") => "example-app",
        _ if f.contains("name") => "Example",
        _ if f.contains("description") || f.contains("reason") || f.contains("comment") => "An example",
        _ if f.contains("type") => "key.created",
        _ => "example",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_the_wording_of_descriptions() {
        assert_eq!(stated_limits("1 to 100 characters.", "String"), vec![("minLength", 1), ("maxLength", 100)]);
        assert_eq!(
            stated_limits("Shown on invoices (1–100 characters).", "String"),
            vec![("minLength", 1), ("maxLength", 100)]
        );
        assert_eq!(stated_limits("Up to 20,000 characters (Markdown).", "String"), vec![("maxLength", 20000)]);
        assert_eq!(stated_limits("What it switches (≤ 500 characters).", "String"), vec![("maxLength", 500)]);
        assert_eq!(stated_limits("a repeat is accepted once (≤ 255 characters).", "String"), vec![("maxLength", 255)]);
        assert_eq!(stated_limits("Unique URL-safe name (3–60 lowercase letters)", "String"), vec![]);
        assert_eq!(
            stated_limits("Page size from the start, 1–100 (default 20).", "Int"),
            vec![("minimum", 1), ("maximum", 100)]
        );
        assert_eq!(
            stated_limits("The share of organizations (0–100) that get it", "Int"),
            vec![("minimum", 0), ("maximum", 100)]
        );
        assert_eq!(stated_limits("Requests per second, 1–10,000.", "Int"), vec![("minimum", 1), ("maximum", 10000)]);
        assert_eq!(stated_limits("Each 1–604800, at most 20", "Int"), vec![("minimum", 1), ("maximum", 604800)]);
        assert_eq!(stated_limits("1 to 100 characters.", "Int"), vec![], "a number's range is never a length");
        assert_eq!(stated_limits("1–100", "Boolean"), vec![]);
    }

    #[test]
    fn the_schema_states_its_limits_in_the_document() {
        let types = Types::from_sdl(&crate::graphql::sdl());
        let mut b = DocBuilder::default();
        let ty = Ty::Named { name: "CreateApiKeyInput".into(), nullable: false };
        input_schema(&types, &ty, &mut b);
        let input = &b.components["CreateApiKeyInput"]["properties"];
        assert_eq!(
            (input["name"]["minLength"].as_u64(), input["name"]["maxLength"].as_u64()),
            (Some(1), Some(100)),
            "{input}"
        );
        assert_eq!(input["description"]["maxLength"], 1000, "{input}");
        // Every input field whose description names a number of characters has its limit.
        for (name, def) in &types.defs {
            let Def::Input(fields) = def else { continue };
            for f in fields {
                let Some(d) = &f.description else { continue };
                let says_length =
                    d.contains(" characters") && d.chars().any(|c| c.is_ascii_digit()) && !d.contains("last four");
                if f.ty.named() == "String" && matches!(f.ty, Ty::Named { .. }) && says_length {
                    assert!(
                        !stated_limits(d, "String").is_empty(),
                        "{name}.{}: \"{d}\" states a length in a wording the document does not read",
                        f.name
                    );
                }
            }
        }
    }
}
