//! Plain-words diagnosis of a finding (which Node leak shape it is) and the source code involved.

use crate::{Growth, Held, PathStep};
use leakscope_heap::scripts::ScriptNames;
use leakscope_heap::{Analysis, EdgeIndex, EdgeType, HeapSnapshot, NodeIndex, NodeType};
use serde::Serialize;
use std::collections::HashMap;

pub(crate) struct Context<'a> {
    pub snapshot: &'a HeapSnapshot,
    pub analysis: &'a Analysis,
    pub scripts: &'a ScriptNames,
    /// The accumulation point.
    pub anchor: NodeIndex,
    /// What is reported as the container (the anchor, or the head of a chain a scope variable holds).
    pub container: NodeIndex,
}

/// A piece of code involved in a finding.
#[derive(Debug, Clone, Serialize)]
pub struct SourceRef {
    /// `closure-on-path`, `held-function` (listeners, callbacks the container keeps), or `constructor` (where
    /// the held objects' class is defined).
    pub role: String,
    pub function: String,
    pub file: Option<String>,
    /// 1-based.
    pub line: u32,
    /// 1-based.
    pub column: u32,
    /// How many of the held objects this stands for (for held functions and constructors).
    pub count: u64,
}

/// Closure scopes (contexts) hold unrelated variables; each growing variable is its own finding.
pub(crate) fn is_scope(snapshot: &HeapSnapshot, analysis: &Analysis, node: NodeIndex) -> bool {
    let class = analysis.class_name(snapshot, node);
    class == "system / Context" || class.starts_with("system / Context / ") || snapshot.node_name(node) == "global"
}

fn count_text(growth: &Growth) -> String {
    let per_round: Vec<String> = growth.objects_per_round.iter().map(|c| c.to_string()).collect();
    per_round.join(", ")
}

pub(crate) fn diagnose(
    cx: &Context,
    path: &[PathStep],
    growth: &Growth,
    holds: &[Held],
    members: &[NodeIndex],
) -> (String, String) {
    let snapshot = cx.snapshot;
    let class = cx.analysis.class_name(snapshot, cx.container).to_string();
    let n = path.len();
    let per_round = count_text(growth);
    let bytes = leakscope_heap::units::human_bytes(growth.mean_bytes_per_round);
    let holds_text = holds.iter().take(3).map(|h| format!("{} {}", h.count, h.class)).collect::<Vec<_>>().join(", ");

    // EventEmitter listeners: ..._events.<event> is an array of listener functions.
    if n >= 2 && path[n - 2].edge == "_events" {
        let event = &path[n - 1].edge;
        let emitter = if n >= 3 {
            let holder = &path[n - 3];
            format!("EventEmitter `{}` ({} @{})", holder.edge, holder.class, holder.id)
        } else {
            "an EventEmitter".into()
        };
        let on_process = n >= 3 && (path[n - 3].class == "process" || path[n - 3].edge == "process");
        let listeners = count_closures(snapshot, cx.container);
        let emitter = if on_process { format!("`process` object ({emitter})") } else { emitter };
        return (
            "event-listeners".into(),
            format!(
                "Listeners are added to the {emitter} for '{event}' and never removed: it holds {listeners} \
                 listener functions now, and each round added more ({per_round} objects per round, {bytes} per \
                 round) that the listeners' closures keep alive. Remove the listener when its request or \
                 connection ends (emitter.off, once, or an AbortSignal)."
            ),
        );
    }
    if class == "Map" || class == "Set" {
        return (
            class.to_lowercase(),
            format!(
                "Unbounded {class} used as a cache: entries are added every round and never deleted ({per_round} new \
                 objects per round, {bytes} per round; holds {holds_text}). Bound it (LRU with a size cap, TTL) or \
                 delete entries when they are done."
            ),
        );
    }
    if holds.iter().take(2).any(|h| h.class == "Timeout") || class == "TimersList" || class == "Timeout" {
        let timeouts = holds.iter().find(|h| h.class == "Timeout").map_or(0, |h| h.count);
        return (
            "timers".into(),
            format!(
                "Timers that are never cleared: {timeouts} Timeout objects accumulated ({per_round} objects per \
                 round, {bytes} per round); their callbacks keep what they capture alive. Call clearInterval / \
                 clearTimeout when the work they belong to ends."
            ),
        );
    }
    if let Some(next) = chain_edge(snapshot, cx.container) {
        return (
            "linked-list".into(),
            format!(
                "A linked list of {class} grows through .{next} and is never trimmed ({per_round} objects per round, \
                 {bytes} per round). Cap its length or unlink old nodes."
            ),
        );
    }
    if class == "Array" {
        return (
            "array".into(),
            format!(
                "An array used as a log or queue keeps growing ({per_round} new objects per round, {bytes} per \
                 round; holds {holds_text}). Trim it, or use a bounded ring buffer."
            ),
        );
    }
    if is_scope(snapshot, cx.analysis, cx.anchor) {
        return (
            "closure-scope".into(),
            format!(
                "A variable of a closure scope keeps accumulating objects ({per_round} per round, {bytes} per round; \
                 holds {holds_text})."
            ),
        );
    }
    if snapshot.node_type(cx.container) == NodeType::Object
        && (class == "Object" || class.starts_with('{'))
        && members.iter().any(|&m| snapshot.node_type(m) != NodeType::Array)
    {
        return (
            "object-dictionary".into(),
            format!(
                "A plain object used as a dictionary gains properties every round and never loses them \
                 ({per_round} objects per round, {bytes} per round; holds {holds_text}). Use a Map with eviction, \
                 or delete keys when done."
            ),
        );
    }
    (
        "growing-object".into(),
        format!(
            "{class} keeps gaining objects every round ({per_round} per round, {bytes} per round; holds {holds_text})."
        ),
    )
}

