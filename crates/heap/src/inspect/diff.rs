//! DevTools' Comparison view: per class key, the objects only in the target snapshot ("new") and only in the
//! base ("deleted"), matched by node id. Ids are stable across snapshots of one process, so an id present
//! in both is the same object.
//!
//! As in DevTools, the base is classified with the **target's** plain-object interface definitions (so both
//! sides call the same shape `{a, b}`), objects with a shallow size of 0 are left out, and classes without
//! new or deleted objects are dropped. Only class names and shallow sizes are needed, not dominators:
//! [`ClassedSnapshot::light`] computes just those.

use crate::analysis::names::{ClassNames, InterfaceDefinition};
use crate::analysis::{dom_state, roots, shallow};
use crate::sizes::CompactSizes;
use crate::snapshot::{HeapSnapshot, NodeIndex, NodeType};
use std::collections::HashMap;

/// What a diff needs of one snapshot: shallow sizes and class names.
pub struct ClassedSnapshot {
    pub shallow: CompactSizes,
    pub classes: ClassNames,
}

impl ClassedSnapshot {
    /// Shallow sizes (DevTools' reattribution unless `raw_sizes`) and class names, with `definitions` for
    /// plain objects (`None`: infer them from this snapshot).
    pub fn light(
        snapshot: &HeapSnapshot,
        definitions: Option<Vec<InterfaceDefinition>>,
        raw_sizes: bool,
    ) -> ClassedSnapshot {
        let has_user_roots = !roots::user_roots(snapshot).is_empty();
        let shallow = shallow::compact_shallow_sizes(snapshot, has_user_roots, raw_sizes);
        let detached = dom_state::detached_nodes(snapshot);
        let classes = ClassNames::compute(snapshot, &detached, definitions);
        ClassedSnapshot { shallow, classes }
    }
}

/// One object of a class: id, shallow size, node.
#[derive(Debug, Clone, Copy)]
struct Member {
    id: u32,
    size: u64,
    node: NodeIndex,
}

/// The objects of one snapshot by DevTools' public class key (`,Name` or `scriptId,line,col,Name`), sorted
/// by id.
pub struct ClassMembers {
    by_key: HashMap<String, (String, Vec<Member>)>,
}

impl ClassMembers {
    pub fn build(snapshot: &HeapSnapshot, classed: &ClassedSnapshot) -> ClassMembers {
        Self::build_parts(snapshot, &classed.shallow, &classed.classes)
    }

    /// The same from shallow sizes and class names held elsewhere (e.g. a full [`crate::Analysis`]).
    pub fn build_parts(snapshot: &HeapSnapshot, shallow: &CompactSizes, classes: &ClassNames) -> ClassMembers {
        type Internal = (u32, Option<(u32, u32, u32)>);
        let mut groups: HashMap<Internal, Vec<Member>> = HashMap::new();
        for node in 0..snapshot.node_count() as NodeIndex {
            let size = shallow.get(node);
            if size == 0 {
                continue;
            }
            let location = if snapshot.node_type(node) == NodeType::Object {
                snapshot.location(node).map(|l| (l.script_id, l.line, l.column))
            } else {
                None
            };
            groups.entry((classes.class_of(node), location)).or_default().push(Member {
                id: snapshot.node_id(node),
                size,
                node,
            });
        }
        let mut by_key: HashMap<String, (String, Vec<Member>)> = HashMap::new();
        for ((class, location), members) in groups {
            let name = classes.name(snapshot, class).to_string();
            let key = public_key(&name, location);
            by_key.entry(key).or_insert_with(|| (name, Vec::new())).1.extend(members);
        }
        for (_, members) in by_key.values_mut() {
            members.sort_by_key(|m| m.id);
        }
        ClassMembers { by_key }
    }
}

/// DevTools' public class key.
pub fn public_key(name: &str, location: Option<(u32, u32, u32)>) -> String {
    match location {
        Some((script, line, column)) => format!("{script},{line},{column},{name}"),
        None => format!(",{name}"),
    }
}

