//! Choosing a target, opening its inspector if needed, and putting everything back on close.
//!
//! Rules: connect to loopback only (unless the caller allows remote hosts), bound every wait, and close what
//! we opened: an inspector we activated with SIGUSR1 is closed again from inside the target, and an app we
//! launched is stopped (SIGTERM, then SIGKILL after a grace period) unless the caller keeps it running.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::http;
use crate::in_target::CLOSE_INSPECTOR_EXPRESSION;
use crate::procfs::{self, ProcInfo};
use serde_json::json;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which process to attach to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A running process by pid; its inspector is opened with SIGUSR1 if it is not open yet.
    Pid(u32),
    /// An inspector that is already open, as `HOST:PORT`.
    Inspect(String),
    /// An inspector WebSocket URL, `ws://HOST:PORT/UUID`.
    Ws(String),
    /// Launch `program args…` with `--inspect=127.0.0.1:0` added to `NODE_OPTIONS`.
    Launch { program: String, args: Vec<String> },
}

/// How to attach and detach.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Allow non-loopback hosts for `Inspect`/`Ws` (the inspector grants code execution).
    pub allow_remote: bool,
    /// Leave a launched app running when the session ends.
    pub keep_running: bool,
    /// How long to wait for an inspector to appear (after SIGUSR1, or for a launched app).
    pub attach_timeout: Duration,
    /// Default timeout of each CDP call.
    pub call_timeout: Duration,
    /// Send a launched app's stdout to our stderr (so our stdout stays machine-readable).
    pub child_stdout_to_stderr: bool,
    /// Time between SIGTERM and SIGKILL when stopping a launched app.
    pub kill_grace: Duration,
}

impl Default for AttachOptions {
    fn default() -> Self {
        AttachOptions {
            allow_remote: false,
            keep_running: false,
            attach_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(10),
            child_stdout_to_stderr: false,
            kill_grace: Duration::from_secs(3),
        }
    }
}

/// Who opened the inspector the session talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// It was open before we came; we leave it open.
    AlreadyOpen,
    /// We opened it with SIGUSR1; we close it on detach.
    OpenedBySignal,
    /// We launched the process under the inspector.
    Launched,
}

/// What [`Session::close`] did.
#[derive(Debug, Clone, Default)]
pub struct CloseReport {
    /// `Some(true)` when we had to close the inspector and its port is verified closed.
    pub inspector_closed: Option<bool>,
    /// The launched app was stopped (`Some(true)` if it needed SIGKILL).
    pub child_killed: Option<bool>,
    /// The launched app was left running with this pid.
    pub child_kept: Option<u32>,
}

/// An attached target: a [`Client`] plus what we must undo when done. Dereferences to the client.
pub struct Session {
    client: Client,
    ws_url: String,
    addr: Option<SocketAddr>,
    pid: Option<u32>,
    origin: Origin,
    child: Option<Child>,
    keep_running: bool,
    kill_grace: Duration,
    call_timeout: Duration,
    forwarders: Vec<JoinHandle<()>>,
    done: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("ws_url", &self.ws_url)
            .field("pid", &self.pid)
            .field("origin", &self.origin)
            .finish()
    }
}

impl std::ops::Deref for Session {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// True when `host` (a name or IP literal, IPv6 possibly in brackets) resolves only to loopback addresses.
pub fn is_loopback_host(host_port: &str) -> bool {
    match http::resolve(host_port) {
        Ok(addrs) => addrs.iter().all(|a| a.ip().is_loopback()),
        Err(_) => false,
    }
}

fn check_host(host_port: &str, allow_remote: bool) -> Result<()> {
    if allow_remote || is_loopback_host(host_port) {
        Ok(())
    } else {
        Err(Error::RemoteRefused { host: host_port.to_string() })
    }
}

/// `HOST:PORT` of a `ws://HOST:PORT/…` URL.
fn ws_host_port(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| Error::InvalidTarget(format!("'{url}' is not a ws:// URL (wss is not supported)")))?;
    let host_port = rest.split('/').next().unwrap_or_default();
    if host_port.is_empty() {
        return Err(Error::InvalidTarget(format!("'{url}' has no host")));
    }
    Ok(host_port.to_string())
}

