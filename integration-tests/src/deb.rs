//! Local `.deb` packages for tests: built with `dpkg-deb`, installed by apt steps from the context.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A package of `Architecture: all` holding one executable script.
pub struct Deb<'a> {
    /// `Package:` (also the name of the script under `/usr/local/bin`).
    pub package: &'a str,
    /// `Depends:`, if any.
    pub depends: Option<&'a str>,
    /// What the script prints (`echo` of it).
    pub prints: &'a str,
}

impl Deb<'_> {
    /// `dpkg-deb --build --root-owner-group` of this package (version 1.0) holding
    /// `/usr/local/bin/PACKAGE`, written to `out` (its directory is created).
    pub fn build(&self, out: &Path) {
        let root = tempfile::Builder::new()
            .prefix("layerstack-deb-")
            .tempdir()
            .expect("temp dir");
        let r = root.path();
        std::fs::create_dir_all(r.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
        let depends = self
            .depends
            .map(|d| format!("Depends: {d}\n"))
            .unwrap_or_default();
        std::fs::write(
            r.join("DEBIAN/control"),
            format!(
                "Package: {}\nVersion: 1.0\nArchitecture: all\n\
                 Maintainer: layerstack tests <tests@example.org>\n{depends}\
                 Description: layerstack test package\n",
                self.package
            ),
        )
        .unwrap();
        let bin = r.join("usr/local/bin").join(self.package);
        std::fs::write(&bin, format!("#!/bin/sh\necho {}\n", self.prints)).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let status = Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(r)
            .arg(out)
            .stdout(Stdio::null())
            .status()
            .expect("run dpkg-deb");
        assert!(status.success(), "dpkg-deb --build {} failed", self.package);
    }
}
