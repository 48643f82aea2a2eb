//! Aggregation of a heap profile by stack and by function, with estimated totals and their expected error.
//!
//! ## What the numbers mean
//!
//! V8 samples allocations as a Poisson process over allocated bytes with mean interval `R`: an object of
//! `s` bytes is sampled with probability `p(s) = 1 − exp(−s/R)`. It writes every number **already scaled up**
//! by `1/p(s)`, rounded (`src/profiler/sampling-heap-profiler.cc`, `ScaleSample`):
//!
//! - a sample's `size` is `s × round(1/p(s))`: about `R` bytes for objects much smaller than `R`, and `s` for
//!   objects much larger;
//! - a node's `selfSize` is `Σ_s s × round(n_s / p(s))` over the distinct sizes `s` sampled at that stack
//!   (`n_s` samples each), i.e. the same estimate rounded per size instead of per sample.
//!
//! So the estimated live bytes of a stack are its `selfSize`, and the estimated total is the sum over all
//! nodes ([`ProfileAnalysis::total_bytes`]); that is what DevTools shows. The estimate is unbiased; with `n`
//! samples of small objects its relative standard error is about `1/√n` (a Poisson count), so 400 samples
//! (≈ 200 MB at 512 KiB) give ±5 %, 100 samples ±10 %, 10 samples ±32 %. Objects of `R` bytes or more are
//! almost always sampled, so their share of the error is small.
//!
//! Object counts are not in the file. For each sample we recover the object size `s` from the scaled size
//! (the smallest multiple of 4 with `s × round(1/p(s)) = size`, else the continuous solution of
//! `s/p(s) = size`; several sizes can fit, so counts of objects much smaller than `R` are only good to about
//! 2×), and estimate
//! `round(n_s / p(s))` objects per size, as V8 does for bytes.

use crate::heapprofile::{CallFrame, HeapProfile};
use crate::stacks::{Frame, NumLabel, StackProfile, ValueType};
use std::collections::HashMap;

/// Node's `--heap-prof` default and leakscope's: 512 KiB.
pub const DEFAULT_INTERVAL: u64 = 512 * 1024;

/// Where the sampling interval came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalSource {
    /// The caller knew it (leakscope recorded it, or `--interval` was given).
    Given,
    /// Inferred from the smallest scaled sample size (a power of two just below it, or that size itself).
    Inferred,
    /// No samples to infer from: 512 KiB assumed.
    Assumed,
}

/// Per-node numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeStats {
    /// Estimated live bytes allocated exactly here (V8's `selfSize`).
    pub self_bytes: u64,
    /// Estimated object count allocated exactly here.
    pub self_objects: u64,
    /// Samples taken here.
    pub samples: u64,
    /// Sum of the scaled sizes of those samples.
    pub sampled_bytes: u64,
}

/// One function (all nodes with the same name, file, line and column).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FunctionStats {
    pub function: String,
    pub url: String,
    /// 1-based, where the function starts; `None` when unknown.
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// Estimated live bytes allocated by this function itself.
    pub self_bytes: u64,
    /// Estimated live bytes allocated by it and everything it called.
    pub total_bytes: u64,
    pub self_objects: u64,
    pub total_objects: u64,
    pub self_samples: u64,
    pub total_samples: u64,
}

impl FunctionStats {
    /// `function file:line`.
    pub fn label(&self) -> String {
        match (self.url.is_empty(), self.line) {
            (true, _) => self.function.clone(),
            (false, Some(line)) => format!("{} {}:{line}", self.function, self.url),
            (false, None) => format!("{} {}", self.function, self.url),
        }
    }
}

/// One allocation stack (a node with bytes of its own).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StackStats {
    /// Index of the node in [`HeapProfile::nodes`].
    #[serde(skip)]
    pub node: usize,
    /// `function file:line`, allocating frame first.
    pub frames: Vec<String>,
    pub bytes: u64,
    pub objects: u64,
    pub samples: u64,
}

/// The analysed profile.
#[derive(Debug, Clone)]
pub struct ProfileAnalysis {
    pub interval: u64,
    pub interval_source: IntervalSource,
    /// The profile counts objects collected by GC too (`includeObjectsCollectedBy*`): values are
    /// allocations during the interval, not live memory.
    pub include_collected: bool,
    /// Per node, same indexes as [`HeapProfile::nodes`].
    pub nodes: Vec<NodeStats>,
    /// Estimated bytes: Σ `selfSize`.
    pub total_bytes: u64,
    pub total_objects: u64,
    /// Number of samples.
    pub samples: u64,
    /// Σ of the samples' scaled sizes (differs from `total_bytes` only by rounding).
    pub sampled_bytes: u64,
}

