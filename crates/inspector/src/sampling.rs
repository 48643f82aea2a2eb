//! The sampling heap profiler and allocation tracking over CDP (`HeapProfiler.startSampling`,
//! `getSamplingProfile`, `stopSampling`, `startTrackingHeapObjects`, `stopTrackingHeapObjects`).
//!
//! Profiles come back as JSON text. A profile's call tree nests two JSON levels per stack frame; the client
//! reads replies without serde_json's depth limit (the depth is bounded by the `stackDepth` we ask for).
//! Nothing here evaluates code in the target: an earlier in-process fallback loaded Node's `inspector`
//! module there, which is unsafe at an interrupt (see [`crate::in_target`]).

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

    /// `HeapProfiler.getSamplingProfile` (sampling goes on) as JSON text of the profile object.
    pub fn sampling_profile(&mut self, timeout: Duration) -> Result<String> {
        profile_text(self.call_with_timeout("HeapProfiler.getSamplingProfile", json!({}), timeout)?)
    }

    /// `HeapProfiler.stopSampling`, returning the final profile as JSON text.
    pub fn stop_sampling(&mut self, timeout: Duration) -> Result<String> {
        profile_text(self.call_with_timeout("HeapProfiler.stopSampling", json!({}), timeout)?)
    }

    /// Reads the final profile and stops sampling. The profile is the one `stopSampling` returns, or the one
    /// read just before it when the stop failed; a failed stop is returned beside the profile (sampling may
    /// still be on in the target).
    pub fn finish_sampling(&mut self, timeout: Duration) -> Result<(String, Option<Error>)> {
        let read = self.sampling_profile(timeout)?;
        match self.stop_sampling(timeout) {
            Ok(stopped) => Ok((stopped, None)),
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
