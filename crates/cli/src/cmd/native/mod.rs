//! `leakscope native`: run a program under the sampling malloc profiler, take dumps, and report or diff them.

pub mod args;
mod library;

use crate::output::{human_bytes, Exit, Table};
use args::{DiffArgs, DumpArgs, NativeArgs, NativeCommand, ReportArgs, RunArgs, SymbolArgs};
use leakscope_native::export::INUSE_SPACE;
use leakscope_native::{diff, series_verdicts, Dump, Profile, Symbolizer, Verdict};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub fn native(args: &NativeArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(NativeCommand::Dump(a)) => dump_cmd(a, quiet),
        Some(NativeCommand::Report(a)) => report_cmd(a),
        Some(NativeCommand::Diff(a)) => diff_cmd(a),
        None => run_cmd(&args.run, quiet),
    }
}

/// Effective uid of this process (owner of /proc/self).
pub(crate) fn euid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

fn socket_path(pid: u32, uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/leakscope-{uid}/native-{pid}.sock"))
}

fn usage(message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    Exit { code: 2, message: message.into(), hint: hint.map(str::to_string) }.into()
}

fn target(message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    Exit { code: 3, message: message.into(), hint: hint.map(str::to_string) }.into()
}

/// Requests a dump over the control socket and writes it to `out`. Returns the number of bytes.
fn request_dump(pid: u32, out: &Path) -> anyhow::Result<u64> {
    let uid = std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid())
        .map_err(|_| target(format!("no process with pid {pid}"), Some("list candidates with `leakscope ps`")))?;
    let path = socket_path(pid, uid);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        target(
            format!("pid {pid} has no leakscope control socket ({}: {e})", path.display()),
            Some("start the program with `leakscope native -- CMD …` (the profiler is preloaded at start)"),
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.write_all(b"dump\n")?;
    let mut data = Vec::new();
    stream.read_to_end(&mut data).map_err(|e| target(format!("reading the dump from pid {pid}: {e}"), None))?;
    if data.is_empty() {
        return Err(target(format!("pid {pid} closed the control socket without a dump"), None));
    }
    let tmp = out.with_extension("partial");
    std::fs::write(&tmp, &data).map_err(|e| usage(format!("cannot write {}: {e}", tmp.display()), None))?;
    std::fs::rename(&tmp, out)?;
    Ok(data.len() as u64)
}

fn now_stamp() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn dump_cmd(args: &DumpArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let out =
        args.output.clone().unwrap_or_else(|| PathBuf::from(format!("native-{}-{}.jsonl", args.pid, now_stamp())));
    let bytes = request_dump(args.pid, &out)?;
    let dump = Dump::read(&out).map_err(|e| target(e.to_string(), None))?;
    if !quiet {
        eprintln!(
            "wrote {} ({}): {} live samples, {} stacks",
            out.display(),
            human_bytes(bytes),
            dump.samples.len(),
            dump.stacks.len()
        );
    }
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn load(path: &Path) -> anyhow::Result<Dump> {
    Dump::read(path).map_err(|e| usage(e.to_string(), Some("pass a dump written by `leakscope native` (JSON lines)")))
}

fn symbolizer(s: &SymbolArgs) -> Symbolizer {
    let mut sym = Symbolizer::new().with_perf_map(s.perf_map.clone());
    sym.use_dwarf = !s.no_dwarf;
    sym
}

fn profile_of(dump: &Dump, sym: &mut Symbolizer) -> Profile {
    let frames = sym.symbolize_dump(dump);
    Profile::build(dump, &frames)
}

fn pct(e: &leakscope_native::Estimate) -> String {
    if e.stderr == 0.0 {
        "exact".to_string()
    } else {
        format!("±{:.1}%", 100.0 * e.relative())
    }
}

fn signed_bytes(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", human_bytes((-v).round() as u64))
    } else {
        format!("+{}", human_bytes(v.round() as u64))
    }
}

fn count(v: f64) -> String {
    let v = v.round() as u64;
    if v >= 10_000_000 {
        format!("{}M", v / 1_000_000)
    } else if v >= 10_000 {
        format!("{}k", v / 1000)
    } else {
        v.to_string()
    }
}

const STACK_LINES: usize = 8;

fn print_stack(frames: &[leakscope_native::Frame]) {
    for f in frames.iter().take(STACK_LINES) {
        let tag = match f.kind {
            leakscope_native::FrameKind::Jit => " [js/jit]",
            _ => "",
        };
        println!("        {}{tag}", f.label());
    }
    if frames.len() > STACK_LINES {
        println!("        … {} more frames", frames.len() - STACK_LINES);
    }
}

