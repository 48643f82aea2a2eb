//! Integration tests against real node processes (Node 20 on PATH). Every process started here is killed by
//! a guard, even when a test fails.

use leakscope_inspector::procfs;
use leakscope_inspector::{AttachOptions, Error, Origin, Session, SnapshotOptions, Target};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `$LEAKSCOPE_SHARED/scenarios`, else `<repo>/../shared/scenarios`.
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

/// A child process killed (SIGKILL) on drop, with its output line by line.
struct Guard {
    child: Child,
    stdout_lines: mpsc::Receiver<String>,
    stderr_lines: Option<mpsc::Receiver<String>>,
}

impl Guard {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `node FLAGS... SCRIPT ARGS...`.
fn spawn_node(flags: &[&str], script: &str, args: &[&str]) -> Guard {
    let mut child = Command::new("node")
        .args(flags)
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node on PATH");
    let lines = |stream: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        rx
    };
    let stdout_lines = lines(Box::new(child.stdout.take().unwrap()));
    let stderr_lines = Some(lines(Box::new(child.stderr.take().unwrap())));
    Guard { child, stdout_lines, stderr_lines }
}

/// [`spawn_node`], then waits until it prints its first stdout line (`pid N` in loop mode, `listening P` in serve
/// mode).
fn start_node(flags: &[&str], script: &str, args: &[&str]) -> Guard {
    let guard = spawn_node(flags, script, args);
    guard.stdout_lines.recv_timeout(Duration::from_secs(10)).expect("node printed its ready line");
    guard
}

/// The port of the inspector a node started with `--inspect=127.0.0.1:0` printed in its banner.
fn banner_port(app: &mut Guard) -> u16 {
    let lines = app.stderr_lines.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            if let Some(rest) = line.strip_prefix("Debugger listening on ws://127.0.0.1:") {
                return rest.split('/').next().unwrap().parse().unwrap();
            }
        }
    }
    panic!("no inspector banner");
}

fn loop_app(flags: &[&str]) -> Guard {
    start_node(flags, &scenario("listener-leak"), &["loop", "--interval-ms", "20", "--units-per-tick", "5"])
}

/// A port nobody listens on for SIGUSR1 tests: 0 asks Node for a random one.
const RANDOM_PORT: &str = "--inspect-port=0";

fn opts() -> AttachOptions {
    AttachOptions { attach_timeout: Duration::from_secs(5), ..AttachOptions::default() }
}

fn inspector_ports(pid: u32) -> Vec<u16> {
    procfs::listening_sockets(pid)
        .unwrap_or_default()
        .iter()
        .filter(|l| leakscope_inspector::http::json_version(l.connect_addr(), Duration::from_millis(300)).is_ok())
        .map(|l| l.port)
        .collect()
}

fn check_snapshot_file(path: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).expect("snapshot is valid JSON");
    for key in ["snapshot", "nodes", "edges", "strings"] {
        assert!(json.get(key).is_some(), "snapshot has '{key}'");
    }
    let count = json.pointer("/snapshot/node_count").and_then(|v| v.as_u64()).unwrap();
    assert!(count > 1000, "node_count {count}");
    let fields = json.pointer("/snapshot/meta/node_fields").and_then(|v| v.as_array()).unwrap().len() as u64;
    assert_eq!(json["nodes"].as_array().unwrap().len() as u64, count * fields);
    count
}

