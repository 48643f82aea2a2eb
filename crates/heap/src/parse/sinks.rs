//! Turn the flat `nodes` and `edges` number streams into columns, one value at a time.

use super::meta::{EdgeRole, Layout, NodeRole};
use super::to_u32;
use crate::error::ParseError;
use crate::snapshot::HeapSnapshot;

pub(crate) struct NodeSink<'a> {
    roles: Vec<NodeRole>,
    type_map: Vec<u8>,
    snap: &'a mut HeapSnapshot,
    field: usize,
    ordinal: u64,
    edge_total: u64,
}

impl<'a> NodeSink<'a> {
    pub(crate) fn new(layout: &Layout, snap: &'a mut HeapSnapshot) -> Self {
        let capacity = (layout.declared_nodes as usize).min(1 << 28);
        snap.node_type.reserve_exact(capacity);
        snap.node_name.reserve_exact(capacity);
        snap.node_id.reserve_exact(capacity);
        snap.self_sizes.reserve_exact(capacity);
        snap.first_edge.reserve_exact(capacity + 1);
        if layout.node_roles.contains(&NodeRole::TraceNodeId) {
            snap.node_trace_id.reserve_exact(capacity);
        }
        if layout.node_roles.contains(&NodeRole::Detachedness) {
            snap.node_detachedness.reserve_exact(capacity);
        }
        NodeSink {
            roles: layout.node_roles.clone(),
            type_map: layout.node_type_map.clone(),
            snap,
            field: 0,
            ordinal: 0,
            edge_total: 0,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, v: u64) -> Result<(), String> {
        let snap = &mut *self.snap;
        match self.roles[self.field] {
            NodeRole::Type => {
                let code = self.type_map.get(v as usize).copied().ok_or_else(|| {
                    format!(
                        "node {} has type {v}, but meta.node_types lists only {}",
                        self.ordinal,
                        self.type_map.len()
                    )
                })?;
                snap.node_type.push(code);
            }
            NodeRole::Name => snap.node_name.push(to_u32(v, "node name")?),
            NodeRole::Id => snap.node_id.push(to_u32(v, "node id")?),
            NodeRole::SelfSize => snap.self_sizes.push(v),
            NodeRole::EdgeCount => {
                let first =
                    u32::try_from(self.edge_total).map_err(|_| "more than 2^32 edges are not supported".to_string())?;
                snap.first_edge.push(first);
                self.edge_total += v;
            }
            NodeRole::TraceNodeId => snap.node_trace_id.push(to_u32(v, "trace_node_id")?),
            NodeRole::Detachedness => snap.node_detachedness.push(v.min(255) as u8),
            NodeRole::Ignored => {}
        }
        self.field += 1;
        if self.field == self.roles.len() {
            self.field = 0;
            self.ordinal += 1;
        }
        Ok(())
    }

    /// Takes a batch of values; whole records go through a fast path with fixed field positions.
    pub(crate) fn push_batch(&mut self, batch: &[u64]) -> Result<(), (usize, String)> {
        let stride = self.roles.len();
        let mut i = 0;
        while self.field != 0 && i < batch.len() {
            self.push(batch[i]).map_err(|m| (i, m))?;
            i += 1;
        }
        let find = |role| self.roles.iter().position(|r| *r == role);
        let (t, name, id, size, edges) = (
            find(NodeRole::Type).expect("meta checked"),
            find(NodeRole::Name).expect("meta checked"),
            find(NodeRole::Id).expect("meta checked"),
            find(NodeRole::SelfSize).expect("meta checked"),
            find(NodeRole::EdgeCount).expect("meta checked"),
        );
        let (trace, detached) = (find(NodeRole::TraceNodeId), find(NodeRole::Detachedness));
        let snap = &mut *self.snap;
        while batch.len() - i >= stride {
            let record = &batch[i..i + stride];
            let code = self.type_map.get(record[t] as usize).copied().ok_or_else(|| {
                (
                    i + t,
                    format!(
                        "node {} has type {}, but meta.node_types lists only {}",
                        self.ordinal,
                        record[t],
                        self.type_map.len()
                    ),
                )
            })?;
            snap.node_type.push(code);
            snap.node_name.push(to_u32(record[name], "node name").map_err(|m| (i + name, m))?);
            snap.node_id.push(to_u32(record[id], "node id").map_err(|m| (i + id, m))?);
            snap.self_sizes.push(record[size]);
            if self.edge_total > u32::MAX as u64 {
                return Err((i + edges, "more than 2^32 edges are not supported".to_string()));
            }
            snap.first_edge.push(self.edge_total as u32);
            self.edge_total += record[edges];
            if let Some(trace) = trace {
                snap.node_trace_id.push(to_u32(record[trace], "trace_node_id").map_err(|m| (i + trace, m))?);
            }
            if let Some(detached) = detached {
                snap.node_detachedness.push(record[detached].min(255) as u8);
            }
            self.ordinal += 1;
            i += stride;
        }
        while i < batch.len() {
            self.push(batch[i]).map_err(|m| (i, m))?;
            i += 1;
        }
        Ok(())
    }

    pub(crate) fn finish(self, count: u64) -> Result<(), ParseError> {
        let stride = self.roles.len() as u64;
        if !count.is_multiple_of(stride) {
            return Err(ParseError::Inconsistent(format!(
                "the `nodes` array holds {count} numbers, which is not a multiple of the {stride} node fields in meta.node_fields"
            )));
        }
        if self.edge_total > u32::MAX as u64 {
            return Err(ParseError::TooLarge(format!(
                "the nodes declare {} edges; at most 2^32 - 1 are supported",
                self.edge_total
            )));
        }
        self.snap.first_edge.push(self.edge_total as u32);
        if self.snap.node_trace_id.iter().all(|&t| t == 0) {
            self.snap.node_trace_id = Vec::new();
        }
        Ok(())
    }
}

pub(crate) struct EdgeSink<'a> {
    roles: Vec<EdgeRole>,
    type_map: Vec<u8>,
    node_stride: u64,
    snap: &'a mut HeapSnapshot,
    field: usize,
    ordinal: u64,
    max_target: u64,
}

