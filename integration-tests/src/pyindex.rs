//! A local Python package index for tests: tiny wheels built in the test, served on
//! 127.0.0.1 (PEP 503 simple API) with cache headers like PyPI's, counting every download.
//!
//! Builds reach it with `--network=host`. It stands in for PyPI where a test must prove which
//! files were downloaded (the cache-mount tests) or which build of a package lands where
//! (per-platform wheels).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::http::Response;

use sha2::{Digest, Sha256};

/// A wheel to build: `name-version-tag.whl` with one module that knows its own version.
#[derive(Clone, Debug)]
pub struct Wheel {
    /// Distribution name (`lsdemo-a`); the module is the normalised name (`lsdemo_a`).
    pub name: String,
    /// Version, local part included (`2.1.2+cpu`).
    pub version: String,
    /// Compatibility tag (`py3-none-any`, `cp311-cp311-manylinux_2_17_x86_64`).
    pub tag: String,
    /// Extra files (path inside the wheel, contents).
    pub files: Vec<(String, String)>,
    /// `Requires-Dist` lines of its METADATA (`lsdemo-native==1.0`).
    pub requires: Vec<String>,
    /// Console scripts: (command, `module:function`).
    pub scripts: Vec<(String, String)>,
}

impl Wheel {
    pub fn pure(name: &str, version: &str) -> Wheel {
        Wheel::tagged(name, version, "py3-none-any")
    }

    /// A wheel with this compatibility tag (`cp311-cp311-manylinux_2_17_aarch64`).
    pub fn tagged(name: &str, version: &str, tag: &str) -> Wheel {
        Wheel {
            name: name.into(),
            version: version.into(),
            tag: tag.into(),
            files: vec![],
            requires: vec![],
            scripts: vec![],
        }
    }

    fn module(&self) -> String {
        self.name.replace('-', "_").to_lowercase()
    }

    /// `lsdemo_a-1.0-py3-none-any.whl`
    pub fn filename(&self) -> String {
        format!("{}-{}-{}.whl", self.module(), self.version, self.tag)
    }

    /// The wheel's bytes (a stored zip with the module, METADATA, WHEEL and RECORD).
    pub fn build(&self) -> Vec<u8> {
        let m = self.module();
        let dist = format!("{m}-{}.dist-info", self.version);
        let mut files: Vec<(String, String)> = vec![(
            format!("{m}/__init__.py"),
            format!(
                "__version__ = {:?}\nWHEEL_TAG = {:?}\n\n\ndef main():\n    print(__version__, WHEEL_TAG)\n",
                self.version, self.tag
            ),
        )];
        files.extend(self.files.iter().cloned());
        let requires: String = self
            .requires
            .iter()
            .map(|r| format!("Requires-Dist: {r}\n"))
            .collect();
        files.push((
            format!("{dist}/METADATA"),
            format!(
                "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{requires}",
                self.name, self.version
            ),
        ));
        if !self.scripts.is_empty() {
            let lines: String = self
                .scripts
                .iter()
                .map(|(cmd, target)| format!("{cmd} = {target}\n"))
                .collect();
            files.push((
                format!("{dist}/entry_points.txt"),
                format!("[console_scripts]\n{lines}"),
            ));
        }
        let root_is_pure = self.tag.ends_with("-none-any");
        files.push((
            format!("{dist}/WHEEL"),
            format!("Wheel-Version: 1.0\nGenerator: layerstack-tests\nRoot-Is-Purelib: {root_is_pure}\nTag: {}\n", self.tag),
        ));
        let mut record: String = files
            .iter()
            .map(|(p, c)| {
                format!(
                    "{p},sha256={},{}\n",
                    b64_nopad(&Sha256::digest(c.as_bytes())),
                    c.len()
                )
            })
            .collect();
        record.push_str(&format!("{dist}/RECORD,,\n"));
        files.push((format!("{dist}/RECORD"), record));
        zip_stored(&files)
    }
}

