//! `lock = …` through the whole core: stack → plan (selection and groups for the plan's platform
//! and Python) → LLB (every wheel an HTTP source with its checksum, one network-less install
//! per group on the root base image, merged onto the image), and the errors at the `lock` line.

use std::collections::BTreeMap;

use llb_gen::convert::{NoImages, convert};
use llb_gen::plan::{BuildOptions, StepKind};
use llb_gen::platform::Platform;
use llb_gen::source::SourceFile;

const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const H3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

fn pylock() -> String {
    format!(
        "lock-version = '1.0'\nrequires-python = '>=3.10'\ncreated-by = 'test'\n\
         [[packages]]\nname = 'lsl-core'\nversion = '1.0'\n\
         [[packages.wheels]]\nurl = 'https://files.example/lsl_core-1.0-py3-none-any.whl'\nsize = 1000\nhashes = {{sha256 = '{H1}'}}\n\
         [[packages]]\nname = 'lsl-tool'\nversion = '1.0'\n\
         [[packages.wheels]]\nurl = 'https://files.example/lsl_tool-1.0-py3-none-any.whl'\nhashes = {{sha256 = '{H2}'}}\n\
         [[packages]]\nname = 'lsl-native'\nversion = '2.0'\n\
         [[packages.wheels]]\nurl = 'https://files.example/lsl_native-2.0-cp312-cp312-manylinux_2_17_x86_64.whl'\nhashes = {{sha256 = '{H3}'}}\n"
    )
}

const STACK: &str = "[layers.base]\nfrom = \"python:3.12-slim\"\nlock = \"pylock.toml\"\n\n\
                     [layers.other]\nfrom = \"python:3.12-slim\"\napt = [\"curl\"]\nenv = { X = \"1\" }\nlock = \"pylock.toml\"\n\n\
                     [services.app]\nfrom = \"base\"\ncmd = [\"lsl-tool\"]\n\n\
                     [services.other-app]\nfrom = \"other\"\n";

fn opts(target: &str, platform: Platform, merge: bool) -> BuildOptions {
    let mut lock_files = BTreeMap::new();
    lock_files.insert("pylock.toml".to_string(), Some(pylock()));
    BuildOptions {
        target: Some(target.into()),
        platform,
        merge,
        lock_files,
        ..BuildOptions::default()
    }
}

fn llb(target: &str, merge: bool) -> (llb_gen::pb::Definition, String) {
    let file = SourceFile::new("stack.toml", STACK);
    let o = opts(target, Platform::linux_amd64(), merge);
    let (_, plan) =
        llb_gen::load(&file, &o).unwrap_or_else(|e| panic!("{}", e.diagnostics.render(&e.file)));
    let out = convert(&plan, &o, &NoImages, &file).expect("converts");
    let text = llb_gen::llb::dump(&out.definition);
    (out.definition, text)
}

/// Digest of the vertex whose progress name contains `name`.
fn digest_named(def: &llb_gen::pb::Definition, name: &str) -> String {
    let hits: Vec<&String> = def
        .metadata
        .iter()
        .filter(|(_, m)| {
            m.description
                .get("llb.customname")
                .is_some_and(|n| n.contains(name))
        })
        .map(|(d, _)| d)
        .collect();
    assert_eq!(hits.len(), 1, "one vertex named {name:?}");
    hits[0].clone()
}

#[test]
fn the_plan_holds_the_groups_selected_for_the_platform() {
    let file = SourceFile::new("stack.toml", STACK);
    let (_, plan) = llb_gen::load(&file, &opts("app", Platform::linux_amd64(), false)).unwrap();
    let base = &plan.images[0];
    let StepKind::Lock(l) = &base.steps[0].kind else {
        panic!("{:?}", base.steps)
    };
    assert_eq!(l.file, "pylock.toml");
    assert_eq!(l.python_version, "3.12");
    let mut names: Vec<(String, String)> = l
        .groups
        .iter()
        .flat_map(|g| g.files.iter().map(|f| (g.id.clone(), f.name.clone())))
        .collect();
    names.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        names.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
        ["lsl-core", "lsl-native", "lsl-tool"]
    );
    assert!(
        names.iter().all(|(g, _)| g.starts_with("small-")),
        "{names:?}"
    );
}

