//! What a REST route takes and returns, read from the GraphQL schema and the route's own document:
//! each variable of the document is a path parameter (named in the path), the whole body (`$input`
//! of an input type), a query parameter (GET and DELETE) or a body field (POST, PUT, PATCH), under
//! its snake_case name (`$first` is `limit`, `$after` is `cursor`, a row may rename). The same
//! signature binds a request to the variables, names the REST field of an error, converts keys
//! by the type of each field (JSON scalars pass untouched) and writes the OpenAPI document, so the
//! document cannot say something the route does not do.

use std::collections::HashMap;

use async_graphql::Value as GValue;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Selection, SelectionSet, Type, TypeKind, TypeSystemDefinition,
};
use serde_json::{Map, Value, json};

use super::case::{to_camel, to_snake};

/// A refusal of a request's input before it reaches the schema: the REST field, where it was, why.
#[derive(Debug, Clone, PartialEq)]
pub struct BindError {
    pub field: String,
    pub location: &'static str,
    pub message: String,
}

fn refuse(field: impl Into<String>, location: &'static str, message: impl Into<String>) -> BindError {
    BindError { field: field.into(), location, message: message.into() }
}

/// A GraphQL type reference (`[String!]`, `Int!`).
#[derive(Debug, Clone)]
pub enum Ty {
    Named { name: String, nullable: bool },
    List { of: Box<Ty>, nullable: bool },
}

impl Ty {
    fn from_parsed(t: &Type) -> Ty {
        match &t.base {
            BaseType::Named(n) => Ty::Named { name: n.to_string(), nullable: t.nullable },
            BaseType::List(inner) => Ty::List { of: Box::new(Ty::from_parsed(inner)), nullable: t.nullable },
        }
    }

    pub fn nullable(&self) -> bool {
        match self {
            Ty::Named { nullable, .. } | Ty::List { nullable, .. } => *nullable,
        }
    }

    /// The same type, not null (a path parameter is always there).
    pub fn non_null(&self) -> Ty {
        match self.clone() {
            Ty::Named { name, .. } => Ty::Named { name, nullable: false },
            Ty::List { of, .. } => Ty::List { of, nullable: false },
        }
    }

    /// The named type under any lists.
    pub fn named(&self) -> &str {
        match self {
            Ty::Named { name, .. } => name,
            Ty::List { of, .. } => of.named(),
        }
    }
}

#[derive(Debug)]
pub struct InputField {
    pub name: String,
    pub ty: Ty,
    pub default: Option<Value>,
    pub description: Option<String>,
}

#[derive(Debug)]
pub struct OutputField {
    pub name: String,
    pub ty: Ty,
    pub description: Option<String>,
    pub deprecated: Option<String>,
}

#[derive(Debug)]
pub enum Def {
    Scalar,
    Enum(Vec<String>),
    Input(Vec<InputField>),
    /// Objects and interfaces.
    Object(Vec<OutputField>),
    Union(Vec<String>),
}

/// The schema's types, read from its SDL.
#[derive(Debug, Default)]
pub struct Types {
    pub defs: HashMap<String, Def>,
    pub descriptions: HashMap<String, String>,
}

impl Types {
    pub fn from_sdl(sdl: &str) -> Types {
        let doc = async_graphql::parser::parse_schema(sdl).expect("the schema's own SDL parses");
        let mut types = Types::default();
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else { continue };
            let t = t.node;
            let name = t.name.node.to_string();
            if let Some(d) = t.description {
                types.descriptions.insert(name.clone(), d.node);
            }
            let def = match t.kind {
                TypeKind::Scalar => Def::Scalar,
                TypeKind::Enum(e) => Def::Enum(e.values.iter().map(|v| v.node.value.node.to_string()).collect()),
                TypeKind::InputObject(i) => Def::Input(
                    i.fields
                        .into_iter()
                        .map(|f| InputField {
                            name: f.node.name.node.to_string(),
                            ty: Ty::from_parsed(&f.node.ty.node),
                            default: f.node.default_value.map(|v| v.node.into_json().unwrap_or(Value::Null)),
                            description: f.node.description.map(|d| d.node),
                        })
                        .collect(),
                ),
                TypeKind::Object(o) => Def::Object(output_fields(o.fields)),
                TypeKind::Interface(o) => Def::Object(output_fields(o.fields)),
                TypeKind::Union(u) => Def::Union(u.members.iter().map(|m| m.node.to_string()).collect()),
            };
            types.defs.insert(name, def);
        }
        types
    }

    pub fn field(&self, parent: &str, name: &str) -> Option<&OutputField> {
        match self.defs.get(parent) {
            Some(Def::Object(fields)) => fields.iter().find(|f| f.name == name),
            _ => None,
        }
    }
}

