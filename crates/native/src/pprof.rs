//! pprof `profile.proto` output (a hand-written subset of google/pprof's `perftools.profiles` messages), gzipped.
//! Sample types, in Go's heap order: alloc_objects/count, alloc_space/bytes, inuse_objects/count,
//! inuse_space/bytes; `default_sample_type` = inuse_space. Values are already unbiased (weights applied).

use crate::dump::Dump;
use crate::symbolize::{Frame, FrameKind};
use prost::Message;
use std::collections::HashMap;
use std::io::Write;

#[derive(Clone, PartialEq, Message)]
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
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
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

#[derive(Clone, PartialEq, Message)]
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

#[derive(Clone, PartialEq, Message)]
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

#[derive(Clone, PartialEq, Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
}

#[derive(Clone, PartialEq, Message)]
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

#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Strings::default();
        s.get("");
        s
    }

    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// Builds the profile for `dump` with `frames[stack id]` from the symbolizer.
pub fn build(dump: &Dump, frames: &[Vec<Frame>]) -> Profile {
    let mut strings = Strings::new();
    let vt = |s: &mut Strings, t: &str, u: &str| ValueType { r#type: s.get(t), unit: s.get(u) };
    let sample_type = vec![
        vt(&mut strings, "alloc_objects", "count"),
        vt(&mut strings, "alloc_space", "bytes"),
        vt(&mut strings, "inuse_objects", "count"),
        vt(&mut strings, "inuse_space", "bytes"),
    ];
    let period_type = Some(vt(&mut strings, "space", "bytes"));
    let mut mappings: Vec<Mapping> = Vec::new();
    for (i, m) in dump.modules.iter().enumerate() {
        let filename = strings.get(&m.path);
        mappings.push(Mapping {
            id: i as u64 + 1,
            memory_start: m.start,
            memory_limit: m.end,
            file_offset: m.offset,
            filename,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            has_inline_frames: true,
            ..Default::default()
        });
    }
    let jit_mapping = mappings.len() as u64 + 1;
    mappings.push(Mapping {
        id: jit_mapping,
        filename: strings.get("[jit]"),
        has_functions: true,
        ..Default::default()
    });
    let mut functions: Vec<Function> = Vec::new();
    let mut function_ids: HashMap<(String, String), u64> = HashMap::new();
    let mut locations: Vec<Location> = Vec::new();
    let mut location_ids: HashMap<u64, u64> = HashMap::new();
    // Per stack: location ids, leaf first.
    let mut stack_locs: Vec<Vec<u64>> = Vec::with_capacity(dump.stacks.len());
    for (id, _) in dump.stacks.iter().enumerate() {
        let fs = frames.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let mut locs = Vec::new();
        let mut i = 0;
        while i < fs.len() {
            let addr = fs[i].address;
            let mut j = i;
            while j < fs.len() && fs[j].address == addr {
                j += 1;
            }
            let loc = *location_ids.entry(addr).or_insert_with(|| {
                let mapping_id = dump
                    .modules
                    .iter()
                    .position(|m| addr > m.start && addr <= m.end)
                    .map(|p| p as u64 + 1)
                    .unwrap_or(if fs[i].kind == FrameKind::Jit { jit_mapping } else { 0 });
                let mut lines = Vec::new();
                for f in &fs[i..j] {
                    let name = f.function.clone().unwrap_or_else(|| f.label());
                    let file = f.file.clone().unwrap_or_default();
                    let fid = *function_ids.entry((name.clone(), file.clone())).or_insert_with(|| {
                        let id = functions.len() as u64 + 1;
                        let n = strings.get(&name);
                        functions.push(Function {
                            id,
                            name: n,
                            system_name: n,
                            filename: strings.get(&file),
                            start_line: 0,
                        });
                        id
                    });
                    lines.push(Line { function_id: fid, line: f.line.unwrap_or(0) as i64 });
                }
                let id = locations.len() as u64 + 1;
                // pprof subtracts nothing for us: record the call site (return address − 1).
                locations.push(Location {
                    id,
                    mapping_id,
                    address: addr.saturating_sub(1),
                    line: lines,
                    is_folded: false,
                });
                id
            });
            locs.push(loc);
            i = j;
        }
        stack_locs.push(locs);
    }
    let mut inuse: Vec<(f64, f64)> = vec![(0.0, 0.0); dump.stacks.len()];
    for s in &dump.samples {
        let e = &mut inuse[s.stack as usize];
        e.0 += s.weight;
        e.1 += s.weight * s.size as f64;
    }
    let bytes_key = strings.get("bytes");
    let _ = bytes_key;
    let sample = dump
        .stacks
        .iter()
        .enumerate()
        .map(|(id, st)| Sample {
            location_id: stack_locs[id].clone(),
            value: vec![
                st.alloc_objects.round() as i64,
                st.alloc_space.round() as i64,
                inuse[id].0.round() as i64,
                inuse[id].1.round() as i64,
            ],
            label: Vec::new(),
        })
        .collect();
    let comment = vec![strings.get(&format!("leakscope native dump of pid {} ({})", dump.header.pid, dump.header.exe))];
    let default_sample_type = strings.get("inuse_space");
    Profile {
        sample_type,
        sample,
        mapping: mappings,
        location: locations,
        function: functions,
        string_table: strings.table,
        time_nanos: (dump.header.time_unix_ms as i64).saturating_mul(1_000_000),
        period_type,
        period: dump.header.interval as i64,
        comment,
        default_sample_type,
    }
}

/// Writes the gzipped profile.
pub fn write(profile: &Profile, out: impl Write) -> std::io::Result<()> {
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&profile.encode_to_vec())?;
    gz.finish()?;
    Ok(())
}
