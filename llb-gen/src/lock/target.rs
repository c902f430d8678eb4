//! The environment a lock is selected for: OS/arch, C library, CPython version. Gives the PEP 508
//! marker environment and the supported wheel tags, most specific first, in the order
//! `packaging.tags.sys_tags()` (pip) and uv use.

use std::fmt;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

use super::wheel::Tag;

/// The C library of a Linux target, with its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libc {
    /// glibc 2.MINOR (manylinux).
    Glibc(u32),
    /// musl 1.MINOR (musllinux).
    Musl(u32),
}

/// glibc of Debian bookworm (the python:3.x-slim images); trixie has 2.41.
pub const DEFAULT_GLIBC_MINOR: u32 = 36;

/// A target environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `uname -m` spelling: `x86_64`, `aarch64`, `armv7l`, `i686`, `ppc64le`, `s390x`, `riscv64`.
    pub arch: String,
    /// The OCI platform it came from (`linux/amd64`), for messages.
    pub platform: String,
    pub libc: Libc,
    /// CPython (major, minor, patch).
    pub python: (u32, u32, u32),
    /// A free-threaded build (`3.13t`): ABI `cp313t`, no abi3.
    pub free_threaded: bool,
}

impl Target {
    /// `platform` as `linux/amd64` / `linux/arm64` / `linux/arm/v7`…; `python` as `3.12`,
    /// `3.12.7` or `3.13t`; `libc` as `glibc2.36`, `musl1.2` or empty for the default glibc.
    pub fn parse(platform: &str, python: &str, libc: &str) -> Result<Target, String> {
        let mut parts = platform.split('/');
        let os = parts.next().unwrap_or("");
        let arch = parts.next().unwrap_or("");
        let variant = parts.next().unwrap_or("");
        if os != "linux" {
            return Err(format!(
                "platform `{platform}`: only linux targets are supported"
            ));
        }
        let machine = match (arch, variant) {
            ("amd64", _) => "x86_64",
            ("arm64", _) => "aarch64",
            ("arm", "v7" | "") => "armv7l",
            ("386", _) => "i686",
            ("ppc64le", _) => "ppc64le",
            ("s390x", _) => "s390x",
            ("riscv64", _) => "riscv64",
            _ => return Err(format!("platform `{platform}` is not supported")),
        };
        let (py, free_threaded) = match python.strip_suffix('t') {
            Some(p) => (p, true),
            None => (python, false),
        };
        let nums: Vec<u32> = py
            .split('.')
            .map(|x| x.parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("python `{python}` is not `3.MINOR[.PATCH][t]`"))?;
        let python = match nums.as_slice() {
            [3, m] => (3, *m, 0),
            [3, m, p] => (3, *m, *p),
            _ => return Err(format!("python `{python}` is not `3.MINOR[.PATCH][t]`")),
        };
        let libc = if libc.is_empty() {
            Libc::Glibc(DEFAULT_GLIBC_MINOR)
        } else if let Some(v) = libc.strip_prefix("glibc2.") {
            Libc::Glibc(
                v.parse()
                    .map_err(|_| format!("libc `{libc}`: not glibc2.N"))?,
            )
        } else if let Some(v) = libc.strip_prefix("musl1.") {
            Libc::Musl(
                v.parse()
                    .map_err(|_| format!("libc `{libc}`: not musl1.N"))?,
            )
        } else {
            return Err(format!("libc `{libc}` is not `glibc2.N` or `musl1.N`"));
        };
        Ok(Target {
            arch: machine.to_string(),
            platform: platform.to_string(),
            libc,
            python,
            free_threaded,
        })
    }

