//! PEP 751 `pylock.toml` reader: lock-version, environments, requires-python, extras,
//! dependency groups, and packages with their marker, index, wheels and sdist.
//!
//! `vcs`, `directory` and `archive` packages are read as [`PackageSource::Unsupported`] so that
//! selecting one reports it with its location.

use toml::de::DeTable;

use super::tomlv::{self, Reader, get, keys, span_of};
use super::uv::valid_sha256;
use super::{Dist, Lock, LockFormat, Package, PackageSource, normalize_name, url_file_name};
use crate::diag::Diagnostic;
use crate::source::{SourceFile, Span};

/// Read a `pylock.toml` / `pylock.NAME.toml`.
pub fn read(file: &SourceFile) -> Result<Lock, Vec<Diagnostic>> {
    let root = tomlv::parse(file)?;
    let mut r = Reader::default();
    let mut lock = Lock::new(LockFormat::Pylock, &file.name);
    let root_span = span_of(&root);
    let root = root.get_ref();
    match get(root, "lock-version") {
        Some(v) => {
            if let Some(s) = r.str(v, "lock-version") {
                // PEP 751: a reader must refuse a major version it does not know.
                let major = s.split('.').next().unwrap_or("");
                if major != "1" {
                    r.error(
                        span_of(v),
                        "lock-version",
                        format!("lock-version `{s}` is not supported (this reader knows 1.x)"),
                    );
                }
            }
        }
        None => r.error(
            Span::new(root_span.start, root_span.start),
            "lock-version",
            "missing `lock-version`: is this a PEP 751 pylock.toml?",
        ),
    }
    for (k, _) in keys(root) {
        let v = get(root, k).expect("key from the same table");
        match k {
            "requires-python" => lock.requires_python = r.str(v, k),
            "environments" => lock.environments = r.strings(v, k),
            "extras" => lock.extras = norm(r.strings(v, k)),
            "dependency-groups" => lock.dependency_groups = norm(r.strings(v, k)),
            "default-groups" => lock.default_groups = norm(r.strings(v, k)),
            "packages" => {
                for (i, span, t) in r.tables(v, k) {
                    if let Some(p) = package(&mut r, i, span, t) {
                        lock.packages.push(p);
                    }
                }
            }
            _ => {}
        }
    }
    for g in &lock.default_groups {
        if !lock.dependency_groups.contains(g) {
            let span = get(root, "default-groups").map(span_of).unwrap_or_default();
            r.error(
                span,
                "default-groups",
                format!("default group `{g}` is not listed in `dependency-groups`"),
            );
        }
    }
    if r.diags.is_empty() {
        Ok(lock)
    } else {
        Err(r.diags)
    }
}

fn norm(v: Vec<String>) -> Vec<String> {
    v.iter().map(|s| normalize_name(s)).collect()
}

fn package(r: &mut Reader, i: usize, span: Span, t: &DeTable<'_>) -> Option<Package> {
    let key = format!("packages[{i}]");
    let mut p = tomlv::named_package(r, t, span, &key)?;
    for (k, _) in keys(t) {
        let v = get(t, k).expect("key from the same table");
        let kk = format!("{key}.{k}");
        match k {
            "version" => p.version = r.str(v, &kk),
            "marker" => p.marker = r.str(v, &kk),
            "index" => p.source = PackageSource::Registry(r.str(v, &kk)),
            "vcs" | "directory" | "archive" => {
                let what = r
                    .table(v, &kk)
                    .and_then(|x| get(x, "url").or_else(|| get(x, "path")))
                    .and_then(|x| x.get_ref().as_str().map(str::to_string))
                    .unwrap_or_default();
                p.source = PackageSource::Unsupported(format!("{k} {what}"));
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
            _ => {}
        }
    }
    let has_files = p.sdist.is_some() || !p.wheels.is_empty();
    if has_files && matches!(p.source, PackageSource::Unsupported(_)) {
        r.error(
            span,
            &key,
            "a package has either `vcs`, `directory`, `archive` or `sdist`/`wheels`, not both",
        );
    }
    Some(p)
}

/// A `[[packages.wheels]]` or `[packages.sdist]` entry: `name`, `url` or `path`, `hashes`,
/// `size`, `upload-time`.
fn dist(r: &mut Reader, t: &DeTable<'_>, span: Span, key: &str) -> Option<Dist> {
    let url = get(t, "url").and_then(|x| r.str(x, &format!("{key}.url")));
    let path = get(t, "path").and_then(|x| r.str(x, &format!("{key}.path")));
    let filename = get(t, "name")
        .and_then(|x| r.str(x, &format!("{key}.name")))
        .or_else(|| url.as_deref().or(path.as_deref()).map(url_file_name));
    let Some(filename) = filename else {
        r.error(span, key, "a file entry needs `name`, `url` or `path`");
        return None;
    };
    let Some(hv) = get(t, "hashes") else {
        r.error(span, key, "missing `hashes` (PEP 751 requires them)");
        return None;
    };
    let hk = format!("{key}.hashes");
    let hashes = r.table(hv, &hk)?;
    let sha256 = match get(hashes, "sha256") {
        Some(h) => {
            let hex = r.str(h, &format!("{hk}.sha256"))?;
            if !valid_sha256(&hex) {
                r.error(
                    span_of(h),
                    &format!("{hk}.sha256"),
                    format!("`{hex}` is not a sha256 (64 hex digits)"),
                );
                return None;
            }
            Some(hex.to_ascii_lowercase())
        }
        None => {
            let algos: Vec<&str> = keys(hashes).map(|(k, _)| k).collect();
            r.error(
                span_of(hv),
                &hk,
                format!(
                    "no sha256 hash (found: {}); the build verifies files by sha256",
                    if algos.is_empty() {
                        "none".to_string()
                    } else {
                        algos.join(", ")
                    }
                ),
            );
            return None;
        }
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
