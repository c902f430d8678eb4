//! Planner unit tests.

use super::*;
use crate::diag::Diagnostics;
use crate::platform::Platform;
use crate::source::{SourceFile, Span};
use crate::stack::parse;

fn plan_str(s: &str, target: Option<&str>) -> Result<Plan, Diagnostics> {
    let (stack, d) = parse(&SourceFile::new("stack.toml", s));
    assert!(!d.has_errors(), "{d:?}");
    plan(
        &stack,
        &BuildOptions {
            target: target.map(str::to_string),
            ..BuildOptions::default()
        },
    )
}

#[test]
fn orders_images_and_steps() {
    let p = plan_str(
        r#"
[args]
PY = "3.12"
[layers.base]
from = "python:${PY}-slim"
apt = ["curl git"]
user = "appuser"
workdir = "/app"
[layers.ml]
from = "base"
requirements = ["libs/req.txt"]
pip = ["numpy"]
[services.api]
from = "ml"
copy = ["apps/api"]
cmd = "python -m api"
"#,
        Some("api"),
    )
    .unwrap();
    let names: Vec<&str> = p.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["base", "ml", "api"]);
    assert_eq!(
        p.images[0].base,
        Base::Image {
            reference: "docker.io/library/python:3.12-slim".into(),
            span: p.images[0].base_span()
        }
    );
    let kinds: Vec<String> = p.images[0]
        .steps
        .iter()
        .map(|s| s.kind.describe())
        .collect();
    assert_eq!(
        kinds,
        [
            "apt-get install curl git",
            "useradd appuser",
            "workdir /app"
        ]
    );
    assert_eq!(
        p.images[1].steps[0].kind.describe(),
        "pip install -r libs/req.txt numpy"
    );
    // The api copy is owned by the inherited user.
    assert!(
        matches!(&p.images[2].steps[0].kind, StepKind::Copy { owner: Some(o), .. } if o == "appuser")
    );
    assert_eq!(
        p.images[2].config.cmd.as_ref().unwrap().argv(None),
        ["/bin/sh", "-c", "python -m api"]
    );
}

