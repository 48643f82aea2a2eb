//! Which nodes are "page-owned" (reachable from the user's global objects) and which are user roots,
//! following DevTools' `markPageOwnedNodes` and `isUserRoot`.

use super::bits::BitVec;
use super::prefetch;
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
///
/// Only the set matters, not the order it is found in: the nodes are explored first in, first out, so that each
/// node's edge range, and then its first edges, can be asked for well before the node's turn comes.
pub fn page_owned(snapshot: &HeapSnapshot) -> BitVec {
    const AHEAD: usize = 16;
    let mut flags = BitVec::new(snapshot.node_count());
    let mut queue: Vec<NodeIndex> = Vec::new();
    let root = snapshot.root();
    for edge in snapshot.edges(root) {
        let target = snapshot.edge_target(edge);
        match snapshot.edge_type(edge) {
            EdgeType::Element if is_document_dom_trees_root(snapshot, target) => {}
            EdgeType::Shortcut => {}
            _ => continue,
        }
        flags.set(target as usize);
        queue.push(target);
    }
    let mut next = 0;
    while let Some(&node) = queue.get(next) {
        next += 1;
        if let Some(&ahead) = queue.get(next + AHEAD) {
            snapshot.prefetch_edge(snapshot.first_edge[ahead as usize] as usize);
        }
        for edge in snapshot.edges(node) {
            let child = snapshot.edge_target(edge) as usize;
            if flags.get(child) || snapshot.edge_type(edge) == EdgeType::Weak {
                continue;
            }
            flags.set(child);
            prefetch(&snapshot.first_edge, child);
            queue.push(child as NodeIndex);
        }
    }
    flags
}
