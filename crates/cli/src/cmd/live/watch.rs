//! `leakscope watch`: sample memory over time and give a leak verdict that does not cry wolf.
//!
//! Every interval: `process.memoryUsage()` and `Runtime.getHeapUsage`. The verdict uses the heap *after*
//! GCs only: samples right after a forced GC (`--gc N`), else samples right after a GC we saw happen (a drop
//! in heapUsed). See `trend.rs` for the maths and docs/live.md for the reasoning.

use super::args::WatchArgs;
use super::trend::{rate_text, trend, Confidence, Trend};
use crate::output::{human_bytes, Exit};
use leakscope_inspector::util::interrupted;
use leakscope_inspector::Error;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Serialize)]
struct Sample {
    t: f64,
    unix_ms: u64,
    rss: u64,
    heap_total: u64,
    heap_used: u64,
    external: u64,
    array_buffers: u64,
    v8_used: Option<u64>,
    v8_total: Option<u64>,
    /// A full GC was forced right before this sample.
    forced_gc: bool,
    /// heapUsed dropped since the previous sample: a GC (often just a scavenge) ran in between.
    gc_seen: bool,
    /// Used bytes of V8's old space (from `v8.getHeapSpaceStatistics()`).
    old_space_used: Option<u64>,
    /// Old-space use dropped since the previous sample: a full (mark-compact) GC ran in between.
    full_gc_seen: bool,
}

#[derive(Debug, Serialize)]
struct Verdict {
    samples: usize,
    duration_secs: f64,
    /// Which samples count as "after GC": forced-gc, full-gc-seen or window-minima.
    basis: &'static str,
    gcs_seen: usize,
    full_gcs_seen: usize,
    heap: Option<Trend>,
    external: Option<Trend>,
    array_buffers: Option<Trend>,
    rss: Option<Trend>,
    off_heap_rss: Option<Trend>,
    /// heapUsed after GC grows (medium or high confidence).
    leak: bool,
    buffer_growth: bool,
    native_suspect: bool,
    lines: Vec<String>,
}

fn pts(samples: &[Sample], idx: &[usize], get: impl Fn(&Sample) -> u64) -> Vec<(f64, f64)> {
    idx.iter().map(|&i| (samples[i].t, get(&samples[i]) as f64)).collect()
}

fn median_of(samples: &[Sample], get: impl Fn(&Sample) -> u64) -> f64 {
    let mut v: Vec<u64> = samples.iter().map(get).collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0) as f64
}

