//! Distances from the user roots (DevTools' `calculateDistances`): a BFS from the global objects at 1, then a
//! BFS from the root at `BASE_SYSTEM_DISTANCE` for whatever only GC roots reach. Weak edges are not followed,
//! nor a few links DevTools deliberately skips (see `follow`).

use super::bits::BitVec;
use super::prefetch;
use super::weakmap::WeakMapNames;
use crate::snapshot::{EdgeIndex, EdgeType, HeapSnapshot, NodeIndex, NodeType};
use rustc_hash::FxHashMap;

/// DevTools shows no distance ("−") for nodes the BFS never reached.
pub const NO_DISTANCE: u32 = u32::MAX;
/// Distances of nodes reached only through GC roots start here ("system" objects).
pub const BASE_SYSTEM_DISTANCE: u32 = 100_000_000;
/// DevTools' `baseUnreachableDistance`, used to sort unreachable retainers last.
pub const BASE_UNREACHABLE_DISTANCE: u32 = 2 * BASE_SYSTEM_DISTANCE;

/// Computes distances. `ignored` nodes (DevTools' "Ignore this retainer") are never entered.
pub fn distances(
    snapshot: &HeapSnapshot,
    user_roots: &[NodeIndex],
    weakmaps: &WeakMapNames,
    ignored: Option<&BitVec>,
) -> Vec<u32> {
    search(snapshot, user_roots, weakmaps, ignored, None)
}

/// [`distances`] in two bytes per node, for while the dominator pass holds its working arrays.
pub fn compact_distances(
    snapshot: &HeapSnapshot,
    user_roots: &[NodeIndex],
    weakmaps: &WeakMapNames,
) -> CompactDistances {
    search(snapshot, user_roots, weakmaps, None, None)
}

/// Distances in two bytes per node: user distances below [`Self::ASIDE`], system ones (from
/// [`BASE_SYSTEM_DISTANCE`]) with the top bit set, anything else kept aside — typical heaps are a few hundred
/// edges deep; only something like a linked list of tens of thousands of nodes goes past 32,766.
#[derive(Debug, Clone, Default)]
pub struct CompactDistances {
    small: Vec<u16>,
    large: FxHashMap<NodeIndex, u32>,
}

impl CompactDistances {
    const NONE: u16 = u16::MAX;
    const SYSTEM: u16 = 0x8000;
    const ASIDE: u16 = 0x7FFF;

    /// Four bytes per node, as [`distances`] gives them.
    pub fn widen(&self) -> Vec<u32> {
        self.widen_in(Vec::new())
    }

    /// [`Self::widen`] in `memory` (a spare array of an earlier pass).
    pub fn widen_in(&self, mut memory: Vec<u32>) -> Vec<u32> {
        memory.clear();
        memory.extend((0..self.small.len() as NodeIndex).map(|node| self.get(node)));
        memory
    }
}

#[cfg(test)]
#[test]
fn compact_distances_keep_every_value() {
    let values = [
        0,
        1,
        2,
        0x7FFE,
        0x7FFF,
        0x8000,
        99_999_999,
        BASE_SYSTEM_DISTANCE,
        BASE_SYSTEM_DISTANCE + 0x7FFD,
        BASE_SYSTEM_DISTANCE + 0x7FFE,
        BASE_SYSTEM_DISTANCE + 0x8000,
        BASE_UNREACHABLE_DISTANCE,
        NO_DISTANCE - 1,
        NO_DISTANCE,
    ];
    let mut compact = CompactDistances::unreached(values.len());
    for (node, &d) in values.iter().enumerate() {
        assert!(!compact.reached(node as NodeIndex));
        compact.set(node as NodeIndex, d);
        assert_eq!(compact.reached(node as NodeIndex), d != NO_DISTANCE);
    }
    assert_eq!(compact.widen(), values);
    assert!(compact.large.len() <= 7, "only distances past the two-byte ranges are kept aside");
}

/// Where a search keeps the distances it finds.
trait DistanceStore {
    fn unreached(len: usize) -> Self;
    fn get(&self, node: NodeIndex) -> u32;
    fn reached(&self, node: NodeIndex) -> bool;
    fn set(&mut self, node: NodeIndex, distance: u32);
    /// Starts loading the node's distance into the cache.
    fn prefetch(&self, node: NodeIndex);
}

impl DistanceStore for Vec<u32> {
    fn unreached(len: usize) -> Self {
        vec![NO_DISTANCE; len]
    }

