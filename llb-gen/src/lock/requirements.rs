//! Hash-pinned requirements files (`pip-compile --generate-hashes`, `uv export`): every
//! requirement `name==version` with one or more `--hash=sha256:…`, continuation lines,
//! comments, index options, and `-r`/`-c` lines reported for the caller to read and stage.

use std::str::FromStr;

use pep508_rs::pep440_rs::Operator;
use pep508_rs::{Requirement, VersionOrUrl};

use super::uv::valid_sha256;
use super::{Include, Lock, LockFormat, Package, PackageSource};
use crate::diag::Diagnostic;
use crate::source::{SourceFile, Span};

/// Read a requirements file. Every requirement must be pinned (`==`) and carry a sha256 hash.
pub fn read(file: &SourceFile) -> Result<Lock, Vec<Diagnostic>> {
    let mut lock = Lock::new(LockFormat::Requirements, &file.name);
    let mut diags = Vec::new();
    for (span, line) in logical_lines(&file.text) {
        let err = |m: String| Diagnostic::error(m).at(span);
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if first.starts_with('-') {
            let (opt, inline) = match first.split_once('=') {
                Some((o, v)) => (o, Some(v.to_string())),
                None => (first, None),
            };
            let arg = inline.or_else(|| words.next().map(str::to_string));
            match opt {
                "-r" | "--requirement" | "-c" | "--constraint" => match arg {
                    Some(path) => lock.includes.push(Include {
                        constraint: opt == "-c" || opt == "--constraint",
                        path,
                        span,
                    }),
                    None => diags.push(err(format!("`{opt}` needs a file name"))),
                },
                "-i" | "--index-url" | "--extra-index-url" => match arg {
                    Some(url) => lock.index_urls.push(url),
                    None => diags.push(err(format!("`{opt}` needs a URL"))),
                },
                "--require-hashes" | "--only-binary" | "--no-binary" | "--prefer-binary"
                | "--pre" | "--find-links" | "-f" | "--trusted-host" => {}
                "-e" | "--editable" => diags.push(err(format!(
                    "editable requirement `{}` cannot be installed from a lock (install the \
                     project in a later step)",
                    arg.unwrap_or_default()
                ))),
                other => diags.push(err(format!("unknown option `{other}`"))),
            }
            continue;
        }
        match requirement(&line, span) {
            Ok(p) => lock.packages.push(p),
            Err(d) => diags.push(d),
        }
    }
    if diags.is_empty() {
        Ok(lock)
    } else {
        Err(diags)
    }
}

/// One requirement line: `name[extras]==version ; marker --hash=sha256:… --hash=…`.
fn requirement(line: &str, span: Span) -> Result<Package, Diagnostic> {
    let err = |m: String| Diagnostic::error(m).at(span);
    let mut spec = Vec::new();
    let mut hashes = Vec::new();
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if let Some(rest) = w.strip_prefix("--hash") {
            let value = match rest.strip_prefix('=') {
                Some(v) => v.to_string(),
                None if rest.is_empty() => words.next().unwrap_or_default().to_string(),
                None => return Err(err(format!("unknown option `{w}`"))),
            };
            let Some((algo, hex)) = value.split_once(':') else {
                return Err(err(format!("`--hash={value}` is not `ALGORITHM:HEX`")));
            };
            if algo != "sha256" {
                // pip accepts several; only sha256 is checked by the HTTP source.
                continue;
            }
            if !valid_sha256(hex) {
                return Err(err(format!("`{hex}` is not a sha256 (64 hex digits)")));
            }
            hashes.push(hex.to_ascii_lowercase());
        } else if w.starts_with("--") {
            return Err(err(format!("unknown option `{w}` on a requirement line")));
        } else {
            spec.push(w);
        }
    }
    let spec = spec.join(" ");
    let req = Requirement::<pep508_rs::VerbatimUrl>::from_str(&spec)
        .map_err(|e| err(format!("invalid requirement `{spec}`: {e}")))?;
    let name = req.name.to_string();
    let version = match &req.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(specs)) => {
            let mut it = specs.iter();
            match (it.next(), it.next()) {
                (Some(s), None)
                    if matches!(s.operator(), Operator::Equal | Operator::ExactEqual) =>
                {
                    s.version().to_string()
                }
                _ => {
                    return Err(err(format!(
                        "`{spec}` is not pinned: a hashed requirement needs exactly `{name}==VERSION`"
                    )));
                }
            }
        }
        Some(VersionOrUrl::Url(_)) => {
            return Err(err(format!(
                "`{spec}`: URL requirements are not supported in requirements locks"
            )));
        }
        None => {
            return Err(err(format!(
                "`{spec}` is not pinned: a hashed requirement needs exactly `{name}==VERSION`"
            )));
        }
    };
    if hashes.is_empty() {
        return Err(err(format!(
            "`{name}=={version}` has no `--hash=sha256:…` (generate with `pip-compile \
             --generate-hashes` or `uv export`)"
        )));
    }
    Ok(Package {
        name,
        version: Some(version),
        source: PackageSource::Registry(None),
        marker: req.marker.try_to_string(),
        sdist: None,
        wheels: Vec::new(),
        deps: Vec::new(),
        optional: Default::default(),
        groups: Default::default(),
        hashes,
        span,
        key: req.name.to_string(),
    })
}

