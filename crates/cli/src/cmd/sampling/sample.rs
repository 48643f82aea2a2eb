//! `leakscope sample`: run V8's sampling heap profiler in a live process for a while and write the profile.
//!
//! The interval is always sent explicitly (512 KiB by default, as `node --heap-prof`; the protocol's own
//! default is 32 KiB). While sampling, a checkpoint of the profile is fetched every few seconds, so a target
//! that exits early still leaves a profile. Ctrl-C ends sampling early and everything is still written.

use super::args::SampleArgs;
use super::{report, shell_quote, usage, write_atomic};
use crate::cmd::live;
use crate::output::human_bytes;
use anyhow::Context;
use leakscope_inspector::sampling::SamplingOptions;
use leakscope_inspector::util::{interrupted, local_timestamp};
use leakscope_inspector::Session;
use leakscope_profile::{HeapProfile, ProfileAnalysis};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// How often a checkpoint of the profile is fetched while sampling.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// Bound on fetching one profile (the target serializes it on its main thread).
const PROFILE_TIMEOUT: Duration = Duration::from_secs(60);

/// How sampling ended.
enum Ended {
    /// Duration reached or Ctrl-C: the final profile was fetched.
    Complete { interrupted: bool },
    /// The target went away: the last checkpoint is all we have.
    TargetGone { error: String },
}

