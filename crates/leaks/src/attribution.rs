//! Which container each new object accumulates in.
//!
//! Walking the last snapshot's dominator tree from the root, every object that did not exist at the first
//! snapshot ("new") is attributed to its nearest dominator that did exist ("old") and is a real object (not an
//! internal array, code or a GC-root group): the accumulation point. Inside one accumulation point, new objects
//! are grouped by how the point reaches them: through its backing store (a collection's entries) or through
//! one named slot (a variable or property holding a chain). New objects it dominates but does not reach on its
//! own (held together with another container's objects) are left out rather than reported twice.
//!
//! A new object whose dominator path has no old JavaScript object (only the root) is held by two old
//! objects at once — typically a doubly linked list, like Node's timer lists, that something else also
//! points into. It is attributed along its shortest retaining path instead: to the nearest old object of
//! another class (skipping the chain of its own class), grouped by the edge that object holds it through.

use crate::digest::is_backing_store_edge;
use leakscope_heap::analysis::distances::{source_of, NO_EDGE};
use leakscope_heap::{Analysis, EdgeIndex, HeapSnapshot, NodeIndex, NodeType};

pub const NONE: u32 = u32::MAX;

/// How an accumulation point reaches a group of new objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entry {
    /// Entries of a collection (element store, property dictionary, hash table).
    Entries,
    /// A named edge of the point itself (a closure variable, a property).
    Slot(String),
}

pub struct Attribution {
    /// Per node: the interval it was created in (0 = between the first and second snapshot), or NONE if old.
    pub born: Vec<u32>,
    /// Per new node: its accumulation point, or NONE.
    pub anchor: Vec<u32>,
    /// Per new node: the topmost new node on its dominator path below the anchor.
    pub top: Vec<u32>,
    /// Per top node: its group's index into `groups`, or NONE (shared / unresolved).
    pub group_of_top: Vec<u32>,
    pub groups: Vec<(NodeIndex, Entry)>,
}

/// Types whose instances can be an accumulation point: JavaScript objects and closures. Embedder objects
/// (`Node / Environment`, `Node / PrincipalRealm`, ...) grow with the runtime's own bookkeeping (lazily compiled
/// built-ins, their strings); what user code leaks through them still accumulates in a JavaScript container.
fn can_anchor(snapshot: &HeapSnapshot, node: NodeIndex) -> bool {
    matches!(snapshot.node_type(node), NodeType::Object | NodeType::Closure | NodeType::RegExp)
}

/// Objects a JavaScript programmer made (counted as "objects" in findings; everything counts for bytes).
pub fn is_user_object(snapshot: &HeapSnapshot, node: NodeIndex) -> bool {
    matches!(
        snapshot.node_type(node),
        NodeType::Object
            | NodeType::Closure
            | NodeType::String
            | NodeType::ConsString
            | NodeType::SlicedString
            | NodeType::Number
            | NodeType::RegExp
            | NodeType::Symbol
            | NodeType::BigInt
            | NodeType::Native
    )
}

/// The retaining-path fallback for a new node with no old dominator: the nearest old object of another class
/// on its shortest path from the roots, and the edge that object holds the path through. Nodes of the same
/// class met on the way share the answer (`memo`), which keeps long chains linear.
fn anchor_on_path(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    born: &[u32],
    parents: &[EdgeIndex],
    node: NodeIndex,
    memo: &mut std::collections::HashMap<NodeIndex, Option<(NodeIndex, EdgeIndex)>>,
) -> Option<(NodeIndex, EdgeIndex)> {
    let class = analysis.classes.class_of(node);
    let mut chain = vec![node];
    let mut current = node;
    let found = loop {
        if let Some(found) = memo.get(&current).filter(|_| analysis.classes.class_of(current) == class) {
            break *found;
        }
        let edge = parents[current as usize];
        // A path longer than the node count is impossible: stop rather than loop on bad input.
        if edge == NO_EDGE || chain.len() > snapshot.node_count() {
            break None;
        }
        let holder = source_of(snapshot, edge);
        if holder == snapshot.root() || snapshot.node_type(holder) == NodeType::Synthetic {
            break None;
        }
        let same_class = analysis.classes.class_of(holder) == class;
        if born[holder as usize] == NONE && can_anchor(snapshot, holder) && !same_class {
            break Some((holder, edge));
        }
        if same_class {
            chain.push(holder);
        }
        current = holder;
    };
    for member in chain {
        memo.insert(member, found);
    }
    found
}