fn output_fields(
    fields: Vec<async_graphql::Positioned<async_graphql::parser::types::FieldDefinition>>,
) -> Vec<OutputField> {
    fields
        .into_iter()
        .map(|f| {
            let deprecated = f.node.directives.iter().find(|d| d.node.name.node == "deprecated").map(|d| {
                d.node
                    .get_argument("reason")
                    .and_then(|v| v.node.clone().into_json().ok())
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "No longer supported".into())
            });
            OutputField {
                name: f.node.name.node.to_string(),
                ty: Ty::from_parsed(&f.node.ty.node),
                description: f.node.description.map(|d| d.node),
                deprecated,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    Path,
    Query,
    Body,
}

impl Loc {
    pub fn as_str(self) -> &'static str {
        match self {
            Loc::Path => "path",
            Loc::Query => "query",
            Loc::Body => "body",
        }
    }
}

/// One variable of the route's document and where the request carries it.
#[derive(Debug)]
pub struct Param {
    /// The REST name (snake_case).
    pub rest: String,
    pub var: String,
    pub loc: Loc,
    pub ty: Ty,
    pub default: Option<Value>,
}

impl Param {
    pub fn required(&self) -> bool {
        !self.ty.nullable() && self.default.is_none()
    }
}

/// What a route takes (its parameters, its body) and what its document selects.
pub struct Signature {
    pub params: Vec<Param>,
    /// `$input` of an input object type: the whole body is that object.
    pub whole_body: Option<Param>,
    doc: ExecutableDocument,
    root: &'static str,
    /// How answers turn into REST keys, worked out once from the document and the types.
    plan: std::sync::OnceLock<Plan>,
}

/// The keys of a selection: each response key with its snake_case name and, for an object
/// (not a `JSON` value), the plan of its own selection.
#[derive(Debug, Default)]
struct Plan {
    fields: Vec<PlanField>,
}

#[derive(Debug)]
struct PlanField {
    key: String,
    snake: String,
    child: Option<Plan>,
}

impl Plan {
    fn of(types: &Types, doc: &ExecutableDocument, set: &SelectionSet, parent: &str) -> Plan {
        let fields = fields_of(doc, set)
            .into_iter()
            .map(|f| {
                let key = f.response_key().node.to_string();
                let child = match types.field(parent, &f.name.node) {
                    Some(def) if !f.selection_set.node.items.is_empty() => {
                        Some(Plan::of(types, doc, &f.selection_set.node, def.ty.named()))
                    }
                    _ => None,
                };
                PlanField { snake: to_snake(&key), key, child }
            })
            .collect();
        Plan { fields }
    }
}

/// A value of the schema's answer written as REST JSON, straight from the schema's value: keys
/// by the plan (snake_case), values below `JSON` fields as they are. Nothing is copied.
pub struct Planned<'a> {
    plan: Option<&'a Plan>,
    value: &'a GValue,
}

static NULL: GValue = GValue::Null;

impl<'a> Planned<'a> {
    /// The value at a response key (`apiKeys`), with its part of the plan.
    pub fn get(&self, key: &str) -> Planned<'a> {
        let value = match self.value {
            GValue::Object(m) => m.get(key).unwrap_or(&NULL),
            _ => &NULL,
        };
        let plan = self.plan.and_then(|p| p.fields.iter().find(|f| f.key == key)).and_then(|f| f.child.as_ref());
        Planned { plan, value }
    }

    pub fn value(&self) -> &'a GValue {
        self.value
    }

    /// A connection (`totalCount pageInfo { hasNextPage endCursor } edges { node }`) as its nodes
    /// and its page; `next_cursor` only when there is a next page.
    pub fn connection(&self) -> (Nodes<'a>, super::envelope::Page) {
        let edges = self.get("edges");
        let info = self.get("pageInfo");
        let has_more = matches!(info.get("hasNextPage").value, GValue::Boolean(true));
        let json = |v: &GValue| v.clone().into_json().unwrap_or(Value::Null);
        let page = super::envelope::Page {
            total_count: json(self.get("totalCount").value),
            has_more,
            next_cursor: has_more.then(|| json(info.get("endCursor").value)),
        };
        let node_plan =
            edges.plan.and_then(|p| p.fields.iter().find(|f| f.key == "node")).and_then(|f| f.child.as_ref());
        let items = match edges.value {
            GValue::List(items) => items.as_slice(),
            _ => &[],
        };
        (Nodes { plan: node_plan, edges: items }, page)
    }
}

