//! Wheel file names (PEP 427 / the binary distribution format spec):
//! `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl` with compressed tag sets
//! (`py2.py3`, `manylinux_2_17_x86_64.manylinux2014_x86_64`) expanded into tags.

use std::fmt;

/// One `python-abi-platform` tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl Tag {
    pub fn new(python: &str, abi: &str, platform: &str) -> Tag {
        Tag {
            python: python.to_string(),
            abi: abi.to_string(),
            platform: platform.to_string(),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// A parsed wheel file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelName {
    /// The distribution as written (escaped: `_` for runs of `-_.`).
    pub name: String,
    pub version: String,
    /// The build tag, split into its leading number and the rest (`1abc` → (1, "abc")).
    pub build: Option<(u64, String)>,
    pub pythons: Vec<String>,
    pub abis: Vec<String>,
    pub platforms: Vec<String>,
}

impl WheelName {
    /// Parse `file` (a name, not a path). The error says what is wrong.
    pub fn parse(file: &str) -> Result<WheelName, String> {
        let stem = file
            .strip_suffix(".whl")
            .ok_or_else(|| format!("`{file}` is not a wheel (no `.whl` suffix)"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, py, abi, plat) = match parts.as_slice() {
            [n, v, p, a, pl] => (*n, *v, None, *p, *a, *pl),
            [n, v, b, p, a, pl] => (*n, *v, Some(*b), *p, *a, *pl),
            _ => {
                return Err(format!(
                    "`{file}` is not `NAME-VERSION(-BUILD)?-PYTHON-ABI-PLATFORM.whl`"
                ));
            }
        };
        for (what, v) in [
            ("name", name),
            ("version", version),
            ("python tag", py),
            ("abi tag", abi),
            ("platform tag", plat),
        ] {
            if v.is_empty() {
                return Err(format!("`{file}`: empty {what}"));
            }
        }
        let build = match build {
            None => None,
            Some(b) => {
                let digits: String = b.chars().take_while(|c| c.is_ascii_digit()).collect();
                if digits.is_empty() {
                    return Err(format!(
                        "`{file}`: build tag `{b}` does not start with a digit"
                    ));
                }
                let n = digits
                    .parse::<u64>()
                    .map_err(|_| format!("`{file}`: build tag `{b}` is too large"))?;
                Some((n, b[digits.len()..].to_string()))
            }
        };
        let split = |s: &str| -> Result<Vec<String>, String> {
            let v: Vec<String> = s.split('.').map(str::to_string).collect();
            if v.iter().any(String::is_empty) {
                return Err(format!("`{file}`: empty tag in `{s}`"));
            }
            Ok(v)
        };
        Ok(WheelName {
            name: name.to_string(),
            version: version.to_string(),
            build,
            pythons: split(py)?,
            abis: split(abi)?,
            platforms: split(plat)?,
        })
    }

    /// Every tag the compressed sets stand for (their cartesian product).
    pub fn tags(&self) -> Vec<Tag> {
        let mut out = Vec::new();
        for p in &self.pythons {
            for a in &self.abis {
                for pl in &self.platforms {
                    out.push(Tag::new(p, a, pl));
                }
            }
        }
        out
    }

    /// Pure Python: installs anywhere (`any` platform, `none` ABI), so one file serves every
    /// platform.
    pub fn is_pure(&self) -> bool {
        self.platforms.iter().all(|p| p == "any") && self.abis.iter().all(|a| a == "none")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compressed_tag_sets() {
        let w = WheelName::parse(
            "numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.name, "numpy");
        assert_eq!(w.version, "2.1.3");
        assert_eq!(w.build, None);
        assert_eq!(
            w.tags(),
            vec![
                Tag::new("cp312", "cp312", "manylinux_2_17_x86_64"),
                Tag::new("cp312", "cp312", "manylinux2014_x86_64"),
            ]
        );
        assert!(!w.is_pure());
    }

    #[test]
    fn pure_and_build_tags() {
        let w = WheelName::parse("six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.tags().len(), 2);
        assert!(w.is_pure());
        let b = WheelName::parse("pkg-1.0-12abc-py3-none-any.whl").unwrap();
        assert_eq!(b.build, Some((12, "abc".to_string())));
        // A local version keeps its `+`.
        let t = WheelName::parse("torch-2.5.1+cpu-cp312-cp312-linux_x86_64.whl").unwrap();
        assert_eq!(t.version, "2.5.1+cpu");
        // abi3 wheels are not pure: they carry a platform.
        let a =
            WheelName::parse("cryptography-43.0.0-cp39-abi3-musllinux_1_2_aarch64.whl").unwrap();
        assert!(!a.is_pure());
    }

    #[test]
    fn malformed_names_are_errors() {
        for bad in [
            "six-1.16.0.tar.gz",
            "six-1.16.0-py3-none.whl",
            "a-b-c-d-e-f-g.whl",
            "pkg-1.0-x1-py3-none-any.whl",
            "pkg-1.0-py3..py2-none-any.whl",
            "-1.0-py3-none-any.whl",
        ] {
            assert!(WheelName::parse(bad).is_err(), "{bad}");
        }
    }
}
