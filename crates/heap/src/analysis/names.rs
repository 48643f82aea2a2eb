//! Class names as DevTools' Summary shows them (`calculateObjectNames`), including the `{a, b, c}` names it
//! infers for plain objects from their property sets (`inferInterfaceDefinitions`).

use super::utf16;
use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType};
use rustc_hash::FxHashMap as HashMap;

const MAX_INTERFACE_NAME_LENGTH: usize = 120;
const MIN_INTERFACE_PROPERTY_COUNT: usize = 1;
const MIN_OBJECT_COUNT_PER_INTERFACE: f64 = 2.0;
const MIN_OBJECT_PROPORTION_PER_INTERFACE: f64 = 1000.0;

/// A class: either a name from the strings table (objects and native nodes use their own name) or a name
/// leakscope made up, like DevTools, for a group ("(system)", "Function", "{a, b}"). Two classes can share a
/// text yet differ, exactly as two DevTools class indexes can.
pub type ClassId = u32;

/// An inferred plain-object shape.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InterfaceDefinition {
    pub name: String,
    pub properties: Vec<String>,
}

pub struct ClassNames {
    class_of: Vec<ClassId>,
    string_count: u32,
    made_up: Vec<String>,
    pub definitions: Vec<InterfaceDefinition>,
}

impl ClassNames {
    /// Names every node; with `definitions`, uses those (the other snapshot's, for a diff) instead of inferring.
    /// `detached` nodes are named "Detached <name>" (see `dom_state`).
    pub fn compute(
        snapshot: &HeapSnapshot,
        detached: &super::bits::BitVec,
        definitions: Option<Vec<InterfaceDefinition>>,
    ) -> ClassNames {
        Self::compute_in(snapshot, detached, definitions, Vec::new())
    }

    /// [`Self::compute`], the class per node written into `memory` (a spare array of an earlier pass).
    pub(crate) fn compute_in(
        snapshot: &HeapSnapshot,
        detached: &super::bits::BitVec,
        definitions: Option<Vec<InterfaceDefinition>>,
        mut memory: Vec<u32>,
    ) -> ClassNames {
        let string_count = snapshot.strings.len() as u32;
        let mut names = ClassNames { class_of: Vec::new(), string_count, made_up: Vec::new(), definitions: Vec::new() };
        let mut made_up_index: HashMap<String, ClassId> = HashMap::default();
        let mut intern = |text: &str, made_up: &mut Vec<String>| -> ClassId {
            if let Some(&id) = made_up_index.get(text) {
                return id;
            }
            let id = string_count + made_up.len() as u32;
            made_up.push(text.to_string());
            made_up_index.insert(text.to_string(), id);
            id
        };
        let fixed = [
            intern("(system)", &mut names.made_up),
            intern("(compiled code)", &mut names.made_up),
            intern("Function", &mut names.made_up),
            intern("RegExp", &mut names.made_up),
        ];
        let mut by_type: HashMap<u8, ClassId> = HashMap::default();
        memory.clear();
        memory.reserve(snapshot.node_count());
        let mut class_of = memory;
        for node in 0..snapshot.node_count() as NodeIndex {
            let class = match snapshot.node_type(node) {
                NodeType::Hidden => fixed[0],
                NodeType::Code => fixed[1],
                NodeType::Closure => fixed[2],
                NodeType::RegExp => fixed[3],
                NodeType::Object | NodeType::Native => {
                    let name = snapshot.node_name(node);
                    let renamed =
                        (!detached.is_empty() && detached.get(node as usize)).then(|| format!("Detached {name}"));
                    let name = renamed.as_deref().unwrap_or(name);
                    if let Some(short) = short_element_name(name) {
                        intern(&short, &mut names.made_up)
                    } else if renamed.is_some() {
                        intern(name, &mut names.made_up)
                    } else {
                        snapshot.node_name_index(node)
                    }
                }
                _ => {
                    let code = snapshot.node_type[node as usize];
                    match by_type.get(&code) {
                        Some(&id) => id,
                        None => {
                            let id = intern(&format!("({})", snapshot.node_type_name(node)), &mut names.made_up);
                            by_type.insert(code, id);
                            id
                        }
                    }
                }
            };
            class_of.push(class);
        }
        names.class_of = class_of;
        let definitions = definitions.unwrap_or_else(|| infer_interfaces(snapshot));
        apply_interfaces(snapshot, &definitions, &mut names);
        names.definitions = definitions;
        names
    }

