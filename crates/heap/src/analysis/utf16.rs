//! JavaScript compares and measures strings in UTF-16 code units; DevTools' class names depend on both.

use std::cmp::Ordering;

pub fn len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

pub fn cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn orders_like_javascript() {
        // U+FF01 sorts before U+1F600 by code point, but after it in UTF-16 code units (surrogates are 0xD8xx).
        assert_eq!(super::cmp("\u{FF01}", "\u{1F600}"), std::cmp::Ordering::Greater);
        assert_eq!(super::len("😀"), 2);
    }
}
