//! DevTools' shallow-size reattribution (`calculateShallowSizes`): an internal array or hidden object reachable
//! from exactly one "owner" object moves its size onto that owner, so property and element stores show up
//! as part of the object that uses them.

use crate::sizes::CompactSizes;
use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType};
use crate::threads::Handover;

const UNVISITED: u32 = u32::MAX;
const MULTIPLE_OWNERS: u32 = u32::MAX - 1;

/// Returns the shallow size per node, in four bytes each (sizes of 4 GiB and more aside). Without user roots (an
/// `exposeInternals` snapshot) or when `raw` is set, the file's sizes are kept as they are.
pub fn compact_shallow_sizes(snapshot: &HeapSnapshot, has_user_roots: bool, raw: bool) -> CompactSizes {
    let handover = Handover::new();
    handover.give_all();
    shallow_sizes_in_handed_memory(snapshot, has_user_roots, raw, &handover).0
}

/// [`compact_shallow_sizes`] beside a pass that hands its memory over: each of the two arrays of four bytes per
/// node (owners, then sizes) is made once that much has been given back. Also returns the owner array, in memory
/// already, for a later pass to fill (empty when there was none).
pub(crate) fn shallow_sizes_in_handed_memory(
    snapshot: &HeapSnapshot,
    has_user_roots: bool,
    raw: bool,
    handover: &Handover,
) -> (CompactSizes, Vec<u32>) {
    let n = snapshot.node_count();
    let array = n * std::mem::size_of::<u32>();
    handover.wait_for(array);
    if !has_user_roots || raw {
        return (snapshot.self_sizes.clone(), Vec::new());
    }
    let mut owners = vec![UNVISITED; n];
    let is_owned_kind = |node: NodeIndex| match snapshot.node_type(node) {
        NodeType::Hidden | NodeType::Array => true,
        NodeType::Native => snapshot.node_name(node) == "system / ExternalStringData",
        _ => false,
    };
    for node in 0..n as NodeIndex {
        if !is_owned_kind(node) {
            owners[node as usize] = node;
        }
    }
    // Each owned-kind node ends with the one other node it is reached from through owned-kind nodes only, or
    // with "several": a fixed point, so the order of the walks does not matter. Walking from each owner in turn
    // keeps only owned-kind nodes on the stack, not every node at once.
    let mut stack: Vec<NodeIndex> = Vec::new();
    for start in 0..n as NodeIndex {
        if owners[start as usize] != start {
            continue;
        }
        stack.push(start);
        while let Some(node) = stack.pop() {
            let owner = owners[node as usize];
            for edge in snapshot.edges(node) {
                if snapshot.edge_type(edge) == EdgeType::Weak {
                    continue;
                }
                let target = snapshot.edge_target(edge);
                let current = owners[target as usize];
                if current == UNVISITED {
                    owners[target as usize] = owner;
                    stack.push(target);
                } else if current != target && current != owner && current != MULTIPLE_OWNERS {
                    owners[target as usize] = MULTIPLE_OWNERS;
                    stack.push(target);
                }
            }
        }
    }
    handover.wait_for(2 * array);
    let mut sizes = snapshot.self_sizes.clone();
    let root = snapshot.root();
    for (node, &owner) in (0..n as NodeIndex).zip(&owners) {
        if owner == UNVISITED || owner == MULTIPLE_OWNERS || owner == node {
            continue;
        }
        if owner == root || snapshot.node_type(owner) == NodeType::Synthetic {
            continue;
        }
        let moved = sizes.get(node);
        if moved != 0 {
            sizes.set(node, 0);
            sizes.set(owner, sizes.get(owner) + moved);
        }
    }
    (sizes, owners)
}
