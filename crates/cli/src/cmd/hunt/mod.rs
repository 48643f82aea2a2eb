//! `hunt`: one command from a running app to a leak report a person can read. Attach (or launch), warm up,
//! then per round: drive the app, force a GC, snapshot; memory is watched throughout and allocations are
//! sampled over the counted rounds. Then the leak analysis, allocation sites per finding, and the HTML report.
//! `report` does the analysis half offline; `demo` runs `hunt` against a bundled leaky app.

pub mod args;
mod assemble;
mod demo;
mod drive;
mod offline;

pub use demo::demo;
pub use offline::report;

use crate::cmd::live::{self, args::TargetArgs};
use crate::cmd::sampling::{shell_quote, write_atomic};
use crate::output::{human_bytes, Exit};
use args::{DriveArgs, HuntArgs};
use assemble::Gathered;
use drive::{Drive, HttpDrive, Request};
use leakscope_inspector::sampling::SamplingOptions;
use leakscope_inspector::util::{interrupted, local_timestamp};
use leakscope_inspector::{Error, Session};
use leakscope_profile::HeapProfile;
use leakscope_report::{HuntReport, MemoryPoint, Round, SnapshotRef, TargetInfo};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// How often memory is read while the app works.
const MEMORY_EVERY: Duration = Duration::from_millis(250);
/// Bound on fetching the sampling profile (the target serializes it on its main thread).
const PROFILE_TIMEOUT: Duration = Duration::from_secs(60);

fn usage(message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    anyhow::Error::new(Exit { code: 2, message: message.into(), hint: hint.map(String::from) })
}

/// One hunt, however it was asked for (`hunt` flags or `demo`).
pub(crate) struct Plan {
    pub target: TargetArgs,
    pub drive: Drive,
    pub startup_timeout: Duration,
    pub rounds: usize,
    pub report: PathBuf,
    pub keep: Option<PathBuf>,
    pub json: bool,
    pub sample_interval: u64,
    pub min_growth: u64,
    pub force: bool,
}

pub fn hunt(args: &HuntArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let plan = Plan {
        target: args.target.clone(),
        drive: drive_of(&args.drive)?,
        startup_timeout: args.drive.startup_timeout,
        rounds: args.rounds,
        report: args.report.clone(),
        keep: args.keep.clone(),
        json: args.json,
        sample_interval: args.sample_interval,
        min_growth: args.min_growth,
        force: args.force,
    };
    run(&plan, quiet).map(|report| exit_code(&report))
}

pub(crate) fn exit_code(report: &HuntReport) -> ExitCode {
    if report.leaks.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn drive_of(args: &DriveArgs) -> anyhow::Result<Drive> {
    if !args.urls.is_empty() {
        let requests = args
            .urls
            .iter()
            .map(|u| Request::parse(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| usage(format!("--url: {e}"), None))?;
        if args.requests == 0 || args.concurrency == 0 {
            return Err(usage("--requests and --concurrency must be at least 1", None));
        }
        let body = match &args.body {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| usage(format!("cannot read --body {}: {e}", path.display()), None))?,
            ),
            None => None,
        };
        let headers = args
            .headers
            .iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| usage(format!("--header `{h}` is not `NAME: VALUE`"), None))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok(Drive::Http(HttpDrive {
            requests,
            per_round: args.requests,
            concurrency: args.concurrency,
            body,
            headers,
            timeout: Duration::from_secs(30),
        }));
    }
    if let Some(command) = &args.load {
        return Ok(Drive::Shell(command.clone()));
    }
    if let Some(wait) = args.wait {
        return Ok(Drive::Wait(wait));
    }
    Err(usage(
        "hunt needs a way to make the app work between snapshots: --url, --load or --wait",
        Some(
            "--url http://127.0.0.1:3000/ for a web service, --load 'npm test' for any command, --wait 30s for an \
             app that grows by itself",
        ),
    ))
}

