//! Unit tests of the lint rules: a stack that triggers each rule, and clean stacks.

use super::*;
use crate::source::SourceFile;

fn run_with(text: &str, facts: &Facts) -> (SourceFile, Vec<Finding>) {
    let file = SourceFile::new("stack.toml", text);
    let (stack, diags) = crate::stack::parse(&file);
    assert!(!diags.has_errors(), "{}", diags.render(&file));
    let opts = BuildOptions {
        network: facts.network,
        ..BuildOptions::default()
    };
    let plans = plans(&stack, &opts);
    (file.clone(), lint(&stack, &plans, facts))
}

fn run(text: &str) -> (SourceFile, Vec<Finding>) {
    run_with(text, &Facts::default())
}

fn names(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|x| x.rule.name).collect()
}

/// The text of the line a finding points at.
fn line_of<'a>(file: &'a SourceFile, f: &Finding) -> &'a str {
    file.line_text(file.line_range(f.span).0).trim()
}

const TORCH_CPU: &str = r#"
[torch]
packages = { torch = "2.3.1" }
[variants.cpu]
platforms = ["linux/amd64"]
torch = "cpu"
[layers.ml]
from = "python:3.12-slim"
torch = true
[services.app]
from = "ml"
pip = ["nvidia-cublas-cu12==12.1.3.1"]
"#;

#[test]
fn cuda_wheels_in_a_cpu_variant() {
    let (file, f) = run(TORCH_CPU);
    assert_eq!(names(&f), ["CudaWheelsInCpuImage"], "{f:#?}");
    assert_eq!(
        line_of(&file, &f[0]),
        "pip = [\"nvidia-cublas-cu12==12.1.3.1\"]"
    );
    assert!(f[0].detail.contains("CPU variant `cpu`"), "{}", f[0].detail);
    assert!(
        f[0].detail.contains("app@cpu on linux/amd64"),
        "{}",
        f[0].detail
    );
}

#[test]
fn cuda_torch_build_in_a_cpu_image_without_variants() {
    // [torch] resolves to +cpu here; a requirements file pulls a CUDA build on top.
    let text = r#"
[torch]
packages = { torch = "2.3.1" }
[services.app]
from = "python:3.12-slim"
torch = true
requirements = ["requirements.txt"]
"#;
    let facts = Facts {
        files: [(
            "requirements.txt".to_string(),
            "torchaudio==2.3.1+cu121\n".to_string(),
        )]
        .into(),
        ..Facts::default()
    };
    let (file, f) = run_with(text, &facts);
    assert_eq!(names(&f), ["CudaWheelsInCpuImage"], "{f:#?}");
    assert_eq!(
        line_of(&file, &f[0]),
        "requirements = [\"requirements.txt\"]"
    );
    assert!(
        f[0].detail.contains("requirements.txt line 1"),
        "{}",
        f[0].detail
    );
}

#[test]
fn torch_installed_by_two_layers() {
    let text = r#"
[torch]
packages = { torch = "2.3.1" }
[layers.ml]
from = "python:3.12-slim"
torch = true
[services.app]
from = "ml"
pip = ["torch==2.3.1"]
"#;
    let (file, f) = run(text);
    let twice: Vec<&Finding> = f
        .iter()
        .filter(|x| x.rule.name == "TorchInstalledTwice")
        .collect();
    assert_eq!(twice.len(), 1, "{f:#?}");
    assert_eq!(line_of(&file, twice[0]), "pip = [\"torch==2.3.1\"]");
    assert!(twice[0].detail.contains("layer ml"), "{}", twice[0].detail);
    // 2.3.1 vs 2.3.1+cpu: also two different pins.
    assert!(names(&f).contains(&"ConflictingPins"));
}

#[test]
fn cuda_base_and_cuda_wheels() {
    let text = r#"
[torch]
packages = { torch = "2.3.1" }
[variants.gpu]
platforms = ["linux/amd64"]
torch = "cu121"
[layers.system]
from = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
[services.app]
from = "system"
torch = true
"#;
    let (file, f) = run(text);
    assert_eq!(names(&f), ["CudaInstalledTwice"], "{f:#?}");
    assert_eq!(line_of(&file, &f[0]), "torch = true");
    assert!(
        f[0].detail.contains("nvidia/cuda:12.1.1"),
        "{}",
        f[0].detail
    );
}

