//! `summary --allocated-by`: objects grouped by the function that allocated them, from a snapshot taken while
//! tracking allocations (`leakscope timeline`). The stacks come from `leakscope_heap::inspect::allocation`.

use crate::cli::{SummaryArgs, SummarySort};
use crate::load;
use crate::output::{human_bytes, Exit, Table};
use leakscope_heap::inspect;
use leakscope_heap::inspect::allocation::{allocated_by, AllocationError, AllocationStacks, Frame, GroupBy};
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

/// Stacks listed per function in the JSON.
const STACKS_PER_FUNCTION: usize = 5;

#[derive(Serialize)]
struct AllocatedByJson {
    file: String,
    total_size: u64,
    node_count: usize,
    /// Objects allocated while tracking that are still alive.
    tracked_count: u64,
    tracked_shallow_size: u64,
    /// Objects without allocation information (allocated before tracking started).
    untracked_count: u64,
    untracked_shallow_size: u64,
    function_count: usize,
    functions: Vec<FunctionJson>,
}

#[derive(Serialize)]
struct FunctionJson {
    #[serde(flatten)]
    frame: Frame,
    count: u64,
    shallow_size: u64,
    retained_size: u64,
    shallow_percent: f64,
    retained_percent: f64,
    /// A member to look at (JS-visible, largest retained size).
    example_id: u32,
    /// Heaviest allocation stacks (most objects first), allocating function first.
    stacks: Vec<StackJson>,
}

#[derive(Serialize)]
struct StackJson {
    count: u64,
    shallow_size: u64,
    frames: Vec<Frame>,
}

/// The error for snapshots without allocation stacks: exit 2, with the command that records them.
pub(crate) fn no_trace(error: AllocationError, file: &Path) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code: 2,
        message: format!("{}: {error}", file.display()),
        hint: Some(
            "record allocations first, e.g. `leakscope timeline --pid PID --duration 30s -o alloc.heapsnapshot`, \
             then `leakscope summary alloc.heapsnapshot --allocated-by`"
                .into(),
        ),
    })
}

fn percent(part: u64, total: u64) -> f64 {
    (part as f64 * 1000.0 / total.max(1) as f64).round() / 10.0
}

/// `summary --allocated-by`.
pub fn summary_allocated_by(args: &SummaryArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let file = &args.input.file;
    let filter = super::summary_filter(args)?;
    let (snapshot, analysis) = load::open(file, args.input.raw_sizes, quiet)?;
    let stacks = AllocationStacks::new(&snapshot).map_err(|e| no_trace(e, file))?;
    let result = allocated_by(&snapshot, &analysis, GroupBy::Function).map_err(|e| no_trace(e, file))?;
    let mut groups = result.groups;
    match args.sort {
        SummarySort::Retained => groups.sort_by(|a, b| b.retained.cmp(&a.retained).then(b.shallow.cmp(&a.shallow))),
        SummarySort::Shallow => groups.sort_by(|a, b| b.shallow.cmp(&a.shallow).then(b.retained.cmp(&a.retained))),
        SummarySort::Count => groups.sort_by(|a, b| b.count.cmp(&a.count).then(b.retained.cmp(&a.retained))),
    }
    let function_count = groups.len();
    if let Some(filter) = &filter {
        groups.retain(|g| filter.is_match(&stacks.frame(g.function).to_string()));
    }
    if args.top > 0 {
        groups.truncate(args.top);
    }
    let total = analysis.total_size;
    let functions: Vec<FunctionJson> = groups
        .iter()
        .map(|g| FunctionJson {
            frame: stacks.frame(g.function),
            count: g.count,
            shallow_size: g.shallow,
            retained_size: g.retained,
            shallow_percent: percent(g.shallow, total),
            retained_percent: percent(g.retained, total),
            example_id: snapshot.node_id(g.example),
            stacks: g
                .stacks
                .iter()
                .take(STACKS_PER_FUNCTION)
                .map(|s| StackJson { count: s.count, shallow_size: s.shallow, frames: stacks.stack_of_site(s.site) })
                .collect(),
        })
        .collect();
    let json = AllocatedByJson {
        file: file.display().to_string(),
        total_size: total,
        node_count: snapshot.node_count(),
        tracked_count: result.tracked_count,
        tracked_shallow_size: result.tracked_shallow,
        untracked_count: result.untracked_count,
        untracked_shallow_size: result.untracked_shallow,
        function_count,
        functions,
    };
    if args.input.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        ("Allocated by", false),
        ("Where", false),
        ("Count", true),
        ("Shallow", true),
        ("Retained", true),
        ("Example", false),
    ]);
    for f in &json.functions {
        let place = f.frame.location().map(|l| l.replace("file://", "")).unwrap_or_else(|| "-".into());
        table.row(vec![
            inspect::shorten(&f.frame.function, 40),
            inspect::shorten(&place, 70),
            f.count.to_string(),
            human_bytes(f.shallow_size),
            human_bytes(f.retained_size),
            format!("@{}", f.example_id),
        ]);
    }
    print!("{}", table.render());
    println!(
        "\n{} allocating functions ({} shown). {} objects ({}) were allocated while tracking and are still alive; \
         {} ({}) have no allocation info (they existed before tracking started).",
        json.function_count,
        json.functions.len(),
        json.tracked_count,
        human_bytes(json.tracked_shallow_size),
        json.untracked_count,
        human_bytes(json.untracked_shallow_size)
    );
    if let Some(f) = json.functions.first() {
        println!(
            "next: leakscope show {} @{}   (its allocation stack and what keeps it)",
            file.display(),
            f.example_id
        );
    }
    Ok(ExitCode::SUCCESS)
}