/// `Some(edge name)` when the node links to another node of its own class (`next`, `_idleNext`, ...).
fn chain_edge(snapshot: &HeapSnapshot, node: NodeIndex) -> Option<String> {
    let class = snapshot.node_name(node);
    if snapshot.node_type(node) != NodeType::Object {
        return None;
    }
    snapshot
        .edges(node)
        .filter(|&e| snapshot.edge_type(e) == EdgeType::Property)
        .find(|&e| {
            let t = snapshot.edge_target(e);
            snapshot.node_type(t) == NodeType::Object && snapshot.node_name(t) == class
        })
        .map(|e| snapshot.edge_name(e).into_owned())
}

fn count_closures(snapshot: &HeapSnapshot, array: NodeIndex) -> u64 {
    let mut count = 0;
    for edge in snapshot.edges(array) {
        let target = snapshot.edge_target(edge);
        if snapshot.node_type(target) == NodeType::Closure {
            count += 1;
        }
        if crate::digest::is_backing_store_edge(snapshot, edge) {
            count += snapshot
                .edges(target)
                .filter(|&e| snapshot.node_type(snapshot.edge_target(e)) == NodeType::Closure)
                .count() as u64;
        }
    }
    count
}

pub(crate) fn sources(cx: &Context, path: &[EdgeIndex], members: &[NodeIndex]) -> Vec<SourceRef> {
    let snapshot = cx.snapshot;
    let mut out = Vec::new();
    let describe = |node: NodeIndex, role: &str, count: u64| -> Option<SourceRef> {
        let position = cx.scripts.node_position(snapshot, node)?;
        let function = match snapshot.node_type(node) {
            NodeType::Closure => {
                let name = snapshot.node_name(node);
                if name.is_empty() {
                    "(anonymous)".to_string()
                } else {
                    name.to_string()
                }
            }
            _ => cx.analysis.class_name(snapshot, node).to_string(),
        };
        Some(SourceRef {
            role: role.into(),
            function,
            file: position.file,
            line: position.line,
            column: position.column,
            count,
        })
    };
    // Closures on the retaining path, nearest to the container first.
    for &edge in path.iter().rev() {
        let node = snapshot.edge_target(edge);
        if snapshot.node_type(node) == NodeType::Closure {
            out.extend(describe(node, "closure-on-path", 1));
        }
        if out.len() >= 2 {
            break;
        }
    }
    // The functions and constructed objects the container holds, most common site first.
    let mut functions: HashMap<(u32, u32, u32), (NodeIndex, u64)> = HashMap::new();
    let mut constructed: HashMap<(u32, u32, u32), (NodeIndex, u64)> = HashMap::new();
    for &node in members {
        let Some(location) = snapshot.location(node) else { continue };
        let key = (location.script_id, location.line, location.column);
        let table = match snapshot.node_type(node) {
            NodeType::Closure => &mut functions,
            NodeType::Object => &mut constructed,
            _ => continue,
        };
        table.entry(key).or_insert((node, 0)).1 += 1;
    }
    for (table, role, limit) in [(functions, "held-function", 2), (constructed, "constructor", 2)] {
        let mut sites: Vec<(NodeIndex, u64)> = table.into_values().collect();
        sites.sort_by(|a, b| b.1.cmp(&a.1).then(snapshot.node_id(a.0).cmp(&snapshot.node_id(b.0))));
        for (node, count) in sites.into_iter().take(limit) {
            out.extend(describe(node, role, count));
        }
    }
    out
}
