//! Streaming `.heapsnapshot` parser: reads any `Read` (or text in memory) once, front to back, into
//! [`HeapSnapshot`] columns.
//! Field offsets come from `snapshot.meta`; unknown top-level keys are skipped.

mod columns;
mod lexer;
mod meta;
mod numbers;
#[cfg(target_arch = "x86_64")]
mod numbers_avx512;
mod pack;
mod target;

use crate::error::ParseError;
use crate::snapshot::{AllocationTrace, HeapSnapshot, TraceFunction, TraceNode};
use crate::strings::StringTable;
use columns::{EdgeColumns, EdgesDone, NodeColumns};
use lexer::{InPlace, Input, Lexer, ReadInput};
use meta::Layout;
use std::io::Read;
use target::Target;

/// Parses a whole snapshot from `reader` (plain JSON text; decompress `.gz` before handing it over).
pub fn parse<R: Read>(reader: R) -> Result<HeapSnapshot, ParseError> {
    Parser::new(ReadInput::new(reader)).run()
}

/// Parses a snapshot held in memory — a mapped file, typically — reading it in place, without copying it.
/// `consumed` is told now and then the offset before which the text will not be read again, so that the pages
/// of a mapping can be given back as the parse goes (and a progress bar moved).
pub fn parse_in_place(text: &[u8], consumed: &mut dyn FnMut(usize)) -> Result<HeapSnapshot, ParseError> {
    Parser::new(InPlace::new(text, consumed)).run()
}

/// [`parse_in_place`], handing each stretch of `page`-aligned text read for good to `give_back` on a thread of its
/// own, beside the parse (giving back a mapping's pages takes time the parse need not wait for).
pub fn parse_in_place_giving_back(
    text: &[u8],
    page: usize,
    give_back: &(dyn Fn(std::ops::Range<usize>) + Sync),
) -> Result<HeapSnapshot, ParseError> {
    std::thread::scope(|scope| {
        let (send, ranges) = std::sync::mpsc::channel::<std::ops::Range<usize>>();
        scope.spawn(move || ranges.into_iter().for_each(give_back));
        let mut given_back = 0;
        parse_in_place(text, &mut |consumed| {
            let upto = consumed / page * page;
            if upto > given_back {
                let _ = send.send(given_back..upto);
                given_back = upto;
            }
        })
    })
}

/// Reads `text` as a JSON array of unsigned integers with the fast number scanner (three random buffer layouts
/// chosen by `seed`) and with the exact one, and panics if they disagree in any way. For the `numbers` fuzz
/// target; not part of the API.
#[doc(hidden)]
pub fn check_number_scanners(text: &[u8], seed: u64) {
    lexer::agreement::check(text, seed, None);
}

/// Parses a snapshot held in memory.
pub fn parse_bytes(bytes: &[u8]) -> Result<HeapSnapshot, ParseError> {
    parse_in_place(bytes, &mut |_| {})
}

struct Parser<I> {
    lex: Lexer<I>,
    layout: Option<Layout>,
    snap: HeapSnapshot,
    /// Numbers of `nodes`/`edges` seen before `snapshot.meta`, decoded once the layout is known.
    early_nodes: Option<Vec<u64>>,
    early_edges: Option<Vec<u64>>,
    raw_locations: Vec<u32>,
    /// Edge type codes while reading; packed into the snapshot's name column once the edges are read.
    edge_types: Vec<u8>,
    /// The edges being packed, and the locations being sorted (for that node count), beside the parse.
    packing: Option<pack::Background<pack::PackedEdges>>,
    sorting: Option<(u64, pack::Background<pack::Locations>)>,
    seen_nodes: bool,
    seen_edges: bool,
    seen_strings: bool,
    max_edge_target: u64,
}

impl<I: Input> Parser<I> {
    fn new(input: I) -> Self {
        Self::with_lexer(Lexer::new(input))
    }

    fn with_lexer(lex: Lexer<I>) -> Self {
        let snap = HeapSnapshot { strings: StringTable::new(), ..HeapSnapshot::default() };
        Parser {
            lex,
            layout: None,
            snap,
            early_nodes: None,
            early_edges: None,
            raw_locations: Vec::new(),
            edge_types: Vec::new(),
            packing: None,
            sorting: None,
            seen_nodes: false,
            seen_edges: false,
            seen_strings: false,
            max_edge_target: 0,
        }
    }