#[test]
fn reports_cycles_and_unknown_targets() {
    let (stack, _) = parse(&SourceFile::new(
        "s",
        "[layers.a]\nfrom = \"b\"\n[layers.b]\nfrom = \"a\"\n",
    ));
    let d = check_stack(&stack);
    assert_eq!(d.error_count(), 1);
    assert!(d.items[0].message.contains("cycle"), "{:?}", d.items);
    let e = plan_str("[services.api]\nfrom = \"python:3\"\n", Some("apii")).unwrap_err();
    assert!(
        e.items[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("did you mean `api`?"),
        "{:?}",
        e.items
    );
}

#[test]
fn undefined_args_point_into_the_string() {
    let src = "[services.api]\nfrom = \"python:${PYY}\"\n";
    let e = plan_str(src, None).unwrap_err();
    let d = &e.items[0];
    assert_eq!(d.message, "`${PYY}` is not defined");
    assert_eq!(&src[d.span.unwrap().start..d.span.unwrap().end], "${PYY}");
}

#[test]
fn interpolated_from_is_checked_like_a_literal_one() {
    // A service named through an arg: an error, not a panic.
    let e = plan_str(
        "[args]\nB = \"api\"\n[services.api]\nfrom = \"python:3\"\n[services.x]\nfrom = \"${B}\"\n",
        Some("x"),
    )
    .unwrap_err();
    assert!(
        e.items.iter().any(|d| d.message.contains("is a service")),
        "{:?}",
        e.items
    );
    // A cycle that only appears after interpolation: an error, not a stack overflow.
    let e = plan_str(
        "[args]\nSELF = \"a\"\n[layers.a]\nfrom = \"${SELF}\"\n",
        Some("a"),
    )
    .unwrap_err();
    assert!(
        e.items.iter().any(|d| d.message.contains("cycle")),
        "{:?}",
        e.items
    );
    // A venv builder that is a service is reported, not dropped.
    let e = plan_str("[services.b]\nfrom = \"python:3\"\n[services.s]\nfrom = \"python:3\"\npip = [\"six\"]\nvenv = { builder = \"b\" }\n", Some("s")).unwrap_err();
    assert!(
        e.items
            .iter()
            .any(|d| d.key.as_deref() == Some("services.s.venv.builder")),
        "{:?}",
        e.items
    );
}

#[test]
fn arg_defaults_use_earlier_args() {
    let p = plan_str("[args]\nA = \"x\"\nB = \"${A}-y\"\n[services.s]\nfrom = \"img:${B}\"\ncopy = [\"conf/\"]\n", None).unwrap();
    assert!(
        matches!(&p.images[0].base, Base::Image { reference, .. } if reference == "docker.io/library/img:x-y")
    );
    assert!(matches!(&p.images[0].steps[0].kind, StepKind::Copy { src, .. } if src == "conf"));
}

const TORCH: &str = r#"
[torch]
packages = { torch = "2.1.2", torchvision = "0.16.2" }
[torch.index]
cpu = "http://idx/cpu/simple"
cuda = "http://idx/{cuda}/simple"
default = "http://idx/simple"
[variants.cpu]
platforms = ["linux/amd64", "linux/arm64"]
torch = "cpu"
[variants.gpu]
platforms = ["linux/amd64"]
torch = "cuda"
env = { NVIDIA_VISIBLE_DEVICES = "all" }
[variants.gpu.layers.ml]
apt = ["libgomp1"]
[layers.ml]
from = "python:3.11-slim"
torch = true
[services.app]
from = "ml"
"#;

fn torch_plan(target: &str, platform: &str) -> Result<Plan, Diagnostics> {
    let (stack, d) = parse(&SourceFile::new("stack.toml", TORCH));
    assert!(!d.has_errors(), "{d:?}");
    plan(
        &stack,
        &BuildOptions {
            target: Some(target.into()),
            platform: Platform::parse(platform).unwrap(),
            ..BuildOptions::default()
        },
    )
}

fn torch_pip(p: &Plan) -> PipStep {
    p.images[0]
        .steps
        .iter()
        .find_map(|s| match &s.kind {
            StepKind::Pip(p) => Some(p.clone()),
            _ => None,
        })
        .expect("a torch step")
}

#[test]
fn torch_builds_follow_platform_and_variant() {
    let amd = torch_pip(&torch_plan("app", "linux/amd64").unwrap());
    assert_eq!(amd.specs, ["torch==2.1.2+cpu", "torchvision==0.16.2+cpu"]);
    assert_eq!(amd.extra_index_urls, ["http://idx/cpu/simple"]);
    let arm = torch_pip(&torch_plan("app@cpu", "linux/arm64").unwrap());
    assert_eq!(arm.specs, ["torch==2.1.2", "torchvision==0.16.2"]);
    assert_eq!(arm.index_url.as_deref(), Some("http://idx/simple"));
    assert!(arm.extra_index_urls.is_empty());
    let gpu_plan = torch_plan("app@gpu", "linux/amd64").unwrap();
    assert_eq!(gpu_plan.variant.as_deref(), Some("gpu"));
    let gpu = torch_pip(&gpu_plan);
    assert_eq!(
        gpu.specs,
        ["torch==2.1.2+cu118", "torchvision==0.16.2+cu118"]
    );
    assert_eq!(gpu.extra_index_urls, ["http://idx/cu118/simple"]);
    // The overlay added apt to the layer and the variant's env reached the images.
    assert!(
        matches!(&gpu_plan.images[0].steps[0].kind, StepKind::Apt(a) if a.packages == ["libgomp1".to_string()])
    );
    assert!(
        gpu_plan.images[1]
            .config
            .env
            .iter()
            .any(|(k, _)| k == "NVIDIA_VISIBLE_DEVICES")
    );
}

#[test]
fn impossible_torch_combinations_are_errors() {
    let e = torch_plan("app@gpu", "linux/arm64").unwrap_err();
    assert!(
        e.items[0]
            .message
            .contains("variant `gpu` is not built for linux/arm64"),
        "{:?}",
        e.items
    );
    // A CUDA variant that claims arm64 is caught by `check` at the variant's torch line.
    let src = TORCH.replace(
        "platforms = [\"linux/amd64\"]\ntorch = \"cuda\"",
        "platforms = [\"linux/amd64\", \"linux/arm64\"]\ntorch = \"cuda\"",
    );
    let d = crate::check(
        &SourceFile::new("stack.toml", src.clone()),
        &BuildOptions::default(),
    );
    let err = d
        .errors()
        .find(|d| d.message.contains("no `cu118` builds for linux/arm64"))
        .unwrap_or_else(|| panic!("{:?}", d.items));
    assert_eq!(err.key.as_deref(), Some("variants.gpu.torch"));
    let line = &src[err.span.unwrap().start..err.span.unwrap().end];
    assert_eq!(line, "\"cuda\"");
    // A pinned +cpu build on arm64.
    let src = TORCH.replace("torch = \"2.1.2\"", "torch = \"2.1.2+cpu\"");
    let d = crate::check(
        &SourceFile::new("stack.toml", src),
        &BuildOptions::default(),
    );
    assert!(
        d.errors()
            .any(|d| d.message.contains("has no `+cpu` build for linux/arm64")),
        "{:?}",
        d.items
    );
    // An unknown variant lists the others.
    let e = torch_plan("app@cuda", "linux/amd64").unwrap_err();
    assert!(
        e.items.iter().any(|d| d
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("variants: cpu, gpu"))),
        "{:?}",
        e.items
    );
}