    #[inline]
    fn get(&self, node: NodeIndex) -> u32 {
        self[node as usize]
    }

    #[inline]
    fn reached(&self, node: NodeIndex) -> bool {
        self[node as usize] != NO_DISTANCE
    }

    #[inline]
    fn set(&mut self, node: NodeIndex, distance: u32) {
        self[node as usize] = distance;
    }

    #[inline(always)]
    fn prefetch(&self, node: NodeIndex) {
        prefetch(self, node as usize);
    }
}

impl DistanceStore for CompactDistances {
    fn unreached(len: usize) -> Self {
        CompactDistances { small: vec![Self::NONE; len], large: FxHashMap::default() }
    }

    #[inline]
    fn get(&self, node: NodeIndex) -> u32 {
        match self.small[node as usize] {
            Self::NONE => NO_DISTANCE,
            Self::ASIDE => self.large[&node],
            system if system & Self::SYSTEM != 0 => BASE_SYSTEM_DISTANCE + (system & !Self::SYSTEM) as u32,
            user => user as u32,
        }
    }

    #[inline]
    fn reached(&self, node: NodeIndex) -> bool {
        self.small[node as usize] != Self::NONE
    }

    #[inline(always)]
    fn prefetch(&self, node: NodeIndex) {
        prefetch(&self.small, node as usize);
    }

    #[inline]
    fn set(&mut self, node: NodeIndex, distance: u32) {
        let system = distance.wrapping_sub(BASE_SYSTEM_DISTANCE);
        self.small[node as usize] = if distance == NO_DISTANCE {
            Self::NONE
        } else if distance < Self::ASIDE as u32 {
            distance as u16
        } else if system < Self::ASIDE as u32 - 1 {
            Self::SYSTEM | system as u16
        } else {
            self.large.insert(node, distance);
            Self::ASIDE
        };
    }
}

/// Marks "no edge": the node was not reached, or is where the search started.
pub const NO_EDGE: EdgeIndex = EdgeIndex::MAX;

/// Distances plus, for every reached node, the edge the search reached it through: following those edges
/// back gives a shortest retaining path by DevTools' distance rules.
pub fn distances_and_parents(
    snapshot: &HeapSnapshot,
    user_roots: &[NodeIndex],
    weakmaps: &WeakMapNames,
) -> (Vec<u32>, Vec<EdgeIndex>) {
    let mut parents = vec![NO_EDGE; snapshot.node_count()];
    let distance = search(snapshot, user_roots, weakmaps, None, Some(&mut parents));
    (distance, parents)
}

/// Follows `parents` back from `node`: the edges of a shortest path, root first.
pub fn path_to(snapshot: &HeapSnapshot, parents: &[EdgeIndex], node: NodeIndex) -> Vec<EdgeIndex> {
    let mut edges = Vec::new();
    let mut current = node;
    while parents[current as usize] != NO_EDGE && edges.len() <= parents.len() {
        let edge = parents[current as usize];
        edges.push(edge);
        current = source_of(snapshot, edge);
    }
    edges.reverse();
    edges
}

/// The node an edge comes from (binary search over the CSR offsets).
pub fn source_of(snapshot: &HeapSnapshot, edge: EdgeIndex) -> NodeIndex {
    (snapshot.first_edge.partition_point(|&first| first <= edge) - 1) as NodeIndex
}

fn search<D: DistanceStore>(
    snapshot: &HeapSnapshot,
    user_roots: &[NodeIndex],
    weakmaps: &WeakMapNames,
    ignored: Option<&BitVec>,
    mut parents: Option<&mut Vec<EdgeIndex>>,
) -> D {
    let n = snapshot.node_count();
    let mut distance = D::unreached(n);
    let mut queue: Vec<NodeIndex> = Vec::new();
    let mut pending_pairs = vec![false; weakmaps.pair_count()];
    for &root in user_roots {
        distance.set(root, 1);
        queue.push(root);
    }
    let mut rules = Rules { snapshot, weakmaps, pending_pairs: &mut pending_pairs, ignored };
    bfs(snapshot, &mut queue, &mut distance, &mut rules, parents.as_deref_mut());
    let root = snapshot.root();
    distance.set(root, if user_roots.is_empty() { 0 } else { BASE_SYSTEM_DISTANCE });
    queue.clear();
    queue.push(root);
    bfs(snapshot, &mut queue, &mut distance, &mut rules, parents);
    distance
}

