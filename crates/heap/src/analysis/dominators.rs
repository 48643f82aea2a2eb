//! Immediate dominators by Lengauer–Tarjan (1979), "simple" link/eval with path compression, fully iterative.
//!
//! Nodes that the root cannot reach are handled the way Chrome DevTools does, so that the numbers match:
//! nodes whose retainers are all non-essential (or that have none) are parented to the root and explored
//! from there; whatever is still unreached (cliques holding each other) is attached to the root one by one.

use super::bits::BitVec;
use crate::snapshot::NodeIndex;

/// The flow graph: forward edges as CSR with a per-edge "counts for retention" bit, and the reverse CSR of
/// the counting edges only.
pub struct FlowGraph<'a> {
    pub first_edge: &'a [u32],
    pub edge_to: &'a [NodeIndex],
    pub essential: &'a BitVec,
    pub pred_first: &'a [u32],
    pub preds: &'a [NodeIndex],
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

pub fn lengauer_tarjan(graph: &FlowGraph, root: NodeIndex) -> Dominators {
    let n = graph.node_count();
    // 1-based vertex numbers; 0 means "none".
    let len = n + 1;
    let mut parent = vec![0u32; len];
    let mut ancestor = vec![0u32; len];
    let mut vertex = vec![0u32; len];
    let mut label = vec![0u32; len];
    let mut semi = vec![0u32; len];
    let mut cursor = vec![0u32; len];
    let mut count = 0u32;

    // Iterative DFS over essential edges; `cursor[v]` is the next edge of v to look at.
    let mut dfs = |start: u32,
                   parent: &mut Vec<u32>,
                   semi: &mut Vec<u32>,
                   vertex: &mut Vec<u32>,
                   label: &mut Vec<u32>,
                   count: &mut u32| {
        cursor[start as usize] = graph.first_edge[start as usize - 1];
        let mut v = start;
        while v != 0 {
            if semi[v as usize] == 0 {
                *count += 1;
                semi[v as usize] = *count;
                vertex[*count as usize] = v;
                label[v as usize] = v;
            }
            let mut next = parent[v as usize];
            let end = graph.first_edge[v as usize];
            while cursor[v as usize] < end {
                let edge = cursor[v as usize];
                cursor[v as usize] += 1;
                if !graph.essential.get(edge as usize) {
                    continue;
                }
                let w = graph.edge_to[edge as usize] + 1;
                if semi[w as usize] == 0 {
                    parent[w as usize] = v;
                    cursor[w as usize] = graph.first_edge[w as usize - 1];
                    next = w;
                    break;
                }
            }
            v = next;
        }
    };

    let r = root + 1;
    dfs(r, &mut parent, &mut semi, &mut vertex, &mut label, &mut count);
    let reached = count;
    if (count as usize) < n {
        for v in 1..=n as u32 {
            let ordinal = v as usize - 1;
            let orphan = graph.pred_first[ordinal] == graph.pred_first[ordinal + 1];
            if semi[v as usize] == 0 && orphan {
                parent[v as usize] = r;
                dfs(v, &mut parent, &mut semi, &mut vertex, &mut label, &mut count);
            }
        }
    }
    if (count as usize) < n {
        for v in 1..=n as u32 {
            if semi[v as usize] == 0 {
                parent[v as usize] = r;
                count += 1;
                semi[v as usize] = count;
                vertex[count as usize] = v;
                label[v as usize] = v;
            }
        }
    }
    drop(cursor);

    let mut compress_stack: Vec<u32> = Vec::new();
    let mut eval = |v: u32, ancestor: &mut Vec<u32>, label: &mut Vec<u32>, semi: &Vec<u32>| -> u32 {
        if ancestor[v as usize] == 0 {
            return v;
        }
        // Path compression, iteratively: walk up to the last node below the forest root, then fold back.
        let mut u = v;
        while ancestor[ancestor[u as usize] as usize] != 0 {
            compress_stack.push(u);
            u = ancestor[u as usize];
        }
        while let Some(w) = compress_stack.pop() {
            let a = ancestor[w as usize];
            if semi[label[a as usize] as usize] < semi[label[w as usize] as usize] {
                label[w as usize] = label[a as usize];
            }
            ancestor[w as usize] = ancestor[a as usize];
        }
        label[v as usize]
    };

    let mut dom = vec![0u32; len];
    // Buckets as singly linked lists: each vertex is put in exactly one bucket, once.
    let mut bucket_head = vec![0u32; len];
    let mut bucket_next = vec![0u32; len];
    for i in (2..=count).rev() {
        let w = vertex[i as usize];
        let ordinal = w as usize - 1;
        let (from, to) = (graph.pred_first[ordinal], graph.pred_first[ordinal + 1]);
        if from == to {
            // No essential retainers: the root is its only predecessor.
            semi[w as usize] = semi[r as usize];
        }
        for &pred in &graph.preds[from as usize..to as usize] {
            let u = eval(pred + 1, &mut ancestor, &mut label, &semi);
            if semi[u as usize] < semi[w as usize] {
                semi[w as usize] = semi[u as usize];
            }
        }
        let s = vertex[semi[w as usize] as usize];
        bucket_next[w as usize] = bucket_head[s as usize];
        bucket_head[s as usize] = w;
        let p = parent[w as usize];
        ancestor[w as usize] = p;
        let mut v = std::mem::take(&mut bucket_head[p as usize]);
        while v != 0 {
            let u = eval(v, &mut ancestor, &mut label, &semi);
            dom[v as usize] = if semi[u as usize] < semi[v as usize] { u } else { p };
            v = bucket_next[v as usize];
        }
    }
    // Like DevTools, index 0 ("no dominator found") maps to the root, so nodes whose semidominator's bucket was
    // never processed (members of unreachable cliques) end up under the root.
    dom[0] = r;
    dom[r as usize] = r;
    for i in 2..=count {
        let w = vertex[i as usize];
        if dom[w as usize] != vertex[semi[w as usize] as usize] {
            dom[w as usize] = dom[dom[w as usize] as usize];
        }
    }

    let idom = (0..n).map(|ordinal| dom[ordinal + 1].saturating_sub(1)).collect();
    let preorder = vertex[1..=count as usize].iter().map(|&v| v - 1).collect();
    Dominators { idom, preorder, unreachable: n as u32 - reached }
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
