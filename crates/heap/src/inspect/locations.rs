//! Summary rows split by creation site: objects by their constructor's location (as DevTools keys its
//! Summary), and also closures by where they are defined and generator objects by their function, so that
//! "10,000 functions" becomes "10,000 `onMessage` closures from server.js:41".

use crate::analysis::Analysis;
use crate::snapshot::{HeapSnapshot, NodeIndex, NodeType, SourceLocation};
use std::collections::HashMap;

/// One row: a class at one source location (or with none).
#[derive(Debug, Clone)]
pub struct LocatedAggregate {
    pub class: u32,
    pub location: Option<SourceLocation>,
    pub count: u64,
    pub shallow: u64,
    /// Retained size counting only the topmost member on each dominator path (DevTools' class rule).
    pub retained: u64,
    pub min_distance: u32,
    /// A member with the largest retained size.
    pub example: NodeIndex,
}

/// Groups every node with a non-zero shallow size by (class, location). Objects, closures and anything else
/// with a `locations` entry are split by it. Rows come unsorted.
pub fn aggregate_by_location(snapshot: &HeapSnapshot, analysis: &Analysis) -> Vec<LocatedAggregate> {
    type Key = (u32, Option<(u32, u32, u32)>);
    let n = snapshot.node_count();
    let mut index: HashMap<Key, u32> = HashMap::new();
    let mut rows: Vec<LocatedAggregate> = Vec::new();
    let mut row_of = vec![u32::MAX; n];
    for node in 0..n as NodeIndex {
        let size = analysis.shallow.get(node);
        if size == 0 {
            continue;
        }
        let class = analysis.classes.class_of(node);
        let location = match snapshot.node_type(node) {
            NodeType::Object | NodeType::Closure => snapshot.location(node),
            _ => None,
        };
        let key = (class, location.map(|l| (l.script_id, l.line, l.column)));
        let row = *index.entry(key).or_insert_with(|| {
            rows.push(LocatedAggregate {
                class,
                location,
                count: 0,
                shallow: 0,
                retained: 0,
                min_distance: u32::MAX,
                example: node,
            });
            (rows.len() - 1) as u32
        });
        let r = &mut rows[row as usize];
        r.count += 1;
        r.shallow += size;
        r.min_distance = r.min_distance.min(analysis.distance[node as usize]);
        if analysis.retained.get(node) > analysis.retained.get(r.example) {
            r.example = node;
        }
        row_of[node as usize] = row;
    }
    // Topmost member per dominator path, as for the Summary's class retained size.
    let retained = super::topmost_retained(snapshot, analysis, &row_of, rows.len());
    for (row, retained) in rows.iter_mut().zip(retained) {
        row.retained += retained;
    }
    rows
}
