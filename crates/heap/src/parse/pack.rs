//! The edges' type and name columns packed into one, and the `locations` entries sorted, each on a thread of its
//! own while the parse reads the sections after them (the strings table above all, on one thread): the packing
//! needs only the edges, and checking their string names against the table waits until the end.

use super::meta::Layout;
use crate::error::ParseError;
use crate::snapshot::{
    EdgeIndex, EdgeType, HeapSnapshot, SourceLocation, EDGE_NAME_ASIDE, EDGE_NAME_BITS, NARROW_NAME_ASIDE,
    NARROW_NAME_BITS,
};
use crate::vectors::avx2_twin;

/// Work started on a thread of its own while the parse goes on: waited for when taken, or when dropped, so that
/// a parse that stops early leaves no thread behind.
pub(super) struct Background<T: Send + 'static>(Option<std::thread::JoinHandle<T>>);

impl<T: Send + 'static> Background<T> {
    pub(super) fn start(work: impl FnOnce() -> T + Send + 'static) -> Self {
        Background(Some(std::thread::spawn(work)))
    }

    pub(super) fn wait(mut self) -> T {
        let handle = self.0.take().expect("waited for once");
        handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl<T: Send + 'static> Drop for Background<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

/// The `locations` entries by node, or what is wrong with them.
pub(super) type Locations = Result<Vec<(u32, SourceLocation)>, ParseError>;

/// The edges' names with their types packed in, ready for the snapshot.
pub(super) struct PackedEdges {
    entries: Vec<u32>,
    /// Names too large for their entry, by edge.
    large: Vec<(EdgeIndex, u32)>,
    narrow: bool,
    /// The largest name of an edge whose type takes a string name (checked against the strings table at the end).
    max_string_name: Option<u32>,
}

/// Packs each edge's type code into its name entry: 24-bit entries packed end to end when at most one edge in 32
/// has a name of 2^20 - 1 or more (the side map then costs under half a byte per edge), else 32-bit ones. Names
/// too large for their entry go to the side map. `long_names` counts the names of 2^20 - 1 or more (the edge
/// columns count them as they are read).
pub(super) fn pack_edges(names: Vec<u32>, types: Vec<u8>, long_names: u64) -> PackedEdges {
    debug_assert_eq!(long_names, count_at_least(&names, NARROW_NAME_ASIDE), "the columns counted the long names");
    let narrow = long_names.saturating_mul(32) < names.len() as u64;
    pack_edges_as(names, types, narrow)
}

/// [`pack_edges`] in the layout given.
pub(super) fn pack_edges_as(mut entries: Vec<u32>, types: Vec<u8>, narrow: bool) -> PackedEdges {
    let (name_bits, aside) =
        if narrow { (NARROW_NAME_BITS, NARROW_NAME_ASIDE) } else { (EDGE_NAME_BITS, EDGE_NAME_ASIDE) };
    let mut large = Vec::new();
    let string_names = make_entries(&mut entries, &types, name_bits, aside, &mut large, narrow);
    if narrow {
        let out = pack_narrow_tail(&mut entries);
        // One word of padding: an entry is read as the two words it starts in.
        entries.truncate(out);
        entries.push(0);
        entries.shrink_to_fit();
    }
    PackedEdges { entries, large, narrow, max_string_name: string_names.max() }
}

/// How many of `names` are `at_least` or more (for the check, in tests, of the count the columns keep).
fn count_at_least(names: &[u32], at_least: u32) -> u64 {
    names.iter().map(|&name| u64::from(name >= at_least)).sum()
}

avx2_twin! {
    /// Replaces each name with its entry: the type code above the name, or above `aside` when the name is `aside`
    /// or more (it then goes to `large`). No branch per edge, so that the loop is vectorized. With `narrow`, each
    /// block's whole groups of four entries are packed into three words while the block is in the cache (see
    /// [`pack_narrow_tail`] for the rest): a second pass over the entries took 5 ms at 324 MiB.
    fn make_entries(
        entries: &mut [u32],
        types: &[u8],
        name_bits: u32,
        aside: u32,
        large: &mut Vec<(EdgeIndex, u32)>,
        narrow: bool,
    ) -> StringNames {
        let string_named: u32 = (0..16u8)
            .filter(|&code| EdgeType::from_code(code).has_string_name())
            .fold(0, |mask, code| mask | 1 << code);
        let mut seen = StringNames::default();
        // A block at a time, so that a block with a name to set aside is still in the cache when it is looked for,
        // and when it is packed.
        const BLOCK: usize = 1 << 12;
        const _: () = assert!(BLOCK.is_multiple_of(4), "a block holds whole groups of four entries");
        for first in (0..entries.len()).step_by(BLOCK) {
            let end = (first + BLOCK).min(entries.len());
            let block = &mut entries[first..end];
            if block.iter().fold(false, |any, &name| any | (name >= aside)) {
                let names = block.iter().enumerate().filter(|&(_, &name)| name >= aside);
                large.extend(names.map(|(i, &name)| ((first + i) as EdgeIndex, name)));
            }
            for (entry, &code) in block.iter_mut().zip(&types[first..end]) {
                let (code, name) = (u32::from(code), *entry);
                let named = (string_named >> (code & 15) & 1).wrapping_neg();
                seen.max = seen.max.max(name & named);
                seen.any |= named;
                *entry = code << name_bits | name.min(aside);
            }
            if narrow {
                pack_groups(entries, first / 4, end / 4);
            }
        }
        seen
    }
}

/// Packs groups `from..to` of four 24-bit entries into three words each, in place: group `g` (entries `4g..4g+4`)
/// goes to words `3g..3g+3`, which are read before (front to back, nothing is written at or past an entry not yet
/// read).
#[inline(always)]
fn pack_groups(entries: &mut [u32], from: usize, to: usize) {
    for g in from..to {
        let x: [u32; 4] = entries[4 * g..4 * g + 4].try_into().expect("four entries");
        let words: &mut [u32; 3] = (&mut entries[3 * g..3 * g + 3]).try_into().expect("three words");
        *words = [x[0] | x[1] << 24, x[1] >> 8 | x[2] << 16, x[2] >> 16 | x[3] << 8];
    }
}

/// Packs the last entries (fewer than four) after the groups [`make_entries`] packed; returns how many words the
/// packed entries take.
fn pack_narrow_tail(entries: &mut [u32]) -> usize {
    let groups = entries.len() / 4;
    let (mut pending, mut bits, mut out) = (0u64, 0u32, 3 * groups);
    for e in 4 * groups..entries.len() {
        pending |= (entries[e] as u64) << bits;
        bits += 24;
        if bits >= 32 {
            entries[out] = pending as u32;
            out += 1;
            pending >>= 32;
            bits -= 32;
        }
    }
    if bits > 0 {
        entries[out] = pending as u32;
        out += 1;
    }
    out
}

/// The largest name of an edge whose type takes a string name, if there is such an edge.
#[derive(Default)]
struct StringNames {
    max: u32,
    /// All ones once there is one.
    any: u32,
}

impl StringNames {
    fn max(&self) -> Option<u32> {
        (self.any != 0).then_some(self.max)
    }
}

impl PackedEdges {
    /// Puts the packed edges into `snap`; returns the largest name of an edge whose type takes a string name.
    pub(super) fn install(self, snap: &mut HeapSnapshot) -> Option<u32> {
        snap.edge_type_and_name = self.entries;
        snap.narrow_edge_names = self.narrow;
        snap.large_edge_names.extend(self.large);
        self.max_string_name
    }
}

/// Checks that the edges whose type takes a string name name one of the `string_count` strings (`max_string_name`:
/// the largest such name, from [`PackedEdges::install`]).
pub(super) fn check_string_names(
    snap: &HeapSnapshot,
    max_string_name: Option<u32>,
    string_count: u32,
) -> Result<(), ParseError> {
    if max_string_name.is_some_and(|name| name >= string_count) {
        let bad = (0..snap.edge_to.len() as EdgeIndex)
            .find(|&e| snap.edge_type(e).has_string_name() && snap.edge_name_or_index(e) >= string_count)
            .expect("an edge has that name");
        return Err(ParseError::Inconsistent(format!(
            "edge {bad} has name index {} but the strings table has only {string_count} entries",
            snap.edge_name_or_index(bad)
        )));
    }
    Ok(())
}

/// The `locations` entries as (node, location), by node, the last entry for a node kept (as DevTools' location
/// map does).
pub(super) fn source_locations(raw: &[u32], layout: &Layout, node_count: u64) -> Locations {
    let location_stride = layout.location_fields.max(1);
    let [obj, script, line, column] = layout.location_offsets;
    let node_stride = super::columns::ExactDivisor::new(layout.node_roles.len() as u64);
    let mut locations = Vec::with_capacity(raw.len() / location_stride);
    for (i, chunk) in raw.chunks_exact(location_stride).enumerate() {
        let object_index = chunk[obj];
        let Some(node) = node_stride.quotient(object_index as u64).filter(|&node| node < node_count) else {
            return Err(ParseError::Inconsistent(format!(
                "locations entry {i}: object_index {object_index} is not the offset of a node"
            )));
        };
        let location = SourceLocation { script_id: chunk[script], line: chunk[line], column: chunk[column] };
        locations.push((node as u32, location));
    }
    // Stable, so that the last of a node's entries stays last; it replaces the ones before it.
    let mut locations = sort_by_node(locations, node_count);
    locations.dedup_by(|later, kept| {
        let same_node = later.0 == kept.0;
        if same_node {
            *kept = *later;
        }
        same_node
    });
    Ok(locations)
}

/// `entries` sorted by node, stably: a radix sort on the node number, 12 bits at a time (a comparison sort of the
/// 0.4 M entries of a 324 MiB snapshot took 11 ms, this 3).
fn sort_by_node(mut entries: Vec<(u32, SourceLocation)>, node_count: u64) -> Vec<(u32, SourceLocation)> {
    const DIGIT: u32 = 12;
    if entries.len() < 1 << 12 {
        entries.sort_by_key(|(node, _)| *node);
        return entries;
    }
    let bits = u64::BITS - node_count.leading_zeros();
    let mut other = entries.clone();
    for shift in (0..bits).step_by(DIGIT as usize) {
        let digit = |node: u32| (node >> shift) as usize & ((1 << DIGIT) - 1);
        let mut next = vec![0usize; 1 << DIGIT];
        for (node, _) in &entries {
            next[digit(*node)] += 1;
        }
        let mut start = 0;
        for slot in &mut next {
            (*slot, start) = (start, start + *slot);
        }
        for entry in &entries {
            let at = &mut next[digit(entry.0)];
            other[*at] = *entry;
            *at += 1;
        }
        std::mem::swap(&mut entries, &mut other);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_by_node_is_stable_and_sorted() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for (len, node_count) in [(100usize, 50u64), (5000, 300), (20_000, 5_000_000), (70_000, 1 << 31)] {
            let entries: Vec<(u32, SourceLocation)> = (0..len)
                .map(|i| {
                    seed = crate::parse::lexer::agreement::xorshift(seed);
                    let location = SourceLocation { script_id: 1, line: i as u32, column: 0 };
                    ((seed % node_count) as u32, location)
                })
                .collect();
            let mut expected = entries.clone();
            expected.sort_by_key(|(node, _)| *node);
            assert!(sort_by_node(entries, node_count) == expected, "{len} entries below {node_count}");
        }
    }
}
