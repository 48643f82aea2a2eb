//! Looking at single objects and at what changed: DevTools' Retainers pane, Containment view and Comparison
//! view, without a UI.
//!
//! Everything here borrows an already parsed [`HeapSnapshot`] and its [`Analysis`]; nothing is recomputed
//! that the analysis already has. The one extra structure is the reverse edge index ([`RetainerIndex`]), two
//! `u32` per edge, which is built only by commands that walk retainers (it costs one pass over the edges).
//!
//! - [`retainers`]: the retainer index, DevTools' retainer order and its auto-expanded chain, "Ignore this
//!   retainer".
//! - [`paths`]: several retaining paths per object, and grouping the objects of a class by path.
//! - [`find`]: searching objects by class, name, string content and retained size.
//! - [`diff`]: the Comparison view (per class key: new, deleted, sizes), matched by node id.
//! - [`dupstrings`]: strings stored many times with the same content.
//! - [`locations`]: Summary rows split by creation site (`summary --by-location`).
//! - [`allocation`]: allocation stacks and "allocated by" groups, from snapshots taken while tracking
//!   allocations (`leakscope timeline`).

pub mod allocation;
pub mod diff;
pub mod dupstrings;
pub mod find;
pub mod locations;
pub mod paths;
pub mod retainers;

use crate::analysis::names::format_property_name;
use crate::analysis::utf16::{cmp as utf16_cmp, len as utf16_len};
use crate::analysis::Analysis;
use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType};
use std::collections::HashMap;

pub use retainers::{Chain, ChainStop, Retainer, RetainerIndex, RetainerView};

/// Errors of the inspection functions. They describe bad input; nothing here panics on it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InspectError {
    #[error("no object with id @{0} in this snapshot")]
    UnknownId(u32),
    #[error("'{0}' is not an object id (write @123 or 123)")]
    BadId(String),
    #[error("no object of class '{0}' in this snapshot")]
    UnknownClass(String),
    #[error("invalid regular expression for {what}: {message}")]
    BadPattern { what: &'static str, message: String },
    #[error("--ignore '{0}' matches no object id, class or edge name")]
    IgnoreMatchesNothing(String),
}

/// Node id → node, built once (a sorted copy of the id column, binary searched).
pub struct IdIndex {
    sorted: Vec<(u32, NodeIndex)>,
}

impl IdIndex {
    pub fn build(snapshot: &HeapSnapshot) -> IdIndex {
        let mut sorted: Vec<(u32, NodeIndex)> =
            (0..snapshot.node_count() as NodeIndex).map(|n| (snapshot.node_id(n), n)).collect();
        sorted.sort_unstable();
        IdIndex { sorted }
    }

    pub fn get(&self, id: u32) -> Option<NodeIndex> {
        self.sorted.binary_search_by_key(&id, |&(i, _)| i).ok().map(|p| self.sorted[p].1)
    }
}

/// Parses `@123` or `123`.
pub fn parse_id(text: &str) -> Result<u32, InspectError> {
    let digits = text.trim().strip_prefix('@').unwrap_or(text.trim());
    digits.parse::<u32>().map_err(|_| InspectError::BadId(text.to_string()))
}

/// Finds a node by `@id` text: one linear scan, for commands that look up a single id.
pub fn resolve_id(snapshot: &HeapSnapshot, text: &str) -> Result<NodeIndex, InspectError> {
    let id = parse_id(text)?;
    snapshot.find_by_id(id).ok_or(InspectError::UnknownId(id))
}

/// The name DevTools shows for a node (`HeapSnapshotNode.name()`): concatenated strings flattened (up to
/// 1024 characters), plain `Object`s named after their properties (`{a, b, …, z}`), otherwise the raw name.
/// The Retainers pane sorts equally distant retainers by this name.
pub fn display_name(snapshot: &HeapSnapshot, node: NodeIndex) -> String {
    match snapshot.node_type(node) {
        NodeType::ConsString => flatten_cons_string(snapshot, node),
        NodeType::Object if snapshot.node_name(node) == "Object" => plain_object_name(snapshot, node),
        _ => snapshot.node_name(node).to_string(),
    }
}

/// A concatenated string's content, left to right, stopping once 1024 UTF-16 units are collected.
pub fn flatten_cons_string(snapshot: &HeapSnapshot, node: NodeIndex) -> String {
    let mut out = String::new();
    let mut units = 0usize;
    let mut stack = vec![Some(node)];
    while let Some(item) = stack.pop() {
        if units >= 1024 {
            break;
        }
        // A missing part is node 0 in DevTools (the root, whose name is empty).
        let Some(current) = item else { continue };
        if snapshot.node_type(current) != NodeType::ConsString {
            let text = snapshot.node_name(current);
            units += utf16_len(text);
            out.push_str(text);
            continue;
        }
        let (mut first, mut second) = (None, None);
        for edge in snapshot.edges(current) {
            if snapshot.edge_type(edge) != EdgeType::Internal {
                continue;
            }
            match &*snapshot.edge_name(edge) {
                "first" if first.is_none() => first = Some(snapshot.edge_target(edge)),
                "second" if second.is_none() => second = Some(snapshot.edge_target(edge)),
                _ => {}
            }
            if first.is_some() && second.is_some() {
                break;
            }
        }
        stack.push(second);
        stack.push(first);
    }
    out
}

