//! pprof `profile.proto` (google/pprof `proto/profile.proto`, package `perftools.profiles`): the message
//! set written by hand for `prost` (no `protoc` needed), and the encoder from a [`StackProfile`].
//!
//! Mapping: every distinct [`Frame`] becomes one `Location` with one `Line` (location id = frame index + 1);
//! a run of [`Frame::inlined`] frames and the frame they were inlined into becomes one more `Location` with
//! one `Line` each, the caller last. Functions are shared by frames with the same name, system name, file and
//! start line. Frames without a mapping sit on one synthetic mapping with `has_functions` set, so pprof never
//! tries to symbolize them. Sample stacks are written leaf first, as pprof expects. The file on disk is
//! gzip-compressed.

use crate::error::Result;
use crate::stacks::{Frame, StackProfile};
use flate2::write::GzEncoder;
use prost::Message;
use std::collections::HashMap;
use std::io::Write;

/// `perftools.profiles.Profile`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
    #[prost(int64, tag = "15")]
    pub doc_url: i64,
}

/// `perftools.profiles.ValueType` (string-table indexes).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// `perftools.profiles.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// `perftools.profiles.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
    #[prost(int64, tag = "3")]
    pub num: i64,
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

/// `perftools.profiles.Mapping`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

/// `perftools.profiles.Location`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

/// `perftools.profiles.Line`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
    #[prost(int64, tag = "3")]
    pub column: i64,
}

/// `perftools.profiles.Function`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

/// The string table under construction (entry 0 is always "").
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings::default();
        s.get("");
        s
    }

    fn get(&mut self, text: &str) -> i64 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(text.to_string());
        self.index.insert(text.to_string(), i);
        i
    }
}

