//! A streaming JSON scanner specialised for `.heapsnapshot` files: huge arrays of unsigned integers, a large
//! array of strings, and small objects. It never builds a document tree and holds only one buffer of input.

use super::numbers::{count_commas, scan_piece, Kernel};
use super::target::{Piece, Target, Value, Values};
use crate::error::{Location, ParseError};
use std::io::Read;

const BUFFER_SIZE: usize = 4 << 20;
/// Text read in place is made available this much at a time: fewer, longer two-thread scans than a buffer of
/// `BUFFER_SIZE` allows (each split costs a thread start and a wait for the slower half).
pub(crate) const WINDOW: usize = 16 << 20;
/// Number arrays go through the word-at-a-time scanner once this many bytes are buffered...
const FAST_MIN: usize = 4 << 10;
/// ...and are split between two threads once this many are.
const PARALLEL_MIN: usize = 512 << 10;

/// Where the lexer's text comes from.
pub(crate) trait Input {
    /// The text read so far; the lexer reads `pos..end` of it.
    fn text(&self) -> &[u8];

    /// Makes more text available after `*end`: the unread part `*pos..*end` may move, and `*base` (the input offset
    /// of `text()[0]`) with it. False at the end of the input.
    fn more(&mut self, pos: &mut usize, end: &mut usize, base: &mut u64) -> Result<bool, ParseError>;
}

/// A reader's text, copied into a buffer of the lexer's own.
pub(crate) struct ReadInput<R> {
    reader: R,
    buf: Vec<u8>,
}

impl<R: Read> ReadInput<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self::with_buffer(reader, BUFFER_SIZE)
    }

    pub(crate) fn with_buffer(reader: R, size: usize) -> Self {
        ReadInput { reader, buf: vec![0; size] }
    }
}

impl<R: Read> Input for ReadInput<R> {
    #[inline(always)]
    fn text(&self) -> &[u8] {
        &self.buf
    }

    /// Discards consumed bytes and reads more.
    fn more(&mut self, pos: &mut usize, end: &mut usize, base: &mut u64) -> Result<bool, ParseError> {
        if *pos > 0 {
            self.buf.copy_within(*pos..*end, 0);
            *base += *pos as u64;
            *end -= *pos;
            *pos = 0;
        }
        if *end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[*end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    *end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(ParseError::Io { offset: *base + *end as u64, source }),
            }
        }
    }
}

/// Text already in memory (a mapped file), read in place: no copy, no read calls. It is made available to the
/// lexer a window at a time, as a reader's would be, and `consumed` is told now and then how much of it has
/// been read for good, so that a mapping's pages can be given back as the parse goes.
pub(crate) struct InPlace<'a> {
    text: &'a [u8],
    window: usize,
    told: usize,
    consumed: &'a mut dyn FnMut(usize),
}

impl<'a> InPlace<'a> {
    pub(crate) fn new(text: &'a [u8], consumed: &'a mut dyn FnMut(usize)) -> Self {
        Self::with_window(text, WINDOW, consumed)
    }

    pub(crate) fn with_window(text: &'a [u8], window: usize, consumed: &'a mut dyn FnMut(usize)) -> Self {
        InPlace { text, window: window.max(1), told: 0, consumed }
    }
}

impl Input for InPlace<'_> {
    #[inline(always)]
    fn text(&self) -> &[u8] {
        self.text
    }

    fn more(&mut self, pos: &mut usize, end: &mut usize, _base: &mut u64) -> Result<bool, ParseError> {
        if *end == self.text.len() {
            return Ok(false);
        }
        if *pos > self.told {
            (self.consumed)(*pos);
            self.told = *pos;
        }
        *end = end.saturating_add(self.window).min(self.text.len());
        Ok(true)
    }
}

pub(crate) struct Lexer<I> {
    input: I,
    pos: usize,
    end: usize,
    /// Absolute offset of `input.text()[0]` in the input.
    base: u64,
    eof: bool,
    pub(crate) section: Option<&'static str>,
    pub(crate) index: Option<u64>,
    /// Thresholds for the fast number scanner (see `uint_array`); `usize::MAX` turns it off.
    fast_min: usize,
    parallel_min: usize,
    kernel: Kernel,
}

