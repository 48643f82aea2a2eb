//! V8 names the two internal edges that keep a WeakMap value alive like
//! `12 / part of key (Foo @3) -> value (Bar @5) pair in WeakMap (table @7)`. DevTools recognises them by that
//! shape: the table's edge does not count for retention, and a value's distance is taken from the later of the
//! pair. This module finds those names once per distinct string.

use crate::snapshot::HeapSnapshot;
use rustc_hash::FxHashMap as HashMap;

/// A WeakMap pair edge name: the table's id, and an id shared by the two edges of one (key, value) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeakMapEdge {
    pub table_id: u32,
    pub pair: u32,
}

/// Per edge-name string index: the parsed WeakMap pair name, if it is one.
#[derive(Debug, Default)]
pub struct WeakMapNames {
    by_name: HashMap<u32, WeakMapEdge>,
}

impl WeakMapNames {
    /// Every string of the snapshot that has the shape of a pair edge's name. Only internal edges' names are
    /// looked up (by every user of [`WeakMapNames::get`]), so looking at the strings table — a few megabytes —
    /// finds what looking at every edge's name would, without reading the edges.
    pub fn build(snapshot: &HeapSnapshot) -> Self {
        let pattern = regex::Regex::new(
            r"^\d+(?P<pair> / part of key \(.*? @\d+\) -> value \(.*? @\d+\) pair in WeakMap \(table @(?P<table>\d+)\))$",
        )
        .expect("valid regex");
        let shape = memchr::memmem::Finder::new(" / part of key (");
        let mut pairs: HashMap<String, u32> = HashMap::default();
        let mut by_name = HashMap::default();
        for name in 0..snapshot.strings.len() as u32 {
            let text = snapshot.strings.get(name);
            if shape.find(text.as_bytes()).is_none() {
                continue;
            }
            let Some(captures) = pattern.captures(text) else { continue };
            // A table id beyond u32 cannot belong to this snapshot; such a name never matches a table.
            let table_id =
                captures["table"].parse::<u64>().ok().and_then(|v| u32::try_from(v).ok()).unwrap_or(u32::MAX);
            let next = pairs.len() as u32;
            let pair = *pairs.entry(captures["pair"].to_string()).or_insert(next);
            by_name.insert(name, WeakMapEdge { table_id, pair });
        }
        WeakMapNames { by_name }
    }

    /// Whether the snapshot has no WeakMap pair edges at all.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    #[inline]
    pub fn get(&self, name: u32) -> Option<WeakMapEdge> {
        if self.by_name.is_empty() {
            return None;
        }
        self.by_name.get(&name).copied()
    }

    pub fn pair_count(&self) -> usize {
        self.by_name.values().map(|e| e.pair).max().map_or(0, |m| m as usize + 1)
    }
}
