//! The `nodes` and `edges` arrays straight into the snapshot's columns: each value goes to the column of its
//! field at its record's index, from two scanner threads at once (see `target.rs`). The columns are made the
//! declared size up front, in memory the system hands out zeroed, so a file whose counts are right never moves
//! them; the exact path makes room for files whose counts are wrong.

use super::meta::{EdgeRole, Layout, NodeRole};
use super::target::{Piece, Target};
use super::to_u32;
use crate::error::ParseError;
use crate::snapshot::{HeapSnapshot, NodeIndex, NARROW_NAME_ASIDE};

/// A piece's share of one column: its record `k` (counted from the record it starts in) is `slots[k - skip]`,
/// `skip` being 1 when that first record's field belongs to the piece before.
struct Slots<'a, T> {
    slots: &'a mut [T],
    skip: usize,
}

impl<T> Slots<'_, T> {
    /// The slots of records `k..k + records`, when the piece has them all.
    #[inline(always)]
    fn range(&mut self, k: usize, records: usize) -> Option<&mut [T]> {
        let first = k.wrapping_sub(self.skip);
        self.slots.get_mut(first..first.checked_add(records)?)
    }

    /// The slot of `record`, if the piece has it.
    #[inline(always)]
    fn slot(&mut self, record: usize) -> Option<&mut T> {
        self.slots.get_mut(record.wrapping_sub(self.skip))
    }

    /// Sets the slot of `record`; says whether the piece has the slot.
    #[inline(always)]
    fn set(&mut self, record: usize, value: T) -> bool {
        let Some(slot) = self.slot(record) else { return false };
        *slot = value;
        true
    }

    /// [`Slots::set`], except that a default `value` is not written: the slot holds it already (the columns start
    /// out zeroed, and a page never written is never mapped).
    #[inline(always)]
    fn set_unless_default(&mut self, record: usize, value: T) -> bool
    where
        T: Default + PartialEq,
    {
        let Some(slot) = self.slot(record) else { return false };
        if value != T::default() {
            *slot = value;
        }
        true
    }
}

/// Splits the column of field `field` (`None`: the file has no such field) between the pieces starting at
/// array indices `first` and `second`, records being `stride` values long.
fn split<T>(
    column: &mut [T],
    field: Option<usize>,
    stride: usize,
    first: u64,
    second: Option<u64>,
) -> (Slots<'_, T>, Option<Slots<'_, T>>) {
    let Some(field) = field else {
        return (Slots { slots: &mut [], skip: 0 }, second.map(|_| Slots { slots: &mut [], skip: 0 }));
    };
    let stride = stride as u64;
    let len = column.len();
    let skip = |index: u64| usize::from((field as u64) < index % stride);
    // How many of this field's slots come before array index `index`.
    let begin = |index: u64| ((index / stride) as usize).saturating_add(skip(index)).min(len);
    let (_, rest) = column.split_at_mut(begin(first));
    match second {
        None => (Slots { slots: rest, skip: skip(first) }, None),
        Some(second) => {
            let (a, b) = rest.split_at_mut(begin(second) - begin(first));
            (Slots { slots: a, skip: skip(first) }, Some(Slots { slots: b, skip: skip(second) }))
        }
    }
}

fn position<R: PartialEq>(roles: &[R], role: R) -> Option<usize> {
    roles.iter().position(|r| *r == role)
}

/// Grows `column` to `len` zeroed slots when it is shorter.
fn grow<T: Clone + Default>(column: &mut Vec<T>, len: usize) {
    if column.len() < len {
        column.resize(len, T::default());
    }
}

/// Cuts `column` to `len`, giving the memory back when most of it was never used (a declared count far too
/// large); a column the size it was declared is not copied.
fn cut<T>(column: &mut Vec<T>, len: usize) {
    column.truncate(len);
    if column.capacity() / 2 > len {
        column.shrink_to_fit();
    }
}