    /// The class of every node, by node.
    pub(crate) fn per_node(&self) -> &[ClassId] {
        &self.class_of
    }

    #[inline]
    pub fn class_of(&self, node: NodeIndex) -> ClassId {
        self.class_of[node as usize]
    }

    pub fn name<'a>(&'a self, snapshot: &'a HeapSnapshot, class: ClassId) -> &'a str {
        if class < self.string_count {
            snapshot.strings.get(class)
        } else {
            &self.made_up[(class - self.string_count) as usize]
        }
    }

    /// The node's class name (what DevTools' Summary groups by).
    pub fn class_name<'a>(&'a self, snapshot: &'a HeapSnapshot, node: NodeIndex) -> &'a str {
        self.name(snapshot, self.class_of(node))
    }

    pub fn class_count_upper_bound(&self) -> usize {
        self.string_count as usize + self.made_up.len()
    }
}

/// `<div id="a">` is grouped as `<div>`, and `Detached <div id="a">` as `Detached <div>`.
fn short_element_name(name: &str) -> Option<String> {
    if name.starts_with('<') {
        return Some(match name.find(' ') {
            Some(space) => format!("{}>", &name[..space]),
            None => name.to_string(),
        });
    }
    if let Some(rest) = name.strip_prefix("Detached <") {
        return Some(match rest.find(' ') {
            Some(space) => format!("Detached <{}>", &rest[..space]),
            None => name.to_string(),
        });
    }
    None
}

pub(crate) fn is_plain_object(snapshot: &HeapSnapshot, node: NodeIndex) -> bool {
    snapshot.node_type(node) == NodeType::Object && snapshot.node_name(node) == "Object"
}

