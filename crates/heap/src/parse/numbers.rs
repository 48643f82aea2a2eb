//! The fast path for arrays of unsigned integers: 64 bytes at a time with bit masks, each number read a word at
//! a time. Anything it does not handle is left to the exact scanner in `lexer.rs`, which has the last word on
//! values, errors and offsets (the `numbers` fuzz target and `lexer::agreement` check the two agree).

#[cfg(not(target_arch = "x86_64"))]
use super::lexer::is_space;
use super::target::Piece;

/// Which block scanner reads the number arrays: both read the same values and stop at the same places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// SSE2 masks (any x86-64; bytes elsewhere), each number read from a word at its start.
    Portable,
    /// AVX-512 masks, and the numbers of a block converted eight at a time (`numbers_avx512.rs`).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    /// The fastest this processor runs.
    pub(crate) fn best() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if super::numbers_avx512::supported() {
            return Kernel::Avx512;
        }
        Kernel::Portable
    }

    /// Every kernel this processor runs (for the tests that compare them with the exact scanner).
    pub(crate) fn all() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Portable];
        if Kernel::best() != Kernel::Portable {
            kernels.push(Kernel::best());
        }
        kernels
    }
}

/// Scans unsigned integers, commas and whitespace in `buf[from..to]` into `out`, 64 bytes at a time, starting
/// after a value or not (`after_value`). Per block, bit masks of digits, commas and whitespace find where
/// numbers start and check that numbers and commas alternate; each number is then read from its start a word at a
/// time, independently of the others. Stops at the first thing the exact scanner in `lexer.rs` would handle
/// differently — any other byte, a number with a fraction or exponent, more than 19 digits, two commas or two
/// numbers in a row, a value `out` refuses — and returns a token boundary before it (`to` when it got through) and
/// whether a value came last. `buf` must hold at least [`SLACK`] bytes past `to`.
pub(super) fn scan_piece(
    buf: &[u8],
    from: usize,
    to: usize,
    after_value: bool,
    out: &mut impl Piece,
    kernel: Kernel,
) -> (usize, bool) {
    assert!(buf.len() >= to + SLACK, "the scanner reads {SLACK} bytes past the text it scans");
    match kernel {
        Kernel::Portable => scan_blocks(buf, from, to, after_value, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx512` is only chosen where `numbers_avx512::supported()` said so (`Kernel::best`).
        Kernel::Avx512 => unsafe { super::numbers_avx512::scan_blocks(buf, from, to, after_value, out) },
    }
}

/// Bytes the scanner reads past the end of the text it scans: its last 64-byte block, and 8 bytes from the last
/// place a number can start in it, so that no read needs a bounds check.
pub(super) const SLACK: usize = 72;

/// How many commas `bytes` holds: the number of values a piece of a number array holds, give or take one.
pub(super) fn count_commas(bytes: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut blocks = bytes.chunks_exact(16);
        let mut total = 0u64;
        // SAFETY: SSE2 is part of x86-64; every load reads one whole 16-byte chunk of `bytes`.
        unsafe {
            let comma = _mm_set1_epi8(b',' as i8);
            let zero = _mm_setzero_si128();
            loop {
                // Byte lanes count down by one per comma (compare gives -1); at most 255 rounds before they wrap.
                let mut lanes = _mm_setzero_si128();
                let mut rounds = 0;
                for block in blocks.by_ref().take(255) {
                    let v = _mm_loadu_si128(block.as_ptr() as *const __m128i);
                    lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(v, comma));
                    rounds += 1;
                }
                let sums = _mm_sad_epu8(lanes, zero);
                total += (_mm_cvtsi128_si64(sums) + _mm_extract_epi16(sums, 4) as i64) as u64;
                if rounds < 255 {
                    break;
                }
            }
        }
        total + blocks.remainder().iter().filter(|&&b| b == b',').count() as u64
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        bytes.iter().filter(|&&b| b == b',').count() as u64
    }
}

fn scan_blocks(buf: &[u8], from: usize, to: usize, after_value: bool, out: &mut impl Piece) -> (usize, bool) {
    // Where to resume if this piece has to stop: right after the last number taken, or where it began.
    let mut resume = (from, after_value);
    let mut state = BlockState { expect_value: !after_value, previous_digit: 0 };
    let mut block = from;
    while block < to {
        let window: &[u8; SLACK] = buf[block..block + SLACK].try_into().expect("scan_piece checked the slack");
        let Some(tokens) = Tokens::of(&ByteMasks::of(&window[..64]), window[64], to - block, &state) else {
            return resume;
        };
        let (mut pending, mut ends) = (tokens.starts, tokens.ends);
        while pending != 0 {
            // Below 64 (`pending` is not 0), which the mask tells the compiler: the word read from the window
            // at `first` then needs no bounds check.
            let first = (pending.trailing_zeros() & 63) as usize;
            let at = block + first;
            pending &= pending - 1;
            let end_bit = ends.trailing_zeros() as usize;
            let digits = if end_bit < 64 { (end_bit + 1).wrapping_sub(first) } else { usize::MAX };
            ends &= ends.wrapping_sub(1);
            let number = if digits <= 8 {
                Some((eight_digits(word_at(window, first), digits), at + digits))
            } else {
                read_long_number(buf, at, to)
            };
            match number {
                Some((value, end)) if out.put(value) => resume = (end, true),
                _ => return resume,
            }
        }
        if let Some(stop) = state.next_block(&tokens, block, resume) {
            return stop;
        }
        block += 64;
    }
    (to, !state.expect_value)
}

/// What carries from one 64-byte block to the next.
pub(super) struct BlockState {
    pub(super) expect_value: bool,
    /// 1 when the block before ended with a digit.
    pub(super) previous_digit: u64,
}

impl BlockState {
    /// Moves past a block whose numbers were all taken: `Some` of where the piece stops when the block ended at a
    /// byte this scanner does not handle (`resume`: after the last number taken).
    #[inline(always)]
    pub(super) fn next_block(&mut self, tokens: &Tokens, block: usize, resume: (usize, bool)) -> Option<(usize, bool)> {
        if tokens.count_is_odd {
            self.expect_value = !self.expect_value;
        }
        if tokens.usable != tokens.in_range {
            // Stopped at a byte this scanner does not handle: everything before it is taken.
            return Some(if self.expect_value { (block + tokens.usable.count_ones() as usize, false) } else { resume });
        }
        self.previous_digit = tokens.digits >> 63;
        None
    }
}

/// Where the numbers of a 64-byte block start and end.
pub(super) struct Tokens {
    /// Bit `i`: a number starts at byte `i`.
    pub(super) starts: u64,
    /// Where the numbers that start in the block end in it (their last digit), in the same order: all but
    /// perhaps the last have one.
    pub(super) ends: u64,
    /// The bytes before the first one this scanner does not handle.
    usable: u64,
    /// The bytes before the end of the piece.
    in_range: u64,
    digits: u64,
    count_is_odd: bool,
}

impl Tokens {
    /// `None` when numbers and commas do not alternate. `next` is the byte after the block; `left` how many
    /// bytes of the piece are left from the block's start.
    #[inline(always)]
    pub(super) fn of(masks: &ByteMasks, next: u8, left: usize, state: &BlockState) -> Option<Tokens> {
        let in_range = if left >= 64 { u64::MAX } else { (1u64 << left) - 1 };
        let invalid = in_range & !(masks.digit | masks.comma | masks.space);
        // Only the bytes before the first one this scanner does not handle are looked at.
        let usable = if invalid == 0 { in_range } else { (1u64 << invalid.trailing_zeros()) - 1 };
        let digits = masks.digit & usable;
        let commas = masks.comma & usable;
        let starts = digits & !((digits << 1) | state.previous_digit);
        let tokens = starts | commas;
        // Tokens must alternate value, comma, value...: with the running parity of tokens (1 at the first, third,
        // ... token of the block), values sit where the parity says "value expected".
        let odd = prefix_xor(tokens);
        let value_slots = if state.expect_value { odd } else { !odd };
        if (starts & !value_slots) | (commas & value_slots) != 0 {
            return None;
        }
        // Where the numbers that start in this block end, when they end in it: a digit not followed by one (the
        // byte after the block decides for its last byte), not the end of a number begun in the block before,
        // and not right before a byte this scanner leaves to the exact one (`1.5`, also across the block's end).
        // Only the last number of a block can lack its end here; it is read a word at a time from its start.
        let next_continues = u64::from(next.is_ascii_digit() || matches!(next, b'.' | b'e' | b'E'));
        let carried = (masks.digit & !masks.digit.wrapping_add(1)) * state.previous_digit;
        let before_invalid = (invalid & invalid.wrapping_neg()) >> 1;
        let ends = masks.digit & !((masks.digit >> 1) | (next_continues << 63)) & usable & !carried & !before_invalid;
        Some(Tokens { starts, ends, usable, in_range, digits, count_is_odd: tokens.count_ones() % 2 == 1 })
    }
}

/// The number starting at `buf[at]` read from there, when the exact scanner would read it the same: at most 19
/// digits, ending before `to` and not followed by a fraction or exponent.
#[inline(always)]
pub(super) fn read_long_number(buf: &[u8], at: usize, to: usize) -> Option<(u64, usize)> {
    read_number(buf, at).filter(|&(_, end)| end <= to && !matches!(buf[end], b'.' | b'e' | b'E'))
}

const POW10: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The eight bytes at `buf[at]`, first byte lowest.
#[inline(always)]
fn word_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("eight bytes"))
}

/// The number of up to 19 digits starting at `buf[at]` (a digit) and where it ends; `None` for longer ones.
#[inline(always)]
fn read_number(buf: &[u8], at: usize) -> Option<(u64, usize)> {
    let word = |i: usize| word_at(buf, i);
    let first = word(at);
    let run = digit_run(first);
    if run == 1 {
        // One digit: the commonest length in snapshots (types, flags, small counts), without the multiplies.
        return Some(((first & 0x0f), at + 1));
    }
    if run < 8 {
        return Some((eight_digits(first, run), at + run));
    }
    let high = eight_digits(first, 8);
    let second = word(at + 8);
    let run = digit_run(second);
    if run == 0 {
        return Some((high, at + 8));
    }
    if run < 8 {
        return Some((high * POW10[run] + eight_digits(second, run), at + 8 + run));
    }
    let middle = high * 100_000_000 + eight_digits(second, 8);
    let third = word(at + 16);
    match digit_run(third) {
        0 => Some((middle, at + 16)),
        run @ 1..=3 => Some((middle * POW10[run] + eight_digits(third, run), at + 16 + run)),
        _ => None,
    }
}

/// Bit `i` set when byte `i` of a 64-byte block is an ASCII digit, a comma, JSON whitespace.
pub(super) struct ByteMasks {
    pub(super) digit: u64,
    pub(super) comma: u64,
    pub(super) space: u64,
}

impl ByteMasks {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn of(block: &[u8]) -> ByteMasks {
        use std::arch::x86_64::*;
        assert!(block.len() >= 64);
        let mut masks = ByteMasks { digit: 0, comma: 0, space: 0 };
        // SAFETY: SSE2 is part of x86-64; the four unaligned 16-byte loads stay inside `block` (checked above).
        unsafe {
            let zero = _mm_set1_epi8(b'0' as i8);
            let nine = _mm_set1_epi8(9);
            let comma = _mm_set1_epi8(b',' as i8);
            let spaces = [b' ', b'\n', b'\r', b'\t'].map(|b| _mm_set1_epi8(b as i8));
            for lane in 0..4 {
                let bytes = _mm_loadu_si128(block.as_ptr().add(lane * 16) as *const __m128i);
                let offset = _mm_sub_epi8(bytes, zero);
                let digit = _mm_cmpeq_epi8(_mm_min_epu8(offset, nine), offset);
                let is_comma = _mm_cmpeq_epi8(bytes, comma);
                let space = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(bytes, spaces[0]), _mm_cmpeq_epi8(bytes, spaces[1])),
                    _mm_or_si128(_mm_cmpeq_epi8(bytes, spaces[2]), _mm_cmpeq_epi8(bytes, spaces[3])),
                );
                let shift = lane * 16;
                masks.digit |= (_mm_movemask_epi8(digit) as u16 as u64) << shift;
                masks.comma |= (_mm_movemask_epi8(is_comma) as u16 as u64) << shift;
                masks.space |= (_mm_movemask_epi8(space) as u16 as u64) << shift;
            }
        }
        masks
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8]) -> ByteMasks {
        let mut masks = ByteMasks { digit: 0, comma: 0, space: 0 };
        for (i, &b) in block[..64].iter().enumerate() {
            masks.digit |= (b.is_ascii_digit() as u64) << i;
            masks.comma |= ((b == b',') as u64) << i;
            masks.space |= (is_space(b) as u64) << i;
        }
        masks
    }
}

/// Bit `i` of the result is the parity of the set bits of `x` at positions `0..=i`.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// How many of the eight bytes of `word` (first byte lowest) are ASCII digits before the first other byte.
#[inline(always)]
fn digit_run(word: u64) -> usize {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    // A byte is a digit when its high nibble is 3, and still is after adding 6 (0x3a..0x3f are not digits).
    // Adding 6 can carry out of a byte only from a non-digit, so the bytes up to the first non-digit are exact.
    let x = ((word & HIGH) ^ THREES) | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH) ^ THREES);
    let nonzero = ((x & 0x7F7F_7F7F_7F7F_7F7F).wrapping_add(0x7F7F_7F7F_7F7F_7F7F) | x) & 0x8080_8080_8080_8080;
    (nonzero.trailing_zeros() / 8) as usize
}

/// The value of the first `digits` (1..=8) bytes of `word`, all ASCII digits (first byte lowest).
#[inline(always)]
fn eight_digits(word: u64, digits: usize) -> u64 {
    // Subtracting '0' borrows only out of non-digits, which lie above the digits; shifting them out leaves the
    // digits in the top bytes and leading zeros below. Then pairs, quads and the eight are combined in place.
    let v = word.wrapping_sub(0x3030_3030_3030_3030) << (8 * (8 - digits));
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let low = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let high = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    low.wrapping_add(high) >> 32
}

#[cfg(test)]
mod tests {
    use super::super::lexer::agreement::xorshift;
    use super::*;

    #[test]
    fn word_scanner_reads_digit_runs() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            seed = xorshift(seed);
            let digits = (seed % 9) as usize;
            let number = (seed >> 8) % 10u64.pow(digits as u32);
            let mut bytes = format!("{number:0digits$}").into_bytes();
            bytes.truncate(digits);
            while bytes.len() < 8 {
                bytes.push((seed >> (bytes.len() * 7)) as u8);
            }
            let word = u64::from_le_bytes(bytes[..8].try_into().unwrap());
            let expected = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            assert_eq!(digit_run(word), expected, "{bytes:?}");
            if expected > 0 {
                let text = std::str::from_utf8(&bytes[..expected]).unwrap();
                assert_eq!(eight_digits(word, expected), text.parse::<u64>().unwrap(), "{bytes:?}");
            }
        }
    }
}
