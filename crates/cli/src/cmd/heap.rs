//! `summary`, `dominators`, `stats`: reports over one snapshot.

use crate::cli::{DominatorsArgs, StatsArgs, SummaryArgs, SummarySort};
use crate::load;
use crate::output::{human_bytes, Exit, Table};
use leakscope_heap::analysis::{ClassKey, BASE_SYSTEM_DISTANCE};
use leakscope_heap::{Analysis, HeapSnapshot, NodeIndex, NodeType};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
struct SummaryJson<'a> {
    file: String,
    total_size: u64,
    node_count: usize,
    class_count: usize,
    classes: Vec<ClassJson<'a>>,
}

#[derive(Serialize)]
struct ClassJson<'a> {
    class: &'a str,
    key: String,
    location: Option<LocationJson>,
    count: u64,
    shallow_size: u64,
    retained_size: u64,
    shallow_percent: f64,
    retained_percent: f64,
    distance: Option<u32>,
}

#[derive(Serialize)]
struct LocationJson {
    script_id: u32,
    /// 1-based, as editors show it.
    line: u32,
    /// 1-based.
    column: u32,
}

pub fn summary(args: &SummaryArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    if args.by_location {
        return super::inspect::summary_by_location(args, quiet);
    }
    if args.allocated_by {
        return super::inspect::summary_allocated_by(args, quiet);
    }
    let filter = match &args.filter {
        Some(pattern) => Some(regex::Regex::new(pattern).map_err(|e| Exit {
            code: 2,
            message: format!("--filter: invalid regular expression: {e}"),
            hint: None,
        })?),
        None => None,
    };
    let (snapshot, analysis) = load::open(&args.input.file, args.input.raw_sizes, quiet)?;
    let code = summary_report(args, filter.as_ref(), &snapshot, &analysis);
    // The output is written: the memory goes back on both cores instead of at exit on one.
    leakscope_heap::release(snapshot, analysis);
    code
}

fn summary_report(
    args: &SummaryArgs,
    filter: Option<&regex::Regex>,
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
) -> anyhow::Result<ExitCode> {
    let mut rows = analysis.summary(snapshot);
    let total = analysis.total_size.max(1);
    match args.sort {
        SummarySort::Retained => rows.sort_by(|a, b| b.retained.cmp(&a.retained).then(b.shallow.cmp(&a.shallow))),
        SummarySort::Shallow => rows.sort_by(|a, b| b.shallow.cmp(&a.shallow).then(b.retained.cmp(&a.retained))),
        SummarySort::Count => rows.sort_by(|a, b| b.count.cmp(&a.count).then(b.retained.cmp(&a.retained))),
    }
    let class_count = rows.len();
    if let Some(filter) = filter {
        rows.retain(|r| filter.is_match(analysis.classes.name(snapshot, r.class)));
    }
    if args.top > 0 {
        rows.truncate(args.top);
    }
    if args.input.json {
        let classes = rows
            .iter()
            .map(|r| {
                let name = analysis.classes.name(snapshot, r.class);
                ClassJson {
                    class: name,
                    key: class_key_text(analysis, snapshot, r.key),
                    location: r.location().map(|l| LocationJson {
                        script_id: l.script_id,
                        line: l.line + 1,
                        column: l.column + 1,
                    }),
                    count: r.count,
                    shallow_size: r.shallow,
                    retained_size: r.retained,
                    shallow_percent: percent(r.shallow, total),
                    retained_percent: percent(r.retained, total),
                    distance: (r.min_distance < BASE_SYSTEM_DISTANCE).then_some(r.min_distance),
                }
            })
            .collect();
        let json = SummaryJson {
            file: args.input.file.display().to_string(),
            total_size: analysis.total_size,
            node_count: snapshot.node_count(),
            class_count,
            classes,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        ("Class", false),
        ("Distance", true),
        ("Count", true),
        ("Shallow", true),
        ("%", true),
        ("Retained", true),
        ("%", true),
    ]);
    for r in &rows {
        let mut name = truncate(analysis.classes.name(snapshot, r.class), 60);
        if let Some(l) = r.location() {
            name.push_str(&format!("  (script {} line {})", l.script_id, l.line + 1));
        }
        table.row(vec![
            name,
            distance_text(r.min_distance),
            r.count.to_string(),
            human_bytes(r.shallow),
            format!("{:.1}", percent(r.shallow, total)),
            human_bytes(r.retained),
            format!("{:.1}", percent(r.retained, total)),
        ]);
    }
    print!("{}", table.render());
    println!(
        "\n{} classes ({} shown), {} objects, total {}. Retained sizes follow Chrome DevTools' rules.",
        class_count,
        rows.len(),
        snapshot.node_count(),
        human_bytes(analysis.total_size)
    );
    Ok(ExitCode::SUCCESS)
}