    fn run(mut self) -> Result<HeapSnapshot, ParseError> {
        match self.lex.peek_nonspace()? {
            Some(b'{') => self.lex.advance(),
            Some(b) => {
                return Err(ParseError::NotASnapshot(format!(
                    "expected a JSON object at byte {}, found {}",
                    self.lex.offset(),
                    lexer::describe(b)
                )))
            }
            None => return Err(ParseError::NotASnapshot("the file is empty".into())),
        }
        let mut keys_seen = Vec::new();
        if self.lex.peek_nonspace()? == Some(b'}') {
            self.lex.advance();
        } else {
            loop {
                let mut key = Vec::new();
                self.lex.string_into(&mut key)?;
                let key = String::from_utf8_lossy(&key).into_owned();
                self.lex.expect(b':', "':' after a key")?;
                self.section(&key)?;
                keys_seen.push(key);
                if !self.lex.comma_or(b'}')? {
                    break;
                }
            }
        }
        if !self.lex.at_end()? {
            return Err(self.lex.syntax("unexpected data after the end of the snapshot object"));
        }
        self.finish(&keys_seen)
    }

    fn section(&mut self, key: &str) -> Result<(), ParseError> {
        self.lex.section = Some(section_name(key));
        self.lex.index = None;
        match key {
            "snapshot" => {
                let mut text = Vec::new();
                let at = self.lex.offset();
                self.lex.skip_value(Some(&mut text), 64 << 20)?;
                let (layout, header) = meta::read_header(&text, at)?;
                self.snap.info.node_field_count = layout.node_fields.len();
                self.snap.info.node_fields = layout.node_fields.clone();
                self.snap.info.declared_node_count = header.node_count;
                self.snap.info.declared_edge_count = header.edge_count;
                self.snap.info.extra_native_bytes = header.extra_native_bytes;
                self.snap.other_node_types = layout.other_node_types.clone();
                self.snap.other_edge_types = layout.other_edge_types.clone();
                self.layout = Some(layout);
                if let Some(raw) = self.early_nodes.take() {
                    self.nodes_from_raw(&raw)?;
                }
                if let Some(raw) = self.early_edges.take() {
                    self.edges_from_raw(&raw)?;
                }
            }
            "nodes" => {
                self.seen_nodes = true;
                if self.layout.is_some() {
                    self.read_nodes()?;
                } else {
                    self.early_nodes = Some(self.lex.uint_values()?);
                }
            }
            "edges" => {
                self.seen_edges = true;
                if self.layout.is_some() {
                    self.read_edges()?;
                } else {
                    self.early_edges = Some(self.lex.uint_values()?);
                }
            }
            "strings" => {
                self.seen_strings = true;
                self.read_strings()?;
            }
            "locations" => {
                self.raw_locations = self.lex.uint_values::<u32>()?;
                // With the nodes read, the entries can be checked and sorted while the parse goes on.
                if let (Some(layout), true) = (&self.layout, self.seen_nodes && self.early_nodes.is_none()) {
                    let (raw, layout) = (std::mem::take(&mut self.raw_locations), layout.clone());
                    let node_count = self.snap.node_type.len() as u64;
                    let sorting = pack::Background::start(move || pack::source_locations(&raw, &layout, node_count));
                    self.sorting = Some((node_count, sorting));
                }
            }
            "trace_function_infos" => {
                let raw = self.lex.uint_values::<u64>()?;
                let stride = self.layout.as_ref().map_or(6, |l| l.trace_function_fields.len().max(1));
                let fields = self.layout.as_ref().map(|l| l.trace_function_offsets).unwrap_or([0, 1, 2, 3, 4, 5]);
                let trace = self.snap.trace.get_or_insert_with(AllocationTrace::default);
                trace.functions = raw
                    .chunks_exact(stride)
                    .map(|c| TraceFunction {
                        function_id: c[fields[0]] as u32,
                        name: c[fields[1]] as u32,
                        script_name: c[fields[2]] as u32,
                        script_id: c[fields[3]] as u32,
                        line: c[fields[4]] as u32,
                        column: c[fields[5]] as u32,
                    })
                    .collect();
            }
            "trace_tree" => {
                let tree = self.read_trace_tree()?;
                self.snap.trace.get_or_insert_with(AllocationTrace::default).tree = tree;
            }
            "samples" => {
                let raw = self.lex.uint_values::<u64>()?;
                if !raw.is_empty() {
                    let trace = self.snap.trace.get_or_insert_with(AllocationTrace::default);
                    trace.samples = raw.chunks_exact(2).map(|c| (c[0], c[1])).collect();
                }
            }
            _ => {
                self.lex.skip_value(None, 0)?;
                self.snap.info.skipped_sections.push(key.to_string());
            }
        }
        self.lex.section = None;
        self.lex.index = None;
        Ok(())
    }

