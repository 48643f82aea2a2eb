//! The parsed snapshot: nodes and edges as columns of plain integers (CSR adjacency), the strings arena,
//! and the optional sections (locations, allocation traces, samples).

use crate::sizes::CompactSizes;
use crate::strings::StringTable;
use rustc_hash::FxHashMap;

/// A node index (ordinal) in file order; the root is 0. V8 caps a snapshot at about 2^28 nodes.
pub type NodeIndex = u32;
/// Snapshots must have fewer nodes than this (V8 caps them near 2^28), so node numbers leave the top bit of a
/// `u32` free for flags.
pub const MAX_NODES: u64 = 1 << 31;
/// An edge index (ordinal) in file order.
pub type EdgeIndex = u32;

/// An edge's `name_or_index` takes the low bits of its entry in the edge column, its type the top four.
pub(crate) const EDGE_NAME_BITS: u32 = 28;
/// All name bits set: the name is this or larger and sits in the side map (element indices and string counts of
/// real snapshots stay far below).
pub(crate) const EDGE_NAME_ASIDE: u32 = (1 << EDGE_NAME_BITS) - 1;
/// Edge type codes must fit in the four top bits.
pub(crate) const MAX_EDGE_TYPE_CODE: u8 = 15;
/// In the narrow layout an edge takes three bytes: its type in the top four of 24 bits, its name below.
pub(crate) const NARROW_NAME_BITS: u32 = 20;
/// All narrow name bits set: the name is this or larger and sits in the side map.
pub(crate) const NARROW_NAME_ASIDE: u32 = (1 << NARROW_NAME_BITS) - 1;

/// Node types, in V8's canonical order. Files name their types in `meta`; they are mapped onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NodeType {
    Hidden = 0,
    Array = 1,
    String = 2,
    Object = 3,
    Code = 4,
    Closure = 5,
    RegExp = 6,
    Number = 7,
    Native = 8,
    Synthetic = 9,
    ConsString = 10,
    SlicedString = 11,
    Symbol = 12,
    BigInt = 13,
    ObjectShape = 14,
    /// A type this version of leakscope does not know; its name is kept in the snapshot.
    Other = 15,
}

pub(crate) const NODE_TYPE_NAMES: [&str; 15] = [
    "hidden",
    "array",
    "string",
    "object",
    "code",
    "closure",
    "regexp",
    "number",
    "native",
    "synthetic",
    "concatenated string",
    "sliced string",
    "symbol",
    "bigint",
    "object shape",
];

impl NodeType {
    pub(crate) fn from_code(code: u8) -> NodeType {
        match code {
            0 => NodeType::Hidden,
            1 => NodeType::Array,
            2 => NodeType::String,
            3 => NodeType::Object,
            4 => NodeType::Code,
            5 => NodeType::Closure,
            6 => NodeType::RegExp,
            7 => NodeType::Number,
            8 => NodeType::Native,
            9 => NodeType::Synthetic,
            10 => NodeType::ConsString,
            11 => NodeType::SlicedString,
            12 => NodeType::Symbol,
            13 => NodeType::BigInt,
            14 => NodeType::ObjectShape,
            _ => NodeType::Other,
        }
    }

    pub(crate) fn code_for_name(name: &str) -> Option<u8> {
        NODE_TYPE_NAMES.iter().position(|n| *n == name).map(|p| p as u8)
    }
}

/// Edge types, in V8's canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EdgeType {
    Context = 0,
    Element = 1,
    Property = 2,
    Internal = 3,
    Hidden = 4,
    Shortcut = 5,
    Weak = 6,
    /// A type this version of leakscope does not know. Treated as a strong internal reference.
    Other = 7,
}

pub(crate) const EDGE_TYPE_NAMES: [&str; 7] =
    ["context", "element", "property", "internal", "hidden", "shortcut", "weak"];

impl EdgeType {
    pub(crate) fn from_code(code: u8) -> EdgeType {
        match code {
            0 => EdgeType::Context,
            1 => EdgeType::Element,
            2 => EdgeType::Property,
            3 => EdgeType::Internal,
            4 => EdgeType::Hidden,
            5 => EdgeType::Shortcut,
            6 => EdgeType::Weak,
            _ => EdgeType::Other,
        }
    }

    pub(crate) fn code_for_name(name: &str) -> Option<u8> {
        EDGE_TYPE_NAMES.iter().position(|n| *n == name).map(|p| p as u8)
    }

    /// Element and hidden edges carry a number; the others an index into the strings table.
    pub fn has_string_name(self) -> bool {
        !matches!(self, EdgeType::Element | EdgeType::Hidden)
    }
}

