//! The `.heapprofile` model: V8's `HeapProfiler.SamplingHeapProfile`.
//!
//! The call tree is stored flat (`nodes[0]` is the head, children by index), so nothing recursive is left
//! after parsing and the writer is an explicit loop. [`HeapProfile::to_json`] writes the fields in the order
//! V8 and `JSON.stringify` use (`head{callFrame{functionName, scriptId, url, lineNumber, columnNumber},
//! selfSize, id, children}`, `samples[{size, nodeId, ordinal}]`), compact, with JSON.stringify's string
//! escaping, so a file written by Node (`--heap-prof`), DevTools or leakscope parses and writes back to the
//! same bytes. Fields V8 does not write are not kept.
//!
//! Line and column numbers are **0-based** here, as in the protocol; [`CallFrame::line_1based`] is for display.

use crate::error::{ProfileError, Result};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::io::Write;

/// Deepest JSON nesting we read (the tree uses two levels per stack frame, so about 2,000 frames).
pub const MAX_NESTING: usize = 4096;

/// `Runtime.CallFrame` of a profile node. Line and column are 0-based; -1 means unknown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallFrame {
    #[serde(default)]
    pub function_name: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub script_id: String,
    #[serde(default)]
    pub url: String,
    #[serde(default = "minus_one", deserialize_with = "signed")]
    pub line_number: i64,
    #[serde(default = "minus_one", deserialize_with = "signed")]
    pub column_number: i64,
}

impl CallFrame {
    /// The 1-based line for display, if known.
    pub fn line_1based(&self) -> Option<u32> {
        u32::try_from(self.line_number).ok().map(|l| l.saturating_add(1))
    }

    /// The 1-based column for display, if known.
    pub fn column_1based(&self) -> Option<u32> {
        u32::try_from(self.column_number).ok().map(|c| c.saturating_add(1))
    }

    /// The function's name, or `(anonymous)`.
    pub fn display_name(&self) -> &str {
        if self.function_name.is_empty() {
            "(anonymous)"
        } else {
            &self.function_name
        }
    }

    /// `name file:line` (1-based line), or just the name for frames without a script, e.g. `(root)`.
    pub fn display(&self) -> String {
        match (self.url.is_empty(), self.line_1based()) {
            (true, _) => self.display_name().to_string(),
            (false, Some(line)) => format!("{} {}:{line}", self.display_name(), self.url),
            (false, None) => format!("{} {}", self.display_name(), self.url),
        }
    }
}

/// One node of the allocation call tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileNode {
    pub call_frame: CallFrame,
    /// Bytes attributed to this frame excluding its children, as V8 wrote them: already scaled up
    /// (an estimate of live bytes, see the crate docs).
    pub self_size: u64,
    pub id: u64,
    /// Index of the parent in [`HeapProfile::nodes`]; `None` for the head.
    pub parent: Option<usize>,
    /// Indexes of the children in [`HeapProfile::nodes`], in file order.
    pub children: Vec<usize>,
}

/// One entry of `samples`: a sampled object still alive (or, with the include-collected flags, any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Bytes this sample stands for, already scaled by V8: `size × round(1 / (1 − exp(−size/interval)))`.
    #[serde(deserialize_with = "unsigned")]
    pub size: u64,
    #[serde(deserialize_with = "unsigned")]
    pub node_id: u64,
    /// Time order of the samples.
    #[serde(default, deserialize_with = "unsigned")]
    pub ordinal: u64,
}

/// A parsed `.heapprofile`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeapProfile {
    /// Preorder; `nodes[0]` is the head (`(root)`).
    pub nodes: Vec<ProfileNode>,
    /// `None` when the file has no `samples` key (profiles from before V8 added it).
    pub samples: Option<Vec<Sample>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNode {
    call_frame: CallFrame,
    #[serde(default, deserialize_with = "unsigned")]
    self_size: u64,
    #[serde(default, deserialize_with = "unsigned")]
    id: u64,
    #[serde(default)]
    children: Vec<RawNode>,
}

#[derive(Deserialize)]
struct RawProfile {
    head: Option<RawNode>,
    samples: Option<Vec<Sample>>,
    /// The raw CDP result `{"profile": {...}}`.
    profile: Option<Box<RawProfile>>,
}

fn minus_one() -> i64 {
    -1
}

fn number_of(value: &serde_json::Value) -> Option<f64> {
    value.as_f64().filter(|v| v.is_finite())
}

fn signed<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    match value.as_i64() {
        Some(v) => Ok(v),
        None => number_of(&value)
            .map(|v| v.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
            .ok_or_else(|| de::Error::custom(format!("expected a number, found {value}"))),
    }
}

fn unsigned<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    match value.as_u64() {
        Some(v) => Ok(v),
        None => number_of(&value)
            .filter(|v| *v >= 0.0)
            .map(|v| v.round().min(u64::MAX as f64) as u64)
            .ok_or_else(|| de::Error::custom(format!("expected a non-negative number, found {value}"))),
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(de::Error::custom(format!("expected a string, found {other}"))),
    }
}

