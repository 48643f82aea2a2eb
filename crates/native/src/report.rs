//! Aggregation by (symbolized) stack, estimates with their expected error, diffs and series verdicts.
//!
//! Each live sample i of size s_i has weight w_i = 1/p_i, p_i = 1 − exp(−(s_i+1)/R): it stands for w_i blocks
//! and s_i·w_i bytes (Horvitz–Thompson, unbiased). The estimated variance of a bytes total is
//! Σ (1 − p_i)/p_i² · s_i² = Σ w_i (w_i − 1) s_i², so small blocks (w ≈ R/s) give a relative error ≈ 1/√n for n
//! samples, and blocks much larger than R (w = 1) are exact.

use crate::dump::Dump;
use crate::symbolize::Frame;
use serde::Serialize;
use std::collections::HashMap;

/// An estimated quantity and its standard error (1σ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub stderr: f64,
}

impl Estimate {
    /// Relative standard error (0 for exact or zero values).
    pub fn relative(&self) -> f64 {
        if self.value.abs() < f64::EPSILON {
            0.0
        } else {
            self.stderr / self.value.abs()
        }
    }

    fn add_sample(&mut self, size: u64, weight: f64) {
        let s = size as f64;
        self.value += s * weight;
        self.stderr = (self.stderr * self.stderr + weight * (weight - 1.0) * s * s).sqrt();
    }

