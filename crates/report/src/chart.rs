//! The memory-over-time chart as inline SVG: no script, no network, scales with the page.

use crate::{human_bytes, MemoryPoint, Round};
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// One line of the chart.
struct Series {
    name: &'static str,
    class: &'static str,
    value: fn(&MemoryPoint) -> u64,
}

const SERIES: [Series; 4] = [
    Series { name: "rss", class: "rss", value: |p| p.rss },
    Series { name: "heapTotal", class: "heap-total", value: |p| p.heap_total },
    Series { name: "heapUsed", class: "heap-used", value: |p| p.heap_used },
    Series { name: "external", class: "external", value: |p| p.external },
];

/// A round number of binary units (1, 2 or 5 × 10ⁿ KiB/MiB/GiB) near `max / 4`, so the axis has about four
/// labelled lines that read well.
fn tick_step(max: u64) -> u64 {
    let rough = (max / 4).max(1);
    let mut unit = 1u64;
    while rough / unit >= 512 && unit < 1 << 40 {
        unit *= 1024;
    }
    for n in [1, 2, 5, 10, 20, 50, 100, 200, 500] {
        if n * unit >= rough {
            return n * unit;
        }
    }
    1024 * unit
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The chart, or `None` when there are fewer than two points to draw.
pub(crate) fn memory_svg(points: &[MemoryPoint], rounds: &[Round]) -> Option<String> {
    if points.len() < 2 {
        return None;
    }
    let t_end = points.iter().map(|p| p.t).fold(0.0, f64::max).max(1e-3);
    let max = points.iter().map(|p| p.rss.max(p.heap_total).max(p.external)).max().unwrap_or(1).max(1);
    let step = tick_step(max);
    let y_max = max.div_ceil(step) * step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |t: f64| LEFT + t / t_end * plot_w;
    let y = |v: u64| TOP + plot_h - v as f64 / y_max as f64 * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="memory over time" xmlns="http://www.w3.org/2000/svg">"#
    );
    for round in rounds {
        let (x0, x1) = (x(round.started), x(round.ended.min(t_end)));
        let class = if round.warm_up { "round warm-up" } else { "round" };
        let label = if round.warm_up { "warm-up".to_string() } else { format!("round {}", round.index) };
        let _ = write!(
            svg,
            r#"<rect class="{class}" x="{x0:.1}" y="{TOP}" width="{:.1}" height="{plot_h}"><title>{label}</title></rect>"#,
            (x1 - x0).max(0.5)
        );
        // Narrow rounds keep their tooltip but not a label that would overlap the next one.
        if x1 - x0 >= 60.0 {
            let _ =
                write!(svg, r#"<text class="round-label" x="{:.1}" y="{:.1}">{label}</text>"#, x0 + 3.0, TOP + 12.0);
        }
    }
    let mut tick = 0;
    while tick <= y_max {
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(tick) + 4.0,
            human_bytes(tick),
            y = y(tick)
        );
        tick += step;
    }
    let t_step = [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]
        .into_iter()
        .find(|step| t_end / step <= 6.0)
        .unwrap_or(7200.0);
    for k in 0..=(t_end / t_step) as usize {
        let t = t_step * k as f64;
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{t:.0} s</text>"#,
            x(t),
            HEIGHT - BOTTOM + 18.0
        );
    }
    for series in &SERIES {
        let mut d = String::new();
        for (i, p) in points.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1}", if i == 0 { "M" } else { " L" }, x(p.t), y((series.value)(p)));
        }
        let last = points.last().map(series.value).unwrap_or(0);
        let _ = write!(
            svg,
            r#"<path class="line {}" d="{d}"><title>{} (last {})</title></path>"#,
            series.class,
            series.name,
            human_bytes(last)
        );
    }
    for round in rounds {
        let Some(snapshot) = &round.snapshot else { continue };
        let sx = x(snapshot.at.min(t_end));
        let after = snapshot.heap_used_after_gc.map(|b| format!(", heapUsed after GC {}", human_bytes(b)));
        let title = format!("snapshot {} at {:.1} s{}", round.index, snapshot.at, after.unwrap_or_default());
        let _ = write!(
            svg,
            r#"<g class="snapshot-mark"><line x1="{sx:.1}" x2="{sx:.1}" y1="{TOP}" y2="{:.1}"/><circle cx="{sx:.1}" cy="{TOP}" r="4"/><title>{}</title></g>"#,
            TOP + plot_h,
            escape(&title)
        );
    }
    let _ = write!(
        svg,
        r#"<line class="axis-line" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}"/><line class="axis-line" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/></svg>"#,
        TOP + plot_h,
        WIDTH - RIGHT,
        TOP + plot_h,
        TOP + plot_h
    );
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: f64, mib: u64) -> MemoryPoint {
        MemoryPoint {
            t,
            rss: mib << 20,
            heap_total: (mib / 2) << 20,
            heap_used: (mib / 3) << 20,
            external: 1 << 20,
            array_buffers: 0,
        }
    }

    #[test]
    fn draws_every_series_and_snapshot_mark() {
        let points: Vec<_> = (0..10).map(|i| point(i as f64, 60 + i * 5)).collect();
        let rounds = vec![Round {
            index: 1,
            warm_up: false,
            started: 2.0,
            ended: 5.0,
            work: String::new(),
            snapshot: Some(crate::SnapshotRef { path: "s1".into(), bytes: 1, at: 5.0, heap_used_after_gc: Some(7) }),
        }];
        let svg = memory_svg(&points, &rounds).expect("two or more points");
        for class in ["line rss", "line heap-total", "line heap-used", "line external", "snapshot-mark"] {
            assert!(svg.contains(class), "missing {class}");
        }
        // The highest point (rss 105 MiB) is inside the plot: no coordinate above the top margin.
        assert!(svg.contains("snapshot 1 at 5.0 s, heapUsed after GC 7 B"));
        assert!(memory_svg(&points[..1], &rounds).is_none());
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(100), 50);
        assert_eq!(tick_step(1000), 500);
        assert_eq!(tick_step(4 << 20), 1 << 20);
        assert_eq!(tick_step(300 << 20), 100 << 20);
        assert_eq!(tick_step(0), 1);
    }
}
