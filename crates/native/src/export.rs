//! A dump as a [`leakscope_profile::StackProfile`], so that pprof, folded stacks and flame graphs are written by
//! leakscope-profile's writers, the same ones as for V8 heap profiles.
//!
//! Sample types, in Go's heap order: alloc_objects/count, alloc_space/bytes, inuse_objects/count,
//! inuse_space/bytes ([`INUSE_SPACE`] is the default). Values are already unbiased (weights applied). One sample per
//! raw stack of the dump. Each frame is located at its call site (return address − 1) on the module that contains
//! it; JIT and unknown frames sit on the synthetic mapping (named, so pprof does not try to symbolize them).
//! Functions inlined at a call site share its pprof `Location` (one `Line` each, the caller last).

use crate::dump::Dump;
use crate::symbolize::Frame;
use leakscope_profile::{Frame as ProfileFrame, Mapping, StackProfile, ValueType};

/// Index of the sample types in the profile built by [`stack_profile`].
pub const ALLOC_OBJECTS: usize = 0;
pub const ALLOC_SPACE: usize = 1;
pub const INUSE_OBJECTS: usize = 2;
pub const INUSE_SPACE: usize = 3;

/// Builds the profile of `dump`, with `frames[stack id]` from [`crate::Symbolizer::symbolize_dump`].
pub fn stack_profile(dump: &Dump, frames: &[Vec<Frame>]) -> StackProfile {
    let mut p = StackProfile::new(vec![
        ValueType::new("alloc_objects", "count"),
        ValueType::new("alloc_space", "bytes"),
        ValueType::new("inuse_objects", "count"),
        ValueType::new("inuse_space", "bytes"),
    ]);
    p.default_sample_type = Some(INUSE_SPACE);
    p.period_type = Some(ValueType::new("space", "bytes"));
    p.period = i64::try_from(dump.header.interval).unwrap_or(i64::MAX);
    p.time_nanos = (dump.header.time_unix_ms as i64).saturating_mul(1_000_000);
    p.comments.push(format!("leakscope native dump of pid {} ({})", dump.header.pid, dump.header.exe));
    p.mappings = dump
        .modules
        .iter()
        .map(|m| Mapping {
            memory_start: m.start,
            memory_limit: m.end,
            file_offset: m.offset,
            file: m.path.clone(),
            build_id: String::new(),
            has_functions: true,
        })
        .collect();
    let mut inuse = vec![(0.0f64, 0.0f64); dump.stacks.len()];
    for s in &dump.samples {
        if let Some(e) = inuse.get_mut(s.stack as usize) {
            e.0 += s.weight;
            e.1 += s.weight * s.size as f64;
        }
    }
    for (id, raw) in dump.stacks.iter().enumerate() {
        let symbolized = frames.get(id).map(Vec::as_slice).unwrap_or(&[]);
        // The symbolized frames come in groups, one per return address: inlined callees first, then the
        // function that holds the call (`inlined == false`).
        let mut k = 0;
        let mut stack = Vec::with_capacity(symbolized.len());
        for f in symbolized {
            let ret = raw.frames.get(k).copied().unwrap_or(f.address);
            stack.push(p.add_frame(profile_frame(dump, f, ret.saturating_sub(1))));
            if !f.inlined {
                k += 1;
            }
        }
        if stack.is_empty() {
            stack.push(p.add_frame(ProfileFrame { function: "(no stack)".into(), ..ProfileFrame::default() }));
        }
        stack.reverse(); // root first
        let values = vec![
            raw.alloc_objects.round() as i64,
            raw.alloc_space.round() as i64,
            inuse[id].0.round() as i64,
            inuse[id].1.round() as i64,
        ];
        p.add_sample(stack, values).expect("four values and interned frames");
    }
    p
}

fn profile_frame(dump: &Dump, f: &Frame, call_site: u64) -> ProfileFrame {
    ProfileFrame {
        function: f.function.clone().unwrap_or_else(|| f.label()),
        file: f.file.clone().unwrap_or_default(),
        line: f.line.map_or(0, i64::from),
        address: call_site,
        mapping: dump.modules.iter().position(|m| call_site >= m.start && call_site < m.end),
        inlined: f.inlined,
        display: f.label(),
        ..ProfileFrame::default()
    }
}
