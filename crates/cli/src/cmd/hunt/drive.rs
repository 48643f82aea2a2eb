//! What makes the app work between snapshots: a built-in keep-alive HTTP load driver, a shell command per
//! round, or just waiting.

use leakscope_inspector::util::interrupted;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One request the HTTP driver sends: `GET http://127.0.0.1:3000/items`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Request {
    /// Parses `[METHOD ]http://HOST[:PORT][/PATH]`. Only plain HTTP: the driver talks to a local app.
    pub fn parse(spec: &str) -> Result<Request, String> {
        let spec = spec.trim();
        let (method, url) = match spec.split_once(char::is_whitespace) {
            Some((m, rest)) => (m.to_ascii_uppercase(), rest.trim()),
            None => ("GET".to_string(), spec),
        };
        if !method.chars().all(|c| c.is_ascii_uppercase()) || method.is_empty() {
            return Err(format!("`{method}` in `{spec}` is not an HTTP method"));
        }
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                format!("`{url}`: only http:// is supported (point the driver at the app's plain HTTP port)")
            } else {
                format!("`{url}` is not an http:// URL")
            }
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or_else(|| format!("`{url}`: unclosed [ in the host"))?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (authority.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        let port =
            if port.is_empty() { 80 } else { port.parse().map_err(|_| format!("`{url}`: bad port `{port}`"))? };
        Ok(Request { method, host, port, path })
    }

    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority(), self.path)
    }

    fn addr(&self) -> std::io::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{} does not resolve", self.host)))
    }
}

/// The built-in HTTP driver's settings.
#[derive(Debug, Clone)]
pub struct HttpDrive {
    pub requests: Vec<Request>,
    pub per_round: u64,
    pub concurrency: usize,
    pub body: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum Drive {
    Http(HttpDrive),
    /// `sh -c COMMAND` once per round.
    Shell(String),
    Wait(Duration),
}

/// What one round of driving did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RoundWork {
    pub seconds: f64,
    /// HTTP: requests sent, answered with 2xx/3xx, answered otherwise, failed without an answer.
    pub sent: u64,
    pub ok: u64,
    pub bad_status: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Shell: the command's exit code.
    pub exit_code: Option<i32>,
    /// The first failure seen, to tell the user.
    pub first_error: Option<String>,
    pub interrupted: bool,
}

impl RoundWork {
    pub fn describe(&self, drive: &Drive) -> String {
        match drive {
            Drive::Http(_) => {
                let rate = if self.seconds > 0.0 { self.sent as f64 / self.seconds } else { 0.0 };
                let mut text = format!("{} requests in {:.1} s ({rate:.0}/s)", self.sent, self.seconds);
                if let (Some(p50), Some(p99)) = (self.p50_ms, self.p99_ms) {
                    text.push_str(&format!(", p50 {p50:.1} ms, p99 {p99:.1} ms"));
                }
                if self.bad_status + self.errors > 0 {
                    text.push_str(&format!(", {} non-2xx, {} failed", self.bad_status, self.errors));
                }
                text
            }
            Drive::Shell(_) => match self.exit_code {
                Some(code) => format!("load command ran {:.1} s, exit code {code}", self.seconds),
                None => format!("load command ran {:.1} s, killed by a signal", self.seconds),
            },
            Drive::Wait(_) => format!("waited {:.1} s", self.seconds),
        }
    }
}

impl Drive {
    pub fn describe(&self) -> String {
        match self {
            Drive::Http(http) => {
                let urls: Vec<String> = http.requests.iter().map(|r| format!("{} {}", r.method, r.url())).collect();
                format!(
                    "{} HTTP requests per round over {} keep-alive connection{} to {}",
                    http.per_round,
                    http.concurrency,
                    if http.concurrency == 1 { "" } else { "s" },
                    urls.join(", ")
                )
            }
            Drive::Shell(command) => format!("`{command}` once per round"),
            Drive::Wait(d) => format!("waiting {:.0} s per round while the app works by itself", d.as_secs_f64()),
        }
    }

    /// Runs one round; `round` is 0 for the warm-up. Returns early (marked interrupted) on Ctrl-C.
    pub fn run_round(&self, round: usize, target_pid: Option<u32>) -> RoundWork {
        let started = Instant::now();
        let mut work = match self {
            Drive::Http(http) => http.run(),
            Drive::Shell(command) => run_shell(command, round, target_pid),
            Drive::Wait(d) => {
                let mut work = RoundWork::default();
                while started.elapsed() < *d && !interrupted() {
                    std::thread::sleep(Duration::from_millis(50).min(d.saturating_sub(started.elapsed())));
                }
                work.interrupted = interrupted();
                work
            }
        };
        work.seconds = started.elapsed().as_secs_f64();
        work
    }
}

