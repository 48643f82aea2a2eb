//! The number scanner's AVX-512 kernel: the same blocks, tokens and stopping places as the portable one in
//! `numbers.rs`, but the masks come from one 64-byte compare each, and the numbers of a block that end in it are
//! converted eight at a time: each one's last eight bytes are gathered into a 64-bit lane (`vpermb`, the bytes
//! before its start zeroed), and two multiply-adds and a multiply turn the lanes into values. Numbers of more
//! than eight digits, and the block's last number when it runs past the block, are read as the portable kernel
//! reads them.

use super::numbers::{read_long_number, BlockState, ByteMasks, Tokens, SLACK};
use super::target::Piece;
use std::arch::x86_64::*;

/// Whether this processor has what the kernel uses (AVX-512 BW for byte masks, VBMI for byte permutes, VBMI2
/// for byte compression, BMI2 for `pdep`).
pub(super) fn supported() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vbmi")
        && is_x86_feature_detected!("avx512vbmi2")
        && is_x86_feature_detected!("bmi2")
}

/// [`super::numbers::scan_piece`] with this kernel.
///
/// # Safety
/// The processor must have the features [`supported`] checks; `buf` must hold [`SLACK`] bytes past `to`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vbmi2,bmi1,bmi2,popcnt")]
pub(super) unsafe fn scan_blocks(
    buf: &[u8],
    from: usize,
    to: usize,
    after_value: bool,
    out: &mut impl Piece,
) -> (usize, bool) {
    let mut resume = (from, after_value);
    let mut state = BlockState { expect_value: !after_value, previous_digit: 0 };
    let mut values = [0u64; 32];
    let mut block = from;
    while block < to {
        let window: &[u8; SLACK] = buf[block..block + SLACK].try_into().expect("scan_piece checked the slack");
        let bytes = _mm512_loadu_si512(window.as_ptr() as *const __m512i);
        let Some(tokens) = Tokens::of(&masks(bytes), window[64], to - block, &state) else {
            return resume;
        };
        let ended = tokens.ends.count_ones() as usize;
        let mut long = convert(bytes, &tokens, ended, &mut values);
        // Where the piece resumes when it has to stop before the block's number `k`.
        let before = |k: usize, resume: (usize, bool)| match k {
            0 => resume,
            _ => (block + _pdep_u64(1 << (k - 1), tokens.ends).trailing_zeros() as usize + 1, true),
        };
        // The numbers before the first one the exact scanner must read (more than 19 digits, a fraction...).
        let mut readable = ended;
        while long != 0 {
            // More than eight digits: read from its start, as the portable kernel does.
            let k = long.trailing_zeros() as usize;
            long &= long - 1;
            let at = block + _pdep_u64(1 << k, tokens.starts).trailing_zeros() as usize;
            match read_long_number(buf, at, to) {
                Some((value, _)) => values[k] = value,
                None => {
                    readable = k;
                    break;
                }
            }
        }
        let stored = out.put_all(&values[..readable]);
        if stored < ended {
            return before(stored, resume);
        }
        resume = before(ended, resume);
        if tokens.starts.count_ones() as usize > ended {
            // The block's last number runs past it.
            let at = block + 63 - tokens.starts.leading_zeros() as usize;
            match read_long_number(buf, at, to) {
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

/// Bit masks of the block's digits, commas and JSON whitespace.
#[target_feature(enable = "avx512f,avx512bw")]
fn masks(bytes: __m512i) -> ByteMasks {
    let digit = _mm512_cmplt_epu8_mask(_mm512_sub_epi8(bytes, _mm512_set1_epi8(b'0' as i8)), _mm512_set1_epi8(10));
    let comma = _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(b',' as i8));
    let space = _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(b' ' as i8))
        | _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(b'\n' as i8))
        | _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(b'\r' as i8))
        | _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(b'\t' as i8));
    ByteMasks { digit, comma, space }
}

/// The values of the block's first `ended` numbers (those that end in it) into `values`, eight per step; returns
/// a mask of those with more than eight digits, whose values are not right.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vbmi2")]
fn convert(bytes: __m512i, tokens: &Tokens, ended: usize, values: &mut [u64; 32]) -> u64 {
    if ended == 0 {
        return 0;
    }
    let lanes = _mm512_set_epi8(
        63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36,
        35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8,
        7, 6, 5, 4, 3, 2, 1, 0,
    );
    // Byte k: where number k ends, where it starts (the k-th start pairs with the k-th end).
    let end_at = _mm512_maskz_compress_epi8(tokens.ends, lanes);
    let start_at = _mm512_maskz_compress_epi8(tokens.starts, lanes);
    let long = _mm512_cmpgt_epu8_mask(_mm512_sub_epi8(end_at, start_at), _mm512_set1_epi8(7));
    let digits = _mm512_sub_epi8(bytes, _mm512_set1_epi8(b'0' as i8));
    // Lane byte i of number j (j = i / 8) is the byte at (its end - 7 + i % 8): the most significant first.
    let number_of_byte = _mm512_srli_epi16::<3>(_mm512_and_si512(lanes, _mm512_set1_epi8(0x38)));
    let from_end = _mm512_sub_epi8(_mm512_and_si512(lanes, _mm512_set1_epi8(7)), _mm512_set1_epi8(7));
    let tens = _mm512_set1_epi16(0x010A); // bytes 10, 1: pairs of digits
    let hundreds = _mm512_set1_epi32(0x0001_0064); // 100, 1: pairs of pairs
    let ten_thousand = _mm512_set1_epi64(10_000);
    let mut group = 0;
    while group * 8 < ended {
        let which = _mm512_add_epi8(number_of_byte, _mm512_set1_epi8(group as i8 * 8));
        let end = _mm512_permutexvar_epi8(which, end_at);
        let start = _mm512_permutexvar_epi8(which, start_at);
        let at = _mm512_add_epi8(end, from_end);
        let in_number = _mm512_cmpge_epi8_mask(at, start);
        let number = _mm512_maskz_permutexvar_epi8(in_number, at, digits);
        let pairs = _mm512_maddubs_epi16(number, tens);
        let quads = _mm512_madd_epi16(pairs, hundreds);
        let value = _mm512_add_epi64(_mm512_mul_epu32(quads, ten_thousand), _mm512_srli_epi64::<32>(quads));
        // SAFETY: `group` < 4 (at most 32 numbers end in 64 bytes), so the eight values fit in `values`.
        unsafe { _mm512_storeu_si512(values.as_mut_ptr().add(group * 8) as *mut __m512i, value) };
        group += 1;
    }
    long & (u64::MAX >> (64 - ended))
}
