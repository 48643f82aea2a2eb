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

impl FlowGraph<'_> {
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
    // Nodes with at least one essential retainer; the others are explored from the root (DevTools' orphans).
    let mut has_retainer = BitVec::new(n);
    for (edge, &to) in graph.edge_to.iter().enumerate() {
        if essential.get(edge) {
            has_retainer.set(to as usize);
        }
    }

    // DFS numbering over essential edges, iterative; `cursor[k]` is the next edge of the node numbered k.
    let len = n + 1;
    let mut num = vec![0u32; n];
    let mut vertex = vec![0u32; len];
    let mut parent = vec![0u32; len];
    let mut cursor = vec![0u32; len];
    let mut count = 0u32;
    let dfs = |start: NodeIndex,
               start_parent: u32,
               count: &mut u32,
               num: &mut [u32],
               vertex: &mut [u32],
               parent: &mut [u32],
               cursor: &mut [u32]| {
        *count += 1;
        num[start as usize] = *count;
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
                if num[w as usize] == 0 {
                    *count += 1;
                    num[w as usize] = *count;
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
    dfs(root, 0, &mut count, &mut num, &mut vertex, &mut parent, &mut cursor);
    let reached = count;
    // The root is number 1.
    if (count as usize) < n {
        for v in 0..n as NodeIndex {
            if num[v as usize] == 0 && !has_retainer.get(v as usize) {
                dfs(v, 1, &mut count, &mut num, &mut vertex, &mut parent, &mut cursor);
            }
        }
    }
    if (count as usize) < n {
        for v in 0..n as NodeIndex {
            if num[v as usize] == 0 {
                count += 1;
                num[v as usize] = count;
                vertex[count as usize] = v;
                parent[count as usize] = 1;
            }
        }
    }
    drop(cursor);
    drop(has_retainer);
    let count = count as usize;

    // Essential retainers by DFS number, as CSR: `preds[pred_first[k]..pred_first[k + 1]]`, in file order of
    // the retaining node (as DevTools lists them).
    let mut pred_first = vec![0u32; count + 2];
    for (edge, &to) in graph.edge_to.iter().enumerate() {
        if essential.get(edge) {
            pred_first[num[to as usize] as usize + 1] += 1;
        }
    }
    for k in 0..=count {
        pred_first[k + 1] += pred_first[k];
    }
    let mut preds = vec![0u32; pred_first[count + 1] as usize];
    for from in 0..n {
        let from_number = num[from];
        for e in graph.first_edge[from]..graph.first_edge[from + 1] {
            if essential.get(e as usize) {
                let k = num[graph.edge_to[e as usize] as usize] as usize;
                preds[pred_first[k] as usize] = from_number;
                pred_first[k] += 1;
            }
        }
    }
    // `pred_first[k]` now ends list k: shift back to starts.
    for k in (1..=count + 1).rev() {
        pred_first[k] = pred_first[k - 1];
    }
    pred_first[0] = 0;
    drop(num);

    let mut slots: Vec<Slot> = (0..len as u32).map(|k| Slot { semi: k, label: k, ancestor: 0 }).collect();
    let mut compress_stack: Vec<u32> = Vec::new();
    let mut eval = |v: u32, slots: &mut [Slot]| -> u32 {
        if slots[v as usize].ancestor == 0 {
            return v;
        }
        // Path compression, iteratively: walk up to the last node below the forest root, then fold back.
        let mut u = v;
        while slots[slots[u as usize].ancestor as usize].ancestor != 0 {
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
    for w in (2..=count).rev() {
        let (from, to) = (pred_first[w] as usize, pred_first[w + 1] as usize);
        if from == to {
            // No essential retainers: the root is its only predecessor.
            slots[w].semi = slots[1].semi;
        }
        let mut semi = slots[w].semi;
        for &pred in &preds[from..to] {
            // A retainer numbered below w is not processed yet: it is not in the forest (eval returns it) and
            // its semidominator is still its own number. Only the others need a lookup.
            let candidate = if (pred as usize) < w {
                pred
            } else {
                let u = eval(pred, &mut slots);
                slots[u as usize].semi
            };
            semi = semi.min(candidate);
        }
        slots[w].semi = semi;
        let s = slots[w].semi as usize;
        link_or_dom[w] = bucket_head[s];
        bucket_head[s] = w as u32;
        let p = parent[w];
        slots[w].ancestor = p;
        let mut v = std::mem::take(&mut bucket_head[p as usize]);
        while v != 0 {
            let u = eval(v, &mut slots);
            let next = link_or_dom[v as usize];
            link_or_dom[v as usize] = if slots[u as usize].semi < slots[v as usize].semi { u } else { p };
            v = next;
        }
    }
    drop(preds);
    drop(pred_first);
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
    drop(parent);

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