fn verdict(samples: &[Sample]) -> Verdict {
    let forced: Vec<usize> = (0..samples.len()).filter(|&i| samples[i].forced_gc).collect();
    let seen = samples.iter().filter(|s| s.gc_seen).count();
    let full: Vec<usize> = (0..samples.len()).filter(|&i| samples[i].full_gc_seen).collect();
    // Only full GCs count: after a scavenge the heap still holds old-generation garbage, which grows
    // between full GCs in a perfectly healthy app.
    let (basis, idx) = if forced.len() >= 3 {
        ("forced-gc", forced)
    } else if full.len() >= 4 {
        ("full-gc-seen", full.clone())
    } else {
        // No GC cycles to lean on: the minimum of each window. Growth here may be GC laziness.
        let w = (samples.len() / 8).max(3);
        let idx = samples
            .chunks(w)
            .enumerate()
            .filter_map(|(c, chunk)| {
                let (j, _) = chunk.iter().enumerate().min_by_key(|(_, s)| s.heap_used)?;
                Some(c * w + j)
            })
            .collect();
        ("window-minima", idx)
    };
    let heap_median = median_of(samples, |s| s.heap_used);
    let rss_median = median_of(samples, |s| s.rss);
    let mut heap = trend(
        &pts(samples, &idx, |s| s.heap_used),
        (1u64 << 20) as f64 * 1.0_f64.max(heap_median * 0.02 / (1u64 << 20) as f64),
    );
    if basis == "window-minima" {
        if let Some(t) = heap.as_mut() {
            t.confidence = Confidence::Low;
            t.growing = false;
        }
    }
    let ext_min = |m: f64| ((1u64 << 20) as f64).max(m * 0.05);
    let external = trend(&pts(samples, &idx, |s| s.external), ext_min(median_of(samples, |s| s.external)));
    let array_buffers =
        trend(&pts(samples, &idx, |s| s.array_buffers), ext_min(median_of(samples, |s| s.array_buffers)));
    let all: Vec<usize> = (0..samples.len()).collect();
    let rss_min = (8u64 << 20) as f64 * 1.0_f64.max(rss_median * 0.05 / (8u64 << 20) as f64);
    let rss = trend(&pts(samples, &all, |s| s.rss), rss_min);
    let off_heap = |s: &Sample| s.rss.saturating_sub(s.heap_total + s.external);
    let off_heap_rss = trend(&pts(samples, &all, off_heap), rss_min);

    let grows = |t: &Option<Trend>| t.as_ref().is_some_and(|t| t.growing && t.confidence >= Confidence::Medium);
    let leak = grows(&heap);
    let buffer_growth = grows(&external) || grows(&array_buffers);
    let native_suspect =
        !leak && !buffer_growth && off_heap_rss.as_ref().is_some_and(|t| t.growing && t.confidence == Confidence::High);
    let duration_secs = samples.last().map(|s| s.t).unwrap_or(0.0);
    let mut lines = Vec::new();
    let source = match basis {
        "forced-gc" => "forced GCs",
        "full-gc-seen" => "full GCs seen",
        _ => "window minima, too few full GCs seen",
    };
    match &heap {
        Some(t) if leak => lines.push(format!(
            "heapUsed grows {} after GC (confidence {}; 95% CI {} to {}; {} post-GC points over {:.0} s, {source})",
            rate_text(t.slope),
            t.confidence,
            rate_text(t.slope_low),
            rate_text(t.slope_high),
            t.points,
            t.span_secs
        )),
        Some(t) if t.slope > 0.0 && t.material => lines.push(format!(
            "heapUsed after GC: {} so far, not significant yet (confidence low; {} post-GC points over {:.0} s, {source}; watch longer)",
            rate_text(t.slope),
            t.points,
            t.span_secs
        )),
        Some(t) => lines.push(format!(
            "heapUsed after GC: no significant growth ({}, {} post-GC points over {:.0} s, {source})",
            rate_text(t.slope),
            t.points,
            t.span_secs
        )),
        None => lines.push("not enough samples for a verdict (watch longer)".into()),
    }
    for (name, t) in [("external", &external), ("arrayBuffers", &array_buffers)] {
        if let Some(t) = t.as_ref().filter(|t| t.growing && t.confidence >= Confidence::Medium) {
            lines.push(format!(
                "{name} grows {} after GC (confidence {}): a Buffer/ArrayBuffer leak? (leakscope snapshot, then look for ArrayBuffer/Buffer owners)",
                rate_text(t.slope),
                t.confidence
            ));
        }
    }
    if native_suspect {
        if let Some(t) = &off_heap_rss {
            lines.push(format!(
                "RSS grows {} outside the JS heap while the heap is flat: a native leak? try `leakscope native`",
                rate_text(t.slope)
            ));
        }
    }
    if basis == "window-minima" && samples.len() >= 3 {
        lines.push(format!(
            "note: only {} full GCs seen, so heap growth may be GC laziness; watch longer or rerun with --gc 5",
            full.len()
        ));
    }
    Verdict {
        samples: samples.len(),
        duration_secs,
        basis,
        gcs_seen: seen,
        full_gcs_seen: full.len(),
        heap,
        external,
        array_buffers,
        rss,
        off_heap_rss,
        leak,
        buffer_growth,
        native_suspect,
        lines,
    }
}

