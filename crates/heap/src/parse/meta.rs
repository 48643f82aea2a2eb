//! `snapshot.meta`: which field is where, and what the type numbers mean. Everything is looked up by name.

use crate::error::ParseError;
use crate::snapshot::{EdgeType, NodeType, EDGE_TYPE_NAMES, MAX_EDGE_TYPE_CODE, NODE_TYPE_NAMES};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeRole {
    Type,
    Name,
    Id,
    SelfSize,
    EdgeCount,
    TraceNodeId,
    Detachedness,
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EdgeRole {
    Type,
    NameOrIndex,
    ToNode,
    Ignored,
}

/// The decoded meta: one role per node/edge field, and file type numbers mapped to canonical codes.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub node_fields: Vec<String>,
    pub node_roles: Vec<NodeRole>,
    pub edge_roles: Vec<EdgeRole>,
    pub node_type_map: Vec<u8>,
    pub edge_type_map: Vec<u8>,
    pub other_node_types: Vec<String>,
    pub other_edge_types: Vec<String>,
    pub location_fields: usize,
    /// Offsets of object_index, script_id, line, column.
    pub location_offsets: [usize; 4],
    pub trace_function_fields: Vec<String>,
    /// Offsets of function_id, name, script_name, script_id, line, column.
    pub trace_function_offsets: [usize; 6],
    /// Numbers per `trace_tree` node before its `children` array (the last field).
    pub trace_node_values: usize,
    /// Offsets of id, function_info_index, count, size among those numbers.
    pub trace_node_offsets: [usize; 4],
    pub declared_nodes: u64,
    pub declared_edges: u64,
}

pub(crate) struct Header {
    pub node_count: u64,
    pub edge_count: u64,
    pub extra_native_bytes: u64,
}

#[derive(Deserialize)]
struct RawHeader {
    meta: RawMeta,
    #[serde(default)]
    node_count: f64,
    #[serde(default)]
    edge_count: f64,
    #[serde(default)]
    extra_native_bytes: Option<f64>,
    #[serde(default)]
    root_index: Option<f64>,
}

#[derive(Deserialize)]
struct RawMeta {
    node_fields: Vec<String>,
    node_types: Vec<serde_json::Value>,
    edge_fields: Vec<String>,
    edge_types: Vec<serde_json::Value>,
    #[serde(default)]
    location_fields: Vec<String>,
    #[serde(default)]
    trace_function_info_fields: Vec<String>,
    #[serde(default)]
    trace_node_fields: Vec<String>,
}

