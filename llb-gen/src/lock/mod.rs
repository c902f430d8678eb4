//! Python lock files as data: `uv.lock`, PEP 751 `pylock.toml` and `--hash`-pinned requirements
//! read into one [`Lock`] model, then [`select`]ed for a target and [`group`]ed into layers.
//!
//! Everything here is pure: the caller reads the file into a [`SourceFile`] and gets back data or
//! diagnostics with the file, line and key of the problem.

pub mod group;
pub mod index;
pub mod pylock;
pub mod requirements;
pub mod resolved;
pub mod select;
pub mod show;
pub mod target;
mod tomlv;
pub mod uv;
pub mod wheel;

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::source::{SourceFile, Span};

/// Which format a lock file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockFormat {
    /// `uv.lock` (uv's own TOML lock).
    Uv,
    /// PEP 751 `pylock.toml` / `pylock.NAME.toml`.
    Pylock,
    /// A requirements file whose every requirement is pinned with `--hash`.
    Requirements,
}

impl LockFormat {
    /// The format a file name implies: `uv.lock`, `pylock.toml` / `pylock.X.toml`, else
    /// requirements.
    pub fn from_file_name(name: &str) -> LockFormat {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        if base == "uv.lock" || base.ends_with(".lock") {
            LockFormat::Uv
        } else if base.starts_with("pylock.") && base.ends_with(".toml") {
            LockFormat::Pylock
        } else {
            LockFormat::Requirements
        }
    }
}

/// One file a package can be installed from, as the lock records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dist {
    /// The file name (the last path segment of the URL unless the lock names it).
    pub filename: String,
    pub url: Option<String>,
    /// Lower-case hex sha256, when the lock has one.
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub upload_time: Option<String>,
    pub span: Span,
    /// Dotted key path of the entry (`package[3].wheels[1]`).
    pub key: String,
}

/// Where a package comes from, as far as installing it is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackageSource {
    /// An index (uv `registry`, pylock `index`, or unknown for requirements).
    Registry(Option<String>),
    /// A workspace member or the project itself (uv `virtual`/`editable`): not installed from
    /// the lock; its dependencies are.
    Local(String),
    /// A source layerstack cannot fetch as a checksummed file yet (git, directory, path,
    /// archive URL): reported when selected.
    Unsupported(String),
}

/// A dependency edge (uv.lock `dependencies`, `optional-dependencies`, `dev-dependencies`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dep {
    /// Normalized name.
    pub name: String,
    /// Pins the edge to one version when the lock has several of `name` (forked resolutions).
    pub version: Option<String>,
    pub extras: Vec<String>,
    /// PEP 508 marker text, when the edge is conditional.
    pub marker: Option<String>,
    pub span: Span,
}

/// One locked package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// Normalized (PEP 503) name.
    pub name: String,
    pub version: Option<String>,
    pub source: PackageSource,
    /// pylock: the marker that decides whether the package is installed at all.
    pub marker: Option<String>,
    pub sdist: Option<Dist>,
    pub wheels: Vec<Dist>,
    pub deps: Vec<Dep>,
    /// `optional-dependencies`: extra name → edges.
    pub optional: BTreeMap<String, Vec<Dep>>,
    /// `dev-dependencies` (dependency groups): group name → edges.
    pub groups: BTreeMap<String, Vec<Dep>>,
    /// requirements: the allowed sha256 hashes (no URL is known; an index lookup must map
    /// them to files).
    pub hashes: Vec<String>,
    pub span: Span,
    pub key: String,
}

/// A `-r`/`-c` line in a requirements file: another file the caller must read too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    pub constraint: bool,
    pub path: String,
    pub span: Span,
}

/// A lock file read into data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    pub format: LockFormat,
    pub file: String,
    pub requires_python: Option<String>,
    pub packages: Vec<Package>,
    /// uv.lock `[manifest] members`; pylock: empty.
    pub members: Vec<String>,
    /// pylock `extras` / uv: every extra any root declares.
    pub extras: Vec<String>,
    /// pylock `dependency-groups`.
    pub dependency_groups: Vec<String>,
    /// pylock `default-groups`.
    pub default_groups: Vec<String>,
    /// pylock `environments`, uv `resolution-markers`.
    pub environments: Vec<String>,
    /// uv `supported-markers` (`[manifest]` or top level).
    pub supported_markers: Vec<String>,
    /// uv `required-markers` (written from `tool.uv.required-environments`).
    pub required_markers: Vec<String>,
    /// requirements `-r`/`-c` lines.
    pub includes: Vec<Include>,
    /// requirements `--index-url`/`--extra-index-url`.
    pub index_urls: Vec<String>,
}

impl Lock {
    pub(crate) fn new(format: LockFormat, file: &str) -> Lock {
        Lock {
            format,
            file: file.to_string(),
            requires_python: None,
            packages: Vec::new(),
            members: Vec::new(),
            extras: Vec::new(),
            dependency_groups: Vec::new(),
            default_groups: Vec::new(),
            environments: Vec::new(),
            supported_markers: Vec::new(),
            required_markers: Vec::new(),
            includes: Vec::new(),
            index_urls: Vec::new(),
        }
    }
}

/// Read a lock file in the format its name implies. Errors carry spans into `file`.
pub fn read(file: &SourceFile) -> Result<Lock, Vec<Diagnostic>> {
    read_as(file, LockFormat::from_file_name(&file.name))
}

/// Read a lock file in a given format.
pub fn read_as(file: &SourceFile, format: LockFormat) -> Result<Lock, Vec<Diagnostic>> {
    match format {
        LockFormat::Uv => uv::read(file),
        LockFormat::Pylock => pylock::read(file),
        LockFormat::Requirements => requirements::read(file),
    }
}

/// PEP 503 normalized name: lower case, runs of `-_.` as one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The last path segment of a URL, without query or fragment, percent-decoded
/// (`torch-2.5.1%2Bcpu-…whl` → `torch-2.5.1+cpu-…whl`).
pub(crate) fn url_file_name(url: &str) -> String {
    let url = url.split(['#', '?']).next().unwrap_or(url);
    let seg = url.rsplit('/').next().unwrap_or(url).as_bytes();
    let mut out = Vec::with_capacity(seg.len());
    let mut i = 0;
    while i < seg.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if seg[i] == b'%'
            && i + 2 < seg.len()
            && let (Some(h), Some(l)) = (hex(seg[i + 1]), hex(seg[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(seg[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_per_pep503() {
        assert_eq!(normalize_name("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("nvidia_cublas_cu12"), "nvidia-cublas-cu12");
    }

    #[test]
    fn format_follows_the_file_name() {
        assert_eq!(LockFormat::from_file_name("a/uv.lock"), LockFormat::Uv);
        assert_eq!(
            LockFormat::from_file_name("pylock.api.toml"),
            LockFormat::Pylock
        );
        assert_eq!(
            LockFormat::from_file_name("requirements.txt"),
            LockFormat::Requirements
        );
    }

    #[test]
    fn url_file_names_drop_query_and_fragment() {
        assert_eq!(
            url_file_name("https://x/a/b-1.0-py3-none-any.whl#sha256=00"),
            "b-1.0-py3-none-any.whl"
        );
        assert_eq!(
            url_file_name("https://d/whl/cpu/torch-2.5.1%2Bcpu-cp312-cp312-linux_x86_64.whl"),
            "torch-2.5.1+cpu-cp312-cp312-linux_x86_64.whl"
        );
        assert_eq!(url_file_name("https://d/a%2"), "a%2");
    }
}
