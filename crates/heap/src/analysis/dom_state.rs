//! Embedder (DOM / Node binding) objects flagged "detached" in the snapshot, and the native objects they lead to,
//! are shown by DevTools as "Detached <name>" (`propagateDOMState`). Attachment wins over detachment, and the
//! state only travels from native object to native object.

use super::bits::BitVec;
use crate::snapshot::{EdgeType, HeapSnapshot, NodeIndex, NodeType};

const ATTACHED: u8 = 1;
const DETACHED: u8 = 2;

/// The nodes DevTools renames to "Detached …". Empty when the file has no `detachedness` field.
pub fn detached_nodes(snapshot: &HeapSnapshot) -> BitVec {
    let n = snapshot.node_count();
    let mut detached = BitVec::new(if snapshot.node_detachedness.is_empty() { 0 } else { n });
    if snapshot.node_detachedness.is_empty() {
        return detached;
    }
    let mut visited = BitVec::new(n);
    let mut state = vec![0u8; 0];
    state.extend_from_slice(&snapshot.node_detachedness);
    let mut attached_list: Vec<NodeIndex> = Vec::new();
    let mut detached_list: Vec<NodeIndex> = Vec::new();
    let process = |node: NodeIndex,
                   new_state: u8,
                   visited: &mut BitVec,
                   state: &mut Vec<u8>,
                   detached: &mut BitVec,
                   attached_list: &mut Vec<NodeIndex>,
                   detached_list: &mut Vec<NodeIndex>| {
        if visited.get(node as usize) {
            return;
        }
        visited.set(node as usize);
        if snapshot.node_type(node) != NodeType::Native {
            return;
        }
        state[node as usize] = new_state;
        if new_state == ATTACHED {
            attached_list.push(node);
        } else if new_state == DETACHED {
            detached.set(node as usize);
            detached_list.push(node);
        }
    };
    for node in 0..n as NodeIndex {
        let s = snapshot.node_detachedness[node as usize];
        if s != 0 {
            process(node, s, &mut visited, &mut state, &mut detached, &mut attached_list, &mut detached_list);
        }
    }
    let follows = |kind: EdgeType| !matches!(kind, EdgeType::Hidden | EdgeType::Weak);
    while let Some(node) = attached_list.pop() {
        for edge in snapshot.edges(node) {
            if follows(snapshot.edge_type(edge)) {
                let child = snapshot.edge_target(edge);
                process(
                    child,
                    ATTACHED,
                    &mut visited,
                    &mut state,
                    &mut detached,
                    &mut attached_list,
                    &mut detached_list,
                );
            }
        }
    }
    while let Some(node) = detached_list.pop() {
        if state[node as usize] == ATTACHED {
            continue;
        }
        for edge in snapshot.edges(node) {
            if follows(snapshot.edge_type(edge)) {
                let child = snapshot.edge_target(edge);
                process(
                    child,
                    DETACHED,
                    &mut visited,
                    &mut state,
                    &mut detached,
                    &mut attached_list,
                    &mut detached_list,
                );
            }
        }
    }
    detached
}