fn class_key_text(analysis: &Analysis, snapshot: &HeapSnapshot, key: ClassKey) -> String {
    match key {
        ClassKey::Class(c) => format!(",{}", analysis.classes.name(snapshot, c)),
        ClassKey::Located(c, s, l, col) => format!("{s},{l},{col},{}", analysis.classes.name(snapshot, c)),
    }
}

fn percent(part: u64, total: u64) -> f64 {
    (part as f64 * 1000.0 / total as f64).round() / 10.0
}

fn distance_text(d: u32) -> String {
    if d >= BASE_SYSTEM_DISTANCE {
        "-".into()
    } else {
        d.to_string()
    }
}

fn truncate(text: &str, max: usize) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= max {
        clean
    } else {
        let mut short: String = clean.chars().take(max - 1).collect();
        short.push('…');
        short
    }
}

/// How a node is shown: its class, plus its name where that says more (function name, string content).
pub fn node_label(snapshot: &HeapSnapshot, analysis: &Analysis, node: NodeIndex) -> String {
    let class = analysis.class_name(snapshot, node);
    let name = snapshot.node_name(node);
    let shown = match snapshot.node_type(node) {
        NodeType::String | NodeType::ConsString | NodeType::SlicedString => format!("\"{}\"", truncate(name, 40)),
        NodeType::Closure => format!("{}()", if name.is_empty() { "(anonymous)" } else { name }),
        NodeType::Array if name.is_empty() => "(internal array)".to_string(),
        NodeType::Object | NodeType::Native if class != name => format!("{} {}", class, truncate(name, 40)),
        _ if class == name || name.is_empty() => class.to_string(),
        _ => format!("{class} {}", truncate(name, 40)),
    };
    format!("{} @{}", truncate(&shown, 70), snapshot.node_id(node))
}

#[derive(Serialize)]
struct DominatorJson {
    id: u32,
    class: String,
    name: String,
    node_type: String,
    edge: Option<String>,
    self_size: u64,
    retained_size: u64,
    children: Vec<DominatorJson>,
}

pub fn dominators(args: &DominatorsArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let (snapshot, analysis) = load::open(&args.input.file, args.input.raw_sizes, quiet)?;
    let code = dominators_report(args, &snapshot, &analysis);
    // The output is written: the memory goes back on both cores instead of at exit on one.
    leakscope_heap::release(snapshot, analysis);
    code
}

