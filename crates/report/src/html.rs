//! The HTML rendering: one file, styles inline, the chart as inline SVG and the flame graph as a `data:` URL,
//! so it opens from disk with no network access.

use crate::{chart, human_bytes, Error, HuntReport};
use base64::Engine;
use minijinja::{Environment, Value};

const TEMPLATE: &str = include_str!("../templates/report.html");

/// A source file as a link that opens from the report: absolute paths become `file://` URLs; anything else
/// (`node:internal/…`, relative names) stays as it is, which browsers leave inert.
fn href(file: &str) -> String {
    if file.starts_with('/') {
        let encoded: String = file
            .chars()
            .map(|c| match c {
                ' ' => "%20".to_string(),
                '#' => "%23".to_string(),
                '?' => "%3F".to_string(),
                c => c.to_string(),
            })
            .collect();
        format!("file://{encoded}")
    } else if file.starts_with("file://") || file.starts_with("http://") || file.starts_with("https://") {
        file.to_string()
    } else {
        "#".to_string()
    }
}

fn percent(value: f64) -> String {
    if value >= 1.0 {
        "≥ 100%".into()
    } else {
        format!("{:.1}%", value * 100.0)
    }
}

/// `created_unix_ms` as `2026-11-28 07:30 UTC`.
fn utc_time(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// The `height` attribute of an SVG document's root element.
fn svg_height(svg: &str) -> Option<u32> {
    let root = &svg[svg.find("<svg")?..];
    let root = &root[..root.find('>')?];
    let value = root.split(" height=\"").nth(1)?.split('"').next()?;
    value.trim_end_matches("px").parse::<f64>().ok().map(|h| h.ceil() as u32)
}

/// Renders the report as one self-contained HTML document.
pub fn render_html(report: &HuntReport) -> Result<String, Error> {
    let mut env = Environment::new();
    env.add_filter("bytes", |v: u64| human_bytes(v));
    env.add_filter("pct", |v: f64| percent(v));
    env.add_filter("href", |v: String| href(&v));
    env.add_template("report.html", TEMPLATE)?;
    let chart = chart::memory_svg(&report.memory, &report.rounds).map(Value::from_safe_string);
    let flamegraph = report.profile.as_ref().and_then(|p| p.flamegraph_svg.as_ref()).map(|svg| {
        format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg.as_bytes()))
    });
    // The frame is as tall as the flame graph (inferno sets the SVG's height from the stack depth).
    let flamegraph_height =
        report.profile.as_ref().and_then(|p| p.flamegraph_svg.as_deref()).and_then(svg_height).map_or(480, |h| h + 8);
    let context = minijinja::context! {
        report => Value::from(minijinja::value::Serde(report)),
        verdict => report.verdict(),
        created => utc_time(report.created_unix_ms),
        chart => chart,
        flamegraph => flamegraph,
        flamegraph_height => flamegraph_height,
    };
    Ok(env.get_template("report.html")?.render(context)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_only_absolute_files() {
        assert_eq!(href("/srv/app/my file.js"), "file:///srv/app/my%20file.js");
        assert_eq!(href("node:events"), "#");
        assert_eq!(href("https://example.com/a.js"), "https://example.com/a.js");
    }

    #[test]
    fn reads_the_svg_height() {
        assert_eq!(
            svg_height(r#"<?xml version="1.0"?><svg version="1.1" width="1200" height="342" x="1">"#),
            Some(342)
        );
        assert_eq!(svg_height("<svg width=\"3\">"), None);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00 UTC");
        // 2026-11-28 07:30:00 UTC
        assert_eq!(utc_time(1_795_851_000_000), "2026-11-28 07:30 UTC");
    }
}
