//! Duplicated strings: the same content stored in many string objects. Follows DevTools' "Duplicated strings"
//! filter: plain and concatenated strings, skipping already flattened concatenations (one part empty) and
//! strings of size 0. Snapshots keep only the first 1024 characters of long strings, so long strings are
//! grouped by that prefix and their size; such groups are marked `truncated`.

use super::{flatten_cons_string, utf16_len};
use crate::sizes::CompactSizes;
use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType};
use std::collections::HashMap;

/// One duplicated content.
#[derive(Debug, Clone)]
pub struct DuplicateString {
    /// The content (up to 1024 characters).
    pub text: String,
    pub count: u64,
    /// Shallow bytes of all copies.
    pub total_size: u64,
    /// Bytes that one copy would save: total minus the largest copy.
    pub wasted: u64,
    /// The content is a prefix: the snapshot did not keep the whole string.
    pub truncated: bool,
    /// The copies, in file order.
    pub nodes: Vec<NodeIndex>,
}

fn is_flat_cons_string(snapshot: &HeapSnapshot, node: NodeIndex) -> bool {
    snapshot.edges(node).any(|e| {
        snapshot.edge_type(e) == EdgeType::Internal
            && matches!(&*snapshot.edge_name(e), "first" | "second")
            && snapshot.node_name(snapshot.edge_target(e)).is_empty()
            && snapshot.node_type(snapshot.edge_target(e)) != NodeType::ConsString
    })
}

/// Groups strings by content. `shallow` are the analysis' shallow sizes. Results: most wasted bytes first.
pub fn duplicated_strings(snapshot: &HeapSnapshot, shallow: &CompactSizes, min_count: u64) -> Vec<DuplicateString> {
    // Plain strings share their name index when their content is equal, so group those by index; only
    // concatenated strings need their text built (and hashed).
    let mut by_index: HashMap<u32, Vec<NodeIndex>> = HashMap::new();
    let mut cons: HashMap<String, Vec<NodeIndex>> = HashMap::new();
    let mut long: HashMap<(String, u64), Vec<NodeIndex>> = HashMap::new();
    for node in 0..snapshot.node_count() as NodeIndex {
        let kind = snapshot.node_type(node);
        if !matches!(kind, NodeType::String | NodeType::ConsString) || shallow.get(node) == 0 {
            continue;
        }
        if kind == NodeType::ConsString {
            if is_flat_cons_string(snapshot, node) {
                continue;
            }
            let text = flatten_cons_string(snapshot, node);
            if utf16_len(&text) >= 1024 {
                long.entry((text, shallow.get(node))).or_default().push(node);
            } else {
                cons.entry(text).or_default().push(node);
            }
        } else {
            by_index.entry(snapshot.node_name_index(node)).or_default().push(node);
        }
    }
    // (text, size key: 0 for complete contents, the copy size for 1024-character prefixes) → copies
    let mut by_text: Vec<((String, u64), Vec<NodeIndex>)> = Vec::new();
    for (index, mut nodes) in by_index {
        let text = snapshot.strings().get(index);
        if utf16_len(text) >= 1024 {
            // A prefix: copies of equal size are most likely equal.
            for node in nodes {
                long.entry((text.to_string(), shallow.get(node))).or_default().push(node);
            }
            continue;
        }
        // A plain and a concatenated copy of one content are duplicates too.
        if let Some(more) = cons.remove(text) {
            nodes.extend(more);
        }
        if nodes.len() as u64 >= min_count.max(2) {
            by_text.push(((text.to_string(), 0), nodes));
        }
    }
    by_text.extend(cons.into_iter().map(|(text, nodes)| ((text, 0), nodes)));
    by_text.extend(long);
    let mut result: Vec<DuplicateString> = by_text
        .into_iter()
        .filter(|(_, nodes)| nodes.len() as u64 >= min_count.max(2))
        .map(|((text, size_key), mut nodes)| {
            nodes.sort_unstable();
            let sizes = nodes.iter().map(|&n| shallow.get(n));
            let total_size: u64 = sizes.clone().sum();
            let largest = sizes.max().unwrap_or(0);
            DuplicateString {
                text,
                count: nodes.len() as u64,
                total_size,
                wasted: total_size - largest,
                truncated: size_key != 0,
                nodes,
            }
        })
        .collect();
    result.sort_by(|a, b| b.wasted.cmp(&a.wasted).then(b.count.cmp(&a.count)).then_with(|| a.text.cmp(&b.text)));
    result
}