/// Waits until `request`'s port accepts connections (the app is up), at most `timeout`.
pub fn wait_until_listening(request: &Request, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match request.addr() {
            Ok(addr) => match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline || interrupted() {
            return Err(format!(
                "nothing accepts connections at {} after {:.0} s ({last})",
                request.authority(),
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_shell(command: &str, round: usize, target_pid: Option<u32>) -> RoundWork {
    let mut work = RoundWork::default();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command).env("LEAKSCOPE_ROUND", round.to_string()).stdin(Stdio::null());
    if let Some(pid) = target_pid {
        cmd.env("LEAKSCOPE_PID", pid.to_string());
    }
    // The load command's output goes to our stderr so that stdout stays the report.
    cmd.stdout(std::io::stderr());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            work.first_error = Some(format!("cannot run `sh -c {command}`: {e}"));
            work.exit_code = Some(127);
            return work;
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                work.exit_code = status.code();
                if !status.success() {
                    work.first_error = Some(format!("`{command}` exited with {status}"));
                }
                return work;
            }
            Ok(None) if interrupted() => {
                // SAFETY: kill(2) on the child's own process group, which we created for it.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
                let _ = child.wait();
                work.interrupted = true;
                return work;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                work.first_error = Some(format!("waiting for `{command}`: {e}"));
                return work;
            }
        }
    }
}

impl HttpDrive {
    fn run(&self) -> RoundWork {
        let next = AtomicU64::new(0);
        let results = Mutex::new((RoundWork::default(), Vec::<f64>::new()));
        std::thread::scope(|scope| {
            for _ in 0..self.concurrency.max(1) {
                scope.spawn(|| {
                    let mut local = RoundWork::default();
                    let mut latencies = Vec::new();
                    let mut connection: Option<Connection> = None;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= self.per_round || interrupted() {
                            break;
                        }
                        let request = &self.requests[(i % self.requests.len() as u64) as usize];
                        let started = Instant::now();
                        local.sent += 1;
                        match self.send(&mut connection, request) {
                            Ok(status) if (200..400).contains(&status) => local.ok += 1,
                            Ok(status) => {
                                local.bad_status += 1;
                                local.first_error.get_or_insert_with(|| {
                                    format!("{} {} answered {status}", request.method, request.url())
                                });
                            }
                            Err(e) => {
                                local.errors += 1;
                                connection = None;
                                local
                                    .first_error
                                    .get_or_insert_with(|| format!("{} {}: {e}", request.method, request.url()));
                            }
                        }
                        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                    let mut shared = results.lock().expect("driver results");
                    shared.0.sent += local.sent;
                    shared.0.ok += local.ok;
                    shared.0.bad_status += local.bad_status;
                    shared.0.errors += local.errors;
                    if shared.0.first_error.is_none() {
                        shared.0.first_error = local.first_error;
                    }
                    shared.1.extend(latencies);
                });
            }
        });
        let (mut work, mut latencies) = results.into_inner().expect("driver results");
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies.get(((latencies.len() - 1) as f64 * q).round() as usize).copied();
        if !latencies.is_empty() {
            work.p50_ms = at(0.5);
            work.p99_ms = at(0.99);
        }
        work.interrupted = interrupted();
        work
    }

    /// Sends one request on the thread's connection (opening one if needed); returns the status code.
    fn send(&self, connection: &mut Option<Connection>, request: &Request) -> std::io::Result<u16> {
        // A kept-alive connection the server closed meanwhile fails on first use: retry once on a new one.
        for attempt in 0..2 {
            if connection.as_ref().is_none_or(|c| c.request_authority != request.authority()) {
                *connection = Some(Connection::open(request, self.timeout)?);
            }
            let conn = connection.as_mut().expect("just opened");
            let reused = conn.used > 0;
            match conn.exchange(request, self.body.as_deref(), &self.headers) {
                Ok((status, keep_alive)) => {
                    conn.used += 1;
                    if !keep_alive {
                        *connection = None;
                    }
                    return Ok(status);
                }
                Err(_) if reused && attempt == 0 => *connection = None,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("connection closed twice"))
    }
}

struct Connection {
    reader: BufReader<TcpStream>,
    request_authority: String,
    used: u64,
}

impl Connection {
    fn open(request: &Request, timeout: Duration) -> std::io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&request.addr()?, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection { reader: BufReader::new(stream), request_authority: request.authority(), used: 0 })
    }

    /// Writes the request, reads the whole response; returns (status, connection reusable).
    fn exchange(
        &mut self,
        request: &Request,
        body: Option<&[u8]>,
        headers: &[(String, String)],
    ) -> std::io::Result<(u16, bool)> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: leakscope-hunt\r\nAccept: */*\r\n",
            request.method,
            request.path,
            request.authority()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = if matches!(request.method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS") { None } else { body };
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.map_or(0, <[u8]>::len)));
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        if let Some(body) = body {
            stream.write_all(body)?;
        }
        self.read_response(request.method == "HEAD")
    }

    fn read_response(&mut self, head_only: bool) -> std::io::Result<(u16, bool)> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        let mut parts = line.split_whitespace();
        let version = parts.next().unwrap_or("");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {:?}", line.trim_end())))?;
        let mut keep_alive = version == "HTTP/1.1";
        let mut length: Option<u64> = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "response headers cut short"));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().ok(),
                    "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                    "connection" => {
                        let value = value.to_ascii_lowercase();
                        if value.contains("close") {
                            keep_alive = false;
                        } else if value.contains("keep-alive") {
                            keep_alive = true;
                        }
                    }
                    _ => {}
                }
            }
        }
        if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok((status, keep_alive));
        }
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| std::io::Error::other("bad chunk size"))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        line.clear();
                        if self.reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                std::io::copy(&mut (&mut self.reader).take(size + 2), &mut std::io::sink())?;
            }
        } else if let Some(length) = length {
            let copied = std::io::copy(&mut (&mut self.reader).take(length), &mut std::io::sink())?;
            if copied < length {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "response body cut short"));
            }
        } else {
            // No length: the body runs to the end of the connection.
            std::io::copy(&mut self.reader, &mut std::io::sink())?;
            keep_alive = false;
        }
        Ok((status, keep_alive))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server thread on a free loopback port that accepts one connection and runs `serve` on it.
    fn one_connection_server<T: Send + 'static>(
        serve: impl FnOnce(&mut BufReader<TcpStream>, &mut TcpStream) -> T + Send + 'static,
    ) -> (u16, std::thread::JoinHandle<T>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut out = stream;
            serve(&mut reader, &mut out)
        });
        (port, server)
    }

    /// Reads a request's head; returns it and its Content-Length.
    fn read_head(reader: &mut BufReader<TcpStream>) -> (String, usize) {
        let (mut line, mut length, mut head) = (String::new(), 0, String::new());
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                return (head, length);
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
        }
    }

    #[test]
    fn parses_request_specs() {
        let r = Request::parse("http://127.0.0.1:3000/items?x=1").unwrap();
        assert_eq!(
            (r.method.as_str(), r.host.as_str(), r.port, r.path.as_str()),
            ("GET", "127.0.0.1", 3000, "/items?x=1")
        );
        let r = Request::parse("post http://localhost").unwrap();
        assert_eq!((r.method.as_str(), r.port, r.path.as_str()), ("POST", 80, "/"));
        let r = Request::parse("http://[::1]:8080/a").unwrap();
        assert_eq!((r.host.as_str(), r.port, r.authority().as_str()), ("::1", 8080, "[::1]:8080"));
        assert!(Request::parse("https://x").unwrap_err().contains("only http://"));
        assert!(Request::parse("ftp://x").is_err());
        assert!(Request::parse("http://x:port").unwrap_err().contains("bad port"));
        assert!(Request::parse("G3T http://x").is_err());
    }

    /// A tiny server answering in the three framings (length, chunked, close) on one connection.
    #[test]
    fn reads_every_response_framing_on_one_keep_alive_connection() {
        let (port, server) = one_connection_server(|reader, out| {
            let answers = [
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it",
            ];
            for answer in answers {
                read_head(reader);
                out.write_all(answer.as_bytes()).unwrap();
            }
        });
        let drive = HttpDrive {
            requests: vec![Request::parse(&format!("http://127.0.0.1:{port}/")).unwrap()],
            per_round: 3,
            concurrency: 1,
            body: None,
            headers: vec![],
            timeout: Duration::from_secs(5),
        };
        let mut connection = None;
        let request = &drive.requests[0];
        assert_eq!(drive.send(&mut connection, request).unwrap(), 200);
        assert_eq!(drive.send(&mut connection, request).unwrap(), 404);
        assert_eq!(drive.send(&mut connection, request).unwrap(), 200);
        assert!(connection.is_none(), "Connection: close ends the connection");
        server.join().unwrap();
    }

    /// POST bodies and extra headers reach the server; the driver counts statuses over many requests.
    #[test]
    fn sends_bodies_and_headers_and_counts_statuses() {
        let (port, server) = one_connection_server(|reader, out| {
            let mut seen = Vec::new();
            for n in 0..10 {
                let (head, length) = read_head(reader);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.push((head, String::from_utf8(body).unwrap()));
                let status = if n % 5 == 4 { "500 Oops" } else { "200 OK" };
                out.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok").as_bytes()).unwrap();
            }
            seen
        });
        let drive = HttpDrive {
            requests: vec![Request::parse(&format!("POST http://127.0.0.1:{port}/items")).unwrap()],
            per_round: 10,
            concurrency: 1,
            body: Some(b"{\"sku\":1}".to_vec()),
            headers: vec![("content-type".into(), "application/json".into())],
            timeout: Duration::from_secs(5),
        };
        let work = drive.run();
        assert_eq!((work.sent, work.ok, work.bad_status, work.errors), (10, 8, 2, 0));
        assert!(work.first_error.unwrap().contains("answered 500"));
        let seen = server.join().unwrap();
        assert!(seen.iter().all(|(head, body)| head.starts_with("POST /items HTTP/1.1")
            && head.contains("content-type: application/json")
            && body == "{\"sku\":1}"));
    }
}
