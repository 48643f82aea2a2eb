//! The report shared by `profile` and `sample`: pprof / flame graph / folded outputs, then tables of the
//! top allocation sites by self and total bytes (or the JSON of docs/json-schema.md).

use super::args::ProfileOutputs;
use super::write_atomic;
use crate::output::{human_bytes, Table};
use anyhow::Context;
use leakscope_profile::{FunctionStats, HeapProfile, IntervalSource, ProfileAnalysis, StackStats};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Extra files written, for the report and the JSON.
#[derive(Debug, Default, Serialize)]
pub struct Written {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heapprofile: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pprof: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flamegraph: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<PathBuf>,
}

/// `profile --json` / `sample --json`.
#[derive(Debug, Serialize)]
pub struct ProfileReport<'a> {
    pub file: Option<&'a Path>,
    pub interval: u64,
    pub interval_source: IntervalSource,
    pub include_collected: bool,
    pub samples: u64,
    pub total_bytes: u64,
    pub total_objects: u64,
    pub sampled_bytes: u64,
    pub relative_error: f64,
    pub functions: Vec<FunctionStats>,
    pub stacks: Vec<StackStats>,
    pub outputs: &'a Written,
}

/// Writes the requested pprof, flame graph and folded files (each atomically).
pub fn write_outputs(
    profile: &HeapProfile,
    analysis: &ProfileAnalysis,
    outputs: &ProfileOutputs,
    title: &str,
    written: &mut Written,
) -> anyhow::Result<()> {
    if outputs.pprof.is_none() && outputs.flamegraph.is_none() && outputs.folded.is_none() {
        return Ok(());
    }
    let stacks = analysis.to_stack_profile(profile);
    let space = 1; // [objects, space]
    if let Some(path) = &outputs.pprof {
        write_atomic(path, |w| Ok(stacks.write_pprof_gz(w)?)).with_context(|| format!("writing {}", path.display()))?;
        written.pprof = Some(path.clone());
    }
    if let Some(path) = &outputs.flamegraph {
        let kind = if analysis.include_collected { "allocated" } else { "live" };
        let title = format!("{title}: estimated {kind} bytes by allocation stack");
        write_atomic(path, |w| Ok(stacks.write_flamegraph(space, &title, w)?))
            .with_context(|| format!("writing {}", path.display()))?;
        written.flamegraph = Some(path.clone());
    }
    if let Some(path) = &outputs.folded {
        write_atomic(path, |w| Ok(stacks.write_folded(space, w)?))
            .with_context(|| format!("writing {}", path.display()))?;
        written.folded = Some(path.clone());
    }
    Ok(())
}

fn take<T>(mut items: Vec<T>, top: usize) -> Vec<T> {
    if top > 0 {
        items.truncate(top);
    }
    items
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

/// `file:///a/b.js` → `/a/b.js` for the terminal.
fn short(label: &str) -> String {
    label.replace("file://", "")
}

/// Prints the JSON report, or the tables.
pub fn print(
    out: &mut String,
    profile: &HeapProfile,
    analysis: &ProfileAnalysis,
    file: Option<&Path>,
    top: usize,
    json: bool,
    written: &Written,
) -> anyhow::Result<()> {
    let functions = analysis.functions(profile);
    let stacks = analysis.stacks(profile);
    if json {
        let report = ProfileReport {
            file,
            interval: analysis.interval,
            interval_source: analysis.interval_source,
            include_collected: analysis.include_collected,
            samples: analysis.samples,
            total_bytes: analysis.total_bytes,
            total_objects: analysis.total_objects,
            sampled_bytes: analysis.sampled_bytes,
            relative_error: analysis.relative_error(),
            functions: take(functions, top),
            stacks: take(stacks, top),
            outputs: written,
        };
        outln!(out, "{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let total = analysis.total_bytes;
    let what = if analysis.include_collected { "allocated (live or collected)" } else { "live" };
    let source = match analysis.interval_source {
        IntervalSource::Given => "",
        IntervalSource::Inferred => " (inferred from the samples; pass --interval if you know it)",
        IntervalSource::Assumed => " (assumed: no samples to infer it from)",
    };
    outln!(
        out,
        "≈ {} {what} in sampled allocations: {} samples at a mean interval of {}{source}",
        human_bytes(total),
        analysis.samples,
        human_bytes(analysis.interval),
    );
    outln!(
        out,
        "  estimate ± {:.1}% (1σ ≈ 1/√samples); ≈ {} objects; each sample of a small object stands for about {} of them",
        100.0 * analysis.relative_error(),
        analysis.total_objects,
        human_bytes(analysis.interval)
    );
    if total == 0 {
        outln!(out, "\nno sampled allocations (allocate more than the interval, or lower --interval)");
        return Ok(());
    }
    let mut by_self: Vec<&FunctionStats> = functions.iter().filter(|f| f.self_bytes > 0).collect();
    by_self.sort_by_key(|f| std::cmp::Reverse(f.self_bytes));
    let row = |f: &FunctionStats, first_self: bool| {
        let (a, b) = if first_self { (f.self_bytes, f.total_bytes) } else { (f.total_bytes, f.self_bytes) };
        let samples = if first_self { f.self_samples } else { f.total_samples };
        vec![human_bytes(a), pct(a, total), human_bytes(b), pct(b, total), samples.to_string(), short(&f.label())]
    };
    outln!(out, "\ntop allocation sites by self bytes (allocated by the function itself):");
    let mut table = Table::new(&[
        ("self", true),
        ("%", true),
        ("total", true),
        ("%", true),
        ("samples", true),
        ("function file:line", false),
    ]);
    for f in take(by_self, top) {
        table.row(row(f, true));
    }
    out.push_str(&table.render());
    outln!(out, "\ntop functions by total bytes (itself and everything it calls):");
    let mut table = Table::new(&[
        ("total", true),
        ("%", true),
        ("self", true),
        ("%", true),
        ("samples", true),
        ("function file:line", false),
    ]);
    for f in take(functions.iter().collect(), top) {
        table.row(row(f, false));
    }
    out.push_str(&table.render());
    let shown = if top == 0 { stacks.len() } else { top.min(5) };
    outln!(out, "\nlargest allocation stacks (allocating frame first):");
    for (i, s) in stacks.iter().take(shown).enumerate() {
        outln!(
            out,
            "{:>3}. {} ({}, {} samples, ± {:.0}%)",
            i + 1,
            human_bytes(s.bytes),
            pct(s.bytes, total),
            s.samples,
            100.0 * leakscope_profile::relative_error(s.samples)
        );
        for frame in s.frames.iter().take(12) {
            outln!(out, "       {}", short(frame));
        }
        if s.frames.len() > 12 {
            outln!(out, "       … {} more frames", s.frames.len() - 12);
        }
    }
    Ok(())
}