impl<'a> EdgeSink<'a> {
    pub(crate) fn new(layout: &Layout, snap: &'a mut HeapSnapshot) -> Self {
        let capacity = (layout.declared_edges as usize).min(u32::MAX as usize);
        snap.edge_type.reserve_exact(capacity);
        snap.edge_name.reserve_exact(capacity);
        snap.edge_to.reserve_exact(capacity);
        EdgeSink {
            roles: layout.edge_roles.clone(),
            type_map: layout.edge_type_map.clone(),
            node_stride: layout.node_roles.len() as u64,
            snap,
            field: 0,
            ordinal: 0,
            max_target: 0,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, v: u64) -> Result<(), String> {
        let snap = &mut *self.snap;
        match self.roles[self.field] {
            EdgeRole::Type => {
                let code = self.type_map.get(v as usize).copied().ok_or_else(|| {
                    format!(
                        "edge {} has type {v}, but meta.edge_types lists only {}",
                        self.ordinal,
                        self.type_map.len()
                    )
                })?;
                snap.edge_type.push(code);
            }
            EdgeRole::NameOrIndex => snap.edge_name.push(to_u32(v, "edge name_or_index")?),
            EdgeRole::ToNode => {
                if !v.is_multiple_of(self.node_stride) {
                    return Err(format!(
                        "edge {}: to_node {v} is not a multiple of the node field count {}",
                        self.ordinal, self.node_stride
                    ));
                }
                let target = v / self.node_stride;
                self.max_target = self.max_target.max(target);
                snap.edge_to.push(to_u32(target, "edge target")?);
            }
            EdgeRole::Ignored => {}
        }
        self.field += 1;
        if self.field == self.roles.len() {
            self.field = 0;
            self.ordinal += 1;
        }
        Ok(())
    }

    /// Takes a batch of values; whole records go through a fast path with fixed field positions.
    pub(crate) fn push_batch(&mut self, batch: &[u64]) -> Result<(), (usize, String)> {
        let stride = self.roles.len();
        let mut i = 0;
        while self.field != 0 && i < batch.len() {
            self.push(batch[i]).map_err(|m| (i, m))?;
            i += 1;
        }
        let find = |role| self.roles.iter().position(|r| *r == role).expect("meta checked");
        let (t, name, to) = (find(EdgeRole::Type), find(EdgeRole::NameOrIndex), find(EdgeRole::ToNode));
        let snap = &mut *self.snap;
        let node_stride = self.node_stride;
        let mut max_target = self.max_target;
        while batch.len() - i >= stride {
            let record = &batch[i..i + stride];
            let code = self.type_map.get(record[t] as usize).copied().ok_or_else(|| {
                (
                    i + t,
                    format!(
                        "edge {} has type {}, but meta.edge_types lists only {}",
                        self.ordinal,
                        record[t],
                        self.type_map.len()
                    ),
                )
            })?;
            let target = record[to] / node_stride;
            if !record[to].is_multiple_of(node_stride) || target > u32::MAX as u64 {
                return Err((
                    i + to,
                    format!(
                        "edge {}: to_node {} is not a multiple of the node field count {node_stride}",
                        self.ordinal, record[to]
                    ),
                ));
            }
            snap.edge_type.push(code);
            snap.edge_name.push(to_u32(record[name], "edge name_or_index").map_err(|m| (i + name, m))?);
            snap.edge_to.push(target as u32);
            max_target = max_target.max(target);
            self.ordinal += 1;
            i += stride;
        }
        self.max_target = max_target;
        while i < batch.len() {
            self.push(batch[i]).map_err(|m| (i, m))?;
            i += 1;
        }
        Ok(())
    }

    /// Returns the largest target ordinal seen, for the range check once the node count is known.
    pub(crate) fn finish(self, count: u64) -> Result<u64, ParseError> {
        let stride = self.roles.len() as u64;
        if !count.is_multiple_of(stride) {
            return Err(ParseError::Inconsistent(format!(
                "the `edges` array holds {count} numbers, which is not a multiple of the {stride} edge fields in meta.edge_fields"
            )));
        }
        Ok(self.max_target)
    }
}

#[cfg(test)]
mod tests {
    use super::{EdgeSink, NodeSink};
    use crate::snapshot::HeapSnapshot;

