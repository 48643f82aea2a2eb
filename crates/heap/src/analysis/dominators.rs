//! Immediate dominators by semi-NCA (Lengauer–Tarjan semidominators, then nearest common ancestors), fully
//! iterative.
//!
//! Nodes that the root cannot reach are handled the way Chrome DevTools does, so that the numbers match:
//! nodes whose retainers are all non-essential (or that have none) are parented to the root and explored
//! from there; whatever is still unreached (cliques holding each other) gets the root as dominator.

use super::bits::BitVec;
use super::prefetch;
use crate::pages::Region;
use crate::sizes::CompactSizes;
use crate::snapshot::NodeIndex;
use crate::threads::Handover;

/// The flow graph: forward edges as CSR with a per-edge "counts for retention" bit.
pub struct FlowGraph<'a> {
    pub first_edge: &'a [u32],
    pub edge_to: &'a [NodeIndex],
    pub essential: &'a BitVec,
}

impl<'a> FlowGraph<'a> {
    /// The snapshot's edges, with `essential` saying which count for retention.
    pub fn new(snapshot: &'a crate::snapshot::HeapSnapshot, essential: &'a BitVec) -> Self {
        FlowGraph { first_edge: &snapshot.first_edge, edge_to: &snapshot.edge_to, essential }
    }

    fn node_count(&self) -> usize {
        self.first_edge.len() - 1
    }
}

pub struct Dominators {
    /// Immediate dominator of every node; the root dominates itself.
    pub idom: Vec<NodeIndex>,
    /// Every node in DFS preorder (the root first); children come after their dominators.
    pub preorder: Vec<NodeIndex>,
    /// Nodes not reachable from the root through essential edges.
    pub unreachable: u32,
    /// Working arrays of the pass, already in memory, for the next passes to fill instead of fresh ones.
    pub(crate) spare: Vec<Vec<u32>>,
}

/// The DFS over essential edges, iterative, in its arrays (see [`DfsMemory`]).
struct Dfs<'g, 'a> {
    graph: &'g FlowGraph<'a>,
    arrays: DfsMemory,
    count: u32,
}

impl Dfs<'_, '_> {
    fn explore(&mut self, start: NodeIndex, start_parent: u32) {
        let graph = self.graph;
        let mut k = self.number_node(start, start_parent);
        let mut edge = graph.first_edge[start as usize];
        loop {
            let end = graph.first_edge[self.arrays.vertex[k as usize] as usize + 1];
            let mut child = None;
            while edge < end {
                let e = edge as usize;
                edge += 1;
                if let Some(&ahead) = graph.edge_to.get(e + PREFETCH_EDGES) {
                    prefetch(&self.arrays.number, ahead as usize);
                    prefetch(graph.first_edge, ahead as usize);
                }
                if let Some(&near) = graph.edge_to.get(e + PREFETCH_EDGES / 2) {
                    if self.arrays.number[near as usize] == 0 {
                        let first = graph.first_edge[near as usize] as usize;
                        prefetch(graph.edge_to, first);
                    }
                }
                if !graph.essential.get(e) {
                    continue;
                }
                let w = graph.edge_to[e];
                let t = self.arrays.number[w as usize];
                if t == 0 {
                    child = Some((self.number_node(w, k), w));
                    break;
                }
                if t > k {
                    if k < self.arrays.semi[t as usize] {
                        self.arrays.semi[t as usize] = k;
                    }
                } else if t < k && t > 1 {
                    self.arrays.upper[t as usize] += 1;
                }
            }
            match child {
                Some((number, node)) => {
                    self.arrays.path.push(edge);
                    (k, edge) = (number, graph.first_edge[node as usize]);
                }
                None => match self.arrays.path.pop() {
                    Some(next) => (k, edge) = (self.arrays.parent[k as usize], next),
                    None => return,
                },
            }
        }
    }

    #[inline]
    fn number_node(&mut self, node: NodeIndex, parent: u32) -> u32 {
        self.count += 1;
        let c = self.count as usize;
        self.arrays.number[node as usize] = self.count;
        self.arrays.vertex[c] = node;
        self.arrays.parent[c] = parent;
        self.arrays.semi[c] = parent;
        self.count
    }
}

