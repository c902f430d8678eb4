//! Source files and spans: byte ranges in `stack.toml` and their line/column positions.

use std::ops::Range;

/// A byte range in the stack file. Spans are carried from parsing to the LLB source map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start,
            end: end.max(start),
        }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<Range<usize>> for Span {
    fn from(r: Range<usize>) -> Span {
        Span::new(r.start, r.end)
    }
}

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: usize,
    pub col: usize,
}

/// The stack file as read: its name (as the user knows it), its text and a line index.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// A stack file read as bytes: invalid UTF-8 is an error naming the line and column of the
    /// first bad byte (columns count the characters before it, plus one) and its offset.
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<SourceFile, String> {
        let name = name.into();
        match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile::new(name, text)),
            Err(e) => {
                let bad = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                // Everything before the first bad byte is valid UTF-8.
                let before = std::str::from_utf8(&bytes[..bad]).unwrap_or_default();
                let line = before.matches('\n').count() + 1;
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let col = before[line_start..].chars().count() + 1;
                Err(format!(
                    "{name}:{line}:{col}: the file is not valid UTF-8 (byte 0x{:02x} at offset {bad}); save it as UTF-8",
                    bytes[bad]
                ))
            }
        }
    }

    /// Line and column of a byte offset (clamped to the text).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        LineCol {
            line: line + 1,
            col,
        }
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        if line == 0 || line > self.line_starts.len() {
            return "";
        }
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// Start and end line (1-based, inclusive) of a span.
    pub fn line_range(&self, span: Span) -> (usize, usize) {
        let start = self.line_col(span.start).line;
        let end_off = if span.end > span.start {
            span.end - 1
        } else {
            span.end
        };
        let end = self.line_col(end_off).line.max(start);
        (start, end)
    }

    /// The span of a 1-based line's text (without its newline).
    pub fn line_span(&self, line: usize) -> Span {
        let line = line.clamp(1, self.line_starts.len());
        let start = self.line_starts[line - 1];
        Span::new(start, start + self.line_text(line).len())
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let f = SourceFile::new("s.toml", "a = 1\nbé = 2\n\nc = 3");
        assert_eq!(f.line_col(0), LineCol { line: 1, col: 1 });
        assert_eq!(f.line_col(6), LineCol { line: 2, col: 1 });
        // 'é' is two bytes: the '=' after "bé " is column 4.
        assert_eq!(f.line_col(10), LineCol { line: 2, col: 4 });
        assert_eq!(f.line_text(2), "bé = 2");
        assert_eq!(f.line_text(3), "");
        assert_eq!(f.line_col(100).line, 4);
        assert_eq!(f.line_range(Span::new(0, 6)), (1, 1));
        assert_eq!(f.line_range(Span::new(0, 7)), (1, 2));
    }

    #[test]
    fn invalid_utf8_is_located() {
        let e = SourceFile::from_bytes("s.toml", b"a = 1\nb = \"\xc3\xa9\xff\"\n".to_vec())
            .unwrap_err();
        assert_eq!(
            e,
            "s.toml:2:7: the file is not valid UTF-8 (byte 0xff at offset 13); save it as UTF-8"
        );
        assert_eq!(
            SourceFile::from_bytes("s.toml", b"ok".to_vec())
                .unwrap()
                .text,
            "ok"
        );
    }
}
