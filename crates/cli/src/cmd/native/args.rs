//! Arguments of `leakscope native` and its subcommands.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct NativeArgs {
    #[command(subcommand)]
    pub command: Option<NativeCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum NativeCommand {
    /// Ask a process started with `leakscope native -- …` for a dump of its live samples.
    #[command(
        after_help = "Examples:\n  leakscope native dump --pid 4242\n  leakscope native dump --pid 4242 -o before.jsonl"
    )]
    Dump(DumpArgs),
    /// Live native memory by stack from one dump, with expected errors; pprof, flamegraph, folded output.
    #[command(
        after_help = "Examples:\n  leakscope native report native-4242-exit.jsonl --top 20\n  leakscope native report d.jsonl --pprof heap.pb.gz --flamegraph heap.svg\n  leakscope native report d.jsonl --json"
    )]
    Report(ReportArgs),
    /// What grew between two dumps of the same program: the leak report.
    #[command(
        after_help = "Examples:\n  leakscope native diff before.jsonl after.jsonl\n  leakscope native diff before.jsonl after.jsonl --top 5 --json"
    )]
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Take a dump at this period (e.g. 30s, 2m) and give a growth verdict per stack at the end.
    #[arg(long, value_parser = parse_duration)]
    pub every: Option<std::time::Duration>,
    /// Directory for the dumps (created if missing).
    #[arg(short = 'o', long = "output", default_value = ".")]
    pub output: PathBuf,
    /// Mean sampling interval in bytes (larger = less overhead, fewer samples).
    #[arg(long, default_value = "512KiB", value_parser = crate::output::parse_size)]
    pub interval: u64,
    /// Stacks shown in the final report.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print the final report as JSON (the program's own stdout then goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// The command to run with the profiler preloaded (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Process id of a program started under `leakscope native`.
    #[arg(long)]
    pub pid: u32,
    /// Output file (default: native-PID-TIME.jsonl in the current directory).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SymbolArgs {
    /// V8 perf map for JIT frames (default: /tmp/perf-PID.map of the dumped process).
    #[arg(long)]
    pub perf_map: Option<PathBuf>,
    /// Skip DWARF (file:line and inlined frames); ELF symbols only, faster.
    #[arg(long)]
    pub no_dwarf: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A dump (JSON lines) written by the preload library.
    pub dump: PathBuf,
    /// Stacks to show (0 = all).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Also write a gzipped pprof profile (inuse_space, inuse_objects, alloc_space, alloc_objects).
    #[arg(long, value_name = "FILE")]
    pub pprof: Option<PathBuf>,
    /// Also write a flamegraph SVG of live bytes.
    #[arg(long, value_name = "FILE")]
    pub flamegraph: Option<PathBuf>,
    /// Also write folded stacks (root;…;leaf bytes) of live bytes.
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub symbols: SymbolArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier dump.
    pub before: PathBuf,
    /// The later dump.
    pub after: PathBuf,
    /// Stacks to show (0 = all).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub symbols: SymbolArgs,
}

/// A positive duration (`500ms`, `30s`, `2m`, `1h`): the live commands' syntax; a dump period of zero makes
/// no sense.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = crate::cmd::live::args::parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("duration '{text}' must be positive"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(std::time::Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(std::time::Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(std::time::Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
