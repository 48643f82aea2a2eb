//! End-to-end tests of `leakscope ps|watch|snapshot|gc` against real node processes (Node on PATH).
//! Every process started here is killed by a guard, even when a test fails. The long verdict checks
//! (leak within 30 s, controls clean over 60 s) are `#[ignore]`d: run them with `-- --ignored`.

#[path = "support/child.rs"]
mod child;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn scenarios() -> PathBuf {
    if let Ok(shared) = std::env::var("LEAKSCOPE_SHARED") {
        return PathBuf::from(shared).join("scenarios");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/scenarios")
}

fn scenario(name: &str) -> String {
    let path = scenarios().join(format!("{name}.js"));
    assert!(path.exists(), "scenario {} not found (set LEAKSCOPE_SHARED)", path.display());
    path.to_string_lossy().into_owned()
}

struct Guard(Child);

impl Guard {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `node FLAGS SCRIPT ARGS`, waiting for its first stdout line.
fn start_node(flags: &[&str], script: &str, args: &[&str]) -> Guard {
    let mut child = Command::new("node")
        .args(flags)
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node on PATH");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let guard = Guard(child);
    rx.recv_timeout(Duration::from_secs(10)).expect("node printed its ready line");
    guard
}

/// A scenario in loop mode; `--inspect-port=0` so SIGUSR1 never collides with other tests on 9229.
fn loop_app(name: &str) -> Guard {
    start_node(&["--inspect-port=0"], &scenario(name), &["loop", "--interval-ms", "10"])
}

fn leakscope(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leakscope"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("leakscope runs")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakscope-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

/// Ports `pid` listens on (from /proc), to check no inspector is left open.
fn listening_ports(pid: u32) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            if let Ok(link) = std::fs::read_link(e.path()) {
                let l = link.to_string_lossy().into_owned();
                if let Some(n) = l.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(n.to_string());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let t = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in t.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = u16::from_str_radix(f[1].rsplit(':').next().unwrap(), 16).unwrap();
                ports.push(port);
            }
        }
    }
    ports
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn check_snapshot(path: &Path) {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).expect("valid JSON");
    for key in ["snapshot", "nodes", "edges", "strings"] {
        assert!(json.get(key).is_some(), "snapshot has {key}");
    }
    assert!(json.pointer("/snapshot/node_count").and_then(|v| v.as_u64()).unwrap() > 1000);
}