/// Property names with commas, quotes or braces are shown JSON-quoted so the `{a, b}` list stays readable.
pub(crate) fn format_property_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains([',', '\'', '"', '{', '}']) {
        std::borrow::Cow::Owned(serde_json::to_string(name).unwrap_or_else(|_| name.to_string()))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// DevTools' `{a, b}` names for the commonest property sets of plain objects, most frequent first.
pub fn infer_interfaces(snapshot: &HeapSnapshot) -> Vec<InterfaceDefinition> {
    struct Candidate {
        name: String,
        properties: Vec<String>,
        count: u64,
    }
    // In first-seen order.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::default();
    let mut by_list: HashMap<Box<[u32]>, Option<usize>> = HashMap::default();
    let mut total = 0u64;
    let mut list: Vec<u32> = Vec::new();
    for node in 0..snapshot.node_count() as NodeIndex {
        if !is_plain_object(snapshot, node) {
            continue;
        }
        total += 1;
        property_list(snapshot, node, &mut list);
        let candidate = once_per_list(&mut by_list, &list, || {
            interface_name(snapshot, &list).map(|(name, properties)| {
                *by_name.entry(name.clone()).or_insert_with(|| {
                    candidates.push(Candidate { name, properties, count: 0 });
                    candidates.len() - 1
                })
            })
        });
        if let Some(candidate) = candidate {
            candidates[candidate].count += 1;
        }
    }
    // Most frequent first; ties keep first-seen order, as JavaScript's stable sort over a Map does.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.count));
    let min_count = MIN_OBJECT_COUNT_PER_INTERFACE.max(total as f64 / MIN_OBJECT_PROPORTION_PER_INTERFACE);
    candidates
        .into_iter()
        .take_while(|c| c.count as f64 >= min_count)
        .map(|c| InterfaceDefinition { name: c.name, properties: c.properties })
        .collect()
}

/// `compute`'s answer for `list`, computed once per distinct list: objects of one shape list the same property
/// names in the same order, so a heap has few distinct lists however many objects it has.
fn once_per_list<T: Copy>(cache: &mut HashMap<Box<[u32]>, T>, list: &[u32], compute: impl FnOnce() -> T) -> T {
    if let Some(&known) = cache.get(list) {
        return known;
    }
    let value = compute();
    cache.insert(list.into(), value);
    value
}

/// The name indices of a node's property edges, in edge order.
fn property_list(snapshot: &HeapSnapshot, node: NodeIndex, list: &mut Vec<u32>) {
    list.clear();
    list.extend(
        snapshot
            .edges(node)
            .filter(|&edge| snapshot.edge_type(edge) == EdgeType::Property)
            .map(|edge| snapshot.edge_name_or_index(edge)),
    );
}

/// DevTools' `{a, b}` name for a plain object with these property names (`__proto__` left out, cut at
/// [`MAX_INTERFACE_NAME_LENGTH`] UTF-16 units), and the properties it lists; `None` without properties.
fn interface_name(snapshot: &HeapSnapshot, list: &[u32]) -> Option<(String, Vec<String>)> {
    let mut name = String::from("{");
    let mut name_len = 1usize;
    let mut properties = Vec::new();
    for &index in list {
        let property = snapshot.strings.get(index);
        if property == "__proto__" {
            continue;
        }
        let formatted = format_property_name(property);
        let formatted_len = utf16::len(&formatted);
        if name_len > MIN_INTERFACE_PROPERTY_COUNT && name_len + formatted_len > MAX_INTERFACE_NAME_LENGTH {
            break;
        }
        if name_len != 1 {
            name.push_str(", ");
            name_len += 2;
        }
        name.push_str(&formatted);
        name_len += formatted_len;
        properties.push(property.to_string());
    }
    if properties.is_empty() {
        return None;
    }
    name.push('}');
    Some((name, properties))
}

struct TrieNode {
    next: HashMap<String, usize>,
    /// (class name, property count, definition index)
    matched: Option<(usize, usize, usize)>,
    greatest_next: Option<String>,
}

fn apply_interfaces(snapshot: &HeapSnapshot, definitions: &[InterfaceDefinition], names: &mut ClassNames) {
    let mut trie = vec![TrieNode { next: HashMap::default(), matched: None, greatest_next: None }];
    for (index, definition) in definitions.iter().enumerate() {
        let mut properties = definition.properties.clone();
        properties.sort_by(|a, b| utf16::cmp(a, b));
        let mut current = 0;
        for property in &properties {
            current = match trie[current].next.get(property) {
                Some(&next) => next,
                None => {
                    trie.push(TrieNode { next: HashMap::default(), matched: None, greatest_next: None });
                    let next = trie.len() - 1;
                    let node = &mut trie[current];
                    node.next.insert(property.clone(), next);
                    if node.greatest_next.as_deref().is_none_or(|g| utf16::cmp(g, property).is_lt()) {
                        node.greatest_next = Some(property.clone());
                    }
                    next
                }
            };
        }
        if trie[current].matched.is_none() {
            trie[current].matched = Some((index, properties.len(), index));
        }
    }
    // Better: more properties; on a tie, the earlier definition.
    let better = |a: Option<(usize, usize, usize)>, b: Option<(usize, usize, usize)>| match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => {
            if a.1 > b.1 || (a.1 == b.1 && a.2 <= b.2) {
                Some(a)
            } else {
                Some(b)
            }
        }
    };
    let mut interface_class: HashMap<usize, ClassId> = HashMap::default();
    let mut by_list: HashMap<Box<[u32]>, Option<usize>> = HashMap::default();
    let mut list: Vec<u32> = Vec::new();
    let mut properties: Vec<&str> = Vec::new();
    let mut states: Vec<usize> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for node in 0..snapshot.node_count() as NodeIndex {
        if !is_plain_object(snapshot, node) {
            continue;
        }
        property_list(snapshot, node, &mut list);
        let matched = once_per_list(&mut by_list, &list, || {
            properties.clear();
            properties.extend(list.iter().map(|&index| snapshot.strings.get(index)));
            properties.sort_by(|a, b| utf16::cmp(a, b));
            states.clear();
            states.push(0);
            let mut best = trie[0].matched;
            for property in &properties {
                current.clear();
                current.extend_from_slice(&states);
                for &state in &current {
                    let done = match &trie[state].greatest_next {
                        None => true,
                        Some(greatest) => utf16::cmp(property, greatest).is_ge(),
                    };
                    if done {
                        states.retain(|&s| s != state);
                    }
                    if let Some(&next) = trie[state].next.get(*property) {
                        if !states.contains(&next) {
                            states.push(next);
                        }
                        best = better(best, trie[next].matched);
                    }
                }
            }
            best.map(|(definition, _, _)| definition)
        });
        let Some(definition) = matched else { continue };
        let class = *interface_class.entry(definition).or_insert_with(|| {
            names.made_up.push(definitions[definition].name.clone());
            names.string_count + names.made_up.len() as u32 - 1
        });
        names.class_of[node as usize] = class;
    }
}
