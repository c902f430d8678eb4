//! Equivalence (issue 15): what a `lock` step puts in the image equals what `pip install
//! --no-deps` and `uv pip install --no-deps` of the same wheels put there. One stack, three
//! services on the same base image: `bylock` installs a PEP 751 lock lock-natively (every
//! wheel an HTTP source, the groups installed by `lock_install.py` on the build platform and
//! merged), `bypip` runs `python3 -m pip install --no-deps` of the same pins from the same
//! 127.0.0.1 index in a `run` step, `byuv` runs `uv pip install --system --no-deps
//! --compile-bytecode` of them (uv 0.13.9 from that index, installed into /opt/uv; `run` steps
//! are emulated for arm64). The three images are built for the platform, then `/usr/local` and
//! the interpreter's include directory of each are exported with `docker run … tar`, and the
//! lock's tree is diffed with pip's and with uv's: the same paths, the same modes, the same
//! bytes, with these rules:
//!
//! * `INSTALLER` names the installer: `layerstack` vs `pip` / `uv` (asserted to be exactly
//!   that), and its RECORD row (hash, size) differs accordingly;
//! * `RECORD` is compared as a set of rows (the order is the installer's);
//! * `.pyc` files are compared without their 16-byte header (it holds the source's mtime,
//!   which is the install time for pip and uv and the wheel's date for layerstack); the code
//!   objects, with their file names, must be identical: equal bytes, or, where marshal's
//!   back-reference flags differ (they follow reference counts in the compiling process; seen
//!   in real packages such as click and starlette), equal code objects as the host's python3
//!   loads them (`same_code`).
//!
//! Where pip and uv disagree with each other, the lock does what pip does, and the comparison
//! with uv allows uv's way (`differences` with `Installer::Uv`):
//!
//! * uv's RECORD lists no `.pyc` and no RECORD signature (`RECORD.jws`, `RECORD.p7s`);
//! * a script in `bin/`: uv's shebang names the interpreter it found (`/usr/local/bin/python`,
//!   a link to `/usr/bin/python3`), so shebangs are compared once links are followed, with
//!   their arguments; uv words a console-script wrapper differently, so a wrapper must import
//!   and call the same object (`from M import F`, `sys.exit(F())`); any other script's body is
//!   the same bytes; the RECORD rows of `bin/` are compared by path;
//! * uv makes every `.data/scripts` file executable, pip keeps the wheel's mode.
//!
//! The wheels are built here, real-world shaped: a namespace package split over two
//! distributions (`lsqns/a`, `lsqns/b`, no `__init__.py`), a dotted mixed-case distribution
//! (`Lsq.Tool`) with console and GUI entry points (one with an extra, one a dotted attribute),
//! `.data/scripts` (a `#!python` script, a `#!pythonw -u` one, a shell script), `.data/headers`,
//! `.data/data`, `.data/purelib` and `.data/platlib`, a module that does not compile; a RECORD
//! signature (`RECORD.jws`, which RECORD does not list); a
//! platform wheel with a compiled CPython extension (`_speed.abi3.so`, prebuilt from
//! `fixtures/lsq-ext/speed.c` for x86_64 and aarch64) and a `.pth` file with an import line
//! and a path line. After the diff, the lock image is used: every package imports, the
//! extension runs, the `.pth` took effect, the scripts run and `pip check` is clean.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use integration_tests::pyindex::{IndexFile, PackageIndex, b64_nopad};
use integration_tests::{Context, Engine, frontend_image};
use sha2::{Digest, Sha256};

const EXT_X86_64: &[u8] = include_bytes!("../fixtures/lsq-ext/_speed.x86_64.so");
const EXT_AARCH64: &[u8] = include_bytes!("../fixtures/lsq-ext/_speed.aarch64.so");

/// A file of a wheel: path, bytes, unix mode.
struct Entry(String, Vec<u8>, u32);

fn entry(path: &str, data: &[u8], mode: u32) -> Entry {
    Entry(path.to_string(), data.to_vec(), mode)
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A wheel: `DIST-VERSION-TAG.whl` (DIST as written: `Lsq.Tool`, like old bdist_wheel), with
/// METADATA, WHEEL, optional entry_points.txt and a RECORD of everything but `unlisted` (a
/// RECORD signature, which RECORD cannot list).
fn wheel(
    project: &str,
    version: &str,
    tag: &str,
    root_is_purelib: bool,
    mut files: Vec<Entry>,
    entry_points: Option<&str>,
    unlisted: Vec<Entry>,
) -> IndexFile {
    let dist = project.replace('-', "_");
    let info = format!("{dist}-{version}.dist-info");
    files.push(entry(
        &format!("{info}/METADATA"),
        format!("Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n").as_bytes(),
        0o644,
    ));
    files.push(entry(
        &format!("{info}/WHEEL"),
        format!(
            "Wheel-Version: 1.0\nGenerator: layerstack-tests\nRoot-Is-Purelib: {root_is_purelib}\nTag: {tag}\n"
        )
        .as_bytes(),
        0o644,
    ));
    if let Some(ep) = entry_points {
        files.push(entry(
            &format!("{info}/entry_points.txt"),
            ep.as_bytes(),
            0o644,
        ));
    }
    let mut record: String = files
        .iter()
        .map(|Entry(p, d, _)| format!("{p},sha256={},{}\n", b64_nopad(&Sha256::digest(d)), d.len()))
        .collect();
    record.push_str(&format!("{info}/RECORD,,\n"));
    files.push(entry(&format!("{info}/RECORD"), record.as_bytes(), 0o644));
    files.extend(unlisted);
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        use zip::write::SimpleFileOptions;
        let mut z = zip::ZipWriter::new(&mut buf);
        for Entry(p, d, mode) in &files {
            let opts = SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .unix_permissions(*mode);
            z.start_file(p.as_str(), opts).expect("zip entry");
            z.write_all(d).expect("zip write");
        }
        z.finish().expect("zip finish");
    }
    IndexFile {
        project: project.to_string(),
        filename: format!("{dist}-{version}-{tag}.whl"),
        bytes: buf.into_inner(),
    }
}