/// How many records an array of `count` numbers holds, `stride` to a record; `what` names the array and its fields
/// for the error.
fn whole_records(count: u64, stride: usize, what: [&str; 3]) -> Result<usize, ParseError> {
    let [array, fields, meta] = what;
    if !count.is_multiple_of(stride as u64) {
        return Err(ParseError::Inconsistent(format!(
            "the `{array}` array holds {count} numbers, which is not a multiple of the {stride} {fields} in meta.{meta}"
        )));
    }
    Ok((count / stride as u64) as usize)
}

/// Where a piece is: the field of the next value, its record (counted from the one the piece starts in), and how
/// many values it stored.
struct Position {
    field: usize,
    record: usize,
    count: u64,
    stride: usize,
}

impl Position {
    fn at(index: u64, stride: usize) -> Self {
        Position { field: (index % stride as u64) as usize, record: 0, count: 0, stride }
    }

    /// How many values are left before the next record starts (0 at a record's start).
    fn to_record_start(&self) -> usize {
        (self.stride - self.field) % self.stride
    }

    /// Moves past a value that was stored; says whether it was.
    #[inline(always)]
    fn advance(&mut self, stored: bool) -> bool {
        if stored {
            self.field += 1;
            if self.field == self.stride {
                self.field = 0;
                self.record += 1;
            }
            self.count += 1;
        }
        stored
    }
}

pub(crate) struct NodeColumns<'a> {
    roles: Vec<NodeRole>,
    type_map: Vec<u8>,
    snap: &'a mut HeapSnapshot,
    /// Whether a trace node id was not 0 (else the column is dropped).
    traced: bool,
}

impl<'a> NodeColumns<'a> {
    /// Sets up the node columns of `snap`, the size `meta` declares.
    pub(crate) fn new(layout: &Layout, snap: &'a mut HeapSnapshot) -> Self {
        let records = (layout.declared_nodes as usize).min(1 << 28);
        let trace = layout.node_roles.contains(&NodeRole::TraceNodeId);
        let detached = layout.node_roles.contains(&NodeRole::Detachedness);
        snap.node_type = vec![0; records];
        snap.node_name = vec![0; records];
        snap.node_id = vec![0; records];
        snap.self_sizes = crate::sizes::CompactSizes::zeroed(records);
        // Edge counts while parsing; they become first-edge offsets in `finish`, which adds the total at the end.
        snap.first_edge = vec![0; records + 1];
        snap.first_edge.truncate(records);
        snap.node_trace_id = if trace { vec![0; records] } else { Vec::new() };
        snap.node_detachedness = if detached { vec![0; records] } else { Vec::new() };
        NodeColumns { roles: layout.node_roles.clone(), type_map: layout.node_type_map.clone(), snap, traced: false }
    }

    fn grow_to(&mut self, records: usize) {
        let len = records.max(2 * self.snap.node_type.len());
        let snap = &mut *self.snap;
        grow(&mut snap.node_type, len);
        grow(&mut snap.node_name, len);
        grow(&mut snap.node_id, len);
        grow(&mut snap.first_edge, len);
        if snap.self_sizes.len() < len {
            snap.self_sizes.resize(len);
        }
        if self.roles.contains(&NodeRole::TraceNodeId) {
            grow(&mut snap.node_trace_id, len);
        }
        if self.roles.contains(&NodeRole::Detachedness) {
            grow(&mut snap.node_detachedness, len);
        }
    }

    /// Checks and completes the columns once the array held `count` numbers.
    pub(crate) fn finish(self, count: u64) -> Result<(), ParseError> {
        let records = whole_records(count, self.roles.len(), ["nodes", "node fields", "node_fields"])?;
        let snap = &mut *self.snap;
        cut(&mut snap.node_type, records);
        cut(&mut snap.node_name, records);
        cut(&mut snap.node_id, records);
        cut(&mut snap.first_edge, records);
        snap.self_sizes.cut(records);
        cut(&mut snap.node_trace_id, records);
        cut(&mut snap.node_detachedness, records);
        let mut total: u64 = 0;
        for slot in snap.first_edge.iter_mut() {
            let edges = *slot as u64;
            *slot = total as u32;
            total += edges;
        }
        if total > u32::MAX as u64 {
            return Err(ParseError::TooLarge(format!(
                "the nodes declare {total} edges; at most 2^32 - 1 are supported"
            )));
        }
        snap.first_edge.push(total as u32);
        if !self.traced {
            snap.node_trace_id = Vec::new();
        }
        Ok(())
    }
}

