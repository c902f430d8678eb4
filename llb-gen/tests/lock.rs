//! Lock files as data: the committed real-world-shaped fixtures in `tests/fixtures/lock`
//! (a uv workspace, a PEP 751 lock, a hashed requirements file) read, selected per target and
//! grouped; malformed locks rejected with file, line and key; `llb-gen lock show` end to end.

use std::path::{Path, PathBuf};
use std::process::Command;

use llb_gen::diag::Diagnostic;
use llb_gen::lock::group::{Rules, group};
use llb_gen::lock::select::{Choice, FileKind, Selection, select};
use llb_gen::lock::target::Target;
use llb_gen::lock::{Lock, read};
use llb_gen::source::SourceFile;

fn fixture(name: &str) -> SourceFile {
    let p = fixtures().join(name);
    SourceFile::new(name, std::fs::read_to_string(&p).expect("fixture"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lock")
}

fn lock(name: &str) -> Lock {
    let f = fixture(name);
    read(&f).unwrap_or_else(|d| panic!("{}", lines(&d, &f)))
}

fn lines(d: &[Diagnostic], f: &SourceFile) -> String {
    d.iter()
        .map(|x| x.one_line(f))
        .collect::<Vec<_>>()
        .join("\n")
}

fn choice(extras: &[&str], groups: &[&str], member: Option<&str>) -> Choice {
    Choice {
        extras: extras.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        member: member.map(str::to_string),
        pins: vec![],
    }
}

fn pick(l: &Lock, platform: &str, c: &Choice) -> Selection {
    let t = Target::parse(platform, "3.12", "").unwrap();
    select(l, &t, c).unwrap_or_else(|d| panic!("{d:?}"))
}

fn file_of<'s>(s: &'s Selection, name: &str) -> &'s llb_gen::lock::select::LockedFile {
    s.files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} not selected"))
}