/// The wheels of the lock for `arch` (`x86_64`/`aarch64`), as (pin, file).
fn wheels(arch: &str) -> Vec<(String, IndexFile)> {
    let ext = if arch == "aarch64" {
        EXT_AARCH64
    } else {
        EXT_X86_64
    };
    let tool_ep = "[console_scripts]\nlsq-tool = lsq_tool:main\nlsq-tool-x = lsq_tool:main [extra]\n\n[gui_scripts]\nlsq-gui = lsq_tool:App.run\n";
    let d = "Lsq.Tool-1.0.data";
    let list = vec![
        (
            "lsq-ns-a==1.0",
            wheel(
                "lsq-ns-a",
                "1.0",
                "py3-none-any",
                true,
                vec![entry("lsqns/a/__init__.py", b"A = 'a'\n", 0o644)],
                None,
                vec![entry(
                    "lsq_ns_a-1.0.dist-info/RECORD.jws",
                    b"{\"signatures\": []}\n",
                    0o644,
                )],
            ),
        ),
        (
            "lsq-ns-b==2.0",
            wheel(
                "lsq-ns-b",
                "2.0",
                "py3-none-any",
                true,
                vec![
                    entry("lsqns/b/__init__.py", b"B = 'b'\n", 0o644),
                    entry("lsqns/b/data.json", b"{\"b\": 2}\n", 0o644),
                ],
                None,
                vec![],
            ),
        ),
        (
            "lsq-pth==1.0",
            wheel(
                "lsq-pth",
                "1.0",
                "py3-none-any",
                true,
                vec![
                    entry("lsq_pth.pth", b"import lsq_pth_boot\nlsq_pth_extra\n", 0o644),
                    entry(
                        "lsq_pth_boot.py",
                        b"import os\nos.environ['LSQ_PTH'] = 'booted'\n",
                        0o644,
                    ),
                    entry("lsq_pth_extra/lsq_hidden.py", b"HIDDEN = 'found'\n", 0o644),
                ],
                None,
                vec![],
            ),
        ),
        (
            "Lsq.Tool==1.0",
            wheel(
                "Lsq.Tool",
                "1.0",
                "py3-none-any",
                true,
                vec![
                    entry(
                        "lsq_tool/__init__.py",
                        b"def main():\n    print('lsq-tool main')\n\n\nclass App:\n    @staticmethod\n    def run():\n        print('lsq-gui run')\n",
                        0o644,
                    ),
                    entry("lsq_tool/broken.py", b"def (:\n", 0o644),
                    entry(
                        &format!("{d}/scripts/lsq-raw"),
                        b"#!python\nprint('lsq-raw')\n",
                        0o755,
                    ),
                    entry(
                        &format!("{d}/scripts/lsq-raw-w"),
                        b"#!pythonw -u\nprint('lsq-raw-w')\n",
                        0o644,
                    ),
                    entry(&format!("{d}/scripts/lsq-sh"), b"#!/bin/sh\necho lsq-sh\n", 0o755),
                    entry(&format!("{d}/headers/lsq_tool.h"), b"int lsq_tool;\n", 0o644),
                    entry(
                        &format!("{d}/data/share/lsq-tool/README"),
                        b"data files\n",
                        0o644,
                    ),
                    entry(&format!("{d}/purelib/lsq_tool_pure.py"), b"P = 1\n", 0o644),
                    entry(&format!("{d}/platlib/lsq_tool_plat.py"), b"Q = 1\n", 0o644),
                ],
                Some(tool_ep),
                vec![],
            ),
        ),
        (
            "lsq-ext==1.0",
            wheel(
                "lsq-ext",
                "1.0",
                &format!("cp37-abi3-manylinux_2_17_{arch}"),
                false,
                vec![
                    entry("lsq_ext/__init__.py", b"from ._speed import add\n", 0o644),
                    entry("lsq_ext/_speed.abi3.so", ext, 0o755),
                ],
                None,
                vec![],
            ),
        ),
    ];
    list.into_iter().map(|(p, f)| (p.to_string(), f)).collect()
}