fn sparkline(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let (lo, hi) = (tail.iter().copied().min().unwrap_or(0), tail.iter().copied().max().unwrap_or(0));
    // Changes below 2% of the value are drawn flat, so noise does not look like a trend.
    let span = (hi - lo).max(hi / 50).max(1) as f64;
    tail.iter().map(|v| BARS[(((v - lo) as f64 / span) * 7.0).round() as usize]).collect()
}

/// Full-screen view on a terminal (alternate screen, restored on drop).
struct Screen;

impl Screen {
    fn enter() -> Screen {
        print!("\x1b[?1049h\x1b[?25l");
        let _ = std::io::stdout().flush();
        Screen
    }

    fn draw(&self, samples: &[Sample], header: &str) {
        let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok()).unwrap_or(100);
        let spark = width.saturating_sub(40).clamp(10, 200);
        let mut out = format!("\x1b[H\x1b[2J{header}\n\n");
        type Get = fn(&Sample) -> u64;
        let metrics: [(&str, Get); 5] = [
            ("rss", |s| s.rss),
            ("heapTotal", |s| s.heap_total),
            ("heapUsed", |s| s.heap_used),
            ("external", |s| s.external),
            ("arrayBuffers", |s| s.array_buffers),
        ];
        for (name, get) in metrics {
            let values: Vec<u64> = samples.iter().map(get).collect();
            let current = values.last().copied().unwrap_or(0);
            out.push_str(&format!("{name:>12} {:>10}  {}\n", human_bytes(current), sparkline(&values, spark)));
        }
        let v = verdict(samples);
        out.push_str(&format!("\n{} samples, {} GCs seen ({} full)\n", samples.len(), v.gcs_seen, v.full_gcs_seen));
        for line in &v.lines {
            out.push_str(&format!("{line}\n"));
        }
        out.push_str("\nCtrl-C to stop (leakscope then closes what it opened)\n");
        print!("{out}");
        let _ = std::io::stdout().flush();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        print!("\x1b[?25h\x1b[?1049l");
        let _ = std::io::stdout().flush();
    }
}

fn plain_line(s: &Sample) -> String {
    let gc = if s.forced_gc {
        "  [forced gc]"
    } else if s.full_gc_seen {
        "  [full gc]"
    } else if s.gc_seen {
        "  [gc]"
    } else {
        ""
    };
    format!(
        "[{:7.1}s] rss {}  heapUsed {}  heapTotal {}  external {}  arrayBuffers {}{gc}",
        s.t,
        human_bytes(s.rss),
        human_bytes(s.heap_used),
        human_bytes(s.heap_total),
        human_bytes(s.external),
        human_bytes(s.array_buffers)
    )
}