#[test]
fn uv_workspace_member_extras_and_groups() {
    let l = lock("uv.lock");
    assert_eq!(l.members, ["api", "tax-agent", "worker"]);
    assert_eq!(l.requires_python.as_deref(), Some(">=3.11"));
    assert_eq!(l.environments.len(), 2);
    let s = pick(&l, "linux/amd64", &choice(&["cpu"], &["dev"], Some("api")));
    let names: Vec<&str> = s.files.iter().map(|f| f.name.as_str()).collect();
    // The namespace package pulls its dependency; worker's docopt is not in api's closure.
    assert_eq!(
        names,
        [
            "jaraco-functools",
            "more-itertools",
            "numpy",
            "pyflakes",
            "torch",
            "typing-extensions"
        ]
    );
    assert_eq!(s.local, ["api"]);
    let numpy = file_of(&s, "numpy");
    assert_eq!(
        numpy.filename,
        "numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    );
    assert_eq!(
        numpy.sha256,
        "2312b2aa89e1f43ecea6da6ea9a810d06aae08321609d8dc0d0eda6d946a541b"
    );
    assert_eq!(numpy.size, Some(16_043_185));
    assert!(!numpy.pure);
    // torch from the CPU index, with its local version; the URL keeps its %2B.
    let torch = file_of(&s, "torch");
    assert_eq!(torch.version, "2.5.1+cpu");
    assert!(torch.url.contains("/whl/cpu/torch-2.5.1%2Bcpu-"));
    assert!(file_of(&s, "pyflakes").pure);
    // Without the dev group, typing-extensions is not installed; without the extra, no torch.
    let s = pick(&l, "linux/amd64", &choice(&[], &[], Some("api")));
    assert!(
        s.files
            .iter()
            .all(|f| f.name != "typing-extensions" && f.name != "torch")
    );
}

#[test]
fn uv_per_platform_and_per_variant_torch() {
    let l = lock("uv.lock");
    let arm = pick(&l, "linux/arm64", &choice(&["cpu"], &[], Some("api")));
    let torch = file_of(&arm, "torch");
    assert_eq!(torch.version, "2.5.1");
    assert!(
        torch
            .filename
            .ends_with("manylinux_2_17_aarch64.manylinux2014_aarch64.whl")
    );
    assert!(file_of(&arm, "numpy").filename.contains("aarch64"));
    let cu = pick(&l, "linux/amd64", &choice(&["cu121"], &[], Some("api")));
    assert_eq!(file_of(&cu, "torch").version, "2.5.1+cu121");
    file_of(&cu, "nvidia-cublas-cu12");
    file_of(&cu, "triton");
    let groups = group(&cu.files, &Rules::default());
    let torch = groups.iter().find(|g| g.id == "torch").unwrap();
    let fam: Vec<&str> = torch.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(fam, ["nvidia-cublas-cu12", "torch", "triton"]);
    assert_eq!(torch.size, 780_547_298 + 410_594_774 + 209_508_734);
}

#[test]
fn uv_missing_platform_names_package_platform_and_required_environments() {
    let l = lock("uv.lock");
    let t = Target::parse("linux/arm64", "3.12", "").unwrap();
    let errs = select(&l, &t, &choice(&["cu121"], &[], Some("api"))).unwrap_err();
    let f = fixture("uv.lock");
    let text = lines(&errs, &f);
    assert_eq!(errs.len(), 1, "{text}");
    assert!(
        text.starts_with("uv.lock:140:1: error: package[10]:"),
        "{text}"
    );
    assert!(
        text.contains("`torch` 2.5.1+cu121 fits linux/arm64"),
        "{text}"
    );
    assert!(text.contains("tool.uv.required-environments"), "{text}");
}

#[test]
fn uv_sdist_fallback_is_flagged() {
    let l = lock("uv.lock");
    let s = pick(&l, "linux/amd64", &choice(&[], &[], Some("worker")));
    let docopt = file_of(&s, "docopt");
    assert_eq!(docopt.kind, FileKind::Sdist);
    assert_eq!(docopt.filename, "docopt-0.6.2.tar.gz");
    assert_eq!(s.files.len(), 1);
}

#[test]
fn pylock_markers_extras_groups_and_musl() {
    let l = lock("pylock.api.toml");
    assert_eq!(l.default_groups, ["dev"]);
    assert_eq!(l.extras, ["cpu", "git"]);
    let t = Target::parse("linux/amd64", "3.12", "musl1.2").unwrap();
    let s = select(&l, &t, &choice(&["cpu"], &[], None)).unwrap();
    assert_eq!(
        file_of(&s, "numpy").filename,
        "numpy-2.1.3-cp312-cp312-musllinux_1_1_x86_64.whl"
    );
    // default-groups applies when no group is chosen.
    file_of(&s, "typing-extensions");
    assert_eq!(file_of(&s, "torch").version, "2.5.1+cpu");
    // Without the extra, no torch; the upload-time datetime was read.
    let s = pick(&l, "linux/arm64", &Choice::default());
    assert!(s.files.iter().all(|f| f.name != "torch"));
    let np = l.packages.iter().find(|p| p.name == "numpy").unwrap();
    assert!(np.wheels.iter().all(|w| w.upload_time.is_some()));
}

#[test]
fn pylock_vcs_package_is_unsupported_with_its_location() {
    let l = lock("pylock.api.toml");
    let t = Target::parse("linux/amd64", "3.12", "").unwrap();
    let errs = select(&l, &t, &choice(&["git"], &[], None)).unwrap_err();
    let text = lines(&errs, &fixture("pylock.api.toml"));
    assert!(
        text.starts_with("pylock.api.toml:196:1: error: packages[7]: `tax-tools` comes from vcs"),
        "{text}"
    );
    let errs = select(&l, &t, &choice(&["gpu"], &["lint"], None)).unwrap_err();
    let text = lines(&errs, &fixture("pylock.api.toml"));
    assert!(
        text.contains("no extra `gpu`") && text.contains("no dependency group `lint`"),
        "{text}"
    );
}

#[test]
fn requirements_pins_and_includes() {
    let l = lock("requirements.txt");
    assert_eq!(l.includes.len(), 1);
    assert_eq!(l.includes[0].path, "constraints.txt");
    let s = pick(&l, "linux/amd64", &Choice::default());
    assert_eq!(s.pinned.len(), 4);
    assert_eq!(s.pinned[2].name, "numpy");
    assert_eq!(s.pinned[2].hashes.len(), 11);
}

/// Malformed locks: every error names the file, line and key.
#[test]
fn malformed_locks_report_file_line_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "uv.lock",
            "version = 1\n[[package]]\nname = \"a\"\nversion = 3\n",
            "uv.lock:4:11: error: package[0].version: expected a string",
        ),
        (
            "uv.lock",
            "version = 2\n",
            "uv.lock:1:11: error: version: uv.lock version 2 is not supported",
        ),
        (
            "uv.lock",
            "version = 1\n[[package]]\nname = \"a\"\nsource = { registry = \"x\" }\nwheels = [\n  { url = \"https://x/a-1-py3-none-any.whl\", hash = \"md5:00\" },\n]\n",
            "uv.lock:6:52: error: package[0].wheels[0].hash: hash algorithm `md5` is not supported",
        ),
        (
            "uv.lock",
            "version = 1\n[[package]]\nname = \"a\"\nsource = { svn = \"x\" }\n",
            "uv.lock:4:10: error: package[0].source: unknown source kind `svn`",
        ),
        ("uv.lock", "version = [1\n", "uv.lock:1:"),
        (
            "pylock.toml",
            "lock-version = '2.0'\n",
            "pylock.toml:1:16: error: lock-version: lock-version `2.0` is not supported",
        ),
        (
            "pylock.toml",
            "lock-version = '1.0'\n[[packages]]\nname = 'a'\n[[packages.wheels]]\nurl = 'https://x/a-1-py3-none-any.whl'\nhashes = {md5 = '00'}\n",
            "pylock.toml:6:10: error: packages[0].wheels[0].hashes: no sha256 hash (found: md5)",
        ),
        (
            "pylock.toml",
            "lock-version = '1.0'\ndependency-groups = []\ndefault-groups = ['dev']\n",
            "pylock.toml:3:18: error: default-groups: default group `dev` is not listed",
        ),
    ];
    for (name, text, want) in cases {
        let f = SourceFile::new(*name, *text);
        let errs = read(&f).expect_err(text);
        let got = lines(&errs, &f);
        assert!(
            got.starts_with(want),
            "{name}:\n{text}\nwant: {want}\ngot:  {got}"
        );
    }
}