#[test]
fn dockerignore() {
    let p = dockerignore_patterns(
        "# comment\n\n/secret.txt\n*.pyc\n!keep.pyc\n ./build/ \nnode_modules/../x\n",
    );
    assert_eq!(p, ["secret.txt", "*.pyc", "!keep.pyc", "build", "x"]);
}

#[test]
fn durations_and_ports() {
    assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
    assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
    assert!(parse_duration("5").is_err());
    assert!(parse_duration("5x").is_err());
    assert_eq!(normalize_port("8000").unwrap(), "8000/tcp");
    assert!(normalize_port("70000").is_err());
    assert_eq!(
        normalize_image_ref("ghcr.io/a/b:v1").unwrap(),
        "ghcr.io/a/b:v1"
    );
    assert_eq!(
        normalize_image_ref("ubuntu").unwrap(),
        "docker.io/library/ubuntu:latest"
    );
    assert!(normalize_image_ref("Bad Ref").is_err());
}

impl PlanImage {
    fn base_span(&self) -> Span {
        self.base.span()
    }
}

/// The steps of the only image of `s`, as their vertex texts.
fn step_texts(s: &str) -> Vec<String> {
    let p = plan_str(s, None).expect("plans");
    p.images[0]
        .steps
        .iter()
        .map(|s| s.kind.describe())
        .collect()
}

#[test]
fn run_and_copy_entries_go_to_the_slot_their_at_names() {
    let texts = step_texts(
        r#"
[layers.base]
from = "mambaorg/micromamba:1.5"
apt = ["man-db"]
user = "app"
workdir = "/app"
conda = { file = "environment.yml", env = "tools" }
pip = ["rich"]
run = [
  { cmd = "python -c 'import rich'", at = "after-python" },
  { cmd = "mkdir -p /usr/share/man/man1", at = "before-apt" },
  "echo default",
  { cmd = "chmod +x entrypoint.sh", at = "after-copy" },
  { cmd = "python --version", at = "after-conda" },
  { cmd = "echo explicit", at = "after-apt" },
  { cmd = "dpkg --add-architecture i386", at = "before-apt" },
]
copy = [
  "entrypoint.sh",
  { src = "constraints.txt", at = "before-python" },
  { src = "extra*.txt", optional = true, at = "after-python" },
]
"#,
    );
    assert_eq!(
        texts,
        [
            "run mkdir -p /usr/share/man/man1",
            "run dpkg --add-architecture i386",
            "apt-get install man-db",
            "useradd app",
            "workdir /app",
            "run echo default",
            "run echo explicit",
            "micromamba install -f environment.yml",
            "run python --version",
            "copy constraints.txt",
            "pip install rich",
            "run python -c 'import rich'",
            "copy entrypoint.sh",
            "copy extra*.txt",
            "run chmod +x entrypoint.sh",
        ]
    );
    let p = plan_str(
        r#"
[layers.base]
from = "mambaorg/micromamba:1.5"
conda = { file = "environment.yml", env = "tools", installer = "mamba" }
run = [{ cmd = "python --version", at = "after-conda" }, "echo plain"]
copy = [{ src = "extra*.txt", optional = true }, "app"]
"#,
        None,
    )
    .unwrap();
    let kinds: Vec<_> = p.images[0].steps.iter().map(|s| &s.kind).collect();
    assert!(matches!(kinds[0], StepKind::Run { activate: None, .. }));
    assert!(matches!(kinds[1], StepKind::Conda(_)));
    assert!(
        matches!(kinds[2], StepKind::Run { activate: Some((i, e)), .. } if i == "mamba" && e == "tools"),
        "{kinds:?}"
    );
    assert!(matches!(kinds[3], StepKind::Copy { optional: true, .. }));
    assert!(matches!(
        kinds[4],
        StepKind::Copy {
            optional: false,
            ..
        }
    ));
    // Optional copies are context reads the context check leaves out.
    let reads = p.context_reads();
    assert!(
        reads
            .iter()
            .any(|r| r.paths == ["extra*.txt"] && r.optional)
    );
    assert!(reads.iter().any(|r| r.paths == ["app"] && !r.optional));
}

