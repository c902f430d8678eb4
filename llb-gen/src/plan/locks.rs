//! `lock = …` on a layer or service: the lock file is read at the edge (its path from
//! [`lock_paths`], its text in [`super::BuildOptions::lock_files`]), then read, selected for
//! the plan's platform and the image's CPython, and grouped here, in the pure core
//! ([`crate::lock`]). The result is a [`LockStep`]: groups of wheels (and sdists where the
//! lock has no wheel for the target) with URL and sha256, which the converter turns into
//! checksummed HTTP sources, a wheel build per sdist on the target platform and one install
//! per group.
//!
//! A lock problem (a package with neither a wheel for the target nor an sdist, a missing URL or hash, an
//! unknown group) is an error at the stack's `lock` line that quotes the lock file's line.

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, did_you_mean};
use crate::lock::{self, group, select, target::Target};
use crate::source::SourceFile;
use crate::stack::{ImageDef, Stack};

use super::*;

/// The lock files every image of `stack` names (variant overlays included), as context
/// paths, for the edge to read. Paths are literal (`lock` paths are not interpolated).
pub fn lock_paths(stack: &Stack) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let overlays = stack.variants.iter().flat_map(|v| v.images.iter());
    for img in stack.images.iter().chain(overlays) {
        if let Some(l) = &img.lock {
            let p = clean(&l.file.value);
            if !p.is_empty() && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn clean(p: &str) -> String {
    p.trim_start_matches("./").to_string()
}

/// `3.12` from a `python:3.12…` image reference (Docker's official images), else None.
pub fn python_version_of_image(reference: &str) -> Option<String> {
    let (repo, tag) = reference.rsplit_once(':')?;
    if repo.contains('@') || tag.contains('/') {
        return None;
    }
    let name = repo.rsplit('/').next()?;
    if name != "python" {
        return None;
    }
    let mut parts = tag.split(|c: char| !c.is_ascii_digit());
    let (major, minor) = (parts.next()?, parts.next()?);
    if major != "3" || minor.is_empty() || !tag[major.len()..].starts_with('.') {
        return None;
    }
    Some(format!("{major}.{minor}"))
}

impl<'a> Planner<'a> {
    /// The layers of this plan that `base`'s `from` chain goes through, nearest first, and
    /// the base the chain ends on (a registry image, a Dockerfile, a context); None for the
    /// end when the chain names an image not planned or is longer than the plan.
    fn base_chain<'p>(&'p self, base: &'p Base) -> (Vec<&'p PlanImage>, Option<&'p Base>) {
        let mut layers = vec![];
        let mut b = base;
        for _ in 0..=self.images.len() {
            match b {
                Base::Layer { index, .. } => match self.images.get(*index) {
                    Some(img) => {
                        layers.push(img);
                        b = &img.base;
                    }
                    None => return (layers, None),
                },
                end => return (layers, Some(end)),
            }
        }
        (layers, None)
    }

    /// The root registry image an image is built on (following `from` layers).
    fn root_image(&self, base: &Base) -> Option<String> {
        match self.base_chain(base).1? {
            Base::Image { reference, .. } => Some(reference.clone()),
            _ => None,
        }
    }

    /// What the locks of the layers below `base` install (following `from` layers, nearest
    /// first): package name → (version, the layer's name, its interpreter).
    fn locked_below(&self, base: Option<&Base>) -> BTreeMap<String, (String, String, String)> {
        let mut out = BTreeMap::new();
        let layers = base.map(|b| self.base_chain(b).0).unwrap_or_default();
        for img in layers {
            for st in &img.steps {
                if let StepKind::Lock(l) = &st.kind {
                    for f in l.groups.iter().flat_map(|g| g.files.iter()) {
                        out.entry(f.name.clone()).or_insert_with(|| {
                            (f.version.clone(), img.name.clone(), l.python.clone())
                        });
                    }
                }
            }
        }
        out
    }

    /// The lock step of `img`, or None (errors reported) when the lock cannot be used.
    pub(super) fn lock_step(
        &mut self,
        img: &ImageDef,
        key: &str,
        base: Option<&Base>,
        pins: Vec<select::Want>,
    ) -> Option<LockStep> {
        let l = img.lock.as_ref()?;
        let lk = format!("{key}.lock");
        let err = |msg: String| Diagnostic::error(msg).at(l.file.span).key(lk.clone());
        if l.file.value.contains("${") {
            self.diags.push(
                err(format!(
                    "lock file `{}`: a lock path is read before planning and cannot use ${{…}}",
                    l.file.value
                ))
                .hint("write the path literally"),
            );
            return None;
        }
        if let Some(b) = base
            && self.root_image(b).is_none()
        {
            self.diags.push(
                err("`lock` needs a registry image at the bottom of the image's `from` chain: its Python installs the wheels on the build platform, and this chain starts at an image built from a Dockerfile".into())
                    .hint("build the locked layer on a registry image (`from = \"python:3.12-slim\"`) and copy or `from` it where needed"),
            );
            return None;
        }
        let auth_secret = match &l.auth_secret {
            None => None,
            Some(s) => {
                if !self.stack.secrets.iter().any(|d| d.name.value == s.value) {
                    let known: Vec<&str> = self
                        .stack
                        .secrets
                        .iter()
                        .map(|d| d.name.value.as_str())
                        .collect();
                    let hint = match did_you_mean(&s.value, known.iter().copied()) {
                        Some(sug) => format!("did you mean `{sug}`?"),
                        None if known.is_empty() => format!(
                            "declare it: [secrets.{}] (its value is the whole header, e.g. `Bearer TOKEN`), and pass it with --secret id={},env=VAR",
                            s.value, s.value
                        ),
                        None => format!("the stack's secrets are: {}", known.join(", ")),
                    };
                    self.diags.push(
                        Diagnostic::error(format!(
                            "lock `auth-secret = \"{}\"`: no [secrets.{}] in the stack",
                            s.value, s.value
                        ))
                        .at(s.span)
                        .key(format!("{lk}.auth-secret"))
                        .hint(hint),
                    );
                    return None;
                }
                Some(s.value.clone())
            }
        };
        let path = self.context_path_in(&l.file, &lk, false);
        let text = match self.lock_files.get(&path) {
            Some(Some(text)) => text,
            Some(None) => {
                self.diags.push(
                    err(format!(
                        "lock file `{path}` is not in the build context (or .dockerignore leaves it out)"
                    ))
                    .hint("commit the lock next to stack.toml (uv lock / pip lock) and name it relative to the context"),
                );
                return None;
            }
            // Not read by the edge (a subrequest that needs no packages): no groups.
            None => {
                return Some(LockStep {
                    file: path,
                    python: self.python.clone(),
                    python_version: l
                        .python_version
                        .as_ref()
                        .map(|v| v.value.clone())
                        .unwrap_or_default(),
                    groups: vec![],
                    auth_secret,
                    index_url: None,
                    extra_index_urls: vec![],
                });
            }
        };
        let python_version = match &l.python_version {
            Some(v) => self.text(v, &format!("{lk}.python-version")),
            None => match base
                .and_then(|b| self.root_image(b))
                .and_then(|r| python_version_of_image(&r))
            {
                Some(v) => v,
                None => {
                    self.diags.push(
                        err("the image's Python version is unknown: its base is not a `python:X.Y` image".into())
                            .hint("lock = { file = \"uv.lock\", python-version = \"3.12\" }"),
                    );
                    return None;
                }
            },
        };
        let target = match Target::parse(&self.platform.id(), &python_version, "") {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(err(format!("lock `{path}`: {e}")));
                return None;
            }
        };
        let file = SourceFile::new(path.clone(), text.clone());
        let quote = |d: &Diagnostic| -> Diagnostic {
            let at = match d.span {
                Some(s) => format!("{path}:{}", file.line_col(s.start).line),
                None => path.clone(),
            };
            let what = d
                .key
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default();
            let mut out = err(format!("{at}{what}: {}", d.message));
            if let Some(h) = &d.hint {
                out = out.hint(h.clone());
            }
            out
        };
        let mut parsed = match lock::read(&file) {
            Ok(p) => p,
            Err(ds) => {
                for d in &ds {
                    self.diags.push(quote(d));
                }
                return None;
            }
        };
        if let Some(m) = &l.member
            && !parsed.members.contains(&m.value)
        {
            let d = Diagnostic::error(if parsed.members.is_empty() {
                format!(
                    "`member = \"{}\"`: `{path}` is not a uv workspace lock (it has no members)",
                    m.value
                )
            } else {
                format!(
                    "`{}` is not a workspace member of `{path}` (members: {})",
                    m.value,
                    parsed.members.join(", ")
                )
            })
            .at(m.span)
            .key(format!("{lk}.member"));
            let d = match did_you_mean(&m.value, parsed.members.iter().map(String::as_str)) {
                Some(s) => d.hint(format!("did you mean `{s}`?")),
                None => d.hint("leave `member` out to install every member's dependencies"),
            };
            self.diags.push(d);
            return None;
        }
        // A lock is one file: an included file's pins would be left out (constraints only
        // narrow what is already pinned, so they are ignored).
        let mut included = false;
        for inc in parsed.includes.iter().filter(|i| !i.constraint) {
            self.diags.push(quote(
                &Diagnostic::error(format!(
                    "`-r {}`: a requirements lock is one file; the pins of the file it includes would not be installed",
                    inc.path
                ))
                .at(inc.span)
                .hint("write the whole lock into one file (`uv export`, `pip-compile --generate-hashes` do)"),
            ));
            included = true;
        }
        if included {
            return None;
        }
        // Hash-pinned requirements: the files their hashes name on the index pages the edge
        // fetched ([`index_pages`]).
        let missed = lock::index::fill(&mut parsed, self.index_pages);
        let choice = select::Choice {
            extras: l.extras.iter().map(|s| s.value.clone()).collect(),
            groups: l.groups.iter().map(|s| s.value.clone()).collect(),
            member: l.member.as_ref().map(|m| m.value.clone()),
            pins,
        };
        let sel = match select::select(&parsed, &target, &choice) {
            Ok(s) => s,
            Err(ds) => {
                for d in &ds {
                    self.diags.push(quote(d));
                }
                return None;
            }
        };
        if !sel.pinned.is_empty() {
            for pin in &sel.pinned {
                let Some((n, pkg)) = parsed
                    .packages
                    .iter()
                    .enumerate()
                    .find(|(_, p)| p.name == pin.name && lock::index::needs_lookup(p))
                else {
                    continue;
                };
                let what = format!("`{}=={}`", pin.name, pin.version);
                let (msg, hint) = match missed.get(&n) {
                    Some(lock::index::Missed::NoMatch { pages }) => (
                        format!(
                            "{what}: none of its {} hash(es) is a file on {}",
                            pin.hashes.len(),
                            pages.join(", ")
                        ),
                        "the files may have been removed from the index, or the file was generated for another index (--index-url in the file names it)",
                    ),
                    Some(lock::index::Missed::Unreadable { page, why }) => (
                        format!("{what}: the index page {page} could not be read: {why}"),
                        "name the index in the file (--index-url) and, for a private one, its credentials with `auth-secret`",
                    ),
                    _ => (
                        format!(
                            "{what} is pinned by hash only: its files are looked up on the index during a build, and this plan was made offline"
                        ),
                        "build with the frontend (docker buildx build), or lock with `uv lock` / `pip lock` (pylock.toml), which record each file's URL",
                    ),
                };
                self.diags
                    .push(quote(&Diagnostic::error(msg).at(pkg.span).hint(hint)));
            }
            return None;
        }
        // What a layer below installs from its lock is there already: the same version is
        // not installed again (so a service's lock may hold its base's packages, as a uv
        // workspace's lock does); another version cannot replace it (the base's files would
        // stay beside the new ones).
        let below = self.locked_below(base);
        let mut files = Vec::with_capacity(sel.files.len());
        let mut clash = false;
        for f in sel.files {
            match below.get(&f.name) {
                Some((v, _, py)) if *py == self.python && *v == f.version => {}
                Some((v, layer, py)) if *py == self.python => {
                    let at = parsed
                        .packages
                        .iter()
                        .find(|p| p.name == f.name && p.version.as_deref() == Some(&f.version))
                        .map(|p| p.span);
                    let mut d = Diagnostic::error(format!(
                        "`{}` {}: the layer `{layer}` below installs {v} from its lock, and an image cannot replace a package its base installed",
                        f.name, f.version
                    ))
                    .hint(format!(
                        "lock both images from one lock (a uv workspace's uv.lock), or pin {}=={v} in this one",
                        f.name
                    ));
                    if let Some(span) = at {
                        d = d.at(span);
                    }
                    self.diags.push(quote(&d));
                    clash = true;
                }
                _ => files.push(f),
            }
        }
        if clash {
            return None;
        }
        let groups = group::group(&files, &group::Rules::default());
        Some(LockStep {
            file: path,
            python: self.python.clone(),
            python_version,
            groups,
            auth_secret,
            // A requirements file's indexes: sdist builds fetch their build dependencies there.
            index_url: parsed.index_urls.first().cloned(),
            extra_index_urls: parsed.index_urls.iter().skip(1).cloned().collect(),
        })
    }
}