/// PEP 503: `Lsq.Tool` → `lsq-tool` (how uv.lock and pylock.toml spell names).
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A PEP 751 lock of these files (one wheel each), served at `port`.
fn pylock(port: u16, files: &[&IndexFile]) -> String {
    let mut s = String::from(
        "lock-version = '1.0'\nrequires-python = '>=3.8'\ncreated-by = 'layerstack-tests'\n",
    );
    for f in files {
        let version = f.filename.split('-').nth(1).unwrap();
        s.push_str(&format!(
            "\n[[packages]]\nname = '{}'\nversion = '{version}'\n\n[[packages.wheels]]\nurl = 'http://127.0.0.1:{port}/files/{}'\nsize = {}\nhashes = {{sha256 = '{}'}}\n",
            normalize(&f.project),
            f.filename,
            f.bytes.len(),
            sha256_hex(&f.bytes)
        ));
    }
    s
}

/// A file of an exported tree.
#[derive(Debug)]
struct Node {
    mode: u32,
    /// File bytes, or `-> TARGET` for a symlink.
    data: Vec<u8>,
}

/// `/usr/local` and the interpreter's include directory of `image`, as path → node.
fn export(engine: &Engine, platform: &str, image: &str) -> BTreeMap<String, Node> {
    let script = "cd / && inc=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()[\"include\"])') \
                  && for d in usr/local \"${inc#/}\"; do [ -e \"$d\" ] && echo \"$d\"; done | tar -c -T -";
    let out = engine
        .docker([
            "run",
            "--rm",
            "--pull=never",
            "--network=none",
            "--platform",
            platform,
            image,
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("docker run");
    assert!(
        out.status.success(),
        "export of {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut tree = BTreeMap::new();
    let mut ar = tar::Archive::new(&out.stdout[..]);
    for e in ar.entries().expect("tar") {
        let mut e = e.expect("tar entry");
        let path = format!("/{}", e.path().unwrap().display());
        let mode = e.header().mode().unwrap() & 0o7777;
        let kind = e.header().entry_type();
        let data = if kind.is_symlink() {
            format!("-> {}", e.link_name().unwrap().unwrap().display()).into_bytes()
        } else if kind.is_file() {
            let mut v = vec![];
            e.read_to_end(&mut v).unwrap();
            v
        } else {
            continue;
        };
        tree.insert(path, Node { mode, data });
    }
    tree
}

fn record_rows(data: &[u8]) -> BTreeSet<Vec<String>> {
    String::from_utf8_lossy(data)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Whether two `.pyc` files whose bytes differ hold the same code: marshal writes a
/// back-reference (FLAG_REF) for an object depending on its reference count in the compiling
/// process (which strings happen to be interned), so two compilers of the same source can
/// differ in those flags only. The host's python3 loads both (when it reads that bytecode
/// version: the same magic number) and compares the code objects (`==`: bytecode, constants,
/// names, line tables) and every nested code object's `co_filename`. Without a python3 that can
/// read them: false (the bytes decide).
fn same_code(a: &[u8], b: &[u8]) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let (pa, pb) = (dir.path().join("a.pyc"), dir.path().join("b.pyc"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    let script = "import importlib.util, marshal, sys\n\
        def load(p):\n    d = open(p, 'rb').read()\n    \
            assert d[:4] == importlib.util.MAGIC_NUMBER, 'another bytecode version'\n    \
            return marshal.loads(d[16:])\n\
        def names(c):\n    yield c.co_filename\n    \
            for k in c.co_consts:\n        if hasattr(k, 'co_filename'): yield from names(k)\n\
        a, b = load(sys.argv[1]), load(sys.argv[2])\n\
        sys.exit(0 if a == b and list(names(a)) == list(names(b)) else 1)\n";
    std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&pa)
        .arg(&pb)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The installer a lock image is compared with.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Installer {
    /// `python3 -m pip install --no-deps`
    Pip,
    /// `uv pip install --system --no-deps --compile-bytecode`
    Uv,
}

impl Installer {
    fn name(self) -> &'static str {
        match self {
            Installer::Pip => "pip",
            Installer::Uv => "uv",
        }
    }

    /// What this installer writes into `INSTALLER` (uv: no newline).
    fn installer_file(self) -> &'static [u8] {
        match self {
            Installer::Pip => b"pip\n",
            Installer::Uv => b"uv",
        }
    }
}

/// Follows `path`'s symlinks inside `tree` (at most 8 hops): `/usr/local/bin/python` →
/// `/usr/bin/python3` when the base image links it so.
fn resolve<'a>(tree: &'a BTreeMap<String, Node>, mut path: &'a str) -> &'a str {
    for _ in 0..8 {
        match tree.get(path).and_then(|n| n.data.strip_prefix(b"-> ")) {
            Some(t) if t.starts_with(b"/") => path = std::str::from_utf8(t).unwrap_or(path),
            _ => break,
        }
    }
    path
}

/// uv's rule for a script in `bin/` (module doc): the shebangs name the same interpreter once
/// symlinks are followed, with the same arguments; a generated entry-point wrapper imports and
/// calls the same object (uv and pip word the rest of the wrapper differently); any other
/// script's body is the same bytes. None when equivalent, else why not.
fn script_difference(
    uv_tree: &BTreeMap<String, Node>,
    lock_tree: &BTreeMap<String, Node>,
    uv: &[u8],
    lock: &[u8],
) -> Option<String> {
    let split = |d: &[u8]| -> (String, String) {
        let s = String::from_utf8_lossy(d).into_owned();
        match s.split_once('\n') {
            Some((first, rest)) => (first.to_string(), rest.to_string()),
            None => (s, String::new()),
        }
    };
    let ((su, bu), (sl, bl)) = (split(uv), split(lock));
    let interp = |tree, line: &str| -> Option<(String, Vec<String>)> {
        let mut words = line.strip_prefix("#!")?.split_whitespace();
        let exe = resolve(tree, words.next()?).to_string();
        Some((exe, words.map(str::to_string).collect()))
    };
    match (interp(uv_tree, &su), interp(lock_tree, &sl)) {
        (Some(a), Some(b)) if a == b => {}
        (None, None) if su == sl => {}
        _ => return Some(format!("shebang {su:?} (uv) vs {sl:?} (lock)")),
    }
    if bu == bl {
        return None;
    }
    // An entry-point wrapper: `from M import F` and `sys.exit(F())` are what it runs.
    let gist = |body: &str| -> Option<(String, String)> {
        let import = body.lines().find(|l| l.starts_with("from "))?;
        let call = body
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("sys.exit("))?;
        Some((import.to_string(), call.to_string()))
    };
    match (gist(&bu), gist(&bl)) {
        (Some(a), Some(b)) if a == b => None,
        _ => Some(format!("script body {:?} (uv) vs {:?} (lock)", bu, bl)),
    }
}

/// Every difference between the `installer`'s tree and the lock tree, by the rules of the
/// module doc.
fn differences(
    installer: Installer,
    reference: &BTreeMap<String, Node>,
    lock: &BTreeMap<String, Node>,
) -> Vec<String> {
    let mut diffs = vec![];
    let who = installer.name();
    let paths: BTreeSet<&String> = reference.keys().chain(lock.keys()).collect();
    let show = |d: &[u8]| String::from_utf8_lossy(&d[..d.len().min(400)]).into_owned();
    for p in paths {
        let (a, b) = match (reference.get(p), lock.get(p)) {
            (Some(a), Some(b)) => (a, b),
            (Some(_), None) => {
                diffs.push(format!("only {who} installs {p}"));
                continue;
            }
            (None, Some(_)) => {
                diffs.push(format!("only the lock installs {p}"));
                continue;
            }
            (None, None) => unreachable!(),
        };
        // uv makes every file of `.data/scripts` executable; pip keeps the wheel's mode.
        let uv_exec = installer == Installer::Uv && p.starts_with("/usr/local/bin/");
        if a.mode != b.mode && !(uv_exec && a.mode == b.mode | 0o111) {
            diffs.push(format!(
                "{p}: mode {:o} ({who}) vs {:o} (lock)",
                a.mode, b.mode
            ));
        }
        // An installed distribution's own INSTALLER (`…/dist-packages/X.dist-info/INSTALLER`),
        // not one vendored inside a package (setuptools/_vendor/…), which is a plain file.
        let own_installer = p.ends_with(".dist-info/INSTALLER")
            && p.rsplit('/')
                .nth(2)
                .is_some_and(|d| d == "dist-packages" || d == "site-packages");
        if own_installer {
            if a.data != installer.installer_file() || b.data != b"layerstack\n" {
                diffs.push(format!(
                    "{p}: INSTALLER {:?} ({who}) vs {:?} (lock)",
                    show(&a.data),
                    show(&b.data)
                ));
            }
        } else if p.ends_with(".dist-info/RECORD") {
            // The INSTALLER row differs with INSTALLER's bytes: compared by path only. uv
            // records neither `.pyc` files nor a RECORD signature (pip and the lock do), and
            // words its wrappers in `bin/` differently (compared by `script_difference`): for
            // uv those rows are left out, or compared by path.
            let strip = |rows: BTreeSet<Vec<String>>| -> BTreeSet<Vec<String>> {
                rows.into_iter()
                    .filter(|r| {
                        installer == Installer::Pip
                            || !(r[0].ends_with(".pyc")
                                || r[0].ends_with(".dist-info/RECORD.jws")
                                || r[0].ends_with(".dist-info/RECORD.p7s"))
                    })
                    .map(|r| {
                        let by_path = r[0].ends_with(".dist-info/INSTALLER")
                            || (installer == Installer::Uv && r[0].contains("/bin/"));
                        if by_path { vec![r[0].clone()] } else { r }
                    })
                    .collect()
            };
            let (ra, rb) = (strip(record_rows(&a.data)), strip(record_rows(&b.data)));
            for r in ra.difference(&rb) {
                diffs.push(format!("{p}: row only {who} writes: {}", r.join(",")));
            }
            for r in rb.difference(&ra) {
                diffs.push(format!("{p}: row only the lock writes: {}", r.join(",")));
            }
        } else if p.ends_with(".pyc") {
            if a.data.len() < 16 || b.data.len() < 16 || a.data[..4] != b.data[..4] {
                diffs.push(format!("{p}: not the same bytecode version"));
            } else if a.data[16..] != b.data[16..] && !same_code(&a.data, &b.data) {
                diffs.push(format!("{p}: bytecode differs (after the header)"));
            }
        } else if installer == Installer::Uv
            && p.starts_with("/usr/local/bin/")
            && a.data.starts_with(b"#!")
        {
            if let Some(d) = script_difference(reference, lock, &a.data, &b.data) {
                diffs.push(format!("{p}: {d}"));
            }
        } else if a.data != b.data {
            diffs.push(format!(
                "{p}: contents differ\n  {who}:  {:?}\n  lock: {:?}",
                show(&a.data),
                show(&b.data)
            ));
        }
    }
    diffs
}

/// uv, the version the comparison runs (its wheel is taken from PyPI by the host's pip and
/// served on the 127.0.0.1 index: the builds reach only the loopback).
const UV: &str = "uv==0.13.9";

/// `python3 -m pip download -q --no-deps --only-binary=:all: ARGS -d DIR` (the host's pip, from
/// PyPI), which must succeed: the files it wrote into DIR, as index files named by their
/// distribution (the file name's first part).
fn pip_download(args: &[String]) -> Vec<IndexFile> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = std::process::Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--only-binary=:all:",
    ])
    .arg("--disable-pip-version-check")
    .args(args)
    .arg("-d")
    .arg(dir.path());
    let out = integration_tests::exec(&mut cmd, None).expect("python3 -m pip download");
    assert!(
        out.status.success(),
        "pip download {args:?}:\n{}",
        out.stderr
    );
    let mut files: Vec<IndexFile> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let filename = path.file_name().unwrap().to_string_lossy().into_owned();
            IndexFile {
                project: filename.split('-').next().unwrap().to_string(),
                filename,
                bytes: std::fs::read(&path).unwrap(),
            }
        })
        .collect();
    files.sort_by(|a, b| a.filename.cmp(&b.filename));
    files
}

