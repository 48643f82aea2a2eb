//! Retaining paths against Chrome DevTools' Retainers pane (the oracle's `--retainers-random`), step by step,
//! on snapshots written by real Node at test time; plus the class grouping and source locations on the
//! visible leak scenarios.

mod common;

use leakscope_heap::analysis::BASE_SYSTEM_DISTANCE;
use leakscope_heap::inspect::paths::{self, RetainingPath};
use leakscope_heap::inspect::retainers::{ViewOptions, DEVTOOLS_MAX_STEPS};
use leakscope_heap::inspect::{self, find, ChainStop, RetainerIndex, RetainerView};
use leakscope_heap::scripts::ScriptNames;
use leakscope_heap::{Analysis, AnalysisOptions, HeapSnapshot, NodeIndex};
use std::collections::BTreeMap;
use std::path::Path;

fn analyse(snapshot: &HeapSnapshot) -> Analysis {
    Analysis::new(snapshot, &AnalysisOptions { parallel: true, ..Default::default() }, &mut |_| {})
}

/// `object_id → [(retainer_id, class, edge_type, edge_name, distance)]` from retainers.tsv.
type OracleChains = BTreeMap<u32, Vec<(u32, String, String, String, u32)>>;

fn read_chains(dir: &Path) -> OracleChains {
    let text = std::fs::read_to_string(dir.join("retainers.tsv")).unwrap();
    let mut chains = OracleChains::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 7, "retainers.tsv line: {line}");
        chains.entry(f[0].parse().unwrap()).or_default().push((
            f[2].parse().unwrap(),
            f[3].to_string(),
            f[4].to_string(),
            f[5].to_string(),
            f[6].parse().unwrap(),
        ));
    }
    chains
}

