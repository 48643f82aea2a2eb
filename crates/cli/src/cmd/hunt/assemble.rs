//! Turns what a hunt gathered (snapshot files, a sampling profile, memory samples) into a [`HuntReport`].
//! Shared by `hunt` (live) and `report` (offline, from files).

use crate::cmd::leaks::{analyse_series, Series};
use crate::cmd::sampling::shell_quote;
use leakscope_leaks::{Finding, LeakOptions};
use leakscope_profile::{relative_error, HeapProfile, ProfileAnalysis};
use leakscope_report::{AllocationSite, ClassRow, HuntReport, MemoryPoint, ProfileSummary, Round, TargetInfo};
use std::path::{Path, PathBuf};

/// How many frames from the allocating one a stack is searched for a finding's code: deeper frames are
/// shared by every allocation (the server loop, the framework), so they say nothing about this finding.
const MATCH_DEPTH: usize = 4;

pub(crate) struct Gathered {
    pub target: TargetInfo,
    pub drive: String,
    pub rounds: Vec<Round>,
    pub memory: Vec<MemoryPoint>,
    /// Snapshot files, oldest first (two or more).
    pub snapshots: Vec<PathBuf>,
    /// The sampling profile over the counted rounds, the file it is in, and the interval it was taken with.
    pub profile: Option<(HeapProfile, Option<PathBuf>, Option<u64>)>,
    pub notes: Vec<String>,
    /// The snapshot files are deleted after the report (no --keep): do not suggest commands on them.
    pub files_kept: bool,
    pub min_growth: u64,
}

pub(crate) fn assemble(gathered: Gathered, quiet: bool) -> anyhow::Result<HuntReport> {
    let options = LeakOptions { min_growth_bytes: gathered.min_growth, ..LeakOptions::default() };
    let Series { report: leaks, snapshot, analysis } = analyse_series(&gathered.snapshots, false, &options, quiet)?;

    let mut classes = analysis.summary(&snapshot);
    classes.sort_by(|a, b| b.retained.cmp(&a.retained).then(b.shallow.cmp(&a.shallow)));
    let top_classes = classes
        .iter()
        .take(15)
        .map(|c| ClassRow {
            class: analysis.classes.name(&snapshot, c.class).to_string(),
            count: c.count,
            shallow: c.shallow,
            retained: c.retained,
        })
        .collect();

    let mut finding_sites = Vec::new();
    let profile = gathered.profile.as_ref().map(|(profile, path, interval)| {
        let stats = ProfileAnalysis::new(profile, *interval, false);
        let sites = allocation_sites(profile, &stats);
        finding_sites = leaks.findings.iter().map(|f| sites_of_finding(f, &sites)).collect();
        let stack_profile = stats.to_stack_profile(profile);
        let mut svg = Vec::new();
        let flamegraph_svg = stack_profile
            .write_flamegraph(1, "Live allocations during the rounds (sampled)", &mut svg)
            .ok()
            .and_then(|_| String::from_utf8(svg).ok());
        ProfileSummary {
            path: path.as_ref().map(|p| p.display().to_string()),
            interval: stats.interval,
            samples: stats.samples,
            total_bytes: stats.total_bytes,
            relative_error: stats.relative_error(),
            top_sites: sites.iter().take(12).map(|s| s.site.clone()).collect(),
            flamegraph_svg,
        }
    });

    let mut next_commands = Vec::new();
    if gathered.files_kept {
        let last = gathered.snapshots.last().expect("two or more snapshots");
        let all: Vec<String> = gathered.snapshots.iter().map(|p| shell_quote(p)).collect();
        next_commands.push(format!("leakscope leaks {}", all.join(" ")));
        for f in leaks.findings.iter().take(3) {
            next_commands.push(format!("leakscope retainers {} @{}", shell_quote(last), f.container.id));
        }
        if let Some(f) = leaks.findings.first() {
            if let Some(r) = &f.representative {
                next_commands.push(format!("leakscope show {} @{}", shell_quote(last), r.id));
            }
        }
        next_commands.push(format!("leakscope summary {} --top 30", shell_quote(last)));
        if let [.., before, after] = gathered.snapshots.as_slice() {
            next_commands.push(format!("leakscope diff {} {}", shell_quote(before), shell_quote(after)));
        }
        if let Some((_, Some(path), _)) = &gathered.profile {
            next_commands.push(format!("leakscope profile {} --top 30", shell_quote(path)));
        }
    }

    let created_unix_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Ok(HuntReport {
        tool: format!("leakscope {}", env!("CARGO_PKG_VERSION")),
        created_unix_ms,
        target: gathered.target,
        drive: gathered.drive,
        rounds: gathered.rounds,
        memory: gathered.memory,
        leaks,
        finding_sites,
        profile,
        top_classes,
        next_commands,
        notes: gathered.notes,
    })
}

