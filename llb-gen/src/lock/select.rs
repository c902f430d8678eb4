//! Selection: which packages of a lock a target installs (markers, extras, groups, workspace
//! member) and which one file each installs (the best wheel by tag priority, or the sdist,
//! flagged). The result is data the converter turns into checksummed HTTP sources.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::str::FromStr;

use pep508_rs::pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerEnvironment, MarkerTree};

use super::target::Target;
use super::wheel::{Tag, WheelName};
use super::{Dep, Dist, Lock, LockFormat, Package, PackageSource, normalize_name};
use crate::diag::Diagnostic;
use crate::source::Span;

/// What an image asks of a lock besides the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Choice {
    /// Extras of the project (uv: of the root members; pylock: of `extras`).
    pub extras: Vec<String>,
    /// Dependency groups; empty means the lock's `default-groups` (pylock) / none (uv).
    pub groups: Vec<String>,
    /// uv workspaces: install the dependencies of this member only (default: every member).
    pub member: Option<String>,
    /// Packages chosen by version rather than by the lock's markers and edges (`[torch]`: the
    /// build for the platform and backend, `torch 2.1.2+cu121`). Each replaces whatever the
    /// lock would select under that name; for uv.lock its dependencies are followed.
    pub pins: Vec<Want>,
}

/// A package an image wants in one exact version (from [`Choice::pins`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// The name (normalized when compared).
    pub name: String,
    /// Acceptable versions, most preferred first (`2.1.2`, then `2.1.2+cpu` for arm64 CPU).
    pub versions: Vec<String>,
    /// The index the build must come from, when the lock records one (`[torch.index]`).
    pub index: Option<String>,
    /// Who wants it, for messages (`[torch] backend cu121`).
    pub why: String,
}

/// What kind of file was selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A wheel, with the tags of its file name.
    Wheel { tags: Vec<String> },
    /// No wheel fits the target: the sdist must be built into a wheel on the target platform.
    Sdist,
}

/// One file to fetch (an `llb.HTTP` source with checksum) and install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedFile {
    /// Normalized package name.
    pub name: String,
    pub version: String,
    pub filename: String,
    pub url: String,
    pub sha256: String,
    pub size: Option<u64>,
    pub kind: FileKind,
    /// Pure-Python wheel: the same file for every platform.
    pub pure: bool,
}

/// A requirements-file pin: the name, version and allowed hashes, with no URL. An index lookup
/// (the resolve step inside the build) maps it to a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinned {
    pub name: String,
    pub version: String,
    pub hashes: Vec<String>,
}

/// The files a target installs from a lock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Sorted by name.
    pub files: Vec<LockedFile>,
    /// Requirements files only.
    pub pinned: Vec<Pinned>,
    /// Workspace members / the project itself (not installed from the lock).
    pub local: Vec<String>,
}

