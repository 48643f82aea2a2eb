//! Byte sizes per node in four bytes each: the few of 4 GiB and more (array buffer backing stores, and owners
//! that collect them) are kept aside. Used for the file's self sizes and for shallow sizes while the dominator
//! pass needs the memory.

use crate::snapshot::NodeIndex;
use rustc_hash::FxHashMap;

#[derive(Debug, Clone, Default)]
pub struct CompactSizes {
    /// The size, or `u32::MAX` when it is in `large`.
    small: Vec<u32>,
    large: FxHashMap<NodeIndex, u64>,
}

impl CompactSizes {
    /// `len` sizes of 0, in memory the system hands out already zeroed (nothing is touched until written).
    pub(crate) fn zeroed(len: usize) -> Self {
        CompactSizes { small: vec![0; len], large: FxHashMap::default() }
    }

    /// A copy of these sizes made in `memory` (whose pages may already be in place) instead of fresh memory.
    pub(crate) fn copy_into(&self, mut memory: Vec<u32>) -> CompactSizes {
        memory.clear();
        memory.extend_from_slice(&self.small);
        CompactSizes { small: memory, large: self.large.clone() }
    }

    pub(crate) fn len(&self) -> usize {
        self.small.len()
    }

    /// The four-byte slots, for filling in place: a size of 4 GiB or more is `u32::MAX` there, with the size
    /// given to [`Self::keep_large`].
    pub(crate) fn slots(&self) -> &[u32] {
        &self.small
    }

    pub(crate) fn slots_mut(&mut self) -> &mut [u32] {
        &mut self.small
    }

    /// Records the size of a node whose slot holds `u32::MAX`.
    pub(crate) fn keep_large(&mut self, node: NodeIndex, size: u64) {
        self.large.insert(node, size);
    }

    /// Grows to `len` nodes (new ones of size 0) or cuts down to it.
    pub(crate) fn resize(&mut self, len: usize) {
        if len < self.small.len() {
            self.large.retain(|&node, _| (node as usize) < len);
        }
        self.small.resize(len, 0);
    }

    /// Cuts down to `len` nodes, giving the memory back when most of it was never used.
    pub(crate) fn cut(&mut self, len: usize) {
        self.resize(len.min(self.small.len()));
        if self.small.capacity() / 2 > len {
            self.small.shrink_to_fit();
        }
    }

    /// Appends the next node's size.
    #[cfg(test)]
    pub(crate) fn push(&mut self, size: u64) {
        match u32::try_from(size) {
            Ok(small) if small != u32::MAX => self.small.push(small),
            _ => {
                self.large.insert(self.small.len() as NodeIndex, size);
                self.small.push(u32::MAX);
            }
        }
    }

    #[inline]
    pub fn get(&self, node: NodeIndex) -> u64 {
        match self.small[node as usize] {
            u32::MAX => self.large[&node],
            small => small as u64,
        }
    }

    #[inline]
    pub fn set(&mut self, node: NodeIndex, size: u64) {
        match u32::try_from(size) {
            Ok(small) if small != u32::MAX => {
                if self.small[node as usize] == u32::MAX {
                    self.large.remove(&node);
                }
                self.small[node as usize] = small;
            }
            _ => {
                self.small[node as usize] = u32::MAX;
                self.large.insert(node, size);
            }
        }
    }

    /// The sizes of `sizes`, node by node.
    #[cfg(test)]
    pub(crate) fn from_sizes(sizes: &[u64]) -> Self {
        let mut compact = CompactSizes::default();
        for &size in sizes {
            compact.push(size);
        }
        compact
    }

    /// Adds the size of `from` to that of `to`.
    #[inline]
    pub fn add_to(&mut self, to: NodeIndex, from: NodeIndex) {
        let (a, b) = (self.small[to as usize], self.small[from as usize]);
        match a.checked_add(b) {
            // Neither is kept aside (u32::MAX), and neither is the sum.
            Some(sum) if sum != u32::MAX && a != u32::MAX && b != u32::MAX => self.small[to as usize] = sum,
            _ => self.set(to, self.get(to) + self.get(from)),
        }
    }

    /// Eight bytes per node.
    pub fn to_vec(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self.small.iter().map(|&s| s as u64).collect();
        for (&node, &size) in &self.large {
            sizes[node as usize] = size;
        }
        sizes
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.small.capacity() * 4 + self.large.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_values_are_kept_exactly() {
        let mut sizes = super::CompactSizes::default();
        for size in [0, 7, 6 << 30] {
            sizes.push(size);
        }
        assert_eq!(sizes.to_vec(), [0, 7, 6 << 30]);
        sizes.set(1, sizes.get(1) + u32::MAX as u64);
        assert_eq!(sizes.get(1), u32::MAX as u64 + 7);
        sizes.set(2, 40);
        sizes.set(0, u32::MAX as u64);
        assert_eq!(sizes.to_vec(), [u32::MAX as u64, u32::MAX as u64 + 7, 40]);
        assert_eq!(sizes.large.len(), 2, "the entry of node 2 is gone");
        sizes.set(1, 0);
        assert_eq!((sizes.get(1), sizes.large.len()), (0, 1));
    }
}