fn print_profile(p: &Profile, top: usize) {
    println!(
        "pid {} ({}), sampling interval {}, {} live samples{}",
        p.pid,
        p.exe,
        human_bytes(p.interval),
        p.samples,
        if p.dropped > 0 { format!(", {} dropped (table full)", p.dropped) } else { String::new() }
    );
    println!(
        "live native memory (estimated): {} {}  in ≈{} blocks;  allocated since start: {} in ≈{} blocks",
        human_bytes(p.inuse_space.value.round() as u64),
        pct(&p.inuse_space),
        count(p.inuse_objects),
        human_bytes(p.alloc_space.round() as u64),
        count(p.alloc_objects)
    );
    println!();
    let mut table = Table::new(&[
        ("#", true),
        ("live", true),
        ("error", true),
        ("samples", true),
        ("blocks", true),
        ("allocated", true),
        ("site", false),
    ]);
    let n = if top == 0 { p.rows.len() } else { top.min(p.rows.len()) };
    for (i, r) in p.rows.iter().take(n).enumerate() {
        table.row(vec![
            (i + 1).to_string(),
            human_bytes(r.inuse_space.value.round() as u64),
            pct(&r.inuse_space),
            r.samples.to_string(),
            count(r.inuse_objects),
            human_bytes(r.alloc_space.round() as u64),
            r.site.clone(),
        ]);
    }
    print!("{}", table.render());
    println!();
    for (i, r) in p.rows.iter().take(n.min(5)).enumerate() {
        println!("  #{} {} live {}:", i + 1, human_bytes(r.inuse_space.value.round() as u64), pct(&r.inuse_space));
        print_stack(&r.frames);
    }
    println!();
    println!("error = expected relative error (1σ ≈ 1/√samples for blocks smaller than the interval)");
}

fn report_cmd(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let dump = load(&args.dump)?;
    let mut sym = symbolizer(&args.symbols);
    let frames = sym.symbolize_dump(&dump);
    let profile = Profile::build(&dump, &frames);
    if args.pprof.is_some() || args.folded.is_some() || args.flamegraph.is_some() {
        let sp = leakscope_native::stack_profile(&dump, &frames);
        let create = |path: &Path| {
            std::fs::File::create(path)
                .map(std::io::BufWriter::new)
                .map_err(|e| usage(format!("cannot write {}: {e}", path.display()), None))
        };
        if let Some(path) = &args.pprof {
            sp.write_pprof_gz(&mut create(path)?)?;
        }
        if let Some(path) = &args.folded {
            let mut f = create(path)?;
            sp.write_folded(INUSE_SPACE, &mut f)?;
            f.flush()?;
        }
        if let Some(path) = &args.flamegraph {
            let title = format!("live native memory: pid {} ({})", profile.pid, profile.exe);
            let mut f = create(path)?;
            sp.write_flamegraph(INUSE_SPACE, &title, &mut f)?;
            f.flush()?;
        }
    }
    if args.json {
        let mut p = profile;
        if args.top > 0 {
            p.rows.truncate(args.top);
        }
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print_profile(&profile, args.top);
    }
    Ok(ExitCode::SUCCESS)
}