pub(crate) struct NodePiece<'a> {
    roles: &'a [NodeRole],
    type_map: &'a [u8],
    first_record: usize,
    at: Position,
    slots: NodeSlots<'a>,
    done: NodesDone,
}

/// What a node piece found that the columns do not say.
#[derive(Default)]
pub(crate) struct NodesDone {
    /// Self sizes of 4 GiB and more.
    large_sizes: Vec<(NodeIndex, u64)>,
    /// Whether a trace node id was not 0.
    traced: bool,
}

/// A node piece's share of each column.
struct NodeSlots<'a> {
    types: Slots<'a, u8>,
    names: Slots<'a, u32>,
    ids: Slots<'a, u32>,
    sizes: Slots<'a, u32>,
    edge_counts: Slots<'a, u32>,
    trace_ids: Slots<'a, u32>,
    detachedness: Slots<'a, u8>,
}

/// The node fields of V8's snapshots since Node 20; before, the same without the last.
const V8_NODE_FIELDS: [NodeRole; 7] = [
    NodeRole::Type,
    NodeRole::Name,
    NodeRole::Id,
    NodeRole::SelfSize,
    NodeRole::EdgeCount,
    NodeRole::TraceNodeId,
    NodeRole::Detachedness,
];

impl NodePiece<'_> {
    /// Stores the whole records of V8's layout of `FIELDS` fields at the start of `values`, from the piece's
    /// current record on, up to the first with a value the value-at-a-time path must see (a self size of 4 GiB or
    /// more, or a value it refuses); returns how many records it stored.
    #[inline(always)]
    fn put_records<const FIELDS: usize>(&mut self, values: &[u64]) -> usize {
        let records = values.len() / FIELDS;
        let (k, slots) = (self.at.record, &mut self.slots);
        let columns = (
            slots.types.range(k, records),
            slots.names.range(k, records),
            slots.ids.range(k, records),
            slots.sizes.range(k, records),
            slots.edge_counts.range(k, records),
            slots.trace_ids.range(k, records),
        );
        let (Some(types), Some(names), Some(ids), Some(sizes), Some(edge_counts), Some(trace_ids)) = columns else {
            return 0;
        };
        let mut no_detachedness = [];
        let detachedness = match FIELDS {
            7 => match slots.detachedness.range(k, records) {
                Some(column) => column,
                None => return 0,
            },
            _ => &mut no_detachedness[..],
        };
        let small = |v: u64| u32::try_from(v).ok();
        for (r, record) in values.chunks_exact(FIELDS).enumerate() {
            let code = self.type_map.get(record[0] as usize);
            let size = small(record[3]).filter(|&size| size != u32::MAX);
            let fields = (code, small(record[1]), small(record[2]), size, small(record[4]), small(record[5]));
            let (Some(&code), Some(name), Some(id), Some(size), Some(edge_count), Some(trace_id)) = fields else {
                return r;
            };
            (types[r], names[r], ids[r], sizes[r], edge_counts[r]) = (code, name, id, size, edge_count);
            // Without allocation tracking every trace node id is 0: its column's pages are then never written
            // (nor mapped), and it is dropped at the end.
            if trace_id != 0 {
                trace_ids[r] = trace_id;
                self.done.traced = true;
            }
            if FIELDS == 7 {
                detachedness[r] = record[6].min(255) as u8;
            }
        }
        records
    }
}

