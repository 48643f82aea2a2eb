//! Allocation stacks, from snapshots taken while V8 tracked allocations (`leakscope timeline`, DevTools'
//! "Allocation instrumentation on timeline").
//!
//! Such a snapshot has two extra sections: `trace_function_infos` (one entry per function: name, script,
//! 1-based line and column of the function's start) and `trace_tree` (the allocation call tree, root first),
//! and every node carries a `trace_node_id` into that tree. The tree node's function is the one that
//! allocated the object; its ancestors are the callers. Objects with `trace_node_id` 0 have no allocation
//! information: they existed before tracking started (or V8 did not record them).
//!
//! - [`AllocationStacks`]: decodes a node's allocation stack (allocating function first, then its callers).
//! - [`allocated_by`]: objects grouped by allocating function, or by whole stack, with count, shallow size
//!   and retained size (DevTools' class rule: nested members are counted once).

use crate::analysis::Analysis;
use crate::snapshot::{AllocationTrace, HeapSnapshot, NodeIndex};
use std::collections::HashMap;

/// Why allocation stacks cannot be read from a snapshot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocationError {
    #[error(
        "this snapshot has no allocation stacks (its trace_tree is empty): it was not taken while tracking \
         allocations; take one with `leakscope timeline` (or DevTools' \"Allocations on timeline\")"
    )]
    NoTrace,
}

/// One frame of an allocation stack, ready to show.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Frame {
    /// The function's name; `(anonymous)` when it has none.
    pub function: String,
    /// The script's name (file path, `node:…` module, URL); `None` for builtins and native code.
    pub file: Option<String>,
    pub script_id: u32,
    /// 1-based line of the function's start (as DevTools shows it); `None` when V8 does not know it.
    pub line: Option<u32>,
    /// 1-based column of the function's start.
    pub column: Option<u32>,
}

impl Frame {
    /// `file:line:column`, `file:line`, `file`, or nothing for builtins.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            (Some(line), None) => format!("{file}:{line}"),
            _ => file.to_string(),
        })
    }
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.location() {
            Some(location) => write!(f, "{} {location}", self.function),
            None => f.write_str(&self.function),
        }
    }
}

/// Decodes the allocation-tracking sections of one snapshot.
pub struct AllocationStacks<'a> {
    snapshot: &'a HeapSnapshot,
    trace: &'a AllocationTrace,
    /// `trace_tree` node id → position in `trace.tree`.
    by_id: HashMap<u32, u32>,
}

impl<'a> AllocationStacks<'a> {
    /// Fails with [`AllocationError::NoTrace`] when the snapshot was not taken while tracking allocations
    /// (V8 then writes empty `trace_function_infos` and `trace_tree` sections).
    pub fn new(snapshot: &'a HeapSnapshot) -> Result<AllocationStacks<'a>, AllocationError> {
        let trace = snapshot.allocation_trace().filter(|t| !t.tree.is_empty()).ok_or(AllocationError::NoTrace)?;
        let by_id = trace.tree.iter().enumerate().map(|(i, t)| (t.id, i as u32)).collect();
        Ok(AllocationStacks { snapshot, trace, by_id })
    }

    pub fn trace(&self) -> &'a AllocationTrace {
        self.trace
    }

    /// The position in `trace().tree` of the call-tree node that allocated `node`; `None` when the object
    /// has no allocation information (`trace_node_id` 0, or an id the tree does not have).
    pub fn site(&self, node: NodeIndex) -> Option<u32> {
        match self.snapshot.trace_node_id(node) {
            0 => None,
            id => self.by_id.get(&id).copied(),
        }
    }

    /// The allocating function of a call-tree node (an index into `trace().functions`). `site` comes from
    /// [`Self::site`] or a group; one outside the tree panics.
    pub fn function_of(&self, site: u32) -> u32 {
        self.trace.tree[site as usize].function_info_index
    }

    /// A `trace_function_infos` entry as a frame. Unknown indices give `(unknown)`.
    pub fn frame(&self, function_index: u32) -> Frame {
        let Some(f) = self.trace.functions.get(function_index as usize) else {
            return Frame { function: "(unknown)".into(), file: None, script_id: 0, line: None, column: None };
        };
        let text = |index: u32| {
            let strings = self.snapshot.strings();
            if (index as usize) < strings.len() {
                strings.get(index)
            } else {
                ""
            }
        };
        let name = text(f.name);
        let file = text(f.script_name);
        Frame {
            function: if name.is_empty() { "(anonymous)".into() } else { name.to_string() },
            file: (!file.is_empty()).then(|| file.to_string()),
            script_id: f.script_id,
            // trace_function_infos are already 1-based (V8 adds 1); 0 means unknown.
            line: (f.line != 0).then_some(f.line),
            column: (f.column != 0).then_some(f.column),
        }
    }

