//! Which nodes a set of seeds reaches through the edges a rule follows, on two threads: each explores from its own
//! queue, marks nodes with an atomic or (so each node is queued once, by whichever thread gets to it first), and
//! hands half of its queue over when the other has run dry.

use super::bits::BitVec;
use super::prefetch;
use crate::snapshot::{EdgeIndex, HeapSnapshot, NodeIndex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};

/// A thread with more than this many nodes queued gives half of them to the other when it has none.
const SHARE_ABOVE: usize = if cfg!(test) { 8 } else { 1 << 12 };
/// How many queued nodes ahead the first edges of a node are asked for...
const AHEAD: usize = 16;
/// ...and its first-edge offset.
const OFFSETS_AHEAD: usize = 48;

/// The nodes reached from `seeds` through the edges `follow` accepts (the seeds included).
pub fn reachable(
    snapshot: &HeapSnapshot,
    seeds: impl IntoIterator<Item = NodeIndex>,
    follow: impl Fn(EdgeIndex) -> bool + Sync,
    parallel: bool,
) -> BitVec {
    let n = snapshot.node_count();
    let marks = Marks { words: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect() };
    let first: Vec<NodeIndex> = seeds.into_iter().filter(|&seed| marks.mark(seed)).collect();
    let work = Work { batches: Mutex::new((Vec::new(), 0)), wake: Condvar::new(), hungry: AtomicBool::new(false) };
    let explorer = Explorer { snapshot, marks: &marks, follow: &follow, work: &work, threads: 1 + parallel as usize };
    if parallel {
        crate::threads::join(true, || explorer.explore(Vec::new()), || explorer.explore(first));
    } else {
        explorer.explore(first);
    }
    BitVec::from_words(marks.words.into_iter().map(AtomicU64::into_inner).collect(), n)
}

struct Marks {
    words: Vec<AtomicU64>,
}

impl Marks {
    #[inline]
    fn is_marked(&self, node: NodeIndex) -> bool {
        self.words[node as usize >> 6].load(Relaxed) & (1 << (node & 63)) != 0
    }

    /// Marks `node`; true when this call did (it was not marked before).
    #[inline]
    fn mark(&self, node: NodeIndex) -> bool {
        let bit = 1 << (node & 63);
        self.words[node as usize >> 6].fetch_or(bit, Relaxed) & bit == 0
    }
}

/// Queued nodes handed between the threads, and how many threads wait for some.
struct Work {
    batches: Mutex<(Vec<Vec<NodeIndex>>, usize)>,
    wake: Condvar,
    /// A thread waits for nodes (read without the lock, on every node: only a hint).
    hungry: AtomicBool,
}

impl Work {
    fn give(&self, batch: Vec<NodeIndex>) {
        let mut guard = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.push(batch);
        self.hungry.store(false, Relaxed);
        self.wake.notify_one();
    }

    /// Nodes to explore, or `None` once every thread has run dry (then there are none left anywhere).
    fn take(&self, threads: usize) -> Option<Vec<NodeIndex>> {
        let mut guard = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        guard.1 += 1;
        loop {
            if let Some(batch) = guard.0.pop() {
                guard.1 -= 1;
                return Some(batch);
            }
            if guard.1 == threads {
                self.wake.notify_all();
                return None;
            }
            self.hungry.store(true, Relaxed);
            guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct Explorer<'a, F> {
    snapshot: &'a HeapSnapshot,
    marks: &'a Marks,
    follow: &'a F,
    work: &'a Work,
    threads: usize,
}

impl<F: Fn(EdgeIndex) -> bool> Explorer<'_, F> {
    /// First in, first out, so that a queued node's edges can be asked for well before its turn.
    fn explore(&self, mut queue: Vec<NodeIndex>) {
        let snapshot = self.snapshot;
        let mut next = 0;
        loop {
            super::drop_explored(&mut queue, &mut next);
            let Some(&node) = queue.get(next) else {
                match self.work.take(self.threads) {
                    Some(batch) => (queue, next) = (batch, 0),
                    None => return,
                }
                continue;
            };
            next += 1;
            super::prefetch_queued(snapshot, &queue, next, AHEAD, OFFSETS_AHEAD);
            for edge in snapshot.edges(node) {
                let child = snapshot.edge_target(edge);
                if self.marks.is_marked(child) || !(self.follow)(edge) {
                    continue;
                }
                if self.marks.mark(child) {
                    prefetch(&snapshot.first_edge, child as usize);
                    queue.push(child);
                }
            }
            if queue.len() - next > SHARE_ABOVE && self.work.hungry.load(Relaxed) {
                let half = queue.split_off(next + (queue.len() - next) / 2);
                self.work.give(half);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::EdgeType;

    /// A snapshot of `nodes` nodes, a fifth of its edges weak.
    fn random_snapshot(nodes: usize, mut seed: u64) -> HeapSnapshot {
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        let (mut node_text, mut edge_text, mut edges) = (Vec::new(), Vec::new(), 0);
        for n in 0..nodes {
            // A binary tree (each node reached one way only, so a node lost on the way shows; its wide levels make
            // the threads hand work over), with now and then an edge anywhere.
            let mut targets: Vec<u64> =
                [2 * n + 1, 2 * n + 2].into_iter().filter(|&t| t < nodes).map(|t| t as u64).collect();
            if next(4) == 0 {
                targets.push(next(nodes as u64));
            }
            edges += targets.len();
            node_text.push(format!("3,0,{},8,{}", 2 * n + 1, targets.len()));
            for t in targets {
                let kind = if next(5) == 0 { 6 } else { 2 };
                edge_text.push(format!("{kind},0,{}", t * 5));
            }
        }
        let text = format!(
            r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count"],"node_types":[["hidden","array","string","object"],"string","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"]}},"node_count":{nodes},"edge_count":{edges}}},"nodes":[{}],"edges":[{}],"strings":["x"]}}"#,
            node_text.join(","),
            edge_text.join(",")
        );
        crate::parse_bytes(text.as_bytes()).expect("valid")
    }

    #[test]
    fn two_threads_reach_what_one_search_does() {
        for (case, nodes) in [1usize, 2, 10, 100, 1000, 5000, 300_000].into_iter().enumerate() {
            let snapshot = random_snapshot(nodes, 0x9E37_79B9 + case as u64);
            let follow = |edge| snapshot.edge_type(edge) != EdgeType::Weak;
            let seeds: Vec<NodeIndex> = (0..nodes as NodeIndex).step_by(997).collect();
            assert!(seeds.contains(&0));
            let mut expected = BitVec::new(nodes);
            let mut stack = seeds.clone();
            while let Some(node) = stack.pop() {
                if expected.get(node as usize) {
                    continue;
                }
                expected.set(node as usize);
                stack.extend(snapshot.edges(node).filter(|&e| follow(e)).map(|e| snapshot.edge_target(e)));
            }
            for parallel in [false, true, true, true] {
                let got = reachable(&snapshot, seeds.iter().copied(), follow, parallel);
                assert!(got == expected, "{nodes} nodes, parallel {parallel}");
            }
        }
    }
}