/// Logical lines: comments removed, `\`-continued lines joined; each with the span of its
/// first physical line through its last.
fn logical_lines(text: &str) -> Vec<(Span, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = None;
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let line_start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let line = strip_comment(line);
        let s = *start.get_or_insert(line_start);
        let (body, cont) = match line.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        cur.push_str(body);
        cur.push(' ');
        if !cont {
            let t = cur.trim().to_string();
            if !t.is_empty() {
                out.push((Span::new(s, line_start + line.len()), t));
            }
            cur.clear();
            start = None;
        }
    }
    let t = cur.trim().to_string();
    if let (false, Some(s)) = (t.is_empty(), start) {
        out.push((Span::new(s, text.len()), t));
    }
    out
}

/// pip's rule: `#` starts a comment at the start of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn read_text(text: &str) -> Result<Lock, Vec<Diagnostic>> {
        read(&SourceFile::new("requirements.txt", text))
    }

    #[test]
    fn continuation_lines_and_comments() {
        let text = format!(
            "# generated\n-r base.txt\n-c constraints.txt\n--index-url https://pypi.org/simple\n\
             Requests[socks]==2.32.3 ; python_version >= '3.8' \\\n    --hash=sha256:{H1} \\\n    \
             --hash=sha256:{H2}  # via app\nsix==1.16.0 --hash sha256:{H1}\n"
        );
        let lock = read_text(&text).unwrap();
        assert_eq!(lock.includes.len(), 2);
        assert!(lock.includes[1].constraint);
        assert_eq!(lock.index_urls, vec!["https://pypi.org/simple"]);
        assert_eq!(lock.packages.len(), 2);
        let r = &lock.packages[0];
        assert_eq!(r.name, "requests");
        assert_eq!(r.version.as_deref(), Some("2.32.3"));
        assert_eq!(r.hashes, vec![H1.to_string(), H2.to_string()]);
        assert!(
            r.marker
                .as_deref()
                .unwrap()
                .contains("python_full_version >= '3.8'")
                || r.marker.as_deref().unwrap().contains("python_version")
        );
        assert_eq!(lock.packages[1].hashes, vec![H1.to_string()]);
    }

    #[test]
    fn unpinned_unhashed_and_editable_lines_are_errors_with_their_line() {
        let text = format!("six==1.16.0 --hash=sha256:{H1}\nflask>=2\nattrs==23.1.0\n-e .\n");
        let file = SourceFile::new("requirements.txt", text.as_str());
        let errs = read(&file).unwrap_err();
        let lines: Vec<String> = errs.iter().map(|d| d.one_line(&file)).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("requirements.txt:2:1: error:") && lines[0].contains("not pinned"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("requirements.txt:3:1:") && lines[1].contains("no `--hash"));
        assert!(lines[2].starts_with("requirements.txt:4:1:") && lines[2].contains("editable"));
    }

    #[test]
    fn bad_hash_is_an_error() {
        let errs = read_text("six==1.16.0 --hash=sha256:abc\n").unwrap_err();
        assert!(errs[0].message.contains("not a sha256"));
    }
}