#[test]
fn snapshot_by_pid_writes_a_valid_file_and_closes_the_inspector() {
    let app = loop_app("listener-leak");
    let dir = tempdir("snap");
    let out = leakscope(&["snapshot", "--pid", &app.pid().to_string(), "--gc"], &dir);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let files = files_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = &files[0];
    let prefix = format!("listener-leak-{}-", app.pid());
    assert!(name.starts_with(&prefix) && name.ends_with(".heapsnapshot"), "{name}");
    let stamp = &name[prefix.len()..name.len() - ".heapsnapshot".len()];
    assert!(stamp.len() == 15 && stamp.as_bytes()[8] == b'-', "{stamp}");
    check_snapshot(&dir.join(name));
    assert!(stdout.contains(&format!("leakscope summary {name}")), "{stdout}");
    assert!(stderr.contains("opened the inspector"), "warns that it opened an inspector: {stderr}");
    assert!(alive(app.pid()));
    assert!(listening_ports(app.pid()).is_empty(), "inspector closed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn snapshot_series_names_every_file_and_suggests_leaks() {
    let app = loop_app("global-array");
    let dir = tempdir("series");
    let out = leakscope(
        &["snapshot", "--pid", &app.pid().to_string(), "--every", "300ms", "--count", "2", "-o", "s.heapsnapshot"],
        &dir,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(files_in(&dir), vec!["s-1.heapsnapshot", "s-2.heapsnapshot"]);
    assert!(stdout.contains("leakscope leaks s-1.heapsnapshot s-2.heapsnapshot"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn target_exiting_mid_snapshot_leaves_no_partial_file() {
    // A heap of ~30 MB so the snapshot takes a moment.
    let script = "globalThis.keep = Array.from({length: 200000}, (_, i) => ({i, s: 'x' + i, a: [i]})); \
                  setInterval(() => {}, 1000); console.log('ready');";
    let app = start_node(&["--inspect-port=0"], "-e", &[script]);
    let pid = app.pid();
    let dir = tempdir("midsnap");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakscope"))
        .args(["snapshot", "--pid", &pid.to_string(), "-o", "big.heapsnapshot"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the target as soon as the partial file has data.
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial = dir.join("big.heapsnapshot.partial");
    let mut killed = false;
    while Instant::now() < deadline {
        if std::fs::metadata(&partial).map(|m| m.len() > 0).unwrap_or(false) {
            unsafe_kill(pid);
            killed = true;
            break;
        }
        if let Ok(Some(_)) = cmd.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = wait_output(&mut cmd, Duration::from_secs(20));
    let (stdout, stderr) = text(&out);
    assert!(killed, "the snapshot started streaming ({stdout} {stderr})");
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("process {pid} exited")), "{stderr}");
    assert!(files_in(&dir).is_empty(), "no partial or final file: {:?}", files_in(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

fn unsafe_kill(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

fn wait_output(child: &mut Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let mut out = Output { status: child.wait().unwrap(), stdout: Vec::new(), stderr: Vec::new() };
    use std::io::Read;
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut out.stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut out.stderr);
    }
    out
}

#[test]
fn gc_by_launching_stops_the_app_afterwards() {
    let dir = tempdir("gc");
    let out = leakscope(&["gc", "--json", "--", "node", &scenario("churn"), "loop"], &dir);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout (app output went to stderr)");
    let pid = json["pid"].as_u64().unwrap() as u32;
    assert!(json["before"]["heapUsed"].as_u64().unwrap() > 0);
    assert!(json["after"]["heapUsed"].as_u64().unwrap() > 0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(pid), "the launched app was stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn watch_by_port_logs_samples_and_prints_a_verdict() {
    let app = start_node(&["--inspect=127.0.0.1:0"], &scenario("churn"), &["loop", "--interval-ms", "10"]);
    let port = *listening_ports(app.pid()).first().expect("inspector port");
    let dir = tempdir("watch");
    let out = leakscope(
        &[
            "watch",
            "--inspect",
            &format!("127.0.0.1:{port}"),
            "--interval",
            "200ms",
            "--duration",
            "3s",
            "--gc",
            "4",
            "--json",
            "--log",
            "w.jsonl",
        ],
        &dir,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(verdict["samples"].as_u64().unwrap() >= 8, "{verdict}");
    assert_eq!(verdict["leak"], false, "a 3 s watch of a control is no leak: {verdict}");
    let log = std::fs::read_to_string(dir.join("w.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().filter(|l| l["type"] == "sample").count() >= 8);
    assert!(lines.iter().any(|l| l["type"] == "sample" && l["forced_gc"] == true));
    assert_eq!(lines.last().unwrap()["type"], "verdict");
    // The user's inspector stays open: leakscope did not open it.
    assert_eq!(listening_ports(app.pid()), vec![port]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_watch_output_has_one_line_per_sample() {
    let app = loop_app("bounded-lru");
    let dir = tempdir("plain");
    let out = leakscope(&["watch", "--pid", &app.pid().to_string(), "-i", "250ms", "-d", "1500ms"], &dir);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.lines().filter(|l| l.starts_with('[') && l.contains("heapUsed")).count() >= 4, "{stdout}");
    assert!(stdout.contains("verdict after"), "{stdout}");
    assert!(listening_ports(app.pid()).is_empty(), "inspector closed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn faults_give_clear_messages_and_exit_codes() {
    let dir = tempdir("faults");
    // Not node.
    let mut sleeper = Guard(Command::new("sleep").arg("30").spawn().unwrap());
    let out = leakscope(&["gc", "--pid", &sleeper.pid().to_string()], &dir);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("is not a Node.js process") && stderr.contains("hint: "), "{stderr}");
    assert!(sleeper.0.try_wait().unwrap().is_none(), "sleep was not signalled");
    // Remote host refused.
    let out = leakscope(&["gc", "--inspect", "192.0.2.1:9229"], &dir);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("execute code") && stderr.contains("--allow-remote"), "{stderr}");
    // No target / two targets.
    assert_eq!(leakscope(&["snapshot"], &dir).status.code(), Some(2));
    assert_eq!(leakscope(&["gc", "--pid", "1", "--ws", "ws://127.0.0.1:1/x"], &dir).status.code(), Some(2));
    // Port clash: the port the target would open is taken.
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let app = start_node(&[&format!("--inspect-port={port}")], &scenario("churn"), &["loop"]);
    let out = leakscope(&["snapshot", "--pid", &app.pid().to_string()], &dir);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("port {port}")) && stderr.contains("--inspect-port=0"), "{stderr}");
    assert!(alive(app.pid()) && listening_ports(app.pid()).is_empty());
    // App that handles SIGUSR1 itself.
    let script = "process.on('SIGUSR1', () => {}); setInterval(() => {}, 1000); console.log('ready');";
    let app = start_node(&["--inspect-port=0"], "-e", &[script]);
    let out = leakscope(&["gc", "--pid", &app.pid().to_string(), "--attach-timeout", "1s"], &dir);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("handles SIGUSR1"), "{stderr}");
    assert!(alive(app.pid()));
    assert!(files_in(&dir).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ps_lists_a_running_node_process() {
    let app = loop_app("churn");
    let out = leakscope(&["ps", "--json"], &std::env::temp_dir());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let me = list.iter().find(|p| p["pid"] == app.pid()).expect("listed");
    assert!(me["command"].as_str().unwrap().contains("churn.js"));
    assert!(me["rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert_eq!(me["inspector_port"], serde_json::Value::Null);
}

/// Runs `watch --json` for `secs` on a scenario and returns the verdict.
fn watch_verdict(name: &str, secs: u32, extra: &[&str]) -> (serde_json::Value, Option<i32>) {
    let app = loop_app(name);
    let dir = tempdir(&format!("verdict-{name}"));
    let duration = format!("{secs}s");
    let pid = app.pid().to_string();
    let mut args = vec!["watch", "--pid", &pid, "--duration", &duration, "--json"];
    args.extend_from_slice(extra);
    let out = leakscope(&args, &dir);
    let (stdout, stderr) = text(&out);
    let _ = std::fs::remove_dir_all(&dir);
    (serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}\n{stderr}")), out.status.code())
}

#[test]
#[ignore = "30 s per scenario; run with --ignored"]
fn leaks_are_reported_with_high_confidence_within_30s() {
    for name in ["listener-leak", "unbounded-cache", "linked-list", "timer-leak", "global-array"] {
        let (v, code) = watch_verdict(name, 30, &["--gc", "3", "--fail-on-growth", "100KB/min"]);
        eprintln!("{name}: {}", v["lines"]);
        assert_eq!(v["leak"], true, "{name}: {v}");
        assert_eq!(v["heap"]["confidence"], "high", "{name}: {v}");
        assert_eq!(code, Some(1), "{name}: --fail-on-growth exits 1");
    }
}

#[test]
#[ignore = "60 s per control; run with --ignored"]
fn controls_show_no_growth_over_60s() {
    for name in ["bounded-lru", "churn"] {
        for extra in [&["--gc", "5"][..], &[][..]] {
            let (v, code) = watch_verdict(name, 60, extra);
            eprintln!("{name} {extra:?}: {}", v["lines"]);
            assert_eq!(v["leak"], false, "{name}: {v}");
            assert_eq!(v["native_suspect"], false, "{name}: {v}");
            assert_eq!(v["buffer_growth"], false, "{name}: {v}");
            assert_eq!(code, Some(0));
        }
    }
}

/// Starts `leakscope ARGS` and waits for the `leakscope watch: pid N` header on stderr; returns (child, N).
fn start_watch(args: &[&str], cwd: &Path) -> (Guard, u32, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakscope"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if let Some(rest) = line.strip_prefix("leakscope watch: pid ") {
                let pid = rest.split_whitespace().next().unwrap().parse().unwrap();
                return (guard, pid, rx);
            }
        }
    }
    panic!("no watch header");
}

#[test]
fn ctrl_c_ends_a_watch_with_a_verdict_and_closes_the_inspector() {
    let app = loop_app("churn");
    let dir = tempdir("sigint");
    let pid = app.pid().to_string();
    let (mut watch, target, _rx) = start_watch(&["watch", "--pid", &pid, "-i", "200ms", "--log", "w.jsonl"], &dir);
    assert_eq!(target, app.pid());
    std::thread::sleep(Duration::from_millis(800));
    let _ = Command::new("kill").args(["-INT", &watch.pid().to_string()]).status();
    let status = child::wait_within(&mut watch.0, Duration::from_secs(10), || "watch did not stop on SIGINT".into());
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(dir.join("w.jsonl")).unwrap();
    assert!(log.lines().last().unwrap().contains("\"type\":\"verdict\""), "{log}");
    assert!(alive(app.pid()));
    assert!(listening_ports(app.pid()).is_empty(), "inspector closed after Ctrl-C");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_launched_app_dies_with_leakscope_even_on_sigkill() {
    let dir = tempdir("pdeath");
    let script = scenario("churn");
    let (watch, app_pid, _rx) = start_watch(&["watch", "-i", "200ms", "--", "node", &script, "loop"], &dir);
    let _app_guard = KillPid(app_pid);
    assert!(alive(app_pid));
    drop(watch); // SIGKILL: leakscope gets no chance to clean up
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(app_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(app_pid), "the launched app did not outlive leakscope");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills a pid we did not spawn ourselves (a grandchild) if a test fails before it is gone.
struct KillPid(u32);

impl Drop for KillPid {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = Command::new("kill").args(["-9", &self.0.to_string()]).status();
        }
    }
}

#[test]
fn watch_serves_prometheus_metrics() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakscope"))
        .args(["watch", "--plain", "--interval", "200ms", "--duration", "6s", "--prometheus", &address, "--"])
        .args(["node", &scenario("churn"), "loop", "--interval-ms", "10"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut page = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline && !page.contains("nodejs_heap_size_used_bytes{") {
        std::thread::sleep(std::time::Duration::from_millis(300));
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            use std::io::{Read, Write};
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
            page.clear();
            let _ = stream.read_to_string(&mut page);
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "watch exits cleanly");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let used = page
        .lines()
        .find(|l| l.starts_with("nodejs_heap_size_used_bytes{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("heapUsed gauge");
    assert!(used > 1e6, "a node heap uses more than 1 MB: {used}");
    assert!(page.contains("# TYPE nodejs_process_resident_memory_bytes gauge"));
}

#[test]
fn prometheus_refuses_non_loopback_addresses() {
    let out = leakscope(&["watch", "--prometheus", "0.0.0.0:0", "--pid", "1"], &std::env::temp_dir());
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("loopback"));
}