/// One simple-API project page the edge fetches for a hash-pinned requirements lock
/// ([`crate::lock::index`]), with the secret whose value is its `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPage {
    pub url: String,
    pub auth_secret: Option<String>,
}

/// The index pages the stack's requirements locks need, read from the lock files the edge
/// read ([`lock_paths`]): each page once, with the first `auth-secret` a lock naming it has.
pub fn index_pages(stack: &Stack, lock_files: &BTreeMap<String, Option<String>>) -> Vec<IndexPage> {
    let mut out: Vec<IndexPage> = vec![];
    let overlays = stack.variants.iter().flat_map(|v| v.images.iter());
    for img in stack.images.iter().chain(overlays) {
        let Some(l) = &img.lock else { continue };
        let path = clean(&l.file.value);
        let Some(Some(text)) = lock_files.get(&path) else {
            continue;
        };
        if lock::LockFormat::from_file_name(&path) != lock::LockFormat::Requirements {
            continue;
        }
        let Ok(parsed) = lock::read(&SourceFile::new(path.clone(), text.clone())) else {
            continue;
        };
        for url in lock::index::pages(&parsed) {
            if !out.iter().any(|p| p.url == url) {
                out.push(IndexPage {
                    url,
                    auth_secret: l.auth_secret.as_ref().map(|s| s.value.clone()),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_versions_of_official_images() {
        let v = |r: &str| python_version_of_image(r);
        assert_eq!(
            v("docker.io/library/python:3.12-slim").as_deref(),
            Some("3.12")
        );
        assert_eq!(v("python:3.13.1-bookworm").as_deref(), Some("3.13"));
        assert_eq!(v("docker.io/library/python:3.9").as_deref(), Some("3.9"));
        assert_eq!(v("docker.io/library/python:latest"), None);
        assert_eq!(v("docker.io/library/debian:bookworm-slim"), None);
        assert_eq!(v("localhost:5000/python"), None);
    }
}
