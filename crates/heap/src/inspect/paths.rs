//! Retaining paths, root first: the DevTools chain of one object, further shortest paths, and the objects of
//! a class grouped by identical path.

use super::retainers::{Chain, ChainStop, Retainer, RetainerView};
use crate::analysis::distances::{BASE_SYSTEM_DISTANCE, BASE_UNREACHABLE_DISTANCE};
use crate::analysis::Analysis;
use crate::snapshot::{EdgeIndex, EdgeType, HeapSnapshot, NodeIndex};
use std::collections::{HashMap, HashSet};

/// One node on a root-first path, with the edge that leads into it from the previous step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathStep {
    /// `None` for the first node of the path.
    pub edge_in: Option<EdgeIndex>,
    pub node: NodeIndex,
    /// How many consecutive identical steps (same class, same edge ignoring indices) this one stands for;
    /// 1 unless a group path folded a run such as `.next` × 500.
    pub repeat: u32,
}

/// A root-first path and why it starts where it does.
#[derive(Debug, Clone)]
pub struct RetainingPath {
    pub steps: Vec<PathStep>,
    /// Why the walk upwards stopped at `steps[0]`.
    pub stop: ChainStop,
}

impl RetainingPath {
    /// The DevTools chain, root first.
    pub fn from_chain(chain: &Chain) -> RetainingPath {
        let mut steps = Vec::with_capacity(chain.steps.len() + 1);
        let mut edge_in = None;
        for retainer in chain.steps.iter().rev() {
            steps.push(PathStep { edge_in, node: retainer.node, repeat: 1 });
            edge_in = Some(retainer.edge);
        }
        steps.push(PathStep { edge_in, node: chain.object, repeat: 1 });
        RetainingPath { steps, stop: chain.stop }
    }

    /// The edges of the path in DevTools notation, e.g. `[7]{43}.unit{context}->bus._events.message[1136]`.
    pub fn edge_text(&self, snapshot: &HeapSnapshot) -> String {
        let mut out = String::new();
        for step in &self.steps {
            if let Some(edge) = step.edge_in {
                out.push_str(&snapshot.edge_label(edge));
                if step.repeat > 1 {
                    out.push_str(&format!("×{}", step.repeat));
                }
            }
        }
        out
    }

    /// The edge names along the path (property, variable and internal names; indices as numbers).
    pub fn edge_names(&self, snapshot: &HeapSnapshot) -> Vec<String> {
        self.steps.iter().filter_map(|s| s.edge_in).map(|e| snapshot.edge_name(e).into_owned()).collect()
    }
}

/// Up to `k` retaining paths of `object`, at most `max_depth` retainers long. The first is the chain DevTools
/// expands; the others follow the pane's order too, but take later rows where the earlier paths went, only
/// ever stepping to a retainer closer to the roots. Retainers reached only through GC roots (distance ≥
/// 100000000) are used only where a node has no other.
pub fn retaining_paths(view: &RetainerView, object: NodeIndex, k: usize, max_depth: usize) -> Vec<RetainingPath> {
    let first = RetainingPath::from_chain(&view.chain(object, max_depth));
    let mut paths = vec![first];
    if k <= 1 {
        return paths;
    }
    let mut seen: HashSet<Vec<(NodeIndex, Option<EdgeIndex>)>> = HashSet::new();
    seen.insert(path_key(&paths[0]));
    let mut rows_cache: HashMap<NodeIndex, Vec<Retainer>> = HashMap::new();
    let mut budget = 20_000usize;
    // Depth-first over candidate rows; `stack` holds (object-side-first retainers so far, next row index).
    let mut trail: Vec<Retainer> = Vec::new();
    let mut cursor: Vec<usize> = vec![0];
    while let Some(&position) = cursor.last() {
        if paths.len() >= k || budget == 0 {
            break;
        }
        budget -= 1;
        let current = trail.last().map_or(object, |r| r.node);
        let rows = rows_cache.entry(current).or_insert_with(|| candidate_rows(view, current, trail.is_empty()));
        let done_here = trail.len() >= max_depth
            || trail.last().is_some_and(|r| r.distance <= 1 || r.distance >= BASE_UNREACHABLE_DISTANCE)
            || rows.is_empty();
        if done_here {
            if position == 0 && !trail.is_empty() {
                // A complete path: record it once.
                let stop = if rows.is_empty() {
                    ChainStop::NoRetainers
                } else if trail.len() >= max_depth {
                    ChainStop::MaxDepth
                } else if trail.last().is_some_and(|r| r.distance <= 1) {
                    ChainStop::UserRoot
                } else {
                    ChainStop::Unreachable
                };
                let path = RetainingPath::from_chain(&Chain { object, steps: trail.clone(), stop });
                if seen.insert(path_key(&path)) {
                    paths.push(path);
                }
            }
            cursor.pop();
            trail.pop();
            if let Some(last) = cursor.last_mut() {
                *last += 1;
            }
            continue;
        }
        if position >= rows.len() {
            cursor.pop();
            trail.pop();
            if let Some(last) = cursor.last_mut() {
                *last += 1;
            }
            continue;
        }
        let next = rows[position];
        if trail.iter().any(|r| r.node == next.node) || next.node == object {
            *cursor.last_mut().expect("non-empty") += 1;
            continue;
        }
        trail.push(next);
        cursor.push(0);
    }
    paths
}