impl Piece for NodePiece<'_> {
    type Done = NodesDone;

    #[inline(always)]
    fn put(&mut self, v: u64) -> bool {
        let (k, slots) = (self.at.record, &mut self.slots);
        let stored = match self.roles[self.at.field] {
            NodeRole::Type => match self.type_map.get(v as usize) {
                Some(&code) => slots.types.set(k, code),
                None => false,
            },
            NodeRole::Name => u32::try_from(v).is_ok_and(|v| slots.names.set(k, v)),
            NodeRole::Id => u32::try_from(v).is_ok_and(|v| slots.ids.set(k, v)),
            NodeRole::SelfSize => match u32::try_from(v) {
                Ok(small) if small != u32::MAX => slots.sizes.set(k, small),
                _ => {
                    let stored = slots.sizes.set(k, u32::MAX);
                    if stored {
                        self.done.large_sizes.push(((self.first_record + k) as NodeIndex, v));
                    }
                    stored
                }
            },
            NodeRole::EdgeCount => u32::try_from(v).is_ok_and(|v| slots.edge_counts.set(k, v)),
            NodeRole::TraceNodeId => u32::try_from(v).is_ok_and(|v| {
                self.done.traced |= v != 0;
                slots.trace_ids.set_unless_default(k, v)
            }),
            NodeRole::Detachedness => slots.detachedness.set(k, v.min(255) as u8),
            NodeRole::Ignored => true,
        };
        self.at.advance(stored)
    }

    /// Whole records of V8's layouts (Node 20 and later, and before: without `detachedness`) at a time, without a
    /// branch per field.
    #[inline(always)]
    fn put_all(&mut self, values: &[u64]) -> usize {
        if *self.roles != V8_NODE_FIELDS && *self.roles != V8_NODE_FIELDS[..6] {
            return self.put_each(values);
        }
        let head = self.at.to_record_start().min(values.len());
        let mut stored = self.put_each(&values[..head]);
        if stored < head {
            return stored;
        }
        let done = if self.roles.len() == 7 {
            self.put_records::<7>(&values[stored..])
        } else {
            self.put_records::<6>(&values[stored..])
        };
        self.at.record += done;
        self.at.count += (done * self.roles.len()) as u64;
        stored += done * self.roles.len();
        stored + self.put_each(&values[stored..])
    }

    fn done(self) -> (u64, Self::Done) {
        (self.at.count, self.done)
    }
}

impl Target for NodeColumns<'_> {
    type Done = NodesDone;
    type Piece<'p>
        = NodePiece<'p>
    where
        Self: 'p;

    fn pieces(&mut self, first: u64, second: Option<u64>, _most: u64) -> (NodePiece<'_>, Option<NodePiece<'_>>) {
        let roles = &self.roles[..];
        let stride = roles.len();
        let at = |role| position(roles, role);
        let HeapSnapshot {
            node_type,
            node_name,
            node_id,
            self_sizes,
            first_edge,
            node_trace_id,
            node_detachedness,
            ..
        } = &mut *self.snap;
        let (types, types_b) = split(node_type, at(NodeRole::Type), stride, first, second);
        let (names, names_b) = split(node_name, at(NodeRole::Name), stride, first, second);
        let (ids, ids_b) = split(node_id, at(NodeRole::Id), stride, first, second);
        let (sizes, sizes_b) = split(self_sizes.slots_mut(), at(NodeRole::SelfSize), stride, first, second);
        let (edge_counts, edge_counts_b) = split(first_edge, at(NodeRole::EdgeCount), stride, first, second);
        let (trace_ids, trace_ids_b) = split(node_trace_id, at(NodeRole::TraceNodeId), stride, first, second);
        let (detachedness, detachedness_b) =
            split(node_detachedness, at(NodeRole::Detachedness), stride, first, second);
        let type_map = &self.type_map[..];
        let piece = |index: u64, slots| NodePiece {
            roles,
            type_map,
            first_record: (index / stride as u64) as usize,
            at: Position::at(index, stride),
            slots,
            done: NodesDone::default(),
        };
        let a = piece(first, NodeSlots { types, names, ids, sizes, edge_counts, trace_ids, detachedness });
        let b = second.map(|second| {
            let slots = NodeSlots {
                types: types_b.expect("split in two"),
                names: names_b.expect("split in two"),
                ids: ids_b.expect("split in two"),
                sizes: sizes_b.expect("split in two"),
                edge_counts: edge_counts_b.expect("split in two"),
                trace_ids: trace_ids_b.expect("split in two"),
                detachedness: detachedness_b.expect("split in two"),
            };
            piece(second, slots)
        });
        (a, b)
    }

    fn expected_len(&self) -> Option<u64> {
        Some((self.snap.node_type.len() * self.roles.len()) as u64)
    }

    fn commit(&mut self, done: Self::Done) {
        for (node, size) in done.large_sizes {
            self.snap.self_sizes.keep_large(node, size);
        }
        self.traced |= done.traced;
    }

    fn put_exact(&mut self, index: u64, v: u64) -> Result<(), String> {
        let stride = self.roles.len() as u64;
        let record = (index / stride) as usize;
        if record >= self.snap.node_type.len() {
            self.grow_to(record + 1);
        }
        let snap = &mut *self.snap;
        match self.roles[(index % stride) as usize] {
            NodeRole::Type => {
                snap.node_type[record] = self.type_map.get(v as usize).copied().ok_or_else(|| {
                    format!("node {record} has type {v}, but meta.node_types lists only {}", self.type_map.len())
                })?;
            }
            NodeRole::Name => snap.node_name[record] = to_u32(v, "node name")?,
            NodeRole::Id => snap.node_id[record] = to_u32(v, "node id")?,
            NodeRole::SelfSize => snap.self_sizes.set(record as NodeIndex, v),
            NodeRole::EdgeCount => {
                snap.first_edge[record] = u32::try_from(v)
                    .map_err(|_| format!("node {record} has {v} edges; at most 2^32 - 1 are supported"))?;
            }
            NodeRole::TraceNodeId => {
                snap.node_trace_id[record] = to_u32(v, "trace_node_id")?;
                self.traced |= v != 0;
            }
            NodeRole::Detachedness => snap.node_detachedness[record] = v.min(255) as u8,
            NodeRole::Ignored => {}
        }
        Ok(())
    }
}

