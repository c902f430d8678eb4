//! The lock is the plan (issue 15): a `pylock.toml` written here drives a real build on the
//! engine. The wheels are built by the test (tiny pure-Python zips, one with a console script)
//! and served by a 127.0.0.1 HTTP server the test starts, which counts every download; the lock
//! names each one with its URL and sha256.
//!
//! What must hold: every package is installed from its wheel (importable, the console script
//! runs, `pip check` is clean, RECORD and INSTALLER are there); each group is its own install
//! vertex, so changing one package re-runs only its group while the others are answered from
//! the cache (and their wheels are not downloaded again); and a wheel whose bytes do not match
//! the lock's sha256 fails the build before any install, with no image tagged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use integration_tests::http::{self, Response};
use integration_tests::pyindex::Wheel;
use integration_tests::{Build, Context, Engine, frontend_image, nonce};
use sha2::{Digest, Sha256};

/// Files served under `/files/NAME`, and how often each was fetched.
#[derive(Clone, Default)]
struct Files {
    bytes: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Files {
    fn serve(&self) -> u16 {
        let me = self.clone();
        http::serve(move |method, path| {
            let Some(name) = path.strip_prefix("/files/") else {
                return Response::not_found();
            };
            let body = me.bytes.lock().unwrap().get(name).cloned();
            match body {
                Some(b) => {
                    if method == "GET" {
                        *me.hits.lock().unwrap().entry(name.to_string()).or_default() += 1;
                    }
                    Response::ok("application/octet-stream", "no-store", b)
                }
                None => Response::not_found(),
            }
        })
    }

    fn put(&self, name: &str, bytes: Vec<u8>) {
        self.bytes.lock().unwrap().insert(name.to_string(), bytes);
    }

    fn hits(&self, name: &str) -> usize {
        self.hits.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A package of the lock: the wheel, and the bytes the lock's sha256 is computed from
/// (the served bytes unless the test corrupts them).
struct Locked {
    wheel: Wheel,
    locked_bytes: Vec<u8>,
}

impl Locked {
    fn new(wheel: Wheel) -> Locked {
        let locked_bytes = wheel.build();
        Locked {
            wheel,
            locked_bytes,
        }
    }
}

/// A PEP 751 lock of `packages`, served at `port`.
fn pylock(port: u16, packages: &[&Locked]) -> String {
    let mut s = String::from(
        "lock-version = '1.0'\nrequires-python = '>=3.8'\ncreated-by = 'layerstack-tests'\n",
    );
    for p in packages {
        let w = &p.wheel;
        s.push_str(&format!(
            "\n[[packages]]\nname = '{}'\nversion = '{}'\n\n[[packages.wheels]]\nurl = 'http://127.0.0.1:{port}/files/{}'\nsize = {}\nhashes = {{sha256 = '{}'}}\n",
            w.name,
            w.version,
            w.filename(),
            p.locked_bytes.len(),
            sha256_hex(&p.locked_bytes)
        ));
    }
    s
}

/// The stack; `python` is the CPython of the base image (the local `python:3.12-slim` of
/// scripts/base-images.sh is Debian's python3, so the test asks it rather than trusting the tag).
fn stack(python: &str) -> String {
    format!(
        "# syntax={}\n\
         [layers.deps]\n\
         from = \"python:3.12-slim\"\n\
         lock = {{ file = \"pylock.toml\", python-version = \"{python}\" }}\n\
         \n\
         [services.app]\n\
         from = \"deps\"\n\
         cmd = [\"lsl-tool\"]\n\
         \n\
         [services.other]\n\
         from = \"python:3.12-slim\"\n\
         run = [\"echo other > /other.txt\"]\n\
         lock = {{ file = \"pylock.toml\", python-version = \"{python}\" }}\n\
         cmd = [\"lsl-tool\"]\n",
        frontend_image()
    )
}

fn build(engine: &Engine, ctx: &Context, tag: &str) -> Result<Build, Box<Build>> {
    build_target(engine, ctx, "app", tag)
}

fn build_target(
    engine: &Engine,
    ctx: &Context,
    target: &str,
    tag: &str,
) -> Result<Build, Box<Build>> {
    let file = ctx.join("stack.toml");
    engine.try_buildx_build(&["-f", &file, "--target", target, "-t", tag, ctx.path_str()])
}

/// The image's layer digests (`RootFS.Layers`).
fn layers(engine: &Engine, tag: &str) -> Vec<String> {
    engine.image_inspect(tag)["RootFS"]["Layers"]
        .as_array()
        .expect("RootFS.Layers")
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// The group install vertex of a package (`… lock group small-07: lsl-core 1.0 (install …`).
fn group_of<'b>(b: &'b Build, package: &str) -> &'b integration_tests::Vertex {
    let hits: Vec<_> = b
        .progress
        .vertices
        .iter()
        .filter(|v| v.name.contains(" lock group ") && v.name.contains(package))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "one install vertex for {package}:\n{}",
        b.progress.summary()
    );
    hits[0]
}

/// Removes the tags it holds when dropped (also when the test fails).
struct Tags<'e>(&'e Engine, Vec<String>);

