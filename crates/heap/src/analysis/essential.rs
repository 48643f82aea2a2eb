//! Which edges count for retention (DevTools' `computeIsEssentialEdge`).

use super::bits::BitVec;
use super::weakmap::WeakMapNames;
use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex};

/// An edge does not retain if it is weak, a self edge, a shortcut from anything but the root, the WeakMap
/// table's edge to a value (the key's edge is kept), or goes from a non-page-owned to a page-owned node
/// (so objects also held by the debugger or the console keep their page dominators).
pub fn essential_edges(snapshot: &HeapSnapshot, page_owned: &BitVec, weakmaps: &WeakMapNames) -> BitVec {
    let mut bits = BitVec::new(snapshot.edge_count());
    let root = snapshot.root();
    for node in 0..snapshot.node_count() as NodeIndex {
        let node_id = snapshot.node_id(node);
        let node_is_page = page_owned.get(node as usize);
        for edge in snapshot.edges(node) {
            let kind = snapshot.edge_type(edge);
            if kind == EdgeType::Weak {
                continue;
            }
            if kind == EdgeType::Internal {
                if let Some(pair) = weakmaps.get(snapshot.edge_name_or_index(edge)) {
                    if pair.table_id == node_id {
                        continue;
                    }
                }
            }
            let target = snapshot.edge_target(edge);
            if target == node {
                continue;
            }
            if node != root {
                if kind == EdgeType::Shortcut {
                    continue;
                }
                if page_owned.get(target as usize) && !node_is_page {
                    continue;
                }
            }
            bits.set(edge as usize);
        }
    }
    bits
}
