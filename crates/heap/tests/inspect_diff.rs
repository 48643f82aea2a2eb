//! The Comparison view against Chrome DevTools' own `calculateSnapshotDiff` (the oracle's `--diff`), on
//! snapshot pairs written by real Node at test time; and the different-process check.

mod common;

use leakscope_heap::inspect::diff::{self, ClassMembers, ClassedSnapshot};
use leakscope_heap::HeapSnapshot;
use std::collections::BTreeMap;
use std::path::Path;

/// key → (added_count, removed_count, added_size, removed_size)
type Rows = BTreeMap<String, (u64, u64, u64, u64)>;

fn ours(base: &HeapSnapshot, target: &HeapSnapshot) -> Rows {
    let target_classed = ClassedSnapshot::light(target, None, false);
    let base_classed = ClassedSnapshot::light(base, Some(target_classed.classes.definitions.clone()), false);
    let result = diff::diff(&ClassMembers::build(base, &base_classed), &ClassMembers::build(target, &target_classed));
    for row in &result.classes {
        assert_eq!(row.added.len() as u64, row.added_count);
        assert_eq!(row.count_delta, row.added_count as i64 - row.removed_count as i64);
        assert_eq!(row.size_delta, row.added_size as i64 - row.removed_size as i64);
    }
    assert!(result.classes.windows(2).all(|w| w[0].added_size >= w[1].added_size), "sorted by allocated size");
    result
        .classes
        .iter()
        .map(|r| {
            (r.key.replace(['\t', '\r', '\n'], " "), (r.added_count, r.removed_count, r.added_size, r.removed_size))
        })
        .collect()
}

fn oracle_rows(dir: &Path) -> Rows {
    let text = std::fs::read_to_string(dir.join("diff.tsv")).unwrap();
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let n = |i: usize| f[i].parse::<f64>().unwrap() as u64;
            (f[0].to_string(), (n(2), n(3), n(5), n(6)))
        })
        .collect()
}

fn check_pair(scenario: &str, from: usize, to: usize) {
    let snapshots = common::scenario_snapshots(scenario);
    let (base_path, target_path) = (&snapshots[from], &snapshots[to]);
    let base = common::load(base_path);
    let target = common::load(target_path);
    let got = ours(&base, &target);
    assert!(!got.is_empty(), "{scenario}: something changed between snapshots");
    let Some(oracle) = common::devtools_oracle() else {
        eprintln!("SKIPPED: DevTools oracle not built (run shared/oracles/devtools/install.sh)");
        return;
    };
    let out = common::work_dir().join("oracle").join(format!("{scenario}-diff-s{}-s{}", from + 1, to + 1));
    if !out.join("done").exists() {
        let status = std::process::Command::new("node")
            .arg(&oracle)
            .arg("--diff")
            .arg(base_path)
            .arg(target_path)
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(out.join("done"), "").unwrap();
    }
    let want = oracle_rows(&out);
    let mut mismatches = Vec::new();
    for (key, w) in &want {
        match got.get(key) {
            Some(g) if g == w => {}
            other => mismatches.push(format!("{key}: leakscope {other:?}, DevTools {w:?}")),
        }
    }
    for key in got.keys().filter(|k| !want.contains_key(*k)) {
        mismatches.push(format!("{key}: only in leakscope {:?}", got[key]));
    }
    assert!(
        mismatches.is_empty(),
        "{scenario} s{}→s{}: {} of {} rows differ:\n{}",
        from + 1,
        to + 1,
        mismatches.len(),
        want.len(),
        mismatches.join("\n")
    );
    eprintln!("{scenario} s{}→s{}: {} class rows agree with DevTools", from + 1, to + 1, want.len());
}

#[test]
fn diff_matches_devtools_listener_leak() {
    check_pair("listener-leak", 0, 1);
    check_pair("listener-leak", 1, 2);
}

#[test]
fn diff_matches_devtools_unbounded_cache() {
    check_pair("unbounded-cache", 0, 1);
    check_pair("unbounded-cache", 1, 2);
}

#[test]
fn diff_matches_devtools_linked_list() {
    check_pair("linked-list", 1, 2);
}

#[test]
fn snapshots_of_one_process_share_ids() {
    let snapshots = common::scenario_snapshots("linked-list");
    let overlap = diff::id_overlap(&common::load(&snapshots[1]), &common::load(&snapshots[2]));
    assert!(!overlap.different_processes(), "{overlap:?}");
    assert!(overlap.shared * 10 > overlap.base_objects * 9, "most objects survive: {overlap:?}");
}

#[test]
fn snapshots_of_different_processes_are_told_apart() {
    let a = common::scenario_snapshots("linked-list");
    let b = common::scenario_snapshots("unbounded-cache");
    let overlap = diff::id_overlap(&common::load(&a[2]), &common::load(&b[2]));
    eprintln!("linked-list s3 vs unbounded-cache s3: {overlap:?}");
    assert!(overlap.different_processes(), "{overlap:?}");
}
