//! Bad input gives a clear error that says what and where — never a panic.

use leakscope_heap::{parse_bytes, ParseError};

const META: &str = r#"{"meta":{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]},"node_count":3,"edge_count":2,"trace_function_count":0}"#;

/// A tiny valid snapshot: root → (GC roots) and root → an object "Foo".
fn valid() -> String {
    format!(
        r#"{{"snapshot":{META},"nodes":[9,0,1,0,2,0,0,9,1,3,0,0,0,0,3,2,5,16,0,0,0],"edges":[1,1,7,5,2,14],"locations":[14,3,10,4],"strings":["","(GC roots)","Foo","x"]}}"#
    )
}

fn error_of(text: &str) -> ParseError {
    parse_bytes(text.as_bytes()).expect_err("must be rejected")
}

#[test]
fn the_valid_fixture_parses() {
    let snapshot = parse_bytes(valid().as_bytes()).unwrap();
    assert_eq!(snapshot.node_count(), 3);
    assert_eq!(snapshot.edge_count(), 2);
    assert_eq!(snapshot.node_name(2), "Foo");
    assert_eq!(snapshot.edge_target(1), 2);
    assert_eq!(snapshot.location(2).map(|l| (l.script_id, l.line, l.column)), Some((3, 10, 4)));
}

#[test]
fn truncated_files_say_where_they_end() {
    let text = valid();
    for cut in [1, 20, text.find("\"nodes\"").unwrap() + 15, text.find("\"edges\"").unwrap() + 12, text.len() - 8] {
        let err = error_of(&text[..cut]);
        let message = err.to_string();
        assert!(matches!(err, ParseError::Truncated { .. } | ParseError::Syntax { .. }), "cut at {cut}: {message}");
        assert!(message.contains("byte"), "cut at {cut}: names the offset: {message}");
    }
    let err = error_of(&text[..text.find("\"edges\"").unwrap() + 12]);
    assert!(err.to_string().contains("`edges`"), "names the section: {err}");
}

