//! The documented limits of a stack file (size, strings, images, entries, key depth) and the
//! parser's checks that enforce them, each a diagnostic at the line and key concerned.

use super::model::Sp;
use super::parse::{Parser, Value};
use crate::diag::Diagnostic;
use crate::source::Span;

/// The largest stack file accepted (2 MiB): it travels in one gRPC message to the frontend.
pub const MAX_FILE_BYTES: usize = 2 << 20;
/// The longest string value or key (256 KiB).
pub const MAX_STRING_BYTES: usize = 256 << 10;
/// The most layers and services together.
pub const MAX_IMAGES: usize = 5_000;
/// The most entries in one table or list.
pub const MAX_ENTRIES: usize = 10_000;
/// The most parts of a dotted key (`a.b.c` has 3): the TOML parser's own limit.
pub const MAX_KEY_DEPTH: usize = 80;

/// The first key with more than [`MAX_KEY_DEPTH`] dotted parts (the TOML parser rejects it
/// without a position): its span and number of parts.
pub(super) fn deep_key(text: &str) -> Option<(Span, usize)> {
    use toml_parser::parser::{Event, EventKind};
    let source = toml_parser::Source::new(text);
    let tokens: Vec<_> = source.lex().collect();
    let mut parts = 0usize;
    let mut start = None;
    let mut end = 0;
    let mut found = None;
    let mut receiver = |ev: Event| match ev.kind() {
        EventKind::SimpleKey => {
            parts += 1;
            start.get_or_insert(ev.span().start());
            end = ev.span().end();
        }
        EventKind::KeySep | EventKind::Whitespace => {}
        _ => {
            if let Some(s) = start.take()
                && parts > MAX_KEY_DEPTH
                && found.is_none()
            {
                found = Some((Span::new(s, end), parts));
            }
            parts = 0;
        }
    };
    let mut errors: Vec<toml_parser::ParseError> = vec![];
    toml_parser::parser::parse_document(&tokens, &mut receiver, &mut errors);
    found
}

impl Parser {
    /// A string from the file, checked against the limits every string has: at most
    /// [`MAX_STRING_BYTES`] and no NUL (no field can carry one to a process or a file name).
    pub(super) fn text(&mut self, s: &str, span: Span, key: &str) -> Option<Sp<String>> {
        if s.len() > MAX_STRING_BYTES {
            self.diags.push(
                Diagnostic::error(format!(
                    "this string is {} bytes; the limit is {MAX_STRING_BYTES}",
                    s.len()
                ))
                .at(Span::new(span.start, span.start))
                .key(key.to_string())
                .hint("put long scripts or lists into a file in the build context"),
            );
            return None;
        }
        if let Some(i) = s.find('\0') {
            self.diags.push(
                Diagnostic::error(format!(
                    "NUL character (\\u0000) at character {} of the string",
                    s[..i].chars().count() + 1
                ))
                .at(span)
                .key(key.to_string())
                .hint("no command, variable or path can contain NUL; remove it"),
            );
            return None;
        }
        Some(Sp::new(s.to_string(), span))
    }

    /// A string that must not be empty (a value whose empty form means nothing, or breaks
    /// the command it ends up in).
    pub(super) fn nonempty(&mut self, v: &Value<'_>, key: &str, what: &str) -> Option<Sp<String>> {
        let s = self.string(v, key)?;
        if s.value.trim().is_empty() {
            self.diags.push(
                Diagnostic::error(format!("`{key}` is empty"))
                    .at(s.span)
                    .key(key.to_string())
                    .hint(format!("give {what}, or remove the key")),
            );
            return None;
        }
        Some(s)
    }

    pub(super) fn too_many(&mut self, n: usize, span: Span, key: &str) -> bool {
        if n > MAX_ENTRIES {
            self.diags.push(
                Diagnostic::error(format!("{n} entries; the limit is {MAX_ENTRIES}"))
                    .at(Span::new(span.start, span.start))
                    .key(key.to_string()),
            );
        }
        n > MAX_ENTRIES
    }

    pub(super) fn no_empty_items(&mut self, items: &[Sp<String>], key: &str, what: &str) {
        for (i, s) in items.iter().enumerate() {
            if s.value.trim().is_empty() {
                self.diags.push(
                    Diagnostic::error(format!("`{key}[{i}]` is empty"))
                        .at(s.span)
                        .key(format!("{key}[{i}]"))
                        .hint(format!("give {what}, or remove the entry")),
                );
            }
        }
    }
}