#[test]
fn every_wheel_is_a_checksummed_http_source_installed_without_network() {
    let (_, text) = llb("app", false);
    for (file, h) in [
        ("lsl_core-1.0-py3-none-any.whl", H1),
        ("lsl_tool-1.0-py3-none-any.whl", H2),
        ("lsl_native-2.0-cp312-cp312-manylinux_2_17_x86_64.whl", H3),
    ] {
        assert!(
            text.contains(&format!("source https://files.example/{file}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("http.checksum: sha256:{h}\n")),
            "{text}"
        );
        assert!(text.contains(&format!("http.filename: {file}\n")), "{text}");
    }
    assert_eq!(
        text.matches(
            "args: python3 /run/layerstack/lock/lock_install.py /run/layerstack/out 3.12 "
        )
        .count(),
        3,
        "{text}"
    );
    assert_eq!(text.matches("network: none").count(), 3, "{text}");
    assert!(text.contains("lock group small-"), "{text}");
    // Without MergeOp: one chained copy per group.
    assert_eq!(text.matches(" (copy)\n").count(), 3, "{text}");
    assert!(!text.contains("(merge)"), "{text}");
    // With MergeOp: one merge of the base and the groups.
    let (_, merged) = llb("app", true);
    assert!(
        merged.contains("lock pylock.toml: 3 packages in 3 groups (merge)"),
        "{merged}"
    );
    assert!(!merged.contains(" (copy)\n"), "{merged}");
}

#[test]
fn the_same_group_is_the_same_vertex_whatever_the_image() {
    // `other` has apt packages and env of its own; its groups still install on the bare root
    // base image with a fixed env, so they are the vertices `base` has.
    let (a, _) = llb("app", true);
    let (b, _) = llb("other-app", true);
    for pkg in ["lsl-core 1.0", "lsl-tool 1.0", "lsl-native 2.0"] {
        assert_eq!(digest_named(&a, pkg), digest_named(&b, pkg), "{pkg}");
    }
}

#[test]
fn a_lock_without_a_wheel_for_the_platform_fails_at_the_lock_line() {
    let file = SourceFile::new("stack.toml", STACK);
    let err = llb_gen::load(
        &file,
        &opts("app", Platform::new("linux", "arm64", None), false),
    )
    .expect_err("no arm64 wheel of lsl-native");
    let text = err.diagnostics.render(&err.file);
    assert!(text.contains("`lsl-native` 2.0"), "{text}");
    assert!(text.contains("linux/arm64"), "{text}");
    assert!(text.contains("stack.toml:3"), "{text}");
    assert!(text.contains("pylock.toml:"), "{text}");
}

#[test]
fn a_missing_lock_file_and_an_unknown_python_are_errors_at_the_lock_line() {
    let file = SourceFile::new("stack.toml", STACK);
    let mut o = opts("app", Platform::linux_amd64(), false);
    o.lock_files.insert("pylock.toml".into(), None);
    let err = llb_gen::load(&file, &o).expect_err("missing");
    let text = err.diagnostics.render(&err.file);
    assert!(
        text.contains("lock file `pylock.toml` is not in the build context"),
        "{text}"
    );

    let stack = "[services.app]\nfrom = \"debian:bookworm-slim\"\nlock = \"pylock.toml\"\n";
    let file = SourceFile::new("stack.toml", stack);
    let err =
        llb_gen::load(&file, &opts("app", Platform::linux_amd64(), false)).expect_err("no version");
    let text = err.diagnostics.render(&err.file);
    assert!(text.contains("Python version is unknown"), "{text}");
    // …which `python-version` gives.
    let stack = "[services.app]\nfrom = \"debian:bookworm-slim\"\nlock = { file = \"pylock.toml\", python-version = \"3.12\" }\n";
    let file = SourceFile::new("stack.toml", stack);
    llb_gen::load(&file, &opts("app", Platform::linux_amd64(), false)).expect("plans");
}

#[test]
fn lock_paths_are_what_the_edge_reads() {
    let file = SourceFile::new("stack.toml", STACK);
    let (stack, _) = llb_gen::parse_checked(&file).unwrap();
    assert_eq!(llb_gen::plan::locks::lock_paths(&stack), ["pylock.toml"]);
}

/// A uv project: `app` (virtual) depends on `lsl-core`, its extra `cpu` on `torch`.
fn uv_lock() -> String {
    format!(
        "version = 1\nrequires-python = \">=3.11\"\n\n\
         [[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = {{ virtual = \".\" }}\n\
         dependencies = [{{ name = \"lsl-core\" }}]\n\n\
         [package.optional-dependencies]\ncpu = [{{ name = \"torch\" }}]\n\n\
         [[package]]\nname = \"lsl-core\"\nversion = \"1.0\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\n\
         wheels = [{{ url = \"https://files.example/lsl_core-1.0-py3-none-any.whl\", hash = \"sha256:{H1}\", size = 1000 }}]\n\n\
         [[package]]\nname = \"torch\"\nversion = \"2.5.1+cpu\"\nsource = {{ registry = \"https://download.pytorch.org/whl/cpu\" }}\n\
         wheels = [{{ url = \"https://download.pytorch.org/whl/cpu/torch-2.5.1%2Bcpu-cp312-cp312-linux_x86_64.whl\", hash = \"sha256:{H2}\", size = 174000000 }}]\n"
    )
}

#[test]
fn a_uv_lock_with_an_extra_installs_the_project_dependencies_in_families() {
    let plan_of = |lock: &str| {
        let stack = format!("[services.app]\nfrom = \"python:3.12-slim\"\nlock = {lock}\n");
        let file = SourceFile::new("stack.toml", stack);
        let mut o = opts("app", Platform::linux_amd64(), true);
        o.lock_files.insert("uv.lock".into(), Some(uv_lock()));
        llb_gen::load(&file, &o)
            .map(|(_, p)| p)
            .map_err(|e| e.diagnostics.render(&e.file))
    };
    let groups = |plan: &llb_gen::plan::Plan| -> Vec<(String, Vec<String>)> {
        match &plan.images[0].steps[0].kind {
            StepKind::Lock(l) => l
                .groups
                .iter()
                .map(|g| {
                    (
                        g.id.clone(),
                        g.files.iter().map(|f| f.filename.clone()).collect(),
                    )
                })
                .collect(),
            k => panic!("{k:?}"),
        }
    };
    let plain = plan_of("\"uv.lock\"").unwrap();
    let g = groups(&plain);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0].1, ["lsl_core-1.0-py3-none-any.whl"]);
    let cpu = plan_of("{ file = \"uv.lock\", extras = [\"cpu\"] }").unwrap();
    let g = groups(&cpu);
    assert!(
        g.iter().any(|(id, files)| id == "torch"
            && files == &["torch-2.5.1+cpu-cp312-cp312-linux_x86_64.whl"]),
        "{g:?}"
    );
    // An extra the project does not have is an error at the lock line.
    let err = plan_of("{ file = \"uv.lock\", extras = [\"gpu\"] }").unwrap_err();
    assert!(
        err.contains("no root of the lock has an extra `gpu`"),
        "{err}"
    );
    assert!(err.contains("stack.toml:3"), "{err}");
}

