//! Folded stacks (`root;…;leaf value`, Brendan Gregg's format) and flamegraph SVG (inferno).

use crate::report::Profile;
use std::io::Write;

/// Which quantity the folded lines carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    InuseSpace,
    AllocSpace,
}

/// One folded line per stack with a non-zero value (bytes, rounded).
pub fn folded(profile: &Profile, measure: Measure) -> Vec<String> {
    let mut lines = Vec::new();
    for r in &profile.rows {
        let v = match measure {
            Measure::InuseSpace => r.inuse_space.value,
            Measure::AllocSpace => r.alloc_space,
        }
        .round() as u64;
        if v == 0 {
            continue;
        }
        let names: Vec<String> = if r.frames.is_empty() {
            vec!["(no stack)".to_string()]
        } else {
            r.frames.iter().rev().map(|f| f.label().replace(';', ":")).collect()
        };
        lines.push(format!("{} {v}", names.join(";")));
    }
    lines
}

/// Renders a flamegraph SVG of live bytes.
pub fn flamegraph(profile: &Profile, title: &str, out: impl Write) -> Result<(), String> {
    let lines = folded(profile, Measure::InuseSpace);
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.count_name = "bytes".to_string();
    opts.colors = inferno::flamegraph::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
    if lines.is_empty() {
        return Err("no live samples to draw".to_string());
    }
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), out).map_err(|e| e.to_string())
}
