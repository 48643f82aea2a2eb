//! The sampling heap profiler and allocation tracking over CDP (`HeapProfiler.startSampling`,
//! `getSamplingProfile`, `stopSampling`, `startTrackingHeapObjects`, `stopTrackingHeapObjects`).
//!
//! Profiles come back as JSON text. A profile's call tree nests two JSON levels per stack frame, and the
//! client's message parser stops at serde_json's default depth of 128 (about 60 frames): for deeper
//! profiles the reply cannot be read. [`Client::sampling_profile`] then asks the target for the same
//! profile through an in-process inspector session (`require('inspector').Session`), returned as one JSON
//! string, which has no nesting to exceed.

use crate::client::{Client, Event};
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// `HeapProfiler.startSampling` parameters. leakscope always sends the interval explicitly (the protocol's
/// default is 32 KiB; Node's `--heap-prof` and leakscope use 512 KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingOptions {
    /// Mean bytes between samples (Poisson).
    pub interval: u64,
    /// Deepest stack recorded (`stackDepth`).
    pub stack_depth: u32,
    /// Keep samples of objects that GC collected (`includeObjectsCollectedByMajorGC` and `…MinorGC`).
    pub include_collected: bool,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions { interval: 512 * 1024, stack_depth: 128, include_collected: false }
    }
}

/// Fetches the sampling profile from inside the target as one string (see the module docs). `%METHOD%` is
/// `getSamplingProfile`.
const IN_PROCESS_PROFILE: &str = "(() => { const i = typeof process.getBuiltinModule === 'function' \
? process.getBuiltinModule('inspector') : (process.mainModule ? process.mainModule.require('inspector') : require('inspector')); \
const s = new i.Session(); s.connect(); let out = null; \
try { s.post('HeapProfiler.getSamplingProfile', (e, r) => { out = e ? { error: String(e.message || e) } : JSON.stringify(r.profile); }); } \
finally { s.disconnect(); } return out; })()";

fn is_depth_error(err: &Error) -> bool {
    matches!(err, Error::BadReply(m) if m.contains("recursion limit"))
}

impl Client {
    /// `HeapProfiler.enable` + `HeapProfiler.startSampling` with every parameter explicit.
    pub fn start_sampling(&mut self, options: &SamplingOptions) -> Result<()> {
        self.call("HeapProfiler.enable", json!({}))?;
        self.call(
            "HeapProfiler.startSampling",
            json!({
                "samplingInterval": options.interval,
                "stackDepth": options.stack_depth,
                "includeObjectsCollectedByMajorGC": options.include_collected,
                "includeObjectsCollectedByMinorGC": options.include_collected,
            }),
        )?;
        Ok(())
    }

    /// `HeapProfiler.getSamplingProfile` (sampling goes on) as JSON text of the profile object. Falls back
    /// to an in-process session when the reply nests too deep for the client's parser.
    pub fn sampling_profile(&mut self, timeout: Duration) -> Result<String> {
        match self.call_with_timeout("HeapProfiler.getSamplingProfile", json!({}), timeout) {
            Ok(reply) => profile_text(reply),
            Err(err) if is_depth_error(&err) => self.sampling_profile_in_process(),
            Err(err) => Err(err),
        }
    }

    /// The profile fetched by code running in the target (one JSON string; no depth limit).
    pub fn sampling_profile_in_process(&mut self) -> Result<String> {
        let mut attempt = 0;
        let value = loop {
            attempt += 1;
            match self.evaluate_with(json!({
                "expression": IN_PROCESS_PROFILE,
                "includeCommandLineAPI": true,
                "returnByValue": true,
            })) {
                // The evaluation can run in an interrupt while the target is itself loading one of Node's
                // internal modules, which loading `inspector` then finds half-initialised ("Class extends value
                // undefined ... at node:internal/worker/io"). Node does not cache a module that failed to load,
                // so a little later the same expression succeeds.
                Err(Error::Evaluate(message)) if attempt < 3 && message.contains("node:internal/") => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => break other?,
            }
        };
        match value {
            Value::String(text) => Ok(text),
            Value::Object(o) if o.contains_key("error") => Err(Error::Evaluate(format!(
                "HeapProfiler.getSamplingProfile in the target: {}",
                o.get("error").and_then(Value::as_str).unwrap_or("?")
            ))),
            other => Err(Error::BadReply(format!("in-process sampling profile: {other}"))),
        }
    }

