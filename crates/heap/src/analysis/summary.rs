//! DevTools' Summary view: objects grouped by class (and by constructor location for objects), with count,
//! shallow size, retained size counting only the topmost object of a class on each dominator path, and the
//! smallest distance.

use super::dominators::DominatorTree;
use super::names::{ClassId, ClassNames};
use crate::sizes::CompactSizes;
use crate::snapshot::{HeapSnapshot, NodeIndex, NodeType, SourceLocation};
use rustc_hash::FxHashMap as HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClassKey {
    Class(ClassId),
    /// Objects are also split by where their constructor is, so two same-named classes are two rows.
    Located(ClassId, u32, u32, u32),
}

#[derive(Debug, Clone)]
pub struct ClassAggregate {
    pub key: ClassKey,
    pub class: ClassId,
    pub count: u64,
    pub shallow: u64,
    pub retained: u64,
    pub min_distance: u32,
}

impl ClassAggregate {
    pub fn location(&self) -> Option<SourceLocation> {
        match self.key {
            ClassKey::Located(_, script_id, line, column) => Some(SourceLocation { script_id, line, column }),
            ClassKey::Class(_) => None,
        }
    }
}

pub fn class_key(snapshot: &HeapSnapshot, names: &ClassNames, node: NodeIndex) -> ClassKey {
    let class = names.class_of(node);
    if snapshot.node_type(node) != NodeType::Object {
        return ClassKey::Class(class);
    }
    match snapshot.location(node) {
        Some(l) => ClassKey::Located(class, l.script_id, l.line, l.column),
        None => ClassKey::Class(class),
    }
}

/// Builds the rows, in the order their first node comes. Nodes with a shallow size of 0 are left out, as in
/// DevTools. With `parallel`, each half of the nodes is grouped on its own thread and the second half's rows are
/// merged into the first's.
pub fn aggregate(
    snapshot: &HeapSnapshot,
    names: &ClassNames,
    sizes: (&CompactSizes, &CompactSizes),
    distance: &[u32],
    tree: &DominatorTree,
    parallel: bool,
) -> Vec<ClassAggregate> {
    let (shallow, retained) = sizes;
    let n = snapshot.node_count();
    // Every slot is written by the thread of its half (fresh zeroed pages are faulted in there, not here).
    let mut row_of = vec![0u32; n];
    let middle = if parallel { n / 2 } else { n };
    let (first_rows, second_rows) = row_of.split_at_mut(middle);
    let group = |nodes: std::ops::Range<usize>, row_of: &mut [u32]| {
        let mut rows = Rows::new(names.class_count_upper_bound());
        rows.add(snapshot, names, shallow, distance, nodes, row_of);
        rows
    };
    let (second, mut rows) =
        crate::threads::join(parallel, || group(middle..n, second_rows), || group(0..middle, first_rows));
    if middle < n {
        let renumbered = rows.absorb(second);
        for row in &mut row_of[middle..] {
            if *row != NO_GROUP {
                *row = renumbered[*row as usize];
            }
        }
    }
    let mut rows = rows.rows;
    let sums = topmost_retained(snapshot.root(), tree, retained, &row_of, rows.len(), parallel);
    for (row, sum) in rows.iter_mut().zip(sums) {
        row.retained = sum;
    }
    rows
}

/// Summary rows under construction: plain class keys are found by class id in a table, located ones in a map.
struct Rows {
    rows: Vec<ClassAggregate>,
    class_row: Vec<u32>,
    index: HashMap<ClassKey, u32>,
}

impl Rows {
    fn new(classes: usize) -> Self {
        Rows { rows: Vec::new(), class_row: vec![u32::MAX; classes], index: HashMap::default() }
    }

    /// The row of `key`, made if new.
    fn row(&mut self, key: ClassKey, class: ClassId) -> u32 {
        let rows = &mut self.rows;
        let mut new_row = || {
            rows.push(ClassAggregate { key, class, count: 0, shallow: 0, retained: 0, min_distance: u32::MAX });
            (rows.len() - 1) as u32
        };
        match key {
            ClassKey::Class(class) if (class as usize) < self.class_row.len() => {
                let row = &mut self.class_row[class as usize];
                if *row == u32::MAX {
                    *row = new_row();
                }
                *row
            }
            _ => *self.index.entry(key).or_insert_with(new_row),
        }
    }