fn diff_cmd(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let a = load(&args.before)?;
    let b = load(&args.after)?;
    if a.header.interval != b.header.interval {
        eprintln!(
            "warning: the dumps used different sampling intervals ({} and {}); estimates are still unbiased",
            a.header.interval, b.header.interval
        );
    }
    let mut sym = symbolizer(&args.symbols);
    let pa = profile_of(&a, &mut sym);
    let pb = profile_of(&b, &mut sym);
    let mut d = diff(&pa, &pb);
    let significant = d.rows.iter().filter(|r| r.significant).count();
    if args.top > 0 {
        d.rows.truncate(args.top);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        println!(
            "live native memory: {} → {} ({} ±{}) over {:.1}s",
            human_bytes(d.total_before.value.round() as u64),
            human_bytes(d.total_after.value.round() as u64),
            signed_bytes(d.total_growth.value),
            human_bytes(d.total_growth.stderr.round() as u64),
            d.elapsed_ms as f64 / 1000.0
        );
        println!();
        let mut table = Table::new(&[
            ("#", true),
            ("growth", true),
            ("±1σ", true),
            ("before", true),
            ("after", true),
            ("", false),
            ("site", false),
        ]);
        for (i, r) in d.rows.iter().enumerate() {
            table.row(vec![
                (i + 1).to_string(),
                signed_bytes(r.growth.value),
                human_bytes(r.growth.stderr.round() as u64),
                human_bytes(r.before.value.round() as u64),
                human_bytes(r.after.value.round() as u64),
                if r.significant { "LEAK?".into() } else { String::new() },
                r.site.clone(),
            ]);
        }
        print!("{}", table.render());
        println!();
        for (i, r) in d.rows.iter().filter(|r| r.significant).take(3).enumerate() {
            println!(
                "  #{} grew {} ±{}:",
                i + 1,
                signed_bytes(r.growth.value),
                human_bytes(r.growth.stderr.round() as u64)
            );
            print_stack(&r.frames);
        }
        println!(
            "{significant} stack(s) grew by more than 3 standard errors (LEAK?); small growth is within sampling noise"
        );
    }
    Ok(if significant > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn is_node(cmd: &str) -> bool {
    let base = Path::new(cmd).file_name().and_then(|s| s.to_str()).unwrap_or(cmd);
    base == "node" || base.starts_with("node") && base[4..].chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-')
}

fn run_cmd(args: &RunArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let Some((program, rest)) = args.command.split_first() else {
        return Err(usage(
            "nothing to run",
            Some("use `leakscope native -- node app.js`, or a subcommand: dump, report, diff (see --help)"),
        ));
    };
    let lib = library::locate()?;
    std::fs::create_dir_all(&args.output)
        .map_err(|e| usage(format!("cannot create {}: {e}", args.output.display()), None))?;
    let dir = std::fs::canonicalize(&args.output)?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    let preload = match std::env::var("LD_PRELOAD") {
        Ok(old) if !old.is_empty() => format!("{}:{old}", lib.display()),
        _ => lib.display().to_string(),
    };
    cmd.env("LD_PRELOAD", preload);
    cmd.env("LEAKSCOPE_OUTPUT", dir.join("native-%p-exit.jsonl"));
    cmd.env("LEAKSCOPE_INTERVAL", args.interval.to_string());
    if is_node(program) {
        let mut opts = std::env::var("NODE_OPTIONS").unwrap_or_default();
        for flag in ["--perf-basic-prof-only-functions", "--interpreted-frames-native-stack"] {
            if !opts.split_whitespace().any(|f| f == flag) {
                if !opts.is_empty() {
                    opts.push(' ');
                }
                opts.push_str(flag);
            }
        }
        cmd.env("NODE_OPTIONS", opts);
    }
    if args.json {
        // Keep stdout for the JSON report: the program's own stdout goes to stderr.
        cmd.stdout(std::process::Stdio::from(std::io::stderr()));
    }
    let mut child = cmd.spawn().map_err(|e| {
        target(
            format!("cannot start {program}: {e}"),
            Some("check the command after `--` (it is run directly, not by a shell)"),
        )
    })?;
    let pid = child.id();
    if !quiet {
        eprintln!(
            "leakscope: profiling pid {pid} (interval {}); dumps in {}",
            human_bytes(args.interval),
            dir.display()
        );
    }
    let mut series: Vec<PathBuf> = Vec::new();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(every) = args.every {
            let due = every * (series.len() as u32 + 1);
            if start.elapsed() >= due {
                let out = dir.join(format!("native-{pid}-{:03}.jsonl", series.len() + 1));
                match request_dump(pid, &out) {
                    Ok(_) => {
                        if !quiet {
                            eprintln!("leakscope: dump {} → {}", series.len() + 1, out.display());
                        }
                        series.push(out);
                    }
                    Err(e) => {
                        if child.try_wait()?.is_none() && !quiet {
                            eprintln!("leakscope: dump failed: {e:#}");
                        }
                        // Keep the schedule: count the slot as taken.
                        series.push(PathBuf::new());
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    series.retain(|p| !p.as_os_str().is_empty());
    let final_path = dir.join(format!("native-{pid}-exit.jsonl"));
    if !status.success() && !quiet {
        eprintln!("leakscope: {program} exited with {status}");
    }
    if !final_path.exists() {
        return Err(target(
            format!("{program} wrote no final dump ({} missing)", final_path.display()),
            Some("the process may have been killed, or called _exit(); take dumps with --every or `native dump --pid`"),
        ));
    }
    series.push(final_path.clone());
    let mut sym = Symbolizer::new();
    let final_dump = load(&final_path)?;
    let final_profile = profile_of(&final_dump, &mut sym);
    let mut verdicts = Vec::new();
    // The verdict uses the periodic dumps; the exit dump only when there are fewer than two (at exit, Node has
    // already freed what its environment and isolate owned, so the exit dump is not a point of the trend).
    let periodic = series.len() - 1;
    if args.every.is_some() && series.len() >= 2 {
        let mut profiles = Vec::new();
        for p in &series[..periodic] {
            profiles.push(profile_of(&load(p)?, &mut sym));
        }
        if periodic < 2 {
            profiles.push(final_profile.clone());
        }
        verdicts = series_verdicts(&profiles);
    }
    let growing = verdicts.iter().filter(|v| v.verdict == Verdict::Growing).count();
    if args.json {
        let mut p = final_profile;
        if args.top > 0 {
            p.rows.truncate(args.top);
            verdicts.truncate(args.top);
        }
        let v = serde_json::json!({ "final": p, "dumps": series, "series": verdicts, "exit_status": status.code() });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_profile(&final_profile, args.top);
        if !verdicts.is_empty() {
            println!();
            println!("growth over the periodic dumps (first → last):");
            let mut table =
                Table::new(&[("verdict", false), ("growth", true), ("±1σ", true), ("last", true), ("site", false)]);
            let n = if args.top == 0 { verdicts.len() } else { args.top.min(verdicts.len()) };
            for v in verdicts.iter().take(n) {
                table.row(vec![
                    format!("{:?}", v.verdict).to_lowercase(),
                    signed_bytes(v.growth.value),
                    human_bytes(v.growth.stderr.round() as u64),
                    human_bytes(v.values.last().copied().unwrap_or(0.0).round() as u64),
                    v.site.clone(),
                ]);
            }
            print!("{}", table.render());
            println!("{growing} stack(s) growing");
        }
    }
    Ok(if growing > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