#[test]
fn attach_by_pid_opens_snapshots_and_closes_the_inspector() {
    // Use Node's default port 9229 when it is free (the real-world case); else a random one.
    let flags: &[&str] = if procfs::port_in_use(9229, None) { &[RANDOM_PORT] } else { &[] };
    let app = loop_app(flags);
    let pid = app.pid();
    assert!(inspector_ports(pid).is_empty());
    let mut session = Session::attach(&Target::Pid(pid), &opts()).unwrap();
    assert_eq!(session.origin(), Origin::OpenedBySignal);
    assert!(session.opened_by_us());
    assert_eq!(session.pid(), Some(pid));
    let mem = session.memory_usage().unwrap();
    assert!(mem.heap_used > 1 << 20 && mem.rss > mem.heap_used, "{mem:?}");
    let heap = session.heap_usage().unwrap();
    assert!(heap.used_size > 0 && heap.total_size >= heap.used_size);
    session.collect_garbage().unwrap();
    let dir = std::env::temp_dir().join(format!("leakscope-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pid.heapsnapshot");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let mut progress_calls = 0;
    let stats = session
        .take_heap_snapshot(&mut out, &SnapshotOptions::default(), &mut |_| {
            progress_calls += 1;
            true
        })
        .unwrap();
    drop(out);
    assert!(progress_calls > 1);
    assert_eq!(stats.bytes, std::fs::metadata(&file).unwrap().len());
    check_snapshot_file(&file);
    // The connection still works after a snapshot.
    assert!(session.evaluate("1 + 1").unwrap() == serde_json::json!(2));
    let report = session.close().unwrap();
    assert_eq!(report.inspector_closed, Some(true));
    assert!(procfs::is_alive(pid), "target survived");
    assert!(inspector_ports(pid).is_empty(), "no inspector left open");
    // And it can be attached again.
    let again = Session::attach(&Target::Pid(pid), &opts()).unwrap();
    assert_eq!(again.close().unwrap().inspector_closed, Some(true));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts node with an inspector already open on a random port; returns the guard and the port.
fn app_with_inspector() -> (Guard, u16) {
    let mut app = loop_app(&["--inspect=127.0.0.1:0"]);
    let port = banner_port(&mut app);
    (app, port)
}

#[test]
fn attach_by_port_and_ws_url_leaves_the_users_inspector_open() {
    let (app, port) = app_with_inspector();
    let mut session = Session::attach(&Target::Inspect(format!("127.0.0.1:{port}")), &opts()).unwrap();
    assert_eq!(session.origin(), Origin::AlreadyOpen);
    assert_eq!(session.pid(), Some(app.pid()));
    assert!(session.memory_usage().unwrap().heap_used > 0);
    let url = session.ws_url().to_string();
    assert_eq!(session.close().unwrap().inspector_closed, None);
    assert_eq!(inspector_ports(app.pid()), vec![port], "the user's inspector stays open");

    let mut session = Session::attach(&Target::Ws(url), &opts()).unwrap();
    assert!(session.heap_usage().unwrap().used_size > 0);
    session.close().unwrap();
    // By pid, the already-open inspector is found and left open too.
    let session = Session::attach(&Target::Pid(app.pid()), &opts()).unwrap();
    assert_eq!(session.origin(), Origin::AlreadyOpen);
    session.close().unwrap();
    assert_eq!(inspector_ports(app.pid()), vec![port]);
}

#[test]
fn launch_runs_the_app_under_the_inspector_and_stops_it() {
    let target = Target::Launch {
        program: "node".into(),
        args: vec![scenario("churn"), "loop".into(), "--interval-ms".into(), "20".into()],
    };
    let mut session = Session::attach(&target, &opts()).unwrap();
    let pid = session.pid().unwrap();
    let _cleanup = KillOnDrop(pid);
    assert_eq!(session.origin(), Origin::Launched);
    assert!(session.memory_usage().unwrap().heap_used > 0);
    let report = session.close().unwrap();
    assert!(report.child_killed.is_some());
    assert!(!procfs::is_alive(pid), "launched app stopped");
}

#[test]
fn launch_keep_running_leaves_the_app_without_inspector() {
    let target = Target::Launch {
        program: "node".into(),
        args: vec![scenario("churn"), "loop".into(), "--interval-ms".into(), "20".into()],
    };
    let o = AttachOptions { keep_running: true, ..opts() };
    let mut session = Session::attach(&target, &o).unwrap();
    let pid = session.pid().unwrap();
    let _cleanup = KillOnDrop(pid);
    assert!(session.memory_usage().unwrap().rss > 0);
    let report = session.close().unwrap();
    assert_eq!(report.child_kept, Some(pid));
    assert_eq!(report.inspector_closed, Some(true));
    assert!(procfs::is_alive(pid));
    assert!(inspector_ports(pid).is_empty());
}

struct KillOnDrop(u32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = procfs::send_signal(self.0, libc_sigkill());
    }
}
fn libc_sigkill() -> i32 {
    9
}

#[test]
fn launch_of_a_failing_command_is_a_clear_error() {
    let target = Target::Launch { program: "sh".into(), args: vec!["-c".into(), "exit 3".into()] };
    let err = Session::attach(&target, &opts()).unwrap_err();
    assert!(matches!(err, Error::LaunchFailed { .. }), "{err}");
    let target = Target::Launch { program: "/nonexistent/leakscope-app".into(), args: vec![] };
    assert!(matches!(Session::attach(&target, &opts()).unwrap_err(), Error::LaunchFailed { .. }));
}

#[test]
fn pid_that_is_not_node_is_refused_without_a_signal() {
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id();
    let err = Session::attach(&Target::Pid(pid), &opts()).unwrap_err();
    let alive = procfs::is_alive(pid);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(matches!(err, Error::NotNode { .. }), "{err}");
    assert!(err.to_string().contains("not a Node.js process"));
    assert!(alive, "sleep was not signalled");
}

#[test]
fn missing_pid_is_a_clear_error() {
    let err = Session::attach(&Target::Pid(u32::MAX - 7), &opts()).unwrap_err();
    assert!(matches!(err, Error::NoSuchProcess { .. }), "{err}");
}

#[test]
fn app_that_handles_sigusr1_itself_is_reported_not_hung() {
    let script = "process.on('SIGUSR1', () => {}); setInterval(() => {}, 1000); console.log('pid ' + process.pid);";
    let app = start_node(&[RANDOM_PORT], "-e", &[script]);
    let o = AttachOptions { attach_timeout: Duration::from_millis(1500), ..opts() };
    let started = Instant::now();
    let err = Session::attach(&Target::Pid(app.pid()), &o).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, Error::NoInspectorAppeared { .. }), "{err}");
    assert!(err.to_string().contains("handles SIGUSR1"));
    assert!(procfs::is_alive(app.pid()));
}