/// The directory snapshots go to; a temporary one is removed when dropped.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn new(keep: Option<&Path>) -> anyhow::Result<WorkDir> {
        let (path, keep) = match keep {
            Some(dir) => (dir.to_path_buf(), true),
            None => (
                std::env::temp_dir().join(format!(
                    "leakscope-hunt-{}-{}",
                    std::process::id(),
                    local_timestamp(SystemTime::now())
                )),
                false,
            ),
        };
        std::fs::create_dir_all(&path).map_err(|e| usage(format!("cannot create {}: {e}", path.display()), None))?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Progress lines on stderr (hidden with --quiet).
struct Progress {
    quiet: bool,
}

impl Progress {
    fn say(&self, text: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", text.as_ref());
        }
    }
}

pub(crate) fn run(plan: &Plan, quiet: bool) -> anyhow::Result<HuntReport> {
    if plan.rounds < 2 {
        return Err(usage("--rounds must be at least 2: leak finding compares snapshots taken after each round", None));
    }
    crate::cmd::sampling::check_output_dir(Some(&plan.report))?;
    let progress = Progress { quiet };
    let work_dir = WorkDir::new(plan.keep.as_deref())?;
    let mut session = live::attach(&plan.target, quiet, true)?;
    let gathered = match drive_and_snapshot(&mut session, plan, &work_dir, &progress) {
        Ok(gathered) => gathered,
        Err(err) => {
            let _ = session.close();
            return Err(err);
        }
    };
    live::detach(session, quiet)?;
    progress.say(format!("analysing {} snapshots …", gathered.snapshots.len()));
    let report = assemble::assemble(gathered, true)?;
    let html = leakscope_report::render_html(&report)?;
    write_atomic(&plan.report, |out| Ok(out.write_all(html.as_bytes())?))?;
    if plan.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        // Without --keep the snapshots are gone when this prints: no follow-up commands on them.
        let files: Vec<PathBuf> = match work_dir.keep {
            true => report.rounds.iter().filter_map(|r| r.snapshot.as_ref().map(|s| PathBuf::from(&s.path))).collect(),
            false => Vec::new(),
        };
        crate::cmd::leaks::print_report(&report.leaks, &files);
        print_sites(&report);
        println!("report: {}", plan.report.display());
        if !work_dir.keep {
            println!("(snapshots were deleted; add --keep DIR to keep them for `leakscope retainers`, `diff`, …)");
        }
    }
    Ok(report)
}

/// Where each finding's objects are allocated, from the sampling profile (the report has the full table).
fn print_sites(report: &HuntReport) {
    let Some(profile) = &report.profile else { return };
    let mut printed = false;
    for (finding, sites) in report.leaks.findings.iter().zip(&report.finding_sites) {
        let Some(site) = sites.first() else { continue };
        if !printed {
            println!(
                "Allocation sites (sampling profiler, one sample per {}; live bytes are estimates):",
                human_bytes(profile.interval)
            );
            printed = true;
        }
        let frames: Vec<&str> = site.frames.iter().take(3).map(String::as_str).collect();
        println!(
            "  #{} {}: {} ≈ {} live (±{:.0}%)",
            finding.rank,
            finding.container.class,
            frames.join(" ← "),
            human_bytes(site.bytes),
            (site.relative_error * 100.0).min(100.0)
        );
    }
    if printed {
        println!();
    }
}