impl Session {
    /// Attaches to `target`. On error nothing is left behind: an inspector we opened is closed again and a
    /// launched app is stopped.
    pub fn attach(target: &Target, opts: &AttachOptions) -> Result<Session> {
        match target {
            Target::Pid(pid) => attach_pid(*pid, opts),
            Target::Inspect(host_port) => {
                check_host(host_port, opts.allow_remote)?;
                let addr = http::resolve(host_port)?[0];
                let url = http::discover_ws_url(addr, opts.call_timeout)?;
                let url = rehost(&url, host_port);
                Session::connect(url, Some(addr), None, Origin::AlreadyOpen, opts)
            }
            Target::Ws(url) => {
                let host_port = ws_host_port(url)?;
                check_host(&host_port, opts.allow_remote)?;
                let addr = http::resolve(&host_port).ok().map(|a| a[0]);
                Session::connect(url.clone(), addr, None, Origin::AlreadyOpen, opts)
            }
            Target::Launch { program, args } => launch(program, args, opts),
        }
    }

    fn connect(
        ws_url: String,
        addr: Option<SocketAddr>,
        pid: Option<u32>,
        origin: Origin,
        opts: &AttachOptions,
    ) -> Result<Session> {
        let client = Client::connect(&ws_url, opts.call_timeout)?;
        let mut session = Session {
            client,
            ws_url,
            addr,
            pid,
            origin,
            child: None,
            keep_running: opts.keep_running,
            kill_grace: opts.kill_grace,
            call_timeout: opts.call_timeout,
            forwarders: Vec::new(),
            done: false,
        };
        if session.pid.is_none() && addr.is_some_and(|a| a.ip().is_loopback()) {
            // Same machine: learn the pid (for names, pre-flight checks and liveness).
            let pid = session.client.evaluate("process.pid").ok().and_then(|v| v.as_u64());
            session.pid = pid.and_then(|p| u32::try_from(p).ok()).filter(|p| procfs::is_alive(*p));
        }
        Ok(session)
    }