#[test]
fn disable_sigusr1_is_detected() {
    let supported = Command::new("node").args(["--disable-sigusr1", "-e", "0"]).status().map(|s| s.success());
    if !matches!(supported, Ok(true)) {
        eprintln!("node has no --disable-sigusr1 (added in v22.14/v23.7): skipping the live part");
        return;
    }
    let app = loop_app(&["--disable-sigusr1"]);
    let err = Session::attach(&Target::Pid(app.pid()), &opts()).unwrap_err();
    assert!(matches!(err, Error::Sigusr1Disabled { .. }), "{err}");
    assert!(procfs::is_alive(app.pid()));
}

#[test]
fn taken_inspector_port_is_a_port_clash() {
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let app = loop_app(&[&format!("--inspect-port={port}")]);
    let err = Session::attach(&Target::Pid(app.pid()), &opts()).unwrap_err();
    match &err {
        Error::PortClash { port: p, holder, .. } => {
            assert_eq!(*p, port);
            assert_eq!(*holder, Some(std::process::id()));
        }
        other => panic!("expected a port clash, got {other}"),
    }
    assert!(procfs::is_alive(app.pid()));
    assert!(inspector_ports(app.pid()).is_empty());
}

#[test]
fn remote_hosts_are_refused_unless_allowed() {
    let err = Session::attach(&Target::Inspect("192.0.2.1:9229".into()), &opts()).unwrap_err();
    assert!(matches!(err, Error::RemoteRefused { .. }), "{err}");
    assert!(err.to_string().contains("execute code"));
    let err = Session::attach(&Target::Ws("ws://192.0.2.1:9229/abc".into()), &opts()).unwrap_err();
    assert!(matches!(err, Error::RemoteRefused { .. }), "{err}");
}