    /// Batches may end anywhere, inside a record too; the columns must come out as with one value at a time.
    #[test]
    fn batches_split_anywhere_give_the_same_columns() {
        let meta =
            br#"{"meta":{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],
            "node_types":[["hidden","object"],"string","number","number","number","number","number"],
            "edge_fields":["type","name_or_index","to_node"],
            "edge_types":[["context","element","property"],"string_or_number","node"]},"node_count":0,"edge_count":0}"#;
        let (layout, _) = super::super::meta::read_header(meta, 0).expect("meta");
        let count = 300u64;
        let nodes: Vec<u64> = (0..count)
            .flat_map(|n| [n % 2, n * 3, 2 * n + 1, if n == 7 { 1 << 33 } else { n * 16 }, 2, n % 5, n % 3])
            .collect();
        let edges: Vec<u64> = (0..2 * count).flat_map(|e| [e % 3, e * 5, (e * 7919 % count) * 7]).collect();
        let columns = |batch: usize| {
            let mut snap = HeapSnapshot::default();
            let mut sink = NodeSink::new(&layout, &mut snap);
            for chunk in nodes.chunks(batch) {
                sink.push_batch(chunk).expect("nodes");
            }
            sink.finish(nodes.len() as u64).expect("node count");
            let mut sink = EdgeSink::new(&layout, &mut snap);
            for chunk in edges.chunks(batch) {
                sink.push_batch(chunk).expect("edges");
            }
            sink.finish(edges.len() as u64).expect("edge count");
            format!(
                "{:?}",
                (
                    &snap.node_type,
                    &snap.node_name,
                    &snap.node_id,
                    snap.self_sizes.to_vec(),
                    &snap.first_edge,
                    &snap.node_trace_id,
                    &snap.node_detachedness,
                    &snap.edge_type,
                    &snap.edge_name,
                    &snap.edge_to
                )
            )
        };
        let whole = columns(usize::MAX);
        assert!(whole.contains("8589934592"), "the large self size is kept");
        for batch in [1, 2, 3, 4, 6, 7, 8, 13, 64, 1000] {
            assert_eq!(columns(batch), whole, "batches of {batch}");
        }
    }
}