/// `{first, second, …, last}`: properties taken alternately from both ends until the name would pass 100
/// characters (at least one is always shown), as the DevTools grid names plain objects.
pub fn plain_object_name(snapshot: &HeapSnapshot, node: NodeIndex) -> String {
    let edges: Vec<_> = snapshot
        .edges(node)
        .filter(|&e| snapshot.edge_type(e) == EdgeType::Property && snapshot.edge_name(e) != "__proto__")
        .collect();
    let (mut start, mut end) = (String::from("{"), String::from("}"));
    let (mut start_len, mut end_len) = (1usize, 1usize);
    let (mut lo, mut hi) = (0usize, edges.len());
    let mut from_end = false;
    while lo < hi {
        let edge = if from_end { edges[hi - 1] } else { edges[lo] };
        let name = snapshot.edge_name(edge);
        let formatted = format_property_name(&name);
        let flen = utf16_len(&formatted);
        if start_len > 1 && start_len + end_len + flen > 100 {
            break;
        }
        if from_end {
            hi -= 1;
            if end_len > 1 {
                end.insert_str(0, ", ");
                end_len += 2;
            }
            end.insert_str(0, &formatted);
            end_len += flen;
        } else {
            lo += 1;
            if start_len > 1 {
                start.push_str(", ");
                start_len += 2;
            }
            start.push_str(&formatted);
            start_len += flen;
        }
        from_end = !from_end;
    }
    if lo < hi {
        start.push_str(", …");
    }
    if end_len > 1 {
        start.push_str(", ");
    }
    start + &end
}

/// How an object is shown in paths and lists: `"text"` for strings, `name()` for functions, `name[]` for
/// arrays, the DevTools name otherwise (class name when the object has no name of its own), then ` @id`.
pub fn node_label(snapshot: &HeapSnapshot, analysis: &Analysis, node: NodeIndex) -> String {
    let shown = match snapshot.node_type(node) {
        NodeType::String | NodeType::ConsString | NodeType::SlicedString => {
            format!("\"{}\"", shorten(&display_name(snapshot, node), 40))
        }
        NodeType::Closure => {
            let name = snapshot.node_name(node);
            format!("{}()", if name.is_empty() { "(anonymous)" } else { name })
        }
        NodeType::Array => format!("{}[]", shorten(snapshot.node_name(node), 60)),
        _ => {
            let name = display_name(snapshot, node);
            let class = analysis.class_name(snapshot, node);
            if name.is_empty() {
                class.to_string()
            } else {
                shorten(&name, 70)
            }
        }
    };
    format!("{shown} @{}", snapshot.node_id(node))
}

/// Cuts `text` to `max` characters (with `…`) and replaces control characters by spaces.
pub fn shorten(text: &str, max: usize) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= max {
        clean
    } else {
        let mut short: String = clean.chars().take(max.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

/// Where a node was created: its own `locations` entry (closures, constructed objects, generators) or, for a
/// closure's `system / Context`, the location of a closure that uses that context (found through the
/// retainer index).
pub fn source_location(
    snapshot: &HeapSnapshot,
    index: Option<&RetainerIndex>,
    node: NodeIndex,
) -> Option<crate::snapshot::SourceLocation> {
    if let Some(location) = snapshot.location(node) {
        return Some(location);
    }
    let index = index?;
    if !is_context(snapshot, node) {
        return None;
    }
    index
        .retainers(node)
        .filter(|&(from, edge)| {
            snapshot.node_type(from) == NodeType::Closure
                && snapshot.edge_type(edge) == EdgeType::Internal
                && snapshot.edge_name(edge) == "context"
        })
        .find_map(|(from, _)| snapshot.location(from))
}

/// A function's scope, `system / Context` (type `object` in current V8, `hidden` in older ones).
pub fn is_context(snapshot: &HeapSnapshot, node: NodeIndex) -> bool {
    matches!(snapshot.node_type(node), NodeType::Hidden | NodeType::Object)
        && snapshot.node_name(node) == "system / Context"
}

/// Counts how many nodes each class name has (for `--class` lookups and "did you mean").
pub fn class_counts<'a>(snapshot: &'a HeapSnapshot, analysis: &'a Analysis) -> HashMap<&'a str, usize> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for node in 0..snapshot.node_count() as NodeIndex {
        *counts.entry(analysis.class_name(snapshot, node)).or_default() += 1;
    }
    counts
}

/// Retained size per group, counting only the topmost member of a group on each dominator path (DevTools'
/// rule for a class's retained size). `group_of[node]` is the node's group, or `u32::MAX` for none.
pub fn topmost_retained(snapshot: &HeapSnapshot, analysis: &Analysis, group_of: &[u32], groups: usize) -> Vec<u64> {
    crate::analysis::summary::topmost_retained(
        snapshot.root(),
        &analysis.dominator_tree,
        &analysis.retained,
        group_of,
        groups,
        analysis.parallel,
    )
}