/// A file an index serves for a project.
#[derive(Clone, Debug)]
pub struct IndexFile {
    pub project: String,
    pub filename: String,
    pub bytes: Vec<u8>,
}

impl Wheel {
    pub fn index_file(&self) -> IndexFile {
        IndexFile {
            project: self.name.clone(),
            filename: self.filename(),
            bytes: self.build(),
        }
    }
}

/// A source distribution (`name-version.zip` with a setuptools `setup.py`): installing it
/// builds it where pip runs. Its module records the machine it was built on (`BUILT_ON`).
#[derive(Clone, Debug)]
pub struct Sdist {
    pub name: String,
    pub version: String,
}

impl Sdist {
    pub fn new(name: &str, version: &str) -> Sdist {
        Sdist {
            name: name.into(),
            version: version.into(),
        }
    }

    pub fn index_file(&self) -> IndexFile {
        let m = self.name.replace('-', "_").to_lowercase();
        let top = format!("{m}-{}", self.version);
        let setup = format!(
            "import platform\nfrom setuptools import setup\n\n\
             with open({m:?} + '/__init__.py', 'w') as f:\n    \
             f.write('__version__ = %r\\nBUILT_ON = %r\\n' % ({:?}, platform.machine()))\n\n\
             setup(name={:?}, version={:?}, packages=[{m:?}])\n",
            self.version, self.name, self.version
        );
        let pkg_info = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        let files = [
            (format!("{top}/setup.py"), setup),
            (format!("{top}/PKG-INFO"), pkg_info),
            (format!("{top}/{m}/__init__.py"), String::new()),
        ];
        IndexFile {
            project: self.name.clone(),
            filename: format!("{top}.zip"),
            bytes: zip_stored(&files),
        }
    }
}

/// A zip archive of (path, contents), stored uncompressed.
fn zip_stored(files: &[(String, String)]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (p, c) in files {
            z.start_file(p.as_str(), opts).expect("zip entry");
            z.write_all(c.as_bytes()).expect("zip write");
        }
        z.finish().expect("zip finish");
    }
    buf.into_inner()
}

