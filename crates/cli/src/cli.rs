//! Every command and flag of `leakscope`, defined in one place.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "leakscope",
    version,
    about = "Find memory leaks in Node.js: watch, snapshot and analyse heaps without restarting the process.",
    after_help = "Examples:\n  leakscope demo                                         see a leak found in a bundled app\n  leakscope hunt --url http://127.0.0.1:3000/ -- node server.js   drive, snapshot, report\n  leakscope watch --pid 4242 --gc 5                      is the heap growing after GC?\n  leakscope snapshot --pid 4242 --every 30s --count 3    three snapshots of the running process\n  leakscope leaks s1.heapsnapshot s2.heapsnapshot s3.heapsnapshot\n  leakscope summary app.heapsnapshot --top 20\n  leakscope retainers app.heapsnapshot --class RequestContext"
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
    /// See it work: hunt the leaks of a small bundled app and write an HTML report (needs node on PATH).
    #[command(
        after_help = "Examples:\n  leakscope demo\n  leakscope demo --report /tmp/demo.html --keep /tmp/demo-snapshots"
    )]
    Demo(crate::cmd::hunt::args::DemoArgs),
    /// Find an app's leaks in one go: drive it, snapshot each round, sample allocations, report in HTML.
    #[command(
        after_help = "Examples:\n  leakscope hunt --url http://127.0.0.1:3000/api/orders -- node server.js\n  leakscope hunt --pid 4242 --url 'POST http://127.0.0.1:3000/items' --body item.json --header 'content-type: application/json'\n  leakscope hunt --pid 4242 --load 'npx autocannon -d 10 http://127.0.0.1:3000/'\n  leakscope hunt --wait 30s --rounds 4 --keep snaps/ -- node worker.js\n\nFlow: warm-up round (not counted), then per round: drive, full GC, snapshot. Memory is read every 250 ms and\nallocations are sampled (512 KiB) during the counted rounds.\nExit code: 0 no leak found, 1 leaks found, 2 usage error, 3 target problem."
    )]
    Hunt(crate::cmd::hunt::args::HuntArgs),
    /// The hunt report offline: an HTML report from snapshot files (plus a profile and a watch log).
    #[command(
        after_help = "Examples:\n  leakscope report s1.heapsnapshot s2.heapsnapshot s3.heapsnapshot -o report.html\n  leakscope report snaps/*.heapsnapshot --profile app.heapprofile --watch mem.jsonl -o report.html"
    )]
    Report(crate::cmd::hunt::args::ReportArgs),
    /// Per-class object counts, shallow and retained sizes (DevTools' Summary view).
    #[command(
        after_help = "Examples:\n  leakscope summary app.heapsnapshot --top 20\n  leakscope summary app.heapsnapshot --sort count --filter '^Request'\n  leakscope summary app.heapsnapshot.gz --json > summary.json\n  leakscope summary alloc.heapsnapshot --allocated-by --sort count"
    )]
    Summary(SummaryArgs),
    /// The largest retainers as a tree of immediate dominators.
    #[command(
        after_help = "Examples:\n  leakscope dominators app.heapsnapshot\n  leakscope dominators app.heapsnapshot --depth 6 --min-size 1MiB"
    )]
    Dominators(DominatorsArgs),
    /// Find leaks automatically across snapshots of one process: the growing container, its path, its source.
    #[command(
        after_help = "Give two or more snapshots of the same process, oldest first (three or more remove most noise).\n\nExamples:\n  leakscope leaks s1.heapsnapshot s2.heapsnapshot s3.heapsnapshot\n  leakscope leaks --baseline s1.heapsnapshot --target s2.heapsnapshot --final s3.heapsnapshot --json\n  leakscope leaks s*.heapsnapshot --top 5 --min-growth 64KiB\n\nExit code: 0 no leak found, 1 leaks found, 2 error."
    )]
    Leaks(LeaksArgs),
    /// Totals by kind (code, strings, arrays, system), node and edge counts, the snapshot's origin.
    #[command(after_help = "Examples:\n  leakscope stats app.heapsnapshot\n  leakscope stats app.heapsnapshot --json")]
    Stats(StatsArgs),
    /// One object: class, sizes, distance, dominator chain, outgoing edges, source location.
    #[command(
        after_help = "Examples:\n  leakscope show app.heapsnapshot @48253\n  leakscope show app.heapsnapshot 48253 --limit 50 --json"
    )]
    Show(ShowArgs),
    /// Who keeps an object (or every object of a class) alive: retaining paths from the GC roots.
    #[command(
        after_help = "Examples:\n  leakscope retainers app.heapsnapshot @48253\n  leakscope retainers app.heapsnapshot @48253 --paths 3 --ignore _events\n  leakscope retainers app.heapsnapshot --class RequestContext --json\n\nPaths follow Chrome DevTools' Retainers pane: the closest retainer first (then by name)."
    )]
    Retainers(RetainersArgs),
    /// Search objects by class, name, string content or retained size.
    #[command(
        after_help = "Examples:\n  leakscope find app.heapsnapshot --class '^Request' --min-retained 1MiB\n  leakscope find app.heapsnapshot --string 'SELECT .* FROM users' --limit 10"
    )]
    Find(FindArgs),
    /// Compare two snapshots of one process (DevTools' Comparison view): new and deleted objects per class.
    #[command(
        after_help = "Examples:\n  leakscope diff s1.heapsnapshot s2.heapsnapshot\n  leakscope diff s1.heapsnapshot s2.heapsnapshot --class Timeout\n  leakscope diff s1.heapsnapshot s2.heapsnapshot --json"
    )]
    Diff(DiffArgs),
    /// Strings stored many times with the same content, with the bytes the copies waste.
    #[command(
        name = "dup-strings",
        after_help = "Examples:\n  leakscope dup-strings app.heapsnapshot\n  leakscope dup-strings app.heapsnapshot --min-count 100 --json"
    )]
    DupStrings(DupStringsArgs),
    /// Node processes on this machine: pid, user, uptime, RSS, inspector state, command line.
    #[command(after_help = "Examples:\n  leakscope ps\n  leakscope ps --json\n  leakscope ps --probe-all")]
    Ps(crate::cmd::live::args::PsArgs),
    /// Sample a live process's memory over time and say whether the heap grows after GC.
    #[command(
        after_help = "Examples:\n  leakscope watch --pid 4242\n  leakscope watch --pid 4242 --gc 10 --duration 2m --log mem.jsonl\n  leakscope watch --fail-on-growth 1MB/min --duration 60s --json -- node server.js\n  leakscope watch --pid 4242 --prometheus 127.0.0.1:9464"
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
    /// Native (malloc) leaks: run a program under a sampling allocation profiler; dump, report and diff.
    #[command(
        after_help = "Examples:\n  leakscope native -- node server.js\n  leakscope native --every 30s -o dumps/ -- node server.js\n  leakscope native dump --pid 4242 -o after.jsonl\n  leakscope native report dumps/native-4242-exit.jsonl --pprof heap.pb.gz --flamegraph heap.svg\n  leakscope native diff before.jsonl after.jsonl"
    )]
    Native(crate::cmd::native::args::NativeArgs),
    /// Report a saved .heapprofile (leakscope, DevTools or node --heap-prof): top allocation sites, pprof, flame graph.
    #[command(
        after_help = "Examples:\n  leakscope profile app.heapprofile --top 30\n  leakscope profile Heap.20240101.120000.4242.0.001.heapprofile --pprof heap.pb.gz --flamegraph heap.svg\n  leakscope profile app.heapprofile --folded heap.folded.txt --json > profile.json"
    )]
    Profile(crate::cmd::sampling::args::ProfileArgs),
    /// Run V8's sampling heap profiler in a live process (512 KiB interval by default): which code allocates what stays alive.
    #[command(
        after_help = "Examples:\n  leakscope sample --pid 4242 --duration 60s -o app.heapprofile --pprof app.pb.gz\n  leakscope sample --inspect 127.0.0.1:9229 --interval 128KiB --flamegraph app.svg\n  leakscope sample --duration 20s --include-collected -- node server.js"
    )]
    Sample(crate::cmd::sampling::args::SampleArgs),
    /// Track allocations in a live process for a while: what was allocated then and is still alive, by allocation stack.
    #[command(
        after_help = "Examples:\n  leakscope timeline --pid 4242 --duration 30s\n  leakscope timeline --inspect 127.0.0.1:9229 -o alloc.heapsnapshot --top 20\n  leakscope timeline --duration 10s --json -- node server.js"
    )]
    Timeline(crate::cmd::sampling::args::TimelineArgs),
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
    /// Only classes whose name matches this regular expression (with --allocated-by: `function file`).
    #[arg(long)]
    pub filter: Option<String>,
    /// Split rows by creation site (constructor or function location), shown as file:line:column.
    #[arg(long)]
    pub by_location: bool,
    /// Group objects by the function that allocated them (snapshots from `leakscope timeline`).
    #[arg(long, conflicts_with = "by_location")]
    pub allocated_by: bool,
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
pub struct LeaksArgs {
    /// Snapshots of one process, oldest first.
    pub files: Vec<PathBuf>,
    /// memlab-style: the first snapshot.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// memlab-style: the middle snapshot.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// memlab-style: the last snapshot.
    #[arg(long = "final")]
    pub final_: Option<PathBuf>,
    /// Print JSON (schema in docs/json-schema.md).
    #[arg(long)]
    pub json: bool,
    /// Show at most this many findings (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top: usize,
    /// Ignore containers growing by less than this per round on average (bytes, or 64KiB, 1MB).
    #[arg(long, default_value = "1KiB", value_parser = crate::output::parse_size)]
    pub min_growth: u64,
    /// Compare even if the snapshots do not look like one process.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub input: SnapshotInput,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub input: SnapshotInput,
    /// The object's id, as `@123` or `123`.
    pub id: String,
    /// Outgoing edges to show (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct RetainersArgs {
    #[command(flatten)]
    pub input: SnapshotInput,
    /// The object's id, as `@123` or `123`.
    #[arg(required_unless_present = "class", conflicts_with = "class")]
    pub id: Option<String>,
    /// Every object of this class (exact name as in `summary`), grouped by identical retaining path.
    #[arg(long)]
    pub class: Option<String>,
    /// Retaining paths to show per object.
    #[arg(long, default_value_t = 1)]
    pub paths: usize,
    /// Longest path, in retainers (default: 20 like DevTools for one object, unlimited with --class).
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Ignore a retainer, like DevTools' "Ignore this retainer": an object id (@123), a class name, or an
    /// edge name (the objects held through edges of that name). Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub ignore: Vec<String>,
    /// Also follow weak edges (DevTools never shows them).
    #[arg(long)]
    pub show_weak: bool,
    /// Path groups to show with --class (0 = all).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    #[command(flatten)]
    pub input: SnapshotInput,
    /// Class name matches this regular expression.
    #[arg(long)]
    pub class: Option<String>,
    /// Object name (constructor, function name, string content) matches this regular expression.
    #[arg(long)]
    pub name: Option<String>,
    /// String content matches this regular expression (only strings; snapshots keep 1024 characters).
    #[arg(long)]
    pub string: Option<String>,
    /// Only objects retaining at least this much (4096, 64KiB, 1MB).
    #[arg(long, default_value = "0", value_parser = crate::output::parse_size)]
    pub min_retained: u64,
    /// Results to show (0 = all).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier snapshot.
    pub base: PathBuf,
    /// The later snapshot of the same process.
    pub target: PathBuf,
    /// Print JSON (schema in docs/json-schema.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List the new objects of this class (exact name), grouped by retaining path.
    #[arg(long)]
    pub class: Option<String>,
    /// Compare even if the snapshots look like they come from different processes.
    #[arg(long)]
    pub force: bool,
    /// Classes to show (0 = all).
    #[arg(long, default_value_t = 30)]
    pub top: usize,
    /// Use the file's self sizes (see `summary --raw-sizes`).
    #[arg(long)]
    pub raw_sizes: bool,
}

