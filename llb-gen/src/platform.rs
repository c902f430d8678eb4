//! Target platforms: parsing and normalising `os/arch[/variant]` strings (`linux/arm64`, `amd64`).

use std::fmt;

use oci_spec::image::{Arch, Os};

/// A normalised platform, as BuildKit and image configs spell it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64", None)
    }

    /// Parse like containerd's `platforms.Parse`, normalising aliases (`x86_64` → `amd64`,
    /// `aarch64` → `arm64`, `arm64/v8` → `arm64`, `arm` → `arm/v7`).
    pub fn parse(s: &str) -> Result<Platform, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty platform".into());
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_ascii_uppercase())
        {
            return Err(format!(
                "invalid platform `{s}`: use lowercase `os/arch[/variant]`"
            ));
        }
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [one] => {
                // A lone word is an architecture (on linux) or an OS (on the host arch).
                if known_os(one) && !known_arch(&normalize_arch(one, None).0) {
                    return Err(format!(
                        "invalid platform `{s}`: missing architecture (e.g. `{one}/amd64`)"
                    ));
                }
                ("linux", *one, None)
            }
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => {
                return Err(format!(
                    "invalid platform `{s}`: expected `os/arch[/variant]`"
                ));
            }
        };
        if os.is_empty() || arch.is_empty() || variant == Some("") {
            return Err(format!("invalid platform `{s}`: empty component"));
        }
        if !known_os(os) {
            return Err(format!("unknown operating system `{os}` in platform `{s}`"));
        }
        let (arch, variant) = normalize_arch(arch, variant);
        if !known_arch(&arch) {
            return Err(format!("unknown architecture `{arch}` in platform `{s}`"));
        }
        Ok(Platform {
            os: os.to_string(),
            architecture: arch,
            variant,
        })
    }

    /// `linux/amd64`, `linux/arm/v7`: the ID BuildKit uses in `refs.platforms`.
    pub fn id(&self) -> String {
        self.to_string()
    }

    /// The machine in Python wheel platform tags (`manylinux_2_17_aarch64`), for Linux
    /// platforms that publish wheels.
    pub fn wheel_machine(&self) -> Option<&'static str> {
        if self.os != "linux" {
            return None;
        }
        Some(
            match (self.architecture.as_str(), self.variant.as_deref()) {
                ("amd64", _) => "x86_64",
                ("arm64", _) => "aarch64",
                ("arm", Some("v7") | None) => "armv7l",
                ("386", _) => "i686",
                ("ppc64le", _) => "ppc64le",
                ("s390x", _) => "s390x",
                ("riscv64", _) => "riscv64",
                _ => return None,
            },
        )
    }

    /// `linux-amd64`: for cache ids and file names.
    pub fn slug(&self) -> String {
        self.to_string().replace('/', "-")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn known_os(os: &str) -> bool {
    !matches!(Os::from(os), Os::Other(_))
}

fn known_arch(arch: &str) -> bool {
    !matches!(Arch::from(arch), Arch::Other(_))
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let (a, v): (&str, Option<&str>) = match (arch, variant) {
        ("i386" | "386", _) => ("386", None),
        ("x86_64" | "x86-64" | "amd64", Some("v1")) => ("amd64", None),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        ("aarch64" | "arm64", Some("v8") | Some("8")) => ("arm64", None),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", Some("v7")),
        ("armel", _) => ("arm", Some("v6")),
        ("arm", None | Some("7") | Some("v7")) => ("arm", Some("v7")),
        ("arm", Some("5") | Some("v5")) => ("arm", Some("v5")),
        ("arm", Some("6") | Some("v6")) => ("arm", Some("v6")),
        ("arm", Some("8") | Some("v8")) => ("arm", Some("v8")),
        (a, v) => (a, v),
    };
    (a.to_string(), v.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(Platform::parse("linux/amd64").unwrap().id(), "linux/amd64");
        assert_eq!(Platform::parse("linux/x86_64").unwrap().id(), "linux/amd64");
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().id(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().id(),
            "linux/arm64"
        );
        assert_eq!(Platform::parse("arm64").unwrap().id(), "linux/arm64");
        assert_eq!(Platform::parse("linux/arm").unwrap().id(), "linux/arm/v7");
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().slug(),
            "linux-amd64"
        );
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "",
            "linux/",
            "linux/amd64/v1/x",
            "plan9x/amd64",
            "linux/potato",
            "Linux/AMD64",
            "linux",
            "/amd64",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad} should fail");
        }
    }
}
