//! `leakscope snapshot`: stream a heap snapshot of a live process to disk, safely.
//!
//! Chunks go straight to `FILE.partial` (never the whole snapshot in memory), which is renamed on success
//! and removed on any failure. A pre-flight check refuses (unless --force) when the target would likely
//! run out of memory: V8 needs about 2× the used heap while it builds the snapshot.

use super::args::SnapshotArgs;
use crate::output::{human_bytes, Exit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakscope_inspector::util::{interrupted, local_timestamp, memory_headroom};
use leakscope_inspector::{Error, Session, SnapshotOptions};
use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// Removes the `.partial` file unless the snapshot completed.
struct PartialFile {
    path: PathBuf,
    committed: bool,
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[derive(serde::Serialize)]
struct Taken {
    path: PathBuf,
    bytes: u64,
    secs: f64,
}

fn usage(message: String) -> anyhow::Error {
    anyhow::Error::new(Exit { code: 2, message, hint: None })
}

pub fn snapshot(args: &SnapshotArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let count = args.count.unwrap_or(if args.every.is_some() { 3 } else { 1 });
    if count == 0 {
        return Err(usage("--count must be at least 1".into()));
    }
    if count > 1 && args.every.is_none() {
        return Err(usage("--count N needs --every DURATION (the time between snapshots)".into()));
    }
    let mut session = super::attach(&args.target, quiet, args.json)?;
    let mut taken = Vec::new();
    let result = take_series(&mut session, args, quiet, count, &mut taken);
    if let Err(err) = result {
        let _ = session.close();
        report(&taken, args.json)?;
        return Err(err);
    }
    super::detach(session, quiet)?;
    report(&taken, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn report(taken: &[Taken], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "files": taken }))?);
        return Ok(());
    }
    if taken.is_empty() {
        return Ok(());
    }
    let quote = |p: &Path| {
        let s = p.display().to_string();
        if s.contains(' ') {
            format!("'{s}'")
        } else {
            s
        }
    };
    println!("\nnext:");
    println!("  leakscope summary {}", quote(&taken[taken.len() - 1].path));
    if taken.len() >= 2 {
        let all: Vec<String> = taken.iter().map(|t| quote(&t.path)).collect();
        println!("  leakscope leaks {}", all.join(" "));
    } else {
        println!("  (for leak finding take a series: leakscope snapshot … --every 30s --count 3)");
    }
    Ok(())
}