/// uv's wheel for `arch`, served beside the lock's wheels (never in the lock).
fn uv_wheel(arch: &str) -> IndexFile {
    let args = [
        "--platform".to_string(),
        format!("manylinux_2_17_{arch}"),
        UV.to_string(),
    ];
    pip_download(&args).remove(0)
}

/// The three images of one lock, exported.
struct Built {
    /// The lock image's tag (for running it).
    tag: String,
    lock: BTreeMap<String, Node>,
    pip: BTreeMap<String, Node>,
    uv: BTreeMap<String, Node>,
    /// The interpreter's X.Y.
    python: String,
}

/// Three services built for `platform` (`arch`): `bylock` from a lock of `files`, `bypip` and
/// `byuv` installing the same pins from the same 127.0.0.1 index with pip and with uv (uv
/// itself installed into /opt/uv, outside the exported trees). The tags are removed when the
/// returned guard drops.
fn build_all(
    engine: &'static Engine,
    platform: &str,
    arch: &str,
    files: &[(String, IndexFile)],
) -> (Built, impl Drop) {
    let mut served: Vec<IndexFile> = files.iter().map(|(_, f)| f.clone()).collect();
    served.push(uv_wheel(arch));
    let index = PackageIndex::serve_files(&[("simple", served)]);
    let port = index.port;
    let python = engine.python_version("python:3.12-slim");
    // The lock's names (normalized), as `pip install -r` of the lock's pins would spell them:
    // pip puts `.data/headers` under `include/<the requirement's name>`.
    let pins: Vec<String> = files
        .iter()
        .map(|(p, _)| {
            let (name, version) = p.split_once("==").unwrap();
            format!("{}=={version}", normalize(name))
        })
        .collect();
    let url = index.url();
    let pins = pins.join(" ");
    let stack = format!(
        "# syntax={}\n\
         [services.bylock]\n\
         from = \"python:3.12-slim\"\n\
         lock = {{ file = \"pylock.toml\", python-version = \"{python}\" }}\n\
         \n\
         [services.bypip]\n\
         from = \"python:3.12-slim\"\n\
         run = [\"python3 -m pip install --no-deps --no-cache-dir --disable-pip-version-check --index-url {url} {pins}\"]\n\
         \n\
         [services.byuv]\n\
         from = \"python:3.12-slim\"\n\
         run = [\n\
           \"python3 -m pip install -q --no-deps --no-cache-dir --disable-pip-version-check --target /opt/uv --index-url {url} {UV}\",\n\
           \"/opt/uv/bin/uv pip install --system --no-deps --no-cache --compile-bytecode --index-url {url} {pins}\",\n\
         ]\n",
        frontend_image(),
    );
    let lock_text = pylock(port, &files.iter().map(|(_, f)| f).collect::<Vec<_>>());
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("pylock.toml", &lock_text);
    let tag_of = |t: &str| engine.unique_tag(&format!("lockeq-{t}"));
    let (tag_lock, tag_pip, tag_uv) = (tag_of("lock"), tag_of("pip"), tag_of("uv"));
    let tags = engine.tagged([tag_lock.clone(), tag_pip.clone(), tag_uv.clone()]);
    let file = ctx.join("stack.toml");
    for (target, tag) in [
        ("bylock", &tag_lock),
        ("bypip", &tag_pip),
        ("byuv", &tag_uv),
    ] {
        let b = engine
            .try_buildx_build(&[
                "--network=host",
                "--platform",
                platform,
                "-f",
                &file,
                "--target",
                target,
                "-t",
                tag,
                ctx.path_str(),
            ])
            .unwrap_or_else(|b| panic!("{}", b.failure_report()));
        if target == "bylock" {
            let installs = b.progress.matching(" lock group ");
            assert!(!installs.is_empty(), "{}", b.progress.summary());
            for v in installs {
                assert!(
                    v.name.ends_with("(install on linux/amd64)"),
                    "installed on the build platform: {}",
                    v.name
                );
            }
        }
    }
    let built = Built {
        lock: export(engine, platform, &tag_lock),
        pip: export(engine, platform, &tag_pip),
        uv: export(engine, platform, &tag_uv),
        tag: tag_lock,
        python,
    };
    (built, tags)
}