/// Select the files `target` installs from `lock`.
pub fn select(lock: &Lock, target: &Target, choice: &Choice) -> Result<Selection, Vec<Diagnostic>> {
    let env = target.marker_env();
    let mut diags = Vec::new();
    if let Some(rp) = &lock.requires_python {
        check_requires_python(rp, target, &mut diags);
    }
    let extras: Vec<String> = choice.extras.iter().map(|e| normalize_name(e)).collect();
    let groups: Vec<String> = choice.groups.iter().map(|g| normalize_name(g)).collect();
    let mut sel = Selection::default();
    let pinned = pinned_packages(lock, &choice.pins, &mut diags);
    let picked: Vec<&Package> = match lock.format {
        LockFormat::Uv => {
            // Edges to a pinned name are not followed: only the pinned package has that name.
            uv_closure(
                lock, &env, &extras, &groups, choice, &pinned, &mut sel, &mut diags,
            )
        }
        LockFormat::Pylock => {
            let mut p = pylock_packages(lock, &env, &extras, &groups, &mut diags);
            p.retain(|x| {
                !choice
                    .pins
                    .iter()
                    .any(|w| normalize_name(&w.name) == x.name)
            });
            p.extend(pinned.iter().map(|&i| &lock.packages[i]));
            p
        }
        LockFormat::Requirements => {
            // A pin an index lookup filled ([`super::index::fill`]) has files like a pylock
            // package; one without is reported by the caller.
            let mut picked = vec![];
            for p in &lock.packages {
                if marker_true(p.marker.as_deref(), &env, &[], p.span, &p.key, &mut diags) {
                    if super::index::needs_lookup(p) {
                        sel.pinned.push(Pinned {
                            name: p.name.clone(),
                            version: p.version.clone().unwrap_or_default(),
                            hashes: p.hashes.clone(),
                        });
                    } else {
                        picked.push(p);
                    }
                }
            }
            picked
        }
    };
    let supported: HashMap<Tag, usize> = target
        .supported_tags()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i))
        .collect();
    let mut by_name: HashMap<&str, &Package> = HashMap::new();
    for p in &picked {
        if let Some(other) = by_name.insert(p.name.as_str(), p) {
            diags.push(
                Diagnostic::error(format!(
                    "`{}` is selected twice for {target}: {} ({}) and {} ({}); their markers overlap",
                    p.name,
                    other.version.as_deref().unwrap_or("?"),
                    other.key,
                    p.version.as_deref().unwrap_or("?"),
                    p.key
                ))
                .at(p.span)
                .key(p.key.clone()),
            );
        }
    }
    for p in picked {
        match file_for(lock, p, target, &supported) {
            Ok(f) => sel.files.push(f),
            Err(d) => diags.push(d),
        }
    }
    sel.files
        .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    if diags.is_empty() {
        Ok(sel)
    } else {
        Err(diags)
    }
}

fn check_requires_python(rp: &str, target: &Target, diags: &mut Vec<Diagnostic>) {
    let (ma, mi, pa) = target.python;
    let Ok(spec) = VersionSpecifiers::from_str(rp) else {
        diags.push(
            Diagnostic::error(format!("invalid requires-python `{rp}`")).key("requires-python"),
        );
        return;
    };
    let v = Version::new([ma as u64, mi as u64, pa as u64]);
    if !spec.contains(&v) {
        diags.push(
            Diagnostic::error(format!(
                "the lock requires Python `{rp}`; the target has {ma}.{mi}.{pa}"
            ))
            .key("requires-python"),
        );
    }
}

/// Evaluate an optional marker. pylock's `'x' in extras` / `'g' in dependency_groups` are
/// decided against `sets` first (pep508_rs knows only `extra == …`).
fn marker_true(
    marker: Option<&str>,
    env: &MarkerEnvironment,
    extras: &[String],
    span: Span,
    key: &str,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let Some(text) = marker else { return true };
    match MarkerTree::from_str(text) {
        Ok(m) => {
            let ex: Vec<ExtraName> = extras
                .iter()
                .filter_map(|e| ExtraName::from_str(e).ok())
                .collect();
            m.evaluate(env, &ex)
        }
        Err(e) => {
            diags.push(
                Diagnostic::error(format!("invalid marker `{text}`: {}", e.message))
                    .at(span)
                    .key(format!("{key}.marker")),
            );
            false
        }
    }
}

/// PEP 751 set markers: replace `'name' in extras` / `'name' not in dependency_groups` with a
/// constant comparison pep508_rs can evaluate.
pub(crate) fn resolve_set_markers(text: &str, extras: &[String], groups: &[String]) -> String {
    let mut out = text.to_string();
    for (var, set) in [("extras", extras), ("dependency_groups", groups)] {
        let mut from = 0;
        while let Some(at) = find_word(&out, var, from) {
            from = at + var.len();
            let before = out[..at].trim_end();
            let (before, negate) = match before.strip_suffix("not in") {
                Some(b) => (b.trim_end(), true),
                None => match before.strip_suffix("in") {
                    Some(b) => (b.trim_end(), false),
                    None => continue,
                },
            };
            let Some(q) = before.chars().last().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            let body = &before[..before.len() - 1];
            let Some(open) = body.rfind(q) else { continue };
            let name = normalize_name(&body[open + 1..]);
            let hit = set.contains(&name) != negate;
            // A comparison of two literals is dropped by pep508_rs: compare a version instead.
            let constant = if hit {
                "python_full_version >= '0'"
            } else {
                "python_full_version < '0'"
            };
            out = format!("{}{}{}", &out[..open], constant, &out[at + var.len()..]);
            from = open + constant.len();
        }
    }
    out
}

