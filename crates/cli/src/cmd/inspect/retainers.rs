//! `retainers`: retaining paths of one object, or of every object of a class grouped by path.

use super::{input_error, node_json, NodeJson};
use crate::cli::RetainersArgs;
use crate::load;
use crate::output::{human_bytes, Exit};
use leakscope_heap::analysis::BASE_SYSTEM_DISTANCE;
use leakscope_heap::inspect::paths::{self, RetainingPath};
use leakscope_heap::inspect::retainers::{ViewOptions, DEVTOOLS_MAX_STEPS};
use leakscope_heap::inspect::{self, find, ChainStop, InspectError, RetainerIndex, RetainerView};
use leakscope_heap::scripts::ScriptNames;
use leakscope_heap::{Analysis, EdgeType, HeapSnapshot, NodeIndex};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
pub(crate) struct PathJson {
    /// Why the path starts where it does: `user-root`, `no-retainers`, `unreachable`, `max-depth`, `cycle`.
    pub stop: ChainStop,
    /// The edges in DevTools notation, root first.
    pub text: String,
    /// Root first; the last step is the object.
    pub steps: Vec<StepJson>,
}

#[derive(Serialize)]
pub(crate) struct StepJson {
    /// The edge from the previous step, DevTools notation; `null` on the first step.
    pub edge: Option<String>,
    pub edge_name: Option<String>,
    pub edge_type: Option<String>,
    /// How many identical steps this one stands for (folded runs like `.next` × 500 in --class groups).
    pub repeat: u32,
    pub node: NodeJson,
}

#[derive(Serialize)]
struct ObjectJson {
    file: String,
    object: NodeJson,
    ignored_ids: Vec<u32>,
    paths: Vec<PathJson>,
}

#[derive(Serialize)]
struct ClassJson {
    file: String,
    class: String,
    object_count: usize,
    group_count: usize,
    ignored_ids: Vec<u32>,
    groups: Vec<GroupJson>,
}

#[derive(Serialize)]
pub(crate) struct GroupJson {
    pub count: u64,
    pub retained_size: u64,
    pub shallow_size: u64,
    pub representative_id: u32,
    /// Up to 20 members, largest retained first.
    pub member_ids: Vec<u32>,
    pub path: PathJson,
}

/// Everything needed to print paths: snapshot, analysis, script names and the retainer view.
pub(crate) struct PathPrinter<'a> {
    pub snapshot: &'a HeapSnapshot,
    pub analysis: &'a Analysis,
    pub scripts: ScriptNames,
    pub view: &'a RetainerView<'a>,
}

