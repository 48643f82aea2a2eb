//! leakscope's numbers against Chrome DevTools' own heap-snapshot code (the oracle in shared/oracles/devtools),
//! on snapshots written by real Node at test time.

mod common;

use leakscope_heap::analysis::{essential, ClassKey};
use leakscope_heap::{Analysis, AnalysisOptions, HeapSnapshot};
use std::collections::HashMap;
use std::path::Path;

struct OracleNode {
    shallow: u64,
    retained: u64,
    distance: i64,
    dominator_id: u32,
}

fn read_oracle_nodes(dir: &Path) -> HashMap<u32, OracleNode> {
    let text = std::fs::read_to_string(dir.join("nodes.tsv")).unwrap();
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let id = f[0].parse().unwrap();
            (
                id,
                OracleNode {
                    shallow: f[3].parse().unwrap(),
                    retained: f[4].parse::<f64>().unwrap() as u64,
                    distance: f[5].parse().unwrap(),
                    dominator_id: f[6].parse().unwrap(),
                },
            )
        })
        .collect()
}

/// `(class_key, class_name, count, shallow, retained, distance)` rows in the oracle's order.
fn read_oracle_summary(dir: &Path) -> Vec<(String, String, u64, u64, u64)> {
    let text = std::fs::read_to_string(dir.join("summary.tsv")).unwrap();
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse::<f64>().unwrap() as u64,
            )
        })
        .collect()
}

fn public_key(snapshot: &HeapSnapshot, analysis: &Analysis, key: ClassKey) -> String {
    let clean = |s: &str| s.replace(['\t', '\r', '\n'], " ");
    match key {
        ClassKey::Class(class) => format!(",{}", clean(analysis.classes.name(snapshot, class))),
        ClassKey::Located(class, script, line, column) => {
            format!("{script},{line},{column},{}", clean(analysis.classes.name(snapshot, class)))
        }
    }
}

fn check_against_oracle(snapshot_path: &Path) {
    let Some(oracle) = common::oracle_output(snapshot_path, &[]) else {
        eprintln!("SKIPPED: DevTools oracle not built (run shared/oracles/devtools/install.sh)");
        return;
    };
    let snapshot = common::load(snapshot_path);
    let analysis = Analysis::new(&snapshot, &AnalysisOptions { parallel: true, ..Default::default() }, &mut |_| {});
    let serial_edges = essential::essential_edges(&snapshot, &analysis.page_owned, &analysis.weakmaps);
    let split_edges = essential::essential_edges_parallel(&snapshot, &analysis.page_owned, &analysis.weakmaps, true);
    assert!(serial_edges == split_edges, "essential edges differ when computed in two halves");
    let expected = read_oracle_nodes(&oracle);
    assert_eq!(expected.len(), snapshot.node_count(), "node count");

    let mut mismatches = Vec::new();
    let (mut retained_ok, mut distance_ok, mut dominator_ok, mut shallow_ok) = (0usize, 0usize, 0usize, 0usize);
    for node in 0..snapshot.node_count() as u32 {
        let id = snapshot.node_id(node);
        let want = &expected[&id];
        let got_distance = analysis.distance(node).map_or(-5, |d| d as i64);
        let got_dominator = snapshot.node_id(analysis.idom[node as usize]);
        shallow_ok += (analysis.shallow.get(node) == want.shallow) as usize;
        distance_ok += (got_distance == want.distance) as usize;
        dominator_ok += (got_dominator == want.dominator_id) as usize;
        if analysis.retained.get(node) == want.retained {
            retained_ok += 1;
        } else if mismatches.len() < 10 {
            mismatches.push(format!(
                "@{id} {} '{}': retained {} vs DevTools {}",
                snapshot.node_type_name(node),
                snapshot.node_name(node).chars().take(40).collect::<String>(),
                analysis.retained.get(node),
                want.retained
            ));
        }
    }
    let n = snapshot.node_count();
    let share = |ok: usize| ok as f64 / n as f64;
    eprintln!(
        "{}: {n} nodes; retained {:.4}%, shallow {:.4}%, distance {:.4}%, dominator {:.4}%",
        snapshot_path.display(),
        100.0 * share(retained_ok),
        100.0 * share(shallow_ok),
        100.0 * share(distance_ok),
        100.0 * share(dominator_ok)
    );
    assert!(share(retained_ok) >= 0.999, "retained sizes differ from DevTools: {mismatches:#?}");
    assert_eq!(shallow_ok, n, "shallow sizes must match exactly");
    assert_eq!(distance_ok, n, "distances must match exactly");

    // Summary: the top 50 rows must match exactly (key, name, count, shallow, retained).
    let want_rows = read_oracle_summary(&oracle);
    let mut rows = analysis.summary(&snapshot);
    rows.sort_by(|a, b| b.retained.cmp(&a.retained).then(b.shallow.cmp(&a.shallow)).then(b.count.cmp(&a.count)));
    let got: HashMap<String, (u64, u64, u64)> =
        rows.iter().map(|r| (public_key(&snapshot, &analysis, r.key), (r.count, r.shallow, r.retained))).collect();
    let missing: Vec<&String> = want_rows.iter().map(|r| &r.0).filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want_rows.iter().any(|r| &r.0 == *k)).collect();
    assert_eq!(got.len(), want_rows.len(), "number of Summary rows; missing {missing:?}, extra {extra:?}");
    for (key, _name, count, shallow, retained) in want_rows.iter().take(50) {
        let row = got.get(key).unwrap_or_else(|| panic!("Summary row {key} missing"));
        assert_eq!(*row, (*count, *shallow, *retained), "Summary row {key}");
    }

    // Statistics.
    let stats_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(oracle.join("stats.json")).unwrap()).unwrap();
    let view = &stats_json["statistics_view"];
    let stats = analysis.statistics(&snapshot);
    assert_eq!(stats.total, view["total"].as_u64().unwrap(), "total");
    assert_eq!(stats.code, view["code"].as_u64().unwrap(), "code");
    assert_eq!(stats.strings, view["strings"].as_u64().unwrap(), "strings");
    assert_eq!(stats.js_arrays, view["js_arrays"].as_u64().unwrap(), "js arrays");
    assert_eq!(stats.typed_arrays, view["typed_arrays"].as_u64().unwrap(), "typed arrays");
    assert_eq!(stats.system, view["system_objects"].as_u64().unwrap(), "system");
    assert_eq!(stats.other_js_objects, view["other_js_objects"].as_u64().unwrap(), "other js");
}

