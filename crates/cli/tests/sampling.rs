//! `profile`, `sample` and `timeline` against real node (no mocks):
//! - `fixtures/records.js` keeps ~200 MB live from `makeRecord`: the profile must attribute ≥ 90 % of the
//!   live sampled bytes to that function's stack and estimate the total within ±15 % of the measured growth;
//! - `node --heap-prof` output is read by `profile`, and written back byte for byte;
//! - the pprof output decodes with the npm package `pprof-format` and its totals match the `.heapprofile`;
//! - the profile the protocol returns re-parses equal after our writer;
//! - `timeline` on `listener-leak.js loop` names the leaking allocation site first; on the snapshot it keeps,
//!   `summary --allocated-by` puts that site at the top by count and `show` gives a leaked object's stack;
//! - `summary --allocated-by` on an ordinary snapshot exits 2 and points to `timeline`.

#[path = "support/child.rs"]
mod child;
#[path = "support/pprof_format.rs"]
mod pprof_format;
use pprof_format::pprof_format;

use leakscope_profile::HeapProfile;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_leakscope");

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).to_string_lossy().into_owned()
}

fn scenario(name: &str) -> String {
    let dir = match std::env::var("LEAKSCOPE_SHARED") {
        Ok(shared) => PathBuf::from(shared).join("scenarios"),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/scenarios"),
    };
    let path = dir.join(format!("{name}.js"));
    assert!(path.exists(), "scenario {} not found (set LEAKSCOPE_SHARED)", path.display());
    path.to_string_lossy().into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sampling-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Kills the child (and waits) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stdout, read on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, prefix: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => continue,
            Err(_) => panic!("no line starting with {prefix:?} within {timeout:?}"),
        }
    }
}

/// Runs a command with a deadline; returns (status ok, stdout, stderr).
fn run(cmd: &mut Command, timeout: Duration) -> (bool, String, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = child::wait_within(&mut child, timeout, || format!("{cmd:?} did not finish within {timeout:?}"));
    (status.success(), out_thread.join().unwrap(), err_thread.join().unwrap())
}

fn function<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["functions"].as_array()?.iter().find(|f| f["function"] == name)
}

/// Checks the `profile --json` / `sample --json` report against the measured heap growth.
fn check_records_report(report: &Value, measured: u64) {
    let total = report["total_bytes"].as_u64().unwrap();
    let make = function(report, "makeRecord").expect("makeRecord in the report");
    let share = make["total_bytes"].as_u64().unwrap() as f64 / total as f64;
    assert!(share >= 0.90, "makeRecord's stack has only {:.1}% of the sampled bytes", share * 100.0);
    let error = (total as f64 - measured as f64) / measured as f64;
    assert!(error.abs() <= 0.15, "estimated {total} bytes, measured {measured}: off by {:.1}%", error * 100.0);
    assert!(report["samples"].as_u64().unwrap() > 100);
}

const DECODE_JS: &str = r#"
const { Profile } = require(process.argv[1]);
const p = Profile.decode(require('zlib').gunzipSync(require('fs').readFileSync(process.argv[2])));
const s = p.stringTable.strings;
const types = p.sampleType.map((t) => s[Number(t.type)]);
const totals = types.map(() => 0);
for (const x of p.sample) x.value.forEach((v, i) => { totals[i] += Number(v); });
const functions = p.function.map((f) => ({ name: s[Number(f.name)], file: s[Number(f.filename)], line: Number(f.startLine) }));
console.log(JSON.stringify({ types, totals, samples: p.sample.length, functions,
  period: Number(p.period), defaultSampleType: s[Number(p.defaultSampleType)] }));
"#;