/// One row of the Comparison view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClassDiff {
    pub key: String,
    pub class: String,
    pub added_count: u64,
    pub removed_count: u64,
    pub count_delta: i64,
    pub added_size: u64,
    pub removed_size: u64,
    pub size_delta: i64,
    /// New objects (nodes of the target), in id order.
    #[serde(skip)]
    pub added: Vec<NodeIndex>,
    /// Ids of deleted objects (of the base), in id order.
    #[serde(skip)]
    pub removed_ids: Vec<u32>,
}

/// The whole comparison, rows sorted by allocated size (DevTools' default sort), then key.
#[derive(Debug, Clone)]
pub struct SnapshotDiff {
    pub classes: Vec<ClassDiff>,
}

/// Merges both sides' id lists per class key.
pub fn diff(base: &ClassMembers, target: &ClassMembers) -> SnapshotDiff {
    let empty: Vec<Member> = Vec::new();
    let mut classes = Vec::new();
    let mut keys: Vec<&String> = base.by_key.keys().chain(target.by_key.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (base_name, base_members) = base.by_key.get(key).map(|(n, m)| (n.as_str(), m)).unwrap_or(("", &empty));
        let (target_name, target_members) =
            target.by_key.get(key).map(|(n, m)| (n.as_str(), m)).unwrap_or(("", &empty));
        let mut row = ClassDiff {
            key: key.clone(),
            class: if target.by_key.contains_key(key) { target_name } else { base_name }.to_string(),
            added_count: 0,
            removed_count: 0,
            count_delta: 0,
            added_size: 0,
            removed_size: 0,
            size_delta: 0,
            added: Vec::new(),
            removed_ids: Vec::new(),
        };
        let (mut i, mut j) = (0, 0);
        while i < base_members.len() || j < target_members.len() {
            let a = base_members.get(i);
            let b = target_members.get(j);
            match (a, b) {
                (Some(a), Some(b)) if a.id == b.id => {
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a.id > b.id => {
                    row.added.push(b.node);
                    row.added_size += b.size;
                    j += 1;
                }
                (None, Some(b)) => {
                    row.added.push(b.node);
                    row.added_size += b.size;
                    j += 1;
                }
                (Some(a), _) => {
                    row.removed_ids.push(a.id);
                    row.removed_size += a.size;
                    i += 1;
                }
                (None, None) => break,
            }
        }
        row.added_count = row.added.len() as u64;
        row.removed_count = row.removed_ids.len() as u64;
        if row.added_count == 0 && row.removed_count == 0 {
            continue;
        }
        row.count_delta = row.added_count as i64 - row.removed_count as i64;
        row.size_delta = row.added_size as i64 - row.removed_size as i64;
        classes.push(row);
    }
    classes.sort_by(|a, b| b.added_size.cmp(&a.added_size).then_with(|| a.key.cmp(&b.key)));
    SnapshotDiff { classes }
}

/// How much two snapshots share: ids of non-synthetic objects present in both, and how many of those name
/// a different object (type or name differ). Snapshots of one process share most ids, with the same objects
/// behind them.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct IdOverlap {
    pub base_objects: u64,
    pub shared: u64,
    pub mismatched: u64,
}

impl IdOverlap {
    /// True when the two snapshots cannot come from one process: no shared ids beyond the fixed roots, or
    /// most shared ids name different objects.
    pub fn different_processes(&self) -> bool {
        self.shared == 0 || self.mismatched * 2 > self.shared
    }
}

pub fn id_overlap(base: &HeapSnapshot, target: &HeapSnapshot) -> IdOverlap {
    let mut target_ids: Vec<(u32, NodeIndex)> = (0..target.node_count() as NodeIndex)
        .filter(|&n| target.node_type(n) != NodeType::Synthetic)
        .map(|n| (target.node_id(n), n))
        .collect();
    target_ids.sort_unstable();
    let mut overlap = IdOverlap { base_objects: 0, shared: 0, mismatched: 0 };
    for node in 0..base.node_count() as NodeIndex {
        if base.node_type(node) == NodeType::Synthetic {
            continue;
        }
        overlap.base_objects += 1;
        let id = base.node_id(node);
        if let Ok(p) = target_ids.binary_search_by_key(&id, |&(i, _)| i) {
            overlap.shared += 1;
            let other = target_ids[p].1;
            if target.node_type(other) != base.node_type(node) || target.node_name(other) != base.node_name(node) {
                overlap.mismatched += 1;
            }
        }
    }
    overlap
}