/// The differences of the lock tree from pip's and from uv's (printed, with `what`), asserted
/// empty.
fn assert_equivalent(test: &str, what: &str, built: &Built, compared: impl Fn(&str) -> bool) {
    for (installer, reference) in [(Installer::Pip, &built.pip), (Installer::Uv, &built.uv)] {
        let diffs = differences(installer, reference, &built.lock);
        let n = built.lock.keys().filter(|p| compared(p)).count();
        eprintln!(
            "{test}: {what}: {n} files compared with {}'s install, {} differences",
            installer.name(),
            diffs.len()
        );
        assert!(
            diffs.is_empty(),
            "{test}: {what}: the lock's install differs from {}'s:\n{}",
            installer.name(),
            diffs.join("\n")
        );
    }
}

/// The engine the equivalence tests run on, None (said why) when they cannot run there: an old
/// engine (no mergeop, no multi-platform images), or arm64 without emulation.
fn engine_for(test: &str, arch: &str) -> Option<&'static Engine> {
    let engine = integration_tests::engine_with_frontend(test)?;
    if engine.is_old() {
        eprintln!("{test}: not run on the old engine (no mergeop, no multi-platform images)");
        return None;
    }
    if arch == "aarch64" && !integration_tests::arm64_emulation(engine, test) {
        return None;
    }
    Some(engine)
}