/// The edge columns: types into `types` (the parser packs them into the name column once every edge is read),
/// names and targets into the snapshot.
pub(crate) struct EdgeColumns<'a> {
    roles: Vec<EdgeRole>,
    type_map: Vec<u8>,
    node_stride: ExactDivisor,
    done: EdgesDone,
    types: &'a mut Vec<u8>,
    snap: &'a mut HeapSnapshot,
}

/// What the edge columns found beyond the values in place.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EdgesDone {
    /// The largest target node.
    pub(crate) max_target: u64,
    /// How many names are too large for a narrow entry: counted as they are read, for the packing to choose its
    /// layout without a pass of its own over the names.
    pub(crate) long_names: u64,
}

impl EdgesDone {
    fn add(&mut self, other: EdgesDone) {
        self.max_target = self.max_target.max(other.max_target);
        self.long_names += other.long_names;
    }
}

impl<'a> EdgeColumns<'a> {
    /// Sets up the edge columns, the size `meta` declares.
    pub(crate) fn new(layout: &Layout, types: &'a mut Vec<u8>, snap: &'a mut HeapSnapshot) -> Self {
        let records = (layout.declared_edges as usize).min(u32::MAX as usize);
        *types = vec![0; records];
        snap.edge_type_and_name = vec![0; records];
        snap.edge_to = vec![0; records];
        EdgeColumns {
            roles: layout.edge_roles.clone(),
            type_map: layout.edge_type_map.clone(),
            node_stride: ExactDivisor::new(layout.node_roles.len() as u64),
            done: EdgesDone::default(),
            types,
            snap,
        }
    }

    /// Checks and completes the columns once the array held `count` numbers; returns the largest target node seen
    /// (for the range check once the node count is known) and the count of long names.
    pub(crate) fn finish(self, count: u64) -> Result<EdgesDone, ParseError> {
        let records = whole_records(count, self.roles.len(), ["edges", "edge fields", "edge_fields"])?;
        cut(self.types, records);
        cut(&mut self.snap.edge_type_and_name, records);
        cut(&mut self.snap.edge_to, records);
        Ok(self.done)
    }
}

/// Division by a number known only at run time, for values that must be its multiples: one multiplication
/// instead of a hardware divide (tens of cycles, on the path of every edge). For an odd divisor `d`, multiplying
/// by its inverse modulo 2^64 maps the multiples of `d` one to one onto `0..=u64::MAX / d` and every other value
/// above it; an even divisor's factors of two are checked by rotating the low bits they must have clear into
/// the top (Granlund and Montgomery; Hacker's Delight 10-17).
#[derive(Clone, Copy, Debug)]
pub(super) struct ExactDivisor {
    divisor: u64,
    inverse: u64,
    twos: u32,
    max_quotient: u64,
}