#[test]
fn cuda_variant_on_arm64() {
    // CUDA by its base image (torch-based CUDA variants on arm64 are `check` errors).
    let text = r#"
[stack]
platforms = ["linux/amd64", "linux/arm64"]
[variants.gpu]
[variants.gpu.layers.system]
from = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
[layers.system]
from = "python:3.12-slim"
[services.app]
from = "system"
"#;
    let (file, f) = run(text);
    let arm: Vec<&Finding> = f.iter().filter(|x| x.rule.name == "CudaOnArm64").collect();
    assert_eq!(arm.len(), 1, "{f:#?}");
    assert_eq!(line_of(&file, arm[0]), "[variants.gpu]");
    assert!(arm[0].detail.contains("linux/arm64"), "{}", arm[0].detail);
    // Its own platform list: the finding is at the entry.
    let text = "[variants.gpu]\nplatforms = [\"linux/amd64\",\n  \"linux/arm64\"]\n[variants.gpu.services.app]\npip = [\"nvidia-cudnn-cu12==9.1.0.70\"]\n[services.app]\nfrom = \"python:3.12-slim\"\n";
    let (file, f) = run(text);
    let arm: Vec<&Finding> = f.iter().filter(|x| x.rule.name == "CudaOnArm64").collect();
    assert_eq!(arm.len(), 1, "{f:#?}");
    assert_eq!(line_of(&file, arm[0]), "\"linux/arm64\"]");
}

#[test]
fn an_image_copied_from_is_not_a_layer_of_the_target() {
    // The builder's packages never reach the service: another torch or another pin there is
    // no finding.
    let text = r#"
[torch]
packages = { torch = "2.3.1" }
[layers.builder]
build-only = true
from = "python:3.12-slim"
torch = true
pip = ["numpy==1.26.4"]
[services.app]
from = "python:3.12-slim"
pip = ["torch==2.3.1", "numpy==2.0.1"]
copy = [{ from = "builder", src = "/out" }]
"#;
    let (_, f) = run(text);
    assert!(
        !names(&f)
            .iter()
            .any(|n| *n == "TorchInstalledTwice" || *n == "ConflictingPins"),
        "{f:#?}"
    );
}

#[test]
fn conflicting_pins_in_base_and_service() {
    let text = r#"
[layers.base]
from = "python:3.12-slim"
requirements = ["base.txt"]
[services.api]
from = "base"
pip = ["numpy==2.0.1", "pandas==2.2.2"]
"#;
    let facts = Facts {
        files: [(
            "base.txt".to_string(),
            "numpy==1.26.4\npandas==2.2.2\n".to_string(),
        )]
        .into(),
        ..Facts::default()
    };
    let (file, f) = run_with(text, &facts);
    assert_eq!(names(&f), ["ConflictingPins"], "{f:#?}");
    assert_eq!(
        line_of(&file, &f[0]),
        "pip = [\"numpy==2.0.1\", \"pandas==2.2.2\"]"
    );
    assert!(
        f[0].detail.contains("`numpy==2.0.1`") && f[0].detail.contains("base.txt line 1"),
        "{}",
        f[0].detail
    );
}

#[test]
fn unpinned_requirements() {
    let text = r#"
[services.api]
from = "python:3.12-slim"
requirements = ["requirements.lock", "loose.txt", "mixed.txt"]
"#;
    let facts = Facts {
        files: [
            (
                "requirements.lock".to_string(),
                "flask\nidna==3.7\n".to_string(),
            ),
            // Nothing pinned and not a lock: a deliberate range file, fine.
            ("loose.txt".to_string(), "requests>=2\n".to_string()),
            (
                "mixed.txt".to_string(),
                "numpy==1.26.4\n# c\nscipy>=1.13\n".to_string(),
            ),
        ]
        .into(),
        ..Facts::default()
    };
    let (_, f) = run_with(text, &facts);
    assert_eq!(names(&f), ["UnpinnedRequirements", "UnpinnedRequirements"]);
    let details: Vec<&str> = f.iter().map(|x| x.detail.as_str()).collect();
    assert_eq!(
        details,
        [
            "`mixed.txt` pins 1 of 2 requirements; not pinned: scipy (line 3)",
            "`requirements.lock` is a lock; not pinned: flask (line 1)",
        ]
    );
}

#[test]
fn large_context_without_dockerignore() {
    let text = "[services.api]\nfrom = \"python:3.12-slim\"\ncopy = [\".\", \"conf\"]\n";
    let mut facts = Facts::default();
    facts.dirs.insert(
        ".".into(),
        DirFacts {
            bytes: None,
            heavy: vec![".git".into(), ".venv".into()],
        },
    );
    facts.dirs.insert(
        "conf".into(),
        DirFacts {
            bytes: Some(4096),
            heavy: vec![],
        },
    );
    let (file, f) = run_with(text, &facts);
    assert_eq!(names(&f), ["LargeContextWithoutDockerignore"], "{f:#?}");
    assert_eq!(line_of(&file, &f[0]), "copy = [\".\", \"conf\"]");
    assert!(f[0].detail.contains("with .git, .venv"), "{}", f[0].detail);
    // Size alone.
    facts.dirs.get_mut("conf").unwrap().bytes = Some(LARGE_CONTEXT + 1);
    let (_, f) = run_with(text, &facts);
    assert_eq!(f.len(), 2, "{f:#?}");
    assert!(f[1].detail.contains("100 MiB") || f[0].detail.contains("100 MiB"));
    // A .dockerignore silences it.
    facts.dockerignore = true;
    assert!(run_with(text, &facts).1.is_empty());
}