    /// The target's pid, when known (always for `Pid` and `Launch`; for a local `Inspect`/`Ws` target via
    /// `process.pid`).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// True when leakscope opened this inspector (and so will close it).
    pub fn opened_by_us(&self) -> bool {
        matches!(self.origin, Origin::OpenedBySignal | Origin::Launched)
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// `/proc` information about the target, when its pid is known and visible.
    pub fn proc_info(&self) -> Option<ProcInfo> {
        self.pid.and_then(|p| ProcInfo::read(p).ok())
    }

    /// Turns a connection error into [`Error::ProcessGone`] when the target has exited.
    pub fn explain(&self, err: Error) -> Error {
        let connection_problem = err.is_disconnect() || matches!(err, Error::Io(_) | Error::Timeout { .. });
        let Some(pid) = self.pid.filter(|_| connection_problem) else { return err };
        // The socket closes while the process is still exiting: give it a moment to become a zombie.
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            if !procfs::is_alive(pid) {
                return Error::ProcessGone { pid };
            }
            if Instant::now() >= deadline {
                return err;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens a fresh connection to the same inspector (after a failed or aborted call).
    pub fn reconnect(&mut self) -> Result<()> {
        let url = match self.addr {
            Some(addr) => http::discover_ws_url(addr, self.call_timeout)
                .map(|u| rehost(&u, &addr.to_string()))
                .unwrap_or_else(|_| self.ws_url.clone()),
            None => self.ws_url.clone(),
        };
        self.client = Client::connect(&url, self.call_timeout)?;
        self.ws_url = url;
        Ok(())
    }

    /// Detaches: closes the inspector if we opened it (and verifies its port stopped listening), stops a
    /// launched app unless kept, closes the connection.
    pub fn close(mut self) -> Result<CloseReport> {
        self.finish()
    }

    fn finish(&mut self) -> Result<CloseReport> {
        if self.done {
            return Ok(CloseReport::default());
        }
        self.done = true;
        let mut report = CloseReport::default();
        let launched = self.origin == Origin::Launched;
        if launched && !self.keep_running {
            self.client.disconnect();
            report.child_killed = self.stop_child();
            return Ok(report);
        }
        if self.opened_by_us() {
            let closed = self.close_inspector();
            if launched {
                report.child_kept = self.pid;
                self.child = None;
            }
            report.inspector_closed = Some(closed?);
        } else {
            self.client.disconnect();
        }
        Ok(report)
    }

    /// Evaluates [`CLOSE_INSPECTOR_EXPRESSION`], treats the socket closing as success, then waits (bounded)
    /// until the port no longer listens.
    fn close_inspector(&mut self) -> Result<bool> {
        if let Some(pid) = self.pid {
            if !procfs::is_alive(pid) {
                return Err(Error::ProcessGone { pid });
            }
        }
        if self.client.is_closed() {
            self.reconnect()?;
        }
        let params = json!({
            "expression": CLOSE_INSPECTOR_EXPRESSION,
            "includeCommandLineAPI": true,
            "returnByValue": true,
        });
        let id = self.client.send("Runtime.evaluate", params)?;
        match self.client.wait_reply(id, "Runtime.evaluate", Duration::from_secs(5)) {
            Ok(reply) => {
                if let Some(details) = reply.get("exceptionDetails") {
                    return Err(Error::Evaluate(format!("closing the inspector: {details}")));
                }
                self.client.wait_closed(Duration::from_secs(3));
            }
            Err(Error::ConnectionClosed) => {}
            Err(e) => return Err(e),
        }
        self.client.disconnect();
        let port = self.addr.map(|a| a.port());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let listening = match (self.pid, port) {
                (Some(pid), Some(port)) => {
                    procfs::listening_sockets(pid).map(|ls| ls.iter().any(|l| l.port == port)).unwrap_or(false)
                }
                (_, Some(_)) => self
                    .addr
                    .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok()),
                _ => false,
            };
            if !listening {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the launched app; returns whether SIGKILL was needed.
    fn stop_child(&mut self) -> Option<bool> {
        let mut child = self.child.take()?;
        let killed = stop_group(&mut child, self.kill_grace);
        crate::util::set_launched_group(0);
        self.join_forwarders();
        Some(killed)
    }

    fn join_forwarders(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline && self.forwarders.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        for handle in self.forwarders.drain(..) {
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Replaces the host of a `ws://host:port/id` URL (the inspector builds it from our Host header, but an
/// IPv6 or odd header could make it unusable).
fn rehost(url: &str, host_port: &str) -> String {
    match url.strip_prefix("ws://").and_then(|r| r.split_once('/')) {
        Some((_, path)) => format!("ws://{host_port}/{path}"),
        None => url.to_string(),
    }
}

/// An inspector among `pid`'s listening sockets, optionally restricted to `ports`.
fn find_inspector(pid: u32, only: Option<&HashSet<u16>>) -> Option<SocketAddr> {
    let listeners = procfs::listening_sockets(pid).ok()?;
    listeners
        .iter()
        .filter(|l| only.is_none_or(|ports| ports.contains(&l.port)))
        .map(|l| l.connect_addr())
        .find(|addr| http::json_version(*addr, Duration::from_millis(500)).is_ok())
}

fn attach_pid(pid: u32, opts: &AttachOptions) -> Result<Session> {
    let info = ProcInfo::read(pid)?;
    if matches!(info.state, 'Z' | 'X') {
        return Err(Error::ProcessGone { pid });
    }
    if !info.is_node() {
        let name = info.exe.clone().unwrap_or_else(|| info.comm.clone());
        return Err(Error::NotNode { pid, name });
    }
    let me = procfs::current_euid();
    if me != 0 && info.uid != me {
        return Err(Error::PermissionDenied {
            pid,
            detail: format!("it belongs to uid {} and leakscope runs as uid {me}; run as that user", info.uid),
        });
    }
    let flags = info.node_flags();
    let port = procfs::inspector_port_from_flags(&flags);
    let explicit = flags.iter().any(|f| f.starts_with("--inspect"));
    // 1. An inspector that is already open: try the likely port first, then (if flags ask for one) all.
    let likely: HashSet<u16> = [port].into_iter().collect();
    let existing = find_inspector(pid, Some(&likely)).or_else(|| explicit.then(|| find_inspector(pid, None)).flatten());
    if let Some(addr) = existing {
        let url = rehost(&http::discover_ws_url(addr, opts.call_timeout)?, &addr.to_string());
        return Session::connect(url, Some(addr), Some(pid), Origin::AlreadyOpen, opts);
    }
    // 2. Open it with SIGUSR1, unless that cannot work or would harm the process.
    if flags.iter().any(|f| f == "--disable-sigusr1") {
        return Err(Error::Sigusr1Disabled { pid });
    }
    if procfs::catches_signal(pid, libc::SIGUSR1) == Some(false) {
        return Err(Error::Sigusr1NotHandled { pid });
    }
    if port != 0 {
        let holders: Vec<u32> = procfs::port_holders(port, Some(pid));
        if !holders.is_empty() || procfs::port_in_use(port, Some(pid)) {
            return Err(Error::PortClash { pid, port, holder: holders.first().copied() });
        }
    }
    let before: HashSet<u16> = procfs::listening_sockets(pid)?.iter().map(|l| l.port).collect();
    procfs::send_signal(pid, libc::SIGUSR1)?;
    let deadline = Instant::now() + opts.attach_timeout;
    let addr = loop {
        if !procfs::is_alive(pid) {
            return Err(Error::ProcessGone { pid });
        }
        let fresh: HashSet<u16> = procfs::listening_sockets(pid)
            .map_err(|_| Error::ProcessGone { pid })?
            .iter()
            .map(|l| l.port)
            .filter(|p| !before.contains(p))
            .collect();
        if !fresh.is_empty() {
            if let Some(addr) = find_inspector(pid, Some(&fresh)) {
                break addr;
            }
        }
        if Instant::now() >= deadline {
            if port != 0 {
                let holders = procfs::port_holders(port, Some(pid));
                if holders.iter().any(|h| *h != pid) {
                    return Err(Error::PortClash { pid, port, holder: holders.first().copied() });
                }
            }
            return Err(Error::NoInspectorAppeared { pid, waited: opts.attach_timeout });
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let url = match http::discover_ws_url(addr, opts.call_timeout) {
        Ok(url) => rehost(&url, &addr.to_string()),
        Err(e) => {
            close_orphan(addr, opts);
            return Err(e);
        }
    };
    Session::connect(url, Some(addr), Some(pid), Origin::OpenedBySignal, opts).inspect_err(|_| {
        close_orphan(addr, opts);
    })
}

/// Best effort: close an inspector we opened but could not use.
fn close_orphan(addr: SocketAddr, opts: &AttachOptions) {
    if let Ok(url) = http::discover_ws_url(addr, opts.call_timeout) {
        if let Ok(mut client) = Client::connect(&rehost(&url, &addr.to_string()), opts.call_timeout) {
            let params = json!({ "expression": CLOSE_INSPECTOR_EXPRESSION, "includeCommandLineAPI": true });
            if let Ok(id) = client.send("Runtime.evaluate", params) {
                let _ = client.wait_reply(id, "Runtime.evaluate", Duration::from_secs(3));
                client.wait_closed(Duration::from_secs(3));
            }
        }
    }
}

/// Banner lines the inspector prints on stderr; not forwarded.
fn is_inspector_banner(line: &str) -> bool {
    line.starts_with("Debugger listening on ")
        || line.starts_with("For help, see: https://nodejs.org/")
        || line.starts_with("Debugger attached.")
        || line.starts_with("Debugger ending on ")
        || line.starts_with("Waiting for the debugger to disconnect")
}

/// Package-manager wrappers: their own node process gets the inspector too; we want the app's.
fn is_wrapper(argv1: &str) -> bool {
    ["npm-cli.js", "npx-cli.js", "/yarn", "yarn.js", "pnpm", "/corepack"].iter().any(|w| argv1.contains(w))
}

fn launch(program: &str, args: &[String], opts: &AttachOptions) -> Result<Session> {
    let mut node_options = std::env::var("NODE_OPTIONS").unwrap_or_default();
    if !node_options.is_empty() {
        node_options.push(' ');
    }
    node_options.push_str("--inspect=127.0.0.1:0");
    let mut cmd = Command::new(program);
    cmd.args(args).env("NODE_OPTIONS", &node_options).stdin(Stdio::null()).process_group(0);
    let keep = opts.keep_running;
    // A kept app must not write into pipes that die with us, so it inherits our stdio and we find its
    // port from /proc instead of reading the banner.
    if keep {
        cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    } else {
        cmd.stderr(Stdio::piped());
        cmd.stdout(if opts.child_stdout_to_stderr { Stdio::piped() } else { Stdio::inherit() });
    }
    if !keep {
        // SAFETY: prctl is async-signal-safe; the closure only calls it. If leakscope itself dies (even by
        // SIGKILL), the kernel sends the app SIGTERM, so it never outlives us with an open inspector.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
                Ok(())
            });
        }
    }
    let child = cmd.spawn().map_err(|e| Error::LaunchFailed { program: program.to_string(), detail: e.to_string() })?;
    let pid = child.id();
    if !keep {
        crate::util::set_launched_group(pid as i32);
    }
    let mut guard = LaunchGuard { child: Some(child), forwarders: Vec::new(), grace: opts.kill_grace };
    let (tx, rx) = mpsc::channel::<String>();
    if let Some(stderr) = guard.child.as_mut().and_then(|c| c.stderr.take()) {
        guard.forwarders.push(std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line);
                if let Some(pos) = text.find("Debugger listening on ws://") {
                    let url = text[pos + "Debugger listening on ".len()..].trim().to_string();
                    let _ = tx.send(url);
                } else if !is_inspector_banner(text.trim_start()) {
                    let _ = std::io::stderr().write_all(&line);
                }
                line.clear();
            }
        }));
    }
    if let Some(stdout) = guard.child.as_mut().and_then(|c| c.stdout.take()) {
        guard.forwarders.push(std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let _ = std::io::copy(&mut reader, &mut std::io::stderr());
        }));
    }
    let deadline = Instant::now() + opts.attach_timeout;
    loop {
        if let Some(Ok(Some(status))) = guard.child.as_mut().map(|c| c.try_wait()) {
            return Err(Error::LaunchFailed {
                program: program.to_string(),
                detail: format!("it exited ({status}) before its inspector opened"),
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("the inspector of the launched '{program}' (is it a node program?)"),
                after: opts.attach_timeout,
            });
        }
        let candidate = if keep {
            std::thread::sleep(Duration::from_millis(50));
            find_inspector(pid, None).and_then(|addr| {
                http::discover_ws_url(addr, opts.call_timeout).ok().map(|u| (rehost(&u, &addr.to_string()), addr))
            })
        } else {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(url) => ws_host_port(&url).ok().and_then(|hp| http::resolve(&hp).ok()).map(|addrs| (url, addrs[0])),
                Err(_) => None,
            }
        };
        let Some((url, addr)) = candidate else { continue };
        if !addr.ip().is_loopback() {
            continue;
        }
        let mut client = Client::connect(&url, opts.call_timeout)?;
        // The banner comes while Node is still bootstrapping: wait until `process.argv` exists.
        let (real_pid, argv1) = loop {
            let probe = "(globalThis.process && process.argv) ? [process.pid, process.argv[1] || ''] : null";
            let value = client.evaluate(probe)?;
            if let Some(pair) = value.as_array() {
                let real = pair.first().and_then(|v| v.as_u64()).and_then(|p| u32::try_from(p).ok());
                break (real.unwrap_or(pid), pair.get(1).and_then(|v| v.as_str()).unwrap_or("").to_string());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout { what: "the launched app to start".into(), after: opts.attach_timeout });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !keep && is_wrapper(&argv1) {
            continue; // the wrapper's own inspector: wait for the app's
        }
        return Ok(Session {
            client,
            ws_url: url,
            addr: Some(addr),
            pid: Some(real_pid),
            origin: Origin::Launched,
            child: guard.child.take(),
            keep_running: keep,
            kill_grace: opts.kill_grace,
            call_timeout: opts.call_timeout,
            forwarders: std::mem::take(&mut guard.forwarders),
            done: false,
        });
    }
}

/// Stops a launched app if attaching to it fails.
struct LaunchGuard {
    child: Option<Child>,
    forwarders: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl Drop for LaunchGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child, self.grace);
            crate::util::set_launched_group(0);
        }
    }
}

/// SIGTERM to the child's process group, SIGKILL after `grace`. Returns whether SIGKILL was needed.
fn stop_group(child: &mut Child, grace: Duration) -> bool {
    let pgid = child.id() as i32;
    let signal_group = |sig| {
        // SAFETY: kill has no memory-safety preconditions; a negative pid addresses the child's group.
        unsafe { libc::kill(-pgid, sig) };
    };
    let mut killed = false;
    if !matches!(child.try_wait(), Ok(Some(_))) {
        signal_group(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            if Instant::now() >= deadline {
                signal_group(libc::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                killed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    signal_group(libc::SIGKILL); // stragglers of a wrapper
    killed
}
