//! Diagnostics: errors and warnings with a stack.toml location, a key path and a fix hint.

use std::fmt;

use crate::source::{SourceFile, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// The most characters of a message, key or hint shown in one diagnostic: an error about a
/// 10 MB value names the value's start, not all of it.
pub const MAX_TEXT_CHARS: usize = 300;
/// The most characters of a source line shown in an excerpt (a window around the span).
pub const MAX_EXCERPT_CHARS: usize = 160;
/// The most diagnostics rendered for one file; the rest are counted, not printed.
pub const MAX_RENDERED: usize = 100;
/// Words longer than this get no "did you mean" (no stack key or name is nearly this long).
const MAX_SUGGEST_CHARS: usize = 64;

/// `s` cut to at most `max` characters, with how much was left out.
pub fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(s),
        Some((cut, _)) => {
            std::borrow::Cow::Owned(format!("{}… ({} more bytes)", &s[..cut], s.len() - cut))
        }
    }
}

/// One finding about the stack. `key` is the dotted TOML path (`layers.ml.pip`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Option<Span>,
    pub key: Option<String>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            key: None,
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Diagnostic {
        self.key = Some(key.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// One line: `stack.toml:12:5: error: layers.ml.pip: message (hint)`.
    pub fn one_line(&self, file: &SourceFile) -> String {
        let mut s = String::new();
        s.push_str(&file.name);
        if let Some(span) = self.span {
            let lc = file.line_col(span.start);
            s.push_str(&format!(":{}:{}", lc.line, lc.col));
        }
        s.push_str(match self.severity {
            Severity::Error => ": error: ",
            Severity::Warning => ": warning: ",
        });
        if let Some(key) = &self.key {
            s.push_str(&truncate(key, MAX_TEXT_CHARS));
            s.push_str(": ");
        }
        s.push_str(&truncate(&self.message, MAX_TEXT_CHARS));
        if let Some(h) = &self.hint {
            s.push_str(" (");
            s.push_str(&truncate(h, MAX_TEXT_CHARS));
            s.push(')');
        }
        s
    }

    /// Several lines with an excerpt of the file and the span underlined.
    pub fn render(&self, file: &SourceFile) -> String {
        let mut out = String::new();
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let message = truncate(&self.message, MAX_TEXT_CHARS);
        let key = self.key.as_deref().map(|k| truncate(k, MAX_TEXT_CHARS));
        let hint = self.hint.as_deref().map(|h| truncate(h, MAX_TEXT_CHARS));
        out.push_str(&format!("{sev}: {message}\n"));
        let Some(span) = self.span else {
            out.push_str(&format!("  --> {}\n", file.name));
            if let Some(key) = &key {
                out.push_str(&format!("   = key: {key}\n"));
            }
            if let Some(h) = &hint {
                out.push_str(&format!("   = help: {h}\n"));
            }
            return out;
        };
        let start = file.line_col(span.start);
        let (first, last) = file.line_range(span);
        let width = last.to_string().len();
        let pad = " ".repeat(width);
        out.push_str(&format!(
            "{pad}--> {}:{}:{}\n",
            file.name, start.line, start.col
        ));
        out.push_str(&format!("{pad} |\n"));
        let shown_last = last.min(first + 4);
        for line in first..=shown_last {
            // A window of the line around the span's start: a 100 KB line is never repeated.
            let from_col = if line == first { start.col } else { 1 };
            let (text, skipped) = excerpt(file.line_text(line), from_col);
            out.push_str(&format!("{line:>width$} | {text}\n"));
            if first == last {
                let end = file.line_col(span.end.max(span.start + 1));
                let len = end.col.saturating_sub(start.col).max(1);
                let shown = text.chars().count();
                let at = (start.col - 1).saturating_sub(skipped).min(shown);
                let len = len.min(shown.saturating_sub(at)).max(1);
                out.push_str(&format!("{pad} | {}{}\n", " ".repeat(at), "^".repeat(len)));
            }
        }
        if shown_last < last {
            out.push_str(&format!("{pad} | ...\n"));
        }
        if let Some(key) = &key {
            out.push_str(&format!("{pad} = key: {key}\n"));
        }
        if let Some(h) = &hint {
            out.push_str(&format!("{pad} = help: {h}\n"));
        }
        out
    }
}

/// At most [`MAX_EXCERPT_CHARS`] characters of `line` around 1-based column `col`, marked with
/// `…` where cut, and how many characters were skipped before the window.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let total = line.chars().count();
    if total <= MAX_EXCERPT_CHARS {
        return (line.to_string(), 0);
    }
    // Start a little before the column, so the span is shown with some context.
    let skip = col
        .saturating_sub(1 + MAX_EXCERPT_CHARS / 4)
        .min(total - MAX_EXCERPT_CHARS);
    let mut text: String = line.chars().skip(skip).take(MAX_EXCERPT_CHARS).collect();
    if skip > 0 {
        // `…` takes the place of the first shown character, so the caret stays aligned.
        text = format!("…{}", text.chars().skip(1).collect::<String>());
    }
    if skip + MAX_EXCERPT_CHARS < total {
        text.push('…');
    }
    (text, skip)
}