/// Where a function was defined, or where an object's constructor was: `locations` section entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLocation {
    pub script_id: u32,
    /// 0-based, as V8 writes it.
    pub line: u32,
    /// 0-based, as V8 writes it.
    pub column: u32,
}

/// One `trace_function_infos` entry (allocation tracking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceFunction {
    pub function_id: u32,
    pub name: u32,
    pub script_name: u32,
    pub script_id: u32,
    /// 1-based; 0 = unknown.
    pub line: u32,
    /// 1-based; 0 = unknown.
    pub column: u32,
}

/// One node of the allocation call tree (`trace_tree`), flattened; `parent` is an index into the same list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceNode {
    pub id: u32,
    pub function_info_index: u32,
    pub count: u64,
    pub size: u64,
    pub parent: Option<u32>,
}

/// The allocation-tracking sections, present only in snapshots taken while tracking allocations.
#[derive(Debug, Clone, Default)]
pub struct AllocationTrace {
    pub functions: Vec<TraceFunction>,
    pub tree: Vec<TraceNode>,
    /// `(timestamp_us, last_assigned_id)` pairs.
    pub samples: Vec<(u64, u64)>,
}

/// Facts about the file itself.
#[derive(Debug, Clone, Default)]
pub struct SnapshotInfo {
    /// Number of node fields in `meta` (6 in older V8, 7 with `detachedness`).
    pub node_field_count: usize,
    pub node_fields: Vec<String>,
    /// `snapshot.node_count` as declared (the arrays are authoritative).
    pub declared_node_count: u64,
    pub declared_edge_count: u64,
    pub extra_native_bytes: u64,
    /// Top-level keys that were not recognised and were skipped.
    pub skipped_sections: Vec<String>,
    /// Bytes of (decompressed) snapshot text read.
    pub bytes_read: u64,
}

/// A parsed heap snapshot. Immutable after loading; analyses borrow it.
#[derive(Debug, Clone, Default)]
pub struct HeapSnapshot {
    pub(crate) node_type: Vec<u8>,
    pub(crate) node_name: Vec<u32>,
    pub(crate) node_id: Vec<u32>,
    /// Self sizes, four bytes per node (a few native nodes, such as array buffer backing stores, can pass 4 GiB).
    pub(crate) self_sizes: CompactSizes,
    /// `first_edge[i]..first_edge[i + 1]` are node `i`'s outgoing edges; length `node_count + 1`.
    pub(crate) first_edge: Vec<EdgeIndex>,
    /// Per-node `trace_node_id`, empty when the file has none or all are 0.
    pub(crate) node_trace_id: Vec<u32>,
    /// Per-node `detachedness`, empty when absent.
    pub(crate) node_detachedness: Vec<u8>,
    /// Per edge: type code in the top four bits, `name_or_index` below (see [`EDGE_NAME_BITS`]); one column
    /// for both saves a byte per edge. With `narrow_edge_names`, entries are 24 bits wide, packed end to end
    /// (entry `e` is bits `24 e ..` of the column read as one little-endian bit string; see [`NARROW_NAME_BITS`]).
    pub(crate) edge_type_and_name: Vec<u32>,
    /// Whether the column holds 24-bit entries: when nearly all names fit in 20 bits (string tables under a
    /// million entries, arrays under a million elements), which saves a byte per edge for the whole run.
    pub(crate) narrow_edge_names: bool,
    /// Names too large for their entry ([`EDGE_NAME_ASIDE`] or [`NARROW_NAME_ASIDE`] and more), by edge.
    pub(crate) large_edge_names: FxHashMap<EdgeIndex, u32>,
    pub(crate) edge_to: Vec<NodeIndex>,
    pub(crate) strings: StringTable,
    /// `(node, location)` sorted by node; at most one per node (a later entry wins, as in DevTools).
    pub(crate) locations: Vec<(NodeIndex, SourceLocation)>,
    pub(crate) trace: Option<AllocationTrace>,
    pub(crate) other_node_types: Vec<String>,
    pub(crate) other_edge_types: Vec<String>,
    pub(crate) info: SnapshotInfo,
}

impl HeapSnapshot {
    /// The snapshot's large arrays, for [`crate::release`].
    pub(crate) fn regions(&self) -> Vec<crate::pages::Region> {
        use crate::pages::Region;
        let (bytes, offsets) = self.strings.arrays();
        vec![
            Region::of(&self.node_type),
            Region::of(&self.node_name),
            Region::of(&self.node_id),
            Region::of(self.self_sizes.slots()),
            Region::of(&self.first_edge),
            Region::of(&self.node_trace_id),
            Region::of(&self.node_detachedness),
            Region::of(&self.edge_type_and_name),
            Region::of(&self.edge_to),
            Region::of(bytes),
            Region::of(offsets),
            Region::of(&self.locations),
        ]
    }

