//! The document cache: parsed GraphQL documents by query text, each with what metering and limits
//! need of its operations (label, root fields, whether it passed full validation). State only.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};

/// What metering and limits need to know of an operation.
#[derive(Clone)]
pub struct OperationInfo {
    /// `query`, `mutation` or `subscription` (a request naming no operation of its document is
    /// described as an invalid query: execution refuses it).
    pub kind: OperationType,
    /// `query Name` for a named operation, else its type and root fields (`query viewer,plans`).
    pub label: Arc<str>,
    /// The operation as metrics name it: its type and first root fields (`query viewer,apiKeys`).
    /// Only used once the operation has passed validation, so the fields are the schema's.
    pub metric: Arc<str>,
    /// Its root fields as `Query.viewer`, `Mutation.createApiKey`: what per-operation costs name.
    pub roots: Arc<[String]>,
    /// For an operation of a cached document that declares no variables: set once it has passed
    /// full validation. Validation then depends on nothing but the document and the schema, so
    /// later runs skip the rules that cannot change their verdict (`server::pipeline::execute`).
    pub validated: Option<Arc<AtomicBool>>,
    /// The keys of the response's `data`, in the order the selection asks for them (aliases
    /// included, fragments expanded): the order the response keeps.
    pub response_keys: Arc<[String]>,
}

/// A parsed document and what each of its operations is.
#[derive(Clone)]
pub struct CachedDocument {
    pub doc: ExecutableDocument,
    pub operations: Arc<[(Option<String>, OperationInfo)]>,
}

/// The response keys of a selection set in order, fragments expanded (each once).
fn response_keys<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    seen: &mut Vec<&'a str>,
    out: &mut Vec<String>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                let key = f.node.response_key().node.as_str();
                if !out.iter().any(|k| k == key) {
                    out.push(key.to_string());
                }
            }
            Selection::InlineFragment(inline) => response_keys(doc, &inline.node.selection_set.node, seen, out),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                if let Some(frag) = doc.fragments.get(name) {
                    response_keys(doc, &frag.node.selection_set.node, seen, out);
                }
            }
        }
    }
}

fn describe(doc: &ExecutableDocument) -> Arc<[(Option<String>, OperationInfo)]> {
    doc.operations
        .iter()
        .map(|(name, op)| {
            let (ty, root) = match op.node.ty {
                OperationType::Query => ("query", "Query"),
                OperationType::Mutation => ("mutation", "Mutation"),
                OperationType::Subscription => ("subscription", "Subscription"),
            };
            let mut fields: Vec<&str> = op
                .node
                .selection_set
                .node
                .items
                .iter()
                .filter_map(|i| match &i.node {
                    Selection::Field(f) => Some(f.node.name.node.as_str()),
                    _ => None,
                })
                .collect();
            fields.sort_unstable();
            fields.dedup();
            // The label is part of the roll-ups' keys (PostgreSQL indexes refuse rows over ~2.7 KB):
            // long names and field lists are cut to 120 bytes.
            let mut label = match name {
                Some(n) => format!("{ty} {n}"),
                None => format!("{ty} {}", fields.join(",")),
            };
            if label.len() > 120 {
                let mut end = 117;
                while !label.is_char_boundary(end) {
                    end -= 1;
                }
                label.truncate(end);
                label.push_str("...");
            }
            let mut metric = format!("{ty} {}", fields.iter().take(3).copied().collect::<Vec<_>>().join(","));
            if fields.len() > 3 {
                metric.push_str(",…");
            }
            let roots: Arc<[String]> = fields.iter().map(|f| format!("{root}.{f}")).collect();
            let validated = op.node.variable_definitions.is_empty().then(|| Arc::new(AtomicBool::new(false)));
            let mut keys = Vec::new();
            response_keys(doc, &op.node.selection_set.node, &mut Vec::new(), &mut keys);
            let info = OperationInfo {
                kind: op.node.ty,
                label: Arc::from(label),
                metric: Arc::from(metric),
                roots,
                validated,
                response_keys: keys.into(),
            };
            (name.map(|n| n.to_string()), info)
        })
        .collect()
}

fn pick(operations: &[(Option<String>, OperationInfo)], wanted: Option<&str>) -> OperationInfo {
    static INVALID: std::sync::LazyLock<OperationInfo> = std::sync::LazyLock::new(|| OperationInfo {
        kind: OperationType::Query,
        label: Arc::from("invalid"),
        metric: Arc::from("invalid"),
        roots: Arc::new([]),
        validated: None,
        response_keys: Arc::new([]),
    });
    operations
        .iter()
        .find(|(name, _)| wanted.is_none() || name.as_deref() == wanted)
        .map(|(_, info)| info.clone())
        .unwrap_or_else(|| INVALID.clone())
}

/// Parsed GraphQL documents by query text: clients repeat their queries, and parsing is a large
/// share of a small request's cost. Keyed by text a caller chooses, so it keeps SipHash.
pub struct Documents(moka::sync::Cache<String, CachedDocument>);

impl Default for Documents {
    fn default() -> Self {
        Self(moka::sync::Cache::builder().max_capacity(2_000).build())
    }
}

impl Documents {
    /// Reuses the parsed document of a query seen before (queries up to 16 KiB are cached), and
    /// describes the operation for metering and per-operation costs.
    pub fn prepare(&self, request: async_graphql::Request) -> (async_graphql::Request, OperationInfo) {
        prepare(&self.0, request)
    }
}

fn prepare(
    documents: &moka::sync::Cache<String, CachedDocument>,
    mut request: async_graphql::Request,
) -> (async_graphql::Request, OperationInfo) {
    if request.query.len() <= 16 * 1024
        && let Some(cached) = documents.get(&request.query)
    {
        let info = pick(&cached.operations, request.operation_name.as_deref());
        request.set_parsed_query(cached.doc);
        return (request, info);
    }
    let operation = request.operation_name.clone();
    let cacheable = request.query.len() <= 16 * 1024;
    let Ok(doc) = request.parsed_query() else {
        return (request, pick(&[], None));
    };
    let operations = describe(doc);
    let mut info = pick(&operations, operation.as_deref());
    if !cacheable {
        info.validated = None;
    } else {
        let cached = CachedDocument { doc: doc.clone(), operations };
        documents.insert(request.query.clone(), cached);
    }
    (request, info)
}
