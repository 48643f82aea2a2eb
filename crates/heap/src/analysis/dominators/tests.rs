#![allow(clippy::needless_range_loop)] // graph tests index several parallel arrays by node

use super::*;
use proptest::prelude::*;

/// Builds the CSR inputs from an edge list; every edge counts for retention.
struct Graph {
    first_edge: Vec<u32>,
    edge_to: Vec<u32>,
    essential: BitVec,
    pred_first: Vec<u32>,
    preds: Vec<u32>,
}

impl Graph {
    fn new(n: usize, edges: &[(u32, u32)]) -> Graph {
        Graph::with_weak(n, edges, &[])
    }

    /// `weak` lists edge positions (in `edges`) that do not count for retention.
    fn with_weak(n: usize, edges: &[(u32, u32)], weak: &[usize]) -> Graph {
        let mut sorted: Vec<(usize, (u32, u32))> = edges.iter().copied().enumerate().collect();
        sorted.sort_by_key(|(_, (from, _))| *from);
        let mut first_edge = vec![0u32; n + 1];
        for (_, (from, _)) in &sorted {
            first_edge[*from as usize + 1] += 1;
        }
        for i in 0..n {
            first_edge[i + 1] += first_edge[i];
        }
        let edge_to: Vec<u32> = sorted.iter().map(|(_, (_, to))| *to).collect();
        let mut essential = BitVec::new(sorted.len());
        let mut pred_lists = vec![Vec::new(); n];
        for (position, (original, (from, to))) in sorted.iter().enumerate() {
            if !weak.contains(original) && from != to {
                essential.set(position);
                pred_lists[*to as usize].push(*from);
            }
        }
        let mut pred_first = vec![0u32];
        let mut preds = Vec::new();
        for list in pred_lists {
            preds.extend(list);
            pred_first.push(preds.len() as u32);
        }
        Graph { first_edge, edge_to, essential, pred_first, preds }
    }

    fn dominators(&self) -> Dominators {
        self.dominators_from(0)
    }

    fn dominators_from(&self, root: u32) -> Dominators {
        immediate_dominators(
            &FlowGraph { first_edge: &self.first_edge, edge_to: &self.edge_to, essential: &self.essential },
            root,
        )
    }

    /// As the analysis runs it: stage by stage, the retainer lists made by two threads.
    fn dominators_with_two_threads(&self, root: u32) -> Dominators {
        let graph = FlowGraph { first_edge: &self.first_edge, edge_to: &self.edge_to, essential: &self.essential };
        let (listed, lists) = number_nodes(&graph, root).list_upper_retainers(true);
        listed.dominators(lists, &crate::threads::Handover::new())
    }
}