fn drive_and_snapshot(
    session: &mut Session,
    plan: &Plan,
    work_dir: &WorkDir,
    progress: &Progress,
) -> anyhow::Result<Gathered> {
    let started = Instant::now();
    // The wall-clock time of `started`, so the memory log carries absolute times as `watch --log` does.
    let started_unix_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let pid = session.pid();
    let node_version = session.evaluate("process.version").ok().and_then(|v| v.as_str().map(String::from));
    let description = if plan.target.command.is_empty() {
        match (pid, &plan.target.inspect) {
            (Some(pid), _) => {
                let command = session.proc_info().map(|p| p.command()).unwrap_or_default();
                format!("pid {pid} {command}").trim_end().to_string()
            }
            (None, Some(hp)) => format!("inspector at {hp}"),
            (None, None) => session.ws_url().to_string(),
        }
    } else {
        plan.target.command.join(" ")
    };
    progress.say(format!(
        "hunting in {description}{}: warm-up + {} rounds, {}",
        node_version.as_deref().map(|v| format!(" (node {v})")).unwrap_or_default(),
        plan.rounds,
        plan.drive.describe()
    ));
    if let Drive::Http(http) = &plan.drive {
        drive::wait_until_listening(&http.requests[0], plan.startup_timeout).map_err(|e| {
            anyhow::Error::new(Exit {
                code: 3,
                message: e,
                hint: Some("is --url the port the app listens on? --startup-timeout waits longer".into()),
            })
        })?;
    }
    let mut memory = Vec::new();
    let mut rounds = Vec::new();
    let mut snapshots = Vec::new();
    let mut notes = Vec::new();
    let mut sampling = false;
    for index in 0..=plan.rounds {
        let label = if index == 0 { "warm-up".to_string() } else { format!("round {index}/{}", plan.rounds) };
        if index == 1 && plan.sample_interval > 0 {
            let options =
                SamplingOptions { interval: plan.sample_interval, stack_depth: 128, include_collected: false };
            match session.start_sampling(&options) {
                Ok(()) => sampling = true,
                Err(e) => notes.push(format!("allocation sampling could not start ({e}); no allocation sites")),
            }
        }
        let round_started = started.elapsed().as_secs_f64();
        let work = std::thread::scope(|scope| -> anyhow::Result<drive::RoundWork> {
            let handle = scope.spawn(|| plan.drive.run_round(index, pid));
            while !handle.is_finished() {
                read_memory(session, started, &mut memory, index)?;
                let until = Instant::now() + MEMORY_EVERY;
                while Instant::now() < until && !handle.is_finished() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Ok(handle.join().expect("drive thread"))
        })?;
        if work.interrupted || interrupted() {
            return Err(live::to_exit(Error::Interrupted));
        }
        let summary = work.describe(&plan.drive);
        if let Drive::Http(_) = plan.drive {
            if work.ok == 0 {
                return Err(anyhow::Error::new(Exit {
                    code: 3,
                    message: format!(
                        "{label}: none of {} requests succeeded ({})",
                        work.sent,
                        work.first_error.as_deref().unwrap_or("no answer")
                    ),
                    hint: Some("check the --url; the app's own output is on stderr above".into()),
                }));
            }
        }
        if let Some(error) = &work.first_error {
            notes.push(format!("{label}: {error}"));
        }
        let mut round = Round {
            index,
            warm_up: index == 0,
            started: round_started,
            ended: started.elapsed().as_secs_f64(),
            work: summary.clone(),
            snapshot: None,
        };
        if index == 0 {
            progress.say(format!("{label}: {summary}"));
            rounds.push(round);
            continue;
        }
        session.collect_garbage().map_err(|e| live::to_exit(session.explain(e)))?;
        let after_gc = session.memory_usage().ok();
        if let Some(mem) = after_gc {
            memory.push(point(started, &mem));
        }
        live::preflight(session, plan.force)?;
        let path = work_dir.path.join(format!("s{index}.heapsnapshot"));
        let at = started.elapsed().as_secs_f64();
        let (bytes, secs) = live::take_one(session, &path, false, progress.quiet)?;
        progress.say(format!(
            "{label}: {summary}; snapshot {} in {secs:.1} s (heapUsed after GC {})",
            human_bytes(bytes),
            after_gc.map_or("?".into(), |m| human_bytes(m.heap_used))
        ));
        round.snapshot = Some(SnapshotRef {
            path: path.display().to_string(),
            bytes,
            at,
            heap_used_after_gc: after_gc.map(|m| m.heap_used),
        });
        round.ended = started.elapsed().as_secs_f64();
        rounds.push(round);
        snapshots.push(path);
    }
    let profile = if sampling { finish_sampling(session, work_dir, &mut notes) } else { None };
    let profile = profile.map(|(p, path)| (p, Some(path), Some(plan.sample_interval)));
    write_memory_log(&work_dir.path.join("memory.jsonl"), &memory, started_unix_ms);
    Ok(Gathered {
        target: TargetInfo { description, pid, node_version },
        drive: plan.drive.describe(),
        rounds,
        memory,
        snapshots,
        profile,
        notes,
        files_kept: work_dir.keep,
        min_growth: plan.min_growth,
    })
}

fn point(started: Instant, mem: &leakscope_inspector::MemoryUsage) -> MemoryPoint {
    MemoryPoint {
        t: started.elapsed().as_secs_f64(),
        rss: mem.rss,
        heap_total: mem.heap_total,
        heap_used: mem.heap_used,
        external: mem.external,
        array_buffers: mem.array_buffers,
    }
}

/// Reads `process.memoryUsage()`; a target that went away ends the hunt with a clear error.
fn read_memory(
    session: &mut Session,
    started: Instant,
    memory: &mut Vec<MemoryPoint>,
    round: usize,
) -> anyhow::Result<()> {
    match session.memory_usage() {
        Ok(mem) => {
            memory.push(point(started, &mem));
            Ok(())
        }
        Err(err) if err.is_disconnect() || session.is_closed() => {
            let err = session.explain(err);
            Err(anyhow::Error::new(Exit {
                code: 3,
                message: format!("the target went away during round {round}: {err}"),
                hint: Some("the app's own output (on stderr above) may say why".into()),
            }))
        }
        // A slow answer (the app is busy) only costs one point of the chart.
        Err(_) => Ok(()),
    }
}

/// Reads the final sampling profile and stops sampling; the profile is written to the work directory.
fn finish_sampling(
    session: &mut Session,
    work_dir: &WorkDir,
    notes: &mut Vec<String>,
) -> Option<(HeapProfile, PathBuf)> {
    let text = match session.finish_sampling(PROFILE_TIMEOUT) {
        Ok((text, stop_error)) => {
            if let Some(e) = stop_error {
                notes.push(format!("stopping the sampling profiler failed ({e}); it may still run in the target"));
            }
            text
        }
        Err(e) => {
            notes.push(format!("the allocation profile could not be read ({e})"));
            let _ = session.stop_sampling(PROFILE_TIMEOUT);
            return None;
        }
    };
    let profile = match HeapProfile::parse(text.as_bytes()) {
        Ok(profile) => profile,
        Err(e) => {
            notes.push(format!("the allocation profile the target sent is unreadable ({e})"));
            return None;
        }
    };
    let path = work_dir.path.join("rounds.heapprofile");
    if let Err(e) = write_atomic(&path, |w| Ok(profile.write_json(w)?)) {
        notes.push(format!("could not write {}: {e}", shell_quote(&path)));
    }
    Some((profile, path))
}

/// The memory samples as JSON lines, in the shape `leakscope watch --log` writes (so `report --watch` reads
/// them back). Best effort: the report does not depend on it.
fn write_memory_log(path: &Path, memory: &[MemoryPoint], started_unix_ms: u64) {
    let _ = write_atomic(path, |out| {
        for p in memory {
            let line = serde_json::json!({
                "t": p.t,
                "unix_ms": started_unix_ms + (p.t * 1000.0) as u64,
                "rss": p.rss,
                "heap_total": p.heap_total,
                "heap_used": p.heap_used,
                "external": p.external,
                "array_buffers": p.array_buffers,
            });
            writeln!(out, "{line}")?;
        }
        Ok(())
    });
}