impl Drop for Tags<'_> {
    fn drop(&mut self) {
        for t in &self.1 {
            self.0.remove_image(t);
        }
    }
}

#[test]
fn a_lock_installs_per_group_rebuilds_one_group_and_rejects_a_corrupted_wheel() {
    let Some(engine) = integration_tests::engine_with_frontend(
        "a_lock_installs_per_group_rebuilds_one_group_and_rejects_a_corrupted_wheel",
    ) else {
        return;
    };
    let n = nonce();
    let files = Files::default();
    let port = files.serve();
    // A file with the nonce in every wheel: new checksums, so nothing comes from an earlier run.
    let with_nonce = |mut w: Wheel| {
        let m = w.name.replace('-', "_");
        w.files
            .push((format!("{m}/nonce.py"), format!("NONCE = {n:?}\n")));
        w
    };
    let core = Locked::new(with_nonce(Wheel::pure("lsl-core", "1.0")));
    let mut tool = with_nonce(Wheel::pure("lsl-tool", "1.0"));
    tool.requires.push("lsl-core==1.0".into());
    tool.scripts
        .push(("lsl-tool".into(), "lsl_tool:main".into()));
    let tool = Locked::new(tool);
    let extra = Locked::new(with_nonce(Wheel::pure("lsl-extra", "1.0")));
    for p in [&core, &tool, &extra] {
        files.put(&p.wheel.filename(), p.locked_bytes.clone());
    }
    let python = engine.python_version("python:3.12-slim");
    let ctx = Context::new()
        .file("stack.toml", &stack(&python))
        .file("pylock.toml", &pylock(port, &[&core, &tool, &extra]));
    let mut tags = Tags(engine, vec![]);

    // 1. The first build installs each package in its group.
    let tag1 = engine.unique_tag("lock-1");
    tags.1.push(tag1.clone());
    let b1 = build(engine, &ctx, &tag1).unwrap_or_else(|b| panic!("{}", b.failure_report()));
    for p in ["lsl-core 1.0", "lsl-tool 1.0", "lsl-extra 1.0"] {
        let v = group_of(&b1, p);
        assert!(!v.cached, "{p} is new: {v:?}");
    }
    // The console script (entry point) runs with the image's python.
    let out = engine.docker_run(&tag1, &[]);
    assert_eq!(out.trim(), "1.0 py3-none-any", "{out}");
    let out = engine.docker_run(
        &tag1,
        &[
            "python3",
            "-c",
            "import lsl_core, lsl_extra, lsl_tool.nonce as n, importlib.metadata as m; \
             d = m.distribution('lsl-tool'); \
             print(lsl_core.__version__, lsl_extra.__version__, n.NONCE, \
             d.read_text('INSTALLER').strip(), len(d.files) > 3, \
             sorted(e.name for e in d.entry_points))",
        ],
    );
    assert_eq!(
        out.trim(),
        format!("1.0 1.0 {n} layerstack True ['lsl-tool']"),
        "{out}"
    );
    let check = engine.docker_run(&tag1, &["python3", "-m", "pip", "check"]);
    assert!(check.contains("No broken requirements"), "{check}");
    // Bytecode compiled for the image's Python at install time.
    let pyc = engine.docker_run(
        &tag1,
        &[
            "python3",
            "-c",
            "import lsl_core, os; print(os.listdir(os.path.dirname(lsl_core.__file__) + '/__pycache__'))",
        ],
    );
    let tag = format!("__init__.cpython-{}.pyc", python.replace('.', ""));
    assert!(pyc.contains(&tag), "{pyc}");
    for p in [&core, &tool, &extra] {
        assert_eq!(files.hits(&p.wheel.filename()), 1, "{}", p.wheel.filename());
    }

    // The same groups in another image (another layer on the same root image, with a step of
    // its own before them): the same vertices, answered from the cache, and the same layers.
    let tag_other = engine.unique_tag("lock-other");
    tags.1.push(tag_other.clone());
    let bo = build_target(engine, &ctx, "other", &tag_other)
        .unwrap_or_else(|b| panic!("{}", b.failure_report()));
    for p in ["lsl-core 1.0", "lsl-tool 1.0", "lsl-extra 1.0"] {
        let v = group_of(&bo, p);
        assert!(v.cached, "{p}: the group of `deps`, shared: {v:?}");
    }
    let base = layers(engine, "python:3.12-slim");
    let (l1, lo) = (layers(engine, &tag1), layers(engine, &tag_other));
    let groups1: Vec<&String> = l1.iter().filter(|l| !base.contains(l)).collect();
    assert_eq!(groups1.len(), 3, "one layer per group: {l1:?}");
    for g in &groups1 {
        assert!(
            lo.contains(g),
            "group layer {g} shared by both images: {lo:?}"
        );
    }
    let out = engine.docker_run(&tag_other, &[]);
    assert_eq!(out.trim(), "1.0 py3-none-any", "{out}");

    // 2. One package changes: only its group runs again.
    let extra2 = Locked::new(with_nonce(Wheel::pure("lsl-extra", "1.1")));
    files.put(&extra2.wheel.filename(), extra2.locked_bytes.clone());
    std::fs::write(
        ctx.path().join("pylock.toml"),
        pylock(port, &[&core, &tool, &extra2]),
    )
    .unwrap();
    let tag2 = engine.unique_tag("lock-2");
    tags.1.push(tag2.clone());
    let b2 = build(engine, &ctx, &tag2).unwrap_or_else(|b| panic!("{}", b.failure_report()));
    let changed = group_of(&b2, "lsl-extra 1.1");
    assert!(!changed.cached, "the changed group runs: {changed:?}");
    for p in ["lsl-core 1.0", "lsl-tool 1.0"] {
        let v = group_of(&b2, p);
        assert!(v.cached, "{p} is unchanged and cached: {v:?}");
    }
    assert_eq!(files.hits(&core.wheel.filename()), 1, "no second download");
    assert_eq!(files.hits(&tool.wheel.filename()), 1, "no second download");
    assert_eq!(files.hits(&extra2.wheel.filename()), 1);
    let out = engine.docker_run(
        &tag2,
        &[
            "python3",
            "-c",
            "import lsl_extra, lsl_core; print(lsl_extra.__version__, lsl_core.__version__)",
        ],
    );
    assert_eq!(out.trim(), "1.1 1.0", "{out}");
    let check = engine.docker_run(&tag2, &["python3", "-m", "pip", "check"]);
    assert!(check.contains("No broken requirements"), "{check}");

    // 3. A wheel whose bytes are not the ones the lock's sha256 names: the build fails at the
    //    download, nothing is installed, no image is tagged.
    let extra3 = Locked::new(with_nonce(Wheel::pure("lsl-extra", "1.2")));
    let mut corrupted = extra3.locked_bytes.clone();
    let mid = corrupted.len() / 2;
    corrupted[mid] ^= 0x55;
    files.put(&extra3.wheel.filename(), corrupted);
    std::fs::write(
        ctx.path().join("pylock.toml"),
        pylock(port, &[&core, &tool, &extra3]),
    )
    .unwrap();
    let tag3 = engine.unique_tag("lock-3");
    tags.1.push(tag3.clone());
    let failed = match build(engine, &ctx, &tag3) {
        Ok(b) => panic!(
            "a corrupted wheel must fail the build:\n{}",
            b.progress.summary()
        ),
        Err(b) => b,
    };
    let err = failed.error_line().unwrap_or_default().to_string();
    assert!(
        err.contains("digest mismatch") || failed.output.stderr.contains("digest mismatch"),
        "the checksum is what fails: {err}\n{}",
        failed.failure_report()
    );
    assert!(
        err.contains(&extra3.wheel.filename())
            || failed.output.stderr.contains(&extra3.wheel.filename()),
        "the error names the wheel: {err}"
    );
    if let Some(v) = failed
        .progress
        .vertices
        .iter()
        .find(|v| v.name.contains("lsl-extra 1.2") && v.name.contains(" lock group "))
    {
        assert!(
            v.completed.is_none() || v.error.is_some(),
            "the install of the corrupted wheel never ran: {v:?}"
        );
    }
    assert!(!engine.image_exists(&tag3), "no image for a failed build");
}

