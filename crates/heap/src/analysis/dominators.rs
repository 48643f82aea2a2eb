//! Immediate dominators by Lengauer–Tarjan (1979), "simple" link/eval with path compression, fully iterative.
//!
//! Nodes that the root cannot reach are handled the way Chrome DevTools does, so that the numbers match:
//! nodes whose retainers are all non-essential (or that have none) are parented to the root and explored
//! from there; whatever is still unreached (cliques holding each other) is attached to the root one by one.

use super::bits::BitVec;
use crate::snapshot::NodeIndex;

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
}

/// Flags the first entry of each retainer list (DFS numbers stay below 2^31).
const FIRST_RETAINER: u32 = 1 << 31;

/// Per node during the DFS: its number, and its count of essential retainers (later the next free place in its
/// retainer list).
#[derive(Clone, Copy, Default)]
struct NodeInfo {
    number: u32,
    retainers: u32,
}

/// Per DFS number: semidominator, label and forest ancestor (all DFS numbers), kept together because `eval`
/// reads all three along a path.
#[derive(Clone, Copy, Default)]
struct Slot {
    semi: u32,
    label: u32,
    ancestor: u32,
}

/// Lengauer–Tarjan in DFS-number space: after the DFS every array is indexed by DFS number (1-based; 0 means
/// "none"), and the retainers are listed by number too, so the main loop walks its arrays in order. The steps
/// and tie-breaks are those of the textbook algorithm on vertex ids, which DevTools runs; only the indexing
/// differs.
pub fn lengauer_tarjan(graph: &FlowGraph, root: NodeIndex) -> Dominators {
    let n = graph.node_count();
    let essential = graph.essential;

    // DFS numbering over essential edges, iterative; `cursor[k]` is the next edge of the node numbered k. The
    // DFS also counts every node's essential retainers, next to its number: one cache miss for both.
    let len = n + 1;
    let mut info = vec![NodeInfo::default(); n];
    let mut vertex = vec![0u32; len];
    let mut parent = vec![0u32; len];
    let mut cursor = vec![0u32; len];
    let mut count = 0u32;
    let dfs = |start: NodeIndex,
               start_parent: u32,
               count: &mut u32,
               info: &mut [NodeInfo],
               vertex: &mut [u32],
               parent: &mut [u32],
               cursor: &mut [u32]| {
        *count += 1;
        info[start as usize].number = *count;
        vertex[*count as usize] = start;
        parent[*count as usize] = start_parent;
        cursor[*count as usize] = graph.first_edge[start as usize];
        let mut k = *count;
        while k != start_parent {
            let end = graph.first_edge[vertex[k as usize] as usize + 1];
            let mut next = parent[k as usize];
            let mut edge = cursor[k as usize];
            while edge < end {
                let e = edge as usize;
                edge += 1;
                if !essential.get(e) {
                    continue;
                }
                let w = graph.edge_to[e];
                let target = &mut info[w as usize];
                target.retainers += 1;
                if target.number == 0 {
                    *count += 1;
                    target.number = *count;
                    vertex[*count as usize] = w;
                    parent[*count as usize] = k;
                    cursor[*count as usize] = graph.first_edge[w as usize];
                    next = *count;
                    break;
                }
            }
            cursor[k as usize] = edge;
            k = next;
        }
    };
    dfs(root, 0, &mut count, &mut info, &mut vertex, &mut parent, &mut cursor);
    let reached = count;
    // The root is number 1.
    if (count as usize) < n {
        // Nodes with at least one essential retainer; the others are explored from the root (DevTools'
        // orphans). Only needed, and so only computed, when the root does not reach everything.
        let mut has_retainer = BitVec::new(n);
        for (edge, &to) in graph.edge_to.iter().enumerate() {
            if essential.get(edge) {
                has_retainer.set(to as usize);
            }
        }
        for v in 0..n as NodeIndex {
            if info[v as usize].number == 0 && !has_retainer.get(v as usize) {
                dfs(v, 1, &mut count, &mut info, &mut vertex, &mut parent, &mut cursor);
            }
        }
    }
    if (count as usize) < n {
        for v in 0..n as NodeIndex {
            if info[v as usize].number == 0 {
                count += 1;
                info[v as usize].number = count;
                vertex[count as usize] = v;
                parent[count as usize] = 1;
                // Never explored: its edges were not counted by the DFS.
                for e in graph.first_edge[v as usize]..graph.first_edge[v as usize + 1] {
                    if essential.get(e as usize) {
                        info[graph.edge_to[e as usize] as usize].retainers += 1;
                    }
                }
            }
        }
    }
    drop(cursor);
    let count = count as usize;

    // Essential retainers by DFS number, list after list in number order, each list in file order of the
    // retaining node (as DevTools lists them). The main loop walks the lists backwards, so instead of an offsets
    // array the first entry of each list carries a flag, and vertices without any list are marked in a bit
    // vector (DFS numbers are below 2^31: the parser rejects bigger snapshots). `retainers` turns into each
    // list's fill position.
    let mut no_retainers = BitVec::new(count + 1);
    let mut total = 0usize;
    for k in 1..=count {
        let node = &mut info[vertex[k] as usize];
        let retainers = node.retainers;
        node.retainers = total as u32;
        if retainers == 0 {
            no_retainers.set(k);
        }
        total += retainers as usize;
    }
    let mut preds = vec![0u32; total];
    for k in 1..=count {
        if !no_retainers.get(k) {
            preds[info[vertex[k] as usize].retainers as usize] = FIRST_RETAINER;
        }
    }
    for from in 0..n {
        let from_number = info[from].number;
        for e in graph.first_edge[from]..graph.first_edge[from + 1] {
            if essential.get(e as usize) {
                let target = &mut info[graph.edge_to[e as usize] as usize];
                preds[target.retainers as usize] |= from_number;
                target.retainers += 1;
            }
        }
    }
    drop(info);

    // Vertices are linked into the forest in decreasing order, each to its DFS parent: everything numbered above
    // `linked_above` is linked, the rest are forest roots. So `ancestor` starts out as the DFS parent (the
    // parent array is not kept) and "is v linked" is a comparison.
    let mut slots: Vec<Slot> =
        parent.iter().enumerate().map(|(k, &p)| Slot { semi: k as u32, label: k as u32, ancestor: p }).collect();
    drop(parent);
    let mut compress_stack: Vec<u32> = Vec::new();
    let mut eval = |v: u32, linked_above: u32, slots: &mut [Slot]| -> u32 {
        if v <= linked_above {
            return v;
        }
        // Path compression, iteratively: walk up to the last node below the forest root, then fold back.
        let mut u = v;
        while slots[u as usize].ancestor > linked_above {
            compress_stack.push(u);
            u = slots[u as usize].ancestor;
        }
        while let Some(w) = compress_stack.pop() {
            let a = slots[w as usize].ancestor;
            let (a_label, a_ancestor) = (slots[a as usize].label, slots[a as usize].ancestor);
            if slots[a_label as usize].semi < slots[slots[w as usize].label as usize].semi {
                slots[w as usize].label = a_label;
            }
            slots[w as usize].ancestor = a_ancestor;
        }
        slots[v as usize].label
    };

    // Buckets as singly linked lists: each vertex is put in exactly one bucket, once. Once a vertex's bucket
    // has been processed its link is no longer needed, and its slot holds its dominator instead.
    let mut bucket_head = vec![0u32; len];
    let mut link_or_dom = vec![0u32; len];
    let mut list_end = preds.len();
    for w in (2..=count).rev() {
        let mut semi = slots[w].semi;
        if no_retainers.get(w) {
            // No essential retainers: the root is its only predecessor.
            semi = slots[1].semi;
        } else {
            loop {
                list_end -= 1;
                let entry = preds[list_end];
                let pred = entry & !FIRST_RETAINER;
                // A retainer numbered below w is not processed yet: it is not in the forest (eval returns it) and
                // its semidominator is still its own number. Only the others need a lookup.
                let candidate = if (pred as usize) < w {
                    pred
                } else {
                    let u = eval(pred, w as u32, &mut slots);
                    slots[u as usize].semi
                };
                semi = semi.min(candidate);
                if entry & FIRST_RETAINER != 0 {
                    break;
                }
            }
        }
        slots[w].semi = semi;
        let s = slots[w].semi as usize;
        link_or_dom[w] = bucket_head[s];
        bucket_head[s] = w as u32;
        // Linking w to its parent: w's ancestor is its parent already.
        let p = slots[w].ancestor;
        let mut v = std::mem::take(&mut bucket_head[p as usize]);
        while v != 0 {
            let u = eval(v, w as u32 - 1, &mut slots);
            let next = link_or_dom[v as usize];
            link_or_dom[v as usize] = if slots[u as usize].semi < slots[v as usize].semi { u } else { p };
            v = next;
        }
    }
    drop(preds);
    drop(no_retainers);
    // Vertices left in buckets that were never processed (members of unreachable cliques) have no dominator
    // found yet: 0, which like DevTools' index 0 maps to the root below.
    for &head in &bucket_head[1..] {
        let mut v = head;
        while v != 0 {
            let next = link_or_dom[v as usize];
            link_or_dom[v as usize] = 0;
            v = next;
        }
    }
    drop(bucket_head);
    let dom = &mut link_or_dom;
    dom[0] = 1;
    dom[1] = 1;
    for w in 2..=count {
        if dom[w] != slots[w].semi {
            dom[w] = dom[dom[w] as usize];
        }
    }
    drop(slots);

    let mut idom = vec![0 as NodeIndex; n];
    for k in 1..=count {
        idom[vertex[k] as usize] = vertex[dom[k] as usize];
    }
    drop(link_or_dom);
    // Preorder (0-based ordinals) in place.
    vertex.copy_within(1..=count, 0);
    vertex.truncate(count);
    Dominators { idom, preorder: vertex, unreachable: n as u32 - reached }
}

/// Retained size: own size plus everything dominated, summed up the tree in reverse preorder.
pub fn retained_sizes(dominators: &Dominators, shallow: &[u64]) -> Vec<u64> {
    let mut retained = shallow.to_vec();
    for &node in dominators.preorder.iter().skip(1).rev() {
        let parent = dominators.idom[node as usize];
        retained[parent as usize] += retained[node as usize];
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
        let n = idom.len();
        let mut first = vec![0u32; n + 1];
        for (node, &d) in idom.iter().enumerate() {
            if node as NodeIndex != root {
                first[d as usize + 1] += 1;
            }
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        let mut fill = first.clone();
        let mut children = vec![0; first[n] as usize];
        for (node, &d) in idom.iter().enumerate() {
            if node as NodeIndex != root {
                children[fill[d as usize] as usize] = node as NodeIndex;
                fill[d as usize] += 1;
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