impl<I: Input> Lexer<I> {
    pub(crate) fn new(input: I) -> Self {
        Self::with_sizes(input, FAST_MIN, PARALLEL_MIN, Kernel::best())
    }

    pub(crate) fn with_sizes(input: I, fast_min: usize, parallel_min: usize, kernel: Kernel) -> Self {
        let (pos, end, base, eof) = (0, 0, 0, false);
        Lexer { input, pos, end, base, eof, section: None, index: None, fast_min, parallel_min, kernel }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn location(&self) -> Location {
        Location { offset: self.offset(), section: self.section, index: self.index }
    }

    pub(crate) fn syntax(&self, message: impl Into<String>) -> ParseError {
        ParseError::Syntax { location: self.location(), message: message.into() }
    }

    fn truncated(&self, message: impl Into<String>) -> ParseError {
        ParseError::Truncated { location: self.location(), message: message.into() }
    }

    /// Makes more text available. Returns false at end of input.
    fn refill(&mut self) -> Result<bool, ParseError> {
        if self.eof {
            return Ok(false);
        }
        let more = self.input.more(&mut self.pos, &mut self.end, &mut self.base)?;
        self.eof = !more;
        Ok(more)
    }

    /// The next byte that is not JSON whitespace, without consuming it; `None` at end of input.
    pub(crate) fn peek_nonspace(&mut self) -> Result<Option<u8>, ParseError> {
        loop {
            while self.pos < self.end {
                match self.input.text()[self.pos] {
                    b' ' | b'\n' | b'\r' | b'\t' => self.pos += 1,
                    b => return Ok(Some(b)),
                }
            }
            if !self.refill()? {
                return Ok(None);
            }
        }
    }

    pub(crate) fn expect(&mut self, wanted: u8, what: &str) -> Result<(), ParseError> {
        match self.peek_nonspace()? {
            Some(b) if b == wanted => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => Err(self.syntax(format!("expected {what}, found {}", describe(b)))),
            None => Err(self.truncated(format!("expected {what}"))),
        }
    }

    /// Consumes `,` (returns true) or the closing byte (returns false).
    pub(crate) fn comma_or(&mut self, close: u8) -> Result<bool, ParseError> {
        match self.peek_nonspace()? {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            Some(b) => Err(self.syntax(format!("expected ',' or '{}', found {}", close as char, describe(b)))),
            None => Err(self.truncated(format!("expected ',' or '{}'", close as char))),
        }
    }

    /// Reads a JSON array of unsigned integers into a vector (`u32`: larger values are an error).
    pub(crate) fn uint_values<T: Value>(&mut self) -> Result<Vec<T>, ParseError> {
        let mut values = Values::<T>::new();
        let count = self.uint_array(&mut values)?;
        Ok(values.finish(count))
    }

    /// Reads a JSON array of unsigned integers into `target`, value by value in array order, and returns how many
    /// there were. An error — the text's or the target's — names the value's byte offset and array index.
    ///
    /// The buffered text up to its last comma is scanned a word at a time, in two halves on two threads when there
    /// is enough of it: the second half's first array index is the first's plus the commas in the first half.
    /// The hot loop scans while at least `MARGIN` bytes are buffered, so a number never straddles a refill; the
    /// only state carried across refills is whether a value or a separator comes next.
    pub(crate) fn uint_array<T: Target>(&mut self, target: &mut T) -> Result<u64, ParseError> {
        const MARGIN: usize = 128;
        const _: () = assert!(MARGIN > super::numbers::SLACK, "the fast scanner reads past the text it scans");
        // The exact path hands over to the fast one again after this many values.
        const EXACT_RUN: usize = 1024;
        self.expect(b'[', "'[' to start an array of numbers")?;
        if self.peek_nonspace()? == Some(b']') {
            self.pos += 1;
            return Ok(0);
        }
        let mut count: u64 = 0;
        let mut after_value = false;
        // Text and values taken by the word-at-a-time scanner, for the length of what is left of the array.
        let (mut fast_bytes, mut fast_values) = (0u64, 0u64);
        loop {
            if !self.eof && self.end - self.pos <= MARGIN {
                self.refill()?;
                continue;
            }
            // A piece stops at anything but numbers, commas and whitespace (the closing ']', an error, a value the
            // target refuses); everything from there on goes through the exact loop below, so values, indices and
            // error offsets are the same either way.
            if !self.eof && self.end - self.pos >= self.fast_min.saturating_add(MARGIN) {
                let mut limit = self.end - MARGIN;
                // The array's last window is split where the array ends, not where the window does: the halves
                // stop at its `]`, and the one past it had nothing to do (at 324 MiB, 4 ms of one thread each for
                // the nodes and the edges). Looked for only where the declared length says the array ends (and not
                // once the array is longer than declared).
                if let Some(expected) = target.expected_len().filter(|&expected| fast_values > 0 && expected > count) {
                    let bytes_left = (expected - count).saturating_mul(fast_bytes) / fast_values;
                    if bytes_left < (limit - self.pos) as u64 {
                        if let Some(close) = memchr::memchr(b']', &self.input.text()[self.pos..limit]) {
                            limit = self.pos + close;
                        }
                    }
                }
                if let Some(last) = memchr::memrchr(b',', &self.input.text()[self.pos..limit]).filter(|&c| c > 0) {
                    let (start, stop) = (self.pos, self.pos + last);
                    // A little past the middle: the first half's text is read once by the comma count below,
                    // so it scans faster than the second half's.
                    let middle = if last >= self.parallel_min {
                        memchr::memrchr(b',', &self.input.text()[start..start + last / 40 * 21])
                            .filter(|&c| c > 0)
                            .map(|c| start + c)
                    } else {
                        None
                    };
                    let buf = &self.input.text()[..self.end];
                    let kernel = self.kernel;
                    let second = middle.map(|m| count + count_commas(&buf[start..m]) + u64::from(!after_value));
                    let most = (stop - start) as u64 / 2 + 1;
                    let (mut first_piece, second_piece) = target.pieces(count, second, most);
                    let (a, (a_count, a_done), b) = match (middle, second_piece) {
                        (Some(middle), Some(mut second_piece)) => {
                            let (b, (a, a_done)) = crate::threads::join(
                                true,
                                move || {
                                    let scanned = scan_piece(buf, middle, stop, true, &mut second_piece, kernel);
                                    (scanned, second_piece.done())
                                },
                                || {
                                    let a = scan_piece(buf, start, middle, after_value, &mut first_piece, kernel);
                                    (a, first_piece.done())
                                },
                            );
                            (a, a_done, Some(b))
                        }
                        _ => {
                            let a = scan_piece(buf, start, stop, after_value, &mut first_piece, kernel);
                            (a, first_piece.done(), None)
                        }
                    };
                    target.commit(a_done);
                    count += a_count;
                    (fast_bytes, fast_values) = (fast_bytes + (a.0 - start) as u64, fast_values + a_count);
                    (self.pos, after_value) = a;
                    if let Some(((b_at, b_after), (b_count, b_done))) = b {
                        // The second half counts only if the first got through to it.
                        if a == (middle.unwrap_or(stop), true) && Some(count) == second {
                            target.commit(b_done);
                            count += b_count;
                            (fast_bytes, fast_values) = (fast_bytes + (b_at - self.pos) as u64, fast_values + b_count);
                            (self.pos, after_value) = (b_at, b_after);
                        }
                    }
                    if self.pos == stop {
                        continue;
                    }
                }
            }
            let end = self.end;
            let limit = if self.eof { end } else { end - MARGIN };
            let buf = &self.input.text()[..end];
            let mut i = self.pos;
            let mut failure: Option<String> = None;
            let mut closed = false;
            let mut taken = 0;
            while i < limit && taken < EXACT_RUN {
                while i < end && is_space(buf[i]) {
                    i += 1;
                }
                if i == end {
                    break;
                }
                if after_value {
                    match buf[i] {
                        b',' => {
                            i += 1;
                            after_value = false;
                            continue;
                        }
                        b']' => {
                            i += 1;
                            closed = true;
                            break;
                        }
                        other => {
                            failure = Some(format!("expected ',' or ']' after a number, found {}", describe(other)));
                            break;
                        }
                    }
                }
                let start = i;
                let mut value: u64 = 0;
                while i < end {
                    let d = buf[i].wrapping_sub(b'0');
                    if d >= 10 {
                        break;
                    }
                    value = value.wrapping_mul(10).wrapping_add(d as u64);
                    i += 1;
                }
                let digits = i - start;
                if digits == 0 {
                    failure = Some(format!(
                        "expected an unsigned integer, found {}",
                        match buf[i] {
                            b'-' => "a negative number".to_string(),
                            b']' => "']' after ','".to_string(),
                            other => describe(other),
                        }
                    ));
                    break;
                }
                if digits > 19 || (i < end && matches!(buf[i], b'.' | b'e' | b'E')) {
                    i = start;
                    failure = Some(if digits > 19 {
                        "number too large".to_string()
                    } else {
                        "expected an unsigned integer, found a fractional number".to_string()
                    });
                    break;
                }
                if i == end && !self.eof {
                    // Only reachable with a run of whitespace longer than the margin: re-read this number.
                    i = start;
                    break;
                }
                if let Err(message) = target.put_exact(count, value) {
                    i = start;
                    failure = Some(message);
                    break;
                }
                count += 1;
                taken += 1;
                after_value = true;
            }
            self.pos = i;
            if let Some(message) = failure {
                self.index = Some(count);
                return Err(self.syntax(message));
            }
            if closed {
                self.index = None;
                return Ok(count);
            }
            if self.eof && self.pos == self.end {
                self.index = Some(count);
                return Err(self.truncated("inside an array of numbers"));
            }
        }
    }

    /// Reads a JSON string, appending its decoded UTF-8 bytes to `out`. Lone surrogates become U+FFFD;
    /// invalid escapes are an error.
    pub(crate) fn string_into(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        self.expect(b'"', "a string")?;
        let start_len = out.len();
        let mut pending_high: Option<u16> = None;
        loop {
            if self.pos == self.end && !self.refill()? {
                return Err(self.truncated("inside a string"));
            }
            let chunk = &self.input.text()[self.pos..self.end];
            let Some(stop) = memchr::memchr2(b'"', b'\\', chunk) else {
                if let Some(high) = pending_high.take() {
                    push_char(out, char_or_replacement(high as u32));
                }
                out.extend_from_slice(chunk);
                self.pos = self.end;
                continue;
            };
            if stop > 0 {
                if let Some(high) = pending_high.take() {
                    push_char(out, char_or_replacement(high as u32));
                }
                out.extend_from_slice(&chunk[..stop]);
            }
            self.pos += stop;
            if self.input.text()[self.pos] == b'"' {
                self.pos += 1;
                if let Some(high) = pending_high.take() {
                    push_char(out, char_or_replacement(high as u32));
                }
                break;
            }
            // A backslash escape: make sure the whole escape is in the buffer.
            while self.end - self.pos < 6 {
                if !self.refill()? {
                    break;
                }
            }
            if self.end - self.pos < 2 {
                return Err(self.truncated("inside a string escape"));
            }
            let escape = self.input.text()[self.pos + 1];
            let simple = match escape {
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'/' => Some(b'/'),
                b'b' => Some(8),
                b'f' => Some(12),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'u' => None,
                other => return Err(self.syntax(format!("invalid escape '\\{}' in a string", other as char))),
            };
            if let Some(byte) = simple {
                if let Some(high) = pending_high.take() {
                    push_char(out, char_or_replacement(high as u32));
                }
                out.push(byte);
                self.pos += 2;
                continue;
            }
            if self.end - self.pos < 6 {
                return Err(self.truncated("inside a \\u escape"));
            }
            let mut unit: u32 = 0;
            for i in 0..4 {
                let digit = match self.input.text()[self.pos + 2 + i] {
                    d @ b'0'..=b'9' => d - b'0',
                    d @ b'a'..=b'f' => d - b'a' + 10,
                    d @ b'A'..=b'F' => d - b'A' + 10,
                    _ => return Err(self.syntax("invalid \\u escape: expected four hex digits")),
                };
                unit = unit * 16 + digit as u32;
            }
            self.pos += 6;
            match (pending_high.take(), unit) {
                (Some(high), 0xDC00..=0xDFFF) => {
                    let code = 0x10000 + ((high as u32 - 0xD800) << 10) + (unit - 0xDC00);
                    push_char(out, char_or_replacement(code));
                }
                (previous, 0xD800..=0xDBFF) => {
                    if let Some(high) = previous {
                        push_char(out, char_or_replacement(high as u32));
                    }
                    pending_high = Some(unit as u16);
                }
                (previous, _) => {
                    if let Some(high) = previous {
                        push_char(out, char_or_replacement(high as u32));
                    }
                    push_char(out, char_or_replacement(unit));
                }
            }
        }
        // Raw (unescaped) bytes must be UTF-8; repair rather than reject, since the names are only for display.
        if std::str::from_utf8(&out[start_len..]).is_err() {
            let repaired = String::from_utf8_lossy(&out[start_len..]).into_owned();
            out.truncate(start_len);
            out.extend_from_slice(repaired.as_bytes());
        }
        Ok(())
    }

    /// Skips any JSON value. When `capture` is given, the value's text is appended to it.
    pub(crate) fn skip_value(&mut self, mut capture: Option<&mut Vec<u8>>, limit: usize) -> Result<(), ParseError> {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut started = false;
        let first = self.peek_nonspace()?;
        if first.is_none() {
            return Err(self.truncated("expected a value"));
        }
        loop {
            if self.pos == self.end && !self.refill()? {
                if started && depth == 0 && !in_string {
                    return Ok(());
                }
                return Err(self.truncated("inside a value"));
            }
            let b = self.input.text()[self.pos];
            if !started {
                started = true;
                match b {
                    b'{' | b'[' => depth = 1,
                    b'"' => in_string = true,
                    b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {}
                    other => return Err(self.syntax(format!("expected a JSON value, found {}", describe(other)))),
                }
            } else if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                    if depth == 0 {
                        self.push_capture(&mut capture, b, limit)?;
                        self.pos += 1;
                        return Ok(());
                    }
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        if depth == 0 {
                            return Ok(());
                        }
                        depth -= 1;
                        if depth == 0 {
                            self.push_capture(&mut capture, b, limit)?;
                            self.pos += 1;
                            return Ok(());
                        }
                    }
                    b',' if depth == 0 => return Ok(()),
                    b' ' | b'\n' | b'\r' | b'\t' if depth == 0 => return Ok(()),
                    _ => {}
                }
            }
            self.push_capture(&mut capture, b, limit)?;
            self.pos += 1;
        }
    }

    fn push_capture(&self, capture: &mut Option<&mut Vec<u8>>, b: u8, limit: usize) -> Result<(), ParseError> {
        if let Some(out) = capture.as_deref_mut() {
            if out.len() >= limit {
                return Err(self.syntax(format!("value is larger than {limit} bytes")));
            }
            out.push(b);
        }
        Ok(())
    }

    /// True when only whitespace remains.
    pub(crate) fn at_end(&mut self) -> Result<bool, ParseError> {
        Ok(self.peek_nonspace()?.is_none())
    }

    pub(crate) fn advance(&mut self) {
        self.pos += 1;
    }

    /// The next byte, whitespace included, without consuming it.
    pub(crate) fn peek_raw(&mut self) -> Result<Option<u8>, ParseError> {
        if self.pos == self.end && !self.refill()? {
            return Ok(None);
        }
        Ok(Some(self.input.text()[self.pos]))
    }
}

