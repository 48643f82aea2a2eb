//! `leakscope leaks` on every visible scenario (real Node writes the snapshots at test time), scored with the
//! scenarios' own scorer: each truth leak found as a top finding, no false findings, controls clean.

#[path = "../../heap/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::shared_dir;

fn out_dir(name: &str) -> PathBuf {
    let dir = common::work_dir().join("leaks").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the scenario in snapshots mode (three rounds) once per test run and returns the snapshot paths.
fn snapshots(name: &str) -> Vec<PathBuf> {
    static CACHE: std::sync::Mutex<Vec<(String, Vec<PathBuf>)>> = std::sync::Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, files)) = cache.iter().find(|(n, _)| n == name) {
        return files.clone();
    }
    let files = run_scenario(name);
    cache.push((name.to_string(), files.clone()));
    files
}

fn run_scenario(name: &str) -> Vec<PathBuf> {
    let dir = out_dir(name);
    let script = shared_dir().join("scenarios").join(format!("{name}.js"));
    let output = Command::new("node").arg(&script).arg("snapshots").arg(&dir).output().expect("node runs");
    assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(PathBuf::from).collect()
}

/// Runs `leakscope leaks --json` and scores the report; returns (exit code, scorer's JSON line).
fn leaks_and_score(name: &str, truth: &Path, files: &[PathBuf]) -> (i32, serde_json::Value) {
    let report = out_dir(name).join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_leakscope")).arg("leaks").args(files).arg("--json").output().unwrap();
    std::fs::write(&report, &output.stdout).unwrap();
    let code = output.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1, "leaks failed: {}", String::from_utf8_lossy(&output.stderr));
    (code, common::score_leak_report(truth, &report))
}

fn check_scenario(name: &str) {
    let files = snapshots(name);
    assert_eq!(files.len(), 3, "{name} writes three snapshots");
    let truth_path = shared_dir().join("scenarios").join(format!("{name}.truth.json"));
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&truth_path).unwrap()).unwrap();
    let expected_leaks = truth["leaks"].as_array().unwrap().len() as u64;
    let (code, score) = leaks_and_score(name, &truth_path, &files);
    eprintln!("{name}: {score}");
    assert_eq!(score["found"].as_u64(), Some(expected_leaks), "{name}: every truth leak found: {score}");
    assert_eq!(score["false_findings"].as_u64(), Some(0), "{name}: no false findings: {score}");
    let ranks: Vec<u64> = score["ranks"].as_array().unwrap().iter().filter_map(|r| r.as_u64()).collect();
    assert!(ranks.iter().all(|&r| r <= expected_leaks), "{name}: truth leaks are the top findings: {ranks:?}");
    assert_eq!(code, if expected_leaks > 0 { 1 } else { 0 }, "{name}: exit code says whether leaks were found");
}

#[test]
fn listener_leak() {
    check_scenario("listener-leak");
}

#[test]
fn unbounded_cache() {
    check_scenario("unbounded-cache");
}

#[test]
fn linked_list() {
    check_scenario("linked-list");
}

#[test]
fn timer_leak() {
    check_scenario("timer-leak");
}

#[test]
fn global_array() {
    check_scenario("global-array");
}

#[test]
fn bounded_lru_control_is_clean() {
    check_scenario("bounded-lru");
}

#[test]
fn churn_control_is_clean() {
    check_scenario("churn");
}

#[test]
fn listener_leak_report_explains_the_leak() {
    let files = snapshots("listener-leak");
    let output =
        Command::new(env!("CARGO_BIN_EXE_leakscope")).arg("leaks").args(&files).arg("--json").output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let finding = &report["findings"][0];
    assert_eq!(finding["kind"], "event-listeners");
    assert_eq!(finding["container"]["class"], "Array");
    let diagnosis = finding["diagnosis"].as_str().unwrap();
    assert!(diagnosis.contains("'message'"), "names the event: {diagnosis}");
    // 2000 requests per round, each adds one listener and its closure scope, response object, strings...
    let per_round = finding["growth"]["objects_per_round"].as_array().unwrap();
    assert_eq!(per_round.len(), 2);
    assert!(per_round.iter().all(|v| v.as_u64().unwrap() >= 2000), "{per_round:?}");
    // The listener's source line: `bus.on('message', function onMessage(msg) {` in listener-leak.js.
    let sources = finding["source"].as_array().unwrap();
    let listener =
        sources.iter().find(|s| s["function"] == "onMessage").expect("onMessage is named as the held function");
    assert!(listener["file"].as_str().unwrap().ends_with("listener-leak.js"));
    let script = std::fs::read_to_string(shared_dir().join("scenarios/listener-leak.js")).unwrap();
    let line = script.lines().nth(listener["line"].as_u64().unwrap() as usize - 1).unwrap();
    assert!(line.contains("function onMessage"), "line {} is `{line}`", listener["line"]);
    assert!(finding["representative"]["path"].as_array().unwrap().len() >= 3);
}

#[test]
fn refuses_a_single_snapshot() {
    let files = snapshots("churn");
    let output = Command::new(env!("CARGO_BIN_EXE_leakscope")).arg("leaks").arg(&files[0]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least two snapshots"));
}

#[test]
fn refuses_snapshots_of_different_processes() {
    let a = snapshots("churn");
    let b = snapshots("global-array");
    let output = Command::new(env!("CARGO_BIN_EXE_leakscope")).arg("leaks").arg(&a[0]).arg(&b[2]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("one process"));
}

#[test]
fn bench_http_service_three_leaks_are_three_findings() {
    // shared/bench/gen-snapshot.js: a node:http service leaking through bus listeners, a sessions Map and a
    // linked list, all in one module scope.
    let dir = out_dir("gen-snapshot");
    let output = Command::new("node")
        .arg(shared_dir().join("bench/gen-snapshot.js"))
        .arg(&dir)
        .arg("400")
        .output()
        .expect("node runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let files: Vec<PathBuf> = (1..=3).map(|i| dir.join(format!("big{i}.heapsnapshot"))).collect();
    let truth = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/gen-snapshot.truth.json");
    let (code, score) = leaks_and_score("gen-snapshot", &truth, &files);
    assert_eq!(code, 1);
    assert_eq!(score["found"].as_u64(), Some(3), "{score}");
    assert_eq!(score["false_findings"].as_u64(), Some(0), "{score}");
}
