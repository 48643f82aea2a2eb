//! A profiler-neutral stack profile: interned frames, samples with one value per sample type, and the
//! writers built on it (gzipped pprof in [`crate::pprof`], folded stacks, flame graph SVG).
//!
//! Any sampling profiler can fill a [`StackProfile`] (the heap sampler does it in
//! [`crate::Analysis::to_stack_profile`]; a native malloc sampler would add mappings and addresses) and get
//! all three output formats.

use crate::error::{ProfileError, Result};
use std::collections::HashMap;
use std::io::Write;

/// One stack frame: a function, where it is defined, and the line executing in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Frame {
    /// Display name (`(anonymous)` for unnamed JS functions; demangled for native code).
    pub function: String,
    /// Mangled or otherwise raw name (pprof `system_name`); empty = same as `function`.
    pub system_name: String,
    /// Source file or URL; empty when unknown.
    pub file: String,
    /// 1-based line where the function starts; 0 = unknown.
    pub start_line: i64,
    /// 1-based line executing in this frame; 0 = unknown.
    pub line: i64,
    /// 1-based column; 0 = unknown.
    pub column: i64,
    /// Instruction address for native frames (0 for JS); with `mapping`, pprof can re-symbolize.
    pub address: u64,
    /// Index into [`StackProfile::mappings`].
    pub mapping: Option<usize>,
    /// Inlined into the frame that follows it towards the root (same address): pprof gets one `Location` with a
    /// `Line` per inlined function, the caller last. Folded stacks and flame graphs show every frame.
    pub inlined: bool,
    /// Label in folded stacks and flame graphs; empty = `function file:line` (see [`Frame::label`]).
    pub display: String,
}

impl Frame {
    /// The label used in folded stacks, flame graphs and reports: [`Frame::display`] if set, else
    /// `function file:line` (1-based).
    pub fn label(&self) -> String {
        if !self.display.is_empty() {
            return self.display.clone();
        }
        let line = if self.line > 0 { self.line } else { self.start_line };
        match (self.file.is_empty(), line > 0) {
            (true, _) => self.function.clone(),
            (false, true) => format!("{} {}:{line}", self.function, self.file),
            (false, false) => format!("{} {}", self.function, self.file),
        }
    }
}

/// A loaded binary or library (native profiles); JS profiles leave this empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mapping {
    pub memory_start: u64,
    pub memory_limit: u64,
    pub file_offset: u64,
    pub file: String,
    pub build_id: String,
    /// The frames on this mapping carry names already (no re-symbolization needed).
    pub has_functions: bool,
}

/// pprof `ValueType`: what a sample value measures and in which unit (`inuse_space`/`bytes`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValueType {
    pub kind: String,
    pub unit: String,
}

impl ValueType {
    pub fn new(kind: &str, unit: &str) -> ValueType {
        ValueType { kind: kind.to_string(), unit: unit.to_string() }
    }
}

/// A numeric pprof label (e.g. `bytes` = object size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumLabel {
    pub key: String,
    pub value: i64,
    pub unit: String,
}

/// One stack and its values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackSample {
    /// Frame indexes, **root first** (the allocating frame last).
    pub stack: Vec<usize>,
    /// One value per [`StackProfile::sample_types`] entry.
    pub values: Vec<i64>,
    pub labels: Vec<NumLabel>,
}

/// Stacks with values, ready to be written as pprof, folded stacks or a flame graph.
#[derive(Debug, Clone, Default)]
pub struct StackProfile {
    pub sample_types: Vec<ValueType>,
    /// Index into `sample_types` that viewers show first (pprof `default_sample_type`).
    pub default_sample_type: Option<usize>,
    /// pprof `period_type`/`period`: for byte sampling `space`/`bytes` and the mean sampling interval.
    pub period_type: Option<ValueType>,
    pub period: i64,
    /// Wall-clock start (ns since the Unix epoch) and length of the profile; 0 = unknown.
    pub time_nanos: i64,
    pub duration_nanos: i64,
    pub comments: Vec<String>,
    pub mappings: Vec<Mapping>,
    pub frames: Vec<Frame>,
    pub samples: Vec<StackSample>,
    frame_index: HashMap<Frame, usize>,
}

impl StackProfile {
    pub fn new(sample_types: Vec<ValueType>) -> StackProfile {
        StackProfile { sample_types, ..StackProfile::default() }
    }

    /// Interns a frame and returns its index.
    pub fn add_frame(&mut self, frame: Frame) -> usize {
        if let Some(&i) = self.frame_index.get(&frame) {
            return i;
        }
        let i = self.frames.len();
        self.frames.push(frame.clone());
        self.frame_index.insert(frame, i);
        i
    }

