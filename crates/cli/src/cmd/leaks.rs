//! `leaks`: automatic leak finding across snapshots.

use crate::cli::LeaksArgs;
use crate::load;
use crate::output::{human_bytes, Exit};
use leakscope_heap::{Analysis, AnalysisOptions, HeapSnapshot};
use leakscope_leaks::digest::SnapshotDigest;
use leakscope_leaks::{find_leaks, LeakOptions, LeakReport};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn leaks(args: &LeaksArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = Vec::new();
    files.extend(args.baseline.iter().cloned());
    files.extend(args.files.iter().cloned());
    files.extend(args.target.iter().cloned());
    files.extend(args.final_.iter().cloned());
    if files.len() < 2 {
        return Err(Exit {
            code: 2,
            message: format!("leaks needs at least two snapshots of the same process, got {}", files.len()),
            hint: Some("take a series with `leakscope snapshot --pid PID --every 30s --count 3`".into()),
        }
        .into());
    }
    let options = LeakOptions { min_growth_bytes: args.min_growth, top: args.top, ..LeakOptions::default() };
    let series = analyse_series(&files, args.force, &options, quiet)?;
    let report = series.report;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &files);
    }
    Ok(if report.findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The leak report of a series of snapshots, with the last snapshot and its analysis (for reports that show
/// more of it).
pub(crate) struct Series {
    pub report: LeakReport,
    pub snapshot: HeapSnapshot,
    pub analysis: Analysis,
}

/// Reads a series of snapshots of one process (oldest first, two or more) and finds what leaks. Refuses
/// snapshots of different processes unless `force`.
pub(crate) fn analyse_series(
    files: &[PathBuf],
    force: bool,
    options: &LeakOptions,
    quiet: bool,
) -> anyhow::Result<Series> {
    let (last_path, earlier_paths) = files.split_last().expect("two or more");
    // The earlier snapshots are reduced to digests on one thread while the last is analysed on another.
    let (digests, last) = std::thread::scope(|scope| {
        let digests = scope.spawn(|| -> anyhow::Result<Vec<SnapshotDigest>> {
            earlier_paths.iter().map(|path| Ok(SnapshotDigest::new(&load::load_snapshot(path, true)?))).collect()
        });
        let last = load::load_snapshot(last_path, quiet).map(|snapshot| {
            let analysis = load::analyse(&snapshot, &AnalysisOptions { parallel: false, ..Default::default() }, quiet);
            (snapshot, analysis)
        });
        (digests.join().expect("digest thread"), last)
    });
    let digests = digests?;
    let (snapshot, analysis) = last?;
    let last_digest = SnapshotDigest::new(&snapshot);
    for (path, digest) in earlier_paths.iter().zip(&digests) {
        let score = digest.same_process_score(&last_digest);
        if score < 0.9 && !force {
            return Err(Exit {
                code: 2,
                message: format!(
                    "{} and {} do not look like snapshots of one process (only {:.0}% of their shared object ids \
                     name the same object)",
                    path.display(),
                    last_path.display(),
                    score * 100.0
                ),
                hint: Some("object ids are only comparable within one process; use --force to compare anyway".into()),
            }
            .into());
        }
    }
    let report = find_leaks(&snapshot, &analysis, &digests, options);
    Ok(Series { report, snapshot, analysis })
}

pub(crate) fn print_report(report: &LeakReport, files: &[PathBuf]) {
    let rounds = report.snapshots - 1;
    if report.findings.is_empty() {
        println!(
            "No leak found across {} snapshots: {} objects ({}) are new since the first snapshot, but no container \
             kept growing in every round.",
            report.snapshots,
            report.new_objects,
            human_bytes(report.new_bytes)
        );
        return;
    }
    println!(
        "{} leak{} found across {} snapshots ({} new objects since the first, {} explained by the findings).\n",
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" },
        report.snapshots,
        report.new_objects,
        report.explained_objects
    );
    for f in &report.findings {
        println!(
            "#{} {} — {} @{} grows {} per round (retains {})",
            f.rank,
            f.kind,
            f.container.class,
            f.container.id,
            human_bytes(f.growth.mean_bytes_per_round),
            human_bytes(f.container.retained_size)
        );
        println!("   {}", f.diagnosis);
        let path: Vec<String> = f.path_detail.iter().map(|s| format!("{} {}", s.label, s.class)).collect();
        println!("   path: {} {}", f.path_root, abbreviate(&path, 16).join(" → "));
        let header: Vec<String> = (1..=rounds).map(|r| format!("round {r}")).collect();
        println!("   {:<10} {}", "", header.iter().map(|h| format!("{h:>12}")).collect::<String>());
        println!(
            "   {:<10} {}",
            "objects",
            f.growth.objects_per_round.iter().map(|v| format!("{v:>12}")).collect::<String>()
        );
        println!(
            "   {:<10} {}",
            "bytes",
            f.growth.bytes_per_round.iter().map(|v| format!("{:>12}", human_bytes(*v))).collect::<String>()
        );
        if !f.container.size_per_snapshot.is_empty() {
            let sizes: Vec<String> =
                f.container.size_per_snapshot.iter().map(|s| s.map_or("-".into(), |v| v.to_string())).collect();
            println!("   entries per snapshot: {}", sizes.join(" → "));
        }
        let holds: Vec<String> = f.holds.iter().take(5).map(|h| format!("{} × {}", h.count, h.class)).collect();
        println!("   holds: {}", holds.join(", "));
        for s in &f.source {
            let file = s.file.as_deref().unwrap_or("?");
            println!("   source ({}): {} at {}:{}:{}", s.role, s.function, file, s.line, s.column);
        }
        if let Some(r) = &f.representative {
            println!(
                "   e.g. {} @{} (retains {}): {}",
                r.class,
                r.id,
                human_bytes(r.retained_size),
                abbreviate(&r.path, 16).join(" → ")
            );
        }
        println!();
    }
    let Some(last) = files.last().map(|p| p.display().to_string()) else { return };
    if let Some(f) = report.findings.first() {
        println!("Next: leakscope retainers {last} @{}   (who holds the container, all paths)", f.container.id);
    }
}

/// Long paths (chains) keep their first and last steps.
fn abbreviate(steps: &[String], keep: usize) -> Vec<String> {
    if steps.len() <= keep {
        return steps.to_vec();
    }
    let head = keep / 2;
    let tail = keep - head;
    let mut out = steps[..head].to_vec();
    out.push(format!("… {} more …", steps.len() - keep));
    out.extend_from_slice(&steps[steps.len() - tail..]);
    out
}