/// A package the lock has only an sdist of is fetched by checksum, built into a wheel on the
/// target platform in the image as it is before the lock step (emulated for a foreign
/// platform, and the name says so), and that wheel installed with its group.
#[test]
fn a_package_with_only_an_sdist_is_built_on_the_target_platform() {
    let file = SourceFile::new(
        "stack.toml",
        "[services.app]\nfrom = \"python:3.12-slim\"\nindex-url = \"https://pypi.example/simple\"\nlock = \"uv.lock\"\n",
    );
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lock/uv.lock"),
    )
    .unwrap();
    for (platform, how) in [
        (Platform::linux_amd64(), "(on linux/amd64)"),
        (
            Platform::parse("linux/arm64").unwrap(),
            "(on linux/arm64, emulated)",
        ),
    ] {
        let mut o = opts("app", platform.clone(), true);
        o.lock_files.insert("uv.lock".into(), Some(fixture.clone()));
        let (_, plan) = llb_gen::load(&file, &o)
            .unwrap_or_else(|e| panic!("{}", e.diagnostics.render(&e.file)));
        let StepKind::Lock(l) = &plan.images[0].steps[0].kind else {
            panic!("{:?}", plan.images[0].steps[0].kind)
        };
        let sdists: Vec<String> = l.sdists().map(|f| f.filename.clone()).collect();
        assert_eq!(sdists, ["docopt-0.6.2.tar.gz"], "{platform}");
        assert_eq!(l.index_url.as_deref(), Some("https://pypi.example/simple"));
        let out = convert(&plan, &o, &NoImages, &file).expect("converts");
        let text = llb_gen::llb::dump(&out.definition);
        let build = format!("lock: build docopt 0.6.2 from its sdist {how}");
        assert_eq!(text.matches(&build).count(), 1, "{build}\n{text}");
        // The build runs on the target platform with the image's index; the install gets the
        // directory the wheel was built into, not a file name.
        let block = text
            .split("\n\n")
            .find(|b| b.contains(&build))
            .expect("the build vertex");
        assert!(
            block.contains(&format!("platform {platform}")) || block.contains(&platform.id()),
            "{block}"
        );
        assert!(block.contains("https://pypi.example/simple"), "{block}");
        assert!(block.contains("docopt-0.6.2.tar.gz"), "{block}");
        assert!(
            text.contains("source https://files.pythonhosted.org/packages/a2/55/8f8cab2afd404cf578136ef2cc5dfb50baa1761b68c9da1fb1e4eed343c9/docopt-0.6.2.tar.gz")
                || text.contains("docopt-0.6.2.tar.gz"),
            "{text}"
        );
    }
}