impl serde::Serialize for Planned<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let Some(plan) = self.plan else { return self.value.serialize(ser) };
        match self.value {
            GValue::Object(map) => {
                let mut out = ser.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    match plan.fields.iter().find(|f| f.key == k.as_str()) {
                        Some(f) => out.serialize_entry(&f.snake, &Planned { plan: f.child.as_ref(), value: v })?,
                        None => out.serialize_entry(&to_snake(k), v)?,
                    }
                }
                out.end()
            }
            GValue::List(items) => {
                let mut out = ser.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Planned { plan: Some(plan), value: item })?;
                }
                out.end()
            }
            other => other.serialize(ser),
        }
    }
}

/// The nodes of a connection's edges, as a list.
pub struct Nodes<'a> {
    plan: Option<&'a Plan>,
    edges: &'a [GValue],
}

impl serde::Serialize for Nodes<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut out = ser.serialize_seq(Some(self.edges.len()))?;
        for edge in self.edges {
            let node = match edge {
                GValue::Object(m) => m.get("node").unwrap_or(&NULL),
                _ => &NULL,
            };
            out.serialize_element(&Planned { plan: self.plan, value: node })?;
        }
        out.end()
    }
}

/// The names every route shares: pagination.
const COMMON_RENAMES: &[(&str, &str)] = &[("limit", "first"), ("cursor", "after")];

impl Signature {
    /// `renames`: `(rest name, variable)` pairs where the REST name is not the variable's snake_case.
    pub fn new(method: &axum::http::Method, path: &str, document: &str, renames: &[(&str, &str)]) -> Signature {
        let doc = async_graphql::parser::parse_query(document)
            .unwrap_or_else(|e| panic!("route document {path} does not parse: {e}"));
        let op = match &doc.operations {
            DocumentOperations::Single(op) => &op.node,
            DocumentOperations::Multiple(_) => panic!("route document {path} has more than one operation"),
        };
        let root = match op.ty {
            async_graphql::parser::types::OperationType::Query => "Query",
            async_graphql::parser::types::OperationType::Mutation => "Mutation",
            async_graphql::parser::types::OperationType::Subscription => "Subscription",
        };
        let path_names: Vec<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        let has_body =
            matches!(*method, axum::http::Method::POST | axum::http::Method::PUT | axum::http::Method::PATCH);
        let mut params = Vec::new();
        let mut whole_body = None;
        for v in &op.variable_definitions {
            let var = v.node.name.node.to_string();
            let ty = Ty::from_parsed(&v.node.var_type.node);
            let default = v.node.default_value.as_ref().map(|d| d.node.clone().into_json().unwrap_or(Value::Null));
            let rest = renames
                .iter()
                .chain(COMMON_RENAMES)
                .find(|(_, to)| *to == var)
                .map(|(from, _)| from.to_string())
                .unwrap_or_else(|| to_snake(&var));
            let loc = if path_names.contains(&rest.as_str()) {
                Loc::Path
            } else if has_body {
                Loc::Body
            } else {
                Loc::Query
            };
            let p = Param { rest, var, loc, ty, default };
            if has_body && p.var == "input" && p.loc == Loc::Body {
                whole_body = Some(p);
            } else {
                params.push(p);
            }
        }
        for name in path_names {
            assert!(
                params.iter().any(|p| p.loc == Loc::Path && p.rest == name),
                "route {path}: path parameter {{{name}}} is not a variable of its document"
            );
        }
        Signature { params, whole_body, doc, root, plan: std::sync::OnceLock::new() }
    }

    pub fn has_body(&self) -> bool {
        self.whole_body.is_some() || self.params.iter().any(|p| p.loc == Loc::Body)
    }