/// A PEP 751 lock whose packages may have several wheels (one per platform), served at `port`.
fn pylock_wheels(port: u16, packages: &[(&str, &str, &[&Locked])]) -> String {
    let mut s = String::from(
        "lock-version = '1.0'\nrequires-python = '>=3.8'\ncreated-by = 'layerstack-tests'\n",
    );
    for (name, version, wheels) in packages {
        s.push_str(&format!(
            "\n[[packages]]\nname = '{name}'\nversion = '{version}'\n"
        ));
        for p in *wheels {
            s.push_str(&format!(
                "\n[[packages.wheels]]\nurl = 'http://127.0.0.1:{port}/files/{}'\nsize = {}\nhashes = {{sha256 = '{}'}}\n",
                p.wheel.filename(),
                p.locked_bytes.len(),
                sha256_hex(&p.locked_bytes)
            ));
        }
    }
    s
}

/// `--platform linux/arm64` from a lock: every install runs on the build platform
/// (linux/amd64, no emulation), the lock's aarch64 wheel is the one selected (its x86_64
/// sibling is never downloaded), and the arm64 image runs (under QEMU) and imports both.
#[test]
fn an_arm64_build_from_a_lock_installs_on_the_build_platform() {
    const TEST: &str = "an_arm64_build_from_a_lock_installs_on_the_build_platform";
    let Some(engine) = integration_tests::engine_with_frontend(TEST) else {
        return;
    };
    if engine.is_old() {
        eprintln!("{TEST}: not applicable on the old engine (no linux/arm64 base images)");
        return;
    }
    if !integration_tests::arm64_emulation(engine, TEST) {
        return;
    }
    let n = nonce();
    let files = Files::default();
    let port = files.serve();
    let python = engine.python_version("python:3.12-slim");
    let cp = format!("cp{}", python.replace('.', ""));
    let with_nonce = |mut w: Wheel| {
        let m = w.name.replace('-', "_");
        w.files
            .push((format!("{m}/nonce.py"), format!("NONCE = {n:?}\n")));
        w
    };
    let mut pure = with_nonce(Wheel::pure("lsa-pure", "1.0"));
    pure.requires.push("lsa-native==1.0".into());
    pure.scripts
        .push(("lsa-pure".into(), "lsa_pure:main".into()));
    let pure = Locked::new(pure);
    // A "native" package: plain .py files in zips tagged for one machine each.
    let native = |arch: &str| {
        Locked::new(with_nonce(Wheel::tagged(
            "lsa-native",
            "1.0",
            &format!("{cp}-{cp}-manylinux_2_17_{arch}"),
        )))
    };
    let (arm, x86) = (native("aarch64"), native("x86_64"));
    for p in [&pure, &arm, &x86] {
        files.put(&p.wheel.filename(), p.locked_bytes.clone());
    }
    let stack = format!(
        "# syntax={}\n\
         [services.armapp]\n\
         from = \"python:3.12-slim\"\n\
         lock = {{ file = \"pylock.toml\", python-version = \"{python}\" }}\n\
         cmd = [\"lsa-pure\"]\n",
        frontend_image()
    );
    let ctx = Context::new().file("stack.toml", &stack).file(
        "pylock.toml",
        &pylock_wheels(
            port,
            &[
                ("lsa-pure", "1.0", &[&pure]),
                ("lsa-native", "1.0", &[&x86, &arm]),
            ],
        ),
    );
    let tag = engine.unique_tag("lock-arm64");
    let _tags = Tags(engine, vec![tag.clone()]);
    let file = ctx.join("stack.toml");
    let b = engine
        .try_buildx_build(&[
            "--platform",
            "linux/arm64",
            "-f",
            &file,
            "-t",
            &tag,
            ctx.path_str(),
        ])
        .unwrap_or_else(|b| panic!("{}", b.failure_report()));
    eprintln!("{TEST}: steps:\n{}", b.progress.summary());

    // No step ran under emulation: the image's steps are the lock's installs, each on the
    // build platform, and the merge (no exec on linux/arm64 at all).
    let installs: Vec<_> = b
        .progress
        .vertices
        .iter()
        .filter(|v| v.name.contains(" lock group "))
        .collect();
    assert!(!installs.is_empty(), "{}", b.progress.summary());
    for v in &installs {
        assert!(
            v.name.ends_with("(install on linux/amd64)"),
            "a lock install not on the build platform: {}\n{}",
            v.name,
            b.progress.summary()
        );
        assert!(!v.cached, "new wheels (nonce): the install ran: {v:?}");
    }
    for v in &b.progress.vertices {
        let step = v.name.starts_with("[service armapp ") && v.name.contains('/');
        if step {
            assert!(
                v.name.ends_with("(install on linux/amd64)") || v.name.ends_with("(merge)"),
                "a step that is neither a lock install on linux/amd64 nor the merge: {}\n{}",
                v.name,
                b.progress.summary()
            );
        }
        assert!(
            !v.name.contains("on linux/arm64"),
            "nothing runs on linux/arm64: {}",
            v.name
        );
    }
    group_of(&b, "lsa-native 1.0");

    // The aarch64 wheel was selected; its x86_64 sibling never downloaded.
    assert_eq!(files.hits(&arm.wheel.filename()), 1, "the aarch64 wheel");
    assert_eq!(files.hits(&x86.wheel.filename()), 0, "not the x86_64 wheel");
    assert_eq!(files.hits(&pure.wheel.filename()), 1);

    // The image is arm64 and runs (QEMU): imports both, the console script runs.
    let inspect = engine.image_inspect(&tag);
    assert_eq!(inspect["Architecture"], "arm64", "{inspect}");
    let arm64 = ["--network=none", "--platform", "linux/arm64"];
    let out = engine.docker_run_with(
        &arm64,
        &tag,
        &[
            "python3",
            "-c",
            "import platform, lsa_native, lsa_pure.nonce as n; \
             print(platform.machine(), lsa_native.WHEEL_TAG, n.NONCE)",
        ],
    );
    assert_eq!(
        out.trim(),
        format!("aarch64 {cp}-{cp}-manylinux_2_17_aarch64 {n}"),
        "{out}"
    );
    let out = engine.docker_run_with(&arm64, &tag, &[]);
    assert_eq!(out.trim(), "1.0 py3-none-any", "{out}");
    let check = engine.docker_run_with(&arm64, &tag, &["python3", "-m", "pip", "check"]);
    assert!(check.contains("No broken requirements"), "{check}");
}