#[test]
fn unknown_at_values_and_after_conda_without_conda_are_located_errors() {
    let src = r#"
[layers.base]
from = "debian:bookworm-slim"
run = [{ cmd = "true", at = "after-pyhton" }, { cmd = "true", at = "after-conda" }]
copy = [{ src = "app", at = "before-apt" }]
"#;
    let err = plan_str(src, None).unwrap_err();
    let d: Vec<_> = err.errors().collect();
    assert_eq!(d.len(), 3, "{d:?}");
    let at = |needle: &str| src.find(needle).unwrap();
    assert!(
        d[0].message
            .contains("unknown `at` value `after-pyhton` for a run entry")
    );
    assert_eq!(d[0].key.as_deref(), Some("layers.base.run[0].at"));
    assert_eq!(d[0].span.map(|s| s.start), Some(at("\"after-pyhton\"")));
    assert!(
        d[0].hint
            .as_deref()
            .unwrap()
            .contains("did you mean \"after-python\"?"),
        "{:?}",
        d[0].hint
    );
    assert!(
        d[1].message.contains("needs a `conda` environment"),
        "{d:?}"
    );
    assert_eq!(d[1].key.as_deref(), Some("layers.base.run[1].at"));
    assert!(
        d[2].message
            .contains("unknown `at` value `before-apt` for a copy entry")
    );
    assert_eq!(d[2].key.as_deref(), Some("layers.base.copy[0].at"));
    assert!(
        d[2].hint
            .as_deref()
            .unwrap()
            .contains("\"before-python\", \"after-python\""),
        "{:?}",
        d[2].hint
    );
}

#[test]
fn last_component_patterns_are_listed_and_others_not() {
    use super::resources::last_component_pattern as l;
    assert_eq!(l("scripts/*.sh"), Some(("scripts".into(), "*.sh".into())));
    assert_eq!(
        l("entrypoint.sh*"),
        Some(("".into(), "entrypoint.sh*".into()))
    );
    assert_eq!(l("entrypoint.sh"), None);
    assert_eq!(l("*/run.sh"), None);
}

const ARTIFACTS: &str = r#"
[layers.base]
from = "python:3.12-slim"
[layers.talib]
build-only = true
from = "base"
run = ["make-talib"]
[services.api]
from = "base"
user = { name = "app", uid = 1000 }
copy = [{ from = "talib", src = "/usr/lib/libta_lib.so*", dest = "/usr/lib/", chown = "app", mode = "0755" }]
[services.worker]
from = "python:3.12-slim"
copy = [{ from = "api", src = "/usr/lib/libta_lib.so.0" }]
"#;

#[test]
fn copy_from_plans_the_source_first_and_keeps_the_target_last() {
    let p = plan_str(ARTIFACTS, Some("worker")).unwrap();
    let names: Vec<&str> = p.images.iter().map(|i| i.name.as_str()).collect();
    // A service can be copied from; everything it needs comes before it.
    assert_eq!(names, ["base", "talib", "api", "worker"]);
    let api = &p.images[2];
    let Some(Step {
        kind:
            StepKind::CopyFrom {
                from,
                src,
                dest,
                owner,
                mode,
                exclude,
            },
        ..
    }) = api.steps.last()
    else {
        panic!("{:?}", api.steps)
    };
    assert!(matches!(from, Base::Layer { index: 1, name, .. } if name == "talib"));
    assert_eq!(src, "/usr/lib/libta_lib.so*");
    assert_eq!(dest.as_deref(), Some("/usr/lib/"));
    assert_eq!(owner.as_deref(), Some("app"));
    assert_eq!(*mode, Some(0o755));
    assert!(exclude.is_empty());
    assert!(p.images[1].build_only && !api.build_only);
    assert_eq!(api.copy_sources().count(), 1);
    // Without `chown` an artifact keeps the owner it had, whatever the image's user.
    let worker = &p.images[3];
    assert!(matches!(
        &worker.steps[0].kind,
        StepKind::CopyFrom {
            owner: None,
            dest: None,
            ..
        }
    ));
}

#[test]
fn build_only_images_are_never_the_default_target() {
    let (stack, _) = parse(&SourceFile::new(
        "stack.toml",
        "[services.builder]\nbuild-only = true\nfrom = \"x\"\n[services.api]\nfrom = \"x\"\n",
    ));
    assert_eq!(stack.default_target(), Some("api"));
    let (stack, _) = parse(&SourceFile::new(
        "stack.toml",
        "[layers.a]\nfrom = \"x\"\n[layers.b]\nbuild-only = true\nfrom = \"a\"\n",
    ));
    assert_eq!(stack.default_target(), Some("a"));
    // Still buildable by name.
    let p = plan_str(
        "[layers.a]\nfrom = \"x\"\n[layers.b]\nbuild-only = true\nfrom = \"a\"\n",
        Some("b"),
    )
    .unwrap();
    assert_eq!(p.target, "b");
}

fn errors_of(s: &str) -> Vec<(String, String, Option<String>)> {
    let (stack, d) = parse(&SourceFile::new("stack.toml", s));
    assert!(!d.has_errors(), "{d:?}");
    let e = plan(&stack, &BuildOptions::default()).unwrap_err();
    e.items
        .iter()
        .filter(|d| d.severity == crate::diag::Severity::Error)
        .map(|d| {
            (
                d.message.clone(),
                d.key.clone().unwrap_or_default(),
                d.hint.clone(),
            )
        })
        .collect()
}

