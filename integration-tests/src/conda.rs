//! A local conda channel for tests: tiny conda packages (`.tar.bz2`) built in the test, served on
//! 127.0.0.1 with a `repodata.json` per subdir, counting every download — the conda
//! counterpart of [`crate::pyindex`].
//!
//! No conda channel is reachable from layerstack's machines, and neither is micromamba: the
//! tests install with the micromamba stand-in of `scripts/micromamba-standin/` (py-rattler from
//! PyPI) in the image [`MICROMAMBA_IMAGE`], which [`ensure_micromamba_image`] makes with
//! `scripts/conda-base-image.sh`. Builds reach the channel with `--network=host`.
//!
//! ```no_run
//! use integration_tests::conda::{CondaChannel, CondaPackage};
//!
//! let pkg = CondaPackage::noarch("lsdemo-conda", "1.0")
//!     .unique_build()
//!     .file("share/lsdemo/hello.txt", "hello\n")
//!     .script("bin/lsdemo-hello", "#!/bin/sh\necho /opt/anaconda1anaconda2anaconda3\n");
//! let channel = CondaChannel::serve(&[pkg.clone()]);
//! // environment file: channels: [channel.url()], dependencies: [lsdemo-conda=1.0]
//! assert_eq!(channel.downloads(&pkg.filename()), 0);
//! ```

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::Response;
use crate::{Engine, display_command, exec, repo_root};

/// The base image with the micromamba stand-in (`scripts/conda-base-image.sh`).
pub const MICROMAMBA_IMAGE: &str = "layerstack-test/micromamba:dev";

/// The placeholder conda-build writes into text files for the install prefix; installers
/// replace it with the target prefix when they link the file.
pub const PREFIX_PLACEHOLDER: &str = "/opt/anaconda1anaconda2anaconda3";

/// Build time written into every package (index.json `timestamp`, tar mtimes): packages are
/// byte-for-byte reproducible.
const TIMESTAMP_MS: u64 = 1_700_000_000_000;

/// Makes `layerstack-test/micromamba:dev` once per test process by running
/// `scripts/conda-base-image.sh` (idempotent: about a second when the image is up to date).
pub fn ensure_micromamba_image(_engine: &Engine) {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let mut cmd = Command::new(repo_root().join("scripts/conda-base-image.sh"));
        cmd.current_dir(repo_root());
        match exec(&mut cmd, Some(Duration::from_secs(15 * 60))) {
            Ok(o) if o.status.success() => {
                eprint!("{}", o.stderr);
                Ok(())
            }
            Ok(o) => Err(format!(
                "{} failed ({}):\n{}\n{}",
                display_command(&cmd),
                o.status,
                o.stdout,
                o.stderr
            )),
            Err(e) => Err(format!("{}: {e}", display_command(&cmd))),
        }
    });
    if let Err(e) = result {
        panic!("cannot make the micromamba stand-in image {MICROMAMBA_IMAGE}: {e}");
    }
}

/// A file in a conda package.
#[derive(Clone, Debug)]
pub struct CondaFile {
    /// Relative to the prefix (`share/lsdemo/hello.txt`).
    pub path: String,
    pub contents: String,
    /// Mode 0755 instead of 0644.
    pub executable: bool,
    /// Registered in `info/paths.json` as a text file with [`PREFIX_PLACEHOLDER`], which the
    /// installer replaces with the target prefix.
    pub has_prefix: bool,
}

/// A conda package to build: `NAME-VERSION-BUILD.tar.bz2` (the v1 format: `info/index.json`,
/// `info/paths.json`, `info/files`, then the files).
#[derive(Clone, Debug)]
pub struct CondaPackage {
    pub name: String,
    pub version: String,
    /// The build string (`0`, `h1a2b3c4d_0`).
    pub build_string: String,
    pub build_number: u64,
    /// `noarch` (a `noarch: generic` package) or a platform subdir (`linux-64`).
    pub subdir: String,
    /// Match specs of dependencies (`lsdemo-conda >=1.0`).
    pub depends: Vec<String>,
    pub files: Vec<CondaFile>,
}

impl CondaPackage {
    /// A `noarch: generic` package with build string `0` and no files.
    pub fn noarch(name: &str, version: &str) -> CondaPackage {
        CondaPackage {
            name: name.into(),
            version: version.into(),
            build_string: "0".into(),
            build_number: 0,
            subdir: "noarch".into(),
            depends: vec![],
            files: vec![],
        }
    }