/// A private index: the 127.0.0.1 server answers 401 unless the request carries
/// `Authorization: Bearer TOKEN`. With `auth-secret = "pypi"` and `--secret id=pypi,env=…`
/// (the value is the whole header) the build downloads and installs; without the secret it
/// fails naming it (before any request), and with a wrong token the index's 401 fails the
/// download (Docker 28's BuildKit reads the 401 body as the file: a digest mismatch).
#[test]
fn a_lock_from_a_private_index_downloads_with_the_auth_secret() {
    const TEST: &str = "a_lock_from_a_private_index_downloads_with_the_auth_secret";
    let Some(engine) = integration_tests::engine_with_frontend(TEST) else {
        return;
    };
    let n = nonce();
    let token = format!("tok-{n}");
    let bytes: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
    let (ok_hits, refused) = (Arc::new(Mutex::new(0usize)), Arc::new(Mutex::new(0usize)));
    let port = {
        let (bytes, ok_hits, refused) = (bytes.clone(), ok_hits.clone(), refused.clone());
        let want = format!("Bearer {token}");
        http::serve_with_headers(move |method, path, headers| {
            let Some(name) = path.strip_prefix("/files/") else {
                return Response::not_found();
            };
            let auth = headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.as_str());
            if auth != Some(want.as_str()) {
                *refused.lock().unwrap() += 1;
                return Response::unauthorized();
            }
            match bytes.lock().unwrap().get(name).cloned() {
                Some(b) => {
                    if method == "GET" {
                        *ok_hits.lock().unwrap() += 1;
                    }
                    Response::ok("application/octet-stream", "no-store", b)
                }
                None => Response::not_found(),
            }
        })
    };
    let mut w = Wheel::pure("lsp-private", "1.0");
    w.files
        .push(("lsp_private/nonce.py".into(), format!("NONCE = {n:?}\n")));
    let p = Locked::new(w);
    bytes
        .lock()
        .unwrap()
        .insert(p.wheel.filename(), p.locked_bytes.clone());
    let python = engine.python_version("python:3.12-slim");
    let stack = format!(
        "# syntax={}\n\
         [secrets.pypi]\n\
         \n\
         [services.private]\n\
         from = \"python:3.12-slim\"\n\
         lock = {{ file = \"pylock.toml\", python-version = \"{python}\", auth-secret = \"pypi\" }}\n",
        frontend_image()
    );
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("pylock.toml", &pylock(port, &[&p]));
    let tag = engine.unique_tag("lock-private");
    let _tags = Tags(engine, vec![tag.clone()]);
    let file = ctx.join("stack.toml");
    // `docker buildx build` with the secret's value (if any) in LSL_PYPI_AUTH.
    let build = |value: Option<&str>| -> Result<Build, Box<Build>> {
        let mut args = vec!["--progress=rawjson"];
        if value.is_some() {
            args.extend(["--secret", "id=pypi,env=LSL_PYPI_AUTH"]);
        }
        args.extend(["-f", &file, "-t", &tag, ctx.path_str()]);
        let mut full = vec!["buildx".to_string(), "build".to_string()];
        full.extend(integration_tests::builder::adjust(&args));
        let mut cmd = engine.docker(&full);
        match value {
            Some(v) => cmd.env("LSL_PYPI_AUTH", v),
            None => cmd.env_remove("LSL_PYPI_AUTH"),
        };
        let output = integration_tests::exec(&mut cmd, None).expect("docker buildx build");
        let b = Build {
            command: integration_tests::display_command(&cmd),
            progress: integration_tests::Progress::parse(&output.stderr),
            output,
        };
        if b.success() { Ok(b) } else { Err(Box::new(b)) }
    };

    // 1. Without the secret: a clear failure naming it; nothing downloaded or installed.
    let failed = match build(None) {
        Ok(b) => panic!("no secret, no download:\n{}", b.progress.summary()),
        Err(b) => b,
    };
    let err = failed.error_line().unwrap_or_default().to_string();
    eprintln!("{TEST}: without the secret: {err}");
    // BuildKit before the `source.http.auth` cap (dockerd 26's v0.13): the frontend refuses
    // the lock at its line before anything runs, whatever the secret.
    if err.contains("lacks the `source.http.auth` capability") {
        assert!(err.contains("stack.toml:6"), "{err}");
        assert_eq!(*ok_hits.lock().unwrap() + *refused.lock().unwrap(), 0);
        let again = match build(Some(&format!("Bearer {token}"))) {
            Ok(b) => panic!("refused with the secret too:\n{}", b.progress.summary()),
            Err(b) => b,
        };
        assert!(
            again
                .error_line()
                .unwrap_or_default()
                .contains("source.http.auth"),
            "{}",
            again.failure_report()
        );
        eprintln!("{TEST}: this engine has no source.http.auth: refused at the lock line");
        return;
    }
    assert!(
        err.contains("secret") && err.contains("pypi"),
        "the error names the secret: {err}\n{}",
        failed.failure_report()
    );
    assert_eq!(*ok_hits.lock().unwrap(), 0);
    assert!(!engine.image_exists(&tag));

    assert_eq!(*refused.lock().unwrap(), 0, "no request without the secret");

    // 2. A wrong token: the index refuses it and the download fails (as `invalid response
    //    status 401`, or, where BuildKit keeps the error page, as a digest mismatch).
    let failed = match build(Some("Bearer wrong")) {
        Ok(b) => panic!("a wrong token must fail:\n{}", b.progress.summary()),
        Err(b) => b,
    };
    let err = failed.error_line().unwrap_or_default().to_string();
    eprintln!("{TEST}: with a wrong token: {err}");
    assert!(
        err.contains("401") || err.contains("digest mismatch"),
        "{err}\n{}",
        failed.failure_report()
    );
    assert!(
        *refused.lock().unwrap() >= 1,
        "the index saw the wrong token"
    );
    assert_eq!(*ok_hits.lock().unwrap(), 0);

    // 3. The right token: downloaded once with the header, installed, importable.
    let b = build(Some(&format!("Bearer {token}")))
        .unwrap_or_else(|b| panic!("{}", b.failure_report()));
    assert!(!group_of(&b, "lsp-private 1.0").cached);
    assert_eq!(*ok_hits.lock().unwrap(), 1);
    let out = engine.docker_run(
        &tag,
        &[
            "python3",
            "-c",
            "import lsp_private, lsp_private.nonce as n; print(lsp_private.__version__, n.NONCE)",
        ],
    );
    assert_eq!(out.trim(), format!("1.0 {n}"), "{out}");
    // The token is in no layer nor the config: the image has only the id.
    let config = engine.image_inspect(&tag).to_string();
    assert!(!config.contains(&token), "{config}");
}