impl StackProfile {
    /// Builds the pprof message.
    pub fn to_pprof(&self) -> Profile {
        let mut strings = Strings::new();
        let mut profile = Profile {
            sample_type: self
                .sample_types
                .iter()
                .map(|t| ValueType { r#type: strings.get(&t.kind), unit: strings.get(&t.unit) })
                .collect(),
            time_nanos: self.time_nanos,
            duration_nanos: self.duration_nanos,
            period: self.period,
            ..Profile::default()
        };
        profile.period_type =
            self.period_type.as_ref().map(|t| ValueType { r#type: strings.get(&t.kind), unit: strings.get(&t.unit) });
        profile.default_sample_type =
            self.default_sample_type.and_then(|i| self.sample_types.get(i)).map(|t| strings.get(&t.kind)).unwrap_or(0);
        profile.comment = self.comments.iter().map(|c| strings.get(c)).collect();

        // Mappings: the real ones (ids 1..), then one synthetic mapping for frames without one.
        for (i, m) in self.mappings.iter().enumerate() {
            profile.mapping.push(Mapping {
                id: i as u64 + 1,
                memory_start: m.memory_start,
                memory_limit: m.memory_limit,
                file_offset: m.file_offset,
                filename: strings.get(&m.file),
                build_id: strings.get(&m.build_id),
                has_functions: m.has_functions,
                has_filenames: m.has_functions,
                has_line_numbers: m.has_functions,
                has_inline_frames: m.has_functions,
            });
        }
        let synthetic = if self.frames.iter().any(|f| f.mapping.is_none()) {
            let id = profile.mapping.len() as u64 + 1;
            profile.mapping.push(Mapping {
                id,
                filename: strings.get("[js]"),
                has_functions: true,
                has_filenames: true,
                has_line_numbers: true,
                ..Mapping::default()
            });
            id
        } else {
            0
        };

        let mut functions: HashMap<(&str, &str, &str, i64), u64> = HashMap::new();
        let mut lines = Vec::with_capacity(self.frames.len());
        for (i, frame) in self.frames.iter().enumerate() {
            let Frame { function, system_name, file, start_line, line, column, address, mapping, .. } = frame;
            let system = if system_name.is_empty() { function.as_str() } else { system_name.as_str() };
            let key = (function.as_str(), system, file.as_str(), *start_line);
            let function_id = match functions.get(&key) {
                Some(&id) => id,
                None => {
                    let id = profile.function.len() as u64 + 1;
                    profile.function.push(Function {
                        id,
                        name: strings.get(function),
                        system_name: strings.get(system),
                        filename: strings.get(file),
                        start_line: *start_line,
                    });
                    functions.insert(key, id);
                    id
                }
            };
            let mapping_id = match mapping {
                Some(m) if *m < self.mappings.len() => *m as u64 + 1,
                _ => synthetic,
            };
            let l = Line { function_id, line: if *line > 0 { *line } else { *start_line }, column: *column };
            lines.push(l.clone());
            profile.location.push(Location {
                id: i as u64 + 1,
                mapping_id,
                address: *address,
                line: vec![l],
                is_folded: false,
            });
        }
        // Inlined runs: frames (leaf first) up to and including the one they were inlined into.
        let mut inlined_runs: HashMap<Vec<usize>, u64> = HashMap::new();
        for sample in &self.samples {
            let mut location_id = Vec::with_capacity(sample.stack.len());
            let mut run: Vec<usize> = Vec::new();
            for (k, &f) in sample.stack.iter().enumerate().rev() {
                run.push(f);
                if self.frames[f].inlined && k > 0 {
                    continue;
                }
                if run.len() == 1 {
                    location_id.push(f as u64 + 1);
                } else {
                    let next_id = profile.location.len() as u64 + 1;
                    let id = *inlined_runs.entry(run.clone()).or_insert(next_id);
                    if id == next_id {
                        let outer = &profile.location[f];
                        profile.location.push(Location {
                            id,
                            mapping_id: outer.mapping_id,
                            address: outer.address,
                            line: run.iter().map(|&g| lines[g].clone()).collect(),
                            is_folded: false,
                        });
                    }
                    location_id.push(id);
                }
                run.clear();
            }
            profile.sample.push(Sample {
                location_id,
                value: sample.values.clone(),
                label: sample
                    .labels
                    .iter()
                    .map(|l| Label {
                        key: strings.get(&l.key),
                        num: l.value,
                        num_unit: if l.unit.is_empty() { 0 } else { strings.get(&l.unit) },
                        ..Label::default()
                    })
                    .collect(),
            });
        }
        profile.string_table = strings.table;
        profile
    }

    /// The serialized (uncompressed) pprof message.
    pub fn encode_pprof(&self) -> Vec<u8> {
        self.to_pprof().encode_to_vec()
    }

    /// Writes the gzip-compressed pprof profile (the `.pb.gz` that `go tool pprof` reads).
    pub fn write_pprof_gz(&self, out: &mut dyn Write) -> Result<()> {
        let mut gz = GzEncoder::new(out, flate2::Compression::default());
        gz.write_all(&self.encode_pprof())?;
        gz.finish()?.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::ValueType as Vt;
    use std::io::Read;

    #[test]
    fn encodes_and_decodes() {
        let mut p = StackProfile::new(vec![Vt::new("inuse_objects", "count"), Vt::new("inuse_space", "bytes")]);
        p.default_sample_type = Some(1);
        p.period_type = Some(Vt::new("space", "bytes"));
        p.period = 524288;
        let a = p.add_frame(Frame { function: "main".into(), file: "a.js".into(), start_line: 1, ..Frame::default() });
        let b = p.add_frame(Frame { function: "make".into(), file: "a.js".into(), start_line: 5, ..Frame::default() });
        p.add_sample(vec![a, b], vec![3, 300]).unwrap();
        let mut gz = Vec::new();
        p.write_pprof_gz(&mut gz).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut raw).unwrap();
        let decoded = Profile::decode(raw.as_slice()).unwrap();
        assert_eq!(decoded.string_table[0], "");
        assert_eq!(decoded.sample[0].location_id, vec![2, 1]);
        assert_eq!(decoded.sample[0].value, vec![3, 300]);
        assert_eq!(decoded.string_table[decoded.default_sample_type as usize], "inuse_space");
        let f = &decoded.function[decoded.location[1].line[0].function_id as usize - 1];
        assert_eq!(decoded.string_table[f.name as usize], "make");
        assert_eq!(f.start_line, 5);
        assert!(decoded.mapping[0].has_functions);
    }

    #[test]
    fn inlined_frames_share_one_location() {
        let mut p = StackProfile::new(vec![Vt::new("inuse_space", "bytes")]);
        p.mappings.push(crate::stacks::Mapping { file: "/bin/app".into(), has_functions: true, ..Default::default() });
        let native = |name: &str, inlined: bool| Frame {
            function: name.into(),
            file: "app.c".into(),
            line: 3,
            address: 0x1234,
            mapping: Some(0),
            inlined,
            display: format!("{name} (app.c:3)"),
            ..Frame::default()
        };
        let main = p.add_frame(Frame { address: 0x1000, ..native("main", false) });
        let outer = p.add_frame(native("outer", false));
        let inner = p.add_frame(native("inner", true));
        p.add_sample(vec![main, outer, inner], vec![100]).unwrap();
        p.add_sample(vec![main, outer], vec![1]).unwrap();
        assert_eq!(p.folded(0)[0], "main (app.c:3);outer (app.c:3);inner (app.c:3) 100");
        let decoded = Profile::decode(p.encode_pprof().as_slice()).unwrap();
        // Locations 1..=3 are the frames; 4 is inner inlined into outer.
        assert_eq!(decoded.sample[0].location_id, vec![4, 1]);
        assert_eq!(decoded.sample[1].location_id, vec![2, 1]);
        let loc = &decoded.location[3];
        assert_eq!((loc.address, loc.mapping_id), (0x1234, 1));
        let names: Vec<&str> = loc
            .line
            .iter()
            .map(|l| decoded.string_table[decoded.function[l.function_id as usize - 1].name as usize].as_str())
            .collect();
        assert_eq!(names, ["inner", "outer"]);
        assert!(decoded.mapping[0].has_inline_frames);
    }
}