/// The first whole-word occurrence of `w` in `s` at or after `from`.
fn find_word(s: &str, w: &str, mut from: usize) -> Option<usize> {
    let b = s.as_bytes();
    while let Some(i) = s[from..].find(w) {
        let i = from + i;
        let ok_before = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let end = i + w.len();
        let ok_after = end == b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'_');
        if ok_before && ok_after {
            return Some(i);
        }
        from = end;
    }
    None
}

fn pylock_packages<'l>(
    lock: &'l Lock,
    env: &MarkerEnvironment,
    extras: &[String],
    groups: &[String],
    diags: &mut Vec<Diagnostic>,
) -> Vec<&'l Package> {
    for e in extras {
        if !lock.extras.contains(e) {
            diags.push(
                Diagnostic::error(format!(
                    "the lock has no extra `{e}` (it has: {})",
                    list(&lock.extras)
                ))
                .key("extras"),
            );
        }
    }
    for g in groups {
        if !lock.dependency_groups.contains(g) {
            diags.push(
                Diagnostic::error(format!(
                    "the lock has no dependency group `{g}` (it has: {})",
                    list(&lock.dependency_groups)
                ))
                .key("dependency-groups"),
            );
        }
    }
    let groups = if groups.is_empty() {
        &lock.default_groups[..]
    } else {
        groups
    };
    if !lock.environments.is_empty() {
        let mut none = Vec::new();
        let any = lock.environments.iter().any(|e| {
            marker_true(
                Some(&resolve_set_markers(e, extras, groups)),
                env,
                &[],
                Span::default(),
                "environments",
                &mut none,
            )
        });
        if !any {
            diags.push(
                Diagnostic::error("the target matches none of the lock's `environments`")
                    .key("environments"),
            );
        }
    }
    lock.packages
        .iter()
        .filter(|p| {
            let m = p
                .marker
                .as_deref()
                .map(|m| resolve_set_markers(m, extras, groups));
            marker_true(m.as_deref(), env, &[], p.span, &p.key, diags)
        })
        .collect()
}

/// The lock's package for each pin: the first of its versions the lock has, from the pin's
/// index when both say one. A pin the lock cannot satisfy is an error naming what it has.
fn pinned_packages(lock: &Lock, pins: &[Want], diags: &mut Vec<Diagnostic>) -> Vec<usize> {
    let mut out = vec![];
    for w in pins {
        let name = normalize_name(&w.name);
        let same: Vec<usize> = (0..lock.packages.len())
            .filter(|&i| lock.packages[i].name == name)
            .collect();
        let hit = w.versions.iter().find_map(|v| {
            same.iter()
                .copied()
                .find(|&i| lock.packages[i].version.as_deref() == Some(v.as_str()))
        });
        let Some(i) = hit else {
            let have: Vec<String> = same
                .iter()
                .map(|&i| {
                    lock.packages[i]
                        .version
                        .clone()
                        .unwrap_or_else(|| "?".into())
                })
                .collect();
            let mut d = Diagnostic::error(format!(
                "{} wants `{name}` {}, which the lock does not have (it has: {})",
                w.why,
                w.versions.join(" or "),
                list(&have)
            ))
            .key("packages");
            d = d.hint(match lock.format {
                LockFormat::Uv => format!(
                    "lock that build too: in pyproject.toml, an index for it in [[tool.uv.index]]{} and `{name}` in [tool.uv.sources] (with `conflicts` when several builds are locked), then `uv lock`",
                    w.index.as_deref().map(|u| format!(" (url = \"{u}\")")).unwrap_or_default()
                ),
                _ => format!(
                    "re-lock with that build of `{name}`{}",
                    w.index.as_deref().map(|u| format!(" from {u}")).unwrap_or_default()
                ),
            });
            diags.push(d);
            continue;
        };
        let p = &lock.packages[i];
        if let (Some(want), PackageSource::Registry(Some(have))) = (&w.index, &p.source)
            && index_key(want) != index_key(have)
        {
            diags.push(
                Diagnostic::error(format!(
                    "`{name}` {} in the lock comes from {have}, but {} takes it from {want}",
                    p.version.as_deref().unwrap_or("?"),
                    w.why
                ))
                .at(p.span)
                .key(p.key.clone())
                .hint("lock it from the same index, or set that index in [torch.index]"),
            );
            continue;
        }
        out.push(i);
    }
    out
}