/// Deepest `[`/`{` nesting of a JSON text (strings skipped); stops counting past `limit + 1`.
fn nesting_depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > limit {
                        return max;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Runs `f` on a thread whose stack fits `depth` levels of serde recursion (inline when shallow).
fn with_stack_for<T: Send>(depth: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    if depth <= 100 {
        return Ok(f());
    }
    let stack = (8 << 20) + depth * (16 << 10);
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new().stack_size(stack).spawn_scoped(scope, f)?;
        handle.join().map_err(|_| ProfileError::Format("the parser thread failed".into()))
    })
}

impl HeapProfile {
    /// Parses a `.heapprofile` (or the raw `HeapProfiler.stopSampling` result `{"profile": …}`).
    pub fn parse(bytes: &[u8]) -> Result<HeapProfile> {
        let depth = nesting_depth(bytes, MAX_NESTING);
        if depth > MAX_NESTING {
            return Err(ProfileError::TooDeep { depth, limit: MAX_NESTING });
        }
        with_stack_for(depth, || {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            de.disable_recursion_limit();
            let raw = RawProfile::deserialize(&mut de).map_err(|e| ProfileError::Format(e.to_string()))?;
            de.end().map_err(|e| ProfileError::Format(e.to_string()))?;
            HeapProfile::from_raw(raw)
        })?
    }

    /// Converts a JSON value (the profile object, or `{"profile": …}` as a CDP call returns it).
    pub fn from_value(value: &serde_json::Value) -> Result<HeapProfile> {
        // Going through text keeps one code path (and its depth checks) for every input.
        let text = serde_json::to_vec(value).map_err(|e| ProfileError::Format(e.to_string()))?;
        HeapProfile::parse(&text)
    }

    fn from_raw(raw: RawProfile) -> Result<HeapProfile> {
        let raw = match raw {
            RawProfile { head: None, profile: Some(inner), .. } => *inner,
            other => other,
        };
        let head = raw.head.ok_or_else(|| ProfileError::Format("no `head` node".into()))?;
        let mut nodes: Vec<ProfileNode> = Vec::new();
        // Explicit stack of (raw node, parent index): no recursion, and each raw node is consumed as it
        // is visited, so dropping the tree does not recurse either.
        let mut stack: Vec<(RawNode, Option<usize>)> = vec![(head, None)];
        while let Some((mut raw_node, parent)) = stack.pop() {
            let index = nodes.len();
            let children = std::mem::take(&mut raw_node.children);
            nodes.push(ProfileNode {
                call_frame: raw_node.call_frame,
                self_size: raw_node.self_size,
                id: raw_node.id,
                parent,
                children: Vec::with_capacity(children.len()),
            });
            if let Some(p) = parent {
                nodes[p].children.push(index);
            }
            for child in children.into_iter().rev() {
                stack.push((child, Some(index)));
            }
        }
        Ok(HeapProfile { nodes, samples: raw.samples })
    }

    /// The head node's index (always 0).
    pub fn root(&self) -> usize {
        0
    }

    /// Node index by node id.
    pub fn index_by_id(&self) -> std::collections::HashMap<u64, usize> {
        self.nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect()
    }

    /// Checks that node ids are unique.
    pub fn validate(&self) -> Result<()> {
        let index = self.index_by_id();
        if index.len() != self.nodes.len() {
            return Err(ProfileError::Inconsistent("two nodes share an id".into()));
        }
        Ok(())
    }

    /// Samples that name no node of the tree. V8 writes some (seen in `node --heap-prof` files); reports skip
    /// them, since their stack is unknown.
    pub fn dangling_samples(&self) -> usize {
        let index = self.index_by_id();
        self.samples.iter().flatten().filter(|s| !index.contains_key(&s.node_id)).count()
    }

    /// Call frames from the root's child down to `node` (the root itself excluded).
    pub fn stack(&self, node: usize) -> Vec<&CallFrame> {
        let mut frames = Vec::new();
        let mut at = Some(node);
        while let Some(i) = at {
            if self.nodes[i].parent.is_some() {
                frames.push(&self.nodes[i].call_frame);
            }
            at = self.nodes[i].parent;
        }
        frames.reverse();
        frames
    }