/// `auth-secret`: every wheel download carries the secret's id (never its value) as
/// `http.authheadersecret`, with the `source.http.auth` cap; a name that is no `[secrets.NAME]`
/// is an error at the `auth-secret` value.
#[test]
fn an_auth_secret_is_every_wheel_sources_authorization_header() {
    let stack = |secret: &str| {
        format!(
            "[secrets.pypi]\nenv = \"PYPI_AUTH\"\n\n\
             [services.app]\nfrom = \"python:3.12-slim\"\n\
             lock = {{ file = \"pylock.toml\", auth-secret = \"{secret}\" }}\n"
        )
    };
    let file = SourceFile::new("stack.toml", stack("pypi"));
    let o = opts("app", Platform::linux_amd64(), true);
    let (_, plan) =
        llb_gen::load(&file, &o).unwrap_or_else(|e| panic!("{}", e.diagnostics.render(&e.file)));
    let out = convert(&plan, &o, &NoImages, &file).expect("converts");
    let text = llb_gen::llb::dump(&out.definition);
    assert_eq!(
        text.matches("http.authheadersecret: pypi\n").count(),
        3,
        "{text}"
    );
    assert_eq!(text.matches("source https://").count(), 3, "{text}");
    let mut with_auth = 0;
    for m in out.definition.metadata.values() {
        if m.caps.contains_key("source.http") {
            assert!(m.caps.contains_key("source.http.auth"), "{:?}", m.caps);
            with_auth += 1;
        }
    }
    assert_eq!(with_auth, 3);
    // The same lock without the secret: the same wheels, no header secret, no cap.
    let (_, plain) = llb("app", true);
    assert!(!plain.contains("http.authheadersecret"), "{plain}");

    let file = SourceFile::new("stack.toml", stack("pypy"));
    let err = llb_gen::load(&file, &o).expect_err("no such secret");
    let text = err.diagnostics.render(&err.file);
    assert!(
        text.contains("lock `auth-secret = \"pypy\"`: no [secrets.pypy] in the stack"),
        "{text}"
    );
    assert!(text.contains("stack.toml:6"), "{text}");
    assert!(text.contains("did you mean `pypi`?"), "{text}");
    assert_eq!(
        err.diagnostics
            .items
            .first()
            .and_then(|d| d.key.clone())
            .as_deref(),
        Some("services.app.lock.auth-secret"),
        "{text}"
    );
}