    fn read_nodes(&mut self) -> Result<(), ParseError> {
        let mut columns = NodeColumns::new(self.layout.as_ref().expect("layout known"), &mut self.snap);
        let count = self.lex.uint_array(&mut columns)?;
        columns.finish(count)
    }

    fn nodes_from_raw(&mut self, raw: &[u64]) -> Result<(), ParseError> {
        let mut columns = NodeColumns::new(self.layout.as_ref().expect("layout known"), &mut self.snap);
        for (i, &v) in raw.iter().enumerate() {
            columns
                .put_exact(i as u64, v)
                .map_err(|m| ParseError::Inconsistent(format!("`nodes` array index {i}: {m}")))?;
        }
        columns.finish(raw.len() as u64)
    }

    fn read_edges(&mut self) -> Result<(), ParseError> {
        let mut columns =
            EdgeColumns::new(self.layout.as_ref().expect("layout known"), &mut self.edge_types, &mut self.snap);
        let count = self.lex.uint_array(&mut columns)?;
        let done = columns.finish(count)?;
        self.start_packing(done);
        Ok(())
    }

    /// Keeps what the edge columns found, and packs the edges' types into their name column on a thread of its own,
    /// while the parse goes on.
    fn start_packing(&mut self, done: EdgesDone) {
        self.max_edge_target = done.max_target;
        let long_names = done.long_names;
        let names = std::mem::take(&mut self.snap.edge_type_and_name);
        let types = std::mem::take(&mut self.edge_types);
        self.packing = Some(pack::Background::start(move || pack::pack_edges(names, types, long_names)));
    }

    fn edges_from_raw(&mut self, raw: &[u64]) -> Result<(), ParseError> {
        let mut columns =
            EdgeColumns::new(self.layout.as_ref().expect("layout known"), &mut self.edge_types, &mut self.snap);
        for (i, &v) in raw.iter().enumerate() {
            columns
                .put_exact(i as u64, v)
                .map_err(|m| ParseError::Inconsistent(format!("`edges` array index {i}: {m}")))?;
        }
        let done = columns.finish(raw.len() as u64)?;
        self.start_packing(done);
        Ok(())
    }

    fn read_strings(&mut self) -> Result<(), ParseError> {
        self.lex.expect(b'[', "'[' to start the strings array")?;
        let table = &mut self.snap.strings;
        if self.lex.peek_nonspace()? == Some(b']') {
            self.lex.advance();
            return Ok(());
        }
        let mut index = 0u64;
        loop {
            self.lex.index = Some(index);
            self.lex.string_into(table.arena())?;
            table.finish_string();
            index += 1;
            if index > u32::MAX as u64 {
                return Err(ParseError::TooLarge("more than 2^32 strings".into()));
            }
            if !self.lex.comma_or(b']')? {
                break;
            }
        }
        table.shrink_to_fit();
        Ok(())
    }