    /// Writes the profile as compact JSON in V8's field order (byte-identical to what Node and DevTools write).
    pub fn write_json(&self, out: &mut dyn Write) -> Result<()> {
        if self.nodes.is_empty() {
            return Err(ProfileError::Format("no `head` node".into()));
        }
        out.write_all(b"{\"head\":")?;
        // (node, next child to write); a node's opening is written when pushed.
        let mut stack: Vec<(usize, usize)> = Vec::new();
        write_node_open(out, &self.nodes[0])?;
        stack.push((0, 0));
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            let children = &self.nodes[node].children;
            if next < children.len() {
                top.1 += 1;
                if next > 0 {
                    out.write_all(b",")?;
                }
                let child = children[next];
                write_node_open(out, &self.nodes[child])?;
                stack.push((child, 0));
            } else {
                out.write_all(b"]}")?;
                stack.pop();
            }
        }
        if let Some(samples) = &self.samples {
            out.write_all(b",\"samples\":[")?;
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write!(out, "{{\"size\":{},\"nodeId\":{},\"ordinal\":{}}}", s.size, s.node_id, s.ordinal)?;
            }
            out.write_all(b"]")?;
        }
        out.write_all(b"}")?;
        Ok(())
    }

    /// [`HeapProfile::write_json`] into a byte vector.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_json(&mut out)?;
        Ok(out)
    }
}

fn json_string(out: &mut dyn Write, s: &str) -> Result<()> {
    serde_json::to_writer(&mut *out, s).map_err(|e| ProfileError::Io(std::io::Error::other(e)))
}

/// `{"callFrame":{…},"selfSize":N,"id":N,"children":[` — closed by the caller.
fn write_node_open(out: &mut dyn Write, node: &ProfileNode) -> Result<()> {
    let f = &node.call_frame;
    out.write_all(b"{\"callFrame\":{\"functionName\":")?;
    json_string(out, &f.function_name)?;
    out.write_all(b",\"scriptId\":")?;
    json_string(out, &f.script_id)?;
    out.write_all(b",\"url\":")?;
    json_string(out, &f.url)?;
    write!(
        out,
        ",\"lineNumber\":{},\"columnNumber\":{}}},\"selfSize\":{},\"id\":{},\"children\":[",
        f.line_number, f.column_number, node.self_size, node.id
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"{"head":{"callFrame":{"functionName":"(root)","scriptId":"0","url":"","lineNumber":-1,"columnNumber":-1},"selfSize":0,"id":1,"children":[{"callFrame":{"functionName":"makeRecord","scriptId":"12","url":"file:///a/records.js","lineNumber":4,"columnNumber":19},"selfSize":1048640,"id":2,"children":[]},{"callFrame":{"functionName":"","scriptId":"12","url":"file:///a/\"q\"\u0001é.js","lineNumber":9,"columnNumber":0},"selfSize":524320,"id":3,"children":[]}]},"samples":[{"size":524320,"nodeId":2,"ordinal":1},{"size":524320,"nodeId":2,"ordinal":2},{"size":524320,"nodeId":3,"ordinal":3}]}"#;

    #[test]
    fn round_trips_byte_for_byte() {
        let p = HeapProfile::parse(SMALL.as_bytes()).unwrap();
        assert_eq!(p.nodes.len(), 3);
        assert_eq!(p.nodes[1].call_frame.line_1based(), Some(5));
        assert_eq!(p.stack(1)[0].display(), "makeRecord file:///a/records.js:5");
        assert_eq!(String::from_utf8(p.to_json().unwrap()).unwrap(), SMALL);
        p.validate().unwrap();
    }

    #[test]
    fn accepts_the_cdp_wrapper_and_rejects_garbage() {
        let wrapped = format!("{{\"profile\":{SMALL}}}");
        assert_eq!(HeapProfile::parse(wrapped.as_bytes()).unwrap(), HeapProfile::parse(SMALL.as_bytes()).unwrap());
        assert!(matches!(HeapProfile::parse(b"[1,2"), Err(ProfileError::Format(_))));
        assert!(matches!(HeapProfile::parse(b"{}"), Err(ProfileError::Format(_))));
        assert!(matches!(HeapProfile::parse(b"{\"head\":{\"callFrame\":7}}"), Err(ProfileError::Format(_))));
        let bad_sample = SMALL.replace("\"nodeId\":3", "\"nodeId\":99");
        assert_eq!(HeapProfile::parse(bad_sample.as_bytes()).unwrap().dangling_samples(), 1);
    }

    #[test]
    fn deep_trees_parse_and_write_without_recursing_on_our_stack() {
        let depth = 1500;
        let frame = r#"{"callFrame":{"functionName":"f","scriptId":"1","url":"x.js","lineNumber":0,"columnNumber":0},"selfSize":8,"id":ID,"children":["#;
        let mut text = String::from("{\"head\":");
        for i in 0..depth {
            text.push_str(&frame.replace("ID", &(i + 1).to_string()));
        }
        for _ in 0..depth {
            text.push_str("]}");
        }
        text.push_str(",\"samples\":[]}");
        let p = HeapProfile::parse(text.as_bytes()).unwrap();
        assert_eq!(p.nodes.len(), depth);
        assert_eq!(String::from_utf8(p.to_json().unwrap()).unwrap(), text);
        let too_deep = "[".repeat(MAX_NESTING + 5);
        assert!(matches!(HeapProfile::parse(too_deep.as_bytes()), Err(ProfileError::TooDeep { .. })));
    }
}
