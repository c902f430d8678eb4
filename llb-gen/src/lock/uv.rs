//! `uv.lock` reader: packages with their sources, sdist and wheels (url, hash, size), dependency
//! edges with markers, extras and dependency groups, workspace members and the lock's markers.

use toml::de::DeTable;

use super::tomlv::{self, Reader, Value, get, keys, span_of};
use super::{Dep, Dist, Lock, LockFormat, Package, PackageSource, normalize_name, url_file_name};
use crate::diag::Diagnostic;
use crate::source::{SourceFile, Span};

/// The `version` values this reader understands (uv writes 1; `revision` may grow).
const VERSIONS: &[u64] = &[1];

/// Read a `uv.lock`.
pub fn read(file: &SourceFile) -> Result<Lock, Vec<Diagnostic>> {
    let root = tomlv::parse(file)?;
    let mut r = Reader::default();
    let mut lock = Lock::new(LockFormat::Uv, &file.name);
    let root_span = span_of(&root);
    let root = root.get_ref();
    match get(root, "version") {
        Some(v) => {
            if let Some(n) = r.u64(v, "version")
                && !VERSIONS.contains(&n)
            {
                r.error(
                    span_of(v),
                    "version",
                    format!("uv.lock version {n} is not supported (this reader knows version 1)"),
                );
            }
        }
        None => r.error(
            Span::new(root_span.start, root_span.start),
            "version",
            "missing `version`: is this a uv.lock?",
        ),
    }
    if let Some(v) = get(root, "requires-python") {
        lock.requires_python = r.str(v, "requires-python");
    }
    if let Some(v) = get(root, "resolution-markers") {
        lock.environments = r.strings(v, "resolution-markers");
    }
    if let Some(v) = get(root, "supported-markers") {
        lock.supported_markers = r.strings(v, "supported-markers");
    }
    if let Some(v) = get(root, "required-markers") {
        lock.required_markers = r.strings(v, "required-markers");
    }
    if let Some(m) = get(root, "manifest")
        && let Some(t) = r.table(m, "manifest")
        && let Some(v) = get(t, "members")
    {
        lock.members = r
            .strings(v, "manifest.members")
            .iter()
            .map(|n| normalize_name(n))
            .collect();
    }
    if let Some(v) = get(root, "package") {
        for (i, span, t) in r.tables(v, "package") {
            if let Some(p) = package(&mut r, i, span, t) {
                lock.packages.push(p);
            }
        }
    }
    let mut extras: Vec<String> = lock
        .packages
        .iter()
        .filter(|p| matches!(p.source, PackageSource::Local(_)))
        .flat_map(|p| p.optional.keys().cloned())
        .collect();
    extras.sort();
    extras.dedup();
    lock.extras = extras;
    if r.diags.is_empty() {
        Ok(lock)
    } else {
        Err(r.diags)
    }
}

fn package(r: &mut Reader, i: usize, span: Span, t: &DeTable<'_>) -> Option<Package> {
    let key = format!("package[{i}]");
    let mut p = tomlv::named_package(r, t, span, &key)?;
    for (k, _) in keys(t) {
        let v = get(t, k).expect("key from the same table");
        let kk = format!("{key}.{k}");
        match k {
            "name" => {}
            "version" => p.version = r.str(v, &kk),
            "source" => p.source = source(r, v, &kk)?,
            "dependencies" => p.deps = deps(r, v, &kk),
            "optional-dependencies" | "dev-dependencies" => {
                let Some(groups) = r.table(v, &kk) else {
                    continue;
                };
                for (g, _) in keys(groups) {
                    let gv = get(groups, g).expect("key from the same table");
                    let list = deps(r, gv, &format!("{kk}.{g}"));
                    let map = if k == "optional-dependencies" {
                        &mut p.optional
                    } else {
                        &mut p.groups
                    };
                    map.insert(normalize_name(g), list);
                }
            }
            "sdist" => {
                if let Some(st) = r.table(v, &kk) {
                    p.sdist = dist(r, st, span_of(v), &kk);
                }
            }
            "wheels" => {
                for (j, wspan, w) in r.tables(v, &kk) {
                    if let Some(d) = dist(r, w, wspan, &format!("{kk}[{j}]")) {
                        p.wheels.push(d);
                    }
                }
            }
            // Read by uv to check the lock is fresh; the build does not need them.
            "metadata" | "resolution-markers" => {}
            // Unknown keys are ignored: uv adds fields over time and they do not change
            // which files are installed.
            _ => {}
        }
    }
    Some(p)
}

