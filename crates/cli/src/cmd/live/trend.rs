//! The leak verdict: a robust slope (Theil–Sen) of the heap *after* GCs, with a Mann–Kendall trend test
//! for confidence, plus a materiality threshold so that noise never reads as a leak.

use serde::Serialize;

/// At most this many points enter the O(n²) pairwise-slope computation (evenly subsampled).
const MAX_POINTS: usize = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl std::fmt::Display for Confidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        })
    }
}

/// A robust linear trend of a series.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    /// Theil–Sen slope, bytes per second.
    pub slope: f64,
    /// 95% confidence interval of the slope (Sen 1968, from the Kendall-S variance).
    pub slope_low: f64,
    pub slope_high: f64,
    /// Mann–Kendall z statistic (positive = increasing).
    pub z: f64,
    pub points: usize,
    pub span_secs: f64,
    /// Median of the values, bytes.
    pub median: f64,
    /// Is the growth over the window larger than the materiality threshold?
    pub material: bool,
    /// Is the series growing: CI above zero, material, and at least medium confidence.
    pub growing: bool,
    pub confidence: Confidence,
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Trend of `(t seconds, bytes)` points. `min_growth` is the materiality threshold in bytes: growth over the
/// observed span below it is never called growth. Returns `None` with fewer than 3 points.
pub fn trend(points: &[(f64, f64)], min_growth: f64) -> Option<Trend> {
    if points.len() < 3 {
        return None;
    }
    let pts: Vec<(f64, f64)> = if points.len() > MAX_POINTS {
        let step = points.len() as f64 / MAX_POINTS as f64;
        (0..MAX_POINTS).map(|i| points[((i as f64 * step) as usize).min(points.len() - 1)]).collect()
    } else {
        points.to_vec()
    };
    let n = pts.len();
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    let mut s: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            let dt = pts[j].0 - pts[i].0;
            let dv = pts[j].1 - pts[i].1;
            if dt > 0.0 {
                slopes.push(dv / dt);
            }
            s += if dv > 0.0 {
                1
            } else if dv < 0.0 {
                -1
            } else {
                0
            };
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(|a, b| a.total_cmp(b));
    let slope = median(&slopes);
    let nf = n as f64;
    let var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0;
    let sd = var_s.sqrt();
    let z = if s > 0 {
        (s as f64 - 1.0) / sd
    } else if s < 0 {
        (s as f64 + 1.0) / sd
    } else {
        0.0
    };
    let span_secs = pts[n - 1].0 - pts[0].0;
    let big_n = slopes.len() as f64;
    let c = 1.96 * sd;
    let lo_rank = ((big_n - c) / 2.0).floor().max(0.0) as usize;
    let hi_rank = (((big_n + c) / 2.0).ceil() as usize).min(slopes.len() - 1);
    let (slope_low, slope_high) = (slopes[lo_rank.min(slopes.len() - 1)], slopes[hi_rank]);
    let mut values: Vec<f64> = pts.iter().map(|p| p.1).collect();
    values.sort_by(|a, b| a.total_cmp(b));
    let material = slope * span_secs > min_growth;
    let significant = slope_low > 0.0;
    // Few but exact points (post-GC values are not noisy): a clean monotone rise far above the scatter
    // around the fitted line is strong evidence even where Mann–Kendall lacks power (n = 4 gives z ≤ 1.7).
    let tau = s as f64 / (nf * (nf - 1.0) / 2.0);
    let intercept = {
        let mut a: Vec<f64> = pts.iter().map(|p| p.1 - slope * p.0).collect();
        a.sort_by(|x, y| x.total_cmp(y));
        median(&a)
    };
    let mut resid: Vec<f64> = pts.iter().map(|p| (p.1 - intercept - slope * p.0).abs()).collect();
    resid.sort_by(|x, y| x.total_cmp(y));
    let noise = (median(&resid) * 1.4826).max(1.0);
    let snr = slope * span_secs / noise;
    let confidence = if significant && material && ((z >= 3.0 && n >= 8) || (n >= 4 && tau >= 0.999 && snr >= 10.0)) {
        Confidence::High
    } else if significant && material && (z >= 2.0 || (n >= 4 && tau >= 0.6 && snr >= 5.0)) {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    Some(Trend {
        slope,
        slope_low,
        slope_high,
        z,
        points: n,
        span_secs,
        median: median(&values),
        material,
        growing: confidence >= Confidence::Medium,
        confidence,
    })
}

/// `4.1 MB/min` (decimal megabytes, as the issue words it).
pub fn rate_text(bytes_per_sec: f64) -> String {
    let per_min = bytes_per_sec * 60.0;
    let abs = per_min.abs();
    let (value, unit) = if abs >= 1e9 {
        (per_min / 1e9, "GB")
    } else if abs >= 1e6 {
        (per_min / 1e6, "MB")
    } else if abs >= 1e3 {
        (per_min / 1e3, "kB")
    } else {
        (per_min, "B")
    };
    let sign = if value > 0.0 { "+" } else { "" };
    format!("{sign}{value:.1} {unit}/min")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(i: usize) -> f64 {
        // Deterministic pseudo-noise in [-0.5, 0.5).
        ((i as f64 * 12.9898).sin() * 43758.5453).fract() - 0.5
    }

    #[test]
    fn steady_growth_is_high_confidence() {
        let pts: Vec<(f64, f64)> =
            (0..30).map(|i| (i as f64, 50e6 + 70_000.0 * i as f64 + 200_000.0 * noise(i))).collect();
        let t = trend(&pts, 1e6).unwrap();
        assert!((t.slope - 70_000.0).abs() < 15_000.0, "{t:?}");
        assert!(t.growing);
        assert_eq!(t.confidence, Confidence::High);
        assert_eq!(rate_text(t.slope).split(' ').nth(1), Some("MB/min"));
    }

    #[test]
    fn flat_noise_is_not_growth() {
        let pts: Vec<(f64, f64)> = (0..60).map(|i| (i as f64, 50e6 + 3e6 * noise(i))).collect();
        let t = trend(&pts, 1e6).unwrap();
        assert!(!t.growing, "{t:?}");
        assert_eq!(t.confidence, Confidence::Low);
    }

    #[test]
    fn tiny_but_steady_growth_is_not_material() {
        let pts: Vec<(f64, f64)> = (0..60).map(|i| (i as f64, 50e6 + 100.0 * i as f64)).collect();
        let t = trend(&pts, 1e6).unwrap();
        assert!(t.slope > 0.0 && t.z > 3.0);
        assert!(!t.material && !t.growing);
    }

    #[test]
    fn few_exact_points_rising_far_above_scatter_are_high() {
        // Four post-forced-GC values: Mann–Kendall alone cannot reach significance at n = 4.
        let pts = [(0.0, 10e6), (3.0, 12.1e6), (6.0, 13.9e6), (9.0, 16.0e6)];
        let t = trend(&pts, 1e6).unwrap();
        assert!(t.z < 2.0);
        assert_eq!(t.confidence, Confidence::High, "{t:?}");
        // The same spread without order is not growth.
        let shuffled = [(0.0, 12.1e6), (3.0, 16.0e6), (6.0, 10e6), (9.0, 13.9e6)];
        let t = trend(&shuffled, 1e6).unwrap();
        assert!(!t.growing, "{t:?}");
    }

    #[test]
    fn outliers_do_not_move_the_slope() {
        let mut pts: Vec<(f64, f64)> = (0..40).map(|i| (i as f64, 10e6)).collect();
        pts[5].1 = 500e6;
        pts[30].1 = 900e6;
        let t = trend(&pts, 1e6).unwrap();
        assert_eq!(t.slope, 0.0);
        assert!(!t.growing);
        assert!(trend(&pts[..2], 0.0).is_none());
    }
}
