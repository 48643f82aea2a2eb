//! Who holds an object: the reverse edge index and DevTools' Retainers pane.
//!
//! The pane lists an object's retainers without weak edges, invisible edges and edges from the root
//! (`JSHeapSnapshot.retainingEdgesFilter`), sorted by
//! 1. the retainer's distance for the retainers view, ascending (nodes made unreachable by "Ignore this
//!    retainer" count as `200000000 + original distance`, so they sort last);
//! 2. the retainer's `name()` (plain objects as `{a, b, …}`), in JavaScript string order;
//! 3. the retainer slot: DevTools fills each node's slots from the end (`buildRetainers`), so among equal
//!    distance and name the edge that comes **last** in the file comes first.
//!
//! Selecting an object expands the first retainer, then its first retainer, and so on
//! (`expandRetainersChain(20)`): the chain stops at a retainer with distance ≤ 1 (a user root such as
//! `global`), at one with no listed retainers (such as `(GC roots)`), at an unreachable one, or after 20
//! steps. [`RetainerView::chain`] reproduces that chain.

use super::{display_name, utf16_cmp};
use crate::analysis::bits::BitVec;
use crate::analysis::distances::{self, BASE_UNREACHABLE_DISTANCE, NO_DISTANCE};
use crate::analysis::weakmap::WeakMapNames;
use crate::snapshot::{EdgeIndex, EdgeType, HeapSnapshot, NodeIndex};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// DevTools expands at most this many levels of retainers when an object is selected.
pub const DEVTOOLS_MAX_STEPS: usize = 20;

/// Reverse edges in DevTools' slot order: for each node, its retaining `(node, edge)` pairs, the edge that
/// comes last in the file first. Two `u32` per edge plus one per node; built in two passes over the edges.
pub struct RetainerIndex {
    first: Vec<u32>,
    from: Vec<NodeIndex>,
    edge: Vec<EdgeIndex>,
}

impl RetainerIndex {
    pub fn build(snapshot: &HeapSnapshot) -> RetainerIndex {
        let n = snapshot.node_count();
        let m = snapshot.edge_count();
        let mut first = vec![0u32; n + 1];
        for &to in &snapshot.edge_to {
            first[to as usize + 1] += 1;
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        // `fill[t]` is one past the next free slot of node t; slots are filled from the end.
        let mut fill: Vec<u32> = first[1..].to_vec();
        let mut from = vec![0 as NodeIndex; m];
        let mut edge = vec![0 as EdgeIndex; m];
        for node in 0..n as NodeIndex {
            for e in snapshot.edges(node) {
                let to = snapshot.edge_to[e as usize] as usize;
                fill[to] -= 1;
                let slot = fill[to] as usize;
                from[slot] = node;
                edge[slot] = e;
            }
        }
        RetainerIndex { first, from, edge }
    }

    /// All retainers of `node` (unfiltered), in slot order: `(retaining node, edge)`.
    pub fn retainers(&self, node: NodeIndex) -> impl Iterator<Item = (NodeIndex, EdgeIndex)> + '_ {
        let range = self.first[node as usize] as usize..self.first[node as usize + 1] as usize;
        range.map(move |slot| (self.from[slot], self.edge[slot]))
    }

    pub fn count(&self, node: NodeIndex) -> usize {
        (self.first[node as usize + 1] - self.first[node as usize]) as usize
    }

    pub fn memory_bytes(&self) -> u64 {
        (self.first.len() * 4 + self.from.len() * 4 + self.edge.len() * 4) as u64
    }
}

/// One row of the Retainers pane: `node` holds the object through `edge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retainer {
    pub node: NodeIndex,
    pub edge: EdgeIndex,
    /// The distance the pane sorts and shows for this row (`distanceForRetainersView`).
    pub distance: u32,
}

/// Why an auto-expanded chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainStop {
    /// The last retainer is a user root (distance ≤ 1), e.g. `global`.
    UserRoot,
    /// The last node has no listed retainers (e.g. `(GC roots)`: edges from the root are hidden).
    NoRetainers,
    /// The last retainer is unreachable (or was made so by `--ignore`).
    Unreachable,
    /// The step limit was reached (DevTools: 20).
    MaxDepth,
    /// The next retainer is already on the path.
    Cycle,
}