impl ExactDivisor {
    pub(super) fn new(divisor: u64) -> Self {
        assert!(divisor > 0, "a node record has at least the five required fields");
        let twos = divisor.trailing_zeros();
        let odd = divisor >> twos;
        // Newton's iteration doubles the correct low bits each step: odd * odd ≡ 1 (mod 8) gives three.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        ExactDivisor { divisor, inverse, twos, max_quotient: u64::MAX / divisor }
    }

    pub(super) fn divisor(self) -> u64 {
        self.divisor
    }

    /// `value / divisor` when the division leaves no remainder.
    #[inline(always)]
    pub(super) fn quotient(self, value: u64) -> Option<u64> {
        let q = value.wrapping_mul(self.inverse).rotate_right(self.twos);
        (q <= self.max_quotient).then_some(q)
    }
}

pub(crate) struct EdgePiece<'a> {
    roles: &'a [EdgeRole],
    type_map: &'a [u8],
    node_stride: ExactDivisor,
    at: Position,
    done: EdgesDone,
    types: Slots<'a, u8>,
    names: Slots<'a, u32>,
    targets: Slots<'a, u32>,
}

impl Piece for EdgePiece<'_> {
    type Done = EdgesDone;

    #[inline(always)]
    fn put(&mut self, v: u64) -> bool {
        let k = self.at.record;
        let stored = match self.roles[self.at.field] {
            EdgeRole::Type => match self.type_map.get(v as usize) {
                Some(&code) => self.types.set(k, code),
                None => false,
            },
            EdgeRole::NameOrIndex => u32::try_from(v).is_ok_and(|v| {
                let stored = self.names.set(k, v);
                self.done.long_names += u64::from(stored && v >= NARROW_NAME_ASIDE);
                stored
            }),
            EdgeRole::ToNode => match self.node_stride.quotient(v) {
                Some(node) if node <= u32::MAX as u64 => {
                    self.done.max_target = self.done.max_target.max(node);
                    self.targets.set(k, node as u32)
                }
                _ => false,
            },
            EdgeRole::Ignored => true,
        };
        self.at.advance(stored)
    }

    /// Whole records of V8's layout (type, name or index, target) at a time, without a branch per field.
    #[inline(always)]
    fn put_all(&mut self, values: &[u64]) -> usize {
        if self.roles != [EdgeRole::Type, EdgeRole::NameOrIndex, EdgeRole::ToNode] {
            return self.put_each(values);
        }
        let head = self.at.to_record_start().min(values.len());
        let mut stored = self.put_each(&values[..head]);
        if stored < head {
            return stored;
        }
        let records = (values.len() - stored) / 3;
        let k = self.at.record;
        let (types, names, targets) =
            (self.types.range(k, records), self.names.range(k, records), self.targets.range(k, records));
        if let (Some(types), Some(names), Some(targets)) = (types, names, targets) {
            let mut done = 0;
            for (((record, t), n), to) in values[stored..].chunks_exact(3).zip(types).zip(names).zip(targets) {
                let code = self.type_map.get(record[0] as usize);
                let target = self.node_stride.quotient(record[2]).filter(|&q| q <= u32::MAX as u64);
                let (Some(&code), Ok(name), Some(target)) = (code, u32::try_from(record[1]), target) else {
                    // The value-at-a-time path below refuses it, at its own index.
                    break;
                };
                (*t, *n, *to) = (code, name, target as u32);
                self.done.max_target = self.done.max_target.max(target);
                self.done.long_names += u64::from(name >= NARROW_NAME_ASIDE);
                done += 1;
            }
            self.at.record += done;
            self.at.count += 3 * done as u64;
            stored += 3 * done;
        }
        stored + self.put_each(&values[stored..])
    }

    fn done(self) -> (u64, EdgesDone) {
        (self.at.count, self.done)
    }
}