/// Semi-NCA (Georgiadis and Tarjan): Lengauer–Tarjan's semidominators, computed with path compression in
/// reverse DFS order, then each immediate dominator as the nearest common ancestor of its DFS parent and its
/// semidominator in the dominator tree built so far, in DFS order. No buckets.
///
/// Everything works in DFS-number space (1-based; 0 means "none"). Only the retainers numbered *above* a vertex
/// need a forest lookup: those numbered below count with their own number, so the DFS keeps just the smallest
/// of them (the parent included) and lists the others. Path compression carries the smallest semidominator on
/// the path (not the vertex holding it, which the bucket step of Lengauer–Tarjan needed), so `eval` reads one
/// array.
///
/// Nodes the root does not reach follow DevTools: nodes without any essential retainer hang off the root and are
/// explored from there; whatever is still unreached (cliques holding each other) gets the root as dominator —
/// what DevTools' Lengauer–Tarjan ends up with for them (their semidominator buckets are never processed), and
/// they have no influence on the other nodes' dominators.
pub fn immediate_dominators(graph: &FlowGraph, root: NodeIndex) -> Dominators {
    let (listed, retainers) = number_nodes(graph, root).list_upper_retainers(false);
    listed.dominators(retainers, &Handover::new())
}

/// The nodes numbered by the DFS: the first stage of [`immediate_dominators`], which the analysis runs stage by
/// stage to share the work between two threads.
pub struct Numbered<'g, 'a> {
    graph: &'g FlowGraph<'a>,
    /// DFS number per node; dropped once the retainer lists are made.
    number: Vec<u32>,
    vertices: Listed,
}

/// The DFS's working arrays, made before it starts so that another thread can have their pages mapped while it
/// runs ([`DfsMemory::populate`]). Per node its DFS number; per DFS number its node, DFS parent, the smallest
/// retainer numbered below it (the parent at first), and its count of retainers numbered above it.
pub struct DfsMemory {
    /// Made empty, with room for a DFS number per node and one more slot (see `Listed::forest`), and filled with
    /// zeros as the DFS starts: made here too, so that the DFS's thread allocates nothing (a fresh mapping would
    /// wait for the lock that mapping the pages holds).
    number: Vec<u32>,
    vertex: Vec<u32>,
    parent: Vec<u32>,
    semi: Vec<u32>,
    upper: Vec<u32>,
    /// The next edge to explore of each vertex on the path from the start to the vertex at hand (not included):
    /// the other vertices are done or not reached yet. It grows as deep as the DFS goes: under 2^16 vertices at
    /// 324 MiB, under 2^18 at 1.1 GiB (the benchmark's leaks are long linked lists).
    path: Vec<u32>,
}

impl DfsMemory {
    /// For a graph of `n` nodes; fresh memory, not mapped yet.
    pub fn new(n: usize) -> Self {
        let len = n + 1;
        let array = || vec![0u32; len];
        let number = Vec::with_capacity(len);
        let path = Vec::with_capacity(PATH_ROOM);
        DfsMemory { number, vertex: array(), parent: array(), semi: array(), upper: array(), path }
    }

    /// What [`DfsMemory::populate`] maps.
    pub(crate) fn regions(&self) -> [Region; 4] {
        [&self.upper, &self.vertex, &self.parent, &self.semi].map(|array| Region::of(array))
    }

    /// Maps the pages of the arrays `regions` describes, in the order the DFS first writes them: the retainer
    /// counts (written anywhere from the start), then the per-number arrays a slice at a time. Meant for a thread
    /// running beside the DFS, while the arrays are alive.
    pub(crate) fn populate(regions: [Region; 4]) {
        const SLICES: usize = 64;
        let [upper, sequential @ ..] = regions;
        upper.populate();
        for slice in 0..SLICES {
            for region in sequential {
                region.part(slice, SLICES).populate();
            }
        }
    }
}

/// The DFS over essential edges from the root (then from DevTools' orphans), numbering every node.
pub fn number_nodes<'g, 'a>(graph: &'g FlowGraph<'a>, root: NodeIndex) -> Numbered<'g, 'a> {
    number_nodes_in(graph, root, DfsMemory::new(graph.node_count()))
}