    /// `trace_tree` is nested: `[id, function_info_index, count, size, [children...]]`, children repeating the
    /// same shape. The numbers are placed by `meta.trace_node_fields` (`children` last). Flattened with an
    /// explicit stack, so depth is unbounded.
    fn read_trace_tree(&mut self) -> Result<Vec<TraceNode>, ParseError> {
        let (values, [id_at, function_at, count_at, size_at]) =
            self.layout.as_ref().map_or((4, [0, 1, 2, 3]), |l| (l.trace_node_values, l.trace_node_offsets));
        let mut tree: Vec<TraceNode> = Vec::new();
        // Each open array: the parent tree node of the tuples inside it.
        let mut stack: Vec<Option<u32>> = Vec::new();
        self.lex.expect(b'[', "'[' to start trace_tree")?;
        stack.push(None);
        let mut fields: Vec<u64> = Vec::with_capacity(values);
        let mut expect_value = true;
        while let Some(&parent) = stack.last() {
            let Some(b) = self.lex.peek_nonspace()? else {
                return Err(ParseError::Truncated {
                    location: self.lex.location(),
                    message: "inside trace_tree".into(),
                });
            };
            match b {
                b']' => {
                    self.lex.advance();
                    if !fields.is_empty() {
                        let message = format!("trace_tree: a node has fewer than {} fields", values + 1);
                        return Err(self.lex.syntax(message));
                    }
                    stack.pop();
                    expect_value = false;
                }
                b',' if !expect_value => {
                    self.lex.advance();
                    expect_value = true;
                }
                b'[' if expect_value && fields.len() == values => {
                    self.lex.advance();
                    let node = TraceNode {
                        id: to_u32(fields[id_at], "trace node id").map_err(|m| self.lex.syntax(m))?,
                        function_info_index: to_u32(fields[function_at], "function_info_index")
                            .map_err(|m| self.lex.syntax(m))?,
                        count: fields[count_at],
                        size: fields[size_at],
                        parent,
                    };
                    fields.clear();
                    tree.push(node);
                    stack.push(Some((tree.len() - 1) as u32));
                    expect_value = true;
                }
                b'0'..=b'9' if expect_value && fields.len() < values => {
                    fields.push(self.read_uint()?);
                    expect_value = false;
                }
                other => {
                    return Err(self.lex.syntax(format!("trace_tree: unexpected {}", lexer::describe(other))));
                }
            }
        }
        Ok(tree)
    }

    fn read_uint(&mut self) -> Result<u64, ParseError> {
        let mut value: u64 = 0;
        let mut digits = 0;
        while let Some(b @ b'0'..=b'9') = self.lex.peek_raw()? {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add((b - b'0') as u64))
                .ok_or_else(|| self.lex.syntax("number too large"))?;
            digits += 1;
            self.lex.advance();
        }
        if digits == 0 {
            return Err(self.lex.syntax("expected a number"));
        }
        Ok(value)
    }

    fn finish(mut self, keys: &[String]) -> Result<HeapSnapshot, ParseError> {
        if self.layout.is_none() {
            let hint = if keys.iter().any(|k| k == "head") && keys.iter().any(|k| k == "samples") {
                " (it looks like a sampling heap profile: use `leakscope profile` for .heapprofile files)"
            } else if keys.iter().any(|k| k == "nodes") && keys.iter().any(|k| k == "startTime") {
                " (it looks like a CPU profile)"
            } else {
                ""
            };
            return Err(ParseError::NotASnapshot(format!(
                "the JSON object has no `snapshot` key with the meta description{hint}; top-level keys: {}",
                keys.join(", ")
            )));
        }
        for (seen, name) in [(self.seen_nodes, "nodes"), (self.seen_edges, "edges"), (self.seen_strings, "strings")] {
            if !seen {
                return Err(ParseError::NotASnapshot(format!("the `{name}` array is missing")));
            }
        }
        let snap = &mut self.snap;
        let node_count = snap.node_type.len() as u64;
        if node_count == 0 {
            return Err(ParseError::Inconsistent("the snapshot has no nodes (not even the root)".into()));
        }
        if node_count >= crate::snapshot::MAX_NODES {
            // The analysis keeps a flag bit beside node numbers; V8 itself stops near 2^28 nodes.
            return Err(ParseError::TooLarge(format!("{node_count} nodes; at most 2^31 - 1 are supported")));
        }
        let declared_edges = *snap.first_edge.last().unwrap_or(&0) as u64;
        let actual_edges = snap.edge_to.len() as u64;
        if declared_edges != actual_edges {
            return Err(ParseError::Inconsistent(format!(
                "edge counts do not add up: the nodes' edge_count fields sum to {declared_edges}, but the `edges` array holds {actual_edges} edges"
            )));
        }
        if actual_edges > 0 && self.max_edge_target >= node_count {
            let bad = snap.edge_to.iter().position(|&t| t as u64 >= node_count).unwrap_or(0);
            return Err(ParseError::Inconsistent(format!(
                "edge {bad} points to node {} but the snapshot has only {node_count} nodes",
                snap.edge_to[bad]
            )));
        }
        let string_count = snap.strings.len() as u32;
        if let Some(bad) = snap.node_name.iter().position(|&s| s >= string_count) {
            return Err(ParseError::Inconsistent(format!(
                "node {bad} has name index {} but the strings table has only {string_count} entries",
                snap.node_name[bad]
            )));
        }
        // Reading the edges started their packing (the edges are seen and the layout is known by now).
        let packed = self.packing.take().expect("the edges' packing was started").wait();
        let max_string_name = packed.install(snap);
        pack::check_string_names(snap, max_string_name, string_count)?;
        let layout = self.layout.as_ref().expect("checked above");
        snap.locations = match self.sorting.take() {
            Some((sorted_for, sorting)) if sorted_for == node_count => sorting.wait()?,
            _ => pack::source_locations(&std::mem::take(&mut self.raw_locations), layout, node_count)?,
        };
        snap.info.bytes_read = self.lex.offset();
        Ok(self.snap)
    }
}