/// Decodes a .pb.gz with pprof-format and checks it against the .heapprofile it came from.
/// `with_location`: also require makeRecord's file and line (node --heap-prof sometimes writes frames of the
/// main script without url and line: the profile is taken while the process exits).
fn check_pprof(pprof: &Path, heapprofile: &Path, with_location: bool) {
    let Some(module) = pprof_format() else { return };
    let (ok, out, err) = run(
        Command::new("node").arg("-e").arg(DECODE_JS).arg(module.to_string_lossy().as_ref()).arg(pprof),
        Duration::from_secs(30),
    );
    assert!(ok, "pprof-format could not decode {}: {err}", pprof.display());
    let decoded: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(decoded["types"], serde_json::json!(["inuse_objects", "inuse_space"]));
    assert_eq!(decoded["defaultSampleType"], "inuse_space");
    assert_eq!(decoded["period"], 524288);
    let profile = HeapProfile::parse(&std::fs::read(heapprofile).unwrap()).unwrap();
    let self_sum: u64 = profile.nodes.iter().map(|n| n.self_size).sum();
    assert_eq!(decoded["totals"][1].as_u64(), Some(self_sum), "pprof inuse_space total vs Σ selfSize");
    assert!(decoded["totals"][0].as_u64().unwrap() > 0);
    let make = decoded["functions"].as_array().unwrap().iter().find(|f| f["name"] == "makeRecord");
    let make = make.expect("makeRecord in the pprof functions");
    if with_location {
        assert!(make["file"].as_str().unwrap().ends_with("records.js"), "{make}");
        assert!(make["line"].as_u64().unwrap() > 0);
    }
}