fn take_series(
    session: &mut Session,
    args: &SnapshotArgs,
    quiet: bool,
    count: u32,
    taken: &mut Vec<Taken>,
) -> anyhow::Result<()> {
    let script = session.proc_info().and_then(|p| p.script_name()).unwrap_or_else(|| "node".into());
    let pid = session.pid().unwrap_or(0);
    for k in 1..=count {
        let started = Instant::now();
        let path = output_path(args.output.as_deref(), count, k, &script, pid)?;
        preflight(session, args.force)?;
        let (bytes, secs) = take_one(session, &path, args.gc, quiet)?;
        if !args.json {
            println!("wrote {}: {} in {:.1} s", path.display(), human_bytes(bytes), secs);
        }
        taken.push(Taken { path, bytes, secs });
        if k < count {
            let every = args.every.unwrap_or_default();
            while started.elapsed() < every {
                if interrupted() {
                    return Err(super::to_exit(Error::Interrupted));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Ok(())
}

fn default_name(script: &str, pid: u32) -> String {
    format!("{script}-{pid}-{}.heapsnapshot", local_timestamp(SystemTime::now()))
}

/// Where snapshot `k` of `count` goes.
fn output_path(output: Option<&Path>, count: u32, k: u32, script: &str, pid: u32) -> anyhow::Result<PathBuf> {
    let path = match output {
        Some(out) if count == 1 && !out.is_dir() => out.to_path_buf(),
        Some(out) if out.is_dir() || out.to_string_lossy().ends_with('/') => {
            std::fs::create_dir_all(out).map_err(|e| usage(format!("cannot create {}: {e}", out.display())))?;
            out.join(default_name(script, pid))
        }
        Some(out) => {
            let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let ext = out.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
            out.with_file_name(format!("{stem}-{k}{ext}"))
        }
        None => PathBuf::from(default_name(script, pid)),
    };
    if output.is_none() && path.exists() {
        // Two snapshots within one second: keep both.
        return Ok(PathBuf::from(format!(
            "{}-{k}.heapsnapshot",
            path.to_string_lossy().trim_end_matches(".heapsnapshot")
        )));
    }
    Ok(path)
}

/// Refuses when about 2× heapUsed does not fit in MemAvailable or the target's cgroup headroom.
pub(crate) fn preflight(session: &mut Session, force: bool) -> anyhow::Result<()> {
    // Without a local pid (a tunnelled or remote inspector) we cannot see the target's memory limits.
    let Some(pid) = session.pid() else { return Ok(()) };
    let mem = session.memory_usage().map_err(|e| super::to_exit(session.explain(e)))?;
    let need = mem.heap_used.saturating_mul(2);
    let room = memory_headroom(Some(pid));
    let Some(available) = room.available() else { return Ok(()) };
    if need <= available {
        return Ok(());
    }
    let limit = match room.cgroup_limit {
        Some(limit) => {
            format!(" (cgroup limit {}, in use {})", human_bytes(limit), human_bytes(room.cgroup_usage.unwrap_or(0)))
        }
        None => String::new(),
    };
    let message = format!(
        "a heap snapshot needs about {} of extra memory in the target (2 × heapUsed {}), but only {} is available{limit}: the target would likely be OOM-killed",
        human_bytes(need),
        human_bytes(mem.heap_used),
        human_bytes(available),
    );
    if force {
        eprintln!("warning: {message}; going ahead because of --force");
        return Ok(());
    }
    Err(anyhow::Error::new(Exit {
        code: 3,
        message,
        hint: Some(
            "--force takes it anyway; the sampling heap profiler is far cheaper for finding what allocates".into(),
        ),
    }))
}

/// Streams one snapshot into `path` via `path.partial`; returns (bytes, seconds).
pub(crate) fn take_one(session: &mut Session, path: &Path, gc: bool, quiet: bool) -> anyhow::Result<(u64, f64)> {
    let partial = PathBuf::from(format!("{}.partial", path.display()));
    let file =
        std::fs::File::create(&partial).map_err(|e| usage(format!("cannot create {}: {e}", partial.display())))?;
    let mut guard = PartialFile { path: partial.clone(), committed: false };
    if gc {
        session.collect_garbage().map_err(|e| super::to_exit(session.explain(e)))?;
    }
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    } else {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    };
    bar.set_message("building snapshot (the target is paused)");
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let result = session.take_heap_snapshot(&mut out, &SnapshotOptions::default(), &mut |p| {
        if p.bytes_written > 0 {
            bar.set_message(format!("writing {}", human_bytes(p.bytes_written)));
        } else if p.total > 0 {
            bar.set_message(format!("building snapshot {}%", p.done * 100 / p.total.max(1)));
        }
        !interrupted()
    });
    bar.finish_and_clear();
    let stats = match result {
        Ok(stats) => stats,
        Err(err) => {
            drop(out);
            let err = session.explain(err);
            return Err(super::to_exit(err));
        }
    };
    let file = out.into_inner().map_err(|e| super::to_exit(Error::Write(e.into_error())))?;
    drop(file);
    if stats.bytes == 0 {
        return Err(super::to_exit(Error::BadReply("the snapshot was empty".into())));
    }
    std::fs::rename(&partial, path)
        .map_err(|e| usage(format!("cannot rename {} to {}: {e}", partial.display(), path.display())))?;
    guard.committed = true;
    Ok((stats.bytes, stats.elapsed.as_secs_f64()))
}
