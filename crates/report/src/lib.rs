//! leakscope-report: what `leakscope hunt` found, as a data model (also its `--json`) and as one
//! self-contained HTML file that opens from disk with no network access.
//!
//! No I/O here: the binary gathers the numbers, this crate only shapes and renders them.

mod chart;
mod html;

pub use html::render_html;

use leakscope_leaks::LeakReport;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rendering the HTML report: {0}")]
    Template(#[from] minijinja::Error),
}

/// Everything one hunt measured. Sizes are bytes, times are seconds since the hunt started.
#[derive(Debug, Clone, Serialize)]
pub struct HuntReport {
    /// `leakscope 0.1.0`.
    pub tool: String,
    /// When the report was made (milliseconds since the Unix epoch).
    pub created_unix_ms: u64,
    pub target: TargetInfo,
    /// How the app was made to work between snapshots, in words.
    pub drive: String,
    pub rounds: Vec<Round>,
    /// Memory of the target over time (empty for offline reports without a watch log).
    pub memory: Vec<MemoryPoint>,
    pub leaks: LeakReport,
    /// Per finding (same order as `leaks.findings`): allocation sites from the sampling profile whose
    /// stacks run through the code the finding names.
    pub finding_sites: Vec<Vec<AllocationSite>>,
    /// The sampling heap profile over the counted rounds, when one was taken or given.
    pub profile: Option<ProfileSummary>,
    /// The largest classes of the last snapshot by retained size (DevTools' Summary, top rows).
    pub top_classes: Vec<ClassRow>,
    /// Commands to dig further, ready to paste.
    pub next_commands: Vec<String>,
    /// Things the reader should know about how this was measured (a sampler that failed, a round without
    /// successful requests, …).
    pub notes: Vec<String>,
}

impl HuntReport {
    /// `leaks found` / `no leak found`, as the report and the exit code say it.
    pub fn verdict(&self) -> String {
        match self.leaks.findings.len() {
            0 => "No leak found".into(),
            1 => "1 leak found".into(),
            n => format!("{n} leaks found"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    /// The command line, or `pid N`, or the inspector address.
    pub description: String,
    pub pid: Option<u32>,
    pub node_version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// 0 is the warm-up round, which is not counted.
    pub index: usize,
    pub warm_up: bool,
    pub started: f64,
    pub ended: f64,
    /// What the drive did in this round (`2000 requests, 0 failed, 1,840 req/s`).
    pub work: String,
    pub snapshot: Option<SnapshotRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRef {
    pub path: String,
    pub bytes: u64,
    /// Seconds since the start when the snapshot was taken.
    pub at: f64,
    /// `heapUsed` right after the forced GC that precedes the snapshot.
    pub heap_used_after_gc: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemoryPoint {
    pub t: f64,
    pub rss: u64,
    pub heap_total: u64,
    pub heap_used: u64,
    pub external: u64,
    pub array_buffers: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AllocationSite {
    /// `function file:line`, allocating frame first.
    pub frames: Vec<String>,
    /// Estimated live bytes allocated here during the counted rounds.
    pub bytes: u64,
    pub objects: u64,
    pub samples: u64,
    /// Relative standard error of `bytes` (1/√samples).
    pub relative_error: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileSummary {
    /// The profile file, when one was written or given.
    pub path: Option<String>,
    /// Mean bytes between samples.
    pub interval: u64,
    pub samples: u64,
    /// Estimated live bytes allocated during sampling.
    pub total_bytes: u64,
    pub relative_error: f64,
    /// The largest allocation stacks.
    pub top_sites: Vec<AllocationSite>,
    /// The flame graph as an SVG document (interactive, no network assets); not part of `--json`.
    #[serde(skip)]
    pub flamegraph_svg: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    pub class: String,
    pub count: u64,
    pub shallow: u64,
    pub retained: u64,
}

pub use leakscope_heap::units::human_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    fn clean_report() -> HuntReport {
        HuntReport {
            tool: "leakscope test".into(),
            created_unix_ms: 0,
            target: TargetInfo { description: "node app.js".into(), pid: Some(42), node_version: Some("v20".into()) },
            drive: "100 requests per round".into(),
            rounds: vec![Round { index: 0, warm_up: true, started: 0.0, ended: 1.0, work: "w".into(), snapshot: None }],
            memory: vec![],
            leaks: LeakReport {
                snapshots: 3,
                new_objects: 10,
                new_bytes: 2048,
                explained_objects: 0,
                findings: vec![],
            },
            finding_sites: vec![],
            profile: None,
            top_classes: vec![ClassRow { class: "<script>Map".into(), count: 1, shallow: 2, retained: 3 }],
            next_commands: vec!["leakscope summary s3.heapsnapshot".into()],
            notes: vec![],
        }
    }

    #[test]
    fn renders_a_clean_verdict_and_escapes_names() {
        let html = render_html(&clean_report()).expect("renders");
        assert!(html.contains("No leak found"));
        assert!(html.contains("verdict ok"));
        assert!(html.contains("&lt;script&gt;Map"), "class names are escaped");
        assert!(!html.contains("<script>Map"));
        assert!(!html.contains("http://") && !html.contains("https://"), "no network assets");
    }
}