/// URL-safe base64 without padding (RECORD hashes).
pub fn b64_nopad(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=c.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A running index. Dropping it leaves the listener thread parked (the test process ends).
pub struct PackageIndex {
    pub port: u16,
    downloads: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl PackageIndex {
    /// Serve these wheels on 127.0.0.1 (a free port) as one index at `/simple`.
    pub fn serve(wheels: &[Wheel]) -> PackageIndex {
        PackageIndex::serve_indexes(&[("simple", wheels)])
    }

    /// Serve several indexes, each at `/<prefix>` (`simple`, `cpu/simple`, `cu118/simple`),
    /// like PyPI and download.pytorch.org side by side. Projects are keyed `/<prefix>/<name>`.
    pub fn serve_indexes(indexes: &[(&str, &[Wheel])]) -> PackageIndex {
        let files: Vec<(&str, Vec<IndexFile>)> = indexes
            .iter()
            .map(|(prefix, wheels)| (*prefix, wheels.iter().map(Wheel::index_file).collect()))
            .collect();
        PackageIndex::serve_files(&files)
    }

    /// Serve any distribution files (wheels, sdists), each index at `/<prefix>`.
    pub fn serve_files(indexes: &[(&str, Vec<IndexFile>)]) -> PackageIndex {
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut projects: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (prefix, dists) in indexes {
            for d in dists {
                let project = format!("/{}/{}", prefix.trim_matches('/'), normalize(&d.project));
                projects
                    .entry(project)
                    .or_default()
                    .push(d.filename.clone());
                files.insert(d.filename.clone(), d.bytes.clone());
            }
        }
        let downloads = Arc::new(Mutex::new(BTreeMap::new()));
        let counts = downloads.clone();
        let port = crate::http::serve(move |_method, path| page(path, &files, &projects, &counts));
        PackageIndex { port, downloads }
    }

    /// `http://127.0.0.1:PORT/simple`
    pub fn url(&self) -> String {
        self.index_url("simple")
    }

    /// `http://127.0.0.1:PORT/<prefix>`
    pub fn index_url(&self, prefix: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            prefix.trim_matches('/')
        )
    }

    /// How many times a wheel file was downloaded.
    pub fn downloads(&self, filename: &str) -> usize {
        self.downloads
            .lock()
            .unwrap()
            .get(filename)
            .copied()
            .unwrap_or(0)
    }
}

/// PEP 503 name normalisation.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == '.' {
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

/// The answer to one request: an index page (`/<prefix>/<project>/`) or a wheel (`/files/…`,
/// counted in `downloads`).
fn page(
    path: &str,
    files: &BTreeMap<String, Vec<u8>>,
    projects: &BTreeMap<String, Vec<String>>,
    downloads: &Mutex<BTreeMap<String, usize>>,
) -> Response {
    let not_found = || {
        (
            "404 Not Found",
            "text/plain",
            "no-store",
            b"not found\n".to_vec(),
        )
    };
    let trimmed = path.trim_end_matches('/');
    let project = trimmed
        .rsplit_once('/')
        .map(|(prefix, name)| format!("{prefix}/{}", normalize(name)));
    let (status, ctype, cache, body): (&str, &str, &str, Vec<u8>) =
        if let Some(f) = path.strip_prefix("/files/") {
            match files.get(f) {
                Some(bytes) => {
                    *downloads.lock().unwrap().entry(f.to_string()).or_default() += 1;
                    (
                        "200 OK",
                        "application/octet-stream",
                        "public, max-age=31536000, immutable",
                        bytes.clone(),
                    )
                }
                None => not_found(),
            }
        } else if let Some(names) = project.as_ref().and_then(|p| projects.get(p)) {
            let links: String = names
                .iter()
                .map(|f| {
                    format!(
                        "<a href=\"/files/{f}#sha256={}\">{f}</a>\n",
                        hex_sha(&files[f])
                    )
                })
                .collect();
            (
                "200 OK",
                "text/html",
                "max-age=600",
                format!("<!DOCTYPE html><html><body>\n{links}</body></html>\n").into_bytes(),
            )
        } else {
            not_found()
        };
    Response {
        status,
        content_type: ctype,
        cache_control: cache,
        body,
    }
}

fn hex_sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream;

    #[test]
    fn names_and_encoding() {
        assert_eq!(normalize("Foo_Bar.baz"), "foo-bar-baz");
        assert_eq!(
            Wheel::pure("lsdemo-a", "1.0").filename(),
            "lsdemo_a-1.0-py3-none-any.whl"
        );
        assert_eq!(b64_nopad(b"abc"), "YWJj");
        assert_eq!(b64_nopad(b"ab"), "YWI");
        assert_eq!(
            crate::http::percent_decode("/files/torch-2.1.2%2Bcpu.whl"),
            "/files/torch-2.1.2+cpu.whl"
        );
        assert_eq!(crate::http::percent_decode("%2"), "%2");
        let bytes = Wheel::pure("x", "1").build();
        assert_eq!(&bytes[..2], b"PK");
    }

    #[test]
    fn serves_pages_and_counts_downloads() {
        let idx = PackageIndex::serve(&[Wheel::pure("lsdemo-a", "1.0")]);
        let get = |path: &str| -> String {
            let mut s = TcpStream::connect(("127.0.0.1", idx.port)).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut r = BufReader::new(s);
            let mut all = String::new();
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                all.push_str(&line);
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            all
        };
        assert!(get("/simple/lsdemo-a/").starts_with("HTTP/1.1 200"));
        assert!(get("/files/lsdemo_a-1.0-py3-none-any.whl").contains("immutable"));
        assert_eq!(idx.downloads("lsdemo_a-1.0-py3-none-any.whl"), 1);
        assert!(get("/simple/nope/").starts_with("HTTP/1.1 404"));
    }
}