fn equivalence(test: &str, platform: &str, arch: &str) {
    let Some(engine) = engine_for(test, arch) else {
        return;
    };
    let files = wheels(arch);
    let (built, _tags) = build_all(engine, platform, arch, &files);
    let (python, tag_lock) = (&built.python, &built.tag);
    let site = format!("/usr/local/lib/python{python}/dist-packages");
    for must in [
        format!("{site}/lsqns/a/__init__.py"),
        format!("{site}/lsqns/b/data.json"),
        format!("{site}/lsq_pth.pth"),
        format!("{site}/lsq_ext/_speed.abi3.so"),
        format!("{site}/Lsq.Tool-1.0.dist-info/RECORD"),
        format!("{site}/Lsq.Tool-1.0.dist-info/REQUESTED"),
        "/usr/local/bin/lsq-tool".to_string(),
        "/usr/local/bin/lsq-raw".to_string(),
        "/usr/local/share/lsq-tool/README".to_string(),
        format!("/usr/include/python{python}/lsq-tool/lsq_tool.h"),
        format!("{site}/lsq_ns_a-1.0.dist-info/RECORD.jws"),
    ] {
        // The references have every kind of file; the diffs below hold the lock to them.
        assert!(built.pip.contains_key(&must), "pip installed {must}");
        assert!(built.uv.contains_key(&must), "uv installed {must}");
    }
    let what = format!(
        "the lsq-* wheels ({} paths in /usr/local and the include dir)",
        built.lock.len()
    );
    assert_equivalent(test, &what, &built, |p| p.contains("lsq"));

    // The lock image works: namespace packages, the extension, the .pth (its import line ran,
    // its path line is on sys.path), the scripts, pip check.
    let run = ["--network=none", "--platform", platform];
    let out = engine.docker_run_with(
        &run,
        tag_lock,
        &[
            "python3",
            "-c",
            "import os, lsqns.a, lsqns.b, lsq_ext, lsq_hidden, lsq_tool_pure, lsq_tool_plat; \
             print(lsqns.a.A, lsqns.b.B, lsq_ext.add(2, 3), lsq_hidden.HIDDEN, os.environ.get('LSQ_PTH'))",
        ],
    );
    assert_eq!(out.trim(), "a b 5 found booted", "{out}");
    for (cmd, want) in [
        ("lsq-tool", "lsq-tool main"),
        ("lsq-gui", "lsq-gui run"),
        ("lsq-raw", "lsq-raw"),
        ("lsq-sh", "lsq-sh"),
    ] {
        let out = engine.docker_run_with(&run, tag_lock, &[cmd]);
        assert_eq!(out.trim(), want, "{cmd}");
    }
    let check = engine.docker_run_with(&run, tag_lock, &["python3", "-m", "pip", "check"]);
    assert!(check.contains("No broken requirements"), "{check}");
}