    /// The call-tree node's stack: its function first, then the callers, without the tree's `(root)`.
    pub fn stack_of_site(&self, site: u32) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut at = Some(site as usize);
        // Parents come before their children in the flattened tree; the bound also stops malformed input.
        while let Some(i) = at.filter(|&i| i < self.trace.tree.len() && frames.len() <= self.trace.tree.len()) {
            let t = &self.trace.tree[i];
            if t.parent.is_none() {
                break;
            }
            frames.push(self.frame(t.function_info_index));
            at = t.parent.map(|p| p as usize);
        }
        frames
    }

    /// The object's allocation stack, allocating function first; `None` when it has no allocation
    /// information (allocated before tracking started).
    pub fn stack(&self, node: NodeIndex) -> Option<Vec<Frame>> {
        self.site(node).map(|site| self.stack_of_site(site))
    }
}

/// What objects are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The allocating function (the top frame), whatever called it.
    Function,
    /// The whole allocation stack (one call-tree node).
    Stack,
}

/// The members of a [`GroupBy::Function`] group allocated through one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackShare {
    /// Position in the call tree; resolve it with [`AllocationStacks::stack_of_site`].
    pub site: u32,
    pub count: u64,
    pub shallow: u64,
}

/// Objects with one allocating function (or one allocation stack).
#[derive(Debug, Clone)]
pub struct AllocationGroup {
    /// The allocating function: an index into the trace's `functions`.
    pub function: u32,
    /// With [`GroupBy::Stack`], the call-tree node (resolve with [`AllocationStacks::stack_of_site`]).
    pub site: Option<u32>,
    pub count: u64,
    /// Sum of the members' shallow sizes (as the analysis computed them).
    pub shallow: u64,
    /// What freeing all members would free: retained sizes of the members no other member dominates.
    pub retained: u64,
    /// A member to look at: the JS-visible one (object, closure, string, …; not code or V8 internals) with
    /// the largest retained size, or any member when none is visible.
    pub example: NodeIndex,
    /// With [`GroupBy::Function`]: the stacks the members were allocated through, most objects first.
    pub stacks: Vec<StackShare>,
}

/// The result of [`allocated_by`]: groups most objects first (then largest shallow size).
#[derive(Debug, Clone)]
pub struct AllocatedBy {
    pub groups: Vec<AllocationGroup>,
    /// Objects with allocation information (allocated while tracking, still alive).
    pub tracked_count: u64,
    pub tracked_shallow: u64,
    /// Objects without: allocated before tracking started (`trace_node_id` 0 or an unknown id).
    pub untracked_count: u64,
    pub untracked_shallow: u64,
}

/// Objects a user would recognise from their code (not compiled code, feedback vectors, maps, internals).
fn js_visible(snapshot: &HeapSnapshot, node: NodeIndex) -> bool {
    use crate::snapshot::NodeType::*;
    matches!(
        snapshot.node_type(node),
        Object | Closure | String | ConsString | SlicedString | RegExp | Number | Symbol | BigInt
    ) && !snapshot.node_name(node).starts_with("system / ")
}