    /// A build string no other package built by this or an earlier test run has
    /// (`h<8 hex>_<build number>`). BuildKit cache mounts outlive a test run (layerstack's
    /// conda cache id is fixed, and tests run in parallel), so a package that a test counts
    /// downloads of must be new to the package cache: one with the same name, version and
    /// build string could be answered from a cache another build filled.
    pub fn unique_build(mut self) -> CondaPackage {
        self.build_string = format!("{}_{}", unique_hash(), self.build_number);
        self
    }

    pub fn build_string(mut self, build: &str) -> CondaPackage {
        self.build_string = build.into();
        self
    }

    pub fn depends(mut self, spec: &str) -> CondaPackage {
        self.depends.push(spec.into());
        self
    }

    /// A plain file (mode 0644).
    pub fn file(mut self, path: &str, contents: &str) -> CondaPackage {
        self.files.push(CondaFile {
            path: path.into(),
            contents: contents.into(),
            executable: false,
            has_prefix: contents.contains(PREFIX_PLACEHOLDER),
        });
        self
    }

    /// An executable (mode 0755); [`PREFIX_PLACEHOLDER`] in it becomes the install prefix.
    pub fn script(mut self, path: &str, contents: &str) -> CondaPackage {
        self.files.push(CondaFile {
            path: path.into(),
            contents: contents.into(),
            executable: true,
            has_prefix: contents.contains(PREFIX_PLACEHOLDER),
        });
        self
    }

    /// `NAME-VERSION-BUILD`, as installers name the package (`cached: …`, `pkgs/…`).
    pub fn dist(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.build_string)
    }

    /// `NAME-VERSION-BUILD.tar.bz2`
    pub fn filename(&self) -> String {
        format!("{}.tar.bz2", self.dist())
    }

    /// `info/index.json`
    pub fn index_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "version": self.version,
            "build": self.build_string,
            "build_number": self.build_number,
            "depends": self.depends,
            "license": "Apache-2.0",
            "subdir": self.subdir,
            "timestamp": TIMESTAMP_MS,
        });
        if self.subdir == "noarch" {
            v["noarch"] = json!("generic");
        } else if let Some((platform, arch)) = self.subdir.split_once('-') {
            v["platform"] = json!(platform);
            v["arch"] = json!(match arch {
                "64" => "x86_64",
                "aarch64" => "aarch64",
                other => other,
            });
        }
        v
    }

    /// `info/paths.json`
    fn paths_json(&self) -> Value {
        let paths: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                let mut e = json!({
                    "_path": f.path,
                    "path_type": "hardlink",
                    "sha256": hex(&Sha256::digest(f.contents.as_bytes())),
                    "size_in_bytes": f.contents.len(),
                });
                if f.has_prefix {
                    e["file_mode"] = json!("text");
                    e["prefix_placeholder"] = json!(PREFIX_PLACEHOLDER);
                }
                e
            })
            .collect();
        json!({ "paths": paths, "paths_version": 1 })
    }

    /// The package's bytes: a bzip2-compressed tar, reproducible.
    pub fn archive(&self) -> Vec<u8> {
        let mut entries: Vec<(String, Vec<u8>, u32)> = vec![
            (
                "info/index.json".into(),
                pretty(&self.index_json()).into_bytes(),
                0o644,
            ),
            (
                "info/paths.json".into(),
                pretty(&self.paths_json()).into_bytes(),
                0o644,
            ),
            (
                "info/files".into(),
                self.files
                    .iter()
                    .map(|f| format!("{}\n", f.path))
                    .collect::<String>()
                    .into_bytes(),
                0o644,
            ),
        ];
        for f in &self.files {
            let mode = if f.executable { 0o755 } else { 0o644 };
            entries.push((f.path.clone(), f.contents.clone().into_bytes(), mode));
        }
        let enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        let mut tar = tar::Builder::new(enc);
        for (path, bytes, mode) in &entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(bytes.len() as u64);
            h.set_mode(*mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(TIMESTAMP_MS / 1000);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, path, bytes.as_slice())
                .unwrap_or_else(|e| panic!("tar entry {path}: {e}"));
        }
        tar.into_inner()
            .and_then(|enc| enc.finish())
            .expect("finish the .tar.bz2")
    }

    /// This package's entry in `repodata.json`: index.json plus the archive's size and sha256.
    fn repodata_record(&self, archive: &[u8]) -> Value {
        let mut v = self.index_json();
        v["size"] = json!(archive.len());
        v["sha256"] = json!(hex(&Sha256::digest(archive)));
        v
    }
}

