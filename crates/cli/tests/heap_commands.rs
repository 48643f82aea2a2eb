//! `summary`, `stats`, `dominators` end to end on snapshots real Node writes at test time; gzip input; and
//! bad input giving exit code 2 with the file and byte offset named.

#[path = "../../heap/tests/common/mod.rs"]
mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leakscope")).args(args).output().expect("leakscope runs")
}

fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn snapshot() -> PathBuf {
    common::scenario_snapshots("listener-leak").pop().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn summary_json_lists_classes_by_retained_size() {
    let file = snapshot();
    let all = json(&["summary", s(&file), "--json", "--top", "0"]);
    let classes = all["classes"].as_array().unwrap();
    assert_eq!(classes.len() as u64, all["class_count"].as_u64().unwrap());
    let retained: Vec<u64> = classes.iter().map(|c| c["retained_size"].as_u64().unwrap()).collect();
    assert!(retained.windows(2).all(|w| w[0] >= w[1]), "sorted by retained size");
    let shallow_total: u64 = classes.iter().map(|c| c["shallow_size"].as_u64().unwrap()).sum();
    assert_eq!(shallow_total, all["total_size"].as_u64().unwrap(), "shallow sizes add up to the total");
    // The leaking emitter's class is keyed by its constructor's location, as in DevTools.
    let emitter = classes.iter().find(|c| c["class"] == "EventEmitter").expect("EventEmitter row");
    assert!(emitter["location"]["line"].as_u64().unwrap() > 0);
    assert!(emitter["key"].as_str().unwrap().ends_with(",EventEmitter"));
    // 8000 leaked response objects of one shape in s3 (2000 per round, four rounds incl. warm-up).
    let responses = classes.iter().find(|c| c["class"] == "{headers, chunks, payload, write}").expect("inferred shape");
    assert_eq!(responses["count"].as_u64(), Some(8001));

    let top = json(&["summary", s(&file), "--json", "--top", "5", "--sort", "count"]);
    let counts: Vec<u64> = top["classes"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).collect();
    assert_eq!(counts.len(), 5);
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "sorted by count: {counts:?}");
    let filtered = json(&["summary", s(&file), "--json", "--filter", "^Event"]);
    assert!(filtered["classes"].as_array().unwrap().iter().all(|c| c["class"].as_str().unwrap().starts_with("Event")));
}

#[test]
fn summary_table_is_readable() {
    let out = run(&["summary", s(&snapshot()), "--top", "3"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().next().unwrap().contains("Retained"), "{text}");
    let rows = text.lines().skip(1).take_while(|l| !l.is_empty()).count();
    assert_eq!(rows, 3, "{text}");
    assert!(text.contains("classes (3 shown)"), "{text}");
}

#[test]
fn stats_json_names_the_node_version() {
    let stats = json(&["stats", s(&snapshot()), "--json"]);
    let node_version = Command::new("node").arg("--version").output().unwrap();
    let node_version = String::from_utf8(node_version.stdout).unwrap();
    assert_eq!(stats["origin"]["runtime"], "node");
    assert_eq!(stats["origin"]["version"].as_str(), Some(node_version.trim()));
    let st = &stats["statistics"];
    let total = st["total"].as_u64().unwrap();
    assert_eq!(total, st["v8_heap"].as_u64().unwrap() + st["native"].as_u64().unwrap());
    let parts: u64 =
        ["code", "strings", "js_arrays", "system", "other_js_objects"].iter().map(|k| st[k].as_u64().unwrap()).sum();
    assert_eq!(parts, st["v8_heap"].as_u64().unwrap());
    assert!(stats["node_count"].as_u64().unwrap() > 100_000);
}

#[test]
fn dominators_json_is_a_tree_of_shrinking_sizes() {
    let tree = json(&["dominators", s(&snapshot()), "--json", "--depth", "3", "--top", "4"]);
    fn check(node: &Value) -> usize {
        let retained = node["retained_size"].as_u64().unwrap();
        let children = node["children"].as_array().unwrap();
        assert!(children.len() <= 4);
        let sizes: Vec<u64> = children.iter().map(|c| c["retained_size"].as_u64().unwrap()).collect();
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
        assert!(sizes.iter().sum::<u64>() <= retained);
        1 + children.iter().map(check).sum::<usize>()
    }
    assert!(check(&tree) > 4);
    assert_eq!(tree["id"], 1, "the root");
}

#[test]
fn gzipped_snapshots_read_the_same() {
    let file = snapshot();
    let gz = common::work_dir().join("listener-leak-s3.heapsnapshot.gz");
    let status = Command::new("sh").arg("-c").arg(format!("gzip -c '{}' > '{}'", s(&file), s(&gz))).status().unwrap();
    assert!(status.success());
    let plain = json(&["summary", s(&file), "--json", "--top", "0"]);
    let zipped = json(&["summary", s(&gz), "--json", "--top", "0"]);
    assert_eq!(plain["classes"], zipped["classes"]);
}

#[test]
fn bad_input_exits_2_and_says_where() {
    let file = snapshot();
    let bytes = std::fs::read(&file).unwrap();
    let truncated = common::work_dir().join("truncated.heapsnapshot");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = run(&["summary", s(&truncated)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("truncated.heapsnapshot") && stderr.contains("byte"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = run(&["stats", "/nonexistent/x.heapsnapshot"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));

    let profile = common::work_dir().join("not-a-snapshot.json");
    std::fs::write(&profile, r#"{"head":{"callFrame":{}},"samples":[]}"#).unwrap();
    let out = run(&["summary", s(&profile)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("leakscope profile"));
}