/// `member = "…"` of a uv workspace lock: that member's dependency closure only; a name that
/// is not a member, or a lock without members, is an error at the `member` line.
#[test]
fn a_workspace_member_installs_its_own_dependencies_only() {
    let workspace = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lock/uv.lock"),
    )
    .unwrap();
    let plan_of = |lock: &str, text: &str| {
        let stack = format!("[services.app]\nfrom = \"python:3.12-slim\"\nlock = {lock}\n");
        let file = SourceFile::new("stack.toml", stack);
        let mut o = opts("app", Platform::linux_amd64(), true);
        o.lock_files
            .insert("uv.lock".into(), Some(text.to_string()));
        llb_gen::load(&file, &o)
            .map(|(_, p)| p)
            .map_err(|e| e.diagnostics.render(&e.file))
    };
    let names = |plan: &llb_gen::plan::Plan| -> Vec<String> {
        let mut n: Vec<String> = match &plan.images[0].steps[0].kind {
            StepKind::Lock(l) => l
                .groups
                .iter()
                .flat_map(|g| g.files.iter().map(|f| f.name.clone()))
                .collect(),
            k => panic!("{k:?}"),
        };
        n.sort();
        n
    };
    // The whole workspace includes worker's docopt (published only as an sdist, built on the
    // target); api's closure does not.
    let every = names(&plan_of("\"uv.lock\"", &workspace).unwrap());
    assert!(every.contains(&"docopt".to_string()), "{every:?}");
    let worker =
        names(&plan_of("{ file = \"uv.lock\", member = \"worker\" }", &workspace).unwrap());
    assert!(worker.contains(&"docopt".to_string()), "{worker:?}");
    assert!(!worker.contains(&"numpy".to_string()), "{worker:?}");
    let api = names(&plan_of("{ file = \"uv.lock\", member = \"api\" }", &workspace).unwrap());
    assert!(
        !api.contains(&"docopt".to_string()),
        "worker's docopt: {api:?}"
    );
    assert!(api.contains(&"numpy".to_string()), "{api:?}");
    let err = plan_of("{ file = \"uv.lock\", member = \"apі\" }", &workspace).unwrap_err();
    assert!(
        err.contains("is not a workspace member of `uv.lock` (members: api, tax-agent, worker)"),
        "{err}"
    );
    assert!(err.contains("stack.toml:3"), "{err}");
    assert!(err.contains("services.app.lock.member"), "{err}");
    let err = plan_of("{ file = \"uv.lock\", member = \"workr\" }", &workspace).unwrap_err();
    assert!(err.contains("did you mean `worker`?"), "{err}");
    let err = plan_of("{ file = \"uv.lock\", member = \"api\" }", &uv_lock()).unwrap_err();
    assert!(
        err.contains("is not a workspace member of `uv.lock` (members: )")
            || err.contains("not a uv workspace lock"),
        "{err}"
    );
}

/// A file name from a lock becomes a path in the build: one that is not a plain name (a `/`,
/// `..`, a control character, also when percent-decoded from the URL) or an sdist that is not
/// an archive pip builds is an error at the lock's line, never a path.
#[test]
fn a_lock_file_name_that_is_not_a_plain_name_is_an_error_at_its_line() {
    let file = SourceFile::new(
        "stack.toml",
        "[services.app]\nfrom = \"python:3.12-slim\"\nlock = \"pylock.toml\"\n",
    );
    let sha = "a".repeat(64);
    for (entry, want) in [
        (
            format!(
                "[packages.sdist]\nname = '../../evil.tar.gz'\nurl = 'https://x/e.tar.gz'\nhashes = {{ sha256 = '{sha}' }}\n"
            ),
            "is not a plain file name",
        ),
        (
            format!(
                "[packages.sdist]\nurl = 'https://x/a%2F..%2Fevil.tar.gz'\nhashes = {{ sha256 = '{sha}' }}\n"
            ),
            "is not a plain file name",
        ),
        (
            format!(
                "[packages.sdist]\nurl = 'https://x/evil-1.0.exe'\nhashes = {{ sha256 = '{sha}' }}\n"
            ),
            "is not an sdist archive",
        ),
    ] {
        let lock = format!(
            "lock-version = '1.0'\ncreated-by = 't'\n\n[[packages]]\nname = 'evil'\nversion = '1.0'\n{entry}"
        );
        let mut o = opts("app", Platform::linux_amd64(), true);
        o.lock_files.insert("pylock.toml".into(), Some(lock));
        let err = llb_gen::load(&file, &o).expect_err("refused");
        let text = err.diagnostics.render(&err.file);
        assert!(text.contains(want), "{want}: {text}");
        assert!(text.contains("pylock.toml:"), "{text}");
    }
}

