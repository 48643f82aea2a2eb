//! Limits of real snapshots that are impractical to produce in a test, checked with synthetic inputs generated
//! on the fly (no disk): byte offsets past 4 GiB, a strings table past JavaScript's ~512 M-character limit, and
//! edge counts past 2^32.

use leakscope_heap::{parse, ParseError};
use std::io::Read;

const HEADER: &str = r#"{"snapshot":{"meta":{"node_fields":["type","name","id","self_size","edge_count"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic"],"string","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"]},"node_count":2,"edge_count":1},"#;

/// Yields `parts` in order; a part is either literal text or `n` copies of one byte.
struct Generated {
    parts: Vec<(Vec<u8>, u64)>,
    part: usize,
    done_in_part: u64,
}

impl Generated {
    fn new(parts: Vec<(Vec<u8>, u64)>) -> Self {
        Generated { parts, part: 0, done_in_part: 0 }
    }
}

fn text(s: &str) -> (Vec<u8>, u64) {
    (s.as_bytes().to_vec(), 1)
}

fn repeat(byte: u8, count: u64) -> (Vec<u8>, u64) {
    (vec![byte], count)
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written < buf.len() && self.part < self.parts.len() {
            let (bytes, times) = &self.parts[self.part];
            if bytes.len() == 1 && *times > 1 {
                let n = ((times - self.done_in_part) as usize).min(buf.len() - written);
                buf[written..written + n].fill(bytes[0]);
                written += n;
                self.done_in_part += n as u64;
                if self.done_in_part == *times {
                    self.part += 1;
                    self.done_in_part = 0;
                }
            } else {
                let start = self.done_in_part as usize;
                let n = (bytes.len() - start).min(buf.len() - written);
                buf[written..written + n].copy_from_slice(&bytes[start..start + n]);
                written += n;
                self.done_in_part += n as u64;
                if self.done_in_part as usize == bytes.len() {
                    self.part += 1;
                    self.done_in_part = 0;
                }
            }
        }
        Ok(written)
    }
}

/// Parses `HEADER` followed by `rest`.
fn after_header(rest: &str) -> leakscope_heap::HeapSnapshot {
    parse(Generated::new(vec![text(HEADER), text(rest)])).expect("a valid snapshot")
}

#[test]
fn byte_offsets_past_4_gib_are_reported_exactly() {
    let padding: u64 = (1 << 32) + 1000;
    let input = Generated::new(vec![
        text(HEADER),
        text(r#""nodes":[9,0,1,0,1,"#),
        repeat(b' ', padding),
        text("3,1,3,40,0],\"edges\":[1,1,x"),
    ]);
    let err = parse(input).expect_err("the x is not a number");
    let offset = err.offset().expect("syntax errors carry an offset");
    let expected = HEADER.len() as u64
        + r#""nodes":[9,0,1,0,1,"#.len() as u64
        + padding
        + "3,1,3,40,0],\"edges\":[1,1,".len() as u64;
    assert_eq!(offset, expected, "{err}");
    assert!(err.to_string().contains("`edges`, array index 2"), "{err}");
}

#[test]
fn a_strings_table_longer_than_javascript_strings_can_be() {
    // One string of 600 M characters: DevTools and memlab fail above ~536.9 M ("Invalid string length").
    let length: u64 = 600_000_000;
    let input = Generated::new(vec![
        text(HEADER),
        text(r#""nodes":[9,0,1,0,1,2,1,3,600000000,0],"edges":[1,1,5],"strings":["", "#),
        text("\""),
        repeat(b'a', length),
        text("\"]}"),
    ]);
    let snapshot = parse(input).unwrap();
    assert_eq!(snapshot.strings().len(), 2);
    assert_eq!(snapshot.node_name(1).len() as u64, length);
    assert!(snapshot.strings().byte_len() >= length);
}

#[test]
fn more_than_2_pow_32_edges_is_a_clear_error() {
    let input = Generated::new(vec![
        text(HEADER),
        text(r#""nodes":[9,0,1,0,3000000000,3,0,3,0,3000000000],"edges":[],"strings":[""]}"#),
    ]);
    let err = parse(input).expect_err("too many edges");
    assert!(matches!(err, ParseError::TooLarge(_) | ParseError::Syntax { .. }), "{err}");
    assert!(err.to_string().contains("2^32"), "{err}");
}

#[test]
fn self_sizes_of_4_gib_and_more_are_kept_exactly() {
    // The root (synthetic) holds a native node of 6 GiB, one of exactly u32::MAX bytes and an ordinary object.
    let snapshot = after_header(concat!(
        r#""nodes":[9,0,1,0,3, 8,1,3,6442450944,0, 8,1,5,4294967295,0, 3,1,7,40,0],"#,
        r#""edges":[1,1,5,1,2,10,1,3,15],"strings":["","big"]}"#
    ));
    let sizes: Vec<u64> = (0..4).map(|n| snapshot.raw_self_size(n)).collect();
    assert_eq!(sizes, [0, 6_442_450_944, 4_294_967_295, 40]);
    assert_eq!(snapshot.raw_self_sizes(), sizes);
    let analysis = leakscope_heap::Analysis::new(&snapshot, &Default::default(), &mut |_| {});
    assert_eq!(analysis.retained.get(0), 6_442_450_944 + 4_294_967_295 + 40);
    assert_eq!(analysis.shallow.get(1), 6_442_450_944);
}

#[test]
fn edge_names_past_the_packed_range_are_kept_exactly() {
    // Element indices share their edge's column with the edge type; those of 2^28 - 1 and more are kept aside.
    let snapshot = after_header(concat!(
        r#""nodes":[9,0,1,0,3, 3,1,3,40,0],"#,
        r#""edges":[1,268435455,5, 1,4294967295,5, 2,1,5],"strings":["","name"]}"#
    ));
    let names: Vec<u32> = (0..3).map(|e| snapshot.edge_name_or_index(e)).collect();
    assert_eq!(names, [268_435_455, u32::MAX, 1]);
    assert_eq!(snapshot.edge_label(1), "[4294967295]");
    assert_eq!(snapshot.edge_label(2), ".name");
    let types: Vec<&str> = (0..3).map(|e| snapshot.edge_type_name(e)).collect();
    assert_eq!(types, ["element", "element", "property"]);
}

#[test]
fn edge_names_past_the_narrow_range_are_kept_exactly() {
    // With few names past 20 bits, edges take three bytes each and those names are kept aside.
    let mut edges: Vec<String> = (0..100).map(|i| format!("1,{i},5")).collect();
    edges[10] = "1,1048575,5".into();
    edges[20] = "1,268435455,0".into();
    edges[30] = "2,1,5".into();
    let snapshot = after_header(&format!(
        r#""nodes":[9,0,1,0,100, 3,1,3,40,0],"edges":[{}],"strings":["","name"]}}"#,
        edges.join(",")
    ));
    let names: Vec<u32> = (0..100).map(|e| snapshot.edge_name_or_index(e)).collect();
    let mut expected: Vec<u32> = (0..100).collect();
    (expected[10], expected[20], expected[30]) = (1_048_575, 268_435_455, 1);
    assert_eq!(names, expected);
    assert_eq!(snapshot.edge_label(20), "[268435455]");
    assert_eq!(snapshot.edge_label(30), ".name");
    assert_eq!(snapshot.edge_target(20), 0);
    assert_eq!(snapshot.edge_type_name(30), "property");
    assert_eq!(snapshot.edge_type_name(99), "element");
}