#[test]
fn profile_reads_node_heap_prof_output() {
    let dir = temp_dir("heapprof");
    let (ok, out, err) = run(
        Command::new("node")
            .arg("--heap-prof")
            .arg(format!("--heap-prof-dir={}", dir.display()))
            .arg(fixture("records.js"))
            .args(["--now", "--exit", "--mb", "200"]),
        Duration::from_secs(60),
    );
    assert!(ok, "node --heap-prof failed: {err}");
    let measured: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "heapprofile"))
        .expect("node wrote a .heapprofile");

    // Our model writes Node's file back byte for byte.
    let bytes = std::fs::read(&file).unwrap();
    let parsed = HeapProfile::parse(&bytes).unwrap();
    assert_eq!(parsed.to_json().unwrap(), bytes, "re-serialized profile differs from node's file");

    let (pprof, folded, svg) = (dir.join("p.pb.gz"), dir.join("p.folded"), dir.join("p.svg"));
    let (ok, out, err) = run(
        Command::new(BIN)
            .arg("profile")
            .arg(&file)
            .args(["--json", "--top", "0", "--pprof"])
            .arg(&pprof)
            .arg("--folded")
            .arg(&folded)
            .arg("--flamegraph")
            .arg(&svg),
        Duration::from_secs(30),
    );
    assert!(ok, "leakscope profile failed: {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["interval"], 524288, "the interval is inferred from the samples");
    check_records_report(&report, measured["bytes"].as_u64().unwrap());
    let folded_text = std::fs::read_to_string(&folded).unwrap();
    let folded_total: u64 = folded_text.lines().map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap()).sum();
    assert_eq!(folded_total, report["total_bytes"].as_u64().unwrap());
    assert!(folded_text.contains(";makeRecord"));
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("<svg") && svg_text.contains("makeRecord"));
    check_pprof(&pprof, &file, false);

    // The terminal report names the allocation site with a 1-based line.
    let (ok, out, err) = run(Command::new(BIN).arg("profile").arg(&file).args(["--top", "5"]), Duration::from_secs(30));
    assert!(ok, "{err}");
    assert!(out.contains("makeRecord"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sample_attributes_live_bytes_to_make_record() {
    let dir = temp_dir("sample");
    let mut node = Command::new("node")
        .arg(fixture("records.js"))
        .args(["--mb", "200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node");
    let node_lines = lines_of(&mut node);
    let node = Guard(node);
    let ready = wait_line(&node_lines, "ready ", Duration::from_secs(10));
    let pid: u32 = ready["ready ".len()..].trim().parse().unwrap();
    let (output, pprof) = (dir.join("r.heapprofile"), dir.join("r.pb.gz"));
    let mut sampler = Command::new(BIN)
        .arg("sample")
        .args(["--pid", &pid.to_string(), "--duration", "5s", "--json", "-o"])
        .arg(&output)
        .arg("--pprof")
        .arg(&pprof)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("leakscope sample");
    // Allocate once sampling has started (leakscope says so on stderr).
    let stderr = sampler.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    wait_line(&rx, "sampling pid", Duration::from_secs(15));
    let signalled = Command::new("kill").args(["-USR2", &pid.to_string()]).status().expect("kill");
    assert!(signalled.success());
    let measured: Value =
        serde_json::from_str(&wait_line(&node_lines, "{", Duration::from_secs(20))).expect("records.js result");
    let mut stdout = String::new();
    sampler.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child::wait_within(&mut sampler, Duration::from_secs(30), || "leakscope sample did not finish".into());
    let errors: Vec<String> = rx.try_iter().collect();
    assert!(status.success(), "leakscope sample failed: {errors:?}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["interval"], 524288);
    assert_eq!(report["interval_source"], "given");
    check_records_report(&report, measured["bytes"].as_u64().unwrap());
    // The file is a valid profile that writes back to the same bytes, and pprof agrees with it.
    let bytes = std::fs::read(&output).unwrap();
    assert_eq!(HeapProfile::parse(&bytes).unwrap().to_json().unwrap(), bytes);
    check_pprof(&pprof, &output, true);
    // leakscope closed the inspector it opened; the target keeps running.
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "the target must keep running");
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn written_profile_reparses_equal_to_the_protocol_json() {
    use leakscope_inspector::sampling::SamplingOptions;
    use leakscope_inspector::{AttachOptions, Session, Target};
    let target = Target::Launch {
        program: "node".into(),
        args: vec![fixture("records.js"), "--now".into(), "--mb".into(), "20".into()],
    };
    let opts = AttachOptions { child_stdout_to_stderr: true, ..AttachOptions::default() };
    let mut session = Session::attach(&target, &opts).expect("launch node under the inspector");
    session.start_sampling(&SamplingOptions { interval: 64 * 1024, ..SamplingOptions::default() }).unwrap();
    session
        .evaluate("(() => { const a = []; for (let i = 0; i < 2000; i++) a.push(new Array(100).fill(i)); globalThis.t = a; return a.length; })()")
        .unwrap();
    let reply = session.call("HeapProfiler.getSamplingProfile", serde_json::json!({})).unwrap();
    let protocol = &reply["profile"];
    assert!(protocol["samples"].as_array().is_some_and(|s| !s.is_empty()));
    let written = HeapProfile::from_value(protocol).unwrap().to_json().unwrap();
    let reparsed: Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(&reparsed, protocol, "the .heapprofile we write must re-parse equal to the protocol's JSON");
    // The same through the library's text path (what `sample` writes).
    let text = session.sampling_profile(Duration::from_secs(10)).unwrap();
    let again = HeapProfile::parse(text.as_bytes()).unwrap().to_json().unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&again).unwrap(), serde_json::from_str::<Value>(&text).unwrap());
    // Deep stacks: the reply nests deeper than serde_json's default limit (2 levels per frame, 128); the
    // client reads it anyway and returns the whole tree.
    session
        .evaluate("(() => { function d(n) { if (n === 0) { const a = []; for (let i = 0; i < 3000; i++) a.push(new Array(100).fill(i)); globalThis.deep = a; return 1; } return d(n - 1); } return d(90); })()")
        .unwrap();
    let deep = HeapProfile::parse(session.sampling_profile(Duration::from_secs(10)).unwrap().as_bytes()).unwrap();
    let depth = (0..deep.nodes.len()).map(|i| deep.stack(i).len()).max().unwrap_or(0);
    assert!(depth > 90, "deepest stack has {depth} frames");
    session.stop_sampling(Duration::from_secs(10)).unwrap();
    session.close().unwrap();
}

#[test]
fn timeline_names_the_leaking_allocation_site() {
    let dir = temp_dir("timeline");
    let snapshot = dir.join("t.heapsnapshot");
    let (ok, out, err) =
        run(
            Command::new(BIN)
                .args(["timeline", "--duration", "3s", "--json", "--top", "5", "-o"])
                .arg(&snapshot)
                .args(["--", "node", &scenario("listener-leak"), "loop"]),
            Duration::from_secs(90),
        );
    assert!(ok, "leakscope timeline failed: {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let top = &report["groups"][0];
    let function = top["function"].as_str().unwrap();
    // The leak is made in listener-leak.js by `createResponse` (the response object) and by `unit` (the listener
    // closure and its scope); which one tops the list depends on V8 inlining one into the other.
    assert!(
        (function.starts_with("createResponse ") || function.starts_with("unit "))
            && function.contains("listener-leak.js"),
        "top surviving group is {function}, expected createResponse or unit in listener-leak.js: {report}"
    );
    assert!(top["count"].as_u64().unwrap() > 1000);
    assert!(top["retained_bytes"].as_u64().unwrap() >= top["bytes"].as_u64().unwrap() / 2);
    assert!(report["series"].as_array().is_some_and(|s| s.len() >= 10), "the allocation series is collected");
    assert!(snapshot.exists(), "the snapshot is kept");

    // The same snapshot, offline: grouped by allocating function, most surviving objects first.
    let (ok, out, err) = run(
        Command::new(BIN).arg("summary").arg(&snapshot).args(["--allocated-by", "--sort", "count", "--json", "-q"]),
        Duration::from_secs(60),
    );
    assert!(ok, "summary --allocated-by failed: {err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    let functions = summary["functions"].as_array().unwrap();
    let leaking = |f: &&Value| {
        (f["function"] == "createResponse" || f["function"] == "unit")
            && f["file"].as_str().is_some_and(|file| file.ends_with("/listener-leak.js"))
    };
    let at = functions.iter().position(|f| leaking(&f)).expect("createResponse or unit in the groups");
    assert!(at <= 1, "the leaking site is group #{} by count: {summary}", at + 1);
    let site = &functions[at];
    assert!(site["count"].as_u64().unwrap() > 1000, "{site}");
    assert!(site["retained_size"].as_u64().unwrap() >= site["shallow_size"].as_u64().unwrap() / 2, "{site}");
    assert!(summary["untracked_count"].as_u64().unwrap() > 0, "objects from before tracking have no stack");
    // V8's trace_function_infos give the function's start (1-based): the line declaring it in the source.
    let name = site["function"].as_str().unwrap();
    let source = std::fs::read_to_string(scenario("listener-leak")).unwrap();
    let declared = source.lines().position(|l| l.starts_with(&format!("function {name}("))).unwrap() as u64 + 1;
    assert_eq!(site["line"].as_u64(), Some(declared), "{site}");
    assert!(site["column"].as_u64().unwrap() > 1, "{site}");
    // The allocating statements (`return {` in createResponse, the `onMessage` closure in unit) are in its body.
    let statement = if name == "createResponse" { "return {" } else { "function onMessage" };
    let allocating = source.lines().position(|l| l.contains(statement)).unwrap() as u64 + 1;
    assert!(declared < allocating && allocating - declared < 10, "{name} at {declared} allocates at {allocating}");

    // One leaked object: its allocation stack starts in listener-leak.js at that function.
    let id = site["example_id"].as_u64().unwrap();
    let (ok, out, err) = run(
        Command::new(BIN).arg("show").arg(&snapshot).arg(format!("@{id}")).args(["--json", "-q", "--limit", "1"]),
        Duration::from_secs(60),
    );
    assert!(ok, "show failed: {err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    let stack = shown["allocation_stack"].as_array().expect("allocation_stack in show --json");
    let top = &stack[0];
    assert_eq!(top["function"], name, "{shown}");
    assert!(top["file"].as_str().unwrap().ends_with("/listener-leak.js"), "{top}");
    assert_eq!(top["line"].as_u64(), Some(declared), "{top}");
    if name == "createResponse" {
        assert_eq!(stack[1]["function"], "unit", "createResponse is called by unit: {shown}");
    }
    let (ok, out, _) = run(Command::new(BIN).arg("show").arg(&snapshot).arg(format!("@{id}")), Duration::from_secs(60));
    assert!(ok && out.contains("Allocated by") && out.contains("listener-leak.js"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn allocated_by_needs_a_timeline_snapshot() {
    let dir = temp_dir("no-trace");
    let plain = dir.join("plain.heapsnapshot");
    let (ok, _, err) = run(
        Command::new("node").arg("-e").arg("require('v8').writeHeapSnapshot(process.argv[1])").arg(&plain),
        Duration::from_secs(60),
    );
    assert!(ok, "node could not write a snapshot: {err}");
    let mut cmd = Command::new(BIN);
    cmd.arg("summary").arg(&plain).args(["--allocated-by", "-q"]);
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no allocation stacks") && stderr.contains("leakscope timeline"), "{stderr}");
    // `show` works and simply has no stack.
    let (ok, out, err) =
        run(Command::new(BIN).arg("show").arg(&plain).args(["@1", "--json", "-q"]), Duration::from_secs(60));
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert!(shown.get("allocation_stack").is_none(), "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}