#[test]
fn bad_wheel_name_in_a_lock_is_reported_at_the_wheel() {
    let text = "version = 1\n[[package]]\nname = \"app\"\nversion = \"0\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"a\" }]\n[[package]]\nname = \"a\"\nversion = \"1\"\nsource = { registry = \"x\" }\nwheels = [\n  { url = \"https://x/a-1-py3-none.whl\", hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\" },\n]\n";
    let f = SourceFile::new("uv.lock", text);
    let l = read(&f).unwrap();
    let t = Target::parse("linux/amd64", "3.12", "").unwrap();
    let errs = select(&l, &t, &Choice::default()).unwrap_err();
    let got = lines(&errs, &f);
    assert!(
        got.starts_with("uv.lock:12:3: error: package[1].wheels[0]: `a-1-py3-none.whl` is not"),
        "{got}"
    );
}

#[test]
fn cli_lock_show() {
    let dir = fixtures();
    let out = Command::new(env!("CARGO_BIN_EXE_llb-gen"))
        .args([
            "lock",
            "show",
            "uv.lock",
            "--platform",
            "linux/arm64",
            "--extra",
            "cpu",
            "--member",
            "api",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("lock: uv.lock (uv), target linux/arm64 (CPython 3.12, glibc 2.36)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("files: 5 (5 wheel(s), 3 pure; 0 sdist(s) to build)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  torch (family, 1 file(s), 87.3 MiB): torch\n"),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_llb-gen"))
        .args([
            "lock",
            "show",
            "uv.lock",
            "--platform",
            "linux/arm64",
            "--extra",
            "cu121",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("uv.lock:140:1: error: package[10]: no wheel or sdist of `torch`"),
        "{stderr}"
    );
}

/// The supported tags equal, in order, what `packaging.tags` computes (fixtures written by
/// `tests/fixtures/lock/sys_tags.py` with pip's vendored packaging).
#[test]
fn supported_tags_match_packaging() {
    for (file, platform, libc) in [
        (
            "sys_tags-cp312-x86_64-glibc2.36.txt",
            "linux/amd64",
            "glibc2.36",
        ),
        (
            "sys_tags-cp312-aarch64-musl1.2.txt",
            "linux/arm64",
            "musl1.2",
        ),
    ] {
        let text = std::fs::read_to_string(fixtures().join(file)).unwrap();
        let want: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let t = Target::parse(platform, "3.12", libc).unwrap();
        let got: Vec<String> = t.supported_tags().iter().map(|t| t.to_string()).collect();
        assert_eq!(got.len(), want.len(), "{file}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{file}: tag {i}");
        }
    }
}

#[test]
fn overlapping_markers_selecting_two_versions_are_an_error() {
    let h = "1111111111111111111111111111111111111111111111111111111111111111";
    let text = format!(
        "lock-version = '1.0'\n\
         [[packages]]\nname = 'a'\nversion = '1'\nmarker = \"platform_machine == 'aarch64'\"\n\
         [[packages.wheels]]\nurl = 'https://x/a-1-py3-none-any.whl'\nhashes = {{sha256 = '{h}'}}\n\
         [[packages]]\nname = 'a'\nversion = '2'\nmarker = \"sys_platform == 'linux'\"\n\
         [[packages.wheels]]\nurl = 'https://x/a-2-py3-none-any.whl'\nhashes = {{sha256 = '{h}'}}\n"
    );
    let f = SourceFile::new("pylock.toml", text.as_str());
    let l = read(&f).unwrap();
    let amd = Target::parse("linux/amd64", "3.12", "").unwrap();
    assert_eq!(
        select(&l, &amd, &Choice::default()).unwrap().files[0].version,
        "2"
    );
    let arm = Target::parse("linux/arm64", "3.12", "").unwrap();
    let got = lines(&select(&l, &arm, &Choice::default()).unwrap_err(), &f);
    assert!(
        got.starts_with("pylock.toml:9:1: error: packages[1]: `a` is selected twice"),
        "{got}"
    );
}

/// Damaged locks (a line dropped, the text cut short, a line repeated) give data or
/// diagnostics, never a panic.
#[test]
fn damaged_fixtures_never_panic() {
    let t = Target::parse("linux/arm64", "3.12", "").unwrap();
    let mut runs = 0;
    for name in ["uv.lock", "pylock.api.toml", "requirements.txt"] {
        let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut variants = Vec::new();
        for i in 0..lines.len() {
            let mut v = lines.clone();
            v.remove(i);
            variants.push(v.join("\n"));
            let mut v = lines.clone();
            v.insert(i, lines[i]);
            variants.push(v.join("\n"));
        }
        for cut in (0..text.len()).step_by(97) {
            if text.is_char_boundary(cut) {
                variants.push(text[..cut].to_string());
            }
        }
        for v in variants {
            let f = SourceFile::new(name, v);
            if let Ok(l) = read(&f) {
                let _ = select(&l, &t, &choice(&["cpu"], &[], None));
            }
            runs += 1;
        }
    }
    assert!(runs > 800, "{runs}");
}
