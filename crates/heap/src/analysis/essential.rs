//! Which edges count for retention (DevTools' `computeIsEssentialEdge`).

use super::bits::BitVec;
use super::weakmap::WeakMapNames;
use crate::snapshot::{EdgeIndex, EdgeType, HeapSnapshot, NodeIndex};

/// An edge does not retain if it is weak, a self edge, a shortcut from anything but the root, the WeakMap
/// table's edge to a value (the key's edge is kept), or goes from a non-page-owned to a page-owned node
/// (so objects also held by the debugger or the console keep their page dominators).
pub fn essential_edges(snapshot: &HeapSnapshot, page_owned: &BitVec, weakmaps: &WeakMapNames) -> BitVec {
    essential_edges_of(snapshot, page_owned, weakmaps, 0..snapshot.node_count() as NodeIndex, 0)
}

/// The same on two threads when `parallel`: each half of the edges into its own bit vector, then merged.
pub fn essential_edges_parallel(
    snapshot: &HeapSnapshot,
    page_owned: &BitVec,
    weakmaps: &WeakMapNames,
    parallel: bool,
) -> BitVec {
    if !parallel {
        return essential_edges(snapshot, page_owned, weakmaps);
    }
    // Split at the first node whose edges start in the second half (possibly none: then the upper part is
    // empty); the upper part's bit vector starts at the 64-bit word holding that node's first edge.
    let n = snapshot.node_count();
    let middle = super::middle_by_edges(&snapshot.first_edge);
    let word = snapshot.first_edge[middle] as usize / 64;
    let (upper, mut bits) = crate::threads::join(
        true,
        || essential_edges_of(snapshot, page_owned, weakmaps, middle as NodeIndex..n as NodeIndex, word * 64),
        || essential_edges_of(snapshot, page_owned, weakmaps, 0..middle as NodeIndex, 0),
    );
    bits.or_words_from(word, &upper);
    bits
}

fn essential_edges_of(
    snapshot: &HeapSnapshot,
    page_owned: &BitVec,
    weakmaps: &WeakMapNames,
    nodes: std::ops::Range<NodeIndex>,
    first_bit: usize,
) -> BitVec {
    // Bit `edge - first_bit` for each edge from `first_bit` on, a word at a time: an edge's bit is worked out
    // without a branch (most edges count; the exceptions are not predictable), and only the WeakMap tables' edges
    // need the names.
    let mut words = vec![0u64; (snapshot.edge_count() - first_bit).div_ceil(64)];
    let root = snapshot.root();
    let (weak, shortcut, internal) = (EdgeType::Weak as u8, EdgeType::Shortcut as u8, EdgeType::Internal as u8);
    let check_pairs = !weakmaps.is_empty();
    // The flags' words taken once: read through `BitVec::get` in the loop, they were loaded again for each edge
    // (15.5 -> 17.0 ms at 324 MiB).
    let page_words = page_owned.words();
    for node in nodes {
        let (start, end) = (snapshot.first_edge[node as usize], snapshot.first_edge[node as usize + 1]);
        // Edges of the root keep shortcuts and edges to page-owned nodes; those of a page-owned node have only
        // page-owned targets, which they keep.
        let strict = node != root;
        let keep_owned = !strict || page_owned.get(node as usize);
        for edge in start..end {
            let code = snapshot.edge_type_code(edge);
            let target = snapshot.edge_target(edge);
            // Only a source that is not page-owned needs its targets' flags (a random read each).
            let dropped = !keep_owned && page_words[target as usize >> 6] >> (target & 63) & 1 != 0;
            let keep = (code != weak) & (target != node) & (!strict | (code != shortcut)) & !dropped;
            let keep = keep && !(check_pairs && code == internal && is_table_edge(snapshot, weakmaps, node, edge));
            let bit = edge as usize - first_bit;
            words[bit >> 6] |= u64::from(keep) << (bit & 63);
        }
    }
    BitVec::from_words(words, snapshot.edge_count() - first_bit)
}

/// Whether internal `edge` (of `node`) is a WeakMap table's edge to a value, which does not count for retention.
#[inline(never)]
fn is_table_edge(snapshot: &HeapSnapshot, weakmaps: &WeakMapNames, node: NodeIndex, edge: EdgeIndex) -> bool {
    weakmaps.get(snapshot.edge_name_or_index(edge)).is_some_and(|pair| pair.table_id == snapshot.node_id(node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::roots;

    #[test]
    fn halves_give_the_same_bits_when_the_last_node_holds_most_edges() {
        // The root holds one edge; node 1 holds the other three, so every node's edges start in the first half.
        let snapshot = crate::parse_bytes(
            br#"{"snapshot":{"meta":{"node_fields":["type","name","id","self_size","edge_count"],
            "node_types":[["synthetic","object"],"string","number","number","number"],
            "edge_fields":["type","name_or_index","to_node"],
            "edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"]}},
            "nodes":[0,0,1,0,1, 1,1,3,10,3],"edges":[1,0,5, 2,1,0, 2,1,0, 6,1,0],"strings":["","a"]}"#,
        )
        .expect("valid snapshot");
        let (page_owned, weakmaps) = (roots::page_owned(&snapshot, true), WeakMapNames::build(&snapshot));
        let serial = essential_edges(&snapshot, &page_owned, &weakmaps);
        assert_eq!(essential_edges_parallel(&snapshot, &page_owned, &weakmaps, true), serial);
        assert_eq!(serial.count_ones(), 3, "the weak edge does not count");
    }
}