/// All diagnostics of one stack file, errors first, in file order.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Sorted by severity then position, without exact duplicates.
    pub fn sorted(mut self) -> Diagnostics {
        self.items.sort_by(|a, b| {
            (a.severity, a.span.map(|s| s.start), &a.message).cmp(&(
                b.severity,
                b.span.map(|s| s.start),
                &b.message,
            ))
        });
        self.items.dedup();
        self
    }

    pub fn render(&self, file: &SourceFile) -> String {
        let mut out = String::new();
        for d in self.items.iter().take(MAX_RENDERED) {
            out.push_str(&d.render(file));
            out.push('\n');
        }
        if self.items.len() > MAX_RENDERED {
            out.push_str(&format!(
                "… and {} more (only the first {MAX_RENDERED} are shown)\n\n",
                self.items.len() - MAX_RENDERED
            ));
        }
        let errors = self.error_count();
        let warnings = self.items.len() - errors;
        if errors > 0 || warnings > 0 {
            out.push_str(&format!(
                "{}: {errors} error{}, {warnings} warning{}\n",
                file.name,
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" }
            ));
        }
        out
    }
}

/// A failure of the whole pipeline: the diagnostics and the file they are about.
#[derive(Clone, Debug)]
pub struct StackError {
    pub file: SourceFile,
    pub diagnostics: Diagnostics,
}

impl StackError {
    /// The first error, for protocols that carry one location.
    pub fn primary(&self) -> Option<&Diagnostic> {
        self.diagnostics.errors().next()
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines: Vec<String> = self
            .diagnostics
            .errors()
            .take(MAX_RENDERED)
            .map(|d| d.one_line(&self.file))
            .collect();
        let errors = self.diagnostics.error_count();
        if errors > MAX_RENDERED {
            lines.push(format!(
                "{}: … and {} more errors",
                self.file.name,
                errors - MAX_RENDERED
            ));
        }
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for StackError {}

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Edit distance is quadratic: a 60 KB unknown key is no typo of anything.
    let wlen = word.chars().count();
    if wlen > MAX_SUGGEST_CHARS {
        return None;
    }
    let word = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let clen = c.chars().count();
        if clen > MAX_SUGGEST_CHARS {
            continue;
        }
        let limit = (clen.max(wlen) / 3).max(1);
        // The distance is at least the difference in length: skip hopeless candidates cheaply.
        if clen.abs_diff(wlen) > limit {
            continue;
        }
        let d = edit_distance(&word, &c.to_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("pipp", ["pip", "apt", "run"]), Some("pip"));
        assert_eq!(
            did_you_mean("requirments", ["requirements", "run"]),
            Some("requirements")
        );
        assert_eq!(did_you_mean("zzz", ["pip", "apt"]), None);
        // Long words get no suggestion at all (and cost nothing).
        let long = "p".repeat(60_000);
        assert_eq!(did_you_mean(&long, ["pip", "apt"]), None);
    }

    #[test]
    fn long_lines_and_texts_are_cut() {
        let line = format!("x = \"{}\"", "a".repeat(100_000));
        let f = SourceFile::new("stack.toml", format!("[layers.a]\n{line}\n"));
        let d = Diagnostic::error(format!("bad value `{}`", "a".repeat(100_000)))
            .at(Span::new(11 + 50_000, 11 + 50_010))
            .key("layers.a.x");
        let r = d.render(&f);
        assert!(r.len() < 2_000, "{} bytes", r.len());
        assert!(r.contains("more bytes)"), "{r}");
        // The caret line points into the shown window.
        let lines: Vec<&str> = r.lines().collect();
        let shown = lines.iter().find(|l| l.starts_with("2 | ")).unwrap();
        let caret = lines.iter().find(|l| l.contains('^')).unwrap();
        assert!(shown.starts_with("2 | …"), "{shown}");
        assert_eq!(
            caret.find('^').unwrap(),
            "2 | ".len() + MAX_EXCERPT_CHARS / 4
        );
        assert!(d.one_line(&f).len() < 1_000);
        let mut many = Diagnostics::default();
        for i in 0..1000 {
            many.push(Diagnostic::error(format!("e{i}")).at(Span::new(0, 1)));
        }
        let r = many.render(&f);
        assert!(r.contains("… and 900 more"), "{r}");
        assert!(r.len() < 100 * 200);
    }

    #[test]
    fn render_points_at_the_span() {
        let f = SourceFile::new("stack.toml", "[layers.a]\npipp = []\n");
        let d = Diagnostic::error("unknown key `pipp`")
            .at(Span::new(11, 15))
            .key("layers.a.pipp")
            .hint("did you mean `pip`?");
        let r = d.render(&f);
        assert!(r.contains("--> stack.toml:2:1"), "{r}");
        assert!(r.contains("2 | pipp = []"), "{r}");
        assert!(r.contains("  | ^^^^\n"), "{r}");
        assert_eq!(
            d.one_line(&f),
            "stack.toml:2:1: error: layers.a.pipp: unknown key `pipp` (did you mean `pip`?)"
        );
    }
}
