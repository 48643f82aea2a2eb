//! Every command and flag of `leakscope`, defined in one place.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "leakscope",
    version,
    about = "Find memory leaks in Node.js: watch, snapshot and analyse heaps without restarting the process.",
    after_help = "Examples:\n  leakscope summary app.heapsnapshot\n  leakscope dominators app.heapsnapshot --depth 4\n  leakscope stats app.heapsnapshot --json"
)]
pub struct Cli {
    /// Hide progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per-class object counts, shallow and retained sizes (DevTools' Summary view).
    #[command(
        after_help = "Examples:\n  leakscope summary app.heapsnapshot --top 20\n  leakscope summary app.heapsnapshot --sort count --filter '^Request'\n  leakscope summary app.heapsnapshot.gz --json > summary.json"
    )]
    Summary(SummaryArgs),
    /// The largest retainers as a tree of immediate dominators.
    #[command(
        after_help = "Examples:\n  leakscope dominators app.heapsnapshot\n  leakscope dominators app.heapsnapshot --depth 6 --min-size 1MiB"
    )]
    Dominators(DominatorsArgs),
    /// Totals by kind (code, strings, arrays, system), node and edge counts, the snapshot's origin.
    #[command(after_help = "Examples:\n  leakscope stats app.heapsnapshot\n  leakscope stats app.heapsnapshot --json")]
    Stats(StatsArgs),
    /// Node processes on this machine: pid, user, uptime, RSS, inspector state, command line.
    #[command(after_help = "Examples:\n  leakscope ps\n  leakscope ps --json\n  leakscope ps --probe-all")]
    Ps(crate::cmd::live::args::PsArgs),
    /// Sample a live process's memory over time and say whether the heap grows after GC.
    #[command(
        after_help = "Examples:\n  leakscope watch --pid 4242\n  leakscope watch --pid 4242 --gc 10 --duration 2m --log mem.jsonl\n  leakscope watch --fail-on-growth 1MB/min --duration 60s --json -- node server.js"
    )]
    Watch(crate::cmd::live::args::WatchArgs),
    /// Stream a heap snapshot of a live process to disk (pre-flight memory check, progress, series).
    #[command(
        after_help = "Examples:\n  leakscope snapshot --pid 4242\n  leakscope snapshot --pid 4242 --every 30s --count 3 -o snaps/\n  leakscope snapshot --inspect 127.0.0.1:9229 -o app.heapsnapshot --gc"
    )]
    Snapshot(crate::cmd::live::args::SnapshotArgs),
    /// Force a full garbage collection in a live process and show the heap before and after.
    #[command(after_help = "Examples:\n  leakscope gc --pid 4242\n  leakscope gc --inspect 127.0.0.1:9229 --json")]
    Gc(crate::cmd::live::args::GcArgs),
}

/// Options shared by every command that reads one snapshot.
#[derive(Debug, Args)]
pub struct SnapshotInput {
    /// A .heapsnapshot file (or .heapsnapshot.gz).
    pub file: PathBuf,
    /// Print JSON (schema in docs/json-schema.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep each object's own size as written in the file, instead of folding single-owner internal arrays into
    /// their owner as DevTools does (memlab's numbers).
    #[arg(long)]
    pub raw_sizes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummarySort {
    Retained,
    Shallow,
    Count,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub input: SnapshotInput,
    /// How many classes to show (0 = all).
    #[arg(long, default_value_t = 30)]
    pub top: usize,
    /// Sort order.
    #[arg(long, value_enum, default_value_t = SummarySort::Retained)]
    pub sort: SummarySort,
    /// Only classes whose name matches this regular expression.
    #[arg(long)]
    pub filter: Option<String>,
}

#[derive(Debug, Args)]
pub struct DominatorsArgs {
    #[command(flatten)]
    pub input: SnapshotInput,
    /// Children shown under each object.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Levels of the tree to show below the root.
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Hide objects retaining less than this (bytes, or with a unit: 64KiB, 1MB).
    #[arg(long, default_value = "0", value_parser = crate::output::parse_size)]
    pub min_size: u64,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub input: SnapshotInput,
}
