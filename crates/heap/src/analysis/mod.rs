//! Everything DevTools computes when it opens a snapshot, in DevTools' order (the order changes the numbers):
//! page-owned flags → essential edges → dominators ∥ distances → (shallow-size reattribution → retained sizes)
//! ∥ (class names, dominator tree) → Summary aggregates and Statistics.

pub mod bits;
pub mod distances;
pub mod dom_state;
pub mod dominators;
pub mod essential;
pub mod names;
pub mod reach;
pub mod roots;
pub mod shallow;
pub mod stats;
pub mod summary;
pub(crate) mod utf16;
pub mod weakmap;

use crate::pages::Region;
use crate::sizes::CompactSizes;
use crate::snapshot::{HeapSnapshot, NodeIndex};
use crate::threads::{join, join_after_start, Handover};
use bits::BitVec;
pub use distances::{BASE_SYSTEM_DISTANCE, NO_DISTANCE};
use dominators::{DominatorTree, FlowGraph};
pub use names::{ClassId, ClassNames, InterfaceDefinition};
pub use stats::Statistics;
pub use summary::{ClassAggregate, ClassKey};
use weakmap::WeakMapNames;

#[derive(Debug, Clone, Default)]
pub struct AnalysisOptions {
    /// Keep the file's self sizes instead of moving single-owner internal arrays onto their owner
    /// (memlab's sizes). DevTools reattributes; so does leakscope by default.
    pub raw_sizes: bool,
    /// Name plain objects with these interface definitions instead of inferring them (as DevTools'
    /// Comparison view does with the other snapshot's).
    pub interface_definitions: Option<Vec<InterfaceDefinition>>,
    /// Run the independent passes on two threads.
    pub parallel: bool,
}

/// The analysed snapshot: per-node shallow/retained sizes, dominators, distances and classes.
pub struct Analysis {
    /// Four bytes per node; the few of 4 GiB and more are kept aside.
    pub shallow: CompactSizes,
    /// Four bytes per node; the few of 4 GiB and more (near the root of a big heap) are kept aside.
    pub retained: CompactSizes,
    pub idom: Vec<NodeIndex>,
    pub distance: Vec<u32>,
    pub classes: ClassNames,
    pub dominator_tree: DominatorTree,
    pub page_owned: BitVec,
    pub user_roots: Vec<NodeIndex>,
    pub weakmaps: WeakMapNames,
    /// Nodes the root does not reach through retaining edges (DevTools' problem report).
    pub unreachable: u32,
    /// Total size as DevTools reports it: root retained size + `extra_native_bytes`.
    pub total_size: u64,
    /// Whether the queries may use a second thread too (`AnalysisOptions::parallel`).
    pub parallel: bool,
}

impl Analysis {
    /// Runs every pass. `progress` is told the name of each phase as it starts.
    pub fn new(snapshot: &HeapSnapshot, options: &AnalysisOptions, progress: &mut dyn FnMut(&str)) -> Analysis {
        progress("marking user objects");
        let parallel = options.parallel;
        let weakmaps = WeakMapNames::build(snapshot);
        let page_owned = roots::page_owned(snapshot, parallel);
        let user_roots = roots::user_roots(snapshot);
        let root = snapshot.root();

        progress("computing dominators and distances");
        let essential = essential::essential_edges_parallel(snapshot, &page_owned, &weakmaps, parallel);
        let graph = FlowGraph::new(snapshot, &essential);
        // At the dominator pass's peak (its retainer lists and five arrays of four bytes per node), only the
        // distances (two bytes per node) are alive besides the snapshot: the shallow sizes and the class names come
        // once that memory is given back, and the essential-edge bits go before it. Inferring the plain-object
        // interfaces needs no per-node memory and goes beside it.
        // The DFS is the longer of the two: the other thread maps its arrays' pages first, so that it does not
        // stop at each one.
        let dfs_memory = dominators::DfsMemory::new(snapshot.node_count());
        let regions = dfs_memory.regions();
        let (numbered, distance) = join_after_start(
            parallel,
            || dominators::number_nodes_in(&graph, root, dfs_memory),
            || {
                // On one thread this would run after the DFS, when there is nothing left to map ahead of it.
                if parallel {
                    dominators::DfsMemory::populate(regions);
                }
                distances::compact_distances(snapshot, &user_roots, &weakmaps)
            },
        );
        let (listed, retainers) = numbered.list_upper_retainers(parallel);
        drop(essential);
        // The shallow-size pass (two arrays of four bytes per node) runs beside the semidominator loop, each of its
        // arrays made once the loop has given back that much of its retainer lists, so that the two together stay
        // under the loop's peak.
        let handover = Handover::new();
        let has_user_roots = !user_roots.is_empty();
        let (mut doms, (definitions, (shallow, spare))) = join(
            parallel,
            || listed.dominators(retainers, &handover),
            || {
                let definitions =
                    options.interface_definitions.clone().unwrap_or_else(|| names::infer_interfaces(snapshot));
                let raw = options.raw_sizes;
                (definitions, shallow::shallow_sizes_in_handed_memory(snapshot, has_user_roots, raw, &handover))
            },
        );
        progress("computing sizes and class names");
        let mut spare_array = || doms.spare.pop().unwrap_or_default();
        let (sizes_memory, tree_memory, distance_memory) = (spare_array(), spare_array(), spare_array());
        // The preorder is done with once the retained sizes are summed: the tree's children go in its memory.
        let preorder = std::mem::take(&mut doms.preorder);
        let idom = &doms.idom;
        let ((retained, dominator_tree), (distance, classes)) = join(
            parallel,
            || {
                let retained = dominators::retained_sizes(idom, &preorder, &shallow, sizes_memory);
                (retained, DominatorTree::build_in(idom, root, tree_memory, preorder))
            },
            move || {
                let distance = distance.widen_in(distance_memory);
                let detached = dom_state::detached_nodes(snapshot);
                (distance, ClassNames::compute_in(snapshot, &detached, Some(definitions), spare))
            },
        );
        let total_size = retained.get(root) + snapshot.info.extra_native_bytes;
        Analysis {
            shallow,
            retained,
            idom: doms.idom,
            distance,
            classes,
            dominator_tree,
            page_owned,
            user_roots,
            weakmaps,
            unreachable: doms.unreachable,
            total_size,
            parallel,
        }
    }