    /// Counts `nodes` into their rows; `row_of[i]` gets the row of node `nodes.start + i` ([`NO_GROUP`]: none).
    fn add(
        &mut self,
        snapshot: &HeapSnapshot,
        names: &ClassNames,
        shallow: &CompactSizes,
        distance: &[u32],
        nodes: std::ops::Range<usize>,
        row_of: &mut [u32],
    ) {
        // Locations are sorted by node, so walk them alongside the nodes instead of searching.
        let first_location = snapshot.locations.partition_point(|(at, _)| (*at as usize) < nodes.start);
        let mut locations = snapshot.locations[first_location..].iter().peekable();
        for (node, slot) in (nodes.start as NodeIndex..nodes.end as NodeIndex).zip(row_of) {
            while locations.peek().is_some_and(|(at, _)| *at < node) {
                locations.next();
            }
            let size = shallow.get(node);
            if size == 0 {
                *slot = NO_GROUP;
                continue;
            }
            let class = names.class_of(node);
            let key = match locations.peek() {
                Some((at, l)) if *at == node && snapshot.node_type(node) == NodeType::Object => {
                    ClassKey::Located(class, l.script_id, l.line, l.column)
                }
                _ => ClassKey::Class(class),
            };
            let row = self.row(key, class);
            let aggregate = &mut self.rows[row as usize];
            aggregate.count += 1;
            aggregate.shallow += size;
            aggregate.min_distance = aggregate.min_distance.min(distance[node as usize]);
            *slot = row;
        }
    }

    /// Adds the rows of a later range of nodes: rows of keys seen here take their counts, the others come after
    /// these in their order. Returns each of `later`'s rows' new number.
    fn absorb(&mut self, later: Rows) -> Vec<u32> {
        later
            .rows
            .into_iter()
            .map(|other| {
                let row = self.row(other.key, other.class);
                let aggregate = &mut self.rows[row as usize];
                aggregate.count += other.count;
                aggregate.shallow += other.shallow;
                aggregate.min_distance = aggregate.min_distance.min(other.min_distance);
                row
            })
            .collect()
    }
}

/// Retained size per group, counting only the topmost member of a group on each dominator path (DevTools'
/// rule for a class's retained size): a node adds its retained size only when no dominator of it is in the
/// same group. `group_of[node]` is the node's group, or [`NO_GROUP`] for none.
///
/// With `parallel`, the tree is cut into subtrees of at most 1/64 of the root's retained size (the nodes above
/// them are counted first, and each subtree carries the groups of its dominators), which two threads take
/// in turn, a run of siblings at a time.
pub fn topmost_retained(
    root: NodeIndex,
    tree: &DominatorTree,
    retained: &CompactSizes,
    group_of: &[u32],
    groups: usize,
    parallel: bool,
) -> Vec<u64> {
    let mut sums = vec![0u64; groups];
    // Runs of siblings (a range of `tree.children`) whose subtrees are walked whole, each with the index of its
    // dominators' groups in `paths`. A heap's root has hundreds of thousands of small children: one entry per
    // child, sorted, took 5 ms at 324 MiB before the walk could start.
    let mut runs: Vec<(u32, u32, u32)> = Vec::new();
    let mut paths: Vec<Vec<u32>> = vec![Vec::new()];
    let largest = if parallel { retained.get(root) / 64 } else { u64::MAX };
    let mut split = vec![(root, 0u32)];
    while let Some((node, path)) = split.pop() {
        // Counted here, and its children are subtrees of their own (or split further).
        let group = group_of[node as usize];
        let mut child_path = path;
        if group != NO_GROUP && !paths[path as usize].contains(&group) {
            sums[group as usize] += retained.get(node);
            let mut groups_above = paths[path as usize].clone();
            groups_above.push(group);
            paths.push(groups_above);
            child_path = (paths.len() - 1) as u32;
        }
        let (first, end) = (tree.first[node as usize], tree.first[node as usize + 1]);
        let (mut run_start, mut run_size) = (first, 0u64);
        for at in first..end {
            let child = tree.children[at as usize];
            let size = retained.get(child);
            if size > largest {
                if run_start < at {
                    runs.push((run_start, at, child_path));
                }
                (run_start, run_size) = (at + 1, 0);
                split.push((child, child_path));
                continue;
            }
            run_size += size;
            if run_size > largest || at + 1 - run_start == RUN_SIBLINGS {
                runs.push((run_start, at + 1, child_path));
                (run_start, run_size) = (at + 1, 0);
            }
        }
        if run_start < end {
            runs.push((run_start, end, child_path));
        }
    }
    runs.sort_unstable_by_key(|&(.., path)| path);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let walker = || {
        let mut walk = SubtreeWalk::new(groups);
        let mut current: Option<u32> = None;
        while let Some(&(from, to, path)) = runs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            if current != Some(path) {
                for (ids, on) in [(current, false), (Some(path), true)] {
                    for &g in ids.map_or(&[][..], |p| &paths[p as usize]) {
                        walk.active[g as usize] = on;
                    }
                }
                current = Some(path);
            }
            for &node in &tree.children[from as usize..to as usize] {
                walk.run(node, tree, retained, group_of);
            }
        }
        walk.sums
    };
    let (a, b) = crate::threads::join(parallel, walker, walker);
    for (sum, (x, y)) in sums.iter_mut().zip(a.into_iter().zip(b)) {
        *sum += x + y;
    }
    sums
}

/// The most siblings walked as one unit of [`topmost_retained`]'s work (a few in tests, so that the property
/// test's small trees are cut by count too).
const RUN_SIBLINGS: u32 = if cfg!(test) { 3 } else { 4096 };