/// A requirements file pinned by hash: the edge lists the index pages it needs
/// (`plan::locks::index_pages`), and with the pages fetched every pin becomes the files its
/// hashes name there, selected for the platform like a pylock package's: each an HTTP source
/// with the pinned checksum. Without the pages (offline) and with a hash the index lacks, the
/// pin is an error at its line.
#[test]
fn a_hash_pinned_requirements_file_installs_the_files_its_hashes_name_on_the_index() {
    let stack = "[services.app]\nfrom = \"python:3.12-slim\"\nlock = { file = \"requirements.txt\", auth-secret = \"idx\" }\n\n[secrets.idx]\n";
    let file = SourceFile::new("stack.toml", stack);
    let reqs = format!(
        "--index-url https://idx.example/simple\n\
         lsl-core==1.0 --hash=sha256:{H1}\n\
         lsl-native==2.0 ; platform_machine != 'riscv64' \\\n    --hash=sha256:{H2} \\\n    --hash=sha256:{H3}\n"
    );
    let page_core = format!(
        "<html><body><a href=\"../../f/lsl_core-1.0-py3-none-any.whl#sha256={H1}\">lsl_core-1.0-py3-none-any.whl</a>\
         <a href=\"../../f/lsl_core-1.1-py3-none-any.whl#sha256={}\">lsl_core-1.1-py3-none-any.whl</a></body></html>",
        "4".repeat(64)
    );
    let page_native = format!(
        "{{\"meta\":{{\"api-version\":\"1.0\"}},\"files\":[\
         {{\"filename\":\"lsl_native-2.0-cp312-cp312-manylinux_2_17_x86_64.whl\",\"url\":\"https://cdn.example/n/x86.whl\",\"hashes\":{{\"sha256\":\"{H2}\"}}}},\
         {{\"filename\":\"lsl_native-2.0-cp312-cp312-manylinux_2_17_aarch64.whl\",\"url\":\"https://cdn.example/n/arm.whl\",\"hashes\":{{\"sha256\":\"{H3}\"}}}}]}}"
    );
    let mut lock_files = BTreeMap::new();
    lock_files.insert("requirements.txt".to_string(), Some(reqs.clone()));
    let (stack_def, _) = llb_gen::parse_checked(&file).unwrap();
    let pages = llb_gen::plan::locks::index_pages(&stack_def, &lock_files);
    let urls: Vec<&str> = pages.iter().map(|p| p.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://idx.example/simple/lsl-core/",
            "https://idx.example/simple/lsl-native/"
        ]
    );
    assert!(
        pages
            .iter()
            .all(|p| p.auth_secret.as_deref() == Some("idx"))
    );

    let opts = |platform: Platform, pages: &[(&str, Option<String>)]| BuildOptions {
        target: Some("app".into()),
        platform,
        merge: true,
        lock_files: lock_files.clone(),
        index_pages: pages
            .iter()
            .map(|(u, t)| (u.to_string(), t.clone()))
            .collect(),
        ..BuildOptions::default()
    };
    let fetched = [
        (urls[0], Some(page_core.clone())),
        (urls[1], Some(page_native.clone())),
    ];
    for (platform, native_url, native_sha) in [
        (Platform::linux_amd64(), "https://cdn.example/n/x86.whl", H2),
        (
            Platform::parse("linux/arm64").unwrap(),
            "https://cdn.example/n/arm.whl",
            H3,
        ),
    ] {
        let o = opts(platform.clone(), &fetched);
        let (_, plan) = llb_gen::load(&file, &o)
            .unwrap_or_else(|e| panic!("{}", e.diagnostics.render(&e.file)));
        let out = convert(&plan, &o, &NoImages, &file).expect("converts");
        let text = llb_gen::llb::dump(&out.definition);
        for (url, sha) in [
            ("https://idx.example/f/lsl_core-1.0-py3-none-any.whl", H1),
            (native_url, native_sha),
        ] {
            let at = text
                .find(url)
                .unwrap_or_else(|| panic!("{platform}: no source {url}:\n{text}"));
            let near = &text[at..(at + 400).min(text.len())];
            assert!(near.contains(&format!("sha256:{sha}")), "{near}");
        }
        assert!(!text.contains("lsl_core-1.1"), "only the pinned file");
    }

    // Offline (no pages), a page that could not be fetched, and a hash no file has.
    let fail = |pages: &[(&str, Option<String>)]| -> String {
        let err = llb_gen::load(&file, &opts(Platform::linux_amd64(), pages)).expect_err("refused");
        err.diagnostics.render(&err.file)
    };
    let text = fail(&[]);
    assert!(
        text.contains("requirements.txt:2") && text.contains("made offline"),
        "{text}"
    );
    let text = fail(&[(urls[0], None), (urls[1], Some(page_native.clone()))]);
    assert!(
        text.contains("requirements.txt:2") && text.contains("could not be read"),
        "{text}"
    );
    assert!(!text.contains("requirements.txt:3"), "{text}");
    let text = fail(&[
        (urls[0], Some(page_core.replace(H1, &"5".repeat(64)))),
        (urls[1], Some(page_native)),
    ]);
    assert!(
        text.contains("requirements.txt:2")
            && text.contains("`lsl-core==1.0`: none of its 1 hash(es) is a file on https://idx.example/simple/lsl-core/"),
        "{text}"
    );
    assert!(text.contains("stack.toml:3"), "{text}");

    // `-r` in a lock would leave the included file's pins out: an error at its line.
    let mut o = opts(Platform::linux_amd64(), &fetched);
    o.lock_files.insert(
        "requirements.txt".into(),
        Some(format!("-c constraints.txt\n-r more.txt\n{reqs}")),
    );
    let err = llb_gen::load(&file, &o).expect_err("refused");
    let text = err.diagnostics.render(&err.file);
    assert!(
        text.contains("requirements.txt:2")
            && text.contains("`-r more.txt`: a requirements lock is one file"),
        "{text}"
    );
    assert!(!text.contains("constraints.txt"), "{text}");
}