impl Target for EdgeColumns<'_> {
    type Done = EdgesDone;
    type Piece<'p>
        = EdgePiece<'p>
    where
        Self: 'p;

    fn pieces(&mut self, first: u64, second: Option<u64>, _most: u64) -> (EdgePiece<'_>, Option<EdgePiece<'_>>) {
        let roles = &self.roles[..];
        let stride = roles.len();
        let at = |role| position(roles, role);
        let HeapSnapshot { edge_type_and_name, edge_to, .. } = &mut *self.snap;
        let (types, types_b) = split(self.types, at(EdgeRole::Type), stride, first, second);
        let (names, names_b) = split(edge_type_and_name, at(EdgeRole::NameOrIndex), stride, first, second);
        let (targets, targets_b) = split(edge_to, at(EdgeRole::ToNode), stride, first, second);
        let (type_map, node_stride) = (&self.type_map[..], self.node_stride);
        let piece = |index: u64, types, names, targets| EdgePiece {
            roles,
            type_map,
            node_stride,
            at: Position::at(index, stride),
            done: EdgesDone::default(),
            types,
            names,
            targets,
        };
        let b = second.map(|second| {
            piece(
                second,
                types_b.expect("split in two"),
                names_b.expect("split in two"),
                targets_b.expect("split in two"),
            )
        });
        (piece(first, types, names, targets), b)
    }

    fn expected_len(&self) -> Option<u64> {
        Some((self.snap.edge_to.len() * self.roles.len()) as u64)
    }

    fn commit(&mut self, done: EdgesDone) {
        self.done.add(done);
    }

    fn put_exact(&mut self, index: u64, v: u64) -> Result<(), String> {
        let stride = self.roles.len() as u64;
        let record = (index / stride) as usize;
        let snap = &mut *self.snap;
        if record >= snap.edge_to.len() {
            let len = (record + 1).max(2 * snap.edge_to.len());
            grow(self.types, len);
            grow(&mut snap.edge_type_and_name, len);
            grow(&mut snap.edge_to, len);
        }
        match self.roles[(index % stride) as usize] {
            EdgeRole::Type => {
                self.types[record] = self.type_map.get(v as usize).copied().ok_or_else(|| {
                    format!("edge {record} has type {v}, but meta.edge_types lists only {}", self.type_map.len())
                })?;
            }
            EdgeRole::NameOrIndex => {
                let name = to_u32(v, "edge name_or_index")?;
                snap.edge_type_and_name[record] = name;
                self.done.long_names += u64::from(name >= NARROW_NAME_ASIDE);
            }
            EdgeRole::ToNode => {
                let node = self.node_stride.quotient(v).ok_or_else(|| {
                    let stride = self.node_stride.divisor();
                    format!("edge {record}: to_node {v} is not a multiple of the node field count {stride}")
                })?;
                snap.edge_to[record] = to_u32(node, "edge target")?;
                self.done.max_target = self.done.max_target.max(node);
            }
            EdgeRole::Ignored => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exact_division_by_multiplication_agrees_with_division() {
        use super::super::lexer::agreement::xorshift;
        use super::ExactDivisor;
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for divisor in (1..=64).chain([1000, 1 << 20, 3 << 40, u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let exact = ExactDivisor::new(divisor);
            let near = |q: u64| [q.wrapping_mul(divisor), q.wrapping_mul(divisor).wrapping_add(1)];
            for _ in 0..2_000 {
                seed = xorshift(seed);
                for value in [seed, seed >> 32, seed % 100_000_000].into_iter().chain(near(seed >> 40)) {
                    let expected = (value % divisor == 0).then_some(value / divisor);
                    assert_eq!(exact.quotient(value), expected, "{value} / {divisor}");
                }
            }
            for value in [0, 1, divisor - 1, divisor, u64::MAX - u64::MAX % divisor, u64::MAX] {
                let expected = (value % divisor == 0).then_some(value / divisor);
                assert_eq!(exact.quotient(value), expected, "{value} / {divisor}");
            }
        }
    }

    use super::super::target::{Piece, Target};
    use super::{EdgeColumns, EdgesDone, NodeColumns};
    use crate::snapshot::HeapSnapshot;

    /// Hands `values` to `target` as the lexer may: pieces of any length, two at a time, some cut short, and the
    /// exact path in between. `seed` picks the lengths.
    fn feed<T: Target>(target: &mut T, values: &[u64], mut seed: u64) -> u64 {
        let mut next = 0usize;
        while next < values.len() {
            seed = super::super::lexer::agreement::xorshift(seed);
            let left = values.len() - next;
            match seed % 4 {
                0 => {
                    target.put_exact(next as u64, values[next]).expect("a good value");
                    next += 1;
                }
                mode => {
                    let a_len = 1 + (seed >> 8) as usize % left;
                    let b_len = (seed >> 24) as usize % (left - a_len + 1);
                    let second = (mode != 1).then_some((next + a_len) as u64);
                    let (mut a, b) = target.pieces(next as u64, second, (a_len + b_len) as u64);
                    // Mode 3: the first piece stops one short, so the second one's values are dropped. A piece
                    // stops at the first value it has no room for, as the scanner does.
                    let a_stop = if mode == 3 { a_len - 1 } else { a_len };
                    let a_through = values[next..next + a_stop].iter().all(|&v| a.put(v)) && mode != 3;
                    let b_done = b.map(|mut b| {
                        values[next + a_len..next + a_len + b_len].iter().all(|&v| b.put(v));
                        b.done()
                    });
                    let (a_count, a_done) = a.done();
                    target.commit(a_done);
                    next += a_count as usize;
                    if let (Some((b_count, b_done)), true) = (b_done, a_through) {
                        target.commit(b_done);
                        next += b_count as usize;
                    }
                }
            }
        }
        values.len() as u64
    }

    /// Values may arrive one at a time or in pieces that start and end anywhere, inside a record too; the columns
    /// must come out the same.
    #[test]
    fn pieces_split_anywhere_give_the_same_columns() {
        let meta =
            br#"{"meta":{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],
            "node_types":[["hidden","object"],"string","number","number","number","number","number"],
            "edge_fields":["type","name_or_index","to_node"],
            "edge_types":[["context","element","property"],"string_or_number","node"]},"node_count":250,"edge_count":0}"#;
        let (layout, _) = super::super::meta::read_header(meta, 0).expect("meta");
        let count = 300u64;
        let nodes: Vec<u64> = (0..count)
            .flat_map(|n| [n % 2, n * 3, 2 * n + 1, if n % 70 == 7 { (1 << 33) + n } else { n * 16 }, 2, n % 5, n % 3])
            .collect();
        // One name in 50 too long for a narrow entry (`long` of them), counted by every piece and the exact path.
        let name = |e: u64| if e % 50 == 3 { (1 << 20) + e } else { e * 5 };
        let long = (0..2 * count).filter(|e| e % 50 == 3).count() as u64;
        let edges: Vec<u64> = (0..2 * count).flat_map(|e| [e % 3, name(e), (e * 7919 % count) * 7]).collect();
        let columns = |seed: Option<u64>| {
            let mut snap = HeapSnapshot::default();
            let mut target = NodeColumns::new(&layout, &mut snap);
            let n = match seed {
                Some(seed) => feed(&mut target, &nodes, seed),
                None => {
                    for (i, &v) in nodes.iter().enumerate() {
                        target.put_exact(i as u64, v).expect("a good value");
                    }
                    nodes.len() as u64
                }
            };
            target.finish(n).expect("nodes");
            let mut types = Vec::new();
            let mut target = EdgeColumns::new(&layout, &mut types, &mut snap);
            let n = feed(&mut target, &edges, seed.unwrap_or(1) ^ 0x5555);
            let done = target.finish(n).expect("edges");
            assert_eq!(done, EdgesDone { max_target: count - 1, long_names: long }, "largest target, long names");
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
                    &types,
                    &snap.edge_type_and_name,
                    &snap.edge_to
                )
            )
        };
        let exact = columns(None);
        assert!(exact.contains("8589934599"), "the large self size is kept");
        assert!(exact.contains(&format!(", {}]", 2 * count)), "first-edge offsets end at the edge count");
        for seed in 1..200 {
            assert_eq!(columns(Some(seed)), exact, "seed {seed}");
        }
    }
}
