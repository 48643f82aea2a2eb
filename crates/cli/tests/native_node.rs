//! Node under the preload: runs without crashing, dumps are produced (periodic, on request and at exit) and
//! symbolized with named C++ frames and named JS frames from the perf map.

#[path = "native_common.rs"]
mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::time::Duration;

/// The node tests run one at a time (timing-sensitive on a 2-core machine).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn node_series_names_the_leaking_js_function() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !tool_ok("node") {
        eprintln!("skipped: node not on PATH");
        return;
    }
    let dir = scratch("node");
    let script = fixtures().join("grow.js");
    let out = run(leakscope()
        .args(["native", "--every", "1s", "--json", "--top", "0", "-o"])
        .arg(&dir)
        .args(["--", "node"])
        .arg(&script)
        .arg("3500"));
    let v = json(&out);
    assert_eq!(v["exit_status"], 0, "{v:#}");
    let dumps = v["dumps"].as_array().unwrap();
    assert!(dumps.len() >= 3, "{v:#}");
    // Named frames: native C++ (from node's symbols) and JS (from /tmp/perf-PID.map).
    let rows = v["final"]["rows"].as_array().unwrap();
    let frames: Vec<&serde_json::Value> = rows.iter().flat_map(|r| r["frames"].as_array().unwrap()).collect();
    assert!(frames.iter().any(|f| f["kind"] == "native" && f["function"].is_string()), "no named native frame");
    // A growing stack goes through leakyBuffers (a JIT frame). The leak can be split over a few stacks (V8 tiers
    // change the frames between JS and C++), so any growing stack counts.
    let series = v["series"].as_array().unwrap();
    let growing: Vec<&serde_json::Value> = series.iter().filter(|s| s["verdict"] == "growing").collect();
    assert!(
        growing.iter().any(|s| s["key"].as_str().unwrap().contains("leakyBuffers")),
        "no growing stack through leakyBuffers: {:#}",
        serde_json::Value::Array(series.iter().take(5).cloned().collect())
    );
    // diff of the first and the last periodic dump agrees.
    let first = dumps[0].as_str().unwrap();
    let last = dumps[dumps.len() - 2].as_str().unwrap();
    let d = json(&run(leakscope().args(["native", "diff", first, last, "--json", "--top", "3"])));
    let rows = d["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["key"].as_str().unwrap().contains("leakyBuffers")), "{d:#}");
}

#[test]
fn dump_on_request_from_a_running_node() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !tool_ok("node") {
        eprintln!("skipped: node not on PATH");
        return;
    }
    let dir = scratch("node-dump");
    let mut child = leakscope()
        .args(["native", "--json", "-o"])
        .arg(&dir)
        .args(["--", "node"])
        .arg(fixtures().join("grow.js"))
        .arg("2500")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the pid from stderr; stdout (the JSON report) is collected at the end.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let pid = profiled_pid(&line);
    std::thread::sleep(Duration::from_millis(1200));
    let file = dir.join("requested.jsonl");
    let v = dump_and_report(pid, &file);
    assert!(v["samples"].as_u64().unwrap() > 10, "{v:#}");
    let named = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["frames"].as_array().unwrap().clone())
        .any(|f| f["function"].as_str().is_some_and(|s| s.contains("leakyBuffers")));
    assert!(named, "leakyBuffers not among the top stacks: {v:#}");
    let drain = std::thread::spawn(move || std::io::Read::read_to_end(&mut stderr, &mut Vec::new()));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", out.status);
    let _ = drain.join();
    // A pid without the preload gives a clear error, exit 3.
    let me = std::process::id().to_string();
    let out = leakscope().args(["native", "dump", "--pid", &me]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
}