#[test]
fn to_node_must_be_a_multiple_of_the_node_field_count() {
    let text = valid().replace(r#""edges":[1,1,7,5,2,14]"#, r#""edges":[1,1,7,5,2,15]"#);
    let message = error_of(&text).to_string();
    assert!(message.contains("to_node 15") && message.contains("multiple"), "{message}");
    assert!(message.contains("array index 5"), "names the array index: {message}");
}

#[test]
fn locations_in_any_order_keep_the_last_entry_per_node() {
    let text = valid().replace(r#""locations":[14,3,10,4]"#, r#""locations":[14,3,10,4,7,1,1,1,14,5,6,7,7,2,2,2]"#);
    let snapshot = parse_bytes(text.as_bytes()).unwrap();
    let at = |node| snapshot.location(node).map(|l| (l.script_id, l.line, l.column));
    assert_eq!((at(0), at(1), at(2)), (None, Some((2, 2, 2)), Some((5, 6, 7))));
}

#[test]
fn location_values_must_fit_in_32_bits() {
    let text = valid().replace(r#""locations":[14,3,10,4]"#, r#""locations":[14,3,4294967296,4]"#);
    let message = error_of(&text).to_string();
    assert!(message.contains("4294967296 is out of range"), "{message}");
    assert!(message.contains("`locations`") && message.contains("array index 2"), "says where: {message}");
}

#[test]
fn edge_counts_must_add_up() {
    let text = valid().replace(r#""edges":[1,1,7,5,2,14]"#, r#""edges":[1,1,7]"#);
    let message = error_of(&text).to_string();
    assert!(message.contains("edge counts do not add up"), "{message}");
}

#[test]
fn edges_must_point_at_nodes() {
    let text = valid().replace(r#""edges":[1,1,7,5,2,14]"#, r#""edges":[1,1,7,5,2,70]"#);
    assert!(error_of(&text).to_string().contains("points to node 10"));
}

#[test]
fn node_counts_must_fill_whole_records() {
    let text = valid().replace(r#","nodes":[9,0,1,0,2,0,0,"#, r#","nodes":[9,0,1,0,2,0,0,1,"#);
    let message = error_of(&text).to_string();
    assert!(message.contains("not a multiple of the 7 node fields"), "{message}");
}

#[test]
fn invalid_escapes_are_reported_with_their_index() {
    let text = valid().replace(r#""Foo""#, r#""F\qo""#);
    let message = error_of(&text).to_string();
    assert!(message.contains("invalid escape") && message.contains("`strings`, array index 2"), "{message}");
}

#[test]
fn wrong_types_are_rejected() {
    let message = error_of(&valid().replace(r#","nodes":[9,"#, r#","nodes":["x","#)).to_string();
    assert!(message.contains("expected an unsigned integer"), "{message}");
    let message = error_of(&valid().replace(r#","nodes":[9,"#, r#","nodes":[-9,"#)).to_string();
    assert!(message.contains("negative"), "{message}");
    let message = error_of(&valid().replace(r#","nodes":[9,"#, r#","nodes":[9.5,"#)).to_string();
    assert!(message.contains("fractional"), "{message}");
    let message = error_of(&valid().replace(r#","nodes":[9,"#, r#","nodes":[99,"#)).to_string();
    assert!(message.contains("type 99"), "{message}");
}

#[test]
fn non_snapshot_json_is_named_as_such() {
    assert!(
        matches!(error_of(r#"{"head":{},"samples":[]}"#), ParseError::NotASnapshot(m) if m.contains("sampling heap profile"))
    );
    assert!(matches!(error_of("[1,2,3]"), ParseError::NotASnapshot(_)));
    assert!(matches!(error_of(""), ParseError::NotASnapshot(_)));
    assert!(matches!(error_of("{}"), ParseError::NotASnapshot(_)));
    let no_strings = valid().replace(r#","strings":["","(GC roots)","Foo","x"]"#, "");
    assert!(error_of(&no_strings).to_string().contains("`strings` array is missing"));
}

#[test]
fn trailing_garbage_is_an_error() {
    let message = error_of(&(valid() + " x")).to_string();
    assert!(message.contains("after the end"), "{message}");
}

#[test]
fn name_indices_must_exist() {
    let text = valid().replace(r#""strings":["","(GC roots)","Foo","x"]"#, r#""strings":["","(GC roots)"]"#);
    let message = error_of(&text).to_string();
    assert!(message.contains("name index") && message.contains("strings table"), "{message}");
}

#[test]
fn edge_name_indices_must_exist() {
    // The second edge (a shortcut, named by a string) is checked by the second of the two packing threads.
    let text = valid().replace(r#""edges":[1,1,7,5,2,14]"#, r#""edges":[1,1,7,5,9,14]"#);
    let message = error_of(&text).to_string();
    assert!(message.contains("edge 1 has name index 9"), "{message}");
}

#[test]
fn unknown_sections_and_types_are_tolerated() {
    // A future top-level key, a six-field (older V8) layout without detachedness, and a new node type name.
    let six = valid()
        .replace(r#","trace_node_id","detachedness"]"#, r#","trace_node_id"]"#)
        .replace(r#""number","number","number","number","number"]"#, r#""number","number","number","number"]"#)
        .replace(
            r#""nodes":[9,0,1,0,2,0,0,9,1,3,0,0,0,0,3,2,5,16,0,0,0]"#,
            r#""nodes":[9,0,1,0,2,0,9,1,3,0,0,0,3,2,5,16,0,0]"#,
        )
        .replace(r#""edges":[1,1,7,5,2,14]"#, r#""edges":[1,1,6,5,2,12]"#)
        .replace(r#""locations":[14,3,10,4]"#, r#""locations":[12,3,10,4]"#)
        .replace(r#""object shape"]"#, r#""object shape","brand new type"]"#)
        .replace(r#","strings":"#, r#","future_section":{"a":[1,{"b":"]"}]},"scopes":[],"strings":"#);
    let snapshot = parse_bytes(six.as_bytes()).unwrap();
    assert_eq!(snapshot.info().node_field_count, 6);
    assert_eq!(snapshot.node_count(), 3);
    assert_eq!(snapshot.node_name(2), "Foo");
    assert!(snapshot.info().skipped_sections.contains(&"future_section".to_string()));
}

#[test]
fn fuzz_seeds_parse() {
    // The fuzzer's seeds are valid inputs that exercise allocation traces and string escapes.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/parse");
    let traced = std::fs::read(dir.join("traced.json")).unwrap();
    let snapshot = parse_bytes(&traced).unwrap();
    let trace = snapshot.allocation_trace().expect("trace sections");
    assert_eq!(trace.functions.len(), 1);
    assert_eq!(trace.tree.len(), 4, "nested trace_tree flattened");
    assert_eq!(trace.tree[3].parent, Some(2));
    assert_eq!(trace.samples, vec![(100, 7), (200, 9)]);
    assert_eq!(snapshot.info().extra_native_bytes, 100);
    let escapes = parse_bytes(&std::fs::read(dir.join("escapes.json")).unwrap()).unwrap();
    assert_eq!(escapes.node_name(2), "Fé😀o\n");
}

#[test]
fn number_fuzz_seeds_read_the_same_with_both_scanners() {
    // As the `numbers` fuzz target reads them: eight bytes of layout seed, then the array's text after its '['.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/numbers");
    let mut seeds = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        // A running `cargo fuzz` may remove files it has reduced; those are skipped.
        let Ok(data) = std::fs::read(entry.unwrap().path()) else { continue };
        // Inputs shorter than the seed get seed 0, as in the fuzz target (`cargo fuzz run` adds its finds here).
        let (seed, body) = match data.split_first_chunk::<8>() {
            Some((seed, body)) => (u64::from_le_bytes(*seed), body),
            None => (0, data.as_slice()),
        };
        let text = [b"[".as_slice(), body].concat();
        for layout in 0..50 {
            leakscope_heap::check_number_scanners(&text, seed.wrapping_add(layout));
        }
        seeds += 1;
    }
    assert!(seeds >= 2);
}
