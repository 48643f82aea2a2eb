//! The snapshot's strings table, decoded into one compact arena (no per-string allocation).

/// All strings of a snapshot, stored back to back as UTF-8. Offsets are 64-bit so tables larger than
/// 4 GiB (or than JavaScript's ~512 M-character string limit) work.
#[derive(Debug, Default, Clone)]
pub struct StringTable {
    bytes: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` is string `i`; `offsets.len() == len() + 1`.
    offsets: Vec<u64>,
}

impl StringTable {
    /// The text of all strings, and where each starts.
    pub(crate) fn arrays(&self) -> (&[u8], &[u64]) {
        (&self.bytes, &self.offsets)
    }

    pub fn new() -> Self {
        StringTable { bytes: Vec::new(), offsets: vec![0] }
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total decoded size in bytes.
    pub fn byte_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// String `index`, or `""` when out of range (indices are validated at load time).
    pub fn get(&self, index: u32) -> &str {
        let i = index as usize;
        if i + 1 >= self.offsets.len() {
            return "";
        }
        let bytes = &self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize];
        // SAFETY: every string is validated (or repaired) as UTF-8 by `push_bytes` before it is stored.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    pub fn push(&mut self, text: &str) -> u32 {
        self.bytes.extend_from_slice(text.as_bytes());
        self.offsets.push(self.bytes.len() as u64);
        (self.offsets.len() - 2) as u32
    }

    /// The arena to append a string's bytes to; call `finish_string` afterwards.
    pub(crate) fn arena(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Seals the bytes appended since the previous string. The caller guarantees they are valid UTF-8.
    pub(crate) fn finish_string(&mut self) {
        debug_assert!(std::str::from_utf8(&self.bytes[*self.offsets.last().unwrap() as usize..]).is_ok());
        self.offsets.push(self.bytes.len() as u64);
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.offsets.shrink_to_fit();
    }

    /// Heap memory held by the table.
    pub fn memory_bytes(&self) -> u64 {
        (self.bytes.capacity() + self.offsets.capacity() * 8) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_returns_strings() {
        let mut table = StringTable::new();
        assert_eq!(table.push("<dummy>"), 0);
        assert_eq!(table.push(""), 1);
        assert_eq!(table.push("héllo"), 2);
        assert_eq!(table.get(2), "héllo");
        assert_eq!(table.get(1), "");
        assert_eq!(table.get(99), "");
        assert_eq!(table.len(), 3);
    }
}