/// `h` + 8 hex digits, different on every call (process id, time, a counter).
fn unique_hash() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let digest = Sha256::digest(format!("{}-{nanos}-{n}", std::process::id()).as_bytes());
    format!("h{}", &hex(&digest)[..8])
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON") + "\n"
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A running channel. Dropping it leaves the listener thread parked (the test process ends).
pub struct CondaChannel {
    pub port: u16,
    /// Successful GETs per path (`/noarch/repodata.json`, `/noarch/NAME-1.0-0.tar.bz2`).
    requests: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl CondaChannel {
    /// Serves these packages on 127.0.0.1 (a free port) as one channel: `/SUBDIR/repodata.json`
    /// and `/SUBDIR/FILE`. Every subdir's repodata.json exists (empty where there are no
    /// packages), as on a real channel; everything else (`repodata.json.zst`, shards) is 404,
    /// which installers take as "not offered".
    pub fn serve(packages: &[CondaPackage]) -> CondaChannel {
        let mut by_subdir: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        let mut files = BTreeMap::new();
        for p in packages {
            let archive = p.archive();
            by_subdir
                .entry(p.subdir.clone())
                .or_default()
                .insert(p.filename(), p.repodata_record(&archive));
            files.insert(format!("/{}/{}", p.subdir, p.filename()), archive);
        }
        for subdir in SUBDIRS {
            let packages = by_subdir.remove(*subdir).unwrap_or_default();
            files.insert(
                format!("/{subdir}/repodata.json"),
                repodata(subdir, packages),
            );
        }
        for (subdir, packages) in by_subdir {
            files.insert(
                format!("/{subdir}/repodata.json"),
                repodata(&subdir, packages),
            );
        }
        let requests = Arc::new(Mutex::new(BTreeMap::new()));
        let counts = requests.clone();
        let port = crate::http::serve(move |method, path| {
            let r = match files.get(path) {
                Some(bytes) if path.ends_with("/repodata.json") => {
                    Response::ok("application/json", "no-cache", bytes.clone())
                }
                Some(bytes) => Response::ok(
                    "application/x-tar",
                    "public, max-age=31536000, immutable",
                    bytes.clone(),
                ),
                None => Response::not_found(),
            };
            if r.status.starts_with("200") && !method.eq_ignore_ascii_case("HEAD") {
                *counts.lock().unwrap().entry(path.to_string()).or_default() += 1;
            }
            r
        });
        CondaChannel { port, requests }
    }

    /// `http://127.0.0.1:PORT` — the channel URL for `channels:` or `-c`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many times a package file (`NAME-VERSION-BUILD.tar.bz2`) was downloaded, from any
    /// subdir.
    pub fn downloads(&self, filename: &str) -> usize {
        let suffix = format!("/{filename}");
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.ends_with(&suffix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Successful GETs of one path (`/noarch/repodata.json`).
    pub fn requests(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

/// The subdirs that always have a repodata.json (installers ask for their platform and noarch).
const SUBDIRS: &[&str] = &["noarch", "linux-64", "linux-aarch64"];

fn repodata(subdir: &str, packages: BTreeMap<String, Value>) -> Vec<u8> {
    pretty(&json!({
        "info": { "subdir": subdir },
        "packages": packages,
        "packages.conda": {},
        "removed": [],
        "repodata_version": 1,
    }))
    .into_bytes()
}

#[cfg(test)]
mod tests {
    //! The package format and the server, without an engine.
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;

    fn demo() -> CondaPackage {
        CondaPackage::noarch("lsdemo-conda", "1.0")
            .file("share/lsdemo/hello.txt", "hello\n")
            .script(
                "bin/lsdemo-hello",
                "#!/bin/sh\necho /opt/anaconda1anaconda2anaconda3\n",
            )
    }

    #[test]
    fn archive_is_a_reproducible_conda_v1_package() {
        let p = demo();
        assert_eq!(p.filename(), "lsdemo-conda-1.0-0.tar.bz2");
        let bytes = p.archive();
        assert_eq!(&bytes[..3], b"BZh", "bzip2 magic");
        assert_eq!(bytes, p.archive(), "reproducible");
        let mut tar_bytes = vec![];
        bzip2::read::BzDecoder::new(bytes.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let mut ar = tar::Archive::new(tar_bytes.as_slice());
        let mut seen = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mode = e.header().mode().unwrap();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            seen.insert(path, (mode, s));
        }
        let names: Vec<&str> = seen.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "bin/lsdemo-hello",
                "info/files",
                "info/index.json",
                "info/paths.json",
                "share/lsdemo/hello.txt"
            ]
        );
        assert_eq!(seen["bin/lsdemo-hello"].0, 0o755);
        assert_eq!(seen["share/lsdemo/hello.txt"].0, 0o644);
        assert_eq!(
            seen["info/files"].1,
            "share/lsdemo/hello.txt\nbin/lsdemo-hello\n"
        );
        let index: Value = serde_json::from_str(&seen["info/index.json"].1).unwrap();
        assert_eq!(index["noarch"], "generic");
        assert_eq!(index["build"], "0");
        let paths: Value = serde_json::from_str(&seen["info/paths.json"].1).unwrap();
        let script = &paths["paths"][1];
        assert_eq!(script["_path"], "bin/lsdemo-hello");
        assert_eq!(script["file_mode"], "text");
        assert_eq!(script["prefix_placeholder"], PREFIX_PLACEHOLDER);
        assert_eq!(
            script["sha256"],
            hex(&Sha256::digest(seen["bin/lsdemo-hello"].1.as_bytes()))
        );
        assert!(paths["paths"][0].get("file_mode").is_none());
    }

    #[test]
    fn unique_builds_differ_from_plain_ones() {
        let p = demo().unique_build();
        assert!(p.build_string.starts_with('h') && p.build_string.ends_with("_0"));
        assert_eq!(p.build_string.len(), "h12345678_0".len());
        assert_ne!(p.build_string, demo().unique_build().build_string);
        assert_eq!(p.clone().dist(), p.dist());
        let linux = CondaPackage {
            subdir: "linux-64".into(),
            ..demo()
        };
        assert_eq!(linux.index_json()["arch"], "x86_64");
        assert!(linux.index_json().get("noarch").is_none());
    }

    fn get(ch: &CondaChannel, method: &str, path: &str) -> (String, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", ch.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut r = BufReader::new(s);
        let mut head = String::new();
        let mut line = String::new();
        let mut len = 0;
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                len = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
            line.clear();
        }
        let mut body = vec![0; if method == "HEAD" { 0 } else { len }];
        r.read_exact(&mut body).unwrap();
        (head, body)
    }

    #[test]
    fn serves_repodata_and_packages_and_counts_downloads() {
        let p = demo();
        let ch = CondaChannel::serve(std::slice::from_ref(&p));
        let (head, body) = get(&ch, "GET", "/noarch/repodata.json");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let rd: Value = serde_json::from_slice(&body).unwrap();
        let rec = &rd["packages"]["lsdemo-conda-1.0-0.tar.bz2"];
        assert_eq!(rec["name"], "lsdemo-conda");
        assert_eq!(rec["size"], p.archive().len());
        assert_eq!(rec["sha256"], hex(&Sha256::digest(p.archive())));
        let (_, empty) = get(&ch, "GET", "/linux-64/repodata.json");
        let empty: Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(empty["packages"], json!({}));
        assert!(
            get(&ch, "HEAD", "/noarch/repodata.json.zst")
                .0
                .starts_with("HTTP/1.1 404")
        );
        let (head, _) = get(&ch, "HEAD", "/noarch/lsdemo-conda-1.0-0.tar.bz2");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(ch.downloads(&p.filename()), 0, "HEAD is not a download");
        let (_, bytes) = get(&ch, "GET", "/noarch/lsdemo-conda-1.0-0.tar.bz2");
        assert_eq!(bytes, p.archive());
        assert_eq!(ch.downloads(&p.filename()), 1);
        assert_eq!(ch.requests("/noarch/repodata.json"), 1);
        assert_eq!(ch.url(), format!("http://127.0.0.1:{}", ch.port));
    }
}
