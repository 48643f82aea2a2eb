//! Flags of `hunt`, `report` and `demo`. The `Command` enum in `cli.rs` refers to these structs.

use crate::cmd::live::args::{parse_duration, TargetArgs};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// What makes the app work between snapshots: exactly one of --url, --load, --wait.
#[derive(Debug, Clone, Args)]
pub struct DriveArgs {
    /// Send HTTP requests to this URL each round with the built-in keep-alive driver, as `URL` or
    /// `METHOD URL` (e.g. 'POST http://127.0.0.1:3000/orders'). Repeatable: requests go round-robin.
    #[arg(long = "url", value_name = "[METHOD ]URL", conflicts_with_all = ["load", "wait"])]
    pub urls: Vec<String>,
    /// Requests per round (with --url).
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub requests: u64,
    /// Concurrent keep-alive connections (with --url).
    #[arg(long, default_value_t = 8, value_name = "C")]
    pub concurrency: usize,
    /// Send this file as the body of POST/PUT/PATCH requests (with --url).
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
    /// Add a request header (with --url), e.g. 'content-type: application/json'. Repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Run this shell command once per round (autocannon, k6, a test suite, curl in a loop); it gets
    /// LEAKSCOPE_ROUND and LEAKSCOPE_PID in its environment.
    #[arg(long, value_name = "COMMAND", conflicts_with = "wait")]
    pub load: Option<String>,
    /// Just wait this long per round: the app grows by itself (queues, timers, background jobs).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait: Option<Duration>,
    /// How long to wait for the app to accept connections on the --url port.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub startup_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct HuntArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub drive: DriveArgs,
    /// Counted rounds, each followed by a snapshot (after one warm-up round that is not counted).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub rounds: usize,
    /// Where to write the HTML report.
    #[arg(long, value_name = "FILE.html", default_value = "leakscope-report.html")]
    pub report: PathBuf,
    /// Keep the snapshots, the allocation profile and the memory log in this directory (by default they
    /// are written to a temporary directory and deleted after the report).
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Print the report as JSON on stdout (schema in docs/json-schema.md).
    #[arg(long)]
    pub json: bool,
    /// Mean bytes between allocation samples (V8's sampling heap profiler); 0 turns sampling off.
    #[arg(long, default_value = "512KiB", value_name = "BYTES", value_parser = crate::output::parse_size)]
    pub sample_interval: u64,
    /// Ignore containers growing by less than this per round on average.
    #[arg(long, default_value = "1KiB", value_name = "BYTES", value_parser = crate::output::parse_size)]
    pub min_growth: u64,
    /// Take snapshots even when the pre-flight check says the target may run out of memory.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Snapshots of one process, oldest first (two or more).
    #[arg(required = true, num_args = 2..)]
    pub snapshots: Vec<PathBuf>,
    /// A .heapprofile taken over the same period (`leakscope sample`), for allocation sites.
    #[arg(long, value_name = "FILE.heapprofile")]
    pub profile: Option<PathBuf>,
    /// A memory log from `leakscope watch --log`, for the memory chart.
    #[arg(long, value_name = "LOG.jsonl")]
    pub watch: Option<PathBuf>,
    /// Where to write the HTML report.
    #[arg(long, short, value_name = "FILE.html", default_value = "leakscope-report.html")]
    pub output: PathBuf,
    /// Print the report as JSON on stdout too.
    #[arg(long)]
    pub json: bool,
    /// Ignore containers growing by less than this per round on average.
    #[arg(long, default_value = "1KiB", value_name = "BYTES", value_parser = crate::output::parse_size)]
    pub min_growth: u64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the HTML report.
    #[arg(long, value_name = "FILE.html", default_value = "leakscope-demo-report.html")]
    pub report: PathBuf,
    /// Keep the demo's snapshots and profile in this directory.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// The node binary to run the demo app with.
    #[arg(long, value_name = "PATH", default_value = "node")]
    pub node: String,
}
