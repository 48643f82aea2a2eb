//! A fixed-size bit vector (one bit per node or edge).

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BitVec {
    words: Vec<u64>,
    len: usize,
}

impl BitVec {
    pub fn new(len: usize) -> Self {
        BitVec { words: vec![0; len.div_ceil(64)], len }
    }

    /// The bits of `words` (bit `i` of word `w` is bit `64 * w + i`), `len` of them.
    pub fn from_words(words: Vec<u64>, len: usize) -> Self {
        assert_eq!(words.len(), len.div_ceil(64), "{len} bits are {} words", len.div_ceil(64));
        BitVec { words, len }
    }

    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words[i >> 6] & (1 << (i & 63)) != 0
    }

    #[inline]
    pub fn set(&mut self, i: usize) {
        self.words[i >> 6] |= 1 << (i & 63);
    }

    /// The words holding the bits (bit `i` is bit `i % 64` of word `i / 64`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets bit `64 * word + i` for every bit `i` set in `other`.
    pub fn or_words_from(&mut self, word: usize, other: &BitVec) {
        assert!(word * 64 + other.len <= self.len, "the other bit vector does not fit");
        for (mine, &theirs) in self.words[word..].iter_mut().zip(&other.words) {
            *mine |= theirs;
        }
    }

    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sets_and_reads_bits() {
        let mut bits = super::BitVec::new(130);
        bits.set(0);
        bits.set(64);
        bits.set(129);
        assert!(bits.get(0) && bits.get(64) && bits.get(129));
        assert!(!bits.get(1) && !bits.get(128));
        assert_eq!(bits.count_ones(), 3);
        let mut tail = super::BitVec::new(130 - 64);
        tail.set(1);
        tail.set(65);
        bits.or_words_from(1, &tail);
        assert!(bits.get(65) && bits.get(129) && !bits.get(66));
        assert_eq!(bits.count_ones(), 4);
    }
}
