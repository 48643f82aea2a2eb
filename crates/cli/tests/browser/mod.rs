//! Opens an HTML report in real headless Chromium over the DevTools protocol (with leakscope's own CDP
//! client): collects console errors, uncaught exceptions and network requests, counts elements, and saves a
//! screenshot. Returns `None` (after saying so) when Chromium is not installed.

use base64::Engine;
use leakscope_inspector::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct PageCheck {
    /// Console errors, uncaught exceptions and failed loads.
    pub errors: Vec<String>,
    /// Requests for anything but the report itself and `data:` URLs.
    pub network: Vec<String>,
    /// `document.querySelectorAll(selector).length` for each selector asked.
    pub counts: Vec<(String, u64)>,
    pub title: String,
}

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|s| s.to_string())
}

/// Kills Chromium (and its helpers) when the check ends, however it ends.
struct Browser(std::process::Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn check(html: &Path, selectors: &[&str], screenshot: &Path) -> Option<PageCheck> {
    let Some(binary) = chromium() else {
        eprintln!("SKIPPED the browser check: Chromium is not installed (Debian: apt-get install chromium)");
        return None;
    };
    let profile = html.with_extension("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let mut child = Command::new(&binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1200,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().expect("stderr");
    let _browser = Browser(child);
    let mut lines = BufReader::new(stderr).lines();
    let browser_ws = loop {
        let line = lines.next().expect("chromium exited before listening").expect("read stderr");
        if let Some(url) = line.strip_prefix("DevTools listening on ") {
            break url.trim().to_string();
        }
    };
    // Keep draining Chromium's stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let addr: std::net::SocketAddr =
        browser_ws.trim_start_matches("ws://").split('/').next().expect("host:port").parse().expect("address");
    let deadline = Instant::now() + Duration::from_secs(20);
    let page_ws = loop {
        let targets = leakscope_inspector::http::json_list(addr, Duration::from_secs(5)).unwrap_or_default();
        if let Some(url) = targets.iter().find(|t| t.kind == "page").and_then(|t| t.web_socket_debugger_url.clone()) {
            break url;
        }
        assert!(Instant::now() < deadline, "no page target in Chromium");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut page = Client::connect(&page_ws, Duration::from_secs(20)).expect("connect to the page");
    for domain in ["Page.enable", "Runtime.enable", "Log.enable", "Network.enable"] {
        page.call(domain, json!({})).expect(domain);
    }
    let file_url = format!("file://{}", html.canonicalize().expect("report path").display());
    page.call("Page.navigate", json!({ "url": file_url })).expect("navigate");
    let mut errors = Vec::new();
    let mut network = Vec::new();
    let mut loaded = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    // After the load event, wait a moment for late errors (frames, timers).
    let mut settle_until: Option<Instant> = None;
    while Instant::now() < deadline && settle_until.is_none_or(|t| Instant::now() < t) {
        let Some(event) = page.next_event(Duration::from_millis(200)).expect("page events") else { continue };
        let p = &event.params;
        match event.method.as_str() {
            "Page.loadEventFired" => {
                loaded = true;
                settle_until = Some(Instant::now() + Duration::from_millis(800));
            }
            "Runtime.exceptionThrown" => errors.push(format!("exception: {}", p["exceptionDetails"])),
            "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                errors.push(format!("console.{}: {}", p["type"], p["args"]))
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => errors.push(format!("log: {}", p["entry"]["text"])),
            "Network.loadingFailed" => errors.push(format!("load failed: {}", p["errorText"])),
            "Network.requestWillBeSent" => {
                let url = p["request"]["url"].as_str().unwrap_or("").to_string();
                if url != file_url && !url.starts_with("data:") {
                    network.push(url);
                }
            }
            _ => {}
        }
    }
    assert!(loaded, "the report never finished loading in Chromium");
    let mut counts = Vec::new();
    for selector in selectors {
        let value = page
            .evaluate(&format!("document.querySelectorAll({}).length", Value::from(*selector)))
            .expect("count elements");
        counts.push((selector.to_string(), value.as_u64().unwrap_or(0)));
    }
    let title = page.evaluate("document.title").ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let height = page.evaluate("document.documentElement.scrollHeight").ok().and_then(|v| v.as_u64()).unwrap_or(1800);
    let shot = page
        .call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": 1200, "height": height.min(8000), "scale": 1 } }),
        )
        .expect("screenshot");
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64");
    std::fs::write(screenshot, png).expect("write screenshot");
    let _ = std::fs::remove_dir_all(&profile);
    Some(PageCheck { errors, network, counts, title })
}