pub fn sample(args: &SampleArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    if args.interval == 0 {
        return Err(usage("--interval must be at least 1 byte"));
    }
    if args.stack_depth == 0 {
        return Err(usage("--stack-depth must be at least 1"));
    }
    for out in [&args.output, &args.outputs.pprof, &args.outputs.flamegraph, &args.outputs.folded] {
        super::check_output_dir(out.as_deref())?;
    }
    let mut session = live::attach(&args.target, quiet, args.outputs.json)?;
    let script = session.proc_info().and_then(|p| p.script_name()).unwrap_or_else(|| "node".into());
    let pid = session.pid().unwrap_or(0);
    let options = SamplingOptions {
        interval: args.interval,
        stack_depth: args.stack_depth,
        include_collected: args.include_collected,
    };
    let started = Instant::now();
    let run = run_sampling(&mut session, args, &options, quiet);
    let elapsed = started.elapsed();
    let (text, ended) = match run {
        Ok(pair) => pair,
        Err(err) => {
            let _ = session.close();
            return Err(err);
        }
    };
    let detached = if matches!(ended, Ended::TargetGone { .. }) {
        let _ = session.close();
        Ok(())
    } else {
        live::detach(session, quiet)
    };
    let Some(text) = text else {
        detached?;
        let error = match ended {
            Ended::TargetGone { error } => error,
            Ended::Complete { .. } => "no profile".into(),
        };
        return Err(anyhow::Error::new(crate::output::Exit {
            code: 3,
            message: format!("the target went away before any profile could be read ({error})"),
            hint: Some(
                "for a short-lived program use `node --heap-prof app.js` and then `leakscope profile Heap.*.heapprofile`"
                    .into(),
            ),
        }));
    };
    if let Ended::TargetGone { error } = &ended {
        eprintln!(
            "warning: the target went away ({error}); writing the last checkpoint (up to {} s old)",
            CHECKPOINT_EVERY.as_secs()
        );
    }
    let profile = HeapProfile::parse(text.as_bytes()).context("reading the profile the target sent")?;
    let path = args.output.clone().unwrap_or_else(|| default_name(&script, pid));
    write_atomic(&path, |w| Ok(profile.write_json(w)?)).with_context(|| format!("writing {}", path.display()))?;
    let analysis = ProfileAnalysis::new(&profile, Some(args.interval), args.include_collected);
    let mut written = report::Written { heapprofile: Some(path.clone()), ..Default::default() };
    let title = format!("{script} (pid {pid})");
    report::write_outputs(&profile, &analysis, &args.outputs, &title, &mut written)?;
    detached?;
    let mut out = String::new();
    if !args.outputs.json {
        let how = match ended {
            Ended::Complete { interrupted: true } => " (stopped early by Ctrl-C)",
            Ended::Complete { interrupted: false } => "",
            Ended::TargetGone { .. } => " (target went away)",
        };
        outln!(
            out,
            "sampled pid {pid} for {:.1} s every {} on average{how}; wrote {}",
            elapsed.as_secs_f64(),
            human_bytes(args.interval),
            path.display()
        );
        for (what, p) in [("pprof", &written.pprof), ("flame graph", &written.flamegraph), ("folded", &written.folded)]
        {
            if let Some(p) = p {
                outln!(out, "wrote {what}: {}", p.display());
            }
        }
        outln!(out);
    }
    report::print(&mut out, &profile, &analysis, Some(&path), args.outputs.top, args.outputs.json, &written)?;
    if !args.outputs.json {
        print_next(&mut out, &path, &written);
    }
    super::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn print_next(out: &mut String, path: &Path, written: &report::Written) {
    outln!(out, "\nnext:");
    outln!(out, "  leakscope profile {} --top 40", shell_quote(path));
    match &written.pprof {
        Some(pprof) => outln!(out, "  go tool pprof -http=127.0.0.1:0 {}", shell_quote(pprof)),
        None => outln!(out, "  leakscope profile {} --pprof profile.pb.gz --flamegraph profile.svg", shell_quote(path)),
    }
    outln!(out, "  (or load {} in Chrome DevTools → Memory → Load profile)", shell_quote(path));
}

fn default_name(script: &str, pid: u32) -> PathBuf {
    PathBuf::from(format!("{script}-{pid}-{}.heapprofile", local_timestamp(SystemTime::now())))
}

/// Starts sampling, waits (checkpointing), fetches the final profile and stops. Returns the profile text
/// (`None` only if the target went away before the first checkpoint) and how it ended.
fn run_sampling(
    session: &mut Session,
    args: &SampleArgs,
    options: &SamplingOptions,
    quiet: bool,
) -> anyhow::Result<(Option<String>, Ended)> {
    session.start_sampling(options).map_err(|e| live::to_exit(session.explain(e)))?;
    if !quiet {
        eprintln!(
            "sampling pid {} for {:.0} s, one sample per {} allocated on average (stack depth {}{}); Ctrl-C stops early",
            session.pid().unwrap_or(0),
            args.duration.as_secs_f64(),
            human_bytes(options.interval),
            options.stack_depth,
            if options.include_collected { ", collected objects included" } else { "" }
        );
    }
    let started = Instant::now();
    let mut last_checkpoint = Instant::now();
    let mut checkpoint: Option<String> = None;
    let gone = |session: &Session, err: leakscope_inspector::Error| session.explain(err).to_string();
    loop {
        if interrupted() || started.elapsed() >= args.duration {
            break;
        }
        // Waiting on the socket notices a target that exits; events (none expected) are dropped.
        let wait = (args.duration.saturating_sub(started.elapsed())).min(Duration::from_millis(200));
        if let Err(err) = session.next_event(wait) {
            return Ok((checkpoint, Ended::TargetGone { error: gone(session, err) }));
        }
        if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            match session.sampling_profile(PROFILE_TIMEOUT) {
                Ok(text) => checkpoint = Some(text),
                Err(err) if err.is_disconnect() || session.is_closed() => {
                    return Ok((checkpoint, Ended::TargetGone { error: gone(session, err) }));
                }
                Err(err) => return Err(live::to_exit(err)),
            }
            last_checkpoint = Instant::now();
        }
    }
    let was_interrupted = interrupted();
    // The reply to stopSampling carries the same profile a few microseconds later; it is preferred when the
    // client could read it.
    let final_text = match session.finish_sampling(PROFILE_TIMEOUT) {
        Ok((text, None)) => text,
        Ok((text, Some(err))) => {
            eprintln!("warning: HeapProfiler.stopSampling failed ({err}); the profile read just before is used");
            text
        }
        Err(err) if err.is_disconnect() || session.is_closed() => {
            return Ok((checkpoint, Ended::TargetGone { error: gone(session, err) }));
        }
        Err(err) => return Err(live::to_exit(err)),
    };
    Ok((Some(final_text), Ended::Complete { interrupted: was_interrupted }))
}