    pub fn node_count(&self) -> usize {
        self.node_type.len()
    }

    pub fn edge_count(&self) -> usize {
        self.edge_to.len()
    }

    pub fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    pub fn strings(&self) -> &StringTable {
        &self.strings
    }

    /// The root node (V8 always writes it first).
    pub fn root(&self) -> NodeIndex {
        0
    }

    #[inline]
    pub fn node_type(&self, node: NodeIndex) -> NodeType {
        NodeType::from_code(self.node_type[node as usize])
    }

    /// The type's name as the file spells it (`"object"`, `"concatenated string"`, ...).
    pub fn node_type_name(&self, node: NodeIndex) -> &str {
        let code = self.node_type[node as usize] as usize;
        NODE_TYPE_NAMES
            .get(code)
            .copied()
            .or_else(|| self.other_node_types.get(code - NODE_TYPE_NAMES.len()).map(|s| s.as_str()))
            .unwrap_or("unknown")
    }

    #[inline]
    pub fn node_name_index(&self, node: NodeIndex) -> u32 {
        self.node_name[node as usize]
    }

    /// The node's name as written in the file (constructor name, string content, function name, ...).
    #[inline]
    pub fn node_name(&self, node: NodeIndex) -> &str {
        self.strings.get(self.node_name[node as usize])
    }

    #[inline]
    pub fn node_id(&self, node: NodeIndex) -> u32 {
        self.node_id[node as usize]
    }

    /// The self size as written in the file (before DevTools' shallow-size reattribution).
    #[inline]
    pub fn raw_self_size(&self, node: NodeIndex) -> u64 {
        self.self_sizes.get(node)
    }

    /// Every node's self size from the file, in node order.
    pub fn raw_self_sizes(&self) -> Vec<u64> {
        self.self_sizes.to_vec()
    }

    pub fn trace_node_id(&self, node: NodeIndex) -> u32 {
        self.node_trace_id.get(node as usize).copied().unwrap_or(0)
    }

    pub fn detachedness(&self, node: NodeIndex) -> u8 {
        self.node_detachedness.get(node as usize).copied().unwrap_or(0)
    }

    #[inline]
    pub fn edges(&self, node: NodeIndex) -> std::ops::Range<EdgeIndex> {
        self.first_edge[node as usize]..self.first_edge[node as usize + 1]
    }

    #[inline]
    pub fn edge_type(&self, edge: EdgeIndex) -> EdgeType {
        EdgeType::from_code(self.edge_type_code(edge))
    }

    #[inline]
    pub(crate) fn edge_type_code(&self, edge: EdgeIndex) -> u8 {
        if self.narrow_edge_names {
            // The type is the top bits of the entry's third byte: one byte read.
            const _: () = assert!(NARROW_NAME_BITS >= 16, "a narrow entry's type lies in its third byte");
            #[cfg(target_endian = "little")]
            let code = self.narrow_bytes()[3 * edge as usize + 2] >> (NARROW_NAME_BITS - 16);
            #[cfg(not(target_endian = "little"))]
            let code = (self.narrow_entry(edge) >> NARROW_NAME_BITS) as u8;
            code
        } else {
            (self.edge_type_and_name[edge as usize] >> EDGE_NAME_BITS) as u8
        }
    }

    /// Asks for `edge`'s target and entry to be brought into the cache.
    #[inline(always)]
    pub(crate) fn prefetch_edge(&self, edge: usize) {
        crate::analysis::prefetch(&self.edge_to, edge);
        let word = if self.narrow_edge_names { edge * 3 / 4 } else { edge };
        crate::analysis::prefetch(&self.edge_type_and_name, word);
    }

