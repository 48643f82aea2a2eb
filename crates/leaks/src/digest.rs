//! What leak finding needs from the earlier snapshots: the highest object ids they had (ids only grow, so an
//! object's id tells which round created it) and how large each collection was (edges of the object and of
//! its backing stores), keyed by id. The snapshot itself can be dropped afterwards.

use leakscope_heap::{EdgeType, HeapSnapshot, NodeIndex, NodeType};

#[derive(Debug, Clone, Default)]
pub struct SnapshotDigest {
    /// Highest odd (V8 heap object) id.
    pub max_heap_id: u32,
    /// Highest even (embedder / native object) id.
    pub max_native_id: u32,
    /// Sorted ids and, at the same position, the collection size of that object.
    ids: Vec<u32>,
    sizes: Vec<u32>,
    /// A hash of each object's type and name, to tell one process's snapshots from another's.
    identities: Vec<u32>,
    pub node_count: usize,
}

/// Edges of an object that hold its entries indirectly: the element store of an array, the property store of a
/// dictionary-mode object, the hash table of a Map or Set.
pub(crate) fn is_backing_store_edge(snapshot: &HeapSnapshot, edge: leakscope_heap::EdgeIndex) -> bool {
    snapshot.edge_type(edge) == EdgeType::Internal
        && matches!(&*snapshot.edge_name(edge), "elements" | "properties" | "table")
        && matches!(snapshot.node_type(snapshot.edge_target(edge)), NodeType::Array | NodeType::Hidden)
}

/// How many entries a collection holds: its own strong edges plus those of its backing stores.
pub fn collection_size(snapshot: &HeapSnapshot, node: NodeIndex) -> u32 {
    let mut size = 0u32;
    for edge in snapshot.edges(node) {
        if snapshot.edge_type(edge) == EdgeType::Weak {
            continue;
        }
        size += 1;
        if is_backing_store_edge(snapshot, edge) {
            let store = snapshot.edge_target(edge);
            size += snapshot.edges(store).filter(|&e| snapshot.edge_type(e) != EdgeType::Weak).count() as u32;
        }
    }
    size
}

impl SnapshotDigest {
    pub fn new(snapshot: &HeapSnapshot) -> SnapshotDigest {
        let n = snapshot.node_count();
        let mut records: Vec<(u32, u32, u32)> = Vec::with_capacity(n);
        let (mut max_heap_id, mut max_native_id) = (0, 0);
        for node in 0..n as NodeIndex {
            let id = snapshot.node_id(node);
            if id % 2 == 1 {
                max_heap_id = max_heap_id.max(id);
            } else {
                max_native_id = max_native_id.max(id);
            }
            records.push((id, collection_size(snapshot, node), identity(snapshot, node)));
        }
        records.sort_unstable_by_key(|r| r.0);
        let ids = records.iter().map(|r| r.0).collect();
        let sizes = records.iter().map(|r| r.1).collect();
        let identities = records.iter().map(|r| r.2).collect();
        SnapshotDigest { max_heap_id, max_native_id, ids, sizes, identities, node_count: n }
    }

    /// The collection size of object `id` in this snapshot, if it was there.
    pub fn size_of(&self, id: u32) -> Option<u32> {
        self.ids.binary_search(&id).ok().map(|i| self.sizes[i])
    }

    pub fn contains(&self, id: u32) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// Whether object `id` (alive in a later snapshot) already existed when this snapshot was taken.
    pub fn existed(&self, id: u32) -> bool {
        if id % 2 == 1 {
            id <= self.max_heap_id
        } else {
            id <= self.max_native_id
        }
    }

    /// Of the object ids both snapshots have, the share that name the same kind of object. Within one process
    /// an id always means the same object (close to 1.0); two processes started alike share many ids (startup is
    /// deterministic) but the objects behind them soon differ (about a third agree, measured on Node 20).
    pub fn same_process_score(&self, other: &SnapshotDigest) -> f64 {
        let (mut i, mut j, mut shared, mut agree) = (0, 0, 0u64, 0u64);
        while i < self.ids.len() && j < other.ids.len() {
            match self.ids[i].cmp(&other.ids[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    agree += (self.identities[i] == other.identities[j]) as u64;
                    i += 1;
                    j += 1;
                }
            }
        }
        if shared == 0 {
            0.0
        } else {
            agree as f64 / shared as f64
        }
    }
}

/// FNV-1a over the node's type and name.
fn identity(snapshot: &HeapSnapshot, node: NodeIndex) -> u32 {
    let mut hash: u32 = 0x811c9dc5;
    for byte in std::iter::once(snapshot.node_type(node) as u8).chain(snapshot.node_name(node).bytes().take(64)) {
        hash ^= byte as u32;
        hash = hash.wrapping_mul(0x01000193);
    }
    hash
}