#[derive(Debug, Args)]
pub struct DupStringsArgs {
    #[command(flatten)]
    pub input: SnapshotInput,
    /// Only contents stored at least this many times.
    #[arg(long, default_value_t = 2)]
    pub min_count: u64,
    /// Rows to show (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::{CommandFactory, Parser};

    #[test]
    fn every_command_and_flag_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn hunt_takes_one_drive_and_a_launch_command() {
        let cli = Cli::try_parse_from([
            "leakscope",
            "hunt",
            "--url",
            "POST http://127.0.0.1:3000/a",
            "--url",
            "http://127.0.0.1:3000/b",
            "--requests",
            "500",
            "--",
            "node",
            "app.js",
            "--port",
            "3000",
        ])
        .expect("parses");
        let Command::Hunt(args) = cli.command else { panic!("not hunt") };
        assert_eq!(args.drive.urls.len(), 2);
        assert_eq!(args.drive.requests, 500);
        assert_eq!(args.target.command, ["node", "app.js", "--port", "3000"]);
        assert_eq!((args.rounds, args.sample_interval), (3, 512 * 1024));
        for conflicting in [["--url", "http://x/", "--wait", "5s"], ["--load", "true", "--wait", "5s"]] {
            let mut argv = vec!["leakscope", "hunt", "--pid", "1"];
            argv.extend(conflicting);
            assert!(Cli::try_parse_from(argv).is_err(), "{conflicting:?} conflict");
        }
        assert!(Cli::try_parse_from(["leakscope", "report", "only-one.heapsnapshot"]).is_err());
    }
}