    /// The variables of a request, or the first thing wrong with it.
    pub fn bind(
        &self,
        types: &Types,
        path: &HashMap<String, String>,
        query: &HashMap<String, String>,
        body: Option<Value>,
    ) -> Result<Value, BindError> {
        let mut vars = Map::new();
        let body = match body {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(refuse("body", "body", "must be a JSON object")),
        };
        if let Some(p) = &self.whole_body {
            let obj = Value::Object(body.clone().unwrap_or_default());
            vars.insert(p.var.clone(), coerce(types, &p.ty, obj, "", Loc::Body)?);
        } else if let Some(body) = &body {
            let known: Vec<&str> = self.params.iter().filter(|p| p.loc == Loc::Body).map(|p| p.rest.as_str()).collect();
            if let Some(k) = body.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(refuse(k.clone(), "body", unknown_message(&known)));
            }
        }
        for p in &self.params {
            let given = match p.loc {
                Loc::Path => path.get(&p.rest).map(|s| coerce_str(types, &p.ty, s, &p.rest, Loc::Path)).transpose()?,
                Loc::Query => {
                    query.get(&p.rest).map(|s| coerce_str(types, &p.ty, s, &p.rest, Loc::Query)).transpose()?
                }
                Loc::Body => match body.as_ref().and_then(|b| b.get(&p.rest)) {
                    Some(v) => Some(coerce(types, &p.ty, v.clone(), &p.rest, Loc::Body)?),
                    None => None,
                },
            };
            match given {
                Some(v) => {
                    vars.insert(p.var.clone(), v);
                }
                None if p.required() => return Err(refuse(p.rest.clone(), p.loc.as_str(), "is required")),
                None => {}
            }
        }
        Ok(Value::Object(vars))
    }

    /// The REST field and its location for a field an error of the schema names (`first` →
    /// `limit` in the query, `name` → `name` in the body, `pricing.amount` → `pricing.amount`).
    pub fn rest_field(&self, field: &str) -> (String, Option<&'static str>) {
        let (head, rest) = field.split_once('.').map(|(h, r)| (h, Some(r))).unwrap_or((field, None));
        if let Some(p) = self.params.iter().find(|p| p.var == head) {
            let name = match rest {
                Some(r) => format!("{}.{}", p.rest, snake_path(r)),
                None => p.rest.clone(),
            };
            return (name, Some(p.loc.as_str()));
        }
        if let Some(p) = &self.whole_body {
            if head == p.var {
                return (rest.map(snake_path).unwrap_or_else(|| "body".into()), Some("body"));
            }
            return (snake_path(field), Some("body"));
        }
        if head.contains('-') || head.starts_with(|c: char| c.is_ascii_uppercase()) {
            return (field.to_string(), Some("header"));
        }
        (snake_path(field), None)
    }

    /// The data of a response as REST JSON: snake_case keys, except below JSON fields (user data).
    pub fn rest_data<'a>(&'a self, types: &Types, data: &'a GValue) -> Planned<'a> {
        let plan =
            self.plan.get_or_init(|| Plan::of(types, &self.doc, &self.operation().selection_set.node, self.root));
        Planned { plan: Some(plan), value: data }
    }

    /// The route's document, its operation's selection and the root type it selects from.
    pub fn selection(&self) -> (&ExecutableDocument, &SelectionSet, &'static str) {
        (&self.doc, &self.operation().selection_set.node, self.root)
    }

    fn operation(&self) -> &async_graphql::parser::types::OperationDefinition {
        match &self.doc.operations {
            DocumentOperations::Single(op) => &op.node,
            DocumentOperations::Multiple(_) => unreachable!("checked in new"),
        }
    }
}

fn snake_path(p: &str) -> String {
    p.split('.').map(to_snake).collect::<Vec<_>>().join(".")
}