fn picked_ids(dir: &Path) -> Vec<u32> {
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("retainers_stats.json")).unwrap()).unwrap();
    stats["random"]["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

fn check_random_chains(scenario: &str, seed: u32) {
    let snapshots = common::scenario_snapshots(scenario);
    let path = snapshots.last().unwrap();
    let args = ["--retainers-random", "20", "--seed", &seed.to_string()];
    let Some(dir) = common::oracle_output(path, &args) else {
        eprintln!("SKIPPED: DevTools oracle not built (run shared/oracles/devtools/install.sh)");
        return;
    };
    let ids = picked_ids(&dir);
    assert_eq!(ids.len(), 20, "the oracle picked 20 objects");
    let expected = read_chains(&dir);
    let snapshot = common::load(path);
    let analysis = analyse(&snapshot);
    let index = RetainerIndex::build(&snapshot);
    let view = RetainerView::new(
        &snapshot,
        &index,
        &analysis.distance,
        &analysis.user_roots,
        &analysis.weakmaps,
        &ViewOptions::default(),
    );
    let mut steps_checked = 0;
    for id in ids {
        let node = snapshot.find_by_id(id).unwrap_or_else(|| panic!("@{id} not in {}", path.display()));
        let chain = view.chain(node, DEVTOOLS_MAX_STEPS);
        let got: Vec<(u32, String, String, String, u32)> = chain
            .steps
            .iter()
            .map(|r| {
                (
                    snapshot.node_id(r.node),
                    analysis.class_name(&snapshot, r.node).replace(['\t', '\r', '\n'], " "),
                    snapshot.edge_type_name(r.edge).to_string(),
                    snapshot.edge_name(r.edge).replace(['\t', '\r', '\n'], " "),
                    r.distance,
                )
            })
            .collect();
        let want = expected.get(&id).cloned().unwrap_or_default();
        for (step, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{scenario} @{id} step {}: leakscope {g:?}, DevTools {w:?}", step + 1);
        }
        assert_eq!(got.len(), want.len(), "{scenario} @{id}: chain length");
        steps_checked += got.len();
    }
    assert!(steps_checked >= 20, "{scenario}: only {steps_checked} steps compared");
    eprintln!("{scenario}: 20 chains, {steps_checked} steps agree with DevTools");
}

#[test]
fn chains_match_devtools_listener_leak() {
    check_random_chains("listener-leak", 11);
}

#[test]
fn chains_match_devtools_linked_list() {
    check_random_chains("linked-list", 12);
}

#[test]
fn chains_match_devtools_unbounded_cache() {
    check_random_chains("unbounded-cache", 13);
}

/// The leaked objects in listener-leak are reached only through (Stack roots), so `--retainers-random` never
/// picks them; check one leaked closure's chain explicitly (it ends at (GC roots)).
#[test]
fn leaked_closure_chain_matches_devtools() {
    let snapshots = common::scenario_snapshots("listener-leak");
    let path = snapshots.last().unwrap();
    let snapshot = common::load(path);
    let analysis = analyse(&snapshot);
    let closure = (0..snapshot.node_count() as NodeIndex)
        .rev()
        .find(|&n| snapshot.node_type(n) == leakscope_heap::NodeType::Closure && snapshot.node_name(n) == "onMessage")
        .expect("an onMessage closure");
    let id = snapshot.node_id(closure).to_string();
    let Some(dir) = common::oracle_output(path, &["--retainers", &id]) else {
        eprintln!("SKIPPED: DevTools oracle not built");
        return;
    };
    let want = read_chains(&dir).remove(&snapshot.node_id(closure)).expect("oracle chain");
    let index = RetainerIndex::build(&snapshot);
    let view = RetainerView::new(
        &snapshot,
        &index,
        &analysis.distance,
        &analysis.user_roots,
        &analysis.weakmaps,
        &ViewOptions::default(),
    );
    let chain = view.chain(closure, DEVTOOLS_MAX_STEPS);
    let got: Vec<(u32, String)> =
        chain.steps.iter().map(|r| (snapshot.node_id(r.node), snapshot.edge_name(r.edge).into_owned())).collect();
    let want: Vec<(u32, String)> = want.into_iter().map(|w| (w.0, w.3)).collect();
    assert_eq!(got, want);
    assert_eq!(chain.stop, ChainStop::NoRetainers, "the chain ends at (GC roots)");
    assert!(chain.steps.iter().all(|r| r.distance >= BASE_SYSTEM_DISTANCE), "reached only through GC roots");
}

/// Ignoring a retainer on the path (DevTools' "Ignore this retainer") makes the chain avoid it.
#[test]
fn ignoring_a_retainer_changes_the_path() {
    let snapshots = common::scenario_snapshots("unbounded-cache");
    let path = snapshots.last().unwrap();
    let snapshot = common::load(path);
    let analysis = analyse(&snapshot);
    let index = RetainerIndex::build(&snapshot);
    let plain = RetainerView::new(
        &snapshot,
        &index,
        &analysis.distance,
        &analysis.user_roots,
        &analysis.weakmaps,
        &ViewOptions::default(),
    );
    // A user-reachable object at distance 4 or more whose first chain has an intermediate retainer.
    let object = (0..snapshot.node_count() as NodeIndex)
        .find(|&n| {
            analysis.distance[n as usize] >= 4
                && analysis.distance[n as usize] < 20
                && snapshot.node_type(n) == leakscope_heap::NodeType::Object
        })
        .expect("an object at distance 4+");
    let first = plain.chain(object, DEVTOOLS_MAX_STEPS);
    let ignored = first.steps[0].node;
    let view = RetainerView::new(
        &snapshot,
        &index,
        &analysis.distance,
        &analysis.user_roots,
        &analysis.weakmaps,
        &ViewOptions { show_weak: false, ignored: vec![ignored] },
    );
    assert!(view.distance(ignored) >= 2 * BASE_SYSTEM_DISTANCE, "an ignored node is unreachable in the view");
    let rows = view.sorted_retainers(object);
    assert!(!rows.is_empty());
    // Rows stay sorted by distance, and the ignored retainer (if it still retains) sorts last.
    assert!(rows.windows(2).all(|w| w[0].distance <= w[1].distance));
    let second = view.chain(object, DEVTOOLS_MAX_STEPS);
    if rows.len() > 1 {
        assert_ne!(second.steps[0].node, ignored, "the chain avoids the ignored retainer");
    } else {
        assert_eq!(second.stop, ChainStop::Unreachable, "the only retainer is ignored");
    }
}

fn truth(scenario: &str) -> serde_json::Value {
    let path = common::shared_dir().join("scenarios").join(format!("{scenario}.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn contains_in_order(names: &[String], wanted: &[Vec<String>]) -> bool {
    let mut i = 0;
    for name in names {
        if i < wanted.len() && wanted[i].contains(name) {
            i += 1;
        }
    }
    i == wanted.len()
}

/// `retainers --class <truth class>`: the top path groups hold the leak's `must_mention` edges in order, and a
/// closure on that path carries a position in the scenario's file.
fn check_truth_path(scenario: &str, class_override: Option<&str>, file: &str) {
    let truth = truth(scenario);
    let leak = &truth["leaks"][0];
    let class = class_override.map(str::to_string).unwrap_or_else(|| leak["class"].as_str().unwrap().to_string());
    let wanted: Vec<Vec<String>> = leak["must_mention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let m = m.as_str().unwrap().to_string();
            let mut names = vec![m.clone()];
            if let Some(alts) = leak["alternatives"][&m].as_array() {
                names.extend(alts.iter().map(|a| a.as_str().unwrap().to_string()));
            }
            names
        })
        .collect();
    let snapshots = common::scenario_snapshots(scenario);
    let snapshot = common::load(snapshots.last().unwrap());
    let analysis = analyse(&snapshot);
    let index = RetainerIndex::build(&snapshot);
    let view = RetainerView::new(
        &snapshot,
        &index,
        &analysis.distance,
        &analysis.user_roots,
        &analysis.weakmaps,
        &ViewOptions::default(),
    );
    let members = find::nodes_of_class(&snapshot, &analysis, &class).unwrap();
    let groups = paths::group_by_path(&snapshot, &analysis, &view, &members);
    let top: Vec<&RetainingPath> = groups.iter().take(3).map(|g| &g.path).collect();
    let hit = top.iter().find(|p| contains_in_order(&p.edge_names(&snapshot), &wanted)).unwrap_or_else(|| {
        let shown: Vec<String> = top.iter().map(|p| p.edge_text(&snapshot)).collect();
        panic!("{scenario}: no top group of {class} mentions {wanted:?}: {shown:#?}")
    });
    let scripts = ScriptNames::build(&snapshot);
    let located: Vec<String> = hit
        .steps
        .iter()
        .filter(|s| {
            snapshot.node_type(s.node) == leakscope_heap::NodeType::Closure || inspect::is_context(&snapshot, s.node)
        })
        .filter_map(|s| inspect::source_location(&snapshot, Some(&index), s.node))
        .map(|l| scripts.position(l).to_string())
        .collect();
    assert!(
        located.iter().any(|l| l.contains(file)
            && l.split(':').nth_back(1).is_some_and(|line| line.parse::<u32>().is_ok_and(|n| n >= 1))),
        "{scenario}: no closure or context on the path is located in {file}: {located:?}"
    );
    eprintln!("{scenario}: {} via {}; located {located:?}", class, hit.edge_text(&snapshot));
}

#[test]
fn class_paths_listener_leak() {
    check_truth_path("listener-leak", None, "listener-leak.js");
}

#[test]
fn class_paths_unbounded_cache() {
    check_truth_path("unbounded-cache", None, "unbounded-cache.js");
}

#[test]
fn class_paths_linked_list() {
    check_truth_path("linked-list", None, "linked-list.js");
}

#[test]
fn class_paths_global_array() {
    check_truth_path("global-array", None, "global-array.js");
}

#[test]
fn class_paths_timer_leak() {
    // The truth names no class (the container is Node's timer list); the leaked objects are Timeouts, held
    // by Node's own timers module, whose closures are located in `node:timers`.
    check_truth_path("timer-leak", Some("Timeout"), "node:timers");
}

/// The leaked closure itself is located in the scenario file, at the line where `onMessage` is defined.
#[test]
fn closure_location_points_at_its_definition() {
    let snapshots = common::scenario_snapshots("listener-leak");
    let snapshot = common::load(snapshots.last().unwrap());
    let scripts = ScriptNames::build(&snapshot);
    let closure = (0..snapshot.node_count() as NodeIndex)
        .find(|&n| snapshot.node_type(n) == leakscope_heap::NodeType::Closure && snapshot.node_name(n) == "onMessage")
        .unwrap();
    let position = scripts.node_position(&snapshot, closure).expect("a location");
    assert!(position.file.as_deref().unwrap_or("").ends_with("listener-leak.js"), "{position}");
    let source = std::fs::read_to_string(common::shared_dir().join("scenarios/listener-leak.js")).unwrap();
    let line = source.lines().nth(position.line as usize - 1).unwrap();
    assert!(line.contains("onMessage"), "line {} is {line:?}", position.line);
}

/// Several paths: all distinct, all ending at the object, the first being DevTools' chain.
#[test]
fn several_paths_are_distinct_and_valid() {
    let snapshots = common::scenario_snapshots("unbounded-cache");
    let snapshot = common::load(snapshots.last().unwrap());
    let analysis = analyse(&snapshot);
    let index = RetainerIndex::build(&snapshot);
    let view = RetainerView::new(
        &snapshot,
        &index,
        &analysis.distance,
        &analysis.user_roots,
        &analysis.weakmaps,
        &ViewOptions::default(),
    );
    // An object with at least two retainers.
    let object = (0..snapshot.node_count() as NodeIndex)
        .find(|&n| {
            analysis.distance[n as usize] > 3
                && analysis.distance[n as usize] < 10
                && view.sorted_retainers(n).len() >= 2
        })
        .unwrap();
    let found = paths::retaining_paths(&view, object, 3, 20);
    assert!(found.len() >= 2, "at least two paths");
    let first = RetainingPath::from_chain(&view.chain(object, 20));
    assert_eq!(found[0].steps, first.steps);
    for p in &found {
        assert_eq!(p.steps.last().unwrap().node, object);
        for pair in p.steps.windows(2) {
            let edge = pair[1].edge_in.unwrap();
            assert_eq!(snapshot.edge_target(edge), pair[1].node, "each edge leads to the next step");
            assert!(snapshot.edges(pair[0].node).contains(&edge), "each edge leaves the previous step");
        }
    }
    for i in 0..found.len() {
        for j in i + 1..found.len() {
            assert_ne!(found[i].steps, found[j].steps);
        }
    }
}
