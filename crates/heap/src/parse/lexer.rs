//! A streaming JSON scanner specialised for `.heapsnapshot` files: huge arrays of unsigned integers, a large
//! array of strings, and small objects. It never builds a document tree and holds only one buffer of input.

use crate::error::{Location, ParseError};
use std::io::Read;

const BUFFER_SIZE: usize = 1 << 20;

pub(crate) struct Lexer<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Absolute offset of `buf[0]` in the input.
    base: u64,
    eof: bool,
    pub(crate) section: Option<&'static str>,
    pub(crate) index: Option<u64>,
}

impl<R: Read> Lexer<R> {
    pub(crate) fn new(reader: R) -> Self {
        Lexer { reader, buf: vec![0; BUFFER_SIZE], pos: 0, end: 0, base: 0, eof: false, section: None, index: None }
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

    /// Discards consumed bytes and reads more. Returns false at end of input.
    fn refill(&mut self) -> Result<bool, ParseError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(ParseError::Io { offset: self.base + self.end as u64, source }),
            }
        }
    }

    /// The next byte that is not JSON whitespace, without consuming it; `None` at end of input.
    pub(crate) fn peek_nonspace(&mut self) -> Result<Option<u8>, ParseError> {
        loop {
            while self.pos < self.end {
                match self.buf[self.pos] {
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

    /// Reads a JSON array of unsigned integers, calling `sink` with each value in order.
    /// Returns the number of values.
    pub(crate) fn uint_array(&mut self, mut sink: impl FnMut(u64) -> Result<(), String>) -> Result<u64, ParseError> {
        self.uint_array_batched(|batch| {
            for (i, &v) in batch.iter().enumerate() {
                sink(v).map_err(|m| (i, m))?;
            }
            Ok(())
        })
    }

    /// Reads a JSON array of unsigned integers, handing them to `sink` in batches (in order). A sink error names
    /// the position in the batch; the error reports its array index.
    ///
    /// The hot loop scans while at least `MARGIN` bytes are buffered, so a number never straddles a refill; the
    /// only state carried across refills is whether a value or a separator comes next.
    pub(crate) fn uint_array_batched(
        &mut self,
        mut sink: impl FnMut(&[u64]) -> Result<(), (usize, String)>,
    ) -> Result<u64, ParseError> {
        const MARGIN: usize = 64;
        const FLUSH: usize = 1 << 16;
        self.expect(b'[', "'[' to start an array of numbers")?;
        if self.peek_nonspace()? == Some(b']') {
            self.pos += 1;
            return Ok(0);
        }
        let mut count: u64 = 0;
        let mut batch: Vec<u64> = Vec::with_capacity(FLUSH + 8192);
        let mut after_value = false;
        loop {
            if !self.eof && self.end - self.pos <= MARGIN {
                self.refill()?;
                continue;
            }
            let end = self.end;
            let limit = if self.eof { end } else { end - MARGIN };
            let buf = &self.buf[..end];
            let mut i = self.pos;
            let mut failure: Option<String> = None;
            let mut closed = false;
            while i < limit && batch.len() < FLUSH {
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
                batch.push(value);
                after_value = true;
            }
            self.pos = i;
            if let Some(message) = failure {
                self.index = Some(count + batch.len() as u64);
                return Err(self.syntax(message));
            }
            if closed || batch.len() >= FLUSH {
                if let Err((at, message)) = sink(&batch) {
                    self.index = Some(count + at as u64);
                    return Err(ParseError::Syntax {
                        location: Location { offset: self.offset(), section: self.section, index: self.index },
                        message: format!("{message} (byte offset approximate)"),
                    });
                }
                count += batch.len() as u64;
                batch.clear();
            }
            if closed {
                self.index = None;
                return Ok(count);
            }
            if self.eof && self.pos == self.end {
                self.index = Some(count + batch.len() as u64);
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
            let chunk = &self.buf[self.pos..self.end];
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
            if self.buf[self.pos] == b'"' {
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
            let escape = self.buf[self.pos + 1];
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
                let digit = match self.buf[self.pos + 2 + i] {
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
            let b = self.buf[self.pos];
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
        Ok(Some(self.buf[self.pos]))
    }
}

#[inline(always)]
fn is_space(b: u8) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lexer(text: &str) -> Lexer<&[u8]> {
        Lexer::new(text.as_bytes())
    }

    #[test]
    fn reads_number_arrays() {
        let mut values = Vec::new();
        let n = lexer(" [1,22,\n333 , 0]").uint_array(|v| {
            values.push(v);
            Ok(())
        });
        assert_eq!(n.unwrap(), 4);
        assert_eq!(values, vec![1, 22, 333, 0]);
        assert_eq!(lexer("[]").uint_array(|_| Ok(())).unwrap(), 0);
    }

    #[test]
    fn rejects_bad_numbers_with_position() {
        let err = lexer("[1,2,-3]").uint_array(|_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        assert_eq!(err.offset(), Some(5));
        let err = lexer("[1 2]").uint_array(|_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("expected ','"), "{err}");
        let err = lexer("[1,2").uint_array(|_| Ok(())).unwrap_err();
        assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
        let err = lexer("[1,]").uint_array(|_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("after ','"), "{err}");
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