/// The first-retainer chain of one object, object-side first: `steps[0]` retains the object.
#[derive(Debug, Clone)]
pub struct Chain {
    pub object: NodeIndex,
    pub steps: Vec<Retainer>,
    pub stop: ChainStop,
}

/// Options of the retainers view.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// List weak edges too (DevTools never does).
    pub show_weak: bool,
    /// Nodes to ignore, as DevTools' "Ignore this retainer": distances are recomputed without entering them.
    pub ignored: Vec<NodeIndex>,
}

/// The Retainers pane over one snapshot: the index, the distances it sorts by, and the ignore state.
pub struct RetainerView<'a> {
    snapshot: &'a HeapSnapshot,
    index: &'a RetainerIndex,
    distance: &'a [u32],
    view_distance: Option<Vec<u32>>,
    ignored_nodes: HashSet<NodeIndex>,
    ignored_edges: HashSet<EdgeIndex>,
    show_weak: bool,
    names: RefCell<HashMap<NodeIndex, String>>,
    first: RefCell<HashMap<NodeIndex, Option<Retainer>>>,
}

impl<'a> RetainerView<'a> {
    /// `distance` are the snapshot's distances (`Analysis::distance`); `user_roots` and `weakmaps` are needed
    /// only to recompute them when nodes are ignored.
    pub fn new(
        snapshot: &'a HeapSnapshot,
        index: &'a RetainerIndex,
        distance: &'a [u32],
        user_roots: &[NodeIndex],
        weakmaps: &WeakMapNames,
        options: &ViewOptions,
    ) -> RetainerView<'a> {
        let mut view = RetainerView {
            snapshot,
            index,
            distance,
            view_distance: None,
            ignored_nodes: options.ignored.iter().copied().collect(),
            ignored_edges: HashSet::new(),
            show_weak: options.show_weak,
            names: RefCell::new(HashMap::new()),
            first: RefCell::new(HashMap::new()),
        };
        if !options.ignored.is_empty() {
            let mut bits = BitVec::new(snapshot.node_count());
            for &n in &options.ignored {
                bits.set(n as usize);
            }
            let recomputed = distances::distances(snapshot, user_roots, weakmaps, Some(&bits));
            view.ignored_edges = unreachable_weakmap_edges(snapshot, index, &recomputed, weakmaps);
            view.view_distance = Some(recomputed);
        }
        view
    }

    pub fn snapshot(&self) -> &'a HeapSnapshot {
        self.snapshot
    }

    pub fn index(&self) -> &'a RetainerIndex {
        self.index
    }

    pub fn is_ignored(&self, node: NodeIndex) -> bool {
        self.ignored_nodes.contains(&node)
    }

    /// `getDistanceForRetainersView`: the recomputed distance, or for nodes the recomputation could not
    /// reach, `200000000 + original distance` so they sort last.
    pub fn distance(&self, node: NodeIndex) -> u32 {
        let distances = self.view_distance.as_deref().unwrap_or(self.distance);
        let d = distances[node as usize];
        if d != NO_DISTANCE {
            return d;
        }
        let original = self.distance[node as usize];
        BASE_UNREACHABLE_DISTANCE + if original == NO_DISTANCE { 0 } else { original }
    }

    fn row_distance(&self, from: NodeIndex, edge: EdgeIndex) -> u32 {
        if self.ignored_edges.contains(&edge) {
            BASE_UNREACHABLE_DISTANCE
        } else {
            self.distance(from)
        }
    }

    /// Whether the pane lists this reverse edge.
    fn listed(&self, from: NodeIndex, edge: EdgeIndex) -> bool {
        if from == self.snapshot.root() {
            return false;
        }
        match self.snapshot.edge_type(edge) {
            EdgeType::Weak => self.show_weak,
            // `invisible` is not a V8 type; files that declare it map it to `Other`.
            EdgeType::Other => self.snapshot.edge_type_name(edge) != "invisible",
            _ => true,
        }
    }

    fn cache_name(&self, node: NodeIndex) {
        if !self.names.borrow().contains_key(&node) {
            let name = display_name(self.snapshot, node);
            self.names.borrow_mut().insert(node, name);
        }
    }

    fn compare_names(&self, a: NodeIndex, b: NodeIndex) -> std::cmp::Ordering {
        self.cache_name(a);
        self.cache_name(b);
        let names = self.names.borrow();
        utf16_cmp(&names[&a], &names[&b])
    }

    /// Row order: distance, then name, then slot (the earlier slot, i.e. the later edge, first).
    fn compare(&self, a: &(Retainer, usize), b: &(Retainer, usize)) -> std::cmp::Ordering {
        a.0.distance
            .cmp(&b.0.distance)
            .then_with(|| {
                if a.0.node == b.0.node {
                    std::cmp::Ordering::Equal
                } else {
                    self.compare_names(a.0.node, b.0.node)
                }
            })
            .then(a.1.cmp(&b.1))
    }

    /// The pane's rows for `node`, in the pane's order.
    pub fn sorted_retainers(&self, node: NodeIndex) -> Vec<Retainer> {
        let mut rows: Vec<(Retainer, usize)> = self
            .index
            .retainers(node)
            .enumerate()
            .filter(|(_, (from, edge))| self.listed(*from, *edge))
            .map(|(slot, (from, edge))| (Retainer { node: from, edge, distance: self.row_distance(from, edge) }, slot))
            .collect();
        rows.sort_by(|a, b| self.compare(a, b));
        rows.into_iter().map(|(r, _)| r).collect()
    }

    /// The pane's first row for `node` (cached: chains of many objects share their upper part).
    pub fn first_retainer(&self, node: NodeIndex) -> Option<Retainer> {
        if let Some(&cached) = self.first.borrow().get(&node) {
            return cached;
        }
        let mut best: Option<(Retainer, usize)> = None;
        for (slot, (from, edge)) in self.index.retainers(node).enumerate() {
            if !self.listed(from, edge) {
                continue;
            }
            let row = (Retainer { node: from, edge, distance: self.row_distance(from, edge) }, slot);
            best = match best {
                Some(current) if self.compare(&current, &row).is_le() => Some(current),
                _ => Some(row),
            };
        }
        let first = best.map(|(r, _)| r);
        self.first.borrow_mut().insert(node, first);
        first
    }

    /// The chain the pane expands when `object` is selected, up to `max_steps` steps (DevTools: 20).
    pub fn chain(&self, object: NodeIndex, max_steps: usize) -> Chain {
        let mut steps = Vec::new();
        let mut on_path: HashSet<NodeIndex> = HashSet::from([object]);
        let mut current = object;
        loop {
            let Some(first) = self.first_retainer(current) else {
                return Chain { object, steps, stop: ChainStop::NoRetainers };
            };
            steps.push(first);
            if steps.len() >= max_steps {
                return Chain { object, steps, stop: ChainStop::MaxDepth };
            }
            if first.distance <= 1 {
                return Chain { object, steps, stop: ChainStop::UserRoot };
            }
            if first.distance >= BASE_UNREACHABLE_DISTANCE {
                return Chain { object, steps, stop: ChainStop::Unreachable };
            }
            if !on_path.insert(first.node) {
                return Chain { object, steps, stop: ChainStop::Cycle };
            }
            current = first.node;
        }
    }
}

