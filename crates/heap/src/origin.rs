//! Where a snapshot came from (Node or a browser, which version), inferred from what is inside it.

use crate::snapshot::{HeapSnapshot, NodeIndex, NodeType};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// `node`, `browser` or `unknown`.
    pub runtime: String,
    /// e.g. `v20.20.2`, when a version string was found.
    pub version: Option<String>,
    /// How this was inferred, for the reader to judge.
    pub evidence: String,
    /// 6 or 7 node fields (7 = V8 with `detachedness`, roughly V8 9.x / Node 16 and newer).
    pub node_fields: usize,
}

pub fn infer(snapshot: &HeapSnapshot) -> Origin {
    let node_fields = snapshot.info.node_field_count;
    let root = snapshot.root();
    let browser = snapshot.edges(root).any(|e| snapshot.node_name(snapshot.edge_target(e)) == "(Document DOM trees)");
    if browser {
        return Origin {
            runtime: "browser".into(),
            version: None,
            evidence: "has a \"(Document DOM trees)\" root".into(),
            node_fields,
        };
    }
    let node_script = (0..snapshot.node_count() as NodeIndex)
        .find(|&n| snapshot.node_type(n) == NodeType::Code && snapshot.node_name(n).starts_with("node:internal/"));
    if node_script.is_none() {
        return Origin {
            runtime: "unknown".into(),
            version: None,
            evidence: "no Node built-in scripts found".into(),
            node_fields,
        };
    }
    // `process.version` lives in the heap as a string like "v20.20.2"; take the most common such string.
    let mut best: Option<(&str, usize)> = None;
    let mut counts = std::collections::HashMap::new();
    for node in 0..snapshot.node_count() as NodeIndex {
        if snapshot.node_type(node) != NodeType::String {
            continue;
        }
        let name = snapshot.node_name(node);
        if is_node_version(name) {
            *counts.entry(name).or_insert(0usize) += 1;
        }
    }
    for (name, count) in counts {
        if best.is_none_or(|(b, c)| count > c || (count == c && name > b)) {
            best = Some((name, count));
        }
    }
    Origin {
        runtime: "node".into(),
        version: best.map(|(v, _)| v.to_string()),
        evidence: match best {
            Some(_) => "node:internal scripts, and the process.version string".into(),
            None => "node:internal scripts".into(),
        },
        node_fields,
    }
}

fn is_node_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else { return false };
    let parts: Vec<&str> = rest.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}
