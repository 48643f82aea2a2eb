//! DevTools' Statistics view: where the memory is, by kind.

use crate::sizes::CompactSizes;
use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Statistics {
    /// Everything: the root's retained size plus `extra_native_bytes`.
    pub total: u64,
    /// Native (embedder) memory, including ArrayBuffer backing stores.
    pub native: u64,
    /// ArrayBuffer backing stores ("system / JSArrayBufferData").
    pub typed_arrays: u64,
    /// The V8 heap: total minus native.
    pub v8_heap: u64,
    /// Compiled code, bytecode, SharedFunctionInfos, scripts.
    pub code: u64,
    /// Strings (flat, concatenated, sliced).
    pub strings: u64,
    /// JS arrays and their element stores.
    pub js_arrays: u64,
    /// V8-internal ("hidden") objects.
    pub system: u64,
    /// The rest of the V8 heap: ordinary JS objects, closures, contexts ...
    pub other_js_objects: u64,
    /// Native memory that is not an ArrayBuffer backing store.
    pub other_native: u64,
}

pub fn statistics(snapshot: &HeapSnapshot, shallow: &CompactSizes, total: u64) -> Statistics {
    let mut s = Statistics { total, native: snapshot.info.extra_native_bytes, ..Statistics::default() };
    let mut retainer_count: Option<Vec<u32>> = None;
    for node in 0..snapshot.node_count() as NodeIndex {
        let size = shallow.get(node);
        match snapshot.node_type(node) {
            NodeType::Hidden => s.system += size,
            NodeType::Native => {
                s.native += size;
                if snapshot.node_name(node) == "system / JSArrayBufferData" {
                    s.typed_arrays += size;
                }
            }
            NodeType::Code => s.code += size,
            NodeType::String | NodeType::ConsString | NodeType::SlicedString => s.strings += size,
            _ if snapshot.node_name(node) == "Array" => {
                let counts = retainer_count.get_or_insert_with(|| {
                    let mut counts = vec![0u32; snapshot.node_count()];
                    for &target in &snapshot.edge_to {
                        counts[target as usize] = counts[target as usize].saturating_add(1);
                    }
                    counts
                });
                s.js_arrays += size;
                // The element store counts with its array when nothing else points to it.
                for edge in snapshot.edges(node) {
                    if snapshot.edge_type(edge) == EdgeType::Internal
                        && snapshot.strings.get(snapshot.edge_name_or_index(edge)) == "elements"
                    {
                        let elements = snapshot.edge_target(edge);
                        if counts[elements as usize] == 1 {
                            s.js_arrays += shallow.get(elements);
                        }
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    s.v8_heap = s.total.saturating_sub(s.native);
    s.other_js_objects = s.v8_heap.saturating_sub(s.code + s.strings + s.js_arrays + s.system);
    s.other_native = s.native.saturating_sub(s.typed_arrays);
    s
}