    /// The Summary rows, unsorted.
    pub fn summary(&self, snapshot: &HeapSnapshot) -> Vec<ClassAggregate> {
        let sizes = (&self.shallow, &self.retained);
        summary::aggregate(snapshot, &self.classes, sizes, &self.distance, &self.dominator_tree, self.parallel)
    }

    pub fn statistics(&self, snapshot: &HeapSnapshot) -> Statistics {
        stats::statistics(snapshot, &self.shallow, self.total_size)
    }

    pub fn distance(&self, node: NodeIndex) -> Option<u32> {
        let d = self.distance[node as usize];
        (d != NO_DISTANCE).then_some(d)
    }

    /// The node's class name, as DevTools' Summary groups it.
    pub fn class_name<'a>(&'a self, snapshot: &'a HeapSnapshot, node: NodeIndex) -> &'a str {
        self.classes.class_name(snapshot, node)
    }

    /// Nodes reached only through GC roots, not from the user's globals.
    pub fn system_node_count(&self) -> usize {
        self.distance.iter().filter(|&&d| d != NO_DISTANCE && d >= BASE_SYSTEM_DISTANCE).count()
    }
}

/// Drops a snapshot and its analysis, their large arrays' pages given back to the system on two threads first:
/// what the process would otherwise do on one, at exit, after a command's output is written (20 → 12 ms for
/// 288 MB in a C test on the project's VM; munmap takes the address space lock for writing, and so runs one at a
/// time, while giving pages back takes it for reading).
pub fn release(snapshot: HeapSnapshot, analysis: Analysis) {
    let mut regions = snapshot.regions();
    regions.extend([
        Region::of(analysis.shallow.slots()),
        Region::of(analysis.retained.slots()),
        Region::of(&analysis.idom),
        Region::of(&analysis.distance),
        Region::of(analysis.classes.per_node()),
        Region::of(&analysis.dominator_tree.first),
        Region::of(&analysis.dominator_tree.children),
    ]);
    regions.sort_by_key(|region| std::cmp::Reverse(region.len()));
    // Each thread takes every other one, largest first: about half the bytes each.
    let (evens, odds): (Vec<_>, Vec<_>) = regions.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    // SAFETY: every region is an array of plain numbers owned by `snapshot` or `analysis`, which are dropped right
    // after without being read.
    let discard =
        |regions: Vec<(usize, &Region)>| regions.into_iter().for_each(|(_, region)| unsafe { region.discard() });
    join_after_start(true, || discard(odds), || discard(evens));
    drop((snapshot, analysis));
}

/// How many explored nodes a first-in-first-out queue (a vector and the index of its next node) holds before they
/// are cut off: at least this many, and at least as many as are left to explore (so each node moves once on
/// average).
const FIFO_COMPACT_AT: usize = if cfg!(test) { 8 } else { 1 << 14 };

/// Cuts the explored part (before `next`) off a first-in-first-out queue once it is long enough
/// ([`FIFO_COMPACT_AT`]), so that the queue takes about twice its widest stretch, not four bytes for every node
/// queued (15 MB of fresh pages per search at 324 MiB). Returns how many nodes went.
pub(crate) fn drop_explored(queue: &mut Vec<NodeIndex>, next: &mut usize) -> usize {
    let explored = *next;
    if explored < FIFO_COMPACT_AT || 2 * explored < queue.len() {
        return 0;
    }
    queue.drain(..explored);
    *next = 0;
    explored
}

/// Asks for what a search over `queue` reads next: the edges of the node `near` places after `next`, and the
/// first-edge offset of the one `far` places after it. A node queued long ago has left the cache; without the
/// offset asked for first, asking for its edges waits for it (23% of the distances' samples at 324 MiB).
#[inline(always)]
pub(crate) fn prefetch_queued(snapshot: &HeapSnapshot, queue: &[NodeIndex], next: usize, near: usize, far: usize) {
    if let Some(&node) = queue.get(next + far) {
        prefetch(&snapshot.first_edge, node as usize);
    }
    if let Some(&node) = queue.get(next + near) {
        snapshot.prefetch_edge(snapshot.first_edge[node as usize] as usize);
    }
}

/// Starts loading `slice[index]` into the cache, if it exists.
#[inline(always)]
pub(crate) fn prefetch<T>(slice: &[T], index: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = slice.get(index) {
        // SAFETY: a prefetch hint for an element of `slice`; it reads nothing and cannot fault.
        unsafe { std::arch::x86_64::_mm_prefetch(item as *const T as *const i8, std::arch::x86_64::_MM_HINT_T0) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, index);
}

/// The first node whose edges start in the second half of the edges (`first_edge.len() - 1` when none does): where
/// the passes that take half the edges each split the nodes.
fn middle_by_edges(first_edge: &[u32]) -> usize {
    let n = first_edge.len() - 1;
    first_edge[..n].partition_point(|&start| start < first_edge[n] / 2)
}