/// An index URL compared without scheme case, trailing `/` or a `/simple` suffix.
fn index_key(url: &str) -> String {
    let u = url.trim().trim_end_matches('/').to_ascii_lowercase();
    u.strip_suffix("/simple").unwrap_or(&u).to_string()
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// uv.lock: the dependency closure of the root members, with their chosen extras and groups.
#[allow(clippy::too_many_arguments)]
fn uv_closure<'l>(
    lock: &'l Lock,
    env: &MarkerEnvironment,
    extras: &[String],
    groups: &[String],
    choice: &Choice,
    pinned: &[usize],
    sel: &mut Selection,
    diags: &mut Vec<Diagnostic>,
) -> Vec<&'l Package> {
    let locals: Vec<usize> = (0..lock.packages.len())
        .filter(|&i| matches!(lock.packages[i].source, PackageSource::Local(_)))
        .collect();
    let roots: Vec<usize> = match &choice.member {
        Some(m) => {
            let m = normalize_name(m);
            let r: Vec<usize> = locals
                .iter()
                .copied()
                .filter(|&i| lock.packages[i].name == m)
                .collect();
            if r.is_empty() {
                let names: Vec<String> = locals
                    .iter()
                    .map(|&i| lock.packages[i].name.clone())
                    .collect();
                diags.push(
                    Diagnostic::error(format!(
                        "`{m}` is not a workspace member of the lock (members: {})",
                        list(&names)
                    ))
                    .key("manifest.members"),
                );
            }
            r
        }
        None => locals.clone(),
    };
    if locals.is_empty() {
        diags.push(Diagnostic::error("the lock has no project or workspace member (no package with a `virtual` or `editable` source)").key("package"));
    }
    for e in extras {
        if !roots
            .iter()
            .any(|&i| lock.packages[i].optional.contains_key(e))
        {
            diags.push(
                Diagnostic::error(format!("no root of the lock has an extra `{e}`"))
                    .key("optional-dependencies"),
            );
        }
    }
    for g in groups {
        if !roots
            .iter()
            .any(|&i| lock.packages[i].groups.contains_key(g))
        {
            diags.push(
                Diagnostic::error(format!("no root of the lock has a dependency group `{g}`"))
                    .key("dev-dependencies"),
            );
        }
    }
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in lock.packages.iter().enumerate() {
        by_name.entry(p.name.as_str()).or_default().push(i);
    }
    let mut seen: BTreeSet<(usize, Option<String>)> = BTreeSet::new();
    let mut queue: VecDeque<(usize, Vec<String>)> = VecDeque::new();
    // Pinned packages: installed, and their dependencies followed; edges of other packages to
    // a pinned name lead to the pinned package instead (below).
    for &i in pinned {
        queue.push_back((i, vec![]));
    }
    let pinned_names: Vec<&str> = pinned
        .iter()
        .map(|&i| lock.packages[i].name.as_str())
        .collect();
    let edge_ok = |d: &Dep| !pinned_names.contains(&d.name.as_str());
    for &r in &roots {
        queue.push_back((r, extras.to_vec()));
        for g in groups {
            if let Some(edges) = lock.packages[r].groups.get(g) {
                for d in edges.iter().filter(|d| edge_ok(d)) {
                    push_edge(lock, &by_name, d, env, &[], &mut queue, diags, r);
                }
            }
        }
    }
    let mut picked = BTreeSet::new();
    while let Some((i, ex)) = queue.pop_front() {
        let p = &lock.packages[i];
        let fresh_base = seen.insert((i, None));
        if fresh_base {
            if matches!(p.source, PackageSource::Local(_)) {
                sel.local.push(p.name.clone());
            } else {
                picked.insert(i);
            }
            for d in p.deps.iter().filter(|d| edge_ok(d)) {
                push_edge(lock, &by_name, d, env, &ex, &mut queue, diags, i);
            }
        }
        for e in ex.iter() {
            if !seen.insert((i, Some(e.clone()))) {
                continue;
            }
            if let Some(edges) = p.optional.get(e) {
                for d in edges.iter().filter(|d| edge_ok(d)) {
                    push_edge(lock, &by_name, d, env, &ex, &mut queue, diags, i);
                }
            }
        }
    }
    sel.local.sort();
    sel.local.dedup();
    picked.into_iter().map(|i| &lock.packages[i]).collect()
}

