//! Discovery over the inspector's tiny HTTP server: `/json/list` and `/json/version`.
//!
//! A hand-written HTTP/1.1 GET over `TcpStream` is enough: the inspector answers with a short JSON body and
//! closes. The Host header is an IP literal (`127.0.0.1:PORT`) so Node's DNS-rebinding check accepts it.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// One entry of `/json/list`.
#[derive(Debug, Clone, Deserialize)]
pub struct TargetInfo {
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub url: String,
    #[serde(rename = "webSocketDebuggerUrl")]
    pub web_socket_debugger_url: Option<String>,
}

/// `/json/version`.
#[derive(Debug, Clone, Deserialize)]
pub struct VersionInfo {
    #[serde(rename = "Browser", default)]
    pub browser: String,
    #[serde(rename = "Protocol-Version", default)]
    pub protocol_version: String,
}

/// Resolves `host:port` (IPv6 in brackets) to socket addresses.
pub fn resolve(host_port: &str) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = host_port
        .to_socket_addrs()
        .map_err(|e| Error::InvalidTarget(format!("cannot resolve '{host_port}': {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::InvalidTarget(format!("'{host_port}' resolves to no address")));
    }
    Ok(addrs)
}

/// A GET request to the inspector's HTTP endpoint; returns the body of a 200 answer.
pub fn get(addr: SocketAddr, host_header: &str, path: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| Error::NoInspector { addr: addr.to_string(), detail: e.to_string() })?;
    stream.set_write_timeout(Some(timeout))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout { what: format!("GET {path} from {addr}"), after: timeout });
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > 4 << 20 {
                    return Err(Error::BadReply(format!("{path}: answer larger than 4 MiB")));
                }
                if let Some(body) = complete_body(&raw) {
                    return finish(addr, path, &raw, body);
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let body = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .ok_or_else(|| Error::NoInspector { addr: addr.to_string(), detail: "not an HTTP answer".into() })?;
    finish(addr, path, &raw, body)
}

/// The offset of the body once the headers and a Content-Length body are complete.
fn complete_body(raw: &[u8]) -> Option<usize> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok())?;
    (raw.len() >= end + len).then_some(end)
}

fn finish(addr: SocketAddr, path: &str, raw: &[u8], body: usize) -> Result<String> {
    let status_line = String::from_utf8_lossy(&raw[..raw.len().min(64)]).to_string();
    let ok = status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200");
    if !ok {
        let first = status_line.lines().next().unwrap_or("").to_string();
        return Err(Error::NoInspector { addr: addr.to_string(), detail: format!("GET {path}: {first}") });
    }
    Ok(String::from_utf8_lossy(&raw[body..]).into_owned())
}

fn host_header(addr: SocketAddr) -> String {
    addr.to_string()
}

/// `GET /json/version`; fails unless the answer looks like a Node inspector.
pub fn json_version(addr: SocketAddr, timeout: Duration) -> Result<VersionInfo> {
    let body = get(addr, &host_header(addr), "/json/version", timeout)?;
    let info: VersionInfo = serde_json::from_str(&body).map_err(|_| Error::NoInspector {
        addr: addr.to_string(),
        detail: "the port answers HTTP but is not a Node inspector".into(),
    })?;
    if !info.browser.starts_with("node.js") {
        return Err(Error::NoInspector {
            addr: addr.to_string(),
            detail: format!("the port belongs to '{}', not node.js", info.browser),
        });
    }
    Ok(info)
}

/// `GET /json/list`: the debuggable targets (one per Node process/isolate).
pub fn json_list(addr: SocketAddr, timeout: Duration) -> Result<Vec<TargetInfo>> {
    let body = get(addr, &host_header(addr), "/json/list", timeout)?;
    serde_json::from_str(&body).map_err(|e| Error::NoInspector {
        addr: addr.to_string(),
        detail: format!("/json/list is not a target list: {e}"),
    })
}

/// The WebSocket URL of the first `node` target at `addr`.
pub fn discover_ws_url(addr: SocketAddr, timeout: Duration) -> Result<String> {
    let targets = json_list(addr, timeout)?;
    targets
        .iter()
        .find(|t| t.kind == "node" || t.kind.is_empty())
        .or(targets.first())
        .and_then(|t| t.web_socket_debugger_url.clone())
        .ok_or_else(|| Error::NoInspector {
            addr: addr.to_string(),
            detail: "/json/list has no target with a webSocketDebuggerUrl".into(),
        })
}