/// Groups every object that has allocation information by allocating function or by stack.
pub fn allocated_by(snapshot: &HeapSnapshot, analysis: &Analysis, by: GroupBy) -> Result<AllocatedBy, AllocationError> {
    let stacks = AllocationStacks::new(snapshot)?;
    let n = snapshot.node_count();
    let mut index: HashMap<u32, u32> = HashMap::new();
    let mut groups: Vec<AllocationGroup> = Vec::new();
    let mut group_of = vec![u32::MAX; n];
    // Per function group: site → position in its `stacks`.
    let mut share_of: Vec<HashMap<u32, usize>> = Vec::new();
    let mut result = AllocatedBy {
        groups: Vec::new(),
        tracked_count: 0,
        tracked_shallow: 0,
        untracked_count: 0,
        untracked_shallow: 0,
    };
    for node in 0..n as NodeIndex {
        let size = analysis.shallow.get(node);
        let Some(site) = stacks.site(node) else {
            result.untracked_count += 1;
            result.untracked_shallow += size;
            continue;
        };
        result.tracked_count += 1;
        result.tracked_shallow += size;
        let function = stacks.function_of(site);
        let key = match by {
            GroupBy::Function => function,
            GroupBy::Stack => site,
        };
        let g = *index.entry(key).or_insert_with(|| {
            groups.push(AllocationGroup {
                function,
                site: (by == GroupBy::Stack).then_some(site),
                count: 0,
                shallow: 0,
                retained: 0,
                example: node,
                stacks: Vec::new(),
            });
            share_of.push(HashMap::new());
            (groups.len() - 1) as u32
        });
        let group = &mut groups[g as usize];
        group.count += 1;
        group.shallow += size;
        let rank = |n: NodeIndex| (js_visible(snapshot, n), analysis.retained.get(n));
        if rank(node) > rank(group.example) {
            group.example = node;
        }
        if by == GroupBy::Function {
            let at = *share_of[g as usize].entry(site).or_insert_with(|| {
                group.stacks.push(StackShare { site, count: 0, shallow: 0 });
                group.stacks.len() - 1
            });
            group.stacks[at].count += 1;
            group.stacks[at].shallow += size;
        }
        group_of[node as usize] = g;
    }
    // Retained: a member adds its retained size only when no dominator of it is a member of the same group
    // (as DevTools' Summary does per class).
    let retained = super::topmost_retained(snapshot, analysis, &group_of, groups.len());
    for (group, retained) in groups.iter_mut().zip(retained) {
        group.retained += retained;
    }
    for group in &mut groups {
        group.stacks.sort_by(|a, b| b.count.cmp(&a.count).then(b.shallow.cmp(&a.shallow)).then(a.site.cmp(&b.site)));
    }
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.shallow.cmp(&a.shallow))
            .then(a.function.cmp(&b.function))
            .then(a.site.cmp(&b.site))
    });
    result.groups = groups;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_bytes, AnalysisOptions};

    /// A tiny snapshot taken "while tracking": root → (GC roots), root → Holder; Holder → Item a, Item b;
    /// Item a → its Array. `trace_tree`: (root) → main → make (ids 1, 2, 3) and (root) → main → other (id 4).
    /// Holder has no allocation info; the Items were allocated by `make` (called from `main`), the Array by
    /// `other`. The meta lists the trace fields in a non-standard order to check they are read by name.
    fn traced_snapshot() -> String {
        let meta = r#"{"meta":{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],
            "node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],
            "edge_fields":["type","name_or_index","to_node"],
            "edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],
            "trace_function_info_fields":["name","function_id","script_name","script_id","line","column"],
            "trace_node_fields":["function_info_index","id","size","count","children"],
            "sample_fields":["timestamp_us","last_assigned_id"],
            "location_fields":["object_index","script_id","line","column"]},
            "node_count":6,"edge_count":5,"trace_function_count":4}"#;
        // Nodes (7 fields): root, (GC roots), Holder, Item a, Item b, Array.
        let nodes = [
            [9, 0, 1, 0, 2, 0, 0],
            [9, 1, 3, 0, 0, 0, 0],
            [3, 2, 5, 40, 2, 0, 0],
            [3, 3, 7, 24, 1, 3, 0],
            [3, 3, 9, 24, 0, 3, 0],
            [1, 0, 11, 100, 0, 4, 0],
        ];
        let nodes: Vec<String> = nodes.iter().flatten().map(|v| v.to_string()).collect();
        // Edges: root -element[1]-> (GC roots), root -shortcut "holder"-> Holder, Holder -property a/b-> Items,
        // Item a -internal "elements"-> Array. to_node = ordinal × 7.
        let edges = "1,1,7, 5,4,14, 2,5,21, 2,6,28, 3,7,35";
        // Function infos, fields in meta order: name, function_id, script_name, script_id, line, column.
        let functions = "8,0,0,0,0,0, 9,11,12,3,1,1, 10,12,12,3,7,14, 13,13,0,0,0,0";
        // Nodes: function_info_index, id, size, count, children.
        let tree = "[0,1,0,0,[1,2,0,0,[2,3,48,2,[],3,4,100,1,[]]]]";
        let strings = r#"["","(GC roots)","Holder","Item","","holder","a","b","(root)","main","make","elements","/app/x.js","other"]"#;
        format!(
            r#"{{"snapshot":{meta},"nodes":[{}],"edges":[{edges}],"trace_function_infos":[{functions}],"trace_tree":{tree},"samples":[],"locations":[],"strings":{strings}}}"#,
            nodes.join(",")
        )
    }

    fn load(text: &str) -> (HeapSnapshot, Analysis) {
        let snapshot = parse_bytes(text.as_bytes()).expect("valid snapshot");
        let analysis =
            Analysis::new(&snapshot, &AnalysisOptions { raw_sizes: true, ..Default::default() }, &mut |_| {});
        (snapshot, analysis)
    }

    fn frame(function: &str, file: Option<&str>, line: Option<u32>, column: Option<u32>) -> Frame {
        let script_id = if file.is_some() { 3 } else { 0 };
        Frame { function: function.into(), file: file.map(str::to_string), script_id, line, column }
    }

    #[test]
    fn stacks_are_decoded_allocating_function_first() {
        let (snapshot, _) = load(&traced_snapshot());
        let stacks = AllocationStacks::new(&snapshot).unwrap();
        let item = snapshot.find_by_id(7).unwrap();
        let make = frame("make", Some("/app/x.js"), Some(7), Some(14));
        let main = frame("main", Some("/app/x.js"), Some(1), Some(1));
        assert_eq!(stacks.stack(item), Some(vec![make.clone(), main.clone()]));
        assert_eq!(make.to_string(), "make /app/x.js:7:14");
        let array = snapshot.find_by_id(11).unwrap();
        assert_eq!(stacks.stack(array), Some(vec![frame("other", None, None, None), main]));
        assert_eq!(stacks.stack(array).unwrap()[0].to_string(), "other");
        // Allocated before tracking started.
        assert_eq!(stacks.stack(snapshot.find_by_id(5).unwrap()), None);
    }

    #[test]
    fn objects_are_grouped_by_allocating_function_and_by_stack() {
        let (snapshot, analysis) = load(&traced_snapshot());
        let stacks = AllocationStacks::new(&snapshot).unwrap();
        let by_function = allocated_by(&snapshot, &analysis, GroupBy::Function).unwrap();
        assert_eq!(by_function.groups.len(), 2);
        let make = &by_function.groups[0];
        assert_eq!(stacks.frame(make.function).function, "make");
        assert_eq!((make.count, make.shallow), (2, 48));
        // Item a retains its Array (allocated by `other`): 24 + 100, plus Item b's 24.
        assert_eq!(make.retained, 148);
        assert_eq!(snapshot.node_id(make.example), 7);
        assert_eq!(make.stacks, vec![StackShare { site: 2, count: 2, shallow: 48 }]);
        let other = &by_function.groups[1];
        assert_eq!(stacks.frame(other.function).function, "other");
        assert_eq!((other.count, other.shallow, other.retained), (1, 100, 100));
        assert_eq!((by_function.tracked_count, by_function.tracked_shallow), (3, 148));
        assert_eq!((by_function.untracked_count, by_function.untracked_shallow), (3, 40));

        let by_stack = allocated_by(&snapshot, &analysis, GroupBy::Stack).unwrap();
        assert_eq!(by_stack.groups.len(), 2);
        let site = by_stack.groups[0].site.unwrap();
        let names: Vec<String> = stacks.stack_of_site(site).into_iter().map(|f| f.function).collect();
        assert_eq!(names, ["make", "main"]);
    }

    #[test]
    fn nested_members_are_counted_once_in_retained() {
        // Make the Array an allocation of `make` too: it is dominated by Item a, so it adds nothing.
        let text = traced_snapshot().replace(
            r#""nodes":[9,0,1,0,2,0,0,9,1,3,0,0,0,0,3,2,5,40,2,0,0,3,3,7,24,1,3,0,3,3,9,24,0,3,0,1,0,11,100,0,4,0]"#,
            r#""nodes":[9,0,1,0,2,0,0,9,1,3,0,0,0,0,3,2,5,40,2,0,0,3,3,7,24,1,3,0,3,3,9,24,0,3,0,1,0,11,100,0,3,0]"#,
        );
        let (snapshot, analysis) = load(&text);
        let result = allocated_by(&snapshot, &analysis, GroupBy::Function).unwrap();
        assert_eq!(result.groups.len(), 1);
        assert_eq!((result.groups[0].count, result.groups[0].shallow, result.groups[0].retained), (3, 148, 148));
    }

    #[test]
    fn trace_node_fields_must_end_with_children() {
        let text = traced_snapshot().replace(
            r#""trace_node_fields":["function_info_index","id","size","count","children"]"#,
            r#""trace_node_fields":["function_info_index","id","children","size","count"]"#,
        );
        let error = parse_bytes(text.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("trace_node_fields must end with `children`"), "{error}");
    }

    #[test]
    fn snapshots_without_tracking_say_how_to_get_stacks() {
        let text = traced_snapshot()
            .replace(
                "\"trace_function_infos\":[8,0,0,0,0,0, 9,11,12,3,1,1, 10,12,12,3,7,14, 13,13,0,0,0,0]",
                "\"trace_function_infos\":[]",
            )
            .replace("\"trace_tree\":[0,1,0,0,[1,2,0,0,[2,3,48,2,[],3,4,100,1,[]]]]", "\"trace_tree\":[]");
        assert!(text.contains("\"trace_tree\":[]"));
        let (snapshot, analysis) = load(&text);
        let error = allocated_by(&snapshot, &analysis, GroupBy::Function).unwrap_err();
        assert_eq!(error, AllocationError::NoTrace);
        assert!(error.to_string().contains("leakscope timeline"), "{error}");
        assert!(AllocationStacks::new(&snapshot).is_err());
    }
}
