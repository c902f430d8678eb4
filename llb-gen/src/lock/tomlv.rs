//! Spanned TOML access for the lock readers: typed getters that record a diagnostic with the
//! key path and location instead of failing.

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use crate::diag::Diagnostic;
use crate::source::{SourceFile, Span};

pub(crate) type Value<'a> = Spanned<DeValue<'a>>;

pub(crate) fn span_of<T>(v: &Spanned<T>) -> Span {
    v.span().into()
}

/// Parse TOML text; a syntax error becomes one diagnostic with its location.
pub(crate) fn parse(file: &SourceFile) -> Result<Spanned<DeTable<'_>>, Vec<Diagnostic>> {
    DeTable::parse(&file.text).map_err(|e| {
        let mut d = Diagnostic::error(format!("invalid TOML: {}", e.message().trim()));
        if let Some(span) = e.span() {
            d = d.at(span.into());
        }
        vec![d]
    })
}

/// Collects diagnostics while reading values.
#[derive(Default)]
pub(crate) struct Reader {
    pub diags: Vec<Diagnostic>,
}

impl Reader {
    pub fn error(&mut self, span: Span, key: &str, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(message).at(span).key(key.to_string()));
    }

    fn type_error(&mut self, v: &Value<'_>, key: &str, want: &str) {
        let got = v.get_ref().type_str();
        self.error(span_of(v), key, format!("expected {want}, found {got}"));
    }

    pub fn str(&mut self, v: &Value<'_>, key: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.type_error(v, key, "a string");
                None
            }
        }
    }

    pub fn u64(&mut self, v: &Value<'_>, key: &str) -> Option<u64> {
        match v.get_ref() {
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                let digits = digits
                    .trim_start_matches("0x")
                    .trim_start_matches("0o")
                    .trim_start_matches("0b");
                match u64::from_str_radix(digits, i.radix()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.error(span_of(v), key, "expected a non-negative integer");
                        None
                    }
                }
            }
            _ => {
                self.type_error(v, key, "an integer");
                None
            }
        }
    }

    pub fn table<'v, 'a>(&mut self, v: &'v Value<'a>, key: &str) -> Option<&'v DeTable<'a>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.type_error(v, key, "a table");
                None
            }
        }
    }

    pub fn array<'v, 'a>(&mut self, v: &'v Value<'a>, key: &str) -> Option<&'v DeArray<'a>> {
        match v.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.type_error(v, key, "an array");
                None
            }
        }
    }

    /// An array of strings (`["a", "b"]`).
    pub fn strings(&mut self, v: &Value<'_>, key: &str) -> Vec<String> {
        let Some(a) = self.array(v, key) else {
            return Vec::new();
        };
        a.iter()
            .enumerate()
            .filter_map(|(i, x)| self.str(x, &format!("{key}[{i}]")))
            .collect()
    }

    /// An array of tables, each with its index.
    pub fn tables<'v, 'a>(
        &mut self,
        v: &'v Value<'a>,
        key: &str,
    ) -> Vec<(usize, Span, &'v DeTable<'a>)> {
        let Some(a) = self.array(v, key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, x) in a.iter().enumerate() {
            if let Some(t) = self.table(x, &format!("{key}[{i}]")) {
                out.push((i, span_of(x), t));
            }
        }
        out
    }
}

/// Look up a key in a table.
pub(crate) fn get<'v, 'a>(t: &'v DeTable<'a>, key: &str) -> Option<&'v Value<'a>> {
    t.iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v)
}

/// The keys of a table with their spans.
pub(crate) fn keys<'v>(t: &'v DeTable<'_>) -> impl Iterator<Item = (&'v str, Span)> {
    t.iter().map(|(k, _)| (k.get_ref().as_ref(), span_of(k)))
}

/// A lock's package table with its `name` read (normalized) and every other field empty, or
/// an error at the table when it has no name: how uv.lock's `[[package]]` and pylock.toml's
/// `[[packages]]` both start.
pub fn named_package(
    r: &mut Reader,
    t: &DeTable<'_>,
    span: crate::source::Span,
    key: &str,
) -> Option<super::Package> {
    let name = match get(t, "name") {
        Some(v) => r.str(v, &format!("{key}.name"))?,
        None => {
            r.error(span, key, "package without `name`");
            return None;
        }
    };
    Some(super::Package {
        name: super::normalize_name(&name),
        version: None,
        source: super::PackageSource::Registry(None),
        marker: None,
        sdist: None,
        wheels: Vec::new(),
        deps: Vec::new(),
        optional: Default::default(),
        groups: Default::default(),
        hashes: Vec::new(),
        span,
        key: key.to_string(),
    })
}

/// A timestamp as both lock formats write it (`upload-time`): a TOML datetime or a string,
/// as text; anything else is ignored (the field is informational).
pub fn time_text(v: &Value<'_>) -> Option<String> {
    match v.get_ref() {
        toml::de::DeValue::String(s) => Some(s.to_string()),
        toml::de::DeValue::Datetime(d) => Some(d.to_string()),
        _ => None,
    }
}