/// Relative standard error of an estimate made of `samples` samples (`1/√n`; 1 when there are none).
pub fn relative_error(samples: u64) -> f64 {
    if samples == 0 {
        1.0
    } else {
        1.0 / (samples as f64).sqrt()
    }
}

/// `1 / (1 − exp(−s/R))`, the inverse sampling probability.
pub fn scale(size: f64, interval: f64) -> f64 {
    let p = -(-size / interval).exp_m1();
    if p <= 0.0 {
        f64::INFINITY
    } else {
        1.0 / p
    }
}

/// V8's rounding: `static_cast<unsigned>(count * scale + 0.5)`.
fn v8_count(count: f64, size: f64, interval: f64) -> u64 {
    let v = count * scale(size, interval) + 0.5;
    if v.is_finite() && v > 0.0 {
        v.min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Recovers the object size `s` of a sample whose scaled size is `scaled` (see the module docs).
pub fn object_size(scaled: u64, interval: u64) -> f64 {
    if scaled == 0 || interval == 0 {
        return scaled as f64;
    }
    let (s_total, r) = (scaled as f64, interval as f64);
    // An object of at least R·ln 3 bytes has round(1/p(s)) = 1: take the size as it is. (A smaller object
    // scaled up can give the same number; large single objects are the likelier reading.)
    if v8_count(1.0, s_total, r) == 1 {
        return s_total;
    }
    // Small objects: V8 rounds half up, so round(1/p(s)) = floor(R/s + 1) and scaled − R = s (1 − frac(R/s))
    // lies in (0, s]: s ≥ scaled − R. Several multiples of 4 can fit exactly; with no other knowledge the
    // smallest is the most likely (the likelihood of a given excess falls as 1/s).
    let start = scaled.saturating_sub(interval).max(4).div_ceil(4) * 4;
    let mut s = start;
    for _ in 0..200_000 {
        if s > scaled {
            break;
        }
        if scaled.is_multiple_of(s) && v8_count(1.0, s as f64, r) == scaled / s {
            return s as f64;
        }
        s += 4;
    }
    continuous_size(s_total, r)
}

/// Continuous solution of `s / (1 − exp(−s/R)) = scaled`, by bisection.
fn continuous_size(s_total: f64, r: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, s_total);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if mid * scale(mid, r) < s_total {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi.max(1.0)
}

/// The interval a profile was taken with, from its smallest scaled sample (≥ R by construction).
pub fn infer_interval(profile: &HeapProfile) -> Option<u64> {
    let min = profile.samples.as_ref()?.iter().map(|s| s.size).filter(|&s| s > 0).min()?;
    let pow2 = 1u64 << (63 - min.leading_zeros());
    if (min - pow2) as f64 <= pow2 as f64 * 0.02 {
        return Some(pow2);
    }
    Some(min / 1024 * 1024).filter(|&r| r > 0).or(Some(min))
}

impl ProfileAnalysis {
    /// Analyses `profile`. `interval`: the sampling interval if known (else inferred). `include_collected`:
    /// whether the profile was taken with `includeObjectsCollectedBy*` (only the caller can know).
    pub fn new(profile: &HeapProfile, interval: Option<u64>, include_collected: bool) -> ProfileAnalysis {
        let (interval, interval_source) = match interval.filter(|&i| i > 0) {
            Some(i) => (i, IntervalSource::Given),
            None => match infer_interval(profile) {
                Some(i) => (i, IntervalSource::Inferred),
                None => (DEFAULT_INTERVAL, IntervalSource::Assumed),
            },
        };
        let index = profile.index_by_id();
        let mut nodes = vec![NodeStats::default(); profile.nodes.len()];
        for (stats, node) in nodes.iter_mut().zip(&profile.nodes) {
            stats.self_bytes = node.self_size;
        }
        // Samples per node, grouped by recovered object size.
        let mut sizes: HashMap<u64, f64> = HashMap::new();
        let mut per_node: HashMap<usize, HashMap<u64, u64>> = HashMap::new();
        let mut samples = 0u64;
        let mut sampled_bytes = 0u64;
        for sample in profile.samples.iter().flatten() {
            let Some(&i) = index.get(&sample.node_id) else { continue };
            samples += 1;
            sampled_bytes += sample.size;
            nodes[i].samples += 1;
            nodes[i].sampled_bytes += sample.size;
            *per_node.entry(i).or_default().entry(sample.size).or_default() += 1;
        }
        for (i, by_scaled) in per_node {
            // n_s samples of object size s → round(n_s / p(s)) objects, as V8 rounds bytes.
            let mut by_size: HashMap<u64, u64> = HashMap::new();
            for (scaled, n) in by_scaled {
                let s = *sizes.entry(scaled).or_insert_with(|| object_size(scaled, interval));
                *by_size.entry(s.round().max(1.0) as u64).or_default() += n;
            }
            nodes[i].self_objects = by_size.iter().map(|(&s, &n)| v8_count(n as f64, s as f64, interval as f64)).sum();
        }
        let total_bytes = nodes.iter().map(|n| n.self_bytes).sum();
        let total_objects = nodes.iter().map(|n| n.self_objects).sum();
        ProfileAnalysis {
            interval,
            interval_source,
            include_collected,
            nodes,
            total_bytes,
            total_objects,
            samples,
            sampled_bytes,
        }
    }

    /// Relative standard error of [`ProfileAnalysis::total_bytes`].
    pub fn relative_error(&self) -> f64 {
        relative_error(self.samples)
    }

    /// Every function with bytes, by total bytes (then self bytes) descending. A function that appears
    /// several times in one stack (recursion) counts once in its total.
    pub fn functions(&self, profile: &HeapProfile) -> Vec<FunctionStats> {
        let mut keys: HashMap<&CallFrame, usize> = HashMap::new();
        let mut out: Vec<FunctionStats> = Vec::new();
        let mut key_of = vec![usize::MAX; profile.nodes.len()];
        for (i, node) in profile.nodes.iter().enumerate().skip(1) {
            let f = &node.call_frame;
            key_of[i] = *keys.entry(f).or_insert_with(|| {
                out.push(FunctionStats {
                    function: f.display_name().to_string(),
                    url: f.url.clone(),
                    line: f.line_1based(),
                    column: f.column_1based(),
                    self_bytes: 0,
                    total_bytes: 0,
                    self_objects: 0,
                    total_objects: 0,
                    self_samples: 0,
                    total_samples: 0,
                });
                out.len() - 1
            });
        }
        // Subtree sums (nodes are in preorder, so children come after their parent).
        let mut sub: Vec<NodeStats> = self.nodes.clone();
        for i in (1..profile.nodes.len()).rev() {
            if let Some(p) = profile.nodes[i].parent {
                let (c, s) = (sub[i], &mut sub[p]);
                s.self_bytes += c.self_bytes;
                s.self_objects += c.self_objects;
                s.samples += c.samples;
            }
        }
        // A function's total is the sum of the subtrees of its outermost occurrences (so recursion counts
        // once): depth-first with a count of each function on the current path.
        let mut on_path = vec![0u32; out.len()];
        let mut stack: Vec<(usize, bool)> = vec![(0, false)];
        while let Some((i, leaving)) = stack.pop() {
            let key = key_of[i];
            if leaving {
                if key != usize::MAX {
                    on_path[key] -= 1;
                }
                continue;
            }
            if key != usize::MAX {
                let (own, subtree) = (self.nodes[i], sub[i]);
                let f = &mut out[key];
                f.self_bytes += own.self_bytes;
                f.self_objects += own.self_objects;
                f.self_samples += own.samples;
                if on_path[key] == 0 {
                    f.total_bytes += subtree.self_bytes;
                    f.total_objects += subtree.self_objects;
                    f.total_samples += subtree.samples;
                }
                on_path[key] += 1;
            }
            stack.push((i, true));
            for &c in profile.nodes[i].children.iter().rev() {
                stack.push((c, false));
            }
        }
        out.retain(|f| f.total_bytes > 0 || f.total_samples > 0);
        out.sort_by(|a, b| b.total_bytes.cmp(&a.total_bytes).then(b.self_bytes.cmp(&a.self_bytes)));
        out
    }

    /// Every allocation stack with bytes of its own, largest first.
    pub fn stacks(&self, profile: &HeapProfile) -> Vec<StackStats> {
        let mut out: Vec<StackStats> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, s)| s.self_bytes > 0)
            .map(|(i, s)| {
                let mut frames: Vec<String> = profile.stack(i).iter().map(|f| f.display()).collect();
                frames.reverse();
                StackStats { node: i, frames, bytes: s.self_bytes, objects: s.self_objects, samples: s.samples }
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.bytes));
        out
    }

    /// The profile as a [`StackProfile`]: one sample per allocating stack with values
    /// `[inuse_objects, inuse_space]` (`alloc_*` when the profile includes collected objects), a `bytes`
    /// label with the average object size, `period` = the interval.
    pub fn to_stack_profile(&self, profile: &HeapProfile) -> StackProfile {
        let (objects, space) =
            if self.include_collected { ("alloc_objects", "alloc_space") } else { ("inuse_objects", "inuse_space") };
        let mut out = StackProfile::new(vec![ValueType::new(objects, "count"), ValueType::new(space, "bytes")]);
        out.default_sample_type = Some(1);
        out.period_type = Some(ValueType::new("space", "bytes"));
        out.period = self.interval as i64;
        out.comments.push(format!(
            "V8 sampling heap profile, mean sampling interval {} bytes; values are estimates (scaled by V8); \
             {} samples, relative error about {:.1}%",
            self.interval,
            self.samples,
            100.0 * self.relative_error()
        ));
        let mut frame_of = vec![usize::MAX; profile.nodes.len()];
        for (i, node) in profile.nodes.iter().enumerate().skip(1) {
            let f = &node.call_frame;
            let line = f.line_1based().map(i64::from).unwrap_or(0);
            frame_of[i] = out.add_frame(Frame {
                function: f.display_name().to_string(),
                file: f.url.clone(),
                start_line: line,
                line,
                column: f.column_1based().map(i64::from).unwrap_or(0),
                ..Frame::default()
            });
        }
        for (i, stats) in self.nodes.iter().enumerate() {
            if stats.self_bytes == 0 {
                continue;
            }
            let mut stack = Vec::new();
            let mut at = Some(i);
            while let Some(n) = at {
                if frame_of[n] != usize::MAX {
                    stack.push(frame_of[n]);
                }
                at = profile.nodes[n].parent;
            }
            if stack.is_empty() {
                // Bytes on the root itself: keep them visible under a synthetic frame.
                stack.push(out.add_frame(Frame { function: "(root)".into(), ..Frame::default() }));
            }
            stack.reverse();
            let bytes = i64::try_from(stats.self_bytes).unwrap_or(i64::MAX);
            let count = i64::try_from(stats.self_objects).unwrap_or(i64::MAX);
            out.samples.push(crate::stacks::StackSample {
                stack,
                values: vec![count, bytes],
                labels: if count > 0 {
                    vec![NumLabel { key: "bytes".into(), value: bytes / count, unit: "bytes".into() }]
                } else {
                    Vec::new()
                },
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_sizes_are_recovered_from_scaled_sizes() {
        let r = 524_288u64;
        for s in [16u64, 32, 56, 200, 8016, 600_000, 1_600_016, 10_000_000] {
            let scaled = s * v8_count(1.0, s as f64, r as f64);
            let got = object_size(scaled, r);
            // Small sizes are ambiguous (several fit exactly): within 2× there, exact for large objects.
            let tolerance = if s < r / 16 { 0.5 } else { 0.05 };
            assert!((got - s as f64).abs() / (s as f64) <= tolerance, "s={s} scaled={scaled} got={got}");
        }
    }

    #[test]
    fn totals_functions_and_stacks() {
        let text = r#"{"head":{"callFrame":{"functionName":"(root)","scriptId":"0","url":"","lineNumber":-1,"columnNumber":-1},"selfSize":0,"id":1,"children":[
            {"callFrame":{"functionName":"main","scriptId":"1","url":"a.js","lineNumber":0,"columnNumber":0},"selfSize":524320,"id":2,"children":[
              {"callFrame":{"functionName":"makeRecord","scriptId":"1","url":"a.js","lineNumber":9,"columnNumber":2},"selfSize":1048640,"id":3,"children":[
                {"callFrame":{"functionName":"main","scriptId":"1","url":"a.js","lineNumber":0,"columnNumber":0},"selfSize":0,"id":4,"children":[]}]}]}]},
            "samples":[{"size":524320,"nodeId":2,"ordinal":1},{"size":524320,"nodeId":3,"ordinal":2},{"size":524320,"nodeId":3,"ordinal":3}]}"#;
        let p = HeapProfile::parse(text.as_bytes()).unwrap();
        let a = ProfileAnalysis::new(&p, None, false);
        assert_eq!((a.interval, a.interval_source), (524_288, IntervalSource::Inferred));
        assert_eq!(a.total_bytes, 1_572_960);
        assert_eq!(a.samples, 3);
        assert_eq!(a.total_objects, 16385 + 32769); // V8 rounds per size: round(2 × 16384.5)
        let f = a.functions(&p);
        assert_eq!(f[0].function, "main");
        assert_eq!(f[0].total_bytes, 1_572_960);
        assert_eq!(f[0].self_bytes, 524_320);
        assert_eq!(f[1].label(), "makeRecord a.js:10");
        assert_eq!(f[1].total_bytes, 1_048_640);
        let s = a.stacks(&p);
        assert_eq!(s[0].frames, vec!["makeRecord a.js:10", "main a.js:1"]);
        let sp = a.to_stack_profile(&p);
        assert_eq!(sp.total(1), 1_572_960);
        assert_eq!(sp.folded(1), vec!["main a.js:1 524320", "main a.js:1;makeRecord a.js:10 1048640"]);
        assert!((a.relative_error() - 1.0 / 3f64.sqrt()).abs() < 1e-9);
    }
}
