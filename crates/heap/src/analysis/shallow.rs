//! DevTools' shallow-size reattribution (`calculateShallowSizes`): an internal array or hidden object reachable
//! from exactly one "owner" object moves its size onto that owner, so property and element stores show up
//! as part of the object that uses them.

use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType};
use rustc_hash::FxHashMap;

const UNVISITED: u32 = u32::MAX;
const MULTIPLE_OWNERS: u32 = u32::MAX - 1;

/// Shallow sizes in four bytes per node, for while the dominator pass needs the memory: sizes of `u32::MAX` and
/// above are kept aside (a few native backing stores, and owners that collect them).
#[derive(Debug, Clone)]
pub struct CompactSizes {
    small: Vec<u32>,
    large: FxHashMap<NodeIndex, u64>,
}

impl CompactSizes {
    /// The file's self sizes.
    pub fn of_snapshot(snapshot: &HeapSnapshot) -> CompactSizes {
        CompactSizes {
            small: snapshot.node_self_size.clone(),
            large: snapshot.large_self_sizes.iter().copied().collect(),
        }
    }

    #[inline]
    pub fn get(&self, node: NodeIndex) -> u64 {
        match self.small[node as usize] {
            u32::MAX => self.large[&node],
            small => small as u64,
        }
    }

    #[inline]
    pub fn set(&mut self, node: NodeIndex, size: u64) {
        match u32::try_from(size) {
            Ok(small) if small != u32::MAX => {
                if self.small[node as usize] == u32::MAX {
                    self.large.remove(&node);
                }
                self.small[node as usize] = small;
            }
            _ => {
                self.small[node as usize] = u32::MAX;
                self.large.insert(node, size);
            }
        }
    }

    /// Eight bytes per node.
    pub fn to_vec(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self.small.iter().map(|&s| s as u64).collect();
        for (&node, &size) in &self.large {
            sizes[node as usize] = size;
        }
        sizes
    }
}

/// Returns the shallow size per node. Without user roots (an `exposeInternals` snapshot) or when
/// `raw` is set, the file's sizes are kept as they are.
pub fn shallow_sizes(snapshot: &HeapSnapshot, has_user_roots: bool, raw: bool) -> Vec<u64> {
    compact_shallow_sizes(snapshot, has_user_roots, raw).to_vec()
}

/// `shallow_sizes` in four bytes per node.
pub fn compact_shallow_sizes(snapshot: &HeapSnapshot, has_user_roots: bool, raw: bool) -> CompactSizes {
    let mut sizes = CompactSizes::of_snapshot(snapshot);
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
    sizes
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_sizes_keep_large_values_exactly() {
        let mut sizes =
            super::CompactSizes { small: vec![0, 7, u32::MAX], large: [(2, 6 << 30)].into_iter().collect() };
        assert_eq!(sizes.to_vec(), [0, 7, 6 << 30]);
        sizes.set(1, sizes.get(1) + u32::MAX as u64);
        assert_eq!(sizes.get(1), u32::MAX as u64 + 7);
        sizes.set(2, 40);
        sizes.set(0, u32::MAX as u64);
        assert_eq!(sizes.to_vec(), [u32::MAX as u64, u32::MAX as u64 + 7, 40]);
        assert_eq!(sizes.large.len(), 2, "the entry of node 2 is gone");
        sizes.set(1, 0);
        assert_eq!((sizes.get(1), sizes.large.len()), (0, 1));
    }
}