/// A lock with a package published only as an sdist (issue 15's sdist fallback): the sdist is
/// fetched by checksum, built into a wheel on the target platform in the image as it is before
/// the lock step (emulated for linux/arm64, and its name says so), and that wheel installed
/// with its group on the build platform; every other package installs from its wheel. The
/// built module records the machine it was built on. A second build is answered from the
/// cache, and a corrupted sdist fails before any build.
#[test]
fn a_lock_with_an_sdist_builds_it_on_the_target_platform() {
    const TEST: &str = "a_lock_with_an_sdist_builds_it_on_the_target_platform";
    let Some(engine) = integration_tests::engine_with_frontend(TEST) else {
        return;
    };
    let arm64 = !engine.is_old() && integration_tests::arm64_emulation(engine, TEST);
    let n = nonce();
    let files = Files::default();
    let port = files.serve();
    let python = engine.python_version("python:3.12-slim");
    // The sdist's version carries the nonce: a new file for BuildKit's checksum cache each run.
    let version = format!(
        "1.0.{}",
        n.bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
            % 1_000_000
    );
    let sdist = integration_tests::pyindex::Sdist::new("lss-src", &version).index_file();
    let mut app = Wheel::pure("lss-app", "1.0");
    app.requires.push(format!("lss-src=={version}"));
    app.files
        .push(("lss_app/nonce.py".into(), format!("NONCE = {n:?}\n")));
    let app = Locked::new(app);
    files.put(&app.wheel.filename(), app.locked_bytes.clone());
    files.put(&sdist.filename, sdist.bytes.clone());
    let lock = |sdist_sha: &str| {
        format!(
            "{}\n[[packages]]\nname = 'lss-src'\nversion = '{version}'\n\n[packages.sdist]\nname = '{}'\nurl = 'http://127.0.0.1:{port}/files/{}'\nsize = {}\nhashes = {{sha256 = '{sdist_sha}'}}\n",
            pylock(port, &[&app]),
            sdist.filename,
            sdist.filename,
            sdist.bytes.len(),
        )
    };
    let good = lock(&sha256_hex(&sdist.bytes));
    let stack = format!(
        "# syntax={}\n\
         [stack]\n\
         install-env = {{ PIP_NO_BUILD_ISOLATION = \"0\", PIP_NO_INDEX = \"1\" }}\n\
         \n\
         [services.sdapp]\n\
         from = \"python:3.12-slim\"\n\
         lock = {{ file = \"pylock.toml\", python-version = \"{python}\" }}\n\
         cmd = [\"python3\", \"-c\", \"import platform, lss_src; print(platform.machine(), lss_src.BUILT_ON, lss_src.__version__)\"]\n",
        frontend_image()
    );
    let mut platforms = vec!["linux/amd64"];
    if arm64 {
        platforms.push("linux/arm64");
    }
    for platform in platforms {
        let ctx = Context::new()
            .file("stack.toml", &stack)
            .file("pylock.toml", &good);
        let tag = engine.unique_tag("lock-sdist");
        let _tags = Tags(engine, vec![tag.clone()]);
        let file = ctx.join("stack.toml");
        let args = [
            "--platform",
            platform,
            "-f",
            &file,
            "-t",
            &tag,
            ctx.path_str(),
        ];
        let b = engine
            .try_buildx_build(&args)
            .unwrap_or_else(|b| panic!("{platform}: {}", b.failure_report()));
        eprintln!("{TEST} {platform}: steps:\n{}", b.progress.summary());
        let emulated = if platform == "linux/amd64" {
            ""
        } else {
            ", emulated"
        };
        let want =
            format!("lock: build lss-src {version} from its sdist (on {platform}{emulated})");
        let builds: Vec<_> = b
            .progress
            .vertices
            .iter()
            .filter(|v| v.name.contains(&want))
            .collect();
        assert_eq!(builds.len(), 1, "{want}\n{}", b.progress.summary());
        assert!(!builds[0].cached, "a new sdist: the build ran");
        // Installed with its group on the build platform, like any wheel.
        let install = group_of(&b, &format!("lss-src {version}"));
        assert!(
            install.name.ends_with("(install on linux/amd64)"),
            "{}",
            install.name
        );
        let machine = if platform == "linux/amd64" {
            "x86_64"
        } else {
            "aarch64"
        };
        let run = ["--network=none", "--platform", platform];
        let out = engine.docker_run_with(&run, &tag, &[]);
        assert_eq!(
            out.trim(),
            format!("{machine} {machine} {version}"),
            "{out}"
        );
        let check = engine.docker_run_with(
            &run,
            &tag,
            &["sh", "-c", "python3 -m pip check && cat $(python3 -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')/lss_src-*.dist-info/INSTALLER"],
        );
        assert!(check.contains("No broken requirements"), "{check}");
        assert!(check.contains("layerstack"), "{check}");
        // Again: every step from the cache, the sdist not fetched again.
        let fetched = files.hits(&sdist.filename);
        let again = engine
            .try_buildx_build(&args)
            .unwrap_or_else(|b| panic!("{platform}: {}", b.failure_report()));
        let ran: Vec<_> = again
            .progress
            .vertices
            .iter()
            .filter(|v| v.name.starts_with("[service sdapp 1/1]") && v.ran())
            .collect();
        assert!(
            ran.is_empty(),
            "re-ran: {ran:?}\n{}",
            again.progress.summary()
        );
        assert_eq!(
            files.hits(&sdist.filename),
            fetched,
            "the sdist was fetched again"
        );
    }
    // A corrupted sdist (the lock's sha256 is of other bytes): the build fails on the
    // checksum, before anything is built, and no image is tagged.
    let bad = lock(&sha256_hex(b"not the sdist"));
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("pylock.toml", &bad);
    let tag = engine.unique_tag("lock-sdist-bad");
    let _tags = Tags(engine, vec![tag.clone()]);
    let file = ctx.join("stack.toml");
    let b = engine
        .try_buildx_build(&["-f", &file, "-t", &tag, ctx.path_str()])
        .expect_err("a corrupted sdist fails the build");
    let text = format!("{}\n{}", b.output.stdout, b.output.stderr);
    assert!(
        text.contains("digest mismatch") || text.contains("checksum"),
        "{text}"
    );
    assert!(
        !b.progress
            .vertices
            .iter()
            .any(|v| v.name.contains("from its sdist")
                && v.completed.is_some()
                && v.error.is_none()),
        "nothing was built from the corrupted sdist:\n{}",
        b.progress.summary()
    );
    assert!(!engine.image_exists(&tag), "no image is tagged");
}

