//! Which edges count for retention (DevTools' `computeIsEssentialEdge`).

use super::bits::BitVec;
use super::weakmap::WeakMapNames;
use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex};

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
    let n = snapshot.node_count() as NodeIndex;
    if !parallel || n < 2 {
        return essential_edges(snapshot, page_owned, weakmaps);
    }
    // Split at the first node whose edges start in the second half; the upper part's bit vector starts at the
    // 64-bit word holding that node's first edge.
    let half = snapshot.edge_count() as u32 / 2;
    let (mut low, mut high) = (0, n);
    while low < high {
        let mid = low + (high - low) / 2;
        if snapshot.edges(mid).start < half {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    let middle = low;
    let word = snapshot.edges(middle).start as usize / 64;
    let (mut bits, upper) = std::thread::scope(|scope| {
        let upper = scope.spawn(|| essential_edges_of(snapshot, page_owned, weakmaps, middle..n, word * 64));
        let lower = essential_edges_of(snapshot, page_owned, weakmaps, 0..middle, 0);
        (lower, upper.join().expect("essential-edge thread panicked"))
    });
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
    // Bit `edge - first_bit` for each edge from `first_bit` on.
    let mut bits = BitVec::new(snapshot.edge_count() - first_bit);
    let root = snapshot.root();
    for node in nodes {
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
            bits.set(edge as usize - first_bit);
        }
    }
    bits
}