/// [`number_nodes`] in arrays made beforehand.
pub fn number_nodes_in<'g, 'a>(graph: &'g FlowGraph<'a>, root: NodeIndex, memory: DfsMemory) -> Numbered<'g, 'a> {
    let n = graph.node_count();
    // `number` is read before it is written; filled here, its pages are written once instead of being mapped to the
    // shared zero page on the first read and copied on the first write (a second fault, and a TLB flush on every
    // core: 3,400 fewer page faults and ~60 ms less CPU at 324 MiB).
    let mut arrays = memory;
    arrays.number.resize(n, 0u32);
    let mut dfs = Dfs { graph, arrays, count: 0 };
    dfs.explore(root, 0);
    let reached = dfs.count;
    if reached < n as u32 {
        // Nodes with at least one essential retainer; the others are explored from the root (DevTools'
        // orphans). Only needed, and so only computed, when the root does not reach everything.
        let mut has_retainer = BitVec::new(n);
        for (edge, &to) in graph.edge_to.iter().enumerate() {
            if graph.essential.get(edge) {
                has_retainer.set(to as usize);
            }
        }
        for v in 0..n as NodeIndex {
            if dfs.arrays.number[v as usize] == 0 && !has_retainer.get(v as usize) {
                dfs.explore(v, 1);
            }
        }
    }
    let Dfs { arrays: DfsMemory { mut number, mut vertex, parent, semi, upper, .. }, mut count, .. } = dfs;
    let explored = count as usize;
    // Members of unreachable cliques: numbered (they are in the preorder) but not explored.
    for v in 0..n as NodeIndex {
        if number[v as usize] == 0 {
            count += 1;
            number[v as usize] = count;
            vertex[count as usize] = v;
        }
    }
    let forest = Vec::new();
    let vertices = Listed { root, vertex, parent, semi, upper, explored, count: count as usize, reached, forest };
    Numbered { graph, number, vertices }
}

/// The numbered vertices, which is all the last stage of [`immediate_dominators`] needs once their retainer
/// lists are made: the graph and the per-node DFS numbers can go before it starts.
pub struct Listed {
    root: NodeIndex,
    /// Per DFS number (1-based) its node: one slot more than there are nodes.
    vertex: Vec<u32>,
    parent: Vec<u32>,
    semi: Vec<u32>,
    /// Count of retainers numbered above each vertex; then where its list ends.
    upper: Vec<u32>,
    /// Vertices numbered by exploring; the members of unreachable cliques come after them.
    explored: usize,
    count: usize,
    reached: u32,
    /// Memory for the forest of the semidominator loop: the DFS numbers' array once the lists are made (its pages
    /// are in memory already; fresh memory when empty).
    forest: Vec<u32>,
}

impl Numbered<'_, '_> {
    /// The retainers numbered above each vertex, list after list in number order; `upper[k]` becomes the end of
    /// k's list, which is also the start of k + 1's. With `parallel`, two threads take half the lists each.
    pub fn list_upper_retainers(self, parallel: bool) -> (Listed, Vec<u32>) {
        let Numbered { graph, number, mut vertices } = self;
        let explored = vertices.explored;
        let mut total = 0u32;
        for slot in &mut vertices.upper[..=explored] {
            let c = *slot;
            *slot = total;
            total += c;
        }
        let mut lists = vec![0u32; total as usize];
        let n = number.len();
        if parallel && n > 1 {
            // Each thread fills the lists of its own range of vertices, reading every edge: no list is written by
            // both, so there are no atomic adds, whose locked cache misses cannot overlap. The range is split where
            // the work is halved: a vertex costs about two entries more than its entries (its list's first entry
            // and its end are cache misses; the rest are near them). Split by entries alone, one thread got 3.76 M
            // vertices, the other 8 k, and they took 48 and 37 ms (324 MiB).
            let work_before = |k: usize| u64::from(vertices.upper[k]) + 2 * k as u64;
            let half = (u64::from(total) + 2 * (explored as u64 + 1)) / 2;
            let split = partition_point(0..explored + 1, |k| work_before(k) < half);
            let lists_split = if split <= explored { vertices.upper[split] as usize } else { lists.len() };
            let (upper_low, upper_high) = vertices.upper.split_at_mut(split);
            let (lists_low, lists_high) = lists.split_at_mut(lists_split);
            crate::threads::join(
                true,
                || {
                    each_upper_retainer(graph, &number, explored, 0..n, |t, k| {
                        if t >= split {
                            let end = &mut upper_high[t - split];
                            lists_high[*end as usize - lists_split] = k;
                            *end += 1;
                        }
                    })
                },
                || {
                    each_upper_retainer(graph, &number, explored, 0..n, |t, k| {
                        if t < split {
                            lists_low[upper_low[t] as usize] = k;
                            upper_low[t] += 1;
                        }
                    })
                },
            );
        } else {
            let upper = &mut vertices.upper;
            each_upper_retainer(graph, &number, explored, 0..n, |t, k| {
                lists[upper[t] as usize] = k;
                upper[t] += 1;
            });
        }
        // The DFS numbers go here, before the semidominator loop, which makes its forest in their memory.
        vertices.forest = number;
        (vertices, lists)
    }
}