pub(crate) fn to_u32(v: u64, what: &str) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{what} {v} does not fit in 32 bits"))
}

fn section_name(key: &str) -> &'static str {
    match key {
        "snapshot" => "snapshot",
        "nodes" => "nodes",
        "edges" => "edges",
        "strings" => "strings",
        "locations" => "locations",
        "trace_function_infos" => "trace_function_infos",
        "trace_tree" => "trace_tree",
        "samples" => "samples",
        _ => "an unknown section",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{EdgeIndex, EdgeType};
    use lexer::agreement::xorshift;
    use numbers::Kernel;

    /// A valid snapshot of `nodes` random nodes with random edges, escaped strings, locations and sections the
    /// parser skips.
    fn synthetic_snapshot(nodes: usize, seed: u64) -> String {
        synthetic_snapshot_with(nodes, seed, true, None)
    }

    /// With `detachedness` false, the node layout of Node before 20 (six fields). With `traced`, that node has
    /// trace node id 77 and every other node 0.
    fn synthetic_snapshot_with(nodes: usize, mut seed: u64, detachedness: bool, traced: Option<usize>) -> String {
        let mut next = |bound: u64| {
            seed = xorshift(seed);
            seed % bound
        };
        let strings = 300;
        let (mut node_text, mut edge_text, mut edges) = (Vec::new(), Vec::new(), 0);
        for n in 0..nodes {
            let count = next(6);
            edges += count;
            let size = if next(50) == 0 { 5 << 30 } else { next(100_000) };
            let trace = match traced {
                Some(node) => u64::from(node == n) * 77,
                None => next(3),
            };
            let fields = [next(14), next(strings), 2 * n as u64 + 1, size, count, trace, next(3)];
            let fields = &fields[..if detachedness { 7 } else { 6 }];
            node_text.push(fields.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(","));
            for _ in 0..count {
                let target = next(nodes as u64) * 7;
                edge_text.push(format!("{},{},{target}", next(7), next(strings)));
            }
        }
        let text: Vec<String> = (0..strings)
            .map(|i| match i % 5 {
                0 => format!("\"s{i}\\n\\u00e9\\ud83d\\ude00\""),
                1 => format!("\"{}\"", "x".repeat(i as usize * 7)),
                _ => format!("\"name {i} \\\"quoted\\\" ü\""),
            })
            .collect();
        let last_field = if detachedness { r#","detachedness""# } else { "" };
        format!(
            r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","trace_node_id"{last_field}],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]}},"node_count":{nodes},"edge_count":{edges},"trace_function_count":0}},
"nodes":[{}],
"edges":[{}],
"trace_function_infos":[],"trace_tree":[],"samples":[],"unknown":{{"a":[1,{{"b":"]}}"}}]}},
"locations":[7,1,2,3,14,4,5,6],
"strings":[{}]}}"#,
            node_text.join(",\n"),
            edge_text.join(",\n"),
            text.join(",\n")
        )
    }

    /// Text read in place, a window at a time, gives what a reader's text does: the same snapshot, or the same
    /// error at the same offset. Pages said to be consumed are never read again.
    #[test]
    fn text_in_place_parses_as_a_reader_does() {
        let text = synthetic_snapshot(3000, 7);
        let read = format!("{:?}", Parser::new(ReadInput::new(text.as_bytes())).run().expect("valid"));
        let mut seed = 0x51_7CC1_B727_220Au64;
        // The reader's text goes through the best kernel; the text in place through each in turn.
        let kernels = Kernel::all();
        for (i, window) in [1, 63, 64, 65, 1000, 4096, 100_000, 1 << 24].into_iter().enumerate() {
            seed = xorshift(seed);
            let mut told = Vec::new();
            let mut consumed = |upto: usize| told.push(upto);
            let input = InPlace::with_window(text.as_bytes(), window, &mut consumed);
            // The fast scanner on small stretches too, on one thread or two.
            let fast_min = 1 + (seed % 5000) as usize;
            let parsed =
                Parser::with_lexer(Lexer::with_sizes(input, fast_min, fast_min / 2, kernels[i % kernels.len()])).run();
            let in_place = format!("{:?}", parsed.expect("valid"));
            assert!(in_place == read, "window {window}: the snapshots differ");
            assert!(told.windows(2).all(|w| w[0] < w[1]) && told.last() < Some(&text.len()), "window {window}");
        }
        for cut in [10, 500, text.len() / 3, text.len() / 2, text.len() - 5] {
            let text = &text.as_bytes()[..cut];
            let read = Parser::new(ReadInput::with_buffer(text, 300)).run().expect_err("cut short").to_string();
            let in_place =
                Parser::new(InPlace::with_window(text, 777, &mut |_| {})).run().expect_err("cut").to_string();
            assert_eq!(in_place, read, "cut at {cut}");
        }
    }

    /// Trace node ids are kept when one is not 0, whichever scanner reads it (at the start of the array, in its
    /// middle, at its end), and dropped when all are 0.
    #[test]
    fn trace_node_ids_kept_only_when_one_is_not_0() {
        for traced in [Some(0), Some(2500), Some(4999), None] {
            let text = synthetic_snapshot_with(5000, 3, true, Some(traced.unwrap_or(usize::MAX)));
            let lexers = Kernel::all().into_iter().map(|kernel| (100, 200, kernel));
            for (fast_min, parallel_min, kernel) in
                [(usize::MAX, usize::MAX, Kernel::Portable)].into_iter().chain(lexers)
            {
                let lexer = Lexer::with_sizes(ReadInput::new(text.as_bytes()), fast_min, parallel_min, kernel);
                let snapshot = Parser::with_lexer(lexer).run().expect("valid");
                let case = format!("node {traced:?} traced, {kernel:?} from {fast_min} bytes");
                assert_eq!(snapshot.node_trace_id.is_empty(), traced.is_none(), "{case}");
                if let Some(node) = traced {
                    let ids = (0..5000).map(|n| snapshot.trace_node_id(n));
                    assert!(ids.enumerate().all(|(n, id)| id == if n == node { 77 } else { 0 }), "{case}");
                }
            }
        }
    }

    /// The stretches handed back follow each other from the start, page-aligned, and the snapshot is the one
    /// read without giving anything back.
    #[test]
    fn text_given_back_in_pages_as_the_parse_goes() {
        let text = synthetic_snapshot(330_000, 11);
        assert!(text.len() > lexer::WINDOW, "longer than a window: {} bytes", text.len());
        let expected = parse_bytes(text.as_bytes()).expect("valid");
        let ranges = std::sync::Mutex::new(Vec::new());
        let parsed = parse_in_place_giving_back(text.as_bytes(), 4096, &|range| ranges.lock().unwrap().push(range));
        let parsed = parsed.expect("valid");
        assert_eq!((parsed.node_count(), parsed.edge_count()), (expected.node_count(), expected.edge_count()));
        let edge = |snap: &HeapSnapshot, e| (snap.edge_type_code(e), snap.edge_name_or_index(e), snap.edge_target(e));
        let edges = expected.edge_count() as EdgeIndex;
        assert!((0..edges).all(|e| edge(&parsed, e) == edge(&expected, e)), "the edges differ");
        let ranges = ranges.into_inner().unwrap();
        assert!(!ranges.is_empty(), "a window's text was given back");
        let mut next = 0;
        for range in &ranges {
            assert_eq!((range.start, range.end % 4096), (next, 0), "{ranges:?}");
            assert!(range.end > range.start && range.end <= text.len(), "{ranges:?}");
            next = range.end;
        }
    }

    /// A value the columns refuse, or take only on the value-at-a-time path, anywhere in the node or edge records:
    /// every kernel, on one thread or two, gives the snapshot or error (message and offset) the exact scanner
    /// alone gives.
    #[test]
    fn odd_values_in_records_are_read_alike_by_every_scanner() {
        let odd_values: [(&str, usize, &str); 8] = [
            ("nodes", 0, "99"),
            ("nodes", 1, "4294967296"),
            ("nodes", 3, "4294967295"),
            ("nodes", 3, "123456789012"),
            ("edges", 0, "7"),
            ("edges", 1, "8589934592"),
            ("edges", 2, "15"),
            ("edges", 2, "30064771072"),
        ];
        let mut seed = 0x0DD_BA11u64;
        for detachedness in [true, false] {
            let text = synthetic_snapshot_with(2000, seed, detachedness, None);
            let stride = |array| match array {
                "nodes" => {
                    if detachedness {
                        7
                    } else {
                        6
                    }
                }
                _ => 3,
            };
            for (array, field, value) in odd_values {
                seed = xorshift(seed);
                // Replace that field of a random record of the array.
                let open = text.find(&format!("\"{array}\":[")).expect("array") + array.len() + 4;
                let close = open + text[open..].find(']').expect("end of array");
                let numbers: Vec<&str> = text[open..close].split(',').collect();
                let index = (seed as usize % (numbers.len() / stride(array))) * stride(array) + field;
                let mut numbers: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
                let newline = if numbers[index].starts_with('\n') { "\n" } else { "" };
                numbers[index] = format!("{newline}{value}");
                let text = format!("{}{}{}", &text[..open], numbers.join(","), &text[close..]);
                let outcome = |lexer: Lexer<ReadInput<&[u8]>>| match Parser::with_lexer(lexer).run() {
                    Ok(snapshot) => format!("{snapshot:?}"),
                    Err(e) => format!("{e} at {:?}", e.offset()),
                };
                let exact = outcome(Lexer::with_sizes(
                    ReadInput::new(text.as_bytes()),
                    usize::MAX,
                    usize::MAX,
                    Kernel::Portable,
                ));
                for kernel in Kernel::all() {
                    for parallel_min in [usize::MAX, 200] {
                        let input = ReadInput::with_buffer(text.as_bytes(), 4096 + (seed % 5000) as usize);
                        let fast = outcome(Lexer::with_sizes(input, 100, parallel_min, kernel));
                        assert!(fast == exact, "{array}[{index}] = {value}, {kernel:?}: {fast:.300} / {exact:.300}");
                    }
                }
            }
        }
    }

    /// A snapshot holding just these edges `(type code, name)`, packed in the layout given.
    fn packed_snapshot(edges: &[(u8, u32)], narrow: bool) -> HeapSnapshot {
        let mut snap = HeapSnapshot { edge_to: vec![0; edges.len()], ..HeapSnapshot::default() };
        let names = edges.iter().map(|&(_, name)| name).collect();
        let types = edges.iter().map(|&(code, _)| code).collect();
        let max_string_name = pack::pack_edges_as(names, types, narrow).install(&mut snap);
        let string_named = edges.iter().filter(|&&(code, _)| EdgeType::from_code(code).has_string_name());
        assert_eq!(max_string_name, string_named.map(|&(_, name)| name).max(), "largest string name");
        snap
    }

    #[test]
    fn narrow_entries_read_back_what_the_wide_ones_hold() {
        let boundaries = [0, 1, (1 << 20) - 2, (1 << 20) - 1, 1 << 20, (1 << 28) - 1, 1 << 28, u32::MAX];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for count in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 1000, 9000, 9003] {
            let edges: Vec<(u8, u32)> = (0..count)
                .map(|_| {
                    seed = lexer::agreement::xorshift(seed);
                    let name = match seed % 4 {
                        0 => boundaries[(seed >> 8) as usize % boundaries.len()],
                        1 => (seed >> 16) as u32,
                        _ => (seed >> 16) as u32 % 5000,
                    };
                    ((seed >> 60) as u8, name)
                })
                .collect();
            let wide = packed_snapshot(&edges, false);
            let narrow = packed_snapshot(&edges, true);
            assert!(narrow.edge_type_and_name.len() <= count * 3 / 4 + 2, "{count} edges take 3 bytes each");
            for (e, &(code, name)) in edges.iter().enumerate() {
                let e = e as EdgeIndex;
                assert_eq!(narrow.edge_type_code(e), code, "type of edge {e} of {count}");
                assert_eq!(narrow.edge_name_or_index(e), name, "name of edge {e} of {count}");
                assert_eq!(wide.edge_name_or_index(e), name, "wide name of edge {e} of {count}");
            }
        }
    }
}
