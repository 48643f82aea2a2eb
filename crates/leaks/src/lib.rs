//! leakscope-leaks: zero-configuration leak finding across two or more heap snapshots of one process.
//!
//! Method (details in docs/leaks.md): ids only grow, so an object alive in the last snapshot was created in
//! the round its id falls in. Each new object is attributed to the container it accumulates in (see
//! [`attribution`]); a container is reported when it gains surviving objects in every round (and, for a
//! collection, when its entry count grows every round), which removes churn and caches that stay bounded.
//! Engine-internal growth (code, maps, internal arrays, GC-root groups) is never an accumulation point.

pub mod attribution;
mod describe;
pub mod digest;

use attribution::{is_user_object, Attribution, Entry, NONE};
pub use describe::SourceRef;
use digest::{collection_size, SnapshotDigest};
use leakscope_heap::analysis::distances::{distances_and_parents, path_to};
use leakscope_heap::{Analysis, EdgeIndex, HeapSnapshot, NodeIndex};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct LeakOptions {
    /// A finding must grow by at least this many bytes per round on average.
    pub min_growth_bytes: u64,
    /// ... and gain at least this many objects in every round.
    pub min_objects_per_round: u64,
    /// Report at most this many findings (0 = all).
    pub top: usize,
}

impl Default for LeakOptions {
    fn default() -> Self {
        LeakOptions { min_growth_bytes: 1024, min_objects_per_round: 5, top: 0 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LeakReport {
    /// Number of snapshots compared.
    pub snapshots: usize,
    /// Objects created after the first snapshot and still alive in the last.
    pub new_objects: u64,
    pub new_bytes: u64,
    /// New objects attributed to a reported finding.
    pub explained_objects: u64,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathStep {
    /// The edge's name as the snapshot has it (property, variable, index).
    pub edge: String,
    /// The edge in DevTools' notation: `.x`, `[3]`, `->x`, `{x}`.
    pub label: String,
    /// The object the edge leads to.
    pub class: String,
    pub id: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Container {
    pub class: String,
    pub id: u32,
    pub node_type: String,
    pub name: String,
    /// What the container retains in the last snapshot.
    pub retained_size: u64,
    /// Entries (strong edges, including its backing store's) in each snapshot; empty for chains.
    pub size_per_snapshot: Vec<Option<u32>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Growth {
    /// Objects (JavaScript-visible: objects, closures, strings, ...) gained in each round that are still alive.
    pub objects_per_round: Vec<u64>,
    /// Bytes (shallow sizes, everything) gained in each round that are still alive.
    pub bytes_per_round: Vec<u64>,
    pub mean_bytes_per_round: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub class: String,
    pub count: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Representative {
    pub class: String,
    pub id: u32,
    pub retained_size: u64,
    /// Edge names from a GC root to this object.
    pub path: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rank: usize,
    /// `event-listeners`, `map`, `set`, `array`, `linked-list`, `timers`, `object-dictionary`, `closure-scope`,
    /// or `growing-object`.
    pub kind: String,
    /// One or two sentences in plain words.
    pub diagnosis: String,
    pub container: Container,
    /// Edge names from a GC root to the container (root first).
    pub path: Vec<String>,
    /// The class of the object the path starts from (`(GC roots)`, a global object ...).
    pub path_root: String,
    pub path_detail: Vec<PathStep>,
    pub growth: Growth,
    /// Top classes of the new objects it holds.
    pub holds: Vec<Held>,
    pub representative: Option<Representative>,
    /// Code involved: closures on the path, the listeners/callbacks it holds, constructors of what it holds.
    pub source: Vec<SourceRef>,
}

/// Interval each object of `last` was created in (0 = between the first and second snapshot), NONE if it
/// existed at the first snapshot.
fn birth_intervals(last: &HeapSnapshot, earlier: &[SnapshotDigest]) -> Vec<u32> {
    let intervals = earlier.len() as u32;
    (0..last.node_count() as NodeIndex)
        .map(|node| {
            let id = last.node_id(node);
            if id <= 1 || earlier[0].existed(id) {
                return NONE;
            }
            (1..earlier.len()).find(|&i| earlier[i].existed(id)).map_or(intervals - 1, |i| i as u32 - 1)
        })
        .collect()
}

struct GroupStats {
    objects: Vec<u64>,
    bytes: Vec<u64>,
    classes: HashMap<u32, (u64, u64)>,
    tops: Vec<NodeIndex>,
    members: Vec<NodeIndex>,
}

/// Finds leaks. `earlier` are digests of the snapshots before `last`, oldest first (at least one).
pub fn find_leaks(
    last: &HeapSnapshot,
    analysis: &Analysis,
    earlier: &[SnapshotDigest],
    options: &LeakOptions,
) -> LeakReport {
    assert!(!earlier.is_empty(), "find_leaks needs at least one earlier snapshot");
    let rounds = earlier.len();
    let born = birth_intervals(last, earlier);
    let (_, parents) = distances_and_parents(last, &analysis.user_roots, &analysis.weakmaps);
    let attribution = attribution::attribute(last, analysis, born, &parents);
    let Attribution { born, anchor, top, group_of_top, groups } = &attribution;

    let (mut new_objects, mut new_bytes) = (0u64, 0u64);
    let mut stats: Vec<GroupStats> = (0..groups.len())
        .map(|_| GroupStats {
            objects: vec![0; rounds],
            bytes: vec![0; rounds],
            classes: HashMap::new(),
            tops: Vec::new(),
            members: Vec::new(),
        })
        .collect();
    for node in 0..last.node_count() as NodeIndex {
        let interval = born[node as usize];
        if interval == NONE {
            continue;
        }
        let user = is_user_object(last, node);
        let size = analysis.shallow.get(node);
        new_bytes += size;
        new_objects += user as u64;
        let t = top[node as usize];
        if t == NONE || anchor[node as usize] == NONE || group_of_top[t as usize] == NONE {
            continue;
        }
        let g = &mut stats[group_of_top[t as usize] as usize];
        g.bytes[interval as usize] += size;
        g.members.push(node);
        if t == node {
            g.tops.push(node);
        }
        if user {
            g.objects[interval as usize] += 1;
            let class = analysis.classes.class_of(node);
            let entry = g.classes.entry(class).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += size;
        }
    }

    // Groups of one object (not a closure scope) are one container: merge them.
    let mut merged: HashMap<(NodeIndex, Option<String>), Vec<usize>> = HashMap::new();
    for (g, (a, entry)) in groups.iter().enumerate() {
        let scope = describe::is_scope(last, analysis, *a);
        let key = match entry {
            Entry::Slot(name) if scope => Some(name.clone()),
            _ => None,
        };
        merged.entry((*a, key)).or_default().push(g);
    }

    let scripts = leakscope_heap::scripts::ScriptNames::build(last);
    let mut findings = Vec::new();
    let mut explained = 0u64;
    for ((a, slot), members) in merged {
        let mut objects = vec![0u64; rounds];
        let mut bytes = vec![0u64; rounds];
        let mut classes: HashMap<u32, (u64, u64)> = HashMap::new();
        let mut tops = Vec::new();
        let mut nodes = Vec::new();
        let mut is_collection = false;
        for g in members {
            let s = &stats[g];
            is_collection |= groups[g].1 == Entry::Entries;
            for r in 0..rounds {
                objects[r] += s.objects[r];
                bytes[r] += s.bytes[r];
            }
            for (&c, &(count, size)) in &s.classes {
                let e = classes.entry(c).or_insert((0, 0));
                e.0 += count;
                e.1 += size;
            }
            tops.extend_from_slice(&s.tops);
            nodes.extend_from_slice(&s.members);
        }
        let mean = bytes.iter().sum::<u64>() / rounds as u64;
        if objects.iter().any(|&o| o < options.min_objects_per_round) || mean < options.min_growth_bytes {
            continue;
        }
        let id = last.node_id(a);
        let mut sizes: Vec<Option<u32>> = earlier.iter().map(|d| d.size_of(id)).collect();
        sizes.push(Some(collection_size(last, a)));
        if is_collection && slot.is_none() {
            // A collection must hold more entries after every round: a bounded cache churns but stays the same size.
            let grows = sizes.windows(2).all(|w| matches!((w[0], w[1]), (Some(x), Some(y)) if y > x));
            if !grows {
                continue;
            }
        }
        explained += objects.iter().sum::<u64>();
        let path_edges = path_to(last, &parents, a);
        let mut path_detail: Vec<PathStep> = path_edges.iter().map(|&e| step(last, analysis, e)).collect();
        let mut container_node = a;
        if let Some(name) = &slot {
            // A scope variable holding a chain: the container is what the variable points to now.
            if let Some(edge) = last.edges(a).find(|&e| &*last.edge_name(e) == name.as_str()) {
                path_detail.push(step(last, analysis, edge));
                container_node = last.edge_target(edge);
            }
        }
        let path = path_detail.iter().map(|s| s.edge.clone()).collect();
        let path_root = match path_edges.first() {
            Some(&e) => display_class(last, analysis, leakscope_heap::analysis::distances::source_of(last, e)),
            None => display_class(last, analysis, a),
        };
        let mut holds: Vec<Held> = classes
            .iter()
            .map(|(&c, &(count, size))| Held { class: analysis.classes.name(last, c).to_string(), count, bytes: size })
            .collect();
        holds.sort_by(|x, y| y.count.cmp(&x.count).then(y.bytes.cmp(&x.bytes)).then(x.class.cmp(&y.class)));
        holds.truncate(8);
        // The nearest leaked object (short path to read), the one retaining most among those.
        let representative = tops
            .iter()
            .copied()
            .filter(|&t| is_user_object(last, t))
            .min_by_key(|&t| {
                (analysis.distance[t as usize], std::cmp::Reverse(analysis.retained.get(t)), last.node_id(t))
            })
            .map(|t| Representative {
                class: analysis.class_name(last, t).to_string(),
                id: last.node_id(t),
                retained_size: analysis.retained.get(t),
                path: path_to(last, &parents, t).iter().map(|&e| last.edge_name(e).into_owned()).collect(),
            });
        let container = Container {
            class: analysis.class_name(last, container_node).to_string(),
            id: last.node_id(container_node),
            node_type: last.node_type_name(container_node).to_string(),
            name: last.node_name(container_node).chars().take(120).collect(),
            retained_size: analysis.retained.get(container_node),
            size_per_snapshot: if slot.is_some() { Vec::new() } else { sizes },
        };
        let growth = Growth { objects_per_round: objects, bytes_per_round: bytes, mean_bytes_per_round: mean };
        let context =
            describe::Context { snapshot: last, analysis, scripts: &scripts, anchor: a, container: container_node };
        let (kind, diagnosis) = describe::diagnose(&context, &path_detail, &growth, &holds, &nodes);
        let source = describe::sources(&context, &path_edges, &nodes);
        findings.push(Finding {
            rank: 0,
            kind,
            diagnosis,
            container,
            path,
            path_root,
            path_detail,
            growth,
            holds,
            representative,
            source,
        });
    }
    findings.sort_by(|x, y| {
        y.growth.mean_bytes_per_round.cmp(&x.growth.mean_bytes_per_round).then(x.container.id.cmp(&y.container.id))
    });
    if options.top > 0 {
        findings.truncate(options.top);
    }
    for (i, f) in findings.iter_mut().enumerate() {
        f.rank = i + 1;
    }
    LeakReport { snapshots: rounds + 1, new_objects, new_bytes, explained_objects: explained, findings }
}

fn step(snapshot: &HeapSnapshot, analysis: &Analysis, edge: EdgeIndex) -> PathStep {
    let target = snapshot.edge_target(edge);
    PathStep {
        edge: snapshot.edge_name(edge).into_owned(),
        label: snapshot.edge_label(edge),
        class: display_class(snapshot, analysis, target),
        id: snapshot.node_id(target),
    }
}

/// The class, except for GC-root groups, which are better known by their names ("(GC roots)", "(Stack roots)").
fn display_class(snapshot: &HeapSnapshot, analysis: &Analysis, node: NodeIndex) -> String {
    if snapshot.node_type(node) == leakscope_heap::NodeType::Synthetic {
        let name = snapshot.node_name(node);
        return if name.is_empty() { "(root)".to_string() } else { name.to_string() };
    }
    analysis.class_name(snapshot, node).to_string()
}
