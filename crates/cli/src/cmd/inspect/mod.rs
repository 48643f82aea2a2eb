//! `show`, `retainers`, `find`, `diff`, `dup-strings`, `summary --by-location` and `summary --allocated-by`:
//! looking at single objects and at what changed between snapshots.
//!
//! Every command loads the snapshot and runs the analysis once (the same work `summary` does); commands that
//! walk retainers then build the reverse edge index once (one pass over the edges) and answer from memory.

mod allocation;
mod diff;
mod retainers;

pub use allocation::summary_allocated_by;
pub use diff::diff;
pub use retainers::retainers;

use crate::cli::{DupStringsArgs, FindArgs, ShowArgs, SummaryArgs};
use crate::load;
use crate::output::{human_bytes, Exit, Table};
use leakscope_heap::analysis::BASE_SYSTEM_DISTANCE;
use leakscope_heap::inspect::allocation::{AllocationStacks, Frame};
use leakscope_heap::inspect::{self, InspectError};
use leakscope_heap::scripts::{ScriptNames, SourcePosition};
use leakscope_heap::{Analysis, EdgeType, HeapSnapshot, NodeIndex, NodeType};
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

/// Input errors from the library become exit code 2, with a hint where one helps.
pub(crate) fn input_error(error: InspectError, file: &Path) -> anyhow::Error {
    let hint = match &error {
        InspectError::UnknownId(_) | InspectError::BadId(_) => Some(format!(
            "ids are the @numbers leakscope and DevTools print; list some with `leakscope find {} --limit 10`",
            file.display()
        )),
        InspectError::UnknownClass(_) => {
            Some(format!("class names are as `leakscope summary {}` prints them (exact match)", file.display()))
        }
        _ => None,
    };
    anyhow::Error::new(Exit { code: 2, message: error.to_string(), hint })
}

/// A node as the JSON outputs describe it.
#[derive(Serialize, Clone)]
pub(crate) struct NodeJson {
    pub id: u32,
    #[serde(rename = "type")]
    pub node_type: String,
    pub class: String,
    pub name: String,
    pub self_size: u64,
    pub retained_size: u64,
    /// `null` when unreachable; values ≥ 100000000 mean "reached only through GC roots".
    pub distance: Option<u32>,
    /// 1-based line and column.
    pub location: Option<SourcePosition>,
}

/// `summary --filter RE` compiled, or a clear error naming the flag and the file.
pub(crate) fn summary_filter(args: &SummaryArgs) -> anyhow::Result<Option<regex::Regex>> {
    args.filter
        .as_deref()
        .map(|p| {
            regex::Regex::new(p).map_err(|e| {
                input_error(InspectError::BadPattern { what: "--filter", message: e.to_string() }, &args.input.file)
            })
        })
        .transpose()
}

pub(crate) fn node_json(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    scripts: &ScriptNames,
    location: Option<leakscope_heap::SourceLocation>,
    node: NodeIndex,
) -> NodeJson {
    NodeJson {
        id: snapshot.node_id(node),
        node_type: snapshot.node_type_name(node).to_string(),
        class: analysis.class_name(snapshot, node).to_string(),
        name: inspect::shorten(&inspect::display_name(snapshot, node), 200),
        self_size: analysis.shallow.get(node),
        retained_size: analysis.retained.get(node),
        distance: analysis.distance(node),
        location: location.map(|l| scripts.position(l)),
    }
}

pub(crate) fn distance_text(d: Option<u32>) -> String {
    match d {
        None => "unreachable".into(),
        Some(d) if d >= BASE_SYSTEM_DISTANCE => format!("{} (only via GC roots)", d - BASE_SYSTEM_DISTANCE),
        Some(d) => d.to_string(),
    }
}

/// A context's location: where a closure that uses it is defined (scan of the closures; for one node).
fn context_location(snapshot: &HeapSnapshot, context: NodeIndex) -> Option<leakscope_heap::SourceLocation> {
    if !inspect::is_context(snapshot, context) {
        return None;
    }
    (0..snapshot.node_count() as NodeIndex)
        .filter(|&n| snapshot.node_type(n) == NodeType::Closure)
        .filter(|&n| {
            snapshot.edges(n).any(|e| {
                snapshot.edge_target(e) == context
                    && snapshot.edge_type(e) == EdgeType::Internal
                    && snapshot.edge_name(e) == "context"
            })
        })
        .find_map(|n| snapshot.location(n))
}