    /// Adds a sample; `stack` is root first. Values must have one entry per sample type.
    pub fn add_sample(&mut self, stack: Vec<usize>, values: Vec<i64>) -> Result<()> {
        if values.len() != self.sample_types.len() {
            return Err(ProfileError::Inconsistent(format!(
                "a sample has {} values for {} sample types",
                values.len(),
                self.sample_types.len()
            )));
        }
        if let Some(bad) = stack.iter().find(|&&f| f >= self.frames.len()) {
            return Err(ProfileError::Inconsistent(format!("a sample names frame {bad} which does not exist")));
        }
        self.samples.push(StackSample { stack, values, labels: Vec::new() });
        Ok(())
    }

    /// Index of the sample type called `kind` (e.g. `inuse_space`).
    pub fn value_index(&self, kind: &str) -> Option<usize> {
        self.sample_types.iter().position(|t| t.kind == kind)
    }

    /// Sum of one value over all samples.
    pub fn total(&self, value: usize) -> i64 {
        self.samples.iter().map(|s| s.values.get(value).copied().unwrap_or(0)).sum()
    }

    /// Collapsed stacks (`root;…;leaf VALUE` per line, identical stacks merged, zero values left out),
    /// the input format of flamegraph.pl, inferno and speedscope. Frames are labelled `function file:line`;
    /// `;` and line breaks in names are replaced.
    pub fn folded(&self, value: usize) -> Vec<String> {
        let labels: Vec<String> = self.frames.iter().map(|f| sanitize(&f.label())).collect();
        let mut merged: HashMap<&[usize], i64> = HashMap::new();
        let mut order: Vec<&[usize]> = Vec::new();
        for sample in &self.samples {
            let v = sample.values.get(value).copied().unwrap_or(0);
            if v <= 0 || sample.stack.is_empty() {
                continue;
            }
            let entry = merged.entry(sample.stack.as_slice()).or_insert_with(|| {
                order.push(sample.stack.as_slice());
                0
            });
            *entry += v;
        }
        order
            .into_iter()
            .map(|stack| {
                let names: Vec<&str> = stack.iter().map(|&f| labels[f].as_str()).collect();
                format!("{} {}", names.join(";"), merged[stack])
            })
            .collect()
    }

    /// Writes [`StackProfile::folded`] lines, one per line.
    pub fn write_folded(&self, value: usize, out: &mut dyn Write) -> Result<()> {
        for line in self.folded(value) {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    /// Renders a flame graph SVG of one value with inferno (a valid SVG saying so when there is nothing).
    pub fn write_flamegraph(&self, value: usize, title: &str, out: &mut dyn Write) -> Result<()> {
        let lines = self.folded(value);
        let unit = self.sample_types.get(value).map(|t| t.unit.clone()).unwrap_or_default();
        if lines.is_empty() {
            let text = xml_escape(&format!("{title}: no samples"));
            write!(
                out,
                "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"600\" height=\"60\" \
                 xmlns=\"http://www.w3.org/2000/svg\"><text x=\"10\" y=\"30\" font-family=\"Verdana\" \
                 font-size=\"14\">{text}</text></svg>\n"
            )?;
            return Ok(());
        }
        let mut options = inferno::flamegraph::Options::default();
        options.title = title.to_string();
        options.count_name = if unit.is_empty() { "samples".into() } else { unit };
        options.name_type = "Function:".into();
        options.colors = inferno::flamegraph::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
        options.deterministic = true;
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
            .map_err(|e| ProfileError::Flamegraph(e.to_string()))
    }
}

fn sanitize(label: &str) -> String {
    label.replace(';', ":").replace(['\n', '\r'], " ")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, line: i64) -> Frame {
        Frame { function: name.into(), file: "a.js".into(), start_line: line, line, ..Frame::default() }
    }

    #[test]
    fn folded_merges_and_flamegraph_renders() {
        let mut p = StackProfile::new(vec![ValueType::new("inuse_space", "bytes")]);
        let main = p.add_frame(frame("main", 1));
        let make = p.add_frame(frame("make;Record", 5));
        assert_eq!(p.add_frame(frame("main", 1)), main);
        p.add_sample(vec![main, make], vec![100]).unwrap();
        p.add_sample(vec![main, make], vec![50]).unwrap();
        p.add_sample(vec![main], vec![0]).unwrap();
        assert!(p.add_sample(vec![main], vec![1, 2]).is_err());
        assert!(p.add_sample(vec![9], vec![1]).is_err());
        assert_eq!(p.folded(0), vec!["main a.js:1;make:Record a.js:5 150".to_string()]);
        let mut svg = Vec::new();
        p.write_flamegraph(0, "test", &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg") && svg.contains("make:Record"), "{svg}");
        let mut empty = Vec::new();
        StackProfile::new(vec![ValueType::new("x", "bytes")]).write_flamegraph(0, "t", &mut empty).unwrap();
        assert!(String::from_utf8(empty).unwrap().contains("no samples"));
    }
}