pub(crate) fn read_header(text: &[u8], at: u64) -> Result<(Layout, Header), ParseError> {
    let bad = |message: String| ParseError::NotASnapshot(format!("`snapshot` at byte {at}: {message}"));
    let raw: RawHeader = serde_json::from_slice(text).map_err(|e| bad(format!("cannot read meta: {e}")))?;
    if let Some(root) = raw.root_index {
        if root != 0.0 {
            return Err(bad(format!("root_index {root} is not supported (V8 always writes the root first)")));
        }
    }
    let meta = raw.meta;
    let position = |fields: &[String], name: &str| fields.iter().position(|f| f == name);

    let mut node_roles = vec![NodeRole::Ignored; meta.node_fields.len()];
    for (name, role) in [
        ("type", NodeRole::Type),
        ("name", NodeRole::Name),
        ("id", NodeRole::Id),
        ("self_size", NodeRole::SelfSize),
        ("edge_count", NodeRole::EdgeCount),
        ("trace_node_id", NodeRole::TraceNodeId),
        ("detachedness", NodeRole::Detachedness),
    ] {
        match position(&meta.node_fields, name) {
            Some(p) => node_roles[p] = role,
            None if matches!(role, NodeRole::TraceNodeId | NodeRole::Detachedness) => {}
            None => return Err(bad(format!("meta.node_fields has no `{name}` field"))),
        }
    }
    let mut edge_roles = vec![EdgeRole::Ignored; meta.edge_fields.len()];
    for (name, role) in
        [("type", EdgeRole::Type), ("name_or_index", EdgeRole::NameOrIndex), ("to_node", EdgeRole::ToNode)]
    {
        let p =
            position(&meta.edge_fields, name).ok_or_else(|| bad(format!("meta.edge_fields has no `{name}` field")))?;
        edge_roles[p] = role;
    }

    let type_names = |types: &[serde_json::Value], offset: usize, what: &str| -> Result<Vec<String>, ParseError> {
        let list = types
            .get(offset)
            .and_then(|v| v.as_array())
            .ok_or_else(|| bad(format!("meta.{what}[{offset}] is not the list of type names")))?;
        list.iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| bad(format!("meta.{what} holds a non-string type name")))
            })
            .collect()
    };
    let node_type_offset = position(&meta.node_fields, "type").expect("checked");
    let edge_type_offset = position(&meta.edge_fields, "type").expect("checked");
    let node_type_names = type_names(&meta.node_types, node_type_offset, "node_types")?;
    let edge_type_names = type_names(&meta.edge_types, edge_type_offset, "edge_types")?;

    let mut other_node_types = Vec::new();
    let node_type_map = node_type_names
        .iter()
        .map(|name| {
            NodeType::code_for_name(name).unwrap_or_else(|| {
                other_node_types.push(name.clone());
                (NODE_TYPE_NAMES.len() + other_node_types.len() - 1).min(255) as u8
            })
        })
        .collect();
    let mut other_edge_types = Vec::new();
    let edge_type_map = edge_type_names
        .iter()
        .map(|name| {
            EdgeType::code_for_name(name).unwrap_or_else(|| {
                other_edge_types.push(name.clone());
                // Codes share an edge's column with its name: a tenth unknown type and later ones show as the ninth.
                (EDGE_TYPE_NAMES.len() + other_edge_types.len() - 1).min(MAX_EDGE_TYPE_CODE as usize) as u8
            })
        })
        .collect();

    let location_fields = if meta.location_fields.is_empty() {
        ["object_index", "script_id", "line", "column"].map(String::from).to_vec()
    } else {
        meta.location_fields.clone()
    };
    let mut location_offsets = [0usize; 4];
    for (slot, name) in ["object_index", "script_id", "line", "column"].iter().enumerate() {
        location_offsets[slot] =
            position(&location_fields, name).ok_or_else(|| bad(format!("meta.location_fields has no `{name}`")))?;
    }
    let trace_function_fields = if meta.trace_function_info_fields.is_empty() {
        ["function_id", "name", "script_name", "script_id", "line", "column"].map(String::from).to_vec()
    } else {
        meta.trace_function_info_fields.clone()
    };
    let mut trace_function_offsets = [0usize; 6];
    for (slot, name) in ["function_id", "name", "script_name", "script_id", "line", "column"].iter().enumerate() {
        trace_function_offsets[slot] = position(&trace_function_fields, name)
            .ok_or_else(|| bad(format!("meta.trace_function_info_fields has no `{name}`")))?;
    }
    let trace_node_fields = if meta.trace_node_fields.is_empty() {
        ["id", "function_info_index", "count", "size", "children"].map(String::from).to_vec()
    } else {
        meta.trace_node_fields.clone()
    };
    if trace_node_fields.last().map(String::as_str) != Some("children") {
        return Err(bad("meta.trace_node_fields must end with `children` (the nested array)".into()));
    }
    let mut trace_node_offsets = [0usize; 4];
    for (slot, name) in ["id", "function_info_index", "count", "size"].iter().enumerate() {
        trace_node_offsets[slot] =
            position(&trace_node_fields, name).ok_or_else(|| bad(format!("meta.trace_node_fields has no `{name}`")))?;
    }

    let layout = Layout {
        node_fields: meta.node_fields.clone(),
        node_roles,
        edge_roles,
        node_type_map,
        edge_type_map,
        other_node_types,
        other_edge_types,
        location_fields: location_fields.len(),
        location_offsets,
        trace_function_fields,
        trace_function_offsets,
        trace_node_values: trace_node_fields.len() - 1,
        trace_node_offsets,
        declared_nodes: raw.node_count.max(0.0) as u64,
        declared_edges: raw.edge_count.max(0.0) as u64,
    };
    let header = Header {
        node_count: layout.declared_nodes,
        edge_count: layout.declared_edges,
        extra_native_bytes: raw.extra_native_bytes.unwrap_or(0.0).max(0.0) as u64,
    };
    Ok((layout, header))
}