/// DevTools' `#updateIgnoredEdgesInRetainersView`: when ignoring nodes leaves a WeakMap table or key
/// unreachable, the partner edge of that (key, value) pair cannot retain the value on its own, so it is
/// shown as unreachable too.
fn unreachable_weakmap_edges(
    snapshot: &HeapSnapshot,
    index: &RetainerIndex,
    distance: &[u32],
    weakmaps: &WeakMapNames,
) -> HashSet<EdgeIndex> {
    let mut pending: HashMap<NodeIndex, HashSet<u32>> = HashMap::new();
    for node in 0..snapshot.node_count() as NodeIndex {
        if distance[node as usize] != NO_DISTANCE {
            continue;
        }
        for edge in snapshot.edges(node) {
            if snapshot.edge_type(edge) != EdgeType::Internal {
                continue;
            }
            if let Some(pair) = weakmaps.get(snapshot.edge_name_or_index(edge)) {
                pending.entry(snapshot.edge_target(edge)).or_default().insert(pair.pair);
            }
        }
    }
    let mut ignored = HashSet::new();
    for (target, pairs) in pending {
        for (_, edge) in index.retainers(target) {
            if snapshot.edge_type(edge) != EdgeType::Internal {
                continue;
            }
            if let Some(pair) = weakmaps.get(snapshot.edge_name_or_index(edge)) {
                if pairs.contains(&pair.pair) {
                    ignored.insert(edge);
                }
            }
        }
    }
    ignored
}