fn dominators_report(args: &DominatorsArgs, snapshot: &HeapSnapshot, analysis: &Analysis) -> anyhow::Result<ExitCode> {
    let tree = build_tree(snapshot, analysis, snapshot.root(), None, args, 0);
    if args.input.json {
        println!("{}", serde_json::to_string_pretty(&tree)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:>10} {:>10}  object (edge from its dominator)", "retained", "self");
    print_tree(&tree, 0);
    println!("\nEach object retains what is indented below it: free it and all of that goes too.");
    Ok(ExitCode::SUCCESS)
}

fn build_tree(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    node: NodeIndex,
    edge: Option<String>,
    args: &DominatorsArgs,
    depth: usize,
) -> DominatorJson {
    let mut children = Vec::new();
    if depth < args.depth {
        let mut kids: Vec<NodeIndex> = analysis
            .dominator_tree
            .children(node)
            .iter()
            .copied()
            .filter(|&c| analysis.retained.get(c) >= args.min_size.max(1))
            .collect();
        kids.sort_by_key(|&kid| std::cmp::Reverse(analysis.retained.get(kid)));
        kids.truncate(args.top);
        for child in kids {
            let edge = snapshot.edges(node).find(|&e| snapshot.edge_target(e) == child).map(|e| snapshot.edge_label(e));
            children.push(build_tree(snapshot, analysis, child, edge, args, depth + 1));
        }
    }
    DominatorJson {
        id: snapshot.node_id(node),
        class: analysis.class_name(snapshot, node).to_string(),
        name: node_label(snapshot, analysis, node),
        node_type: snapshot.node_type_name(node).to_string(),
        edge,
        self_size: analysis.shallow.get(node),
        retained_size: analysis.retained.get(node),
        children,
    }
}

fn print_tree(node: &DominatorJson, depth: usize) {
    let edge = node.edge.as_deref().map(|e| format!("  ({e})")).unwrap_or_default();
    println!(
        "{:>10} {:>10}  {}{}{}",
        human_bytes(node.retained_size),
        human_bytes(node.self_size),
        "  ".repeat(depth),
        node.name,
        edge
    );
    for child in &node.children {
        print_tree(child, depth + 1);
    }
}

#[derive(Serialize)]
struct StatsJson {
    file: String,
    origin: leakscope_heap::origin::Origin,
    node_count: usize,
    edge_count: usize,
    string_count: usize,
    unreachable_count: u32,
    system_object_count: usize,
    statistics: leakscope_heap::analysis::Statistics,
}

pub fn stats(args: &StatsArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let (snapshot, analysis) = load::open(&args.input.file, args.input.raw_sizes, quiet)?;
    let code = stats_report(args, &snapshot, &analysis);
    // The output is written: the memory goes back on both cores instead of at exit on one.
    leakscope_heap::release(snapshot, analysis);
    code
}

fn stats_report(args: &StatsArgs, snapshot: &HeapSnapshot, analysis: &Analysis) -> anyhow::Result<ExitCode> {
    let s = analysis.statistics(snapshot);
    let json = StatsJson {
        file: args.input.file.display().to_string(),
        origin: leakscope_heap::origin::infer(snapshot),
        node_count: snapshot.node_count(),
        edge_count: snapshot.edge_count(),
        string_count: snapshot.strings().len(),
        unreachable_count: analysis.unreachable,
        system_object_count: analysis.system_node_count(),
        statistics: s.clone(),
    };
    if args.input.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let origin = &json.origin;
    println!(
        "{}: {} {} ({}; {} node fields)",
        json.file,
        origin.runtime,
        origin.version.as_deref().unwrap_or("(version unknown)"),
        origin.evidence,
        origin.node_fields
    );
    println!(
        "{} nodes, {} edges, {} strings; {} unreachable, {} reachable only from GC roots\n",
        json.node_count, json.edge_count, json.string_count, json.unreachable_count, json.system_object_count
    );
    let mut table = Table::new(&[("Kind", false), ("Size", true), ("%", true)]);
    let total = s.total.max(1);
    for (name, value) in [
        ("Code", s.code),
        ("Strings", s.strings),
        ("JS arrays", s.js_arrays),
        ("Typed arrays (backing stores)", s.typed_arrays),
        ("System objects", s.system),
        ("Other JS objects", s.other_js_objects),
        ("Other native", s.other_native),
        ("Total", s.total),
    ] {
        table.row(vec![name.to_string(), human_bytes(value), format!("{:.1}", percent(value, total))]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}