/// One thread's walks of subtrees of the dominator tree, for [`topmost_retained`].
struct SubtreeWalk {
    sums: Vec<u64>,
    /// Groups with a member among the dominators of the node at hand.
    active: Vec<bool>,
    /// The nodes entered and not yet left, deepest last.
    levels: Vec<Level>,
}

/// A node of the walk's current path: its children not yet visited, and the group it made active.
struct Level {
    next: u32,
    end: u32,
    group: u32,
}

impl SubtreeWalk {
    fn new(groups: usize) -> Self {
        SubtreeWalk { sums: vec![0u64; groups], active: vec![false; groups], levels: Vec::new() }
    }

    /// Walks the subtree under `start` through the tree's child lists in place: copying each node's children onto a
    /// stack instead cost a `memcpy` call per node, 20 ms of the 40 the walk took at 324 MiB.
    fn run(&mut self, start: NodeIndex, tree: &DominatorTree, retained: &CompactSizes, group_of: &[u32]) {
        self.enter(start, tree, retained, group_of);
        while let Some(level) = self.levels.last_mut() {
            if level.next < level.end {
                let child = tree.children[level.next as usize];
                if let Some(&ahead) = tree.children.get(level.next as usize + SIBLINGS_AHEAD) {
                    super::prefetch(group_of, ahead as usize);
                    super::prefetch(&tree.first, ahead as usize);
                }
                level.next += 1;
                self.enter(child, tree, retained, group_of);
            } else {
                let group = level.group;
                self.levels.pop();
                if group != NO_GROUP {
                    self.active[group as usize] = false;
                }
            }
        }
    }

    /// Counts `node` if no dominator of it is in its group, and goes down to its children if it has any.
    #[inline(always)]
    fn enter(&mut self, node: NodeIndex, tree: &DominatorTree, retained: &CompactSizes, group_of: &[u32]) {
        let group = group_of[node as usize];
        let (next, end) = (tree.first[node as usize], tree.first[node as usize + 1]);
        let mut entered = NO_GROUP;
        if group != NO_GROUP && !self.active[group as usize] {
            self.sums[group as usize] += retained.get(node);
            if next < end {
                self.active[group as usize] = true;
                entered = group;
            }
        }
        if next < end {
            self.levels.push(Level { next, end, group: entered });
        }
    }
}

/// `group_of`'s mark of a node in no group (the Summary's: a node of size 0, in no row).
const NO_GROUP: u32 = u32::MAX;

/// How many siblings ahead the walk asks for a node's group and child-list offsets.
const SIBLINGS_AHEAD: usize = 8;

#[cfg(test)]
mod tests {
    use super::{topmost_retained, DominatorTree};
    use crate::sizes::CompactSizes;

    fn xorshift(mut x: u64) -> u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }

    /// Split into subtrees on two threads or walked whole, the sums are what the rule gives node by node: a
    /// node counts when no dominator of it is in its group.
    #[test]
    fn topmost_retained_follows_the_rule_split_or_not() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for case in 0..60 {
            let n = 2 + (xorshift(seed + case) % 3000) as usize;
            let groups = 1 + (case % 7) as usize;
            let root = (case as usize * 7) % n;
            // Parents come first in a shuffled order (a chain now and then, so that big nodes nest deeply).
            let mut order: Vec<usize> = (0..n).filter(|&v| v != root).collect();
            for i in (1..order.len()).rev() {
                seed = xorshift(seed);
                order.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            order.insert(0, root);
            let mut idom = vec![root as u32; n];
            let mut group_of = vec![u32::MAX; n];
            if case % 3 == 1 {
                group_of[root] = 0;
            }
            let mut sizes = vec![0u64; n];
            for (i, &v) in order.iter().enumerate().skip(1) {
                seed = xorshift(seed);
                let parent = if case % 5 == 0 { i - 1 } else { (seed % i as u64) as usize };
                idom[v] = order[parent] as u32;
                group_of[v] = if seed.is_multiple_of(4) { u32::MAX } else { ((seed >> 8) % groups as u64) as u32 };
                sizes[v] = (seed >> 20) % 1000;
            }
            let mut retained = sizes.clone();
            for &v in order.iter().skip(1).rev() {
                retained[idom[v] as usize] += retained[v];
            }
            let mut expected = vec![0u64; groups];
            if group_of[root] != u32::MAX {
                expected[group_of[root] as usize] += retained[root];
            }
            for v in (0..n).filter(|&v| v != root) {
                let g = group_of[v];
                let mut d = v;
                let mut above = false;
                while d != root {
                    d = idom[d] as usize;
                    above |= group_of[d] == g;
                }
                if g != u32::MAX && !above {
                    expected[g as usize] += retained[v];
                }
            }
            let tree = DominatorTree::build(&idom, root as u32);
            let retained = CompactSizes::from_sizes(&retained);
            for parallel in [false, true] {
                let sums = topmost_retained(root as u32, &tree, &retained, &group_of, groups, parallel);
                assert_eq!(sums, expected, "case {case}, parallel {parallel}");
            }
        }
    }
}
