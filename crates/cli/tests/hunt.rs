//! `leakscope hunt`, `report` and `demo` against real node apps: every visible scenario driven over HTTP
//! (`serve` mode, built-in driver) and left to grow by itself (`loop` mode, --wait), scored with the
//! scenarios' own scorer; the demo's leaks all found; the HTML report checked in headless Chromium; an
//! attached process left as it was found (by pid, and through the user's own inspector); Ctrl-C stops a
//! launched app with no orphans.

#[path = "support/child.rs"]
mod child;
#[path = "../../heap/tests/common/mod.rs"]
mod common;

mod browser;

use common::shared_dir;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIOS: [&str; 7] =
    ["listener-leak", "unbounded-cache", "linked-list", "timer-leak", "global-array", "bounded-lru", "churn"];

fn out_dir(name: &str) -> PathBuf {
    let dir = common::work_dir().join("hunt").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn leakscope() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakscope"));
    cmd.arg("--quiet");
    cmd
}

/// The scenario's own units per round (`perRound` in its source).
fn per_round(name: &str) -> u64 {
    let source = std::fs::read_to_string(shared_dir().join("scenarios").join(format!("{name}.js"))).unwrap();
    let at = source.find("perRound:").expect("perRound in the scenario") + "perRound:".len();
    source[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// Scores the `leaks` part of a hunt report against a truth file with the scenarios' scorer.
fn score(report: &Value, truth: &Path, dir: &Path) -> Value {
    let leaks = dir.join("leaks.json");
    std::fs::write(&leaks, serde_json::to_string(&report["leaks"]).unwrap()).unwrap();
    common::score_leak_report(truth, &leaks)
}

/// Runs `hunt` or `demo` with --json, the report in DIR/report.html and the files kept in DIR/snapshots.
fn run_reporting(subcommand: &str, dir: &Path, args: &[String]) -> std::process::Output {
    leakscope()
        .arg(subcommand)
        .arg("--json")
        .arg("--report")
        .arg(dir.join("report.html"))
        .arg("--keep")
        .arg(dir.join("snapshots"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs a hunt, returns (exit code, report JSON).
fn hunt(dir: &Path, args: &[String]) -> (i32, Value) {
    let output = run_reporting("hunt", dir, args);
    let code = output.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(code == 0 || code == 1, "hunt failed ({code}): {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (code, report)
}

fn assert_scored(name: &str, mode: &str, code: i32, report: &Value, dir: &Path) {
    let truth = shared_dir().join("scenarios").join(format!("{name}.truth.json"));
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap();
    let leaks = expected["leaks"].as_array().unwrap().len();
    let score = score(report, &truth, dir);
    let findings = report["leaks"]["findings"].as_array().unwrap();
    let summary: Vec<String> = findings.iter().map(|f| format!("{} {}", f["kind"], f["path"])).collect();
    assert_eq!(score["false_findings"], 0, "{name} ({mode}): false findings {score} in {summary:?}");
    assert_eq!(score["found"], score["leaks"], "{name} ({mode}): truth not found: {score} in {summary:?}");
    assert_eq!(code, if leaks > 0 { 1 } else { 0 }, "{name} ({mode}): exit code");
    // The report was written, self-contained, with one card per finding.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<article class=\"card finding\"").count(), findings.len(), "{name}: cards");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "{name}: network assets");
}

/// `-- node SCENARIO.js serve --port PORT`: the app to launch.
fn serve_command(name: &str, port: u16) -> Vec<String> {
    let script = shared_dir().join("scenarios").join(format!("{name}.js"));
    ["--", "node", &script.display().to_string(), "serve", "--port", &port.to_string()].map(String::from).to_vec()
}

fn hunt_serve(name: &str) {
    let dir = out_dir(&format!("serve-{name}"));
    let port = free_port();
    let mut args: Vec<String> =
        vec!["--url".into(), format!("http://127.0.0.1:{port}/"), "--requests".into(), per_round(name).to_string()];
    args.extend(serve_command(name, port));
    let (code, report) = hunt(&dir, &args);
    assert_scored(name, "serve", code, &report, &dir);
    let rounds = report["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 4, "warm-up + 3 rounds");
    assert!(rounds[0]["warm_up"] == true && rounds[0]["snapshot"].is_null());
    for round in &rounds[1..] {
        assert!(round["work"].as_str().unwrap().starts_with(&format!("{} requests", per_round(name))), "{round}");
        assert!(Path::new(round["snapshot"]["path"].as_str().unwrap()).exists());
    }
    assert!(report["memory"].as_array().unwrap().len() >= 4, "memory was read throughout");
    // Sampled at the 512 KiB default: these small apps keep only a few MiB, so a handful of samples (or none,
    // for the churn control) is all there is; the demo test checks the sites themselves.
    assert_eq!(report["profile"]["interval"], 512 * 1024, "allocations were sampled at the default interval");
}

fn hunt_loop(name: &str) {
    let dir = out_dir(&format!("loop-{name}"));
    let script = shared_dir().join("scenarios").join(format!("{name}.js"));
    let args: Vec<String> =
        vec!["--wait".into(), "2s".into(), "--".into(), "node".into(), script.display().to_string(), "loop".into()];
    let (code, report) = hunt(&dir, &args);
    assert_scored(name, "loop", code, &report, &dir);
}

#[test]
fn hunt_url_finds_every_scenario_leak_and_keeps_controls_clean() {
    for name in SCENARIOS {
        hunt_serve(name);
    }
}

#[test]
fn hunt_wait_finds_leaks_in_loop_mode() {
    for name in SCENARIOS {
        hunt_loop(name);
    }
}

/// `--load`: any command per round; it gets LEAKSCOPE_ROUND and LEAKSCOPE_PID.
#[test]
fn hunt_load_runs_a_command_per_round() {
    let dir = out_dir("load");
    let port = free_port();
    let load = dir.join("load.js");
    std::fs::write(
        &load,
        format!(
            "const http = require('http'); const agent = new http.Agent({{ keepAlive: true, maxSockets: 4 }});\n\
             let left = 2000, done = 0;\n\
             const one = () => {{ if (left-- <= 0) return; http.get({{ port: {port}, host: '127.0.0.1', agent }}, (r) => {{ r.resume(); \
             r.on('end', () => {{ if (++done === 2000) {{ console.log('round', process.env.LEAKSCOPE_ROUND, 'pid', process.env.LEAKSCOPE_PID); \
             agent.destroy(); }} else one(); }}); }}).on('error', () => {{ left++; setTimeout(one, 100); }}); }};\n\
             for (let i = 0; i < 4; i++) one();\n"
        ),
    )
    .unwrap();
    let mut args: Vec<String> = vec!["--load".into(), format!("node {}", load.display())];
    args.extend(serve_command("global-array", port));
    let (code, report) = hunt(&dir, &args);
    assert_scored("global-array", "load", code, &report, &dir);
    for round in report["rounds"].as_array().unwrap() {
        assert!(round["work"].as_str().unwrap().contains("exit code 0"), "{round}");
    }
}

#[test]
fn demo_finds_every_leak_and_its_report_renders_in_chromium() {
    let dir = out_dir("demo");
    let started = Instant::now();
    let output = run_reporting("demo", &dir, &[]);
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "leaks found: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let truth = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd/hunt/demo/truth.json");
    let score = score(&report, &truth, &dir);
    assert_eq!((score["found"].as_u64(), score["false_findings"].as_u64()), (Some(2), Some(0)), "{score}");
    eprintln!("demo took {:.1} s (debug build)", elapsed.as_secs_f64());
    // Allocation sites: the leaking handler's stack is named for each finding.
    let sites = report["finding_sites"].as_array().unwrap();
    assert!(
        sites.iter().all(|s| s
            .as_array()
            .unwrap()
            .iter()
            .any(|site| site["frames"].to_string().contains("demo-app.js"))),
        "each finding has an allocation site in the demo app: {sites:?}"
    );

    let shot = dir.join("report.png");
    let Some(page) =
        browser::check(&dir.join("report.html"), &["article.finding", "svg.chart", "iframe.flamegraph"], &shot)
    else {
        return;
    };
    assert!(page.errors.is_empty(), "console errors: {:?}", page.errors);
    assert!(page.network.is_empty(), "network requests: {:?}", page.network);
    assert!(page.title.contains("2 leaks found"), "{}", page.title);
    let count = |sel: &str| page.counts.iter().find(|(s, _)| s == sel).map_or(0, |(_, n)| *n);
    assert_eq!(count("article.finding"), 2);
    assert_eq!(count("svg.chart"), 1);
    assert_eq!(count("iframe.flamegraph"), 1);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a real screenshot");
}

#[test]
fn report_offline_from_snapshot_files() {
    let dir = out_dir("offline");
    let files = common::scenario_snapshots("listener-leak");
    // A watch-style log whose clock spans the files' modification times.
    let mtime = |p: &Path| {
        std::fs::metadata(p).unwrap().modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as u64
    };
    let start = mtime(&files[0]) - 1000;
    let log = dir.join("mem.jsonl");
    let lines: Vec<String> = (0..10)
        .map(|i| {
            format!(
                r#"{{"t":{},"unix_ms":{},"rss":{},"heap_total":2000000,"heap_used":{},"external":1000,"array_buffers":0}}"#,
                i as f64 * 0.5,
                start + i * 500,
                50_000_000 + i * 1_000_000,
                10_000_000 + i * 500_000
            )
        })
        .collect();
    std::fs::write(&log, lines.join("\n")).unwrap();
    let html = dir.join("report.html");
    let output = leakscope()
        .arg("report")
        .args(&files)
        .arg("--watch")
        .arg(&log)
        .arg("-o")
        .arg(&html)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let truth = shared_dir().join("scenarios/listener-leak.truth.json");
    let score = score(&report, &truth, &dir);
    assert_eq!(score["found"], 1, "{score}");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.contains("class=\"chart\"") && text.contains("snapshot-mark"), "chart with snapshot marks");
    assert_eq!(
        text.matches("<article class=\"card finding\"").count(),
        report["leaks"]["findings"].as_array().unwrap().len()
    );

    // Bad input: one snapshot is a usage error, a missing log is named.
    let one = leakscope().arg("report").arg(&files[0]).output().unwrap();
    assert_eq!(one.status.code(), Some(2));
    let missing = leakscope().arg("report").args(&files).arg("--watch").arg(dir.join("nope.jsonl")).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.jsonl"));
}

/// Listening TCP ports of a process (from /proc, as `ss -ltnp` would show them).
fn listening_ports(pid: u32) -> Vec<u16> {
    let mut ports: Vec<u16> =
        leakscope_inspector::procfs::listening_sockets(pid).unwrap().iter().map(|l| l.port).collect();
    ports.sort();
    ports
}

fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// Starts `node FLAGS SCENARIO.js serve --port PORT` and waits for its `listening` line. Its stderr is drained so
/// that it never blocks on it; the ports of the inspector banners it prints come through the receiver.
fn serve_app(name: &str, port: u16, flags: &[&str]) -> (KillOnDrop, std::sync::mpsc::Receiver<u16>) {
    let script = shared_dir().join("scenarios").join(format!("{name}.js"));
    let mut app = KillOnDrop(
        Command::new("node")
            .args(flags)
            .arg(&script)
            .args(["serve", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(app.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("listening {port}"));
    let (tx, banners) = std::sync::mpsc::channel();
    let stderr = app.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Debugger listening on ws://127.0.0.1:") {
                let _ = tx.send(rest.split('/').next().unwrap().parse::<u16>().unwrap());
            }
        }
    });
    (app, banners)
}

#[test]
fn hunt_by_pid_leaves_the_target_as_it_found_it() {
    let dir = out_dir("pid");
    let port = free_port();
    let (mut app, _) = serve_app("unbounded-cache", port, &[]);
    let app = &mut app.0;
    let before = listening_ports(app.id());
    hunt_attached(&dir, app, port, ["--pid".into(), app.id().to_string()]);
    assert_eq!(listening_ports(app.id()), before, "the inspector leakscope opened is closed again");
}

/// Hunts the `unbounded-cache` app serving on `port`, attached with `target`; it must be found and the app must
/// keep running and answering.
fn hunt_attached(dir: &Path, app: &mut std::process::Child, port: u16, target: [String; 2]) {
    let mut args = target.to_vec();
    args.extend(["--url".into(), format!("http://127.0.0.1:{port}/"), "--requests".into(), "1500".into()]);
    let (code, report) = hunt(dir, &args);
    assert_scored("unbounded-cache", &target[0], code, &report, dir);
    assert!(app.try_wait().unwrap().is_none(), "the target is still running");
    assert!(http_get(port).starts_with("HTTP/1.1 200"), "the target still answers");
}

#[test]
fn hunt_through_the_users_inspector_leaves_it_open() {
    let dir = out_dir("inspect");
    let port = free_port();
    let (mut app, banner) = serve_app("unbounded-cache", port, &["--inspect=127.0.0.1:0"]);
    let app = &mut app.0;
    let inspector = banner.recv_timeout(Duration::from_secs(10)).expect("inspector banner");
    hunt_attached(&dir, app, port, ["--inspect".into(), format!("127.0.0.1:{inspector}")]);
    assert!(listening_ports(app.id()).contains(&inspector), "the user's inspector stays open");
}

/// A child process stopped even when the test fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ctrl_c_stops_a_launched_app_without_orphans() {
    let script = shared_dir().join("scenarios/churn.js");
    let dir = out_dir("interrupt");
    let mut hunt = Command::new(env!("CARGO_BIN_EXE_leakscope"))
        .args(["hunt", "--wait", "60s", "--report"])
        .arg(dir.join("report.html"))
        .arg("--")
        .arg("node")
        .arg(&script)
        .arg("loop")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The launched app's stdout is forwarded to our stderr: it prints `pid N` once running.
    let stderr = hunt.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let app_pid: u32 = loop {
        let line = lines.next().expect("hunt ended before the app started").unwrap();
        if let Some(pid) = line.trim().strip_prefix("pid ") {
            break pid.parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(hunt.id() as i32, libc::SIGINT) };
    let status = child::wait_within(&mut hunt, Duration::from_secs(20), || "hunt did not stop on Ctrl-C".into());
    assert_eq!(status.code(), Some(130), "interrupted");
    assert!(!leakscope_inspector::procfs::is_alive(app_pid), "the launched app {app_pid} was stopped");
    assert!(!dir.join("report.html").exists(), "no half report");
}