fn source(r: &mut Reader, v: &Value<'_>, key: &str) -> Option<PackageSource> {
    let t = r.table(v, key)?;
    let Some((kind, _)) = keys(t).next() else {
        r.error(span_of(v), key, "empty `source` table");
        return None;
    };
    let value = get(t, kind).and_then(|x| x.get_ref().as_str().map(str::to_string));
    Some(match kind {
        "registry" => PackageSource::Registry(value),
        "virtual" | "editable" => {
            PackageSource::Local(format!("{kind} {}", value.unwrap_or_default()))
        }
        "git" | "url" | "path" | "directory" => {
            PackageSource::Unsupported(format!("{kind} {}", value.unwrap_or_default()))
        }
        other => {
            r.error(
                span_of(v),
                key,
                format!("unknown source kind `{other}` (expected registry, git, url, path, directory, editable or virtual)"),
            );
            return None;
        }
    })
}

fn deps(r: &mut Reader, v: &Value<'_>, key: &str) -> Vec<Dep> {
    let mut out = Vec::new();
    for (i, span, t) in r.tables(v, key) {
        let k = format!("{key}[{i}]");
        let Some(name) = get(t, "name").and_then(|n| r.str(n, &format!("{k}.name"))) else {
            if get(t, "name").is_none() {
                r.error(span, &k, "dependency without `name`");
            }
            continue;
        };
        let version = get(t, "version").and_then(|x| r.str(x, &format!("{k}.version")));
        let marker = get(t, "marker").and_then(|x| r.str(x, &format!("{k}.marker")));
        let extras = get(t, "extra")
            .map(|x| r.strings(x, &format!("{k}.extra")))
            .unwrap_or_default()
            .iter()
            .map(|e| normalize_name(e))
            .collect();
        out.push(Dep {
            name: normalize_name(&name),
            version,
            extras,
            marker,
            span,
        });
    }
    out
}

/// An sdist or wheel entry: `{ url | path, hash = "sha256:…", size, upload-time }`.
fn dist(r: &mut Reader, t: &DeTable<'_>, span: Span, key: &str) -> Option<Dist> {
    let url = get(t, "url").and_then(|x| r.str(x, &format!("{key}.url")));
    let path = get(t, "path").and_then(|x| r.str(x, &format!("{key}.path")));
    let filename = get(t, "filename")
        .and_then(|x| r.str(x, &format!("{key}.filename")))
        .or_else(|| url.as_deref().or(path.as_deref()).map(url_file_name));
    let Some(filename) = filename else {
        r.error(span, key, "a file entry needs `url`, `path` or `filename`");
        return None;
    };
    let sha256 = match get(t, "hash") {
        Some(h) => {
            let text = r.str(h, &format!("{key}.hash"))?;
            Some(sha256_of(r, &text, span_of(h), &format!("{key}.hash"))?)
        }
        None => None,
    };
    let size = get(t, "size").and_then(|x| r.u64(x, &format!("{key}.size")));
    let upload_time = get(t, "upload-time").and_then(tomlv::time_text);
    Some(Dist {
        filename,
        url,
        sha256,
        size,
        upload_time,
        span,
        key: key.to_string(),
    })
}

/// `sha256:HEX` → HEX, checked; other algorithms are an error (the HTTP source verifies sha256).
pub(crate) fn sha256_of(r: &mut Reader, text: &str, span: Span, key: &str) -> Option<String> {
    let Some((algo, hex)) = text.split_once(':') else {
        r.error(span, key, format!("`{text}` is not `ALGORITHM:HEX`"));
        return None;
    };
    if algo != "sha256" {
        r.error(
            span,
            key,
            format!("hash algorithm `{algo}` is not supported (only sha256 is verified)"),
        );
        return None;
    }
    if !valid_sha256(hex) {
        r.error(
            span,
            key,
            format!("`{hex}` is not a sha256 (64 hex digits)"),
        );
        return None;
    }
    Some(hex.to_ascii_lowercase())
}

pub(crate) fn valid_sha256(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}