pub fn attribute(snapshot: &HeapSnapshot, analysis: &Analysis, born: Vec<u32>, parents: &[EdgeIndex]) -> Attribution {
    let n = snapshot.node_count();
    let mut anchor = vec![NONE; n];
    let mut top = vec![NONE; n];
    // DFS over the dominator tree carrying (node, anchor in force, top in force).
    let mut stack: Vec<(NodeIndex, u32, u32)> = vec![(snapshot.root(), NONE, NONE)];
    while let Some((node, mut current_anchor, mut current_top)) = stack.pop() {
        if born[node as usize] == NONE {
            if node == snapshot.root() || snapshot.node_type(node) == NodeType::Synthetic {
                current_anchor = NONE;
            } else if can_anchor(snapshot, node) {
                current_anchor = node;
            }
            current_top = NONE;
        } else {
            if current_top == NONE {
                current_top = node;
            }
            anchor[node as usize] = current_anchor;
            top[node as usize] = current_top;
        }
        for &child in analysis.dominator_tree.children(node) {
            stack.push((child, current_anchor, current_top));
        }
    }

    let mut group_of_top = vec![NONE; n];
    let mut groups: Vec<(NodeIndex, Entry)> = Vec::new();
    let mut group_index: std::collections::HashMap<(NodeIndex, Entry), u32> = std::collections::HashMap::new();
    let mut assign = |t: NodeIndex, a: NodeIndex, entry: Entry, group_of_top: &mut Vec<u32>| {
        if group_of_top[t as usize] != NONE {
            return;
        }
        let key = (a, entry);
        let g = *group_index.entry(key.clone()).or_insert_with(|| {
            groups.push(key);
            (groups.len() - 1) as u32
        });
        group_of_top[t as usize] = g;
    };
    // New objects without an old dominator: by their retaining path (see the module notes). The topmost new
    // object of each such dominator subtree is looked up; the objects below it follow it.
    let mut path_memo: std::collections::HashMap<NodeIndex, Option<(NodeIndex, EdgeIndex)>> =
        std::collections::HashMap::new();
    let mut found_any = false;
    for t in 0..n as NodeIndex {
        if top[t as usize] != t || anchor[t as usize] != NONE {
            continue;
        }
        let Some((a, edge)) = anchor_on_path(snapshot, analysis, &born, parents, t, &mut path_memo) else { continue };
        anchor[t as usize] = a;
        found_any = true;
        let entry = if is_backing_store_edge(snapshot, edge) {
            Entry::Entries
        } else {
            Entry::Slot(snapshot.edge_name(edge).into_owned())
        };
        assign(t, a, entry, &mut group_of_top);
    }
    if found_any {
        // A new node and its top were given the same anchor by the walk above; keep it so.
        for v in 0..n {
            if anchor[v] == NONE && top[v] != NONE {
                anchor[v] = anchor[top[v] as usize];
            }
        }
    }
    let is_top_of = |t: NodeIndex, a: NodeIndex| top[t as usize] == t && anchor[t as usize] == a;
    // Each anchor's own edges, and its backing stores' edges, name the groups of the tops they reach.
    let mut anchors: Vec<NodeIndex> = (0..n as NodeIndex)
        .filter(|&v| top[v as usize] == v && anchor[v as usize] != NONE)
        .map(|v| anchor[v as usize])
        .collect();
    anchors.sort_unstable();
    anchors.dedup();
    for &a in &anchors {
        for edge in snapshot.edges(a) {
            if snapshot.edge_type(edge) == leakscope_heap::EdgeType::Weak {
                continue;
            }
            let target = snapshot.edge_target(edge);
            if is_backing_store_edge(snapshot, edge) {
                if is_top_of(target, a) {
                    assign(target, a, Entry::Entries, &mut group_of_top);
                }
                for inner in snapshot.edges(target) {
                    let t = snapshot.edge_target(inner);
                    if snapshot.edge_type(inner) != leakscope_heap::EdgeType::Weak && is_top_of(t, a) {
                        assign(t, a, Entry::Entries, &mut group_of_top);
                    }
                }
            } else if is_top_of(target, a) {
                assign(target, a, Entry::Slot(snapshot.edge_name(edge).into_owned()), &mut group_of_top);
            }
        }
    }
    // Tops the anchor does not reach directly (the middle of a chain) join the group of a new object of the
    // same anchor that holds them: a breadth-first walk from each group's objects through new objects.
    let mut queued = vec![false; n];
    let mut queue: Vec<NodeIndex> = (0..n as NodeIndex)
        .filter(|&v| top[v as usize] != NONE && group_of_top[top[v as usize] as usize] != NONE)
        .collect();
    for &v in &queue {
        queued[v as usize] = true;
    }
    let mut head = 0;
    while head < queue.len() {
        let u = queue[head];
        head += 1;
        let group = group_of_top[top[u as usize] as usize];
        let a = anchor[u as usize];
        for edge in snapshot.edges(u) {
            if snapshot.edge_type(edge) == leakscope_heap::EdgeType::Weak {
                continue;
            }
            let t = snapshot.edge_target(edge);
            if queued[t as usize] || top[t as usize] == NONE || anchor[t as usize] != a {
                continue;
            }
            let t_top = top[t as usize] as usize;
            if group_of_top[t_top] == NONE {
                group_of_top[t_top] = group;
            }
            if group_of_top[t_top] == group {
                queued[t as usize] = true;
                queue.push(t);
            }
        }
    }
    Attribution { born, anchor, top, group_of_top, groups }
}