/// An allocation stack with its frames kept structured for matching.
struct Site {
    site: AllocationSite,
    /// (function, file without `file://`), allocating frame first.
    frames: Vec<(String, String)>,
}

fn allocation_sites(profile: &HeapProfile, stats: &ProfileAnalysis) -> Vec<Site> {
    stats
        .stacks(profile)
        .into_iter()
        .map(|s| {
            let mut frames: Vec<(String, String)> = profile
                .stack(s.node)
                .iter()
                .map(|f| (f.function_name.clone(), f.url.trim_start_matches("file://").to_string()))
                .collect();
            frames.reverse();
            Site {
                site: AllocationSite {
                    frames: s.frames,
                    bytes: s.bytes,
                    objects: s.objects,
                    samples: s.samples,
                    relative_error: relative_error(s.samples),
                },
                frames,
            }
        })
        .collect()
}

fn same_file(a: &str, b: &str) -> bool {
    !a.is_empty() && !b.is_empty() && (a == b || Path::new(a).file_name() == Path::new(b).file_name() && a.ends_with(b))
}

/// The allocation stacks that run through the code a finding names, largest first. Tried in order: the
/// functions it holds or whose objects it holds (listeners, constructors), then closures on its retaining
/// path (often framework code, like a server's request handler), then any stack allocating in one of its
/// files. The sampling profile knows stacks, not objects, so this is a match by code, not by object.
fn sites_of_finding(finding: &Finding, sites: &[Site]) -> Vec<AllocationSite> {
    let code = |on_path: bool| -> Vec<(&str, &str)> {
        finding
            .source
            .iter()
            .filter(|s| (s.role == "closure-on-path") == on_path)
            .filter_map(|s| s.file.as_deref().map(|file| (s.function.as_str(), file.trim_start_matches("file://"))))
            .collect()
    };
    let calls = |code: &[(&str, &str)], site: &Site| {
        site.frames.iter().take(MATCH_DEPTH).any(|(function, file)| {
            code.iter().any(|(f, path)| !f.is_empty() && f == function && same_file(file, path))
        })
    };
    let (held, on_path) = (code(false), code(true));
    let all: Vec<(&str, &str)> = held.iter().chain(&on_path).copied().collect();
    let tiers: [&dyn Fn(&Site) -> bool; 3] = [&|s| calls(&held, s), &|s| calls(&on_path, s), &|s| {
        s.frames.first().is_some_and(|(_, file)| all.iter().any(|(_, path)| same_file(file, path)))
    }];
    for tier in tiers {
        let chosen: Vec<AllocationSite> = sites.iter().filter(|s| tier(s)).take(3).map(|s| s.site.clone()).collect();
        if !chosen.is_empty() {
            return chosen;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::same_file;

    #[test]
    fn files_match_by_path_not_just_name() {
        assert!(same_file("/app/src/cache.js", "/app/src/cache.js"));
        assert!(!same_file("/app/src/cache.js", "/app/lib/cache.js"));
        assert!(!same_file("", "/app/cache.js"));
    }
}
