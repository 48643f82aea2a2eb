//! `leakscope timeline`: DevTools' "allocation instrumentation on timeline" from the command line.
//!
//! `HeapProfiler.startTrackingHeapObjects{trackAllocations: true}` records the stack of every allocation;
//! while it runs, V8 reports `heapStatsUpdate` (per time interval: objects allocated in it that are still
//! alive, count and size) and `lastSeenObjectId` about every 50 ms — the allocation-rate series.
//! `stopTrackingHeapObjects` then streams a snapshot (after a GC) whose nodes carry a `trace_node_id` into the
//! `trace_tree` / `trace_function_infos` sections: the objects allocated during the interval that survived,
//! each with its allocation stack. They are grouped bottom-up (by allocating function, then by its callers)
//! with counts, sizes and retained sizes (`leakscope_heap::Analysis`). The snapshot is kept, so every
//! snapshot command works on it.

use super::args::TimelineArgs;
use super::{shell_quote, temp_path, usage};
use crate::cmd::live;
use crate::output::{human_bytes, Exit, Table};
use anyhow::Context;
use leakscope_heap::inspect::allocation::{allocated_by, AllocationError, AllocationStacks, GroupBy};
use leakscope_heap::{Analysis, HeapSnapshot};
use leakscope_inspector::util::{interrupted, local_timestamp};
use leakscope_inspector::{Error, Event, Session};
use serde::Serialize;
use serde_json::Value;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// One of V8's time intervals (about 50 ms each while tracking).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Interval {
    pub index: u64,
    /// Milliseconds since tracking started, at the end of the interval (from `lastSeenObjectId`).
    pub end_ms: f64,
    pub last_seen_object_id: u64,
    /// First report: objects allocated in the interval (those that died before the first report are missed).
    pub allocated_count: u64,
    pub allocated_bytes: u64,
    /// Latest report: how many of them are still alive.
    pub live_count: u64,
    pub live_bytes: u64,
}

/// A surviving allocation stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackGroup {
    /// `function file:line:column`, allocating function first.
    pub frames: Vec<String>,
    pub count: u64,
    pub bytes: u64,
}

/// Survivors grouped by allocating function.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionGroup {
    /// `function file:line:column` of the allocating function.
    pub function: String,
    pub count: u64,
    /// Sum of the objects' shallow sizes (as `summary` shows them).
    pub bytes: u64,
    /// Memory freed if all of them went away (their retained sizes, nested ones counted once).
    pub retained_bytes: u64,
    /// Heaviest stacks, allocating frame first.
    pub stacks: Vec<StackGroup>,
}

#[derive(Debug, Serialize)]
struct TimelineReport<'a> {
    snapshot: &'a Path,
    duration_s: f64,
    interrupted: bool,
    surviving_count: u64,
    surviving_bytes: u64,
    groups: &'a [FunctionGroup],
    series: &'a [Interval],
}

/// Collects `heapStatsUpdate` / `lastSeenObjectId` into intervals.
#[derive(Default)]
struct Series {
    intervals: Vec<Interval>,
    start_ms: Option<f64>,
    /// `lastSeenObjectId` events so far: the k-th closes interval k.
    closed: u64,
}

impl Series {
    fn at(&mut self, index: u64) -> Option<&mut Interval> {
        let i = usize::try_from(index).ok()?;
        if i > 1_000_000 {
            return None; // a runaway index: ignore rather than allocate
        }
        if self.intervals.len() <= i {
            self.intervals.resize_with(i + 1, Interval::default);
            for (k, iv) in self.intervals.iter_mut().enumerate() {
                iv.index = k as u64;
            }
        }
        self.intervals.get_mut(i)
    }

    fn on_event(&mut self, event: &Event) {
        match event.method.as_str() {
            "HeapProfiler.heapStatsUpdate" => {
                let Some(update) = event.params.get("statsUpdate").and_then(Value::as_array) else { return };
                for triplet in update.chunks_exact(3) {
                    let (Some(index), Some(count), Some(size)) =
                        (triplet[0].as_u64(), triplet[1].as_u64(), triplet[2].as_u64())
                    else {
                        continue;
                    };
                    if let Some(iv) = self.at(index) {
                        if iv.allocated_count == 0 && iv.allocated_bytes == 0 {
                            iv.allocated_count = count;
                            iv.allocated_bytes = size;
                        }
                        iv.live_count = count;
                        iv.live_bytes = size;
                    }
                }
            }
            "HeapProfiler.lastSeenObjectId" => {
                let id = event.params.get("lastSeenObjectId").and_then(Value::as_u64).unwrap_or(0);
                let ts = event.params.get("timestamp").and_then(Value::as_f64).unwrap_or(0.0);
                let start = *self.start_ms.get_or_insert(ts);
                // V8 opens a new interval at every stats push and ends the push with lastSeenObjectId.
                let index = self.closed;
                self.closed += 1;
                if let Some(iv) = self.at(index) {
                    iv.last_seen_object_id = id;
                    iv.end_ms = ts - start;
                }
            }
            _ => {}
        }
    }
}