#[test]
fn copy_cycles_are_located_errors() {
    // From yourself.
    let e = errors_of("[services.a]\nfrom = \"x\"\ncopy = [{ from = \"a\", src = \"/x\" }]\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "`a` copies from itself");
    assert_eq!(e[0].1, "services.a.copy[0].from");
    // From an image built on you.
    let e = errors_of(
        "[layers.a]\nfrom = \"x\"\ncopy = [\"k\", { from = \"b\", src = \"/x\" }]\n[services.b]\nfrom = \"a\"\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "dependency cycle (→ from, ⇢ copy.from): a ⇢ b → a");
    assert_eq!(e[0].1, "layers.a.copy[1].from");
    // Through two copies: reported once, at the first image's edge.
    let e = errors_of(
        "[services.a]\nfrom = \"x\"\ncopy = [{ from = \"b\", src = \"/x\" }]\n[services.b]\nfrom = \"x\"\ncopy = [{ from = \"a\", src = \"/y\" }]\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "services.a.copy[0].from");
    // `from` cycles read as before.
    let e = errors_of("[layers.a]\nfrom = \"b\"\n[layers.b]\nfrom = \"a\"\n");
    assert_eq!(e[0].0, "`from` cycle: a → b → a");
    assert_eq!(e[0].1, "layers.a.from");
}

#[test]
fn a_deep_chain_of_copies_plans_without_recursion_per_level() {
    let mut s = String::from("[layers.l0]\nfrom = \"x\"\n");
    for i in 1..3000 {
        s.push_str(&format!(
            "[layers.l{i}]\nfrom = \"x\"\ncopy = [{{ from = \"l{}\", src = \"/a\" }}]\n",
            i - 1
        ));
    }
    let p = plan_str(&s, Some("l2999")).unwrap();
    assert_eq!(p.images.len(), 3000);
    assert_eq!(p.images.last().unwrap().name, "l2999");
}

#[test]
fn copy_sources_must_exist_and_paths_be_absolute() {
    let e = errors_of(
        "[layers.talib]\nfrom = \"x\"\n[services.a]\nfrom = \"x\"\ncopy = [{ from = \"talb\", src = \"/x\" }]\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].0.contains("`talb` is not a layer or service"), "{e:?}");
    assert_eq!(e[0].1, "services.a.copy[0].from");
    assert_eq!(e[0].2.as_deref(), Some("did you mean `talib`?"));
    // After interpolation too.
    let e = errors_of(
        "[args]\nB = \"talb\"\n[layers.talib]\nfrom = \"x\"\n[services.a]\nfrom = \"x\"\ncopy = [{ from = \"${B}\", src = \"/x\" }]\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].2.as_deref(), Some("did you mean `talib`?"));
    let e = errors_of(
        "[layers.b]\nfrom = \"x\"\n[services.a]\nfrom = \"x\"\ncopy = [{ from = \"b\", src = \"out/lib\" }, { from = \"b\", src = \"/o/*/x\" }]\n",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].1, "services.a.copy[0].src");
    assert_eq!(e[1].1, "services.a.copy[1].dest");
}

#[test]
fn a_copy_cycle_made_by_a_variant_overlay_is_reported_where_it_was_written() {
    let (stack, d) = parse(&SourceFile::new(
        "stack.toml",
        "[variants.gpu]\n[variants.gpu.layers.base]\ncopy = [{ from = \"api\", src = \"/x\" }]\n\
         [layers.base]\nfrom = \"x\"\n[services.api]\nfrom = \"base\"\n",
    ));
    assert!(!d.has_errors(), "{d:?}");
    let e = plan(
        &stack,
        &BuildOptions {
            target: Some("api@gpu".into()),
            ..BuildOptions::default()
        },
    )
    .unwrap_err();
    let keys: Vec<Option<&str>> = e.items.iter().map(|d| d.key.as_deref()).collect();
    assert_eq!(
        keys,
        [Some("variants.gpu.layers.base.copy[0].from")],
        "{e:?}"
    );
}

#[test]
fn image_overrides_replace_a_base_by_its_normalised_name() {
    let src = r#"
[layers.base]
from = "python:3.12-slim"
[services.api]
from = "base"
cmd = "true"
"#;
    let (stack, d) = parse(&SourceFile::new("stack.toml", src));
    assert!(!d.has_errors(), "{d:?}");
    let opts = BuildOptions {
        target: Some("api".into()),
        image_overrides: [(
            "docker.io/library/python:3.12-slim".to_string(),
            "ghcr.io/o/py:1".to_string(),
        )]
        .into_iter()
        .collect(),
        ..BuildOptions::default()
    };
    let p = plan(&stack, &opts).unwrap();
    assert_eq!(
        p.image_refs().into_iter().collect::<Vec<_>>(),
        ["ghcr.io/o/py:1"]
    );
    // Without overrides the stack's own base stays.
    let p = plan(
        &stack,
        &BuildOptions {
            target: Some("api".into()),
            ..BuildOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        p.image_refs().into_iter().collect::<Vec<_>>(),
        ["docker.io/library/python:3.12-slim"]
    );
}

const NAMED: &str = r#"
[layers.base]
from = "python:3.12-slim"
[services.api]
from = "base"
apt = ["svc-api:./debs/tool.deb"]
requirements = ["requirements.txt", "svc-api:reqs/api.txt"]
pip = ["svc-api:./libs/client", "httpx"]
run = [{ cmd = "make -C @svc-api/native", context = ["svc-api:native"] }]
copy = [
  { context = "svc-api", src = "app/", dest = "/srv/app/" },
  { src = "svc-api:static/*.css", dest = "/srv/static/" },
  "main.py",
]
cmd = "true"
"#;

fn named_opts(names: &[&str]) -> BuildOptions {
    BuildOptions {
        target: Some("api".into()),
        named_contexts: names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    ContextOptions {
                        name: format!("local-{n}"),
                        session_id: String::new(),
                        exclude_patterns: vec!["secret.txt".into()],
                    },
                )
            })
            .collect(),
        ..BuildOptions::default()
    }
}

#[test]
fn named_context_paths_are_planned_with_their_context() {
    let (stack, d) = parse(&SourceFile::new("stack.toml", NAMED));
    assert!(!d.has_errors(), "{d:?}");
    let p = plan(&stack, &named_opts(&["svc-api"])).unwrap();
    let reads: Vec<(Option<String>, Vec<String>, String)> = p
        .context_reads()
        .into_iter()
        .map(|r| (r.context, r.paths, r.key))
        .collect();
    let s = |v: &str| v.to_string();
    let named = Some(s("svc-api"));
    assert_eq!(
        reads,
        vec![
            (
                named.clone(),
                vec![s("debs/tool.deb")],
                s("services.api.apt")
            ),
            (named.clone(), vec![s("native")], s("services.api.run")),
            (
                None,
                vec![s("requirements.txt")],
                s("services.api.requirements")
            ),
            (
                named.clone(),
                vec![s("reqs/api.txt")],
                s("services.api.requirements")
            ),
            (named.clone(), vec![s("libs/client")], s("services.api.pip")),
            (named.clone(), vec![s("app")], s("services.api.copy")),
            (
                named.clone(),
                vec![s("static/*.css")],
                s("services.api.copy")
            ),
            (None, vec![s("main.py")], s("services.api.copy")),
        ]
    );
    let texts: Vec<String> = p.images[1]
        .steps
        .iter()
        .map(|s| s.kind.describe())
        .collect();
    assert!(
        texts.contains(&"apt-get install svc-api:./debs/tool.deb".to_string())
            && texts.iter().any(|t| t.starts_with(
                "pip install -r requirements.txt -r svc-api:reqs/api.txt httpx svc-api:./libs"
            )),
        "{texts:?}"
    );
    assert!(texts.contains(&"copy svc-api:app".to_string()), "{texts:?}");
}

#[test]
fn a_named_context_the_build_was_not_given_is_a_located_error() {
    let (stack, d) = parse(&SourceFile::new("stack.toml", NAMED));
    assert!(!d.has_errors(), "{d:?}");
    let e = plan(&stack, &named_opts(&["svc-apx"])).unwrap_err();
    let errs: Vec<_> = e.errors().collect();
    // Every place that names it: apt, run, requirements, pip, both copies.
    assert_eq!(errs.len(), 6, "{errs:#?}");
    let first = errs
        .iter()
        .find(|d| d.key.as_deref() == Some("services.api.requirements[1]"))
        .expect("the requirements entry");
    assert!(
        first.message.contains("named build context `svc-api`")
            && first.message.contains("did you mean `svc-apx`"),
        "{first:?}"
    );
    assert!(
        first
            .hint
            .as_deref()
            .unwrap()
            .contains("--build-context svc-api=DIR"),
        "{first:?}"
    );
    let file = SourceFile::new("stack.toml", NAMED);
    let at = file.line_col(first.span.unwrap().start).line;
    assert_eq!(at, 7, "the requirements line");
    assert!(
        errs.iter()
            .any(|d| d.key.as_deref() == Some("services.api.copy[0].context"))
    );
}

#[test]
fn copy_context_needs_a_valid_name_and_no_from() {
    let e = errors_of(
        r#"
[layers.b]
from = "alpine"
[services.a]
from = "alpine"
copy = [
  { context = "no/slash", src = "x" },
  { from = "b", context = "c", src = "/x" },
]
"#,
    );
    assert!(e[0].0.contains("not a valid named context"), "{e:?}");
    assert_eq!(e[0].1, "services.a.copy[0].context");
    assert!(e[1].0.contains("not both"), "{e:?}");
}

fn plan_on(s: &str, target: &str, platform: &str) -> Result<Plan, Diagnostics> {
    let (stack, d) = parse(&SourceFile::new("stack.toml", s));
    assert!(!d.has_errors(), "{d:?}");
    plan(
        &stack,
        &BuildOptions {
            target: Some(target.into()),
            platform: Platform::parse(platform).unwrap(),
            ..BuildOptions::default()
        },
    )
}

fn pip_steps(img: &PlanImage) -> Vec<PipStep> {
    img.steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Pip(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

const OVERLAYS: &str = r#"
[stack]
platforms = ["linux/amd64", "linux/arm64"]
[layers.base]
from = "python:3.12-slim"
apt = ["curl"]
env = { WHICH = "default" }
[layers.base.platforms."linux/arm64"]
from = "arm64v8/python:3.12-slim"
apt = ["libgomp1"]
env = { WHICH = "arm64" }
[services.api]
from = "base"
pip = ["fastapi"]
[services.api.platforms.arm64]
pip = ["onnxruntime"]
"#;

#[test]
fn a_platform_overlay_applies_only_to_the_plan_of_its_platform() {
    let amd = plan_on(OVERLAYS, "api", "linux/amd64").unwrap();
    let arm = plan_on(OVERLAYS, "api", "linux/arm64").unwrap();
    let base_ref = |p: &Plan| match &p.images[0].base {
        Base::Image { reference, .. } => reference.clone(),
        b => panic!("{b:?}"),
    };
    assert_eq!(base_ref(&amd), "docker.io/library/python:3.12-slim");
    assert_eq!(base_ref(&arm), "docker.io/arm64v8/python:3.12-slim");
    let apt = |p: &Plan| match &p.images[0].steps[0].kind {
        StepKind::Apt(a) => a.packages.clone(),
        k => panic!("{k:?}"),
    };
    assert_eq!(apt(&amd), ["curl"]);
    assert_eq!(apt(&arm), ["curl", "libgomp1"]);
    let which = |p: &Plan| {
        p.images[0]
            .config
            .env
            .iter()
            .rfind(|(k, _)| k == "WHICH")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(which(&amd).as_deref(), Some("default"));
    assert_eq!(which(&arm).as_deref(), Some("arm64"));
    // `arm64` is the shorthand of linux/arm64.
    assert_eq!(pip_steps(&amd.images[1])[0].specs, ["fastapi"]);
    assert_eq!(
        pip_steps(&arm.images[1])[0].specs,
        ["fastapi", "onnxruntime"]
    );
    // An overlay's `from` (on `base`, for arm64) keeps `base` and what is built on it from
    // cross-installing on arm64; on amd64 (the build platform) nothing differs.
    assert!(
        arm.images
            .iter()
            .all(|i| i.platform_specific && !i.cross_install)
    );
    assert!(
        amd.images
            .iter()
            .all(|i| !i.platform_specific && i.cross_install)
    );
    // An overlay that only adds packages keeps them.
    let only_pip = plan_on(
        "[services.a]\nfrom = \"x\"\n[services.a.platforms.arm64]\napt = [\"gcc\"]\npip = [\"y\"]\n",
        "a",
        "linux/arm64",
    )
    .unwrap();
    assert!(!only_pip.images[0].platform_specific && only_pip.images[0].cross_install);
    // A stack without overlays for a platform plans as before.
    let plain = plan_on("[services.a]\nfrom = \"x\"\n", "a", "linux/arm64").unwrap();
    assert!(!plain.images[0].platform_specific && plain.images[0].cross_install);
}

#[test]
fn python_is_per_image_and_inherited_down_from_chains() {
    let s = r#"
[stack]
python = "python3.11"
[layers.conda]
from = "mambaorg/micromamba:1.5"
python = "/opt/conda/bin/python"
pip = ["numpy"]
[layers.ml]
from = "conda"
pip = ["scipy"]
[services.slim]
from = "python:3.12-slim"
pip = ["fastapi"]
[services.api]
from = "ml"
python = "/opt/conda/envs/api/bin/python"
pip = ["flask"]
[services.tool]
from = "ml"
venv = true
pip = ["click"]
"#;
    let python_of = |target: &str| -> Vec<(String, String)> {
        let p = plan_on(s, target, "linux/amd64").unwrap();
        p.images
            .iter()
            .filter_map(|i| {
                let python = pip_steps(i).first()?.python.clone();
                Some((i.name.clone(), python))
            })
            .chain(p.images.iter().filter_map(|i| {
                i.venv
                    .as_ref()
                    .map(|v| (format!("{} venv", i.name), v.python.clone()))
            }))
            .collect()
    };
    let own = |n: &str, p: &str| (n.to_string(), p.to_string());
    assert_eq!(
        python_of("api"),
        [
            own("conda", "/opt/conda/bin/python"),
            own("ml", "/opt/conda/bin/python"),
            own("api", "/opt/conda/envs/api/bin/python"),
        ]
    );
    assert_eq!(python_of("slim"), [own("slim", "python3.11")]);
    // A venv service on `ml` creates its venv with the inherited interpreter.
    let tool = python_of("tool");
    assert!(
        tool.contains(&own("tool venv", "/opt/conda/bin/python")),
        "{tool:?}"
    );
    // A platform overlay can set it too.
    let p = plan_on(
        "[services.a]\nfrom = \"x\"\npip = [\"y\"]\n[services.a.platforms.\"linux/arm64\"]\npython = \"python3.12\"\n",
        "a",
        "linux/arm64",
    )
    .unwrap();
    assert_eq!(pip_steps(&p.images[0])[0].python, "python3.12");
}

#[test]
fn torch_backend_is_per_image_inherited_and_wins_over_the_variant() {
    let s = r#"
[torch]
packages = { torch = "2.1.2" }
cuda = "cu121"
[variants.cpu]
torch = "cpu"
[variants.rocm]
torch = "rocm5.6"
[layers.gpu]
from = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
torch-backend = "cuda"
[layers.ml]
from = "gpu"
torch = true
[services.cpu]
from = "python:3.11-slim"
torch = true
[services.edge]
from = "python:3.11-slim"
torch = true
torch-backend = "cu121"
[services.edge.platforms."linux/arm64"]
torch-backend = "cpu"
"#;
    let specs = |target: &str, platform: &str| -> Vec<String> {
        let p = plan_on(s, target, platform).unwrap();
        pip_steps(p.images.last().unwrap())[0].specs.clone()
    };
    // The GPU layer's backend reaches the layer built on it, in an otherwise CPU stack …
    assert_eq!(specs("ml", "linux/amd64"), ["torch==2.1.2+cu121"]);
    // … and wins over another variant's backend, while other images follow the variant.
    assert_eq!(specs("ml@rocm", "linux/amd64"), ["torch==2.1.2+cu121"]);
    assert_eq!(specs("cpu", "linux/amd64"), ["torch==2.1.2+cpu"]);
    assert_eq!(specs("cpu@rocm", "linux/amd64"), ["torch==2.1.2+rocm5.6"]);
    // A platform overlay sets the CPU build where there are no GPU builds.
    assert_eq!(specs("edge", "linux/amd64"), ["torch==2.1.2+cu121"]);
    assert_eq!(specs("edge", "linux/arm64"), ["torch==2.1.2"]);
    // Without it, a GPU backend on arm64 is an error at the image's key.
    let e = plan_on(s, "ml", "linux/arm64").unwrap_err();
    let d = e
        .items
        .iter()
        .find(|d| d.message.contains("no `cu121` builds"))
        .unwrap();
    assert_eq!(d.key.as_deref(), Some("layers.gpu.torch-backend"));
}

#[test]
fn an_overlay_from_that_makes_a_cycle_is_reported_under_the_overlay_key() {
    let s = r#"
[layers.a]
from = "python:3.12-slim"
[layers.a.platforms."linux/arm64"]
from = "b"
[layers.b]
from = "a"
"#;
    assert!(plan_on(s, "b", "linux/amd64").is_ok());
    let e = plan_on(s, "b", "linux/arm64").unwrap_err();
    let d = e
        .items
        .iter()
        .find(|d| d.message.contains("cycle"))
        .unwrap();
    assert_eq!(
        d.key.as_deref(),
        Some("layers.a.platforms.\"linux/arm64\".from")
    );
}

#[test]
fn resolve_is_set_per_image_or_for_the_stack_and_not_inherited() {
    let resolve = |s: &str| -> Vec<(String, bool)> {
        let p = plan_on(s, "app", "linux/amd64").unwrap();
        p.images
            .iter()
            .map(|i| (i.name.clone(), i.resolve))
            .collect()
    };
    let images = "[layers.base]\nfrom = \"python:3.12-slim\"\npip = [\"a\"]\n\n[services.app]\nfrom = \"base\"\npip = [\"b\"]\n";
    assert_eq!(
        resolve(images),
        [("base".into(), false), ("app".into(), false)]
    );
    let on_app = images.replace("[services.app]\n", "[services.app]\nresolve = true\n");
    assert_eq!(
        resolve(&on_app),
        [("base".into(), false), ("app".into(), true)]
    );
    let on_stack = format!(
        "[stack]\nresolve = true\n\n{}",
        images.replace("[services.app]\n", "[services.app]\nresolve = false\n")
    );
    assert_eq!(
        resolve(&on_stack),
        [("base".into(), true), ("app".into(), false)]
    );
    // Not a boolean: an error at its line.
    let (_, d) = parse(&SourceFile::new(
        "stack.toml",
        "[stack]\nresolve = \"yes\"\n",
    ));
    assert!(d.has_errors(), "{d:?}");
}
