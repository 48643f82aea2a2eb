//! Differential: the 64-byte bit-mask number scanner must read any `[...]` text exactly as the byte-at-a-time
//! scanner does — the same values, or the same error at the same byte offset and array index — whatever the
//! buffer sizes and the split between its two threads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (seed, body) = match data.split_first_chunk::<8>() {
        Some((seed, body)) => (u64::from_le_bytes(*seed), body),
        None => (0, data),
    };
    let mut text = Vec::with_capacity(body.len() + 1);
    text.push(b'[');
    text.extend_from_slice(body);
    leakscope_heap::check_number_scanners(&text, seed);
});