fn bfs(
    snapshot: &HeapSnapshot,
    queue: &mut Vec<NodeIndex>,
    distance: &mut impl DistanceStore,
    rules: &mut Rules,
    mut parents: Option<&mut Vec<EdgeIndex>>,
) {
    // The queue says which nodes come next: their first-edge offsets are asked for far ahead, their edges a few
    // nodes ahead (the offset is in the cache by then), and the distances of the targets a few edges ahead.
    const OFFSETS_AHEAD: usize = 32;
    const NODES_AHEAD: usize = 8;
    const EDGES_AHEAD: usize = 8;
    // The queue holds the nodes in order of distance: those from `level_end` on are one further than those before
    // it, so a node's distance is known without reading it (another cache miss per node).
    let mut head = 0;
    let mut level = queue.first().map_or(0, |&node| distance.get(node));
    let mut level_end = queue.len();
    while head < queue.len() {
        if head == level_end {
            level += 1;
            level_end = queue.len();
        }
        level_end -= super::drop_explored(queue, &mut head);
        let node = queue[head];
        head += 1;
        super::prefetch_queued(snapshot, queue, head, NODES_AHEAD, OFFSETS_AHEAD);
        debug_assert_eq!(distance.get(node), level, "the queue is in order of distance");
        let next = level + 1;
        let end = snapshot.first_edge[node as usize + 1] as usize;
        for edge in snapshot.edges(node) {
            if edge as usize + EDGES_AHEAD < end {
                distance.prefetch(snapshot.edge_to[edge as usize + EDGES_AHEAD]);
            }
            if snapshot.edge_type(edge) == EdgeType::Weak {
                continue;
            }
            let child = snapshot.edge_target(edge);
            if distance.reached(child) {
                continue;
            }
            if !rules.follow(node, edge) {
                continue;
            }
            distance.set(child, next);
            if let Some(parents) = parents.as_deref_mut() {
                parents[child as usize] = edge;
            }
            queue.push(child);
        }
    }
}

struct Rules<'a> {
    snapshot: &'a HeapSnapshot,
    weakmaps: &'a WeakMapNames,
    pending_pairs: &'a mut Vec<bool>,
    ignored: Option<&'a BitVec>,
}

impl Rules<'_> {
    fn follow(&mut self, node: NodeIndex, edge: EdgeIndex) -> bool {
        let snapshot = self.snapshot;
        if let Some(ignored) = self.ignored {
            if ignored.get(snapshot.edge_target(edge) as usize) {
                return false;
            }
        }
        let kind = snapshot.edge_type(edge);
        match snapshot.node_type(node) {
            // A NativeContext's sloppy_function_map link would make functions look close to every global.
            NodeType::Hidden
                if kind.has_string_name()
                    && snapshot.strings.get(snapshot.edge_name_or_index(edge)) == "sloppy_function_map"
                    && snapshot.node_name(node) == "system / NativeContext" =>
            {
                return false;
            }
            // Maps share descriptor arrays, so their descriptor links are not valid for every map (crbug 413608).
            NodeType::Array if snapshot.node_name(node) == "(map descriptors)" => {
                let index = if kind.has_string_name() {
                    leading_integer(snapshot.strings.get(snapshot.edge_name_or_index(edge)))
                } else {
                    Some(snapshot.edge_name_or_index(edge) as u64)
                };
                return match index {
                    Some(i) => i < 2 || i % 3 != 1,
                    None => true,
                };
            }
            _ => {}
        }
        if kind == EdgeType::Internal {
            // A WeakMap value is reached through two edges (table and key): skip the first one met, so the value's
            // distance is the larger of the two (crbug 1290800).
            if let Some(pair) = self.weakmaps.get(snapshot.edge_name_or_index(edge)) {
                let slot = &mut self.pending_pairs[pair.pair as usize];
                *slot = !*slot;
                if *slot {
                    return false;
                }
            }
        }
        true
    }
}

/// `parseInt(text, 10)` for the cases that matter here: leading ASCII digits, else none.
fn leading_integer(text: &str) -> Option<u64> {
    let trimmed = text.trim_start();
    let digits: &str = &trimmed[..trimmed.bytes().take_while(|b| b.is_ascii_digit()).count()];
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_like_parse_int() {
        assert_eq!(super::leading_integer("12"), Some(12));
        assert_eq!(super::leading_integer("7abc"), Some(7));
        assert_eq!(super::leading_integer("map"), None);
    }
}