#[inline(always)]
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

fn char_or_replacement(code: u32) -> char {
    char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut tmp = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
}

pub(crate) fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// The fast scanner checked against the exact one: used by the unit tests and by the `numbers` fuzz target.
pub(crate) mod agreement {
    use super::{InPlace, Kernel, Lexer, ReadInput, Values};
    use std::io::Read;

    pub(crate) fn xorshift(mut x: u64) -> u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }

    /// Hands out its input in pieces of varying size.
    struct Choppy {
        data: Vec<u8>,
        at: usize,
        seed: u64,
    }

    impl Read for Choppy {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.seed = xorshift(self.seed);
            let n = (1 + (self.seed % 700) as usize).min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    type Outcome = Result<(Vec<u64>, u64), (String, Option<u64>, Option<u64>)>;

    fn scan_with(text: &[u8], seed: u64, fast: bool, refuse_at: Option<u64>) -> Outcome {
        let (fast_min, parallel_min) =
            if fast { (1 + (seed % 100) as usize, (seed % 300) as usize) } else { (usize::MAX, usize::MAX) };
        // Now and then the pieces get little room ahead, so that they stop for the exact path to make more.
        let room = if fast && seed.is_multiple_of(3) { (seed >> 8) as usize % 40 } else { usize::MAX };
        let mut target = Values { values: Vec::new(), refuse_at, room };
        // The fast scanner reads a reader's text in a buffer of its own, or text in memory in place (odd seeds).
        let mut told = Vec::new();
        let mut consumed = |upto: usize| told.push(upto);
        // Each kernel this processor has, in turn.
        let kernels = Kernel::all();
        let kernel = kernels[(seed >> 32) as usize % kernels.len()];
        let (outcome, index) = if fast && seed % 2 == 1 {
            let window = 1 + (seed >> 20) as usize % 700;
            let mut lexer =
                Lexer::with_sizes(InPlace::with_window(text, window, &mut consumed), fast_min, parallel_min, kernel);
            (lexer.uint_array(&mut target), lexer.index)
        } else {
            let reader =
                ReadInput::with_buffer(Choppy { data: text.to_vec(), at: 0, seed }, 256 + (seed % 512) as usize);
            let mut lexer = Lexer::with_sizes(reader, fast_min, parallel_min, kernel);
            (lexer.uint_array(&mut target), lexer.index)
        };
        // What was said to be consumed is never needed again: it is before everything read after it.
        assert!(told.windows(2).all(|w| w[0] < w[1]), "consumed offsets go forward: {told:?}");
        match outcome {
            Ok(n) => Ok((target.finish(n), n)),
            Err(e) => Err((e.to_string(), e.offset(), index)),
        }
    }

    /// Panics when the fast scanner (three random buffer layouts) and the exact scanner disagree about `text`
    /// in any way: values, count, error message, byte offset or array index. With `refuse_at`, the target
    /// refuses the value at that index.
    pub fn check(text: &[u8], seed: u64, refuse_at: Option<u64>) {
        let exact = scan_with(text, seed, false, refuse_at);
        for trial in 0..3 {
            let fast = scan_with(text, xorshift(seed.wrapping_add(trial)), true, refuse_at);
            assert_eq!(fast, exact, "seed {seed}, trial {trial}: {}", String::from_utf8_lossy(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexer(text: &str) -> Lexer<ReadInput<&[u8]>> {
        Lexer::new(ReadInput::new(text.as_bytes()))
    }

    #[test]
    fn reads_number_arrays() {
        assert_eq!(lexer(" [1,22,\n333 , 0]").uint_values::<u64>().unwrap(), [1, 22, 333, 0]);
        assert!(lexer("[]").uint_values::<u64>().unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_numbers_with_position() {
        let err = lexer("[1,2,-3]").uint_values::<u64>().unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        assert_eq!(err.offset(), Some(5));
        let err = lexer("[1 2]").uint_values::<u64>().unwrap_err();
        assert!(err.to_string().contains("expected ','"), "{err}");
        let err = lexer("[1,2").uint_values::<u64>().unwrap_err();
        assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
        let err = lexer("[1,]").uint_values::<u64>().unwrap_err();
        assert!(err.to_string().contains("after ','"), "{err}");
    }

    use super::agreement::{check, xorshift};

    #[test]
    fn word_scanner_agrees_with_the_exact_scanner() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for case in 0..1500 {
            let mut text = String::from(" [");
            let count = 1 + xorshift(seed + case) % 3000;
            // Now and then a fault: in the text, in the target, or both (the one at the lower index wins).
            let fault = xorshift(seed ^ case);
            let fail_at = (fault % 3 == 2).then(|| (fault >> 12) % (count + 5));
            for i in 0..count {
                seed = xorshift(seed);
                let digits = 1 + (seed % 21) as usize;
                let mut number: String =
                    (0..digits).map(|k| char::from(b'0' + ((seed >> (k * 3)) % 10) as u8)).collect();
                if digits > 1 && !seed.is_multiple_of(3) {
                    number = number.trim_start_matches('0').to_string();
                    if number.is_empty() {
                        number.push('0');
                    }
                }
                if digits > 19 && !seed.is_multiple_of(5) {
                    number.truncate(1 + (seed % 19) as usize);
                }
                text.push_str(&number);
                if seed.is_multiple_of(50) {
                    text.push_str(&" ".repeat((seed % 150) as usize));
                }
                if seed.is_multiple_of(7) {
                    text.push('\n');
                }
                if i + 1 < count {
                    text.push(',');
                }
            }
            text.push(']');
            if fault.is_multiple_of(4) {
                let at = 2 + (fault >> 8) as usize % (text.len() - 2);
                let bad = [&b"-"[..], b".5", b"e3", b"x", b",", b"]", b" "][(fault >> 40) as usize % 7];
                text.replace_range(at..at, std::str::from_utf8(bad).unwrap());
            } else if fault % 4 == 1 {
                text.truncate(2 + (fault >> 8) as usize % (text.len() - 2));
            }
            check(text.as_bytes(), seed, fail_at);
        }
    }

    /// A fraction or exponent right after a number, wherever the number ends relative to the 64-byte blocks
    /// (the last byte of a block included: the fuzz target's first find).
    #[test]
    fn fractions_are_left_to_the_exact_scanner_at_every_block_position() {
        for pad in 0..160 {
            for tail in [".5", "e3", "E3", "0.5", ",1"] {
                // Enough text after it that the fast scanner is still reading when it gets there.
                let text =
                    format!("[{}1,{}96{tail},{}7]", " ".repeat(pad % 70), "22,".repeat(pad / 7), "5,".repeat(2000));
                check(text.as_bytes(), 0x9E37_79B9 + pad as u64, None);
            }
        }
    }

    #[test]
    fn decodes_escapes_and_surrogates() {
        let mut out = Vec::new();
        lexer(r#""a\"b\\c\u00e9\ud83d\ude00\n""#).string_into(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\"b\\cé😀\n");
        let mut out = Vec::new();
        lexer(r#""x\ud800y""#).string_into(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "x\u{FFFD}y");
        let err = lexer(r#""bad \q""#).string_into(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("invalid escape"), "{err}");
        let err = lexer(r#""\u12G4""#).string_into(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("hex"), "{err}");
    }

    #[test]
    fn skips_and_captures_values() {
        let mut l = lexer(r#"{"a":[1,{"b":"}]"}],"c":true} ,"#);
        let mut captured = Vec::new();
        l.skip_value(Some(&mut captured), 1 << 20).unwrap();
        assert_eq!(captured, br#"{"a":[1,{"b":"}]"}],"c":true}"#);
        assert_eq!(l.peek_nonspace().unwrap(), Some(b','));
        let mut l = lexer("123, 4");
        l.skip_value(None, 0).unwrap();
        assert_eq!(l.peek_nonspace().unwrap(), Some(b','));
    }
}