fn path_key(path: &RetainingPath) -> Vec<(NodeIndex, Option<EdgeIndex>)> {
    path.steps.iter().map(|s| (s.node, s.edge_in)).collect()
}

/// The rows a further path may take from `node`: the pane's rows, closer to the roots than `node` (except
/// for the selected object, whose rows are all allowed), without system-only retainers when others exist.
fn candidate_rows(view: &RetainerView, node: NodeIndex, is_object: bool) -> Vec<Retainer> {
    let own = view.distance(node);
    let rows: Vec<Retainer> = view
        .sorted_retainers(node)
        .into_iter()
        .filter(|r| r.distance < BASE_UNREACHABLE_DISTANCE && (is_object || r.distance < own))
        .collect();
    if rows.iter().any(|r| r.distance < BASE_SYSTEM_DISTANCE) {
        rows.into_iter().filter(|r| r.distance < BASE_SYSTEM_DISTANCE).collect()
    } else {
        rows
    }
}

/// Objects that share a retaining path (same classes and edge names along the DevTools chain, array
/// indices and ids ignored, runs of one repeated step folded).
#[derive(Debug, Clone)]
pub struct PathGroup {
    pub count: u64,
    /// Retained size of the members, counting a member dominated by another member of the group once.
    pub retained: u64,
    pub shallow: u64,
    /// The member with the largest retained size; `path` is its chain.
    pub representative: NodeIndex,
    pub path: RetainingPath,
    /// Members, largest retained size first.
    pub members: Vec<NodeIndex>,
}

