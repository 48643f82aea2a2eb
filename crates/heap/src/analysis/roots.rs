//! Which nodes are "page-owned" (reachable from the user's global objects) and which are user roots,
//! following DevTools' `markPageOwnedNodes` and `isUserRoot`.

use super::bits::BitVec;
use super::reach::reachable;
use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType};

/// A user root is a child of the root that is not synthetic (a global object), or the browser's
/// "(Document DOM trees)" group.
pub fn is_user_root(snapshot: &HeapSnapshot, node: NodeIndex) -> bool {
    snapshot.node_type(node) != NodeType::Synthetic || is_document_dom_trees_root(snapshot, node)
}

fn is_document_dom_trees_root(snapshot: &HeapSnapshot, node: NodeIndex) -> bool {
    snapshot.node_type(node) == NodeType::Synthetic && snapshot.node_name(node) == "(Document DOM trees)"
}

/// The root's children that are user roots, in edge order (duplicates kept, as DevTools iterates edges).
pub fn user_roots(snapshot: &HeapSnapshot) -> Vec<NodeIndex> {
    let root = snapshot.root();
    snapshot.edges(root).map(|e| snapshot.edge_target(e)).filter(|&n| is_user_root(snapshot, n)).collect()
}

/// Nodes reachable through non-weak edges from the root's shortcut targets (user globals) and from
/// "(Document DOM trees)". An `exposeInternals` snapshot has no shortcuts, so nothing is page-owned.
pub fn page_owned(snapshot: &HeapSnapshot, parallel: bool) -> BitVec {
    let root = snapshot.root();
    let seeds = snapshot.edges(root).filter_map(|edge| {
        let target = snapshot.edge_target(edge);
        match snapshot.edge_type(edge) {
            EdgeType::Element if is_document_dom_trees_root(snapshot, target) => Some(target),
            EdgeType::Shortcut => Some(target),
            _ => None,
        }
    });
    reachable(snapshot, seeds, |edge| snapshot.edge_type(edge) != EdgeType::Weak, parallel)
}
