//! `watch --prometheus ADDR`: serves the latest sample at `/metrics` in Prometheus' text format, so existing
//! monitoring stacks can scrape it (we don't build our own). Loopback only unless `--allow-remote`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The process memory figures one scrape reports.
pub struct Metrics {
    pub pid: Option<u32>,
    pub rss: u64,
    pub heap_total: u64,
    pub heap_used: u64,
    pub external: u64,
    pub array_buffers: u64,
}

pub struct Exporter {
    page: Arc<Mutex<String>>,
    pub address: SocketAddr,
}

impl Exporter {
    /// Binds `address` (port 0 picks a free port) and serves scrapes on a background thread.
    pub fn start(address: &str, allow_remote: bool) -> anyhow::Result<Exporter> {
        let listener = TcpListener::bind(address).map_err(|e| crate::output::Exit {
            code: 2,
            message: format!("--prometheus: cannot listen on {address}: {e}"),
            hint: Some("give a free loopback address such as 127.0.0.1:9464".into()),
        })?;
        let bound = listener.local_addr()?;
        if !bound.ip().is_loopback() && !allow_remote {
            return Err(crate::output::Exit {
                code: 2,
                message: format!("--prometheus {address} is not a loopback address"),
                hint: Some("the metrics reveal the process's memory; use 127.0.0.1, or --allow-remote".into()),
            }
            .into());
        }
        let page = Arc::new(Mutex::new(String::from("# no sample yet\n")));
        let shared = Arc::clone(&page);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &shared);
            }
        });
        Ok(Exporter { page, address: bound })
    }

    pub fn update(&self, m: &Metrics) {
        let labels = m.pid.map(|p| format!("{{pid=\"{p}\"}}")).unwrap_or_default();
        let mut text = String::new();
        let mut gauge = |name: &str, help: &str, value: f64| {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name}{labels} {value}\n"));
        };
        gauge("nodejs_process_resident_memory_bytes", "Resident set size (process.memoryUsage().rss).", m.rss as f64);
        gauge("nodejs_heap_size_total_bytes", "V8 heap size (heapTotal).", m.heap_total as f64);
        gauge("nodejs_heap_size_used_bytes", "V8 heap used (heapUsed).", m.heap_used as f64);
        gauge("nodejs_external_memory_bytes", "Memory of C++ objects bound to JS (external).", m.external as f64);
        gauge("nodejs_array_buffers_bytes", "ArrayBuffer and Buffer memory (arrayBuffers).", m.array_buffers as f64);
        if let Ok(mut page) = self.page.lock() {
            *page = text;
        }
    }
}

fn serve(mut stream: TcpStream, page: &Mutex<String>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = [0u8; 1024];
    let n = stream.read(&mut request)?;
    let first_line = String::from_utf8_lossy(&request[..n]).lines().next().unwrap_or("").to_string();
    let body = page.lock().map(|p| p.clone()).unwrap_or_default();
    let response = if first_line.starts_with("GET /metrics") || first_line.starts_with("GET / ") {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    };
    stream.write_all(response.as_bytes())
}
