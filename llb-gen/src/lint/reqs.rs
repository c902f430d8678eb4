//! Requirement lines (inline `pip` specs and requirements files) parsed with `pep508_rs`:
//! the package name, its `==` pins and the local version (`+cu121`) the rules look at.

use std::str::FromStr;

use pep508_rs::pep440_rs::Operator;
use pep508_rs::{Requirement, VerbatimUrl, VersionOrUrl};

/// One requirement as the rules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Req {
    /// The normalised package name (`scikit-learn`).
    pub name: String,
    /// The version of an `==`/`===` pin (normalised, with its local part), if pinned.
    pub pin: Option<String>,
    /// The local version label of the pin (`cu121`, `cpu`), if any.
    pub local: Option<String>,
    /// A URL or path requirement (`pkg @ https://…`): fixed by its URL.
    pub url: bool,
    /// 1-based line in the requirements file (0 for an inline spec).
    pub line: usize,
}

impl Req {
    /// Pinned to one version or one URL: what a lock gives.
    pub fn is_pinned(&self) -> bool {
        self.pin.is_some() || self.url
    }
}

/// Parse one PEP 508 specifier; None for what is not a named requirement (paths, options).
pub fn parse_spec(spec: &str, line: usize) -> Option<Req> {
    let r = Requirement::<VerbatimUrl>::from_str(spec.trim()).ok()?;
    let mut req = Req {
        name: r.name.to_string(),
        pin: None,
        local: None,
        url: false,
        line,
    };
    match &r.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(specs)) => {
            for s in specs.iter() {
                if matches!(s.operator(), Operator::Equal | Operator::ExactEqual) {
                    let v = s.version();
                    req.pin = Some(v.to_string());
                    let local: Vec<String> = v.local().iter().map(|l| l.to_string()).collect();
                    if !local.is_empty() {
                        req.local = Some(local.join("."));
                    }
                }
            }
        }
        Some(VersionOrUrl::Url(_)) => req.url = true,
        None => {}
    }
    Some(req)
}

/// What a requirements file holds.
#[derive(Clone, Debug, Default)]
pub struct ReqFile {
    pub reqs: Vec<Req>,
    /// Written by a locking tool (pip-compile, uv pip compile, `--hash` lines) or named as a
    /// lock: every entry is expected to be pinned.
    pub locked: bool,
}

/// Parse a requirements file: comments, `\` continuations and options (`-r`, `-c`,
/// `--index-url`, `--hash`, `-e`) are handled; each remaining line is a PEP 508 specifier.
pub fn parse_file(path: &str, text: &str) -> ReqFile {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let mut out = ReqFile {
        reqs: vec![],
        locked: name.contains("lock"),
    };
    let head: String = text.lines().take(10).collect::<Vec<_>>().join("\n");
    if head.contains("pip-compile") || head.contains("uv pip compile") || head.contains("uv export")
    {
        out.locked = true;
    }
    for (start, full) in crate::plan::includes::logical_lines(text) {
        if full.contains("--hash") {
            out.locked = true;
        }
        let t = full.trim();
        if t.is_empty() || t.starts_with('-') {
            continue;
        }
        // Per-requirement options (`pkg==1 --hash=sha256:…`) follow the specifier.
        let spec = t.split(" --").next().unwrap_or(t);
        if let Some(r) = parse_spec(spec, start) {
            out.reqs.push(r);
        }
    }
    out
}

/// A line without its comment: `#` at the start or after whitespace (pip's rule: a `#` inside a
/// URL fragment is not a comment).
/// A package that brings CUDA with it: NVIDIA's CUDA runtime wheels (`nvidia-cublas-cu12`, …).
pub fn is_cuda_wheel(r: &Req) -> bool {
    r.name.starts_with("nvidia-")
}

/// A CUDA build of a package (`torch==2.3.1+cu121`).
pub fn is_cuda_build(r: &Req) -> bool {
    r.local.as_deref().is_some_and(is_cuda_label)
}

/// `cu121`, `cu118`: a PyTorch CUDA flavour.
pub fn is_cuda_label(l: &str) -> bool {
    l.strip_prefix("cu")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let r = parse_spec("torch==2.3.1+cu121", 0).unwrap();
        assert_eq!(r.name, "torch");
        assert_eq!(r.pin.as_deref(), Some("2.3.1+cu121"));
        assert_eq!(r.local.as_deref(), Some("cu121"));
        assert!(is_cuda_build(&r));
        let r = parse_spec("Scikit_Learn >= 1.4 ; python_version > '3.8'", 3).unwrap();
        assert_eq!(r.name, "scikit-learn");
        assert!(!r.is_pinned());
        let r = parse_spec("pkg @ https://example.com/pkg-1.0.tar.gz", 0).unwrap();
        assert!(r.url && r.is_pinned());
        assert!(parse_spec("./libs/common", 0).is_none());
        assert!(is_cuda_wheel(
            &parse_spec("nvidia-cublas-cu12==12.1.3.1", 0).unwrap()
        ));
    }

    #[test]
    fn files() {
        let f = parse_file(
            "reqs/requirements.txt",
            "# top\n--index-url https://x/simple\nnumpy==1.26.4  # pinned\n\
             pandas>=2 \\\n  ; python_version > '3.8'\n-r other.txt\n\nflask\n",
        );
        assert!(!f.locked);
        let got: Vec<(&str, bool, usize)> = f
            .reqs
            .iter()
            .map(|r| (r.name.as_str(), r.is_pinned(), r.line))
            .collect();
        assert_eq!(
            got,
            [
                ("numpy", true, 3),
                ("pandas", false, 4),
                ("flask", false, 8)
            ]
        );
        let f = parse_file(
            "requirements.txt",
            "#\n# This file is autogenerated by pip-compile\nidna==3.7 \\\n    --hash=sha256:abc\n",
        );
        assert!(f.locked);
        assert_eq!(f.reqs[0].pin.as_deref(), Some("3.7"));
        assert!(parse_file("requirements.lock", "").locked);
    }
}
