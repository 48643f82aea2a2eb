//! Stress: a node HTTP server (JSON, Buffer and SHA-256 work per request) under the preload, driven by many
//! concurrent keep-alive requests from a client outside the profiled process that checks every response body.
//! A dump is taken over the control socket while the load runs; the server then exits normally, with a final dump
//! and the same request count as the client.

#[path = "support/child.rs"]
mod child;
#[path = "native_common.rs"]
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the children still running when the test fails, so that a failure never leaves a server behind.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Lines of a child's pipe, read on a thread (so that a silent child cannot block the test).
fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line matching `pred`, collecting every line seen into `seen`.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    until: Instant,
    pred: impl Fn(&str) -> bool,
) -> String {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if pred(&line) {
                    return line;
                }
            }
            Err(_) => panic!("timed out or pipe closed waiting for a line; seen so far:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn node_http_server_under_load_with_a_dump_mid_load() {
    if !tool_ok("node") {
        eprintln!("skipped: node not on PATH");
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let dir = scratch("http");
    let port_file = dir.join("port");
    let mut reaper = Reaper(Vec::new());

    // The server, profiled (a small interval: many samples, tags and frees of sampled blocks under load).
    let mut server = leakscope()
        .args(["native", "--interval", "64KiB", "--json", "--top", "5", "-o"])
        .arg(&dir)
        .args(["--", "node"])
        .arg(fixtures().join("server.js"))
        .arg(&port_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server_out = server.stdout.take().unwrap();
    let server_err = lines(server.stderr.take().unwrap());
    reaper.0.push(server);
    let mut err_seen = Vec::new();
    let first = wait_line(&server_err, &mut err_seen, deadline, |l| l.contains("profiling pid "));
    let pid = profiled_pid(&first);
    let port: u16 = loop {
        if let Some(p) = std::fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse().ok()) {
            break p;
        }
        assert!(Instant::now() < deadline, "the server never wrote its port; stderr:\n{}", err_seen.join("\n"));
        std::thread::sleep(Duration::from_millis(50));
    };

    // The load: 32 keep-alive connections, bounded in count (20000) and time (25 s).
    let mut client = Command::new("node")
        .arg(fixtures().join("client.js"))
        .args([port.to_string().as_str(), "32", "20000", "25000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client_in = client.stdin.take();
    let client_out = lines(client.stdout.take().unwrap());
    let mut client_err = client.stderr.take().unwrap();
    reaper.0.push(client);
    let mut out_seen = Vec::new();
    wait_line(&client_out, &mut out_seen, deadline, |l| l.starts_with("progress 600"));

    // A dump while requests are in flight.
    let mid = dir.join("mid.jsonl");
    let v = dump_and_report(pid, &mid);
    assert!(v["samples"].as_u64().unwrap() > 0, "{v:#}");
    assert!(!v["rows"].as_array().unwrap().is_empty(), "{v:#}");

    // More load after the dump, then stop the client (it finishes the requests in flight).
    wait_line(&client_out, &mut out_seen, deadline, |l| l.starts_with("progress 1200"));
    drop(client_in.take());
    let summary = wait_line(&client_out, &mut out_seen, deadline, |l| l.starts_with("done "));
    let client = reaper.0.pop().unwrap();
    let client_status = client.wait_with_output().unwrap().status;
    let mut errors = String::new();
    let _ = client_err.read_to_string(&mut errors);
    let mut words = summary.split_whitespace();
    let done: u64 = words.nth(1).and_then(|s| s.parse().ok()).unwrap();
    let bad: u64 = words.nth(1).and_then(|s| s.parse().ok()).unwrap();
    eprintln!("client: {summary}");
    assert_eq!(bad, 0, "{summary}\n{errors}");
    assert!(client_status.success(), "client {client_status}: {summary}\n{errors}");
    assert!(done >= 1200, "{summary}");

    // Stop the server: it closes its connections and exits normally.
    let mut quit = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    quit.write_all(b"GET /quit HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let _ = quit.read_to_end(&mut Vec::new());
    let mut server = reaper.0.pop().unwrap();
    let status = child::wait_within(&mut server, deadline.saturating_duration_since(Instant::now()), || {
        format!("the server did not exit after /quit (deadlock?); stderr:\n{}", err_seen.join("\n"))
    });
    let mut report = String::new();
    BufReader::new(server_out).read_to_string(&mut report).unwrap();
    err_seen.extend(server_err.try_iter());
    assert!(status.success(), "leakscope {status}; stderr:\n{}", err_seen.join("\n"));
    // The program's stdout (sent to stderr because of --json): every request the client counted was served.
    assert!(
        err_seen.iter().any(|l| l.trim() == format!("served {done}")),
        "expected 'served {done}' from the server; stderr:\n{}",
        err_seen.join("\n")
    );
    let v: serde_json::Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    assert_eq!(v["exit_status"], 0, "{v:#}");
    assert_eq!(v["final"]["pid"].as_u64(), Some(pid as u64));
    let final_dump = dir.join(format!("native-{pid}-exit.jsonl"));
    assert!(final_dump.is_file());
    let text = std::fs::read_to_string(&final_dump).unwrap();
    assert!(text.lines().last().is_some_and(|l| l.starts_with("{\"type\":\"end\"")), "final dump truncated");
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(header["samples_taken"].as_u64().unwrap() > 100, "{header}");
}
