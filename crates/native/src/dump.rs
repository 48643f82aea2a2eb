//! The raw dump: JSON lines written by the preload library.
//!
//! ```text
//! {"type":"header","format":"leakscope-native","version":1,"pid":P,"exe":"…","interval":R,"reason":"exit|request",
//!  "time_unix_ms":T,"samples_taken":N,"live_samples":L,"dropped":D,"stacks":S}
//! {"type":"module","start":A,"end":B,"offset":O,"path":"…"}     executable mappings
//! {"type":"stack","id":I,"alloc_objects":F,"alloc_space":F,"frames":[A,…]}   return addresses, leaf first
//! {"type":"sample","addr":A,"size":S,"weight":W,"stack":I,"seq":Q}
//! {"type":"end","samples":L,"stacks":S}
//! ```

use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a leakscope native dump (the first line is not a leakscope-native header)")]
    NotADump { path: String },
    #[error("{path}: unsupported dump version {version} (this leakscope reads version 1)")]
    Version { path: String, version: u32 },
    #[error("{path}:{line}: corrupt record: {message}")]
    Corrupt { path: String, line: usize, message: String },
    #[error("{path}: truncated dump (no end record; the process may have died while writing it)")]
    Truncated { path: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub version: u32,
    pub pid: u32,
    #[serde(default)]
    pub exe: String,
    pub interval: u64,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub time_unix_ms: u64,
    #[serde(default)]
    pub samples_taken: u64,
    #[serde(default)]
    pub live_samples: u64,
    #[serde(default)]
    pub dropped: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Stack {
    pub id: u32,
    pub alloc_objects: f64,
    pub alloc_space: f64,
    pub frames: Vec<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub addr: u64,
    pub size: u64,
    pub weight: f64,
    pub stack: u32,
    #[serde(default)]
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub struct Dump {
    pub path: String,
    pub header: Header,
    pub modules: Vec<Module>,
    /// Indexed by stack id.
    pub stacks: Vec<Stack>,
    pub samples: Vec<Sample>,
}

#[derive(Deserialize)]
struct Tagged {
    #[serde(rename = "type")]
    kind: String,
}

impl Dump {
    pub fn read(path: &Path) -> Result<Dump, DumpError> {
        let text = std::fs::read(path).map_err(|source| DumpError::Io { path: path.display().to_string(), source })?;
        Dump::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &[u8], path: &str) -> Result<Dump, DumpError> {
        let corrupt = |line: usize, message: String| DumpError::Corrupt { path: path.to_string(), line, message };
        let mut lines = text.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty());
        let Some((_, first)) = lines.next() else { return Err(DumpError::NotADump { path: path.to_string() }) };
        let value: serde_json::Value =
            serde_json::from_slice(first).map_err(|_| DumpError::NotADump { path: path.to_string() })?;
        if value.get("format").and_then(|f| f.as_str()) != Some("leakscope-native") {
            return Err(DumpError::NotADump { path: path.to_string() });
        }
        let header: Header = serde_json::from_value(value).map_err(|e| corrupt(1, e.to_string()))?;
        if header.version != 1 {
            return Err(DumpError::Version { path: path.to_string(), version: header.version });
        }
        if header.interval == 0 {
            return Err(corrupt(1, "interval is 0".into()));
        }
        let mut modules = Vec::new();
        let mut stacks: HashMap<u32, Stack> = HashMap::new();
        let mut samples = Vec::new();
        let mut ended = false;
        for (i, line) in lines {
            let n = i + 1;
            let tag: Tagged = serde_json::from_slice(line).map_err(|e| corrupt(n, e.to_string()))?;
            match tag.kind.as_str() {
                "module" => modules.push(serde_json::from_slice(line).map_err(|e| corrupt(n, e.to_string()))?),
                "stack" => {
                    let s: Stack = serde_json::from_slice(line).map_err(|e| corrupt(n, e.to_string()))?;
                    stacks.insert(s.id, s);
                }
                "sample" => {
                    let s: Sample = serde_json::from_slice(line).map_err(|e| corrupt(n, e.to_string()))?;
                    if !(s.weight.is_finite() && s.weight >= 1.0) {
                        return Err(corrupt(n, format!("sample weight {} is not ≥ 1", s.weight)));
                    }
                    samples.push(s);
                }
                "end" => {
                    ended = true;
                    break;
                }
                other => return Err(corrupt(n, format!("unknown record type '{other}'"))),
            }
        }
        if !ended {
            return Err(DumpError::Truncated { path: path.to_string() });
        }
        let count = stacks.keys().max().map_or(0, |m| *m as usize + 1);
        let mut ordered: Vec<Stack> = (0..count as u32)
            .map(|id| Stack { id, alloc_objects: 0.0, alloc_space: 0.0, frames: Vec::new() })
            .collect();
        for (id, s) in stacks {
            ordered[id as usize] = s;
        }
        if let Some(bad) = samples.iter().find(|s| s.stack as usize >= ordered.len()) {
            return Err(corrupt(0, format!("sample refers to unknown stack {}", bad.stack)));
        }
        Ok(Dump { path: path.to_string(), header, modules, stacks: ordered, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"type":"header","format":"leakscope-native","version":1,"pid":7,"exe":"/bin/x","interval":524288,"reason":"exit","time_unix_ms":1,"samples_taken":2,"live_samples":1,"dropped":0,"stacks":1}
{"type":"module","start":4096,"end":8192,"offset":0,"path":"/bin/x"}
{"type":"stack","id":0,"alloc_objects":2.5,"alloc_space":10.0,"frames":[4100,4200]}
{"type":"sample","addr":99,"size":4,"weight":1.5,"stack":0,"seq":1}
{"type":"end","samples":1,"stacks":1}
"#;

    #[test]
    fn parses_a_dump() {
        let d = Dump::parse(GOOD.as_bytes(), "t").unwrap();
        assert_eq!(d.header.pid, 7);
        assert_eq!(d.modules.len(), 1);
        assert_eq!(d.stacks[0].frames, vec![4100, 4200]);
        assert_eq!(d.samples[0].size, 4);
    }

    #[test]
    fn truncated_and_corrupt_dumps_are_errors() {
        let cut = &GOOD[..GOOD.len() - 40];
        assert!(matches!(
            Dump::parse(cut.as_bytes(), "t"),
            Err(DumpError::Truncated { .. }) | Err(DumpError::Corrupt { .. })
        ));
        assert!(matches!(Dump::parse(b"hello", "t"), Err(DumpError::NotADump { .. })));
        assert!(matches!(Dump::parse(b"", "t"), Err(DumpError::NotADump { .. })));
        let bad = GOOD.replace("\"stack\":0,\"seq\"", "\"stack\":5,\"seq\"");
        assert!(matches!(Dump::parse(bad.as_bytes(), "t"), Err(DumpError::Corrupt { .. })));
    }
}