impl Listed {
    /// Semidominators, then immediate dominators, from the retainer lists. The memory of the lists and of two
    /// working arrays is handed over as the pass gives it back.
    pub(crate) fn dominators(self, mut preds: Vec<u32>, handover: &Handover) -> Dominators {
        let _all_at_the_latest = handover.all_given_on_drop();
        let Listed { root, mut vertex, mut parent, mut semi, mut upper, explored, count, reached, forest } = self;
        let n = vertex.len() - 1;

        // Semidominators in decreasing order. Vertices are linked into the forest in that order, each to its DFS
        // parent: everything numbered above w is linked, so `ancestor` starts out as the parent and "is v linked"
        // is a comparison. `upper[v]` holds, once v is processed, the smallest semidominator on v's compressed
        // path (below v, it still holds the end of v's retainer list).
        let mut ancestor = forest;
        ancestor.clear();
        ancestor.extend_from_slice(&parent);
        let best = &mut upper;
        let mut compress_stack: Vec<u32> = Vec::new();
        for w in (2..=explored).rev() {
            let mut s = semi[w];
            for &v in &preds[best[w - 1] as usize..best[w] as usize] {
                // eval(v): the smallest semidominator on the forest path from v up to (not including) its tree root,
                // compressing the path. Most paths have at most one step, taken without a branch: when v is a
                // tree root (its `ancestor` is not linked, so not above w), the step reads v itself and changes
                // nothing.
                let v = v as usize;
                let a = ancestor[v] as usize;
                let step = if a > w { a } else { v };
                if ancestor[step] as usize > w {
                    compress(&mut ancestor, best, &mut compress_stack, step, w);
                }
                let b = best[v].min(best[step]);
                best[v] = b;
                ancestor[v] = ancestor[step];
                s = s.min(b);
            }
            semi[w] = s;
            best[w] = s;
            // The lists are consumed from the end: give their memory back as the loop goes (a shrinking realloc of
            // a large block unmaps its tail in place), so the passes running beside this one can use it.
            let start = best[w - 1] as usize;
            if preds.len() - start >= RELEASE_LISTS_EVERY {
                handover.give((preds.len() - start) * std::mem::size_of::<u32>());
                preds.truncate(start);
                preds.shrink_to_fit();
            }
        }
        drop(preds);
        handover.give_all();

        // Immediate dominators in increasing order: the parent's dominator-tree ancestor that is not below the
        // semidominator. `parent` becomes the dominator array.
        let dom = &mut parent;
        dom[1] = 1;
        for w in 2..=explored {
            let mut d = dom[w];
            while d > semi[w] {
                d = dom[d as usize];
            }
            dom[w] = d;
        }

        // The forest's pages are in memory already: the dominators go there instead of into fresh ones.
        let mut idom = ancestor;
        idom.truncate(n);
        idom.fill(root);
        for k in 1..=explored {
            idom[vertex[k] as usize] = vertex[dom[k] as usize];
        }
        // Preorder (0-based ordinals) in place.
        vertex.copy_within(1..=count, 0);
        vertex.truncate(count);
        // Three arrays for later passes, their pages in memory already.
        Dominators { idom, preorder: vertex, unreachable: n as u32 - reached, spare: vec![upper, semi, parent] }
    }
}

/// Compresses the forest path from `v` (linked, and so is its ancestor) up to its tree root (the first vertex not
/// above `w`): every vertex on it then has the root as its ancestor, and the smallest semidominator on the path to
/// it. Out of line: the semidominator loop needs it for few lookups (at 324 MiB, 11.4 M lookups make 8.6 M steps,
/// 6.5 M of them the first step of a lookup, which the loop takes itself).
#[inline(never)]
fn compress(ancestor: &mut [u32], best: &mut [u32], stack: &mut Vec<u32>, v: usize, w: usize) {
    let mut u = v;
    while ancestor[u] as usize > w {
        stack.push(u as u32);
        u = ancestor[u] as usize;
    }
    while let Some(x) = stack.pop() {
        let x = x as usize;
        let a = ancestor[x] as usize;
        if best[a] < best[x] {
            best[x] = best[a];
        }
        ancestor[x] = ancestor[a];
    }
}