#[test]
fn target_exiting_mid_snapshot_is_process_gone() {
    // A heap big enough that the snapshot takes a while.
    let script = "globalThis.keep = Array.from({length: 400000}, (_, i) => ({i, s: 'x' + i})); \
                  setInterval(() => {}, 1000); console.log('pid ' + process.pid);";
    let app = start_node(&[RANDOM_PORT], "-e", &[script]);
    let pid = app.pid();
    let mut session = Session::attach(&Target::Pid(pid), &opts()).unwrap();
    let mut sink = std::io::sink();
    let mut killed = false;
    let result = session.take_heap_snapshot(&mut sink, &SnapshotOptions::default(), &mut |p| {
        if !killed && p.bytes_written > 0 {
            let _ = procfs::send_signal(pid, 9);
            killed = true;
        }
        true
    });
    assert!(killed, "the snapshot streamed at least one chunk");
    let err = session.explain(result.unwrap_err());
    assert!(matches!(err, Error::ProcessGone { .. }), "{err}");
    // Closing a session whose target died is an error, not a hang or a panic.
    let started = Instant::now();
    let _ = session.close();
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn ps_lists_node_processes_with_their_inspector() {
    let (app, port) = app_with_inspector();
    let plain = loop_app(&[RANDOM_PORT]);
    let list = procfs::node_processes(procfs::Probe::Likely);
    let with = list.iter().find(|p| p.pid == app.pid()).expect("listed");
    assert_eq!(with.inspector_port, Some(port));
    assert!(with.rss_bytes > 1 << 20);
    assert!(with.command.contains("listener-leak.js"));
    let without = list.iter().find(|p| p.pid == plain.pid()).expect("listed");
    assert_eq!(without.inspector_port, None);
    assert!(!list.iter().any(|p| p.pid == std::process::id()));
}

/// The target paused halfway through loading `stream` (a breakpoint in `node:internal/streams/readable`, which
/// `stream` loads before it defines `Readable`): the state an evaluation meets when it interrupts the app's
/// first `console.log` to a pipe. What leakscope evaluates there must not load Node's modules (that throws and
/// leaves `worker_threads`, `inspector` and `v8` broken in the target for good); it defers them, and after
/// the pause the target's modules work and the inspector was closed.
#[test]
fn evaluations_during_a_module_load_leave_the_targets_modules_working() {
    let dir = std::env::temp_dir().join(format!("leakscope-midload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("midload.js");
    std::fs::write(
        &script,
        r#"'use strict';
const fs = require('fs');
fs.writeSync(1, `ready ${process.moduleLoadList.includes('NativeModule stream')}\n`);
const timer = setInterval(() => {
  if (!globalThis.go) return;
  clearInterval(timer);
  require('stream');
  setTimeout(() => {
    let verdict;
    try {
      const deferredV8 = process.moduleLoadList.includes('NativeModule v8');
      new (require('worker_threads').MessageChannel)().port1.close();
      require('v8').getHeapSpaceStatistics();
      verdict = `modules work; v8 loaded ${deferredV8}; inspector ${require('inspector').url() === undefined ? 'closed' : 'open'}`;
    } catch (e) {
      verdict = `broken: ${e.message}`;
    }
    fs.writeSync(1, verdict + '\n');
  }, 300);
}, 20);
setInterval(() => {}, 1000);
"#,
    )
    .unwrap();
    let mut app = spawn_node(&["--inspect=127.0.0.1:0"], &script.to_string_lossy(), &[]);
    let ready = app.stdout_lines.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(ready, "ready false", "`stream` must load later");
    let port = banner_port(&mut app);
    let mut session = Session::attach(&Target::Inspect(format!("127.0.0.1:{port}")), &opts()).unwrap();
    session.call("Debugger.enable", serde_json::json!({})).unwrap();
    session
        .call(
            "Debugger.setBreakpointByUrl",
            serde_json::json!({ "url": "node:internal/streams/readable", "lineNumber": 0 }),
        )
        .unwrap();
    session.evaluate("globalThis.go = true").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the target never paused in node:internal/streams/readable");
        match session.next_event(Duration::from_millis(200)).unwrap() {
            Some(event) if event.method == "Debugger.paused" => break,
            _ => {}
        }
    }
    // The hazard is real here: `stream` is half loaded.
    let half = session.evaluate("process.getBuiltinModule('stream').Readable === undefined").unwrap();
    assert_eq!(half, serde_json::json!(true));
    assert_eq!(session.heap_space_statistics().unwrap(), None, "`v8` must not be loaded inside the evaluation");
    let closing = session
        .evaluate_with(serde_json::json!({
            "expression": leakscope_inspector::CLOSE_INSPECTOR_EXPRESSION,
            "includeCommandLineAPI": true,
            "returnByValue": true,
        }))
        .unwrap();
    assert_eq!(closing, serde_json::json!(true));
    session.call("Debugger.resume", serde_json::json!({})).unwrap();
    // `inspector.close()` waits for this session to go.
    drop(session);
    let verdict = app.stdout_lines.recv_timeout(Duration::from_secs(10)).expect("the target's verdict");
    assert_eq!(verdict, "modules work; v8 loaded true; inspector closed");
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
}
