//! `diff`: DevTools' Comparison view between two snapshots of one process.

use super::retainers::{GroupJson, PathPrinter};
use crate::cli::DiffArgs;
use crate::load;
use crate::output::{human_bytes, Exit, Table};
use leakscope_heap::inspect::diff::{self, ClassDiff, ClassMembers, ClassedSnapshot, IdOverlap};
use leakscope_heap::inspect::paths;
use leakscope_heap::inspect::retainers::ViewOptions;
use leakscope_heap::inspect::{RetainerIndex, RetainerView};
use leakscope_heap::scripts::ScriptNames;
use leakscope_heap::AnalysisOptions;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
struct DiffJson {
    base: String,
    target: String,
    overlap: IdOverlap,
    class_count: usize,
    totals: Totals,
    classes: Vec<ClassDiff>,
    /// With --class: the new objects of that class grouped by retaining path (in the target).
    #[serde(skip_serializing_if = "Option::is_none")]
    new_objects: Option<NewObjectsJson>,
}

#[derive(Serialize, Default)]
struct Totals {
    added_count: u64,
    removed_count: u64,
    added_size: u64,
    removed_size: u64,
    size_delta: i64,
}

#[derive(Serialize)]
struct NewObjectsJson {
    class: String,
    count: usize,
    group_count: usize,
    groups: Vec<GroupJson>,
}

fn signed_bytes(v: i64) -> String {
    if v < 0 {
        format!("-{}", human_bytes(v.unsigned_abs()))
    } else {
        format!("+{}", human_bytes(v as u64))
    }
}

pub fn diff(args: &DiffArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    // The target first: its plain-object shapes name both sides, as in DevTools.
    let target = load::load_snapshot(&args.target, quiet)?;
    let full = args.class.is_some().then(|| {
        load::analyse(
            &target,
            &AnalysisOptions { raw_sizes: args.raw_sizes, parallel: true, ..Default::default() },
            quiet,
        )
    });
    let target_classed = match &full {
        Some(_) => None,
        None => Some(ClassedSnapshot::light(&target, None, args.raw_sizes)),
    };
    let (target_shallow, target_classes) = match (&full, &target_classed) {
        (Some(a), _) => (&a.shallow, &a.classes),
        (None, Some(c)) => (&c.shallow, &c.classes),
        (None, None) => unreachable!("one of them is computed"),
    };
    let definitions = target_classes.definitions.clone();
    let target_members = ClassMembers::build_parts(&target, target_shallow, target_classes);

    let base = load::load_snapshot(&args.base, quiet)?;
    let overlap = diff::id_overlap(&base, &target);
    if overlap.different_processes() && !args.force {
        return Err(Exit {
            code: 2,
            message: format!(
                "{} and {} do not look like snapshots of one process: {} of {} object ids are shared, {} of those name different objects",
                args.base.display(),
                args.target.display(),
                overlap.shared,
                overlap.base_objects,
                overlap.mismatched
            ),
            hint: Some(
                "a diff matches objects by id, and ids only mean something within one process; take both snapshots \
                 from the same running process (leakscope snapshot --pid PID --every 30s --count 2), or pass --force"
                    .into(),
            ),
        }
        .into());
    }
    let base_classed = ClassedSnapshot::light(&base, Some(definitions), args.raw_sizes);
    let base_members = ClassMembers::build(&base, &base_classed);
    drop(base_classed);
    drop(base);
    let result = diff::diff(&base_members, &target_members);

    let mut totals = Totals::default();
    for c in &result.classes {
        totals.added_count += c.added_count;
        totals.removed_count += c.removed_count;
        totals.added_size += c.added_size;
        totals.removed_size += c.removed_size;
    }
    totals.size_delta = totals.added_size as i64 - totals.removed_size as i64;
    let class_count = result.classes.len();

    let new_objects = match (&args.class, &full) {
        (Some(class), Some(analysis)) => {
            let added: Vec<_> =
                result.classes.iter().filter(|c| &c.class == class).flat_map(|c| c.added.iter().copied()).collect();
            let index = RetainerIndex::build(&target);
            let view = RetainerView::new(
                &target,
                &index,
                &analysis.distance,
                &analysis.user_roots,
                &analysis.weakmaps,
                &ViewOptions::default(),
            );
            let printer =
                PathPrinter { snapshot: &target, analysis, scripts: ScriptNames::build(&target), view: &view };
            let groups = paths::group_by_path(&target, analysis, &view, &added);
            let group_count = groups.len();
            let shown: Vec<_> = groups.iter().take(10).collect();
            if !args.json {
                print_table(args, &result.classes, &totals, class_count);
                println!(
                    "\n{} new {class} objects in {group_count} retaining-path group{}:",
                    added.len(),
                    if group_count == 1 { "" } else { "s" }
                );
                for (i, g) in shown.iter().enumerate() {
                    println!(
                        "\nGroup {}: {} new object{}, retaining {}; path of @{}:",
                        i + 1,
                        g.count,
                        if g.count == 1 { "" } else { "s" },
                        human_bytes(g.retained),
                        target.node_id(g.representative)
                    );
                    printer.print_path(&g.path, "  ");
                }
                if let Some(g) = shown.first() {
                    println!("\nnext: leakscope show {} @{}", args.target.display(), target.node_id(g.representative));
                }
                return Ok(ExitCode::SUCCESS);
            }
            Some(NewObjectsJson {
                class: class.clone(),
                count: added.len(),
                group_count,
                groups: shown
                    .iter()
                    .map(|g| GroupJson {
                        count: g.count,
                        retained_size: g.retained,
                        shallow_size: g.shallow,
                        representative_id: target.node_id(g.representative),
                        member_ids: g.members.iter().take(20).map(|&n| target.node_id(n)).collect(),
                        path: printer.path_json(&g.path),
                    })
                    .collect(),
            })
        }
        _ => None,
    };
    if args.json {
        let mut classes = result.classes;
        if args.top > 0 {
            classes.truncate(args.top);
        }
        let json = DiffJson {
            base: args.base.display().to_string(),
            target: args.target.display().to_string(),
            overlap,
            class_count,
            totals,
            classes,
            new_objects,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_table(args, &result.classes, &totals, class_count);
    if let Some(top) = result.classes.iter().find(|c| c.count_delta > 0) {
        println!(
            "\nnext: leakscope diff {} {} --class '{}'   (where the new ones hang)",
            args.base.display(),
            args.target.display(),
            top.class
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(args: &DiffArgs, classes: &[ClassDiff], totals: &Totals, class_count: usize) {
    let mut table = Table::new(&[
        ("Class", false),
        ("# New", true),
        ("# Deleted", true),
        ("# Delta", true),
        ("Alloc. Size", true),
        ("Freed Size", true),
        ("Size Delta", true),
    ]);
    let shown = if args.top > 0 { args.top.min(classes.len()) } else { classes.len() };
    for c in &classes[..shown] {
        table.row(vec![
            leakscope_heap::inspect::shorten(&c.class, 60),
            c.added_count.to_string(),
            c.removed_count.to_string(),
            format!("{:+}", c.count_delta),
            human_bytes(c.added_size),
            human_bytes(c.removed_size),
            signed_bytes(c.size_delta),
        ]);
    }
    print!("{}", table.render());
    println!(
        "\n{} classes changed ({} shown): {} new objects ({}), {} deleted ({}), net {}. Sorted by allocated size.",
        class_count,
        shown,
        totals.added_count,
        human_bytes(totals.added_size),
        totals.removed_count,
        human_bytes(totals.removed_size),
        signed_bytes(totals.size_delta)
    );
}
