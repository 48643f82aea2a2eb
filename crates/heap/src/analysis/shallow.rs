//! DevTools' shallow-size reattribution (`calculateShallowSizes`): an internal array or hidden object reachable
//! from exactly one "owner" object moves its size onto that owner, so property and element stores show up
//! as part of the object that uses them.

use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType};

const UNVISITED: u32 = u32::MAX;
const MULTIPLE_OWNERS: u32 = u32::MAX - 1;

/// Returns the shallow size per node. Without user roots (an `exposeInternals` snapshot) or when
/// `raw` is set, the file's sizes are kept as they are.
pub fn shallow_sizes(snapshot: &HeapSnapshot, has_user_roots: bool, raw: bool) -> Vec<u64> {
    let mut sizes = snapshot.raw_self_sizes();
    if !has_user_roots || raw {
        return sizes;
    }
    let n = snapshot.node_count();
    let mut owners = vec![UNVISITED; n];
    let mut worklist: Vec<NodeIndex> = Vec::new();
    for node in 0..n as NodeIndex {
        let owned_kind = match snapshot.node_type(node) {
            NodeType::Hidden | NodeType::Array => true,
            NodeType::Native => snapshot.node_name(node) == "system / ExternalStringData",
            _ => false,
        };
        if !owned_kind {
            owners[node as usize] = node;
            worklist.push(node);
        }
    }
    while let Some(node) = worklist.pop() {
        let owner = owners[node as usize];
        for edge in snapshot.edges(node) {
            if snapshot.edge_type(edge) == EdgeType::Weak {
                continue;
            }
            let target = snapshot.edge_target(edge);
            let current = owners[target as usize];
            if current == UNVISITED {
                owners[target as usize] = owner;
                worklist.push(target);
            } else if current != target && current != owner && current != MULTIPLE_OWNERS {
                owners[target as usize] = MULTIPLE_OWNERS;
                worklist.push(target);
            }
        }
    }
    let root = snapshot.root();
    for node in 0..n {
        let owner = owners[node];
        if owner == UNVISITED || owner == MULTIPLE_OWNERS || owner as usize == node {
            continue;
        }
        if owner == root || snapshot.node_type(owner) == NodeType::Synthetic {
            continue;
        }
        let moved = std::mem::take(&mut sizes[node]);
        sizes[owner as usize] += moved;
    }
    sizes
}
