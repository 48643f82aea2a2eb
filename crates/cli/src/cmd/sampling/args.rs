//! Flags of `profile`, `sample` and `timeline`. The `Command` enum in `cli.rs` refers to these structs;
//! the target flags are the live commands' [`TargetArgs`].

use crate::cmd::live::args::{parse_duration, TargetArgs};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Extra outputs and the size of the terminal report, shared by `profile` and `sample`.
#[derive(Debug, Args)]
pub struct ProfileOutputs {
    /// Also write a gzipped pprof profile (inuse_space/inuse_objects; alloc_space/alloc_objects with
    /// --include-collected) for `go tool pprof`, Pyroscope, Grafana or Speedscope.
    #[arg(long, value_name = "FILE.pb.gz")]
    pub pprof: Option<PathBuf>,
    /// Also write a flame graph SVG of the estimated bytes per stack.
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,
    /// Also write collapsed stacks (`root;…;leaf BYTES`, for flamegraph.pl, inferno, speedscope).
    #[arg(long, value_name = "FILE.txt")]
    pub folded: Option<PathBuf>,
    /// Rows in each table of the report (0 = all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Print the report as JSON (schema in docs/json-schema.md) instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// A .heapprofile file: from `leakscope sample`, DevTools (Memory → Allocation sampling → Save) or
    /// `node --heap-prof`.
    pub file: PathBuf,
    #[command(flatten)]
    pub outputs: ProfileOutputs,
    /// The sampling interval the file was taken with (the file does not record it; by default it is
    /// inferred from the smallest sample, which is within a few bytes of it).
    #[arg(long, value_name = "SIZE", value_parser = crate::output::parse_size)]
    pub interval: Option<u64>,
    /// The file was taken with collected objects included: report its values as allocations
    /// (alloc_space/alloc_objects), not live memory.
    #[arg(long)]
    pub include_collected: bool,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long to sample (Ctrl-C stops early and still writes everything).
    #[arg(long, short = 'd', value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Mean bytes allocated between samples. leakscope always sends it explicitly: 512 KiB by default,
    /// like `node --heap-prof` (the protocol's own default would be 32 KiB). Smaller = more samples,
    /// more precise, more overhead.
    #[arg(long, value_name = "SIZE", default_value = "512KiB", value_parser = crate::output::parse_size)]
    pub interval: u64,
    /// Deepest stack recorded per sample.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub stack_depth: u32,
    /// Keep samples of objects that GC collected meanwhile: the profile then shows all allocations during
    /// the interval (alloc_*), not what is still alive.
    #[arg(long)]
    pub include_collected: bool,
    /// The .heapprofile to write (default `<script>-<pid>-<YYYYmmdd-HHMMSS>.heapprofile`); loads in
    /// Chrome DevTools' Memory panel as is.
    #[arg(long, short = 'o', value_name = "FILE.heapprofile")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub outputs: ProfileOutputs,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long to track allocations (Ctrl-C stops early and still takes the snapshot).
    #[arg(long, short = 'd', value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The snapshot to write, with the allocation trace (default
    /// `<script>-<pid>-<YYYYmmdd-HHMMSS>.timeline.heapsnapshot`); every snapshot command reads it.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Allocation stacks shown (0 = all).
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}
