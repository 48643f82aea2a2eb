//! Source locations: the snapshot's `locations` section gives a script id and a 0-based line and column; the
//! script's file name is found in the graph (closure → `shared` → SharedFunctionInfo → `script` (or
//! `script_or_debug_info` in older V8) → Script node, whose name is the file path or `node:…` module).

use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType, SourceLocation};
use std::collections::HashMap;

/// Script id → script name, learnt from the closures in the snapshot.
#[derive(Debug, Default, Clone)]
pub struct ScriptNames {
    names: HashMap<u32, String>,
}

/// A location ready to show: file name (when known) and 1-based line and column, like editors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourcePosition {
    pub script_id: u32,
    pub file: Option<String>,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}:{}:{}", self.line, self.column),
            None => write!(f, "script {}:{}:{}", self.script_id, self.line, self.column),
        }
    }
}

impl ScriptNames {
    pub fn build(snapshot: &HeapSnapshot) -> ScriptNames {
        let mut names = HashMap::new();
        for &(node, location) in snapshot.locations() {
            if snapshot.node_type(node) != NodeType::Closure || names.contains_key(&location.script_id) {
                continue;
            }
            if let Some(script) = script_of_closure(snapshot, node) {
                let name = snapshot.node_name(script);
                if !name.is_empty() {
                    names.insert(location.script_id, name.to_string());
                }
            }
        }
        ScriptNames { names }
    }

    pub fn name(&self, script_id: u32) -> Option<&str> {
        self.names.get(&script_id).map(String::as_str)
    }

    pub fn position(&self, location: SourceLocation) -> SourcePosition {
        SourcePosition {
            script_id: location.script_id,
            file: self.name(location.script_id).map(str::to_string),
            line: location.line + 1,
            column: location.column + 1,
        }
    }

    /// The node's source position: a closure's definition, an object's constructor.
    pub fn node_position(&self, snapshot: &HeapSnapshot, node: NodeIndex) -> Option<SourcePosition> {
        snapshot.location(node).map(|l| self.position(l))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

fn named_internal(snapshot: &HeapSnapshot, node: NodeIndex, names: &[&str]) -> Option<NodeIndex> {
    snapshot
        .edges(node)
        .find(|&e| snapshot.edge_type(e) == EdgeType::Internal && names.contains(&&*snapshot.edge_name(e)))
        .map(|e| snapshot.edge_target(e))
}

/// The Script node of a closure, if the graph links it.
pub fn script_of_closure(snapshot: &HeapSnapshot, closure: NodeIndex) -> Option<NodeIndex> {
    let shared = named_internal(snapshot, closure, &["shared"])?;
    let script = named_internal(snapshot, shared, &["script", "script_or_debug_info"])?;
    (snapshot.node_type(script) == NodeType::Code).then_some(script)
}