    /// `HeapProfiler.stopSampling`. Returns the profile text when the reply could be read; `Ok(None)` when
    /// it was too deep for the client's parser (sampling is stopped either way: take the profile with
    /// [`Client::sampling_profile`] first).
    pub fn stop_sampling(&mut self, timeout: Duration) -> Result<Option<String>> {
        match self.call_with_timeout("HeapProfiler.stopSampling", json!({}), timeout) {
            Ok(reply) => profile_text(reply).map(Some),
            Err(err) if is_depth_error(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Reads the final profile and stops sampling. The profile is the one `stopSampling` returns, or the one
    /// read just before it when that reply could not be parsed or the stop failed; a failed stop is returned
    /// beside the profile (sampling may still be on in the target).
    pub fn finish_sampling(&mut self, timeout: Duration) -> Result<(String, Option<Error>)> {
        let read = self.sampling_profile(timeout)?;
        match self.stop_sampling(timeout) {
            Ok(Some(stopped)) => Ok((stopped, None)),
            Ok(None) => Ok((read, None)),
            Err(err) => Ok((read, Some(err))),
        }
    }

    /// `HeapProfiler.startTrackingHeapObjects{trackAllocations}`; `heapStatsUpdate`/`lastSeenObjectId`
    /// events follow (read them with [`Client::next_event`]).
    pub fn start_tracking_heap_objects(&mut self, track_allocations: bool) -> Result<()> {
        self.call("HeapProfiler.enable", json!({}))?;
        self.call("HeapProfiler.startTrackingHeapObjects", json!({ "trackAllocations": track_allocations }))?;
        Ok(())
    }

    /// `HeapProfiler.stopTrackingHeapObjects{reportProgress}`: streams the snapshot (with the allocation
    /// trace when tracking allocations) chunk by chunk into `out`. `on_event` sees every other event that
    /// arrives meanwhile (late `heapStatsUpdate`s, progress); returning an error aborts. The idle timeout
    /// restarts with every message. After an error the connection is closed (chunks would keep coming).
    pub fn stop_tracking_heap_objects(
        &mut self,
        out: &mut dyn Write,
        idle_timeout: Duration,
        on_event: &mut dyn FnMut(&Event) -> Result<()>,
    ) -> Result<u64> {
        let mut bytes = 0u64;
        let result = self.call_streaming(
            "HeapProfiler.stopTrackingHeapObjects",
            json!({ "reportProgress": true }),
            idle_timeout,
            &mut |event| {
                if event.method == "HeapProfiler.addHeapSnapshotChunk" {
                    let chunk = event.params.get("chunk").and_then(Value::as_str).unwrap_or("");
                    out.write_all(chunk.as_bytes()).map_err(Error::Write)?;
                    bytes += chunk.len() as u64;
                } else {
                    on_event(event)?;
                }
                Ok(true)
            },
        );
        if let Err(err) = result {
            self.disconnect();
            return Err(err);
        }
        out.flush().map_err(Error::Write)?;
        Ok(bytes)
    }
}

/// The `profile` member of a `getSamplingProfile`/`stopSampling` reply, as JSON text.
fn profile_text(reply: Value) -> Result<String> {
    match reply.get("profile") {
        Some(profile) if profile.is_object() => Ok(profile.to_string()),
        _ => Err(Error::BadReply("the reply has no `profile` object".into())),
    }
}
