//! The CDP client: one WebSocket, request/response matched by id, events to a handler or a bounded queue,
//! a timeout on every call.
//!
//! Single-threaded and blocking on purpose: the caller drives the socket, so nothing runs behind its back and
//! every wait is bounded. Later features (sampling profiler, allocation tracking) use [`Client::call`] and
//! [`Client::call_streaming`] / [`Client::next_event`]; no second client is needed.

use crate::error::{Error, Result};
use crate::in_target::HEAP_SPACE_STATISTICS_EXPRESSION;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// A CDP event (`{"method": ..., "params": ...}` without an id).
#[derive(Debug, Clone)]
pub struct Event {
    pub method: String,
    pub params: Value,
}

/// Called for every event that no streaming call consumed.
pub type EventHandler = Box<dyn FnMut(&Event) + Send>;

/// Events kept when no handler is set; the oldest are dropped beyond this.
const QUEUE_CAP: usize = 10_000;

/// `process.memoryUsage()` of the target, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryUsage {
    pub rss: u64,
    pub heap_total: u64,
    pub heap_used: u64,
    #[serde(default)]
    pub external: u64,
    #[serde(default)]
    pub array_buffers: u64,
}

/// `Runtime.getHeapUsage`, in bytes. The last two fields exist only in newer V8.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeapUsage {
    pub used_size: u64,
    pub total_size: u64,
    #[serde(default)]
    pub embedder_heap_used_size: Option<u64>,
    #[serde(default)]
    pub backing_storage_size: Option<u64>,
}

/// One entry of `v8.getHeapSpaceStatistics()`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize)]
pub struct HeapSpace {
    pub space_name: String,
    pub space_size: u64,
    pub space_used_size: u64,
    pub space_available_size: u64,
    pub physical_space_size: u64,
}

/// Options for [`Client::take_heap_snapshot`].
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Give up when no message arrives for this long (the target is paused while it builds the snapshot,
    /// so keep this generous).
    pub idle_timeout: Duration,
    /// `captureNumericValue`: record numbers as nodes.
    pub capture_numeric_value: bool,
    /// `exposeInternals` (experimental).
    pub expose_internals: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            idle_timeout: Duration::from_secs(120),
            capture_numeric_value: false,
            expose_internals: false,
        }
    }
}

/// Progress of a snapshot: `done`/`total` of V8's own progress report, plus bytes written so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotProgress {
    pub done: u64,
    pub total: u64,
    pub finished: bool,
    pub bytes_written: u64,
}

/// What a finished snapshot cost.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotStats {
    pub bytes: u64,
    pub chunks: u64,
    pub elapsed: Duration,
}

#[derive(Deserialize)]
struct Incoming {
    id: Option<u64>,
    method: Option<String>,
    #[serde(default)]
    params: Value,
    result: Option<Value>,
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<String>,
}

/// A connected CDP session.
pub struct Client {
    ws: WebSocket<TcpStream>,
    url: String,
    next_id: u64,
    timeout: Duration,
    queue: VecDeque<Event>,
    handler: Option<EventHandler>,
    closed: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.url).field("closed", &self.closed).finish()
    }
}

fn is_timeout(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted)
}