#[test]
fn network_host_needed_for_a_loopback_index() {
    let text = r#"
[args]
INDEX = "http://127.0.0.1:3141/simple"
[services.api]
from = "python:3.12-slim"
index-url = "${INDEX}"
pip = ["flask==3.0.3"]
"#;
    let (file, f) = run(text);
    assert_eq!(names(&f), ["NetworkHostNeeded"], "{f:#?}");
    assert_eq!(line_of(&file, &f[0]), "pip = [\"flask==3.0.3\"]");
    assert!(f[0].detail.contains("--network=host"), "{}", f[0].detail);
    // With host networking the index is reachable.
    let host = Facts {
        network: Network::Host,
        ..Facts::default()
    };
    assert!(run_with(text, &host).1.is_empty());
    // An install-env proxy on localhost counts too; with --network=none every install does.
    let text = "[stack]\ninstall-env = { HTTPS_PROXY = \"http://localhost:3128\" }\n[services.api]\nfrom = \"python:3.12-slim\"\napt = [\"curl\"]\n";
    assert_eq!(names(&run(text).1), ["NetworkHostNeeded"]);
    let none = Facts {
        network: Network::None,
        ..Facts::default()
    };
    let text = "[services.api]\nfrom = \"python:3.12-slim\"\napt = [\"curl\"]\npip = [\"flask\"]\n";
    assert_eq!(
        names(&run_with(text, &none).1),
        ["NetworkHostNeeded", "NetworkHostNeeded"]
    );
    assert!(run(text).1.is_empty());
}

#[test]
fn a_clean_stack_has_no_findings() {
    let text = r#"
[torch]
packages = { torch = "2.3.1" }
[variants.cpu]
platforms = ["linux/amd64", "linux/arm64"]
torch = "cpu"
[variants.cuda]
platforms = ["linux/amd64"]
torch = "cu121"
[layers.runtime]
from = "python:3.12-slim"
apt = ["curl"]
requirements = ["requirements.txt"]
[layers.ml]
from = "runtime"
torch = true
[services.api]
from = "ml"
pip = ["numpy==1.26.4"]
copy = ["apps/api"]
"#;
    let mut facts = Facts {
        files: [(
            "requirements.txt".to_string(),
            "numpy==1.26.4\nrequests==2.32.3 --hash=sha256:00\n".to_string(),
        )]
        .into(),
        dockerignore: false,
        ..Facts::default()
    };
    facts.dirs.insert(
        "apps/api".into(),
        DirFacts {
            bytes: Some(10_000),
            heavy: vec![],
        },
    );
    let (_, f) = run_with(text, &facts);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn wanted_lists_requirements_and_copies() {
    let file = SourceFile::new(
        "stack.toml",
        "[layers.b]\nfrom = \"python:3.12-slim\"\nrequirements = [\"r/base.txt\"]\n[services.a]\nfrom = \"b\"\nrequirements = [\"r/a.txt\"]\ncopy = [\"src\"]\n",
    );
    let (stack, _) = crate::stack::parse(&file);
    let w = wanted(&plans(&stack, &BuildOptions::default()));
    assert_eq!(
        w.files.iter().map(String::as_str).collect::<Vec<_>>(),
        ["r/a.txt", "r/base.txt"]
    );
    assert_eq!(
        w.copies.iter().map(String::as_str).collect::<Vec<_>>(),
        ["src"]
    );
}

#[test]
fn every_rule_has_a_url_into_the_docs() {
    let docs = include_str!("../../../docs/stack-toml.md");
    for r in all_rules() {
        assert!(
            r.url()
                .ends_with(&format!("#{}", r.name.to_ascii_lowercase()))
        );
        assert!(
            docs.contains(&format!("### {}\n", r.name)),
            "docs/stack-toml.md has no `### {}` heading",
            r.name
        );
    }
}

#[test]
fn a_gpu_image_in_a_cpu_variant_is_no_finding() {
    // `torch-backend = "cuda"` on the base: the GPU image is meant, CUDA wheels included.
    let text = TORCH_CPU.replace(
        "from = \"python:3.12-slim\"\n",
        "from = \"python:3.12-slim\"\ntorch-backend = \"cuda\"\n",
    );
    let (_, f) = run(&text);
    assert!(!names(&f).contains(&"CudaWheelsInCpuImage"), "{f:#?}");
    // The same stack without it still warns (the test above).
    let (_, f) = run(TORCH_CPU);
    assert_eq!(names(&f), ["CudaWheelsInCpuImage"]);
}