/// Real-world locks: three sets of real wheels from PyPI, each dependency-closed, as teams lock
/// them. `web` (compiled pydantic-core and httptools, the console script `uvicorn`),
/// `namespaces` (`jaraco.*` and `backports.*` namespace packages,
/// zope.interface's compiled extension and its `-nspkg.pth`, MarkupSafe and PyYAML with
/// mixed-case names), `tools` (black with its console scripts, mypyc-compiled on x86_64).
const REAL_LOCKS: [(&str, &[&str], &str, &[&str]); 3] = [
    (
        "web",
        &[
            "fastapi==0.115.6",
            "starlette==0.41.3",
            "pydantic==2.10.4",
            "pydantic-core==2.27.2",
            "typing-extensions==4.12.2",
            "annotated-types==0.7.0",
            "anyio==4.7.0",
            "idna==3.10",
            "sniffio==1.3.1",
            "click==8.1.8",
            "uvicorn==0.34.0",
            "h11==0.14.0",
            "httptools==0.6.4",
        ],
        "import fastapi, pydantic, pydantic_core, httptools, uvicorn; print(pydantic.VERSION)",
        &["uvicorn --version"],
    ),
    (
        "namespaces",
        &[
            "zope.interface==7.2",
            "setuptools==75.6.0",
            "jaraco.functools==4.1.0",
            "jaraco.context==6.0.1",
            "jaraco.text==4.0.0",
            "more-itertools==10.5.0",
            "autocommand==2.2.2",
            "inflect==7.4.0",
            "typeguard==4.4.1",
            "typing-extensions==4.12.2",
            "backports.tarfile==1.2.0",
            "markupsafe==3.0.2",
            "pyyaml==6.0.2",
        ],
        "import zope.interface, jaraco.text, jaraco.functools, backports.tarfile, markupsafe, yaml; print(yaml.__with_libyaml__)",
        &[],
    ),
    (
        "tools",
        &[
            "black==24.10.0",
            "click==8.1.8",
            "mypy-extensions==1.0.0",
            "packaging==24.2",
            "pathspec==0.12.1",
            "platformdirs==4.3.6",
        ],
        "import black; print(black.__version__)",
        &["black --version"],
    ),
];