fn unknown_message(known: &[&str]) -> String {
    if known.is_empty() {
        "unknown field: this route takes no body fields".into()
    } else {
        format!("unknown field; expected one of: {}", known.join(", "))
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// A JSON value as a value of `ty` (keys of input objects from snake_case to the schema's names,
/// enum values in any case to the schema's spelling).
fn coerce(types: &Types, ty: &Ty, v: Value, path: &str, loc: Loc) -> Result<Value, BindError> {
    let here = || if path.is_empty() { "body".to_string() } else { path.to_string() };
    if v.is_null() {
        return if ty.nullable() { Ok(Value::Null) } else { Err(refuse(here(), loc.as_str(), "must not be null")) };
    }
    match ty {
        Ty::List { of, .. } => match v {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| coerce(types, of, item, &format!("{}[{i}]", here()), loc))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => Err(refuse(here(), loc.as_str(), "must be an array")),
        },
        Ty::Named { name, .. } => match (name.as_str(), &v) {
            ("Int", Value::Number(n)) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => Ok(v),
            ("Int", _) => Err(refuse(here(), loc.as_str(), "must be an integer (32-bit)")),
            ("Float", Value::Number(_)) => Ok(v),
            ("Float", _) => Err(refuse(here(), loc.as_str(), "must be a number")),
            ("Boolean", Value::Bool(_)) => Ok(v),
            ("Boolean", _) => Err(refuse(here(), loc.as_str(), "must be true or false")),
            ("String" | "ID", Value::String(s)) if s.contains('\0') => {
                Err(refuse(here(), loc.as_str(), "must not contain the NUL character (U+0000)"))
            }
            ("String" | "ID", Value::String(_)) => Ok(v),
            ("String" | "ID", _) => Err(refuse(here(), loc.as_str(), "must be a string")),
            ("DateTime", Value::String(s)) => date_time(s, &here(), loc).map(|_| v.clone()),
            ("DateTime", _) => Err(refuse(here(), loc.as_str(), "must be an RFC 3339 date-time string")),
            ("JSON", _) => Ok(v),
            _ => match types.defs.get(name) {
                Some(Def::Enum(values)) => {
                    match v.as_str().and_then(|s| values.iter().find(|e| e.eq_ignore_ascii_case(s))) {
                        Some(e) => Ok(json!(e)),
                        None => Err(refuse(here(), loc.as_str(), format!("must be one of: {}", values.join(", ")))),
                    }
                }
                Some(Def::Input(fields)) => {
                    let Value::Object(m) = v else {
                        return Err(refuse(here(), loc.as_str(), "must be an object"));
                    };
                    let mut out = Map::new();
                    let names: Vec<String> = fields.iter().map(|f| to_snake(&f.name)).collect();
                    for (k, item) in m {
                        let Some(f) = fields.iter().find(|f| to_snake(&f.name) == k) else {
                            let known: Vec<&str> = names.iter().map(String::as_str).collect();
                            return Err(refuse(join(path, &k), loc.as_str(), unknown_message(&known)));
                        };
                        out.insert(f.name.clone(), coerce(types, &f.ty, item, &join(path, &k), loc)?);
                    }
                    for f in fields {
                        if !f.ty.nullable() && f.default.is_none() && !out.contains_key(&f.name) {
                            return Err(refuse(join(path, &to_snake(&f.name)), loc.as_str(), "is required"));
                        }
                    }
                    Ok(Value::Object(out))
                }
                // Other scalars check themselves in the schema.
                _ => Ok(v),
            },
        },
    }
}

fn date_time(s: &str, field: &str, loc: Loc) -> Result<(), BindError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|_| ())
        .map_err(|_| refuse(field, loc.as_str(), "must be an RFC 3339 date-time (2026-01-31T00:00:00Z)"))
}

/// A path or query string as a value of `ty` (lists are comma-separated).
fn coerce_str(types: &Types, ty: &Ty, s: &str, field: &str, loc: Loc) -> Result<Value, BindError> {
    match ty {
        Ty::List { of, .. } => s
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| coerce_str(types, of, p, field, loc))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Ty::Named { name, .. } => match name.as_str() {
            "Int" => s
                .parse::<i32>()
                .map(|i| json!(i))
                .map_err(|_| refuse(field, loc.as_str(), "must be an integer (32-bit)")),
            "Float" => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| json!(f))
                .ok_or_else(|| refuse(field, loc.as_str(), "must be a number")),
            "Boolean" => match s {
                "true" | "1" => Ok(json!(true)),
                "false" | "0" => Ok(json!(false)),
                _ => Err(refuse(field, loc.as_str(), "must be true or false")),
            },
            "DateTime" => date_time(s, field, loc).map(|_| json!(s)),
            _ => coerce(types, ty, json!(s), field, loc),
        },
    }
}

/// The fields of a selection set, with fragments spread in place.
pub fn fields_of<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
) -> Vec<&'a async_graphql::parser::types::Field> {
    let mut out = Vec::new();
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => out.push(&f.node),
            Selection::InlineFragment(f) => out.extend(fields_of(doc, &f.node.selection_set.node)),
            Selection::FragmentSpread(s) => {
                if let Some(frag) = doc.fragments.get(&s.node.fragment_name.node) {
                    out.extend(fields_of(doc, &frag.node.selection_set.node));
                }
            }
        }
    }
    out
}