/// The first of `range` for which `below` is false (`range.end` if none is); `below` must be true, then false.
fn partition_point(range: std::ops::Range<usize>, below: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (range.start, range.end);
    while low < high {
        let middle = low + (high - low) / 2;
        if below(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

/// Calls `push(t, k)` for every essential edge from a node of `sources` numbered `k` (explored) to one numbered `t`
/// below it (not the root's).
fn each_upper_retainer(
    graph: &FlowGraph,
    number: &[u32],
    explored: usize,
    sources: std::ops::Range<usize>,
    mut push: impl FnMut(usize, u32),
) {
    for from in sources {
        let k = number[from];
        if k as usize > explored {
            continue;
        }
        for e in graph.first_edge[from]..graph.first_edge[from + 1] {
            // The targets' numbers are all over memory; asking for them some edges ahead overlaps the misses.
            if let Some(&ahead) = graph.edge_to.get(e as usize + PREFETCH_EDGES) {
                prefetch(number, ahead as usize);
            }
            if graph.essential.get(e as usize) {
                let t = number[graph.edge_to[e as usize] as usize];
                if t < k && t > 1 {
                    push(t as usize, k);
                }
            }
        }
    }
}

/// Entries (4 bytes each) of consumed retainer lists given back at a time (a few in tests, so that the property
/// test's small graphs go through the release too).
const RELEASE_LISTS_EVERY: usize = if cfg!(test) { 4 } else { 1 << 20 };

/// Room made beforehand for the DFS's path, in vertices (256 KiB).
const PATH_ROOM: usize = 1 << 16;

/// How far ahead of the edge at hand the loops over all edges ask for their targets' entries.
const PREFETCH_EDGES: usize = 16;

/// Retained size: own size plus everything dominated, summed up the tree in reverse preorder. Made in `memory`
/// (a spare array of the dominator pass, or an empty vector for fresh memory).
pub fn retained_sizes(
    idom: &[NodeIndex],
    preorder: &[NodeIndex],
    shallow: &CompactSizes,
    memory: Vec<u32>,
) -> CompactSizes {
    let mut retained = shallow.copy_into(memory);
    for &node in preorder.iter().skip(1).rev() {
        retained.add_to(idom[node as usize], node);
    }
    retained
}

/// Children lists of the dominator tree, as CSR.
pub struct DominatorTree {
    pub first: Vec<u32>,
    pub children: Vec<NodeIndex>,
}

impl DominatorTree {
    pub fn build(idom: &[NodeIndex], root: NodeIndex) -> Self {
        Self::build_in(idom, root, Vec::new(), Vec::new())
    }

    /// [`Self::build`], its offsets and children made in memory already mapped (arrays of the dominator pass that
    /// are done with), instead of fresh memory.
    pub(crate) fn build_in(idom: &[NodeIndex], root: NodeIndex, offsets: Vec<u32>, children: Vec<u32>) -> Self {
        let n = idom.len();
        // A counting sort that needs no cursor array: `first[d]` counts d's children, the running sum makes it the
        // end of d's list, and filling from the last node down moves it back to the start.
        let mut first = offsets;
        first.clear();
        first.resize(n + 1, 0);
        for (node, &d) in idom.iter().enumerate() {
            if node as NodeIndex != root {
                first[d as usize] += 1;
            }
        }
        let mut total = 0;
        for slot in &mut first {
            total += *slot;
            *slot = total;
        }
        let mut children = children;
        children.clear();
        children.resize(first[n] as usize, 0);
        for (node, &d) in idom.iter().enumerate().rev() {
            if node as NodeIndex != root {
                first[d as usize] -= 1;
                children[first[d as usize] as usize] = node as NodeIndex;
            }
        }
        DominatorTree { first, children }
    }

    pub fn children(&self, node: NodeIndex) -> &[NodeIndex] {
        &self.children[self.first[node as usize] as usize..self.first[node as usize + 1] as usize]
    }
}

#[cfg(test)]
mod tests;