/// The previous implementation, on vertex ids, kept as the reference: the DFS-number-space one must give the
/// same result on every graph, including the DevTools-specific handling of orphans and unreachable cliques
/// (where the result is not a true dominator tree and only the exact steps define it).
fn reference_lengauer_tarjan(g: &Graph, root: u32) -> Dominators {
    let n = g.first_edge.len() - 1;
    let len = n + 1;
    let mut parent = vec![0u32; len];
    let mut ancestor = vec![0u32; len];
    let mut vertex = vec![0u32; len];
    let mut label = vec![0u32; len];
    let mut semi = vec![0u32; len];
    let mut cursor = vec![0u32; len];
    let mut count = 0u32;
    let mut dfs = |start: u32,
                   parent: &mut Vec<u32>,
                   semi: &mut Vec<u32>,
                   vertex: &mut Vec<u32>,
                   label: &mut Vec<u32>,
                   count: &mut u32| {
        cursor[start as usize] = g.first_edge[start as usize - 1];
        let mut v = start;
        while v != 0 {
            if semi[v as usize] == 0 {
                *count += 1;
                semi[v as usize] = *count;
                vertex[*count as usize] = v;
                label[v as usize] = v;
            }
            let mut next = parent[v as usize];
            let end = g.first_edge[v as usize];
            while cursor[v as usize] < end {
                let edge = cursor[v as usize];
                cursor[v as usize] += 1;
                if !g.essential.get(edge as usize) {
                    continue;
                }
                let w = g.edge_to[edge as usize] + 1;
                if semi[w as usize] == 0 {
                    parent[w as usize] = v;
                    cursor[w as usize] = g.first_edge[w as usize - 1];
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
            let orphan = g.pred_first[ordinal] == g.pred_first[ordinal + 1];
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
    let mut compress_stack: Vec<u32> = Vec::new();
    let mut eval = |v: u32, ancestor: &mut Vec<u32>, label: &mut Vec<u32>, semi: &Vec<u32>| -> u32 {
        if ancestor[v as usize] == 0 {
            return v;
        }
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
    let mut bucket_head = vec![0u32; len];
    let mut bucket_next = vec![0u32; len];
    for i in (2..=count).rev() {
        let w = vertex[i as usize];
        let ordinal = w as usize - 1;
        let (from, to) = (g.pred_first[ordinal], g.pred_first[ordinal + 1]);
        if from == to {
            semi[w as usize] = semi[r as usize];
        }
        for &pred in &g.preds[from as usize..to as usize] {
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
    Dominators { idom, preorder, unreachable: n as u32 - reached, spare: Vec::new() }
}

/// Reference: v's dominators are the nodes whose removal makes v unreachable; the immediate one is the
/// dominator that all other strict dominators dominate (the deepest one).
fn naive_idom(n: usize, edges: &[(u32, u32)]) -> Vec<Option<u32>> {
    let reach = |removed: Option<u32>| {
        let mut seen = vec![false; n];
        if removed == Some(0) {
            return seen;
        }
        let mut stack = vec![0u32];
        seen[0] = true;
        while let Some(v) = stack.pop() {
            for &(from, to) in edges {
                if from == v && Some(to) != removed && !seen[to as usize] {
                    seen[to as usize] = true;
                    stack.push(to);
                }
            }
        }
        seen
    };
    let all = reach(None);
    let mut dominated_by = vec![Vec::new(); n];
    for d in 0..n as u32 {
        let without = reach(Some(d));
        for v in 0..n {
            if all[v] && !without[v] && v as u32 != d {
                dominated_by[v].push(d);
            }
        }
    }
    (0..n)
        .map(|v| {
            if !all[v] || v == 0 {
                return None;
            }
            dominated_by[v]
                .iter()
                .copied()
                .find(|&d| dominated_by[v].iter().all(|&other| other == d || dominated_by[d as usize].contains(&other)))
        })
        .collect()
}

#[test]
fn chain_and_diamond() {
    // 0 -> 1 -> 2, 0 -> 3 -> 4, 1 -> 4 : 4 is dominated by the root only.
    let g = Graph::new(5, &[(0, 1), (1, 2), (0, 3), (3, 4), (1, 4)]);
    let d = g.dominators();
    assert_eq!(d.idom, vec![0, 0, 1, 0, 0]);
    assert_eq!(d.unreachable, 0);
}

#[test]
fn textbook_irreducible_graph() {
    // The classic irreducible loop: 0 -> 1, 0 -> 2, 1 <-> 2. Neither of 1, 2 dominates the other.
    let g = Graph::new(3, &[(0, 1), (0, 2), (1, 2), (2, 1)]);
    assert_eq!(g.dominators().idom, vec![0, 0, 0]);
    // Lengauer and Tarjan's own example flowgraph (R=0, A..L = 1..12).
    let (r, a, b, c, d, e, f, g_, h, i, j, k, l) = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    let edges = [
        (r, a),
        (r, b),
        (r, c),
        (a, d),
        (b, a),
        (b, d),
        (b, e),
        (c, f),
        (c, g_),
        (d, l),
        (e, h),
        (f, i),
        (g_, i),
        (g_, j),
        (h, e),
        (h, k),
        (i, k),
        (j, i),
        (k, i),
        (k, r),
        (l, h),
    ];
    let g = Graph::new(13, &edges);
    let expected = naive_idom(13, &edges);
    let got = g.dominators().idom;
    for v in 1..13 {
        assert_eq!(Some(got[v]), expected[v], "node {v}");
    }
    let at = |v: u32| got[v as usize];
    // Known answers from the paper: idom(I) = R, idom(K) = R, idom(H) = R, idom(J) = G, idom(G) = C, idom(L) = D.
    assert_eq!(at(i), r);
    assert_eq!(at(k), r);
    assert_eq!(at(j), g_);
    assert_eq!(at(g_), c);
    assert_eq!(at(l), d);
}

#[test]
fn self_loops_are_ignored() {
    let g = Graph::new(3, &[(0, 1), (1, 1), (1, 2), (2, 2)]);
    assert_eq!(g.dominators().idom, vec![0, 0, 1]);
}

#[test]
fn unreachable_nodes_hang_under_the_root() {
    // 3 has no retainers at all; 4 is held only weakly; 5 <-> 6 is an unreachable clique; 7 is held by 6.
    let edges = [(0, 1), (1, 2), (1, 4), (5, 6), (6, 5), (6, 7)];
    let g = Graph::with_weak(8, &edges, &[2]);
    let d = g.dominators();
    assert_eq!(d.unreachable, 5);
    assert_eq!(d.idom[3], 0);
    assert_eq!(d.idom[4], 0);
    assert_eq!(d.idom[5], 0);
    assert_eq!(d.idom[6], 0);
    assert_eq!(d.preorder.len(), 8, "every node is numbered");
    let sizes = vec![0, 10, 20, 30, 40, 50, 60, 70];
    let retained = retained_sizes(&d.idom, &d.preorder, &CompactSizes::from_sizes(&sizes), Vec::new());
    assert_eq!(retained.get(0), sizes.iter().sum::<u64>(), "the root retains everything");
    assert_eq!(retained.get(1), 30);
}

#[test]
fn orphans_explored_from_the_root_dominate_their_subtrees() {
    // 3 is an orphan (no retainers) that alone holds 4 and 5; 5 is also held weakly by the root side.
    let edges = [(0, 1), (3, 4), (4, 5), (1, 5)];
    let g = Graph::with_weak(6, &edges, &[3]);
    let d = g.dominators();
    assert_eq!(d.idom[3], 0);
    assert_eq!(d.idom[4], 3);
    assert_eq!(d.idom[5], 4);
}

#[test]
fn deep_chains_do_not_overflow_the_stack() {
    let n = 200_000;
    let edges: Vec<(u32, u32)> = (0..n as u32 - 1).map(|i| (i, i + 1)).collect();
    let g = Graph::new(n, &edges);
    let d = g.dominators();
    assert!(d.idom.iter().enumerate().skip(1).all(|(i, &p)| p as usize == i - 1));
    let retained = retained_sizes(&d.idom, &d.preorder, &CompactSizes::from_sizes(&vec![1; n]), Vec::new());
    assert_eq!(retained.get(0), n as u64);
    assert_eq!(retained.get((n - 1) as NodeIndex), 1);
}

#[test]
fn dominator_tree_lists_children() {
    let g = Graph::new(5, &[(0, 1), (1, 2), (0, 3), (3, 4), (1, 4)]);
    let d = g.dominators();
    let tree = DominatorTree::build(&d.idom, 0);
    // In node order, which is what ties between equal retained sizes fall back to.
    assert_eq!(tree.children(0), &[1, 3, 4]);
    assert_eq!(tree.children(1), &[2]);
    assert!(tree.children(2).is_empty() && tree.children(4).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn matches_naive_dominators_on_random_graphs(
        n in 2usize..24,
        raw_edges in proptest::collection::vec((0u32..24, 0u32..24), 0..80),
    ) {
        let edges: Vec<(u32, u32)> = raw_edges
            .into_iter()
            .map(|(a, b)| (a % n as u32, b % n as u32))
            .collect();
        let g = Graph::new(n, &edges);
        let d = g.dominators();
        // DevTools semantics: a node with no retainers at all hangs off the root, and what it holds is
        // explored from there. Model that as extra root edges; cliques that stay unreachable are not compared.
        let mut augmented = edges.clone();
        for v in 1..n as u32 {
            if !edges.iter().any(|&(from, to)| to == v && from != v) {
                augmented.push((0, v));
            }
        }
        let expected = naive_idom(n, &augmented);
        for v in 1..n {
            if let Some(idom) = expected[v] {
                prop_assert_eq!(d.idom[v], idom, "node {}", v);
            }
        }
        // Retained sizes: each node's retained size is itself plus its dominator-tree children.
        let sizes: Vec<u64> = (0..n as u64).map(|i| i * 7 + 1).collect();
        // Made in spare memory holding other values (as the analysis does with the pass's arrays), or fresh.
        let spare = |fill: u32| if n % 2 == 0 { vec![fill; n + 1] } else { Vec::new() };
        let retained = retained_sizes(&d.idom, &d.preorder, &CompactSizes::from_sizes(&sizes), spare(u32::MAX));
        prop_assert_eq!(retained.get(0), sizes.iter().sum::<u64>());
        let tree = DominatorTree::build_in(&d.idom, 0, spare(7), spare(9));
        let mut listed = 0;
        for v in 0..n {
            let children = tree.children(v as u32);
            prop_assert!(children.windows(2).all(|w| w[0] < w[1]), "children of {} in node order", v);
            prop_assert!(children.iter().all(|&c| c != 0 && d.idom[c as usize] == v as u32));
            listed += children.len();
            let held: u64 = children.iter().map(|&c| retained.get(c)).sum();
            prop_assert_eq!(retained.get(v as NodeIndex), sizes[v] + held);
        }
        prop_assert_eq!(listed, n - 1, "every node but the root is listed once");
    }

    #[test]
    fn same_steps_as_the_vertex_id_implementation(
        n in 1usize..40,
        raw_edges in proptest::collection::vec((0u32..40, 0u32..40, 0u8..10), 0..120),
        root in 0u32..40,
    ) {
        // Sparse random graphs with weak edges and several roots: orphans, cliques and self loops all occur.
        let root = root % n as u32;
        let edges: Vec<(u32, u32)> = raw_edges.iter().map(|&(a, b, _)| (a % n as u32, b % n as u32)).collect();
        let weak: Vec<usize> = raw_edges.iter().enumerate().filter(|(_, e)| e.2 == 0).map(|(i, _)| i).collect();
        let g = Graph::with_weak(n, &edges, &weak);
        let got = g.dominators_from(root);
        let expected = reference_lengauer_tarjan(&g, root);
        let two_threads = g.dominators_with_two_threads(root);
        prop_assert_eq!(&two_threads.idom, &expected.idom);
        prop_assert_eq!(&two_threads.preorder, &expected.preorder);
        prop_assert_eq!(got.idom, expected.idom);
        prop_assert_eq!(got.preorder, expected.preorder);
        prop_assert_eq!(got.unreachable, expected.unreachable);
    }
}