    fn minus(&self, other: &Estimate) -> Estimate {
        Estimate { value: self.value - other.value, stderr: self.stderr.hypot(other.stderr) }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StackRow {
    /// The symbolized stack as one string (function names joined by " <- "), used to match stacks across dumps.
    pub key: String,
    /// The first frame that is not an allocator wrapper (operator new, strdup, …).
    pub site: String,
    pub frames: Vec<Frame>,
    /// Live samples behind the estimate.
    pub samples: u64,
    pub inuse_space: Estimate,
    pub inuse_objects: f64,
    pub alloc_space: f64,
    pub alloc_objects: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub path: String,
    pub pid: u32,
    pub exe: String,
    pub interval: u64,
    pub time_unix_ms: u64,
    pub samples: u64,
    pub dropped: u64,
    pub inuse_space: Estimate,
    pub inuse_objects: f64,
    pub alloc_space: f64,
    pub alloc_objects: f64,
    /// Sorted by inuse_space, then alloc_space, largest first.
    pub rows: Vec<StackRow>,
}

const WRAPPERS: &[&str] = &[
    "operator new",
    "operator new[]",
    "__libc_malloc",
    "__libc_calloc",
    "__libc_realloc",
    "strdup",
    "strndup",
    "__strdup",
    "__GI___strdup",
    "std::__new_allocator",
    "__gnu_cxx::new_allocator",
    "std::allocator",
    "std::__allocated_ptr",
    "alloc::alloc",
    "__rust_alloc",
    "__rdl_alloc",
];

fn is_wrapper(frame: &Frame) -> bool {
    match &frame.function {
        Some(f) => WRAPPERS.iter().any(|w| f.starts_with(w)),
        None => false,
    }
}

/// The allocation site of a stack: the first non-wrapper frame.
pub fn site_of(frames: &[Frame]) -> String {
    frames.iter().find(|f| !is_wrapper(f)).or(frames.first()).map_or_else(|| "(no stack)".to_string(), |f| f.label())
}

/// Stacks are matched by function names (not lines or addresses), so a JS function seen at different tiers or
/// a stack seen in another run of the same program are the same row.
fn stack_key(frames: &[Frame]) -> String {
    if frames.is_empty() {
        return "(no stack)".to_string();
    }
    let mut names: Vec<String> = Vec::with_capacity(frames.len());
    for f in frames {
        let n = f.key_name();
        if n == "?" && names.last().is_some_and(|l| l == "?") {
            continue;
        }
        names.push(n);
    }
    names.join(" <- ")
}

impl Profile {
    /// Aggregates `dump` by symbolized stack (`frames[stack id]`, from [`crate::Symbolizer::symbolize_dump`]).
    pub fn build(dump: &Dump, frames: &[Vec<Frame>]) -> Profile {
        let mut rows: Vec<StackRow> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut row_of_stack = Vec::with_capacity(dump.stacks.len());
        for (id, stack) in dump.stacks.iter().enumerate() {
            let f = frames.get(id).cloned().unwrap_or_default();
            let key = stack_key(&f);
            let row = *index.entry(key.clone()).or_insert_with(|| {
                rows.push(StackRow {
                    site: site_of(&f),
                    key,
                    frames: f,
                    samples: 0,
                    inuse_space: Estimate::default(),
                    inuse_objects: 0.0,
                    alloc_space: 0.0,
                    alloc_objects: 0.0,
                });
                rows.len() - 1
            });
            rows[row].alloc_space += stack.alloc_space;
            rows[row].alloc_objects += stack.alloc_objects;
            row_of_stack.push(row);
        }
        let mut total = Estimate::default();
        let mut total_objects = 0.0;
        for s in &dump.samples {
            let row = &mut rows[row_of_stack[s.stack as usize]];
            row.samples += 1;
            row.inuse_space.add_sample(s.size, s.weight);
            row.inuse_objects += s.weight;
            total.add_sample(s.size, s.weight);
            total_objects += s.weight;
        }
        rows.sort_by(|a, b| {
            b.inuse_space.value.total_cmp(&a.inuse_space.value).then(b.alloc_space.total_cmp(&a.alloc_space))
        });
        Profile {
            path: dump.path.clone(),
            pid: dump.header.pid,
            exe: dump.header.exe.clone(),
            interval: dump.header.interval,
            time_unix_ms: dump.header.time_unix_ms,
            samples: dump.samples.len() as u64,
            dropped: dump.header.dropped,
            inuse_space: total,
            inuse_objects: total_objects,
            alloc_space: rows.iter().map(|r| r.alloc_space).sum(),
            alloc_objects: rows.iter().map(|r| r.alloc_objects).sum(),
            rows,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffRow {
    pub key: String,
    pub site: String,
    pub frames: Vec<Frame>,
    pub before: Estimate,
    pub after: Estimate,
    /// after − before, with the combined error.
    pub growth: Estimate,
    pub samples_before: u64,
    pub samples_after: u64,
    /// Growth larger than three standard errors.
    pub significant: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub before: String,
    pub after: String,
    pub elapsed_ms: i64,
    pub total_before: Estimate,
    pub total_after: Estimate,
    pub total_growth: Estimate,
    /// Largest growth first.
    pub rows: Vec<DiffRow>,
}

/// What grew from `a` to `b`, matched by symbolized stack.
pub fn diff(a: &Profile, b: &Profile) -> Diff {
    let mut rows: Vec<DiffRow> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (which, p) in [(0, a), (1, b)] {
        for r in &p.rows {
            let i = *index.entry(r.key.as_str()).or_insert_with(|| {
                rows.push(DiffRow {
                    key: r.key.clone(),
                    site: r.site.clone(),
                    frames: r.frames.clone(),
                    before: Estimate::default(),
                    after: Estimate::default(),
                    growth: Estimate::default(),
                    samples_before: 0,
                    samples_after: 0,
                    significant: false,
                });
                rows.len() - 1
            });
            if which == 0 {
                rows[i].before = r.inuse_space;
                rows[i].samples_before = r.samples;
            } else {
                rows[i].after = r.inuse_space;
                rows[i].samples_after = r.samples;
            }
        }
    }
    for r in &mut rows {
        r.growth = r.after.minus(&r.before);
        r.significant = r.growth.value > 0.0 && r.growth.value > 3.0 * r.growth.stderr;
    }
    rows.retain(|r| r.samples_before + r.samples_after > 0);
    rows.sort_by(|x, y| y.growth.value.total_cmp(&x.growth.value));
    Diff {
        before: a.path.clone(),
        after: b.path.clone(),
        elapsed_ms: b.time_unix_ms as i64 - a.time_unix_ms as i64,
        total_before: a.inuse_space,
        total_after: b.inuse_space,
        total_growth: b.inuse_space.minus(&a.inuse_space),
        rows,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Grew by more than 3σ from first to last dump, and rose in most intervals.
    Growing,
    /// Shrank by more than 3σ.
    Shrinking,
    /// No significant change.
    Stable,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeriesRow {
    pub key: String,
    pub site: String,
    /// Estimated live bytes at each dump.
    pub values: Vec<f64>,
    pub growth: Estimate,
    pub verdict: Verdict,
}

/// A growth verdict per stack over a series of dumps of one process (in time order). Largest growth first.
pub fn series_verdicts(profiles: &[Profile]) -> Vec<SeriesRow> {
    let n = profiles.len();
    let mut rows: Vec<(String, String, Vec<Estimate>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (t, p) in profiles.iter().enumerate() {
        for r in &p.rows {
            let i = *index.entry(r.key.as_str()).or_insert_with(|| {
                rows.push((r.key.clone(), r.site.clone(), vec![Estimate::default(); n]));
                rows.len() - 1
            });
            rows[i].2[t] = r.inuse_space;
        }
    }
    let mut out: Vec<SeriesRow> = rows
        .into_iter()
        .filter(|(_, _, v)| v.iter().any(|e| e.value > 0.0))
        .map(|(key, site, v)| {
            let growth = match (v.first(), v.last()) {
                (Some(a), Some(b)) if n >= 2 => b.minus(a),
                _ => Estimate::default(),
            };
            let rises = v.windows(2).filter(|w| w[1].value > w[0].value).count();
            let steps = n.saturating_sub(1).max(1);
            let verdict = if growth.value > 3.0 * growth.stderr && growth.value > 0.0 && rises * 2 >= steps {
                Verdict::Growing
            } else if growth.value < -3.0 * growth.stderr {
                Verdict::Shrinking
            } else {
                Verdict::Stable
            };
            SeriesRow { key, site, values: v.iter().map(|e| e.value).collect(), growth, verdict }
        })
        .collect();
    out.sort_by(|a, b| b.growth.value.total_cmp(&a.growth.value));
    out
}