#[allow(clippy::too_many_arguments)]
fn push_edge(
    lock: &Lock,
    by_name: &HashMap<&str, Vec<usize>>,
    d: &Dep,
    env: &MarkerEnvironment,
    active: &[String],
    queue: &mut VecDeque<(usize, Vec<String>)>,
    diags: &mut Vec<Diagnostic>,
    from: usize,
) {
    let from_pkg = &lock.packages[from];
    if !marker_true(
        d.marker.as_deref(),
        env,
        active,
        d.span,
        &from_pkg.key,
        diags,
    ) {
        return;
    }
    let cands = by_name
        .get(d.name.as_str())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let hit = cands
        .iter()
        .copied()
        .find(|&c| d.version.is_none() || lock.packages[c].version == d.version);
    match hit {
        Some(c) => queue.push_back((c, d.extras.clone())),
        None => diags.push(
            Diagnostic::error(format!(
                "`{}` depends on `{}`{}, which the lock does not contain",
                from_pkg.name,
                d.name,
                d.version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
            ))
            .at(d.span)
            .key(from_pkg.key.clone()),
        ),
    }
}

/// The one file `p` installs on `target`.
fn file_for(
    lock: &Lock,
    p: &Package,
    target: &Target,
    supported: &HashMap<Tag, usize>,
) -> Result<LockedFile, Diagnostic> {
    let version = p.version.clone().unwrap_or_default();
    if let PackageSource::Unsupported(what) = &p.source {
        return Err(Diagnostic::error(format!(
            "`{}` comes from {what}: only index files with a URL and sha256 can be installed from a lock",
            p.name
        ))
        .at(p.span)
        .key(p.key.clone()));
    }
    let mut best: Option<(usize, i64, &Dist, WheelName)> = None;
    for w in &p.wheels {
        let name = WheelName::parse(&w.filename)
            .map_err(|e| Diagnostic::error(e).at(w.span).key(w.key.clone()))?;
        let Some(rank) = name
            .tags()
            .iter()
            .filter_map(|t| supported.get(t).copied())
            .min()
        else {
            continue;
        };
        let build = name.build.as_ref().map(|b| b.0 as i64).unwrap_or(-1);
        if best
            .as_ref()
            .is_none_or(|(r, b, _, _)| (rank, -build) < (*r, -*b))
        {
            best = Some((rank, build, w, name));
        }
    }
    let (dist, kind, pure) = match (best, &p.sdist) {
        (Some((_, _, w, name)), _) => {
            let tags = name.tags().iter().map(Tag::to_string).collect();
            (w, FileKind::Wheel { tags }, name.is_pure())
        }
        (None, Some(s)) => (s, FileKind::Sdist, false),
        (None, None) => {
            let mut plats: Vec<String> = p
                .wheels
                .iter()
                .filter_map(|w| WheelName::parse(&w.filename).ok())
                .flat_map(|n| n.platforms)
                .collect();
            plats.sort();
            plats.dedup();
            let mut d = Diagnostic::error(format!(
                "no wheel or sdist of `{}` {version} fits {target} (the lock has wheels for: {})",
                p.name,
                list(&plats)
            ))
            .at(p.span)
            .key(p.key.clone());
            if lock.format == LockFormat::Uv {
                let req = if lock.required_markers.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (the lock's required-markers: {})",
                        lock.required_markers.join("; ")
                    )
                };
                d = d.hint(format!(
                    "add the target to `tool.uv.required-environments` in pyproject.toml, e.g. \
                     \"sys_platform == 'linux' and platform_machine == '{}'\", and run `uv lock`{req}",
                    target.arch
                ));
            }
            return Err(d);
        }
    };
    // The file name becomes a path in the build (`/run/layerstack/wheels/N/NAME`): one plain
    // name, and an sdist in an archive format pip builds from.
    let bad_name = dist.filename.is_empty()
        || dist.filename.starts_with('.')
        || dist
            .filename
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    let bad_sdist = kind == FileKind::Sdist && !is_sdist_name(&dist.filename);
    if bad_name || bad_sdist {
        return Err(Diagnostic::error(format!(
            "`{}`: `{}` is not {}",
            p.name,
            dist.filename.escape_debug(),
            if bad_name {
                "a plain file name"
            } else {
                "an sdist archive (.tar.gz, .zip, .tar.bz2, .tar.xz, .tgz or .tar)"
            }
        ))
        .at(dist.span)
        .key(dist.key.clone()));
    }
    let url = dist.url.clone().ok_or_else(|| {
        Diagnostic::error(format!(
            "`{}` has no URL for `{}` (local paths are not supported)",
            p.name, dist.filename
        ))
        .at(dist.span)
        .key(dist.key.clone())
    })?;
    let sha256 = dist.sha256.clone().ok_or_else(|| {
        Diagnostic::error(format!(
            "`{}` has no sha256 for `{}`: the build cannot verify it",
            p.name, dist.filename
        ))
        .at(dist.span)
        .key(dist.key.clone())
    })?;
    Ok(LockedFile {
        name: p.name.clone(),
        version,
        filename: dist.filename.clone(),
        url,
        sha256,
        size: dist.size,
        kind,
        pure,
    })
}

