//! Searching objects: by class name, by name, by string content (the first 1024 characters, which is what
//! snapshots keep), by retained size.

use super::{flatten_cons_string, InspectError};
use crate::analysis::Analysis;
use crate::snapshot::{HeapSnapshot, NodeIndex, NodeType};
use regex::Regex;

/// What to look for. Every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Matches the class name (the Summary's grouping name).
    pub class: Option<String>,
    /// Matches the node's own name (constructor name, function name, string content, ...).
    pub name: Option<String>,
    /// Matches string content; only string nodes (plain, concatenated, sliced) are considered.
    pub string: Option<String>,
    pub min_retained: u64,
    /// At most this many results (0 = all).
    pub limit: usize,
}

/// The result: matches sorted by retained size (largest first), and how many matched in total.
#[derive(Debug, Clone)]
pub struct Found {
    pub nodes: Vec<NodeIndex>,
    pub total: usize,
    pub total_retained: u64,
}

fn compile(what: &'static str, pattern: &Option<String>) -> Result<Option<Regex>, InspectError> {
    pattern
        .as_deref()
        .map(|p| Regex::new(p).map_err(|e| InspectError::BadPattern { what, message: e.to_string() }))
        .transpose()
}

fn is_string(kind: NodeType) -> bool {
    matches!(kind, NodeType::String | NodeType::ConsString | NodeType::SlicedString)
}

/// Runs the query over every node. Class names are tested once per class, not once per node.
pub fn find(snapshot: &HeapSnapshot, analysis: &Analysis, query: &Query) -> Result<Found, InspectError> {
    let class = compile("--class", &query.class)?;
    let name = compile("--name", &query.name)?;
    let string = compile("--string", &query.string)?;
    let mut class_ok: std::collections::HashMap<u32, bool> = std::collections::HashMap::new();
    let mut nodes = Vec::new();
    for node in 0..snapshot.node_count() as NodeIndex {
        if analysis.retained.get(node) < query.min_retained {
            continue;
        }
        let kind = snapshot.node_type(node);
        if string.is_some() && !is_string(kind) {
            continue;
        }
        if let Some(class) = &class {
            let id = analysis.classes.class_of(node);
            let ok = *class_ok.entry(id).or_insert_with(|| class.is_match(analysis.classes.name(snapshot, id)));
            if !ok {
                continue;
            }
        }
        if let Some(name) = &name {
            if !name.is_match(snapshot.node_name(node)) {
                continue;
            }
        }
        if let Some(string) = &string {
            let matched = if kind == NodeType::ConsString {
                string.is_match(&flatten_cons_string(snapshot, node))
            } else {
                string.is_match(snapshot.node_name(node))
            };
            if !matched {
                continue;
            }
        }
        nodes.push(node);
    }
    let total = nodes.len();
    let total_retained = nodes.iter().map(|&n| analysis.retained.get(n)).sum();
    nodes.sort_by(|a, b| analysis.retained.get(*b).cmp(&analysis.retained.get(*a)).then(a.cmp(b)));
    if query.limit > 0 {
        nodes.truncate(query.limit);
    }
    Ok(Found { nodes, total, total_retained })
}

/// Nodes whose class name is exactly `class` (file order), or an error naming the class.
pub fn nodes_of_class(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    class: &str,
) -> Result<Vec<NodeIndex>, InspectError> {
    let mut class_ok: std::collections::HashMap<u32, bool> = std::collections::HashMap::new();
    let nodes: Vec<NodeIndex> = (0..snapshot.node_count() as NodeIndex)
        .filter(|&n| {
            let id = analysis.classes.class_of(n);
            *class_ok.entry(id).or_insert_with(|| analysis.classes.name(snapshot, id) == class)
        })
        .collect();
    if nodes.is_empty() {
        return Err(InspectError::UnknownClass(class.to_string()));
    }
    Ok(nodes)
}
