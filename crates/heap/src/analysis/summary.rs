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

/// Builds the rows. Nodes with a shallow size of 0 are left out, as in DevTools.
pub fn aggregate(
    snapshot: &HeapSnapshot,
    names: &ClassNames,
    shallow: &CompactSizes,
    retained: &CompactSizes,
    distance: &[u32],
    tree: &DominatorTree,
) -> Vec<ClassAggregate> {
    let n = snapshot.node_count();
    // Plain class keys are looked up by class id in a table; only located keys need the map.
    let mut class_row = vec![u32::MAX; names.class_count_upper_bound()];
    let mut index: HashMap<ClassKey, u32> = HashMap::default();
    let mut rows: Vec<ClassAggregate> = Vec::new();
    let mut row_of = vec![u32::MAX; n];
    // Locations are sorted by node, so walk them alongside the nodes instead of searching.
    let mut locations = snapshot.locations.iter().peekable();
    for node in 0..n as NodeIndex {
        while locations.peek().is_some_and(|(at, _)| *at < node) {
            locations.next();
        }
        let size = shallow.get(node);
        if size == 0 {
            continue;
        }
        let class = names.class_of(node);
        let key = match locations.peek() {
            Some((at, l)) if *at == node && snapshot.node_type(node) == NodeType::Object => {
                ClassKey::Located(class, l.script_id, l.line, l.column)
            }
            _ => ClassKey::Class(class),
        };
        let new_row = |rows: &mut Vec<ClassAggregate>| {
            rows.push(ClassAggregate { key, class, count: 0, shallow: 0, retained: 0, min_distance: u32::MAX });
            (rows.len() - 1) as u32
        };
        let row = match key {
            ClassKey::Class(class) => match class_row.get(class as usize) {
                Some(&row) if row != u32::MAX => row,
                Some(_) => {
                    let row = new_row(&mut rows);
                    class_row[class as usize] = row;
                    row
                }
                None => *index.entry(key).or_insert_with(|| new_row(&mut rows)),
            },
            ClassKey::Located(..) => *index.entry(key).or_insert_with(|| new_row(&mut rows)),
        };
        let aggregate = &mut rows[row as usize];
        aggregate.count += 1;
        aggregate.shallow += size;
        aggregate.min_distance = aggregate.min_distance.min(distance[node as usize]);
        row_of[node as usize] = row;
    }
    let sums = topmost_retained(snapshot.root(), tree, retained, &row_of, rows.len());
    for (row, sum) in rows.iter_mut().zip(sums) {
        row.retained = sum;
    }
    rows
}

/// Retained size per group, counting only the topmost member of a group on each dominator path (DevTools'
/// rule for a class's retained size): a node adds its retained size only when no dominator of it is in the
/// same group. `group_of[node]` is the node's group, or `u32::MAX` for none.
pub fn topmost_retained(
    root: NodeIndex,
    tree: &DominatorTree,
    retained: &CompactSizes,
    group_of: &[u32],
    groups: usize,
) -> Vec<u64> {
    // Entries with the top bit set mark leaving a member's subtree (node and group counts stay below 2^31).
    const EXIT: u32 = 1 << 31;
    let mut sums = vec![0u64; groups];
    let mut active = vec![false; groups];
    let mut stack: Vec<u32> = vec![root];
    while let Some(entry) = stack.pop() {
        if entry & EXIT != 0 {
            active[(entry & !EXIT) as usize] = false;
            continue;
        }
        let node = entry;
        let group = group_of[node as usize];
        let children = tree.children(node);
        if group != u32::MAX && !active[group as usize] {
            sums[group as usize] += retained.get(node);
            if !children.is_empty() {
                active[group as usize] = true;
                stack.push(group | EXIT);
            }
        }
        stack.extend_from_slice(children);
    }
    sums
}
