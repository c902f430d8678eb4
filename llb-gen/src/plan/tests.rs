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
        p.images[2].config.cmd.as_deref().unwrap(),
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
        matches!(&gpu_plan.images[0].steps[0].kind, StepKind::Apt(a) if a.packages == &["libgomp1".to_string()])
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
        match &self.base {
            Base::Image { span, .. } | Base::Layer { span, .. } => *span,
        }
    }
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