/// Groups `objects` by their DevTools chain (unlimited depth, so a long linked list still reaches its
/// head). Groups come largest retained size first.
pub fn group_by_path(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    view: &RetainerView,
    objects: &[NodeIndex],
) -> Vec<PathGroup> {
    let mut keys = PathKeys::default();
    let mut memo: HashMap<NodeIndex, u32> = HashMap::new();
    let mut by_key: HashMap<u32, Vec<NodeIndex>> = HashMap::new();
    for &object in objects {
        let key = object_key(snapshot, analysis, view, &mut keys, &mut memo, object);
        by_key.entry(key).or_default().push(object);
    }
    // Group retained size: a member counts unless a dominator of it is a member of the same group.
    let mut group_of: HashMap<NodeIndex, u32> = HashMap::new();
    for (&key, members) in &by_key {
        for &m in members {
            group_of.insert(m, key);
        }
    }
    let retained = group_retained(snapshot, analysis, &group_of);
    let mut groups: Vec<PathGroup> = by_key
        .into_iter()
        .map(|(key, mut members)| {
            members.sort_by(|a, b| analysis.retained.get(*b).cmp(&analysis.retained.get(*a)).then(a.cmp(b)));
            let representative = members[0];
            let chain = view.chain(representative, usize::MAX);
            PathGroup {
                count: members.len() as u64,
                retained: retained.get(&key).copied().unwrap_or(0),
                shallow: members.iter().map(|&m| analysis.shallow.get(m)).sum(),
                representative,
                path: fold_runs(snapshot, analysis, &RetainingPath::from_chain(&chain)),
                members,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.retained.cmp(&a.retained).then(b.count.cmp(&a.count)).then(a.representative.cmp(&b.representative))
    });
    groups
}

/// Per group, the retained sizes of its members, skipping members that a member of the same group
/// dominates (one walk over the dominator tree, as DevTools computes a class's retained size).
fn group_retained(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    group_of: &HashMap<NodeIndex, u32>,
) -> HashMap<u32, u64> {
    const EXIT: u64 = 1 << 63;
    let mut retained: HashMap<u32, u64> = HashMap::new();
    let mut active: HashSet<u32> = HashSet::new();
    let mut stack: Vec<u64> = vec![snapshot.root() as u64];
    while let Some(entry) = stack.pop() {
        if entry & EXIT != 0 {
            active.remove(&((entry & !EXIT) as u32));
            continue;
        }
        let node = entry as NodeIndex;
        if let Some(&group) = group_of.get(&node) {
            if active.insert(group) {
                *retained.entry(group).or_default() += analysis.retained.get(node);
                stack.push(group as u64 | EXIT);
            }
        }
        stack.extend(analysis.dominator_tree.children(node).iter().map(|&c| c as u64));
    }
    retained
}

/// Folds runs of identical steps (same class, same edge ignoring indices) into one step with `repeat`.
pub fn fold_runs(snapshot: &HeapSnapshot, analysis: &Analysis, path: &RetainingPath) -> RetainingPath {
    let mut steps: Vec<PathStep> = Vec::with_capacity(path.steps.len());
    for step in &path.steps {
        if let (Some(last), Some(_)) = (steps.last_mut(), step.edge_in) {
            if last.edge_in.is_some() && segment(snapshot, analysis, *last) == segment(snapshot, analysis, *step) {
                last.repeat += 1;
                continue;
            }
        }
        steps.push(*step);
    }
    RetainingPath { steps, stop: path.stop }
}

fn segment(snapshot: &HeapSnapshot, analysis: &Analysis, step: PathStep) -> (u32, String) {
    (analysis.classes.class_of(step.node), step.edge_in.map(|e| normalized_edge(snapshot, e)).unwrap_or_default())
}

/// The edge in DevTools notation with element and hidden indices dropped (`[]`, `{}`).
pub fn normalized_edge(snapshot: &HeapSnapshot, edge: EdgeIndex) -> String {
    match snapshot.edge_type(edge) {
        EdgeType::Element => "[]".to_string(),
        EdgeType::Hidden => "{}".to_string(),
        _ => snapshot.edge_label(edge),
    }
}

/// Interned path keys: key 0 is the empty path; every other key is (parent key, last segment).
#[derive(Default)]
struct PathKeys {
    segments: HashMap<(u32, String), u32>,
    keys: HashMap<(u32, u32), u32>,
    last: Vec<u32>,
}

impl PathKeys {
    fn segment(&mut self, class: u32, edge: String) -> u32 {
        let next = self.segments.len() as u32;
        *self.segments.entry((class, edge)).or_insert(next)
    }

    /// `parent` extended by `segment`, folding a repeat of parent's last segment.
    fn extend(&mut self, parent: u32, segment: u32) -> u32 {
        if self.last.is_empty() {
            self.last.push(u32::MAX);
        }
        if parent != 0 && self.last[parent as usize] == segment {
            return parent;
        }
        let next = self.last.len() as u32;
        let key = *self.keys.entry((parent, segment)).or_insert(next);
        if key == next {
            self.last.push(segment);
        }
        key
    }
}

fn object_key(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    view: &RetainerView,
    keys: &mut PathKeys,
    memo: &mut HashMap<NodeIndex, u32>,
    object: NodeIndex,
) -> u32 {
    // The selected object always shows its first retainer, whatever its own distance.
    let Some(first) = view.first_retainer(object) else {
        let seg = keys.segment(analysis.classes.class_of(object), String::new());
        return keys.extend(0, seg);
    };
    let parent = retainer_key(snapshot, analysis, view, keys, memo, first);
    let seg = keys.segment(analysis.classes.class_of(object), normalized_edge(snapshot, first.edge));
    keys.extend(parent, seg)
}

/// The key of the path ending at retainer row `row` (its node included), memoised per node.
fn retainer_key(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    view: &RetainerView,
    keys: &mut PathKeys,
    memo: &mut HashMap<NodeIndex, u32>,
    row: Retainer,
) -> u32 {
    let top = |keys: &mut PathKeys, node: NodeIndex| {
        let seg = keys.segment(analysis.classes.class_of(node), String::new());
        keys.extend(0, seg)
    };
    if row.distance <= 1 || row.distance >= BASE_UNREACHABLE_DISTANCE {
        // The chain stops here (a user root, or an unreachable or ignored row).
        return top(keys, row.node);
    }
    // Walk up until a memoised node or the top, then assign keys on the way back down.
    let mut pending: Vec<(NodeIndex, Retainer)> = Vec::new();
    let mut current = row.node;
    let mut on_path: HashSet<NodeIndex> = HashSet::new();
    let mut base = loop {
        if let Some(&key) = memo.get(&current) {
            break key;
        }
        if !on_path.insert(current) {
            break top(keys, current);
        }
        match view.first_retainer(current) {
            None => {
                let key = top(keys, current);
                memo.insert(current, key);
                break key;
            }
            Some(up) if up.distance <= 1 || up.distance >= BASE_UNREACHABLE_DISTANCE => {
                let parent = top(keys, up.node);
                let seg = keys.segment(analysis.classes.class_of(current), normalized_edge(snapshot, up.edge));
                let key = keys.extend(parent, seg);
                memo.insert(current, key);
                break key;
            }
            Some(up) => {
                pending.push((current, up));
                current = up.node;
            }
        }
    };
    while let Some((node, up)) = pending.pop() {
        let seg = keys.segment(analysis.classes.class_of(node), normalized_edge(snapshot, up.edge));
        base = keys.extend(base, seg);
        memo.insert(node, base);
    }
    base
}