/// An sdist's archive formats, as pip builds them.
pub fn is_sdist_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar"]
        .iter()
        .any(|ext| n.len() > ext.len() && n.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdist_names_are_archives_pip_builds() {
        assert!(is_sdist_name("docopt-0.6.2.tar.gz"));
        assert!(is_sdist_name("lss_src-1.0.ZIP"));
        assert!(!is_sdist_name("docopt-0.6.2.exe"));
        assert!(!is_sdist_name(".tar.gz"));
    }

    fn eval(marker: &str, extras: &[&str], groups: &[&str]) -> bool {
        let e: Vec<String> = extras.iter().map(|s| s.to_string()).collect();
        let g: Vec<String> = groups.iter().map(|s| s.to_string()).collect();
        let text = resolve_set_markers(marker, &e, &g);
        let env = Target::parse("linux/arm64", "3.12", "")
            .unwrap()
            .marker_env();
        let mut diags = Vec::new();
        let r = marker_true(Some(&text), &env, &[], Span::default(), "k", &mut diags);
        assert!(diags.is_empty(), "{text}: {diags:?}");
        r
    }

    #[test]
    fn pep751_set_markers() {
        assert!(eval("'cpu' in extras", &["cpu"], &[]));
        assert!(!eval("'cpu' in extras", &["gpu"], &[]));
        assert!(eval("'cpu' not in extras", &[], &[]));
        assert!(eval("\"Dev\" in dependency_groups", &[], &["dev"]));
        assert!(!eval(
            "'cpu' in extras and platform_machine == 'x86_64'",
            &["cpu"],
            &[]
        ));
        assert!(eval(
            "('cpu' in extras or 'dev' in dependency_groups) and platform_machine == 'aarch64'",
            &[],
            &["dev"]
        ));
        // A variable merely containing the word is left alone.
        assert_eq!(
            resolve_set_markers("my_extras == 'x'", &[], &[]),
            "my_extras == 'x'"
        );
        // A bare `extras` that is not a membership test is skipped, later ones still resolved.
        assert_eq!(
            resolve_set_markers("extras == 'x' or 'a' in extras", &["a".into()], &[]),
            "extras == 'x' or python_full_version >= '0'"
        );
    }
}
