//! Diagnostics: errors and warnings with a stack.toml location, a key path and a fix hint.

use std::fmt;

use crate::source::{SourceFile, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
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
            s.push_str(key);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        if let Some(h) = &self.hint {
            s.push_str(" (");
            s.push_str(h);
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
        out.push_str(&format!("{sev}: {}\n", self.message));
        let Some(span) = self.span else {
            out.push_str(&format!("  --> {}\n", file.name));
            if let Some(key) = &self.key {
                out.push_str(&format!("   = key: {key}\n"));
            }
            if let Some(h) = &self.hint {
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
            let text = file.line_text(line);
            out.push_str(&format!("{line:>width$} | {text}\n"));
            if first == last {
                let end = file.line_col(span.end.max(span.start + 1));
                let len = end.col.saturating_sub(start.col).max(1);
                out.push_str(&format!(
                    "{pad} | {}{}\n",
                    " ".repeat(start.col - 1),
                    "^".repeat(len)
                ));
            }
        }
        if shown_last < last {
            out.push_str(&format!("{pad} | ...\n"));
        }
        if let Some(key) = &self.key {
            out.push_str(&format!("{pad} = key: {key}\n"));
        }
        if let Some(h) = &self.hint {
            out.push_str(&format!("{pad} = help: {h}\n"));
        }
        out
    }
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
        for d in &self.items {
            out.push_str(&d.render(file));
            out.push('\n');
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
        let lines: Vec<String> = self
            .diagnostics
            .errors()
            .map(|d| d.one_line(&self.file))
            .collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for StackError {}

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&word.to_lowercase(), &c.to_lowercase());
        let limit = (c.len().max(word.len()) / 3).max(1);
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
