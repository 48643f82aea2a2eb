//! Shared helpers for the integration tests: finding `shared/`, running real Node to write snapshots, and
//! running the DevTools oracle.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// `shared/` sits beside the repository (CI clones the repo next to a copy of it); `LEAKSCOPE_SHARED` overrides.
pub fn shared_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LEAKSCOPE_SHARED") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared").canonicalize().expect("../shared beside the repo")
}

pub fn work_dir() -> PathBuf {
    let dir = std::env::var("LEAKSCOPE_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-data"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

static SCENARIO_LOCK: Mutex<()> = Mutex::new(());

/// Runs a scenario in snapshots mode once per test run (cached by directory), returning its snapshot paths.
pub fn scenario_snapshots(name: &str) -> Vec<PathBuf> {
    let _guard = SCENARIO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = work_dir().join("scenarios").join(name);
    let done = out.join("meta.json");
    if !done.exists() {
        let script = shared_dir().join("scenarios").join(format!("{name}.js"));
        let status = Command::new("node")
            .arg(&script)
            .arg("snapshots")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("node is on PATH");
        assert!(status.success(), "scenario {name} failed");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "heapsnapshot"))
        .collect();
    files.sort();
    files
}

/// The DevTools oracle's `dist/oracle.cjs`, when it has been built (`.ci/run` builds it; see
/// `shared/oracles/devtools/README.md`). Tests that need it say so and skip without it.
pub fn devtools_oracle() -> Option<PathBuf> {
    let dir = std::env::var("LEAKSCOPE_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/leakscope-peers"));
    let oracle = dir.join("devtools/dist/oracle.cjs");
    oracle.exists().then_some(oracle)
}

/// Runs the oracle on `snapshot` once (cached), returning its output folder.
pub fn oracle_output(snapshot: &Path, extra: &[&str]) -> Option<PathBuf> {
    let oracle = devtools_oracle()?;
    let key = format!(
        "{}-{}{}",
        snapshot.parent().unwrap().file_name().unwrap().to_string_lossy(),
        snapshot.file_stem().unwrap().to_string_lossy(),
        extra.join("").replace(['-', ','], "_")
    );
    let out = work_dir().join("oracle").join(key);
    if !out.join("done").exists() {
        let status = Command::new("node")
            .arg(&oracle)
            .args(extra)
            .arg(snapshot)
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("node runs the oracle");
        assert!(status.success(), "oracle failed on {}", snapshot.display());
        std::fs::write(out.join("done"), "").unwrap();
    }
    Some(out)
}

pub fn load(path: &Path) -> leakscope_heap::HeapSnapshot {
    let file = std::fs::File::open(path).unwrap();
    leakscope_heap::parse(std::io::BufReader::new(file)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Scores a leak report (the JSON of `leakscope leaks`, in a file) against a scenario's truth file with the
/// scenarios' own scorer, `shared/scenarios/tools/score.js`; returns the scorer's JSON line.
pub fn score_leak_report(truth: &Path, report: &Path) -> serde_json::Value {
    let out = Command::new("node")
        .arg(shared_dir().join("scenarios/tools/score.js"))
        .arg(truth)
        .arg(report)
        .output()
        .expect("node runs the scorer");
    let line = String::from_utf8(out.stdout).expect("the scorer writes UTF-8");
    serde_json::from_str(line.trim()).unwrap_or_else(|_| panic!("scorer said: {line}"))
}