impl PathPrinter<'_> {
    fn location(&self, node: NodeIndex) -> Option<leakscope_heap::SourceLocation> {
        inspect::source_location(self.snapshot, Some(self.view.index()), node)
    }

    pub fn path_json(&self, path: &RetainingPath) -> PathJson {
        let s = self.snapshot;
        PathJson {
            stop: path.stop,
            text: path.edge_text(s),
            steps: path
                .steps
                .iter()
                .map(|step| StepJson {
                    edge: step.edge_in.map(|e| s.edge_label(e)),
                    edge_name: step.edge_in.map(|e| s.edge_name(e).into_owned()),
                    edge_type: step.edge_in.map(|e| s.edge_type_name(e).to_string()),
                    repeat: step.repeat,
                    node: node_json(s, self.analysis, &self.scripts, self.location(step.node), step.node),
                })
                .collect(),
        }
    }

    /// One line per step, root first, with source positions next to functions and their contexts.
    pub fn print_path(&self, path: &RetainingPath, indent: &str) {
        let s = self.snapshot;
        for (i, step) in path.steps.iter().enumerate() {
            let label = inspect::node_label(s, self.analysis, step.node);
            let edge = step.edge_in.map(|e| s.edge_label(e)).unwrap_or_default();
            let repeat = if step.repeat > 1 { format!(" ×{}", step.repeat) } else { String::new() };
            let place = match self.location(step.node) {
                Some(l) if inspect::is_context(s, step.node) => format!("   (context of {})", self.scripts.position(l)),
                Some(l) => format!("   {}", self.scripts.position(l)),
                None => String::new(),
            };
            let weak = if step.edge_in.is_some_and(|e| s.edge_type(e) == EdgeType::Weak) { " (weak)" } else { "" };
            let arrow = if i == 0 { "  " } else { "→ " };
            println!("{indent}{arrow}{}{repeat}{weak}  {label}{place}", inspect::shorten(&edge, 50));
        }
        let top = path.steps[0].node;
        let why = match path.stop {
            ChainStop::UserRoot => "starts at a user root (a global object)".to_string(),
            ChainStop::NoRetainers => "starts at an object with no retainers shown (a GC root)".to_string(),
            ChainStop::Unreachable => "its next retainer is unreachable or ignored".to_string(),
            ChainStop::MaxDepth => "cut at the depth limit (raise --max-depth)".to_string(),
            ChainStop::Cycle => "its next retainer is already on the path".to_string(),
        };
        let system = if self.view.distance(path.steps[path.steps.len() - 1].node) >= BASE_SYSTEM_DISTANCE
            && self.view.distance(path.steps[path.steps.len() - 1].node) < 2 * BASE_SYSTEM_DISTANCE
        {
            "; reached only through GC roots, no global holds it"
        } else {
            ""
        };
        println!(
            "{indent}path: {}{} → @{}   ({why}{system})",
            inspect::shorten(&inspect::display_name(s, top), 40),
            path.edge_text(s),
            s.node_id(path.steps[path.steps.len() - 1].node)
        );
    }
}

/// Resolves `--ignore` patterns: `@id`/digits, an exact class name, or an edge name (its targets).
fn resolve_ignores(
    snapshot: &HeapSnapshot,
    analysis: &Analysis,
    patterns: &[String],
) -> Result<Vec<NodeIndex>, InspectError> {
    let mut ignored = Vec::new();
    for pattern in patterns {
        let trimmed = pattern.trim();
        if trimmed.starts_with('@') || (!trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit())) {
            let id = inspect::parse_id(trimmed)?;
            ignored.push(snapshot.find_by_id(id).ok_or(InspectError::UnknownId(id))?);
            continue;
        }
        if let Ok(nodes) = find::nodes_of_class(snapshot, analysis, trimmed) {
            ignored.extend(nodes);
            continue;
        }
        let before = ignored.len();
        for node in 0..snapshot.node_count() as NodeIndex {
            for edge in snapshot.edges(node) {
                if snapshot.edge_type(edge).has_string_name() && snapshot.edge_name(edge) == trimmed {
                    ignored.push(snapshot.edge_target(edge));
                }
            }
        }
        if ignored.len() == before {
            return Err(InspectError::IgnoreMatchesNothing(pattern.clone()));
        }
    }
    ignored.sort_unstable();
    ignored.dedup();
    Ok(ignored)
}