/// A service's lock that holds its base layer's packages too (as a uv workspace's lock does):
/// what the base installs from its lock is not installed again; another version of it is an
/// error at the package's line in the service's lock and at the service's `lock` line.
#[test]
fn what_a_layer_below_installs_from_its_lock_is_not_installed_again() {
    let svc_lock = |core: &str| {
        format!(
            "lock-version = '1.0'\nrequires-python = '>=3.10'\ncreated-by = 'test'\n\
             [[packages]]\nname = 'LSL_Core'\nversion = '{core}'\n\
             [[packages.wheels]]\nurl = 'https://files.example/lsl_core-{core}-py3-none-any.whl'\nhashes = {{sha256 = '{H1}'}}\n\
             [[packages]]\nname = 'lsl-extra'\nversion = '1.0'\n\
             [[packages.wheels]]\nurl = 'https://files.example/lsl_extra-1.0-py3-none-any.whl'\nhashes = {{sha256 = '{H2}'}}\n"
        )
    };
    let stack = "[layers.base]\nfrom = \"python:3.12-slim\"\nlock = \"pylock.toml\"\n\n\
                 [services.api]\nfrom = \"base\"\nlock = \"pylock.api.toml\"\n\n\
                 [services.solo]\nfrom = \"python:3.12-slim\"\nlock = \"pylock.api.toml\"\n";
    let file = SourceFile::new("stack.toml", stack);
    let plan_with = |core: &str, target: &str| {
        let mut o = opts(target, Platform::linux_amd64(), true);
        o.lock_files
            .insert("pylock.api.toml".into(), Some(svc_lock(core)));
        llb_gen::load(&file, &o)
    };
    let names = |plan: &llb_gen::plan::Plan, image: &str| -> Vec<String> {
        let img = plan.images.iter().find(|i| i.name == image).unwrap();
        img.steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Lock(l) => Some(l),
                _ => None,
            })
            .flat_map(|l| l.groups.iter().flat_map(|g| g.files.iter()))
            .map(|f| format!("{} {}", f.name, f.version))
            .collect()
    };
    let (_, plan) =
        plan_with("1.0", "api").unwrap_or_else(|e| panic!("{}", e.diagnostics.render(&e.file)));
    assert_eq!(names(&plan, "api"), ["lsl-extra 1.0"]);
    assert!(names(&plan, "base").contains(&"lsl-core 1.0".to_string()));
    // Built on the registry image, the same lock installs both.
    let (_, plan) = plan_with("1.0", "solo").unwrap();
    assert_eq!(names(&plan, "solo"), ["lsl-core 1.0", "lsl-extra 1.0"]);

    let err = plan_with("1.1", "api").expect_err("another version of lsl-core");
    let text = err.diagnostics.render(&err.file);
    assert!(
        text.contains(
            "pylock.api.toml:4: `lsl-core` 1.1: the layer `base` below installs 1.0 from its lock"
        ),
        "{text}"
    );
    assert!(text.contains("stack.toml:7:8"), "{text}");
    assert!(text.contains("pin lsl-core==1.0"), "{text}");
}