/// The wheels pip picks from PyPI for CPython `python` on `arch` (manylinux), downloaded by the
/// host's pip into a temp dir and served from 127.0.0.1 like the fixture wheels: the builds
/// themselves reach only the loopback index. (pin from the file name, file).
fn real_wheels(pins: &[&str], arch: &str, python: &str) -> Vec<(String, IndexFile)> {
    let v = python.replace('.', "");
    let mut args: Vec<String> = ["--python-version", python, "--implementation", "cp"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for abi in [format!("cp{v}"), "abi3".into(), "none".into()] {
        args.extend(["--abi".to_string(), abi]);
    }
    for p in ["manylinux_2_17", "manylinux2014", "manylinux_2_28"] {
        args.extend(["--platform".to_string(), format!("{p}_{arch}")]);
    }
    args.extend(pins.iter().map(|p| p.to_string()));
    let files: Vec<(String, IndexFile)> = pip_download(&args)
        .into_iter()
        .map(|f| {
            let version = f.filename.split('-').nth(1).unwrap().to_string();
            (format!("{}=={version}", f.project), f)
        })
        .collect();
    assert_eq!(
        files.len(),
        pins.len(),
        "one wheel per pin: {:?}",
        files.iter().map(|f| &f.1.filename).collect::<Vec<_>>()
    );
    files
}

fn real_equivalence(test: &str, platform: &str, arch: &str) {
    let Some(engine) = engine_for(test, arch) else {
        return;
    };
    let python = engine.python_version("python:3.12-slim");
    for (name, pins, imports, commands) in REAL_LOCKS {
        let files = real_wheels(pins, arch, &python);
        let (built, _tags) = build_all(engine, platform, arch, &files);
        let tag_lock = &built.tag;
        let site = format!("/usr/local/lib/python{python}/dist-packages/");
        let compared = built.lock.keys().filter(|p| p.starts_with(&site)).count();
        assert!(compared > 50, "{name}: only {compared} files installed");
        let what = format!(
            "lock `{name}` ({} wheels: {})",
            files.len(),
            files
                .iter()
                .map(|f| f.1.filename.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_equivalent(test, &what, &built, |p| p.starts_with(&site));
        let run = ["--network=none", "--platform", platform];
        engine.docker_run_with(&run, tag_lock, &["python3", "-c", imports]);
        for c in commands {
            engine.docker_run_with(&run, tag_lock, &["sh", "-c", c]);
        }
        let check = engine.docker_run_with(&run, tag_lock, &["python3", "-m", "pip", "check"]);
        assert!(check.contains("No broken requirements"), "{name}: {check}");
    }
}

#[test]
fn real_locks_install_what_pip_installs_on_amd64() {
    real_equivalence(
        "real_locks_install_what_pip_installs_on_amd64",
        "linux/amd64",
        "x86_64",
    );
}

#[test]
fn real_locks_install_what_pip_installs_on_arm64() {
    real_equivalence(
        "real_locks_install_what_pip_installs_on_arm64",
        "linux/arm64",
        "aarch64",
    );
}

#[test]
fn a_lock_installs_what_pip_installs_on_amd64() {
    equivalence(
        "a_lock_installs_what_pip_installs_on_amd64",
        "linux/amd64",
        "x86_64",
    );
}

#[test]
fn a_lock_installs_what_pip_installs_on_arm64() {
    equivalence(
        "a_lock_installs_what_pip_installs_on_arm64",
        "linux/arm64",
        "aarch64",
    );
}

/// The uv rules allow uv's ways and nothing else (no engine needed).
#[test]
fn the_uv_rules_allow_only_what_uv_does_differently() {
    let node = |mode: u32, data: &str| Node {
        mode,
        data: data.as_bytes().to_vec(),
    };
    let wrapper = |shebang: &str, import: &str| {
        format!(
            "#!{shebang}\n# -*- coding: utf-8 -*-\nimport sys\nfrom {import} import main\nif __name__ == '__main__':\n    sys.exit(main())\n"
        )
    };
    let site = "/usr/local/lib/python3.11/dist-packages/t-1.0.dist-info";
    let tree = |installer: &str, script: String, mode: u32, rows: &[&str]| {
        let mut t = BTreeMap::new();
        t.insert(
            "/usr/local/bin/python".into(),
            node(0o777, "-> /usr/bin/python3"),
        );
        t.insert("/usr/local/bin/t".into(), node(mode, &script));
        t.insert(format!("{site}/INSTALLER"), node(0o644, installer));
        t.insert(format!("{site}/RECORD"), node(0o644, &rows.join("\n")));
        t
    };
    let lock_rows = [
        "t/__init__.py,sha256=x,1",
        "t/__pycache__/__init__.cpython-311.pyc,,",
        "t-1.0.dist-info/RECORD.jws,,",
        "../../../bin/t,sha256=l,9",
        "t-1.0.dist-info/INSTALLER,sha256=i,11",
    ];
    let lock = tree(
        "layerstack\n",
        wrapper("/usr/bin/python3", "t"),
        0o644,
        &lock_rows,
    );
    let uv_rows = [
        "t/__init__.py,sha256=x,1",
        "../../../bin/t,sha256=u,8",
        "t-1.0.dist-info/INSTALLER,sha256=v,2",
    ];
    let uv_script = "#!/usr/local/bin/python\n# -*- coding: utf-8 -*-\nimport sys\nfrom t import main\nif __name__ == \"__main__\":\n    if sys.argv[0].endswith(\".exe\"):\n        sys.argv[0] = sys.argv[0][:-4]\n    sys.exit(main())\n";
    let uv = tree("uv", uv_script.into(), 0o755, &uv_rows);
    assert_eq!(differences(Installer::Uv, &uv, &lock), Vec::<String>::new());
    // Not pip's way: mode, INSTALLER, the script, and four RECORD rows (pyc, jws, bin x2).
    assert_eq!(differences(Installer::Pip, &uv, &lock).len(), 7);
    // Another imported module, another interpreter, another module's row: differences.
    let other = tree("uv", wrapper("/usr/local/bin/python", "u"), 0o755, &uv_rows);
    assert_eq!(differences(Installer::Uv, &other, &lock).len(), 1);
    let other = tree("uv", wrapper("/usr/bin/python2", "t"), 0o755, &uv_rows);
    assert_eq!(differences(Installer::Uv, &other, &lock).len(), 1);
    let mut rows = uv_rows.to_vec();
    rows[0] = "t/__init__.py,sha256=y,1";
    let other = tree("uv", uv_script.into(), 0o755, &rows);
    assert_eq!(differences(Installer::Uv, &other, &lock).len(), 2);
    // An executable bit uv did not add (the lock's is 755, uv's 644).
    let lock755 = tree(
        "layerstack\n",
        wrapper("/usr/bin/python3", "t"),
        0o755,
        &lock_rows,
    );
    let uv644 = tree("uv", uv_script.into(), 0o644, &uv_rows);
    assert_eq!(differences(Installer::Uv, &uv644, &lock755).len(), 1);
}