    /// The PEP 508 marker environment of a CPython on this Linux target.
    pub fn marker_env(&self) -> MarkerEnvironment {
        let (ma, mi, pa) = self.python;
        let full = format!("{ma}.{mi}.{pa}");
        let short = format!("{ma}.{mi}");
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full,
            os_name: "posix",
            platform_machine: &self.arch,
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &full,
            python_version: &short,
            sys_platform: "linux",
        })
        .expect("numeric versions always parse")
    }

    /// Platform tags, most specific first: `manylinux_2_M` (with legacy aliases right after
    /// their equivalent) or `musllinux_1_M` from the target's version down, then `linux_ARCH`.
    pub fn platform_tags(&self) -> Vec<String> {
        let arch = &self.arch;
        let mut out = Vec::new();
        match self.libc {
            Libc::Glibc(max) => {
                // manylinux starts at glibc 2.5 on x86 and 2.17 elsewhere (PEP 600).
                let min = if arch == "x86_64" || arch == "i686" {
                    5
                } else {
                    17
                };
                for m in (min..=max).rev() {
                    out.push(format!("manylinux_2_{m}_{arch}"));
                    let legacy = match m {
                        17 => Some("manylinux2014"),
                        12 if arch == "x86_64" || arch == "i686" => Some("manylinux2010"),
                        5 if arch == "x86_64" || arch == "i686" => Some("manylinux1"),
                        _ => None,
                    };
                    if let Some(l) = legacy {
                        out.push(format!("{l}_{arch}"));
                    }
                }
            }
            Libc::Musl(max) => {
                for m in (0..=max).rev() {
                    out.push(format!("musllinux_1_{m}_{arch}"));
                }
            }
        }
        out.push(format!("linux_{arch}"));
        out
    }

    /// Every tag this target installs, best first (`packaging.tags.sys_tags` for CPython).
    pub fn supported_tags(&self) -> Vec<Tag> {
        let (ma, mi, _) = self.python;
        let plats = self.platform_tags();
        let interp = format!("cp{ma}{mi}");
        let abi = if self.free_threaded {
            format!("{interp}t")
        } else {
            interp.clone()
        };
        let abi3 = !self.free_threaded && mi >= 2;
        let mut out = Vec::new();
        let push_all = |out: &mut Vec<Tag>, py: &str, abi: &str| {
            for p in &plats {
                out.push(Tag::new(py, abi, p));
            }
        };
        push_all(&mut out, &interp, &abi);
        if abi3 {
            push_all(&mut out, &interp, "abi3");
        }
        push_all(&mut out, &interp, "none");
        if abi3 {
            for m in (2..mi).rev() {
                push_all(&mut out, &format!("cp{ma}{m}"), "abi3");
            }
        }
        let py_range: Vec<String> = std::iter::once(format!("py{ma}{mi}"))
            .chain(std::iter::once(format!("py{ma}")))
            .chain((0..mi).rev().map(|m| format!("py{ma}{m}")))
            .collect();
        for v in &py_range {
            push_all(&mut out, v, "none");
        }
        out.push(Tag::new(&interp, "none", "any"));
        for v in &py_range {
            out.push(Tag::new(v, "none", "any"));
        }
        out
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ma, mi, _) = self.python;
        let libc = match self.libc {
            Libc::Glibc(m) => format!("glibc 2.{m}"),
            Libc::Musl(m) => format!("musl 1.{m}"),
        };
        let t = if self.free_threaded { "t" } else { "" };
        write!(f, "{} (CPython {ma}.{mi}{t}, {libc})", self.platform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manylinux_order_matches_packaging() {
        let t = Target::parse("linux/amd64", "3.12", "glibc2.17").unwrap();
        let p = t.platform_tags();
        assert_eq!(p[0], "manylinux_2_17_x86_64");
        assert_eq!(p[1], "manylinux2014_x86_64");
        assert_eq!(p[2], "manylinux_2_16_x86_64");
        let i12 = p.iter().position(|x| x == "manylinux_2_12_x86_64").unwrap();
        assert_eq!(p[i12 + 1], "manylinux2010_x86_64");
        assert_eq!(p[p.len() - 3], "manylinux_2_5_x86_64");
        assert_eq!(p[p.len() - 2], "manylinux1_x86_64");
        assert_eq!(p[p.len() - 1], "linux_x86_64");
        let a = Target::parse("linux/arm64", "3.12", "glibc2.17").unwrap();
        assert_eq!(
            a.platform_tags(),
            vec![
                "manylinux_2_17_aarch64",
                "manylinux2014_aarch64",
                "linux_aarch64"
            ]
        );
        let m = Target::parse("linux/arm64", "3.12", "musl1.2").unwrap();
        assert_eq!(
            m.platform_tags(),
            vec![
                "musllinux_1_2_aarch64",
                "musllinux_1_1_aarch64",
                "musllinux_1_0_aarch64",
                "linux_aarch64"
            ]
        );
    }

    #[test]
    fn tag_order_matches_sys_tags() {
        let t = Target::parse("linux/arm64", "3.12", "glibc2.17").unwrap();
        let tags: Vec<String> = t.supported_tags().iter().map(|t| t.to_string()).collect();
        // What `packaging.tags.sys_tags()` prints on CPython 3.12, glibc 2.17, aarch64.
        assert_eq!(tags[0], "cp312-cp312-manylinux_2_17_aarch64");
        assert_eq!(tags[3], "cp312-abi3-manylinux_2_17_aarch64");
        assert_eq!(tags[6], "cp312-none-manylinux_2_17_aarch64");
        assert_eq!(tags[9], "cp311-abi3-manylinux_2_17_aarch64");
        let cp32 = tags
            .iter()
            .position(|x| x == "cp32-abi3-linux_aarch64")
            .unwrap();
        assert_eq!(tags[cp32 + 1], "py312-none-manylinux_2_17_aarch64");
        assert_eq!(tags[cp32 + 4], "py3-none-manylinux_2_17_aarch64");
        let any = tags.iter().position(|x| x == "cp312-none-any").unwrap();
        assert_eq!(tags[any + 1], "py312-none-any");
        assert_eq!(tags[any + 2], "py3-none-any");
        assert_eq!(tags.last().unwrap(), "py30-none-any");
        assert!(!tags.contains(&"cp31-abi3-linux_aarch64".to_string()));
        let ft = Target::parse("linux/amd64", "3.13t", "").unwrap();
        let ftags: Vec<String> = ft.supported_tags().iter().map(|t| t.to_string()).collect();
        assert_eq!(ftags[0], "cp313-cp313t-manylinux_2_36_x86_64");
        assert!(!ftags.iter().any(|t| t.contains("abi3")));
    }

    #[test]
    fn bad_targets_are_errors() {
        assert!(Target::parse("windows/amd64", "3.12", "").is_err());
        assert!(Target::parse("linux/mips", "3.12", "").is_err());
        assert!(Target::parse("linux/amd64", "2.7", "").is_err());
        assert!(Target::parse("linux/amd64", "3.x", "").is_err());
        assert!(Target::parse("linux/amd64", "3.12", "uclibc").is_err());
    }
}