#[derive(Serialize)]
struct ShowJson {
    file: String,
    object: NodeJson,
    /// Immediate dominator first, up to the root.
    dominators: Vec<NodeJson>,
    edge_count: usize,
    edges: Vec<EdgeJson>,
    /// Allocating function first, then its callers; `null` when the object has no allocation info (it existed
    /// before tracking started); absent when the snapshot was not taken while tracking allocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    allocation_stack: Option<Option<Vec<Frame>>>,
}

#[derive(Serialize)]
struct EdgeJson {
    /// DevTools notation: `.prop`, `[3]`, `->var`, `{internal}`, `[[weak]]`.
    edge: String,
    name: String,
    #[serde(rename = "type")]
    edge_type: String,
    weak: bool,
    target: NodeJson,
}

pub fn show(args: &ShowArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let file = &args.input.file;
    let id = inspect::parse_id(&args.id).map_err(|e| input_error(e, file))?;
    let (snapshot, analysis) = load::open(file, args.input.raw_sizes, quiet)?;
    let node = snapshot.find_by_id(id).ok_or_else(|| input_error(InspectError::UnknownId(id), file))?;
    let scripts = ScriptNames::build(&snapshot);
    let own_location = snapshot.location(node).or_else(|| context_location(&snapshot, node));
    let object = node_json(&snapshot, &analysis, &scripts, own_location, node);
    let mut dominators = Vec::new();
    let mut current = node;
    while current != snapshot.root() && dominators.len() < 100_000 {
        let up = analysis.idom[current as usize];
        if up == current {
            break;
        }
        dominators.push(node_json(&snapshot, &analysis, &scripts, snapshot.location(up), up));
        current = up;
    }
    let edge_count = snapshot.edges(node).len();
    let sorted = snapshot_edges_sorted(&snapshot, &analysis, node, args.limit);
    let edges: Vec<EdgeJson> = sorted
        .iter()
        .map(|&e| {
            let target = snapshot.edge_target(e);
            EdgeJson {
                edge: snapshot.edge_label(e),
                name: snapshot.edge_name(e).into_owned(),
                edge_type: snapshot.edge_type_name(e).to_string(),
                weak: snapshot.edge_type(e) == EdgeType::Weak,
                target: node_json(&snapshot, &analysis, &scripts, snapshot.location(target), target),
            }
        })
        .collect();
    let allocation_stack = AllocationStacks::new(&snapshot).ok().map(|stacks| stacks.stack(node));
    let json = ShowJson { file: file.display().to_string(), object, dominators, edge_count, edges, allocation_stack };
    if args.input.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let o = &json.object;
    println!("{}", inspect::node_label(&snapshot, &analysis, node));
    println!("  type      {}", o.node_type);
    println!("  class     {}", o.class);
    if o.name != o.class {
        println!("  name      {}", inspect::shorten(&o.name, 100));
    }
    println!("  self      {} ({} bytes)", human_bytes(o.self_size), o.self_size);
    println!("  retained  {} ({} bytes)", human_bytes(o.retained_size), o.retained_size);
    println!("  distance  {}", distance_text(o.distance));
    if let Some(location) = &o.location {
        let what = if inspect::is_context(&snapshot, node) { "context of a function at " } else { "" };
        println!("  source    {what}{location}");
    }
    match &json.allocation_stack {
        Some(Some(frames)) if frames.is_empty() => println!("  allocated (no JavaScript frame on the stack)"),
        Some(Some(frames)) => {
            println!("\nAllocated by (allocation stack, allocating function first):");
            for frame in frames.iter().take(30) {
                let place = frame.location().map(|l| format!("  {}", l.replace("file://", ""))).unwrap_or_default();
                println!("  {}{place}", frame.function);
            }
            if frames.len() > 30 {
                println!("  … {} more callers (--json lists them all)", frames.len() - 30);
            }
        }
        Some(None) => println!("  allocated (no allocation info: the object existed before tracking started)"),
        None => {}
    }
    println!("\nDominators (each one alone keeps it alive), nearest first:");
    let mut current = node;
    for d in &json.dominators {
        let up = analysis.idom[current as usize];
        let place = d.location.as_ref().map(|l| format!("  {l}")).unwrap_or_default();
        println!("  {:>10}  {}{}", human_bytes(d.retained_size), inspect::node_label(&snapshot, &analysis, up), place);
        current = up;
    }
    println!("\nEdges ({} of {}, largest retained first):", json.edges.len(), json.edge_count);
    let mut table = Table::new(&[("Edge", false), ("Object", false), ("Retained", true), ("Where", false)]);
    for (e, edge) in json.edges.iter().zip(sorted.iter().copied()) {
        let target = snapshot.edge_target(edge);
        let weak = if e.weak { "  (weak)" } else { "" };
        table.row(vec![
            inspect::shorten(&e.edge, 40),
            format!("{}{weak}", inspect::node_label(&snapshot, &analysis, target)),
            human_bytes(e.target.retained_size),
            e.target.location.as_ref().map(|l| l.to_string()).unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    println!("\nnext: leakscope retainers {} @{}", file.display(), o.id);
    Ok(ExitCode::SUCCESS)
}

fn snapshot_edges_sorted(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    node: NodeIndex,
    limit: usize,
) -> Vec<leakscope_heap::EdgeIndex> {
    let mut edges: Vec<_> = snapshot.edges(node).collect();
    edges.sort_by(|a, b| {
        let (ta, tb) = (snapshot.edge_target(*a), snapshot.edge_target(*b));
        analysis.retained.get(tb).cmp(&analysis.retained.get(ta)).then(a.cmp(b))
    });
    if limit > 0 {
        edges.truncate(limit);
    }
    edges
}

#[derive(Serialize)]
struct FindJson {
    file: String,
    total: usize,
    total_retained: u64,
    shown: usize,
    objects: Vec<NodeJson>,
}

pub fn find(args: &FindArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let file = &args.input.file;
    let query = inspect::find::Query {
        class: args.class.clone(),
        name: args.name.clone(),
        string: args.string.clone(),
        min_retained: args.min_retained,
        limit: args.limit,
    };
    // Check the patterns before the (long) load.
    for (what, pattern) in [("--class", &args.class), ("--name", &args.name), ("--string", &args.string)] {
        if let Some(p) = pattern {
            regex::Regex::new(p)
                .map_err(|e| input_error(InspectError::BadPattern { what, message: e.to_string() }, file))?;
        }
    }
    let (snapshot, analysis) = load::open(file, args.input.raw_sizes, quiet)?;
    let found = inspect::find::find(&snapshot, &analysis, &query).map_err(|e| input_error(e, file))?;
    let scripts = ScriptNames::build(&snapshot);
    let objects: Vec<NodeJson> =
        found.nodes.iter().map(|&n| node_json(&snapshot, &analysis, &scripts, snapshot.location(n), n)).collect();
    if args.input.json {
        let json = FindJson {
            file: file.display().to_string(),
            total: found.total,
            total_retained: found.total_retained,
            shown: objects.len(),
            objects,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        ("Object", false),
        ("Class", false),
        ("Distance", true),
        ("Self", true),
        ("Retained", true),
        ("Where", false),
    ]);
    for (o, &n) in objects.iter().zip(&found.nodes) {
        table.row(vec![
            inspect::node_label(&snapshot, &analysis, n),
            inspect::shorten(&o.class, 40),
            o.distance
                .map(|d| if d >= BASE_SYSTEM_DISTANCE { "-".into() } else { d.to_string() })
                .unwrap_or("-".into()),
            human_bytes(o.self_size),
            human_bytes(o.retained_size),
            o.location.as_ref().map(|l| l.to_string()).unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    println!(
        "\n{} matching objects ({} shown), retaining {} in total (nested matches counted in each).",
        found.total,
        objects.len(),
        human_bytes(found.total_retained)
    );
    if let Some(first) = objects.first() {
        println!("next: leakscope show {} @{}", file.display(), first.id);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct DupStringsJson {
    file: String,
    group_count: usize,
    total_wasted: u64,
    strings: Vec<DupStringJson>,
}

#[derive(Serialize)]
struct DupStringJson {
    text: String,
    truncated: bool,
    count: u64,
    total_size: u64,
    wasted: u64,
    /// Ids of up to 10 copies.
    example_ids: Vec<u32>,
}

pub fn dup_strings(args: &DupStringsArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let file = &args.input.file;
    let (snapshot, analysis) = load::open(file, args.input.raw_sizes, quiet)?;
    let mut groups = inspect::dupstrings::duplicated_strings(&snapshot, &analysis.shallow, args.min_count);
    let group_count = groups.len();
    let total_wasted = groups.iter().map(|g| g.wasted).sum();
    if args.limit > 0 {
        groups.truncate(args.limit);
    }
    let strings: Vec<DupStringJson> = groups
        .iter()
        .map(|g| DupStringJson {
            text: g.text.clone(),
            truncated: g.truncated,
            count: g.count,
            total_size: g.total_size,
            wasted: g.wasted,
            example_ids: g.nodes.iter().take(10).map(|&n| snapshot.node_id(n)).collect(),
        })
        .collect();
    if args.input.json {
        let json = DupStringsJson { file: file.display().to_string(), group_count, total_wasted, strings };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table =
        Table::new(&[("Copies", true), ("Each", true), ("Wasted", true), ("Example", false), ("Content", false)]);
    for s in &strings {
        let each = s.total_size / s.count.max(1);
        let text = format!("\"{}\"{}", inspect::shorten(&s.text, 60), if s.truncated { " (prefix)" } else { "" });
        table.row(vec![
            s.count.to_string(),
            human_bytes(each),
            human_bytes(s.wasted),
            format!("@{}", s.example_ids[0]),
            text,
        ]);
    }
    print!("{}", table.render());
    println!(
        "\n{} duplicated contents ({} shown); the copies beyond one waste {} in total.",
        group_count,
        strings.len(),
        human_bytes(total_wasted)
    );
    if let Some(s) = strings.first() {
        println!("next: leakscope retainers {} @{}   (who creates the copies)", file.display(), s.example_ids[0]);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct LocatedJson {
    file: String,
    total_size: u64,
    row_count: usize,
    rows: Vec<LocatedRowJson>,
}

#[derive(Serialize)]
struct LocatedRowJson {
    class: String,
    location: Option<SourcePosition>,
    count: u64,
    shallow_size: u64,
    retained_size: u64,
    distance: Option<u32>,
    example_id: u32,
}

/// `summary --by-location`: classes split by creation site.
pub fn summary_by_location(args: &SummaryArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let file = &args.input.file;
    let filter = summary_filter(args)?;
    let (snapshot, analysis) = load::open(file, args.input.raw_sizes, quiet)?;
    let scripts = ScriptNames::build(&snapshot);
    let mut rows = inspect::locations::aggregate_by_location(&snapshot, &analysis);
    match args.sort {
        crate::cli::SummarySort::Retained => {
            rows.sort_by(|a, b| b.retained.cmp(&a.retained).then(b.shallow.cmp(&a.shallow)))
        }
        crate::cli::SummarySort::Shallow => {
            rows.sort_by(|a, b| b.shallow.cmp(&a.shallow).then(b.retained.cmp(&a.retained)))
        }
        crate::cli::SummarySort::Count => rows.sort_by(|a, b| b.count.cmp(&a.count).then(b.retained.cmp(&a.retained))),
    }
    if let Some(filter) = &filter {
        rows.retain(|r| filter.is_match(analysis.classes.name(&snapshot, r.class)));
    }
    let row_count = rows.len();
    if args.top > 0 {
        rows.truncate(args.top);
    }
    let json_rows: Vec<LocatedRowJson> = rows
        .iter()
        .map(|r| LocatedRowJson {
            class: analysis.classes.name(&snapshot, r.class).to_string(),
            location: r.location.map(|l| scripts.position(l)),
            count: r.count,
            shallow_size: r.shallow,
            retained_size: r.retained,
            distance: (r.min_distance < BASE_SYSTEM_DISTANCE).then_some(r.min_distance),
            example_id: snapshot.node_id(r.example),
        })
        .collect();
    if args.input.json {
        let json = LocatedJson {
            file: file.display().to_string(),
            total_size: analysis.total_size,
            row_count,
            rows: json_rows,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        ("Class", false),
        ("Created at", false),
        ("Count", true),
        ("Shallow", true),
        ("Retained", true),
        ("Example", false),
    ]);
    for r in &json_rows {
        table.row(vec![
            inspect::shorten(&r.class, 50),
            r.location.as_ref().map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            r.count.to_string(),
            human_bytes(r.shallow_size),
            human_bytes(r.retained_size),
            format!("@{}", r.example_id),
        ]);
    }
    print!("{}", table.render());
    println!(
        "\n{} rows ({} shown): objects by constructor site, functions by definition site.",
        row_count,
        json_rows.len()
    );
    if let Some(r) = json_rows.first() {
        println!("next: leakscope retainers {} --class '{}'", file.display(), r.class);
    }
    Ok(ExitCode::SUCCESS)
}