    /// The narrow entries as bytes: entry `e` is bytes `3e..3e + 3`, least significant first (on a little-endian
    /// machine), and the padding word makes four bytes readable from any entry's start.
    #[cfg(target_endian = "little")]
    #[inline(always)]
    fn narrow_bytes(&self) -> &[u8] {
        let words = &self.edge_type_and_name;
        // SAFETY: any four bytes of a `u32` are valid `u8`s; the view covers exactly the words' memory.
        unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, words.len() * 4) }
    }

    /// The 24-bit entry of `edge` in the narrow layout.
    #[inline(always)]
    fn narrow_entry(&self, edge: EdgeIndex) -> u32 {
        #[cfg(target_endian = "little")]
        {
            // One unaligned read of the four bytes from the entry's start, where two words, shifted, took two.
            let at = 3 * edge as usize;
            let bytes: [u8; 4] = self.narrow_bytes()[at..at + 4].try_into().expect("four bytes");
            u32::from_le_bytes(bytes) & 0x00FF_FFFF
        }
        #[cfg(not(target_endian = "little"))]
        {
            let bit = edge as usize * 24;
            let word = bit / 32;
            let pair = self.edge_type_and_name[word] as u64 | (self.edge_type_and_name[word + 1] as u64) << 32;
            (pair >> (bit % 32)) as u32 & 0x00FF_FFFF
        }
    }

    pub fn edge_type_name(&self, edge: EdgeIndex) -> &str {
        let code = self.edge_type_code(edge) as usize;
        EDGE_TYPE_NAMES
            .get(code)
            .copied()
            .or_else(|| self.other_edge_types.get(code - EDGE_TYPE_NAMES.len()).map(|s| s.as_str()))
            .unwrap_or("unknown")
    }

    #[inline]
    pub fn edge_target(&self, edge: EdgeIndex) -> NodeIndex {
        self.edge_to[edge as usize]
    }

    /// The raw `name_or_index` field.
    #[inline]
    pub fn edge_name_or_index(&self, edge: EdgeIndex) -> u32 {
        let (name, aside) = if self.narrow_edge_names {
            (self.narrow_entry(edge) & NARROW_NAME_ASIDE, NARROW_NAME_ASIDE)
        } else {
            (self.edge_type_and_name[edge as usize] & EDGE_NAME_ASIDE, EDGE_NAME_ASIDE)
        };
        if name == aside {
            self.large_edge_names[&edge]
        } else {
            name
        }
    }

    /// The edge's name: the property/variable name, or the element/hidden index as text.
    pub fn edge_name(&self, edge: EdgeIndex) -> std::borrow::Cow<'_, str> {
        if self.edge_type(edge).has_string_name() {
            std::borrow::Cow::Borrowed(self.strings.get(self.edge_name_or_index(edge)))
        } else {
            std::borrow::Cow::Owned(self.edge_name_or_index(edge).to_string())
        }
    }

    /// The edge in DevTools' notation: `.prop`, `["a b"]`, `[3]`, `->ctxVar`, `{internal}`, `[[weak]]`.
    pub fn edge_label(&self, edge: EdgeIndex) -> String {
        let name = self.edge_name(edge);
        match self.edge_type(edge) {
            EdgeType::Context => format!("->{name}"),
            EdgeType::Element => format!("[{name}]"),
            EdgeType::Weak => format!("[[{name}]]"),
            EdgeType::Property | EdgeType::Shortcut => {
                if self.edge_type(edge) == EdgeType::Shortcut {
                    if let Ok(number) = name.parse::<i64>() {
                        return format!("[{number}]");
                    }
                }
                if name.contains(' ') {
                    format!("[\"{name}\"]")
                } else {
                    format!(".{name}")
                }
            }
            EdgeType::Internal | EdgeType::Hidden | EdgeType::Other => format!("{{{name}}}"),
        }
    }

    /// The `locations` entry of a node: constructor site for objects, definition site for closures.
    pub fn location(&self, node: NodeIndex) -> Option<SourceLocation> {
        self.locations.binary_search_by_key(&node, |(n, _)| *n).ok().map(|i| self.locations[i].1)
    }

    pub fn locations(&self) -> &[(NodeIndex, SourceLocation)] {
        &self.locations
    }

    pub fn allocation_trace(&self) -> Option<&AllocationTrace> {
        self.trace.as_ref()
    }

    /// Finds a node by its snapshot object id (linear scan; build an index for repeated lookups).
    pub fn find_by_id(&self, id: u32) -> Option<NodeIndex> {
        self.node_id.iter().position(|&x| x == id).map(|p| p as NodeIndex)
    }

    /// Heap memory held by the snapshot's columns.
    pub fn memory_bytes(&self) -> u64 {
        let n = self.node_type.capacity()
            + self.node_name.capacity() * 4
            + self.node_id.capacity() * 4
            + self.self_sizes.memory_bytes()
            + self.first_edge.capacity() * 4
            + self.node_trace_id.capacity() * 4
            + self.node_detachedness.capacity();
        let e =
            self.edge_type_and_name.capacity() * 4 + self.large_edge_names.capacity() * 8 + self.edge_to.capacity() * 4;
        n as u64 + e as u64 + self.strings.memory_bytes() + (self.locations.capacity() * 16) as u64
    }
}