pub fn retainers(args: &RetainersArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let file = &args.input.file;
    let id = args.id.as_deref().map(inspect::parse_id).transpose().map_err(|e| input_error(e, file))?;
    if args.paths == 0 {
        return Err(Exit { code: 2, message: "--paths must be at least 1".into(), hint: None }.into());
    }
    let (snapshot, analysis) = load::open(file, args.input.raw_sizes, quiet)?;
    let object = id
        .map(|id| snapshot.find_by_id(id).ok_or(InspectError::UnknownId(id)))
        .transpose()
        .map_err(|e| input_error(e, file))?;
    let members = match &args.class {
        Some(class) => find::nodes_of_class(&snapshot, &analysis, class).map_err(|e| input_error(e, file))?,
        None => Vec::new(),
    };
    let ignored = resolve_ignores(&snapshot, &analysis, &args.ignore).map_err(|e| input_error(e, file))?;
    // The reverse index: built once, two u32 per edge.
    let index = RetainerIndex::build(&snapshot);
    let options = ViewOptions { show_weak: args.show_weak, ignored: ignored.clone() };
    let view =
        RetainerView::new(&snapshot, &index, &analysis.distance, &analysis.user_roots, &analysis.weakmaps, &options);
    let printer =
        PathPrinter { snapshot: &snapshot, analysis: &analysis, scripts: ScriptNames::build(&snapshot), view: &view };
    let ignored_ids: Vec<u32> = ignored.iter().map(|&n| snapshot.node_id(n)).collect();

    if let Some(object) = object {
        let max_depth = args.max_depth.unwrap_or(DEVTOOLS_MAX_STEPS).max(1);
        let found = paths::retaining_paths(&view, object, args.paths, max_depth);
        let object_json = node_json(&snapshot, &analysis, &printer.scripts, printer.location(object), object);
        if args.input.json {
            let json = ObjectJson {
                file: file.display().to_string(),
                object: object_json,
                ignored_ids,
                paths: found.iter().map(|p| printer.path_json(p)).collect(),
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{} ({}, retained {}): {} retaining path{}, root first, in DevTools' Retainers-pane order",
            inspect::node_label(&snapshot, &analysis, object),
            object_json.class,
            human_bytes(object_json.retained_size),
            found.len(),
            if found.len() == 1 { "" } else { "s" }
        );
        if !ignored.is_empty() {
            println!("(ignoring {} object{})", ignored.len(), if ignored.len() == 1 { "" } else { "s" });
        }
        for (i, path) in found.iter().enumerate() {
            println!("\nPath {}:", i + 1);
            printer.print_path(path, "  ");
        }
        if found[0].steps.len() <= 1 {
            println!("\nNothing retains it (only weak or root edges); try --show-weak.");
        }
        // The object's direct retainer: ignoring it shows the next way the object is held.
        let steps = &found[0].steps;
        match steps.len().checked_sub(2).map(|i| steps[i].node) {
            Some(direct) => println!(
                "\nnext: leakscope retainers {} @{} --ignore @{}   (how else is it held?)",
                file.display(),
                snapshot.node_id(object),
                snapshot.node_id(direct)
            ),
            None => println!("\nnext: leakscope show {} @{}", file.display(), snapshot.node_id(object)),
        }
        return Ok(ExitCode::SUCCESS);
    }

    let class = args.class.clone().unwrap_or_default();
    let mut groups = paths::group_by_path(&snapshot, &analysis, &view, &members);
    let group_count = groups.len();
    if args.limit > 0 {
        groups.truncate(args.limit);
    }
    let groups_json: Vec<GroupJson> = groups
        .iter()
        .map(|g| GroupJson {
            count: g.count,
            retained_size: g.retained,
            shallow_size: g.shallow,
            representative_id: snapshot.node_id(g.representative),
            member_ids: g.members.iter().take(20).map(|&n| snapshot.node_id(n)).collect(),
            path: printer.path_json(&g.path),
        })
        .collect();
    if args.input.json {
        let json = ClassJson {
            file: file.display().to_string(),
            class,
            object_count: members.len(),
            group_count,
            ignored_ids,
            groups: groups_json,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} objects of class {class} in {group_count} retaining-path group{} ({} shown), largest retained first.",
        members.len(),
        if group_count == 1 { "" } else { "s" },
        groups.len()
    );
    println!(
        "Objects share a group when their DevTools chains have the same classes and edge names (indices ignored)."
    );
    for (i, g) in groups.iter().enumerate() {
        println!(
            "\nGroup {}: {} object{}, retaining {} (self {}); path of the largest, @{}:",
            i + 1,
            g.count,
            if g.count == 1 { "" } else { "s" },
            human_bytes(g.retained),
            human_bytes(g.shallow),
            snapshot.node_id(g.representative)
        );
        printer.print_path(&g.path, "  ");
    }
    if let Some(g) = groups.first() {
        println!("\nnext: leakscope show {} @{}", file.display(), snapshot.node_id(g.representative));
    }
    Ok(ExitCode::SUCCESS)
}