/// camelCase name of a REST field, for the rare caller that needs the variable spelling.
pub fn variable_name(rest: &str) -> String {
    to_camel(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::schemas::{DocBuilder, response_schema};

    const SDL: &str = r#"
        type Query { thing(id: ID!, first: Int, kind: Kind): Thing }
        type Mutation { make(input: MakeInput!): Thing }
        type Thing { id: ID! createdAt: DateTime! metadata: JSON inner: Inner kind: Kind! }
        type Inner { someValue: Int }
        enum Kind { LIVE TEST }
        input MakeInput { name: String! allowedIps: [String!] metadata: JSON kind: Kind = LIVE nested: Nested }
        input Nested { maxValue: Int! }
        scalar DateTime
        scalar JSON
    "#;

    fn sig(method: axum::http::Method, path: &str, doc: &str) -> Signature {
        Signature::new(&method, path, doc, &[])
    }

    #[test]
    fn binds_path_query_and_body_by_type() {
        let types = Types::from_sdl(SDL);
        let s = sig(
            axum::http::Method::GET,
            "/things/{id}",
            "query($id: ID!, $first: Int, $kind: Kind) { thing(id: $id, first: $first, kind: $kind) { id } }",
        );
        let path = HashMap::from([("id".to_string(), "t_1".to_string())]);
        let query = HashMap::from([("limit".to_string(), "5".to_string()), ("kind".to_string(), "test".to_string())]);
        assert_eq!(s.bind(&types, &path, &query, None).unwrap(), json!({ "id": "t_1", "first": 5, "kind": "TEST" }));
        let bad = HashMap::from([("limit".to_string(), "x".to_string())]);
        let e = s.bind(&types, &path, &bad, None).unwrap_err();
        assert_eq!((e.field.as_str(), e.location), ("limit", "query"));
        assert_eq!(s.rest_field("first"), ("limit".to_string(), Some("query")));
        assert_eq!(s.rest_field("X-Organization-Id"), ("X-Organization-Id".to_string(), Some("header")));
    }

    #[test]
    fn a_whole_body_is_checked_against_its_input_type() {
        let types = Types::from_sdl(SDL);
        let s = sig(axum::http::Method::POST, "/things", "mutation($input: MakeInput!) { make(input: $input) { id } }");
        let none = HashMap::new();
        let ok = s
            .bind(
                &types,
                &none,
                &none,
                Some(json!({ "name": "a", "allowed_ips": ["1.2.3.4"], "metadata": { "user_id": 1 } })),
            )
            .unwrap();
        assert_eq!(ok, json!({ "input": { "name": "a", "allowedIps": ["1.2.3.4"], "metadata": { "user_id": 1 } } }));
        let e = s.bind(&types, &none, &none, Some(json!({ "name": "a", "colour": 1 }))).unwrap_err();
        assert_eq!(e.field, "colour");
        assert!(e.message.contains("allowed_ips"), "{}", e.message);
        let e = s.bind(&types, &none, &none, Some(json!({}))).unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), ("name", "is required"));
        let e = s.bind(&types, &none, &none, Some(json!({ "name": "a", "nested": { "max_value": "x" } }))).unwrap_err();
        assert_eq!(e.field, "nested.max_value");
        let e = s.bind(&types, &none, &none, Some(json!({ "name": "a", "kind": "nope" }))).unwrap_err();
        assert_eq!(e.message, "must be one of: LIVE, TEST");
        assert_eq!(s.rest_field("input.allowedIps"), ("allowed_ips".to_string(), Some("body")));
        assert_eq!(s.rest_field("allowedIps"), ("allowed_ips".to_string(), Some("body")));
    }

    #[test]
    fn response_keys_follow_the_types_and_json_passes_untouched() {
        let types = Types::from_sdl(SDL);
        let s = sig(
            axum::http::Method::GET,
            "/things/{id}",
            "query($id: ID!) { thing(id: $id) { id createdAt metadata inner { someValue } } }",
        );
        let data = json!({ "thing": { "id": "t", "createdAt": "x", "metadata": { "camelKey": { "deepKey": 1 } }, "inner": { "someValue": 2 } } });
        let gql = async_graphql::Value::from_json(data).unwrap();
        assert_eq!(
            serde_json::to_value(s.rest_data(&types, &gql)).unwrap(),
            json!({ "thing": { "id": "t", "created_at": "x", "metadata": { "camelKey": { "deepKey": 1 } }, "inner": { "some_value": 2 } } }),
        );
        let mut b = DocBuilder::default();
        let schema = response_schema(&s, &types, "thing", &mut b);
        assert_eq!(schema["anyOf"][1], json!({ "type": "null" }), "nullable: {schema}");
        let thing = b.deref(&schema);
        assert_eq!(thing["properties"]["created_at"]["format"], "date-time");
        assert_eq!(thing["required"], json!(["id", "created_at"]));
        assert_eq!(b.components["Thing"], thing, "an object type is a component");
    }
}