impl Client {
    /// Connects to a `ws://host:port/uuid` URL. `timeout` bounds the connect and becomes the default call
    /// timeout. Does not check whether the host is loopback: [`crate::Session::attach`] does.
    pub fn connect(ws_url: &str, timeout: Duration) -> Result<Client> {
        let rest = ws_url
            .strip_prefix("ws://")
            .ok_or_else(|| Error::InvalidTarget(format!("'{ws_url}' is not a ws:// URL")))?;
        let host_port = rest.split('/').next().unwrap_or_default();
        let addrs = crate::http::resolve(host_port)?;
        let mut last = None;
        let mut stream = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = stream.ok_or_else(|| Error::NoInspector {
            addr: host_port.to_string(),
            detail: last.map(|e| e.to_string()).unwrap_or_default(),
        })?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let request = ws_url.into_client_request().map_err(|e| Error::InvalidTarget(format!("'{ws_url}': {e}")))?;
        let (ws, _response) = tungstenite::client::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Interrupted(_) => {
                Error::Timeout { what: format!("the WebSocket handshake with {ws_url}"), after: timeout }
            }
            tungstenite::HandshakeError::Failure(err) => {
                Error::NoInspector { addr: ws_url.to_string(), detail: format!("WebSocket handshake failed: {err}") }
            }
        })?;
        Ok(Client {
            ws,
            url: ws_url.to_string(),
            next_id: 1,
            timeout,
            queue: VecDeque::new(),
            handler: None,
            closed: false,
        })
    }

    /// The WebSocket URL this client is connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The default timeout of [`Client::call`].
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Events that arrive while waiting for replies go to `handler` instead of the queue.
    pub fn set_event_handler(&mut self, handler: Option<EventHandler>) {
        self.handler = handler;
    }

    /// Takes the queued events (those that arrived while no handler was set).
    pub fn drain_events(&mut self) -> Vec<Event> {
        self.queue.drain(..).collect()
    }

    /// True once the connection is known to be closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends a command without waiting; returns its id. Pair with [`Client::wait_reply`].
    pub fn send(&mut self, method: &str, params: Value) -> Result<u64> {
        if self.closed {
            return Err(Error::ConnectionClosed);
        }
        let id = self.next_id;
        self.next_id += 1;
        let text = json!({ "id": id, "method": method, "params": params }).to_string();
        let deadline = Instant::now() + self.timeout;
        self.ws.get_mut().set_write_timeout(Some(self.timeout))?;
        let mut result = self.ws.send(Message::text(text));
        // A write timeout leaves the frame queued; keep flushing until the deadline.
        while let Err(tungstenite::Error::Io(e)) = &result {
            if !is_timeout(e) || Instant::now() >= deadline {
                break;
            }
            result = self.ws.flush();
        }
        result.map_err(|e| self.fail(e.into()))?;
        Ok(id)
    }

    /// Calls `method` and waits for its result, at most [`Client::timeout`].
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let timeout = self.timeout;
        self.call_with_timeout(method, params, timeout)
    }

    /// Calls `method` with an explicit timeout.
    pub fn call_with_timeout(&mut self, method: &str, params: Value, timeout: Duration) -> Result<Value> {
        let id = self.send(method, params)?;
        self.wait_reply(id, method, timeout)
    }

    /// Waits for the reply to `id`, dispatching events meanwhile.
    pub fn wait_reply(&mut self, id: u64, method: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let msg = self.read_message(deadline, timeout, method)?;
            if let Some(reply) = self.dispatch(msg, id, method, &mut |_| Ok(false))? {
                return Ok(reply);
            }
        }
    }

    /// Calls `method` and hands every event to `on_event` until the reply arrives. `on_event` returns
    /// `Ok(true)` when it consumed the event (others go to the handler/queue) and an error to abort. The
    /// timeout is an *idle* timeout: it restarts with every message, so long streams are fine.
    pub fn call_streaming(
        &mut self,
        method: &str,
        params: Value,
        idle_timeout: Duration,
        on_event: &mut dyn FnMut(&Event) -> Result<bool>,
    ) -> Result<Value> {
        let id = self.send(method, params)?;
        loop {
            let msg = self.read_message(Instant::now() + idle_timeout, idle_timeout, method)?;
            if let Some(reply) = self.dispatch(msg, id, method, on_event)? {
                return Ok(reply);
            }
        }
    }

    /// Waits up to `timeout` for the next event (queued ones first). `Ok(None)` on timeout.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>> {
        if let Some(event) = self.queue.pop_front() {
            return Ok(Some(event));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let msg = match self.read_message(deadline, timeout, "an event") {
                Ok(m) => m,
                Err(Error::Timeout { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            if let (None, Some(method)) = (msg.id, msg.method) {
                return Ok(Some(Event { method, params: msg.params }));
            }
        }
    }

    /// Reads until the server closes the connection (or `timeout`). Returns true if it closed.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed && Instant::now() < deadline {
            match self.read_message(deadline, timeout, "close") {
                Ok(_) => {}
                Err(Error::Timeout { .. }) => return false,
                Err(_) => self.closed = true,
            }
        }
        self.closed
    }

    /// Closes the WebSocket cleanly (close frame, wait briefly for the echo).
    pub fn close(mut self) -> Result<()> {
        self.disconnect();
        Ok(())
    }

    /// Like [`Client::close`] without consuming the client; later calls fail with `ConnectionClosed`.
    pub fn disconnect(&mut self) {
        if self.closed {
            return;
        }
        let _ = self.ws.get_mut().set_write_timeout(Some(Duration::from_secs(1)));
        if self.ws.close(None).is_ok() {
            let _ = self.ws.flush();
            self.wait_closed(Duration::from_secs(1));
        }
        self.closed = true;
        let _ = self.ws.get_mut().shutdown(std::net::Shutdown::Both);
    }

    fn fail(&mut self, err: Error) -> Error {
        if err.is_disconnect() {
            self.closed = true;
        }
        err
    }

    /// Reads one text message, bounded by `deadline`.
    fn read_message(&mut self, deadline: Instant, after: Duration, what: &str) -> Result<Incoming> {
        loop {
            if self.closed {
                return Err(Error::ConnectionClosed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout { what: format!("{what} from the inspector"), after });
            }
            self.ws.get_mut().set_read_timeout(Some(left))?;
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    // Sampling profiles nest one level per stack frame (128 frames = 256 levels): lift serde_json's
                    // default depth limit of 128 for replies, which are bounded by the depth we ask V8 for.
                    let mut deserializer = serde_json::Deserializer::from_str(text.as_str());
                    deserializer.disable_recursion_limit();
                    return serde::Deserialize::deserialize(&mut deserializer)
                        .map_err(|e| Error::BadReply(format!("not a CDP message: {e}")));
                }
                Ok(Message::Close(_)) => {
                    self.closed = true;
                    return Err(Error::ConnectionClosed);
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => continue,
                Err(e) => {
                    let err: Error = e.into();
                    self.closed = true;
                    return Err(match err {
                        Error::Io(_) | Error::WebSocket(_) => Error::ConnectionClosed,
                        other => other,
                    });
                }
            }
        }
    }

    /// Routes one message: the reply to `id` is returned; events go to `on_event`, then handler/queue.
    fn dispatch(
        &mut self,
        msg: Incoming,
        id: u64,
        method: &str,
        on_event: &mut dyn FnMut(&Event) -> Result<bool>,
    ) -> Result<Option<Value>> {
        match (msg.id, msg.method) {
            (Some(got), _) if got == id => {
                if let Some(err) = msg.error {
                    let mut message = err.message;
                    if let Some(data) = err.data {
                        message = format!("{message}: {data}");
                    }
                    return Err(Error::Protocol { method: method.to_string(), code: err.code, message });
                }
                Ok(Some(msg.result.unwrap_or(Value::Null)))
            }
            (Some(_), _) => Ok(None), // a reply to a call we stopped waiting for
            (None, Some(name)) => {
                let event = Event { method: name, params: msg.params };
                if !on_event(&event)? {
                    if let Some(handler) = self.handler.as_mut() {
                        handler(&event);
                    } else {
                        if self.queue.len() >= QUEUE_CAP {
                            self.queue.pop_front();
                        }
                        self.queue.push_back(event);
                    }
                }
                Ok(None)
            }
            (None, None) => Ok(None),
        }
    }

    /// `Runtime.evaluate` with `returnByValue`; returns the value, or [`Error::Evaluate`] if it threw.
    pub fn evaluate(&mut self, expression: &str) -> Result<Value> {
        self.evaluate_with(json!({ "expression": expression, "returnByValue": true }))
    }

    /// `Runtime.evaluate` with full parameters (`includeCommandLineAPI`, `awaitPromise`, ...).
    pub fn evaluate_with(&mut self, params: Value) -> Result<Value> {
        let reply = self.call("Runtime.evaluate", params)?;
        if let Some(details) = reply.get("exceptionDetails") {
            let text = details
                .pointer("/exception/description")
                .and_then(Value::as_str)
                .or_else(|| details.get("text").and_then(Value::as_str))
                .unwrap_or("exception");
            return Err(Error::Evaluate(text.to_string()));
        }
        Ok(reply.pointer("/result/value").cloned().unwrap_or(Value::Null))
    }

    /// `process.memoryUsage()` in the target.
    pub fn memory_usage(&mut self) -> Result<MemoryUsage> {
        let value = self.evaluate("process.memoryUsage()")?;
        serde_json::from_value(value).map_err(|e| Error::BadReply(format!("process.memoryUsage(): {e}")))
    }

    /// `Runtime.getHeapUsage`.
    pub fn heap_usage(&mut self) -> Result<HeapUsage> {
        let value = self.call("Runtime.getHeapUsage", json!({}))?;
        serde_json::from_value(value).map_err(|e| Error::BadReply(format!("Runtime.getHeapUsage: {e}")))
    }

    /// `v8.getHeapSpaceStatistics()` in the target: per-space sizes. `old_space` used bytes drop only at a
    /// full (mark-compact) GC, which makes them a GC detector.
    ///
    /// `None` when the target had not loaded Node's `v8` module yet: loading it inside this evaluation could
    /// run in an interrupt while the target is halfway through loading a module `v8` depends on (`stream`),
    /// and would break both for good (see [`crate::in_target`]). The module is then loaded from the
    /// target's event loop, and a later call answers.
    pub fn heap_space_statistics(&mut self) -> Result<Option<Vec<HeapSpace>>> {
        let value = self.evaluate_with(json!({
            "expression": HEAP_SPACE_STATISTICS_EXPRESSION,
            "includeCommandLineAPI": true,
            "returnByValue": true,
        }))?;
        if value.is_null() {
            return Ok(None);
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| Error::BadReply(format!("v8.getHeapSpaceStatistics(): {e}")))
    }

    /// `HeapProfiler.collectGarbage`: a full, blocking GC in the target.
    pub fn collect_garbage(&mut self) -> Result<()> {
        let timeout = self.timeout.max(Duration::from_secs(30));
        self.call_with_timeout("HeapProfiler.collectGarbage", json!({}), timeout)?;
        Ok(())
    }

    /// Takes a heap snapshot and streams every `addHeapSnapshotChunk` straight into `out` as it arrives.
    /// `progress` is called on V8's progress reports and after each chunk; returning `false` aborts with
    /// [`Error::Interrupted`]. A write failure aborts with [`Error::Write`]. After an abort the connection
    /// is closed (the target keeps sending chunks and there is no way to cancel them).
    pub fn take_heap_snapshot(
        &mut self,
        out: &mut dyn Write,
        options: &SnapshotOptions,
        progress: &mut dyn FnMut(SnapshotProgress) -> bool,
    ) -> Result<SnapshotStats> {
        let started = Instant::now();
        self.call("HeapProfiler.enable", json!({}))?;
        let mut state = SnapshotProgress::default();
        let mut chunks = 0u64;
        let params = json!({
            "reportProgress": true,
            "captureNumericValue": options.capture_numeric_value,
            "exposeInternals": options.expose_internals,
        });
        let result =
            self.call_streaming(
                "HeapProfiler.takeHeapSnapshot",
                params,
                options.idle_timeout,
                &mut |event| match event.method.as_str() {
                    "HeapProfiler.addHeapSnapshotChunk" => {
                        let chunk = event.params.get("chunk").and_then(Value::as_str).unwrap_or("");
                        out.write_all(chunk.as_bytes()).map_err(Error::Write)?;
                        chunks += 1;
                        state.bytes_written += chunk.len() as u64;
                        if progress(state) {
                            Ok(true)
                        } else {
                            Err(Error::Interrupted)
                        }
                    }
                    "HeapProfiler.reportHeapSnapshotProgress" => {
                        let p = &event.params;
                        state.done = p.get("done").and_then(Value::as_u64).unwrap_or(state.done);
                        state.total = p.get("total").and_then(Value::as_u64).unwrap_or(state.total);
                        state.finished = p.get("finished").and_then(Value::as_bool).unwrap_or(false);
                        if progress(state) {
                            Ok(true)
                        } else {
                            Err(Error::Interrupted)
                        }
                    }
                    _ => Ok(false),
                },
            );
        if let Err(err) = result {
            // Chunks of an abandoned snapshot would keep arriving on this connection: drop it.
            self.disconnect();
            return Err(err);
        }
        out.flush().map_err(Error::Write)?;
        Ok(SnapshotStats { bytes: state.bytes_written, chunks, elapsed: started.elapsed() })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.disconnect();
    }
}