#[test]
fn listener_leak_matches_devtools() {
    let snapshots = common::scenario_snapshots("listener-leak");
    check_against_oracle(snapshots.last().unwrap());
}

#[test]
fn unbounded_cache_matches_devtools() {
    let snapshots = common::scenario_snapshots("unbounded-cache");
    check_against_oracle(snapshots.last().unwrap());
}

#[test]
fn linked_list_matches_devtools() {
    let snapshots = common::scenario_snapshots("linked-list");
    check_against_oracle(&snapshots[0]);
}

#[test]
fn churn_control_matches_devtools() {
    let snapshots = common::scenario_snapshots("churn");
    check_against_oracle(snapshots.last().unwrap());
}

#[test]
fn bench_http_service_matches_devtools() {
    // The benchmark app (a node:http service with three leaks), small: 500 requests per round.
    let out = common::work_dir().join("gen-snapshot-500");
    if !out.join("big3.heapsnapshot").exists() {
        let status = std::process::Command::new("node")
            .arg(common::shared_dir().join("bench/gen-snapshot.js"))
            .arg(&out)
            .arg("500")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("node runs");
        assert!(status.success());
    }
    check_against_oracle(&out.join("big3.heapsnapshot"));
}

#[test]
fn weakmap_pairs_match_devtools() {
    // WeakMaps whose values are held only through their pairs (the table's edge does not retain them, and their
    // distance is the later of the two edges'), next to the same objects in a Map.
    let path = common::work_dir().join("weakmaps.heapsnapshot");
    if !path.exists() {
        let script = r#"
            class Key { constructor(i) { this.i = i; } }
            class Held { constructor(i) { this.payload = new Array(20).fill(i); } }
            const keys = Array.from({ length: 300 }, (_, i) => new Key(i));
            const weak = new WeakMap();
            const strong = new Map();
            keys.forEach((k, i) => { weak.set(k, new Held(i)); if (i % 3 === 0) strong.set(i, weak.get(k)); });
            const nested = new WeakMap([[keys[0], new WeakMap([[keys[1], new Held(-1)]])]]);
            globalThis.kept = { keys, weak, strong, nested };
            require('v8').writeHeapSnapshot(process.argv[1]);
        "#;
        let partial = path.with_extension("partial");
        let status = std::process::Command::new("node").arg("-e").arg(script).arg(&partial).status().unwrap();
        assert!(status.success(), "node failed to write the snapshot");
        std::fs::rename(&partial, &path).unwrap();
    }
    let snapshot = common::load(&path);
    let weakmaps = leakscope_heap::analysis::weakmap::WeakMapNames::build(&snapshot);
    assert!(weakmaps.pair_count() >= 300, "the WeakMap pair edges are recognised: {}", weakmaps.pair_count());
    check_against_oracle(&path);
}