pub fn timeline(args: &TimelineArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    super::check_output_dir(args.output.as_deref())?;
    let mut session = live::attach(&args.target, quiet, args.json)?;
    let script = session.proc_info().and_then(|p| p.script_name()).unwrap_or_else(|| "node".into());
    let pid = session.pid().unwrap_or(0);
    let path = args.output.clone().unwrap_or_else(|| {
        PathBuf::from(format!("{script}-{pid}-{}.timeline.heapsnapshot", local_timestamp(SystemTime::now())))
    });
    let mut series = Series::default();
    let started = Instant::now();
    let tracked = track(&mut session, args, &path, &mut series, quiet);
    let elapsed = started.elapsed();
    let was_interrupted = match tracked {
        Ok(i) => i,
        Err(err) => {
            let _ = session.close();
            return Err(err);
        }
    };
    live::detach(session, quiet)?;

    let (snapshot, analysis) = crate::load::open(&path, false, quiet)?;
    let groups = group_survivors(&snapshot, &analysis).map_err(|_| {
        anyhow::Error::new(Exit {
            code: 3,
            message: format!("{} has no allocation trace (trace_tree)", path.display()),
            hint: Some("the target's V8 did not record allocation stacks; try a newer Node".into()),
        })
    })?;
    let surviving_count = groups.iter().map(|g| g.count).sum();
    let surviving_bytes = groups.iter().map(|g| g.bytes).sum();
    let shown: Vec<FunctionGroup> = if args.top == 0 { groups } else { groups.into_iter().take(args.top).collect() };
    // Drop V8's interval 0: it holds everything that existed before tracking started.
    let series: Vec<Interval> = series.intervals.into_iter().skip(1).collect();
    let mut out = String::new();
    if args.json {
        let report = TimelineReport {
            snapshot: &path,
            duration_s: elapsed.as_secs_f64(),
            interrupted: was_interrupted,
            surviving_count,
            surviving_bytes,
            groups: &shown,
            series: &series,
        };
        outln!(out, "{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&mut out, &path, elapsed, was_interrupted, surviving_count, surviving_bytes, &shown, &series);
    }
    super::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Starts tracking, collects the series until the duration ends (or Ctrl-C), then streams the snapshot into
/// `path` (via a temporary file). Returns whether Ctrl-C ended it.
fn track(
    session: &mut Session,
    args: &TimelineArgs,
    path: &Path,
    series: &mut Series,
    quiet: bool,
) -> anyhow::Result<bool> {
    session.start_tracking_heap_objects(true).map_err(|e| live::to_exit(session.explain(e)))?;
    if !quiet {
        eprintln!(
            "tracking allocations in pid {} for {:.0} s (every allocation's stack is recorded: the target runs \
             slower meanwhile); Ctrl-C stops early",
            session.pid().unwrap_or(0),
            args.duration.as_secs_f64()
        );
    }
    let started = Instant::now();
    while !interrupted() && started.elapsed() < args.duration {
        let wait = args.duration.saturating_sub(started.elapsed()).min(Duration::from_millis(200));
        match session.next_event(wait) {
            Ok(Some(event)) => series.on_event(&event),
            Ok(None) => {}
            Err(err) => return Err(live::to_exit(session.explain(err))),
        }
    }
    let was_interrupted = interrupted();
    for event in session.drain_events() {
        series.on_event(&event);
    }
    if !quiet {
        eprintln!("stopping and writing the snapshot with allocation stacks to {}", path.display());
    }
    let tmp = temp_path(path);
    let result = (|| -> anyhow::Result<()> {
        let file = File::create(&tmp).map_err(|e| usage(format!("cannot create {}: {e}", tmp.display())))?;
        let mut out = BufWriter::new(file);
        session
            .stop_tracking_heap_objects(&mut out, Duration::from_secs(120), &mut |event| {
                series.on_event(event);
                Ok(())
            })
            .map_err(|e| match e {
                Error::Write(io) => usage(format!("writing {}: {io}", tmp.display())),
                other => live::to_exit(other),
            })?;
        let file = out.into_inner().map_err(|e| usage(format!("writing {}: {}", tmp.display(), e.error())))?;
        file.sync_all().with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|_| was_interrupted)
}

/// Survivors grouped by allocating function, heaviest first, each with its heaviest stacks
/// (`leakscope_heap::inspect::allocation`).
pub fn group_survivors(snapshot: &HeapSnapshot, analysis: &Analysis) -> Result<Vec<FunctionGroup>, AllocationError> {
    let stacks = AllocationStacks::new(snapshot)?;
    let result = allocated_by(snapshot, analysis, GroupBy::Function)?;
    let mut groups: Vec<FunctionGroup> = result
        .groups
        .into_iter()
        .map(|g| {
            let mut shares = g.stacks;
            shares.sort_by(|a, b| b.shallow.cmp(&a.shallow).then(b.count.cmp(&a.count)));
            FunctionGroup {
                function: stacks.frame(g.function).to_string(),
                count: g.count,
                bytes: g.shallow,
                retained_bytes: g.retained,
                stacks: shares
                    .iter()
                    .take(5)
                    .map(|s| StackGroup {
                        frames: stacks.stack_of_site(s.site).iter().map(|f| f.to_string()).collect(),
                        count: s.count,
                        bytes: s.shallow,
                    })
                    .collect(),
            }
        })
        .collect();
    groups.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.retained_bytes.cmp(&a.retained_bytes)));
    Ok(groups)
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    out: &mut String,
    path: &Path,
    elapsed: Duration,
    was_interrupted: bool,
    count: u64,
    bytes: u64,
    groups: &[FunctionGroup],
    series: &[Interval],
) {
    outln!(
        out,
        "tracked allocations for {:.1} s{}: {} objects ({}) allocated meanwhile are still alive",
        elapsed.as_secs_f64(),
        if was_interrupted { " (stopped by Ctrl-C)" } else { "" },
        count,
        human_bytes(bytes)
    );
    if !series.is_empty() {
        // About ten rows: V8 reports an interval every ~50 ms.
        let per_row = series.len().div_ceil(10).max(1);
        outln!(out, "\nallocations over time (per V8 interval group; 'alive' = still alive now):");
        let mut table =
            Table::new(&[("until", true), ("allocated", true), ("objects", true), ("alive", true), ("objects", true)]);
        for rows in series.chunks(per_row) {
            let end = rows.last().map(|r| r.end_ms).unwrap_or(0.0);
            table.row(vec![
                format!("{:.1} s", end / 1000.0),
                human_bytes(rows.iter().map(|r| r.allocated_bytes).sum()),
                rows.iter().map(|r| r.allocated_count).sum::<u64>().to_string(),
                human_bytes(rows.iter().map(|r| r.live_bytes).sum()),
                rows.iter().map(|r| r.live_count).sum::<u64>().to_string(),
            ]);
        }
        out.push_str(&table.render());
    }
    if groups.is_empty() {
        outln!(out, "\nnothing allocated during the interval survived (no leak from new allocations)");
    } else {
        outln!(out, "\nsurviving allocations by allocating function (bottom-up):");
        for (i, g) in groups.iter().enumerate() {
            outln!(
                out,
                "{:>3}. {}  {} objects, {} (retained {})",
                i + 1,
                g.function.replace("file://", ""),
                g.count,
                human_bytes(g.bytes),
                human_bytes(g.retained_bytes)
            );
            for s in g.stacks.iter().take(3) {
                let callers: Vec<String> = s.frames.iter().skip(1).take(6).map(|f| f.replace("file://", "")).collect();
                let via = if callers.is_empty() { "(top level)".to_string() } else { callers.join(" ← ") };
                outln!(out, "       {} objects, {}: ← {via}", s.count, human_bytes(s.bytes));
            }
        }
    }
    outln!(out, "\nnext:");
    outln!(out, "  leakscope summary {} --allocated-by --sort count", shell_quote(path));
    outln!(out, "  leakscope dominators {}", shell_quote(path));
    outln!(out, "  (or load {} in Chrome DevTools → Memory → Load profile)", shell_quote(path));
}