/// A requirements file pinned with `--hash` and no URLs (`pip-compile --generate-hashes`,
/// `uv export`): the frontend looks each pin up on the file's `--index-url` (a PEP 503 page
/// served on 127.0.0.1, which also lists a version that is not pinned), takes the files whose
/// sha256 is pinned, and installs them as lock groups from checksummed HTTP sources. A pin
/// whose hash no file on the index has fails at its line in the requirements file, before
/// anything is installed.
#[test]
fn a_hash_pinned_requirements_file_is_looked_up_on_its_index() {
    const TEST: &str = "a_hash_pinned_requirements_file_is_looked_up_on_its_index";
    let Some(engine) = integration_tests::engine_with_frontend(TEST) else {
        return;
    };
    let n = nonce();
    let mut a = Wheel::pure("lsreq-a", "1.0");
    a.files
        .push(("lsreq_a/nonce.py".into(), format!("NONCE = {n:?}\n")));
    let a_next = Wheel::pure("lsreq-a", "1.1");
    let b = Wheel::pure("lsreq-b", "2.0");
    let index =
        integration_tests::pyindex::PackageIndex::serve(&[a.clone(), a_next.clone(), b.clone()]);
    let python = engine.python_version("python:3.12-slim");
    let hash = |w: &Wheel| sha256_hex(&w.build());
    let requirements = |b_hash: &str| {
        format!(
            "# uv export --format requirements-txt\n--index-url {}\n\n\
             lsreq-a==1.0 \\\n    --hash=sha256:{} \\\n    --hash=sha256:{}\n\
             lsreq-b==2.0 \\\n    --hash=sha256:{b_hash}\n",
            index.url(),
            "0".repeat(64),
            hash(&a),
        )
    };
    let stack = format!(
        "# syntax={}\n\
         [services.req]\n\
         from = \"python:3.12-slim\"\n\
         lock = {{ file = \"requirements.txt\", python-version = \"{python}\" }}\n",
        frontend_image()
    );
    let tag = engine.unique_tag("lock-req");
    let _tags = Tags(engine, vec![tag.clone()]);

    // 1. A hash no file on the index has: an error at the pin's line, nothing downloaded.
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("requirements.txt", &requirements(&"e".repeat(64)));
    let failed = match build_target(engine, &ctx, "req", &tag) {
        Ok(b) => panic!("an unknown hash must fail:\n{}", b.progress.summary()),
        Err(b) => b,
    };
    let err = failed.output.stderr.clone();
    eprintln!(
        "{TEST}: a hash the index lacks: {}",
        failed.error_line().unwrap_or_default()
    );
    assert!(
        err.contains("requirements.txt:7")
            && err.contains("`lsreq-b==2.0`: none of its 1 hash(es) is a file on")
            && err.contains("stack.toml:4"),
        "{}",
        failed.failure_report()
    );
    assert_eq!(
        index.downloads(&a.filename()) + index.downloads(&b.filename()),
        0
    );
    assert!(!engine.image_exists(&tag));

    // 2. The right hashes: looked up, downloaded by checksum, installed, importable.
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("requirements.txt", &requirements(&hash(&b)));
    let built = build_target(engine, &ctx, "req", &tag)
        .unwrap_or_else(|b| panic!("{}", b.failure_report()));
    built.assert_vertex(&format!("[internal] look up {}/lsreq-a/", index.url()));
    group_of(&built, "lsreq-a 1.0");
    group_of(&built, "lsreq-b 2.0");
    assert_eq!(index.downloads(&a.filename()), 1);
    assert_eq!(
        index.downloads(&a_next.filename()),
        0,
        "only the pinned version"
    );
    let out = engine.docker_run(
        &tag,
        &[
            "python3",
            "-c",
            "import lsreq_a, lsreq_a.nonce as n, lsreq_b; print(lsreq_a.__version__, n.NONCE, lsreq_b.__version__)",
        ],
    );
    assert_eq!(out.trim(), format!("1.0 {n} 2.0"), "{out}");
    eprintln!("{TEST}: {}", out.trim());
}