pub fn watch(args: &WatchArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    if args.interval < Duration::from_millis(10) {
        return Err(anyhow::Error::new(Exit {
            code: 2,
            message: "--interval must be at least 10ms".into(),
            hint: None,
        }));
    }
    let mut log = match &args.log {
        Some(path) => Some(std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
            anyhow::Error::new(Exit { code: 2, message: format!("cannot open {}: {e}", path.display()), hint: None })
        })?),
        None => None,
    };
    let exporter = match &args.prometheus {
        Some(address) => {
            let exporter = super::prometheus::Exporter::start(address, args.target.allow_remote)?;
            eprintln!("prometheus metrics on http://{}/metrics", exporter.address);
            Some(exporter)
        }
        None => None,
    };
    let mut session = super::attach(&args.target, quiet, args.json)?;
    let tty = !args.json && !args.plain && std::io::stdout().is_terminal();
    let screen = tty.then(Screen::enter);
    let header = format!(
        "leakscope watch: pid {} every {:?}{}",
        session.pid().map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
        args.interval,
        args.gc.map(|n| format!(", full GC every {n} samples")).unwrap_or_default()
    );
    if !tty && !args.json && !quiet {
        eprintln!("{header}");
    }
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut failure: Option<Error> = None;
    let mut i: u64 = 0;
    loop {
        if interrupted() || args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let tick = Instant::now();
        let forced = args.gc.is_some_and(|n| n > 0 && i.is_multiple_of(u64::from(n)));
        let sampled = (|| {
            if forced {
                session.collect_garbage()?;
            }
            let mem = session.memory_usage()?;
            let heap = session.heap_usage().ok();
            let old = session
                .heap_space_statistics()
                .ok()
                .flatten()
                .and_then(|spaces| spaces.iter().find(|s| s.space_name == "old_space").map(|s| s.space_used_size));
            Ok::<_, Error>((mem, heap, old))
        })();
        let (mem, heap, old_space_used) = match sampled {
            Ok(v) => v,
            Err(e) => {
                failure = Some(session.explain(e));
                break;
            }
        };
        let gc_seen = samples.last().is_some_and(|p| {
            let noise = (256u64 << 10).max(p.heap_used / 50);
            mem.heap_used + noise < p.heap_used
        });
        let full_gc_seen = match (samples.last().and_then(|p| p.old_space_used), old_space_used) {
            (Some(before), Some(now)) => now + (64 << 10) < before,
            _ => false,
        };
        let sample = Sample {
            t: started.elapsed().as_secs_f64(),
            unix_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            rss: mem.rss,
            heap_total: mem.heap_total,
            heap_used: mem.heap_used,
            external: mem.external,
            array_buffers: mem.array_buffers,
            v8_used: heap.map(|h| h.used_size),
            v8_total: heap.map(|h| h.total_size),
            forced_gc: forced,
            gc_seen,
            old_space_used,
            full_gc_seen: !forced && full_gc_seen,
        };
        if let Some(file) = log.as_mut() {
            let mut line = serde_json::json!({ "type": "sample" });
            if let (Some(obj), Ok(serde_json::Value::Object(fields))) =
                (line.as_object_mut(), serde_json::to_value(&sample))
            {
                obj.extend(fields);
            }
            writeln!(file, "{line}")?;
        }
        if let Some(exporter) = &exporter {
            exporter.update(&super::prometheus::Metrics {
                pid: session.pid(),
                rss: sample.rss,
                heap_total: sample.heap_total,
                heap_used: sample.heap_used,
                external: sample.external,
                array_buffers: sample.array_buffers,
            });
        }
        samples.push(sample);
        if let Some(screen) = &screen {
            screen.draw(&samples, &header);
        } else if !args.json {
            println!("{}", plain_line(&samples[samples.len() - 1]));
            if samples.len().is_multiple_of(10) {
                if let Some(line) = verdict(&samples).lines.first() {
                    println!("           trend: {line}");
                }
            }
        }
        i += 1;
        while tick.elapsed() < args.interval && !interrupted() {
            if args.duration.is_some_and(|d| started.elapsed() >= d) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20).min(args.interval));
        }
    }
    drop(screen);
    let v = verdict(&samples);
    if failure.is_some() {
        let _ = session.close();
    } else {
        super::detach(session, quiet)?;
    }
    if let Some(file) = log.as_mut() {
        let mut line = serde_json::json!({ "type": "verdict" });
        if let (Some(obj), Ok(serde_json::Value::Object(fields))) = (line.as_object_mut(), serde_json::to_value(&v)) {
            obj.extend(fields);
        }
        writeln!(file, "{line}")?;
    }
    let over_limit = match (args.fail_on_growth, &v.heap) {
        (Some(rate), Some(t)) => v.leak && t.slope > rate,
        _ => false,
    };
    if args.json {
        let mut value = serde_json::to_value(&v)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("fail_on_growth_exceeded".into(), serde_json::Value::Bool(over_limit));
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("\nverdict after {} samples over {:.0} s:", v.samples, v.duration_secs);
        for line in &v.lines {
            println!("  {line}");
        }
        if let (Some(rate), true) = (args.fail_on_growth, over_limit) {
            println!("  growth exceeds --fail-on-growth {}", rate_text(rate));
        }
    }
    if let Some(err) = failure {
        return Err(super::to_exit(err));
    }
    Ok(if over_limit { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
