//! `report`: the hunt report from files — snapshots, optionally a `.heapprofile` and a `watch --log`.

use super::args::ReportArgs;
use super::assemble::{assemble, Gathered};
use super::usage;
use crate::cmd::sampling::write_atomic;
use leakscope_profile::HeapProfile;
use leakscope_report::{MemoryPoint, Round, SnapshotRef, TargetInfo};
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::time::UNIX_EPOCH;

pub fn report(args: &ReportArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    crate::cmd::sampling::check_output_dir(Some(&args.output))?;
    let log = match &args.watch {
        Some(path) => Some(read_watch_log(path)?),
        None => None,
    };
    let profile = match &args.profile {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display()), None))?;
            let profile = HeapProfile::parse(&bytes)
                .map_err(|e| usage(format!("{}: not a .heapprofile: {e}", path.display()), None))?;
            Some((profile, Some(path.clone()), None))
        }
        None => None,
    };
    // Snapshot moments on the chart come from the files' modification times, relative to the log's clock.
    let origin_ms = log.as_ref().and_then(|l| l.origin_ms);
    let mut rounds = Vec::new();
    let mut previous = 0.0;
    for (i, path) in args.snapshots.iter().enumerate() {
        let meta = std::fs::metadata(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display()), None))?;
        let mtime_ms = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis());
        let at = match (origin_ms, mtime_ms) {
            (Some(origin), Some(mtime)) => (mtime as f64 - origin as f64) / 1000.0,
            _ => previous,
        };
        rounds.push(Round {
            index: i + 1,
            warm_up: false,
            started: previous,
            ended: at,
            work: String::from("(offline: not recorded)"),
            snapshot: Some(SnapshotRef {
                path: path.display().to_string(),
                bytes: meta.len(),
                at,
                heap_used_after_gc: None,
            }),
        });
        previous = at;
    }
    let mut notes =
        vec!["Made offline from files by `leakscope report`: the work done between snapshots was not recorded."
            .to_string()];
    if args.profile.is_none() {
        notes.push("No allocation profile given (--profile): findings have no allocation sites.".into());
    }
    let gathered = Gathered {
        target: TargetInfo {
            description: args.snapshots.last().map(|p| p.display().to_string()).unwrap_or_default(),
            pid: None,
            node_version: None,
        },
        drive: "unknown (offline report)".into(),
        rounds,
        memory: log.map(|l| l.points).unwrap_or_default(),
        snapshots: args.snapshots.clone(),
        profile,
        notes,
        files_kept: true,
        min_growth: args.min_growth,
    };
    let report = assemble(gathered, quiet)?;
    let html = leakscope_report::render_html(&report)?;
    write_atomic(&args.output, |out| Ok(out.write_all(html.as_bytes())?))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}: wrote {}", report.verdict(), args.output.display());
    }
    Ok(super::exit_code(&report))
}

struct WatchLog {
    points: Vec<MemoryPoint>,
    /// Wall-clock time of `t = 0`.
    origin_ms: Option<u64>,
}

/// Reads `watch --log` JSON lines (samples; the final verdict line has no `rss` and is skipped).
fn read_watch_log(path: &Path) -> anyhow::Result<WatchLog> {
    let file = std::fs::File::open(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display()), None))?;
    let mut points = Vec::new();
    let mut origin_ms = None;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| usage(format!("{}: line {}: {e}", path.display(), n + 1), None))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| usage(format!("{}: line {}: not JSON: {e}", path.display(), n + 1), None))?;
        let (Some(t), Some(rss)) = (value["t"].as_f64(), value["rss"].as_u64()) else { continue };
        let field = |name: &str| value[name].as_u64().unwrap_or(0);
        if origin_ms.is_none() {
            origin_ms = value["unix_ms"].as_u64().map(|ms| ms.saturating_sub((t * 1000.0) as u64));
        }
        points.push(MemoryPoint {
            t,
            rss,
            heap_total: field("heap_total"),
            heap_used: field("heap_used"),
            external: field("external"),
            array_buffers: field("array_buffers"),
        });
    }
    if points.is_empty() {
        return Err(usage(
            format!("{}: no memory samples (expected the JSON lines of `leakscope watch --log`)", path.display()),
            None,
        ));
    }
    Ok(WatchLog { points, origin_ms })
}
