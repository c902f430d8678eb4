//! `[torch]` with a lock (issue 15): an image with both `torch` and `lock` installs the lock's
//! build of each `[torch]` package for its platform and backend (`2.5.1+cpu` / `2.5.1+cu121`
//! on amd64, `2.5.1` on arm64), from the backend's index, with its dependencies, in the lock's
//! `torch` group — no pip step. A lock without that build, without a wheel of it for the
//! platform, or with it from another index fails at planning time, naming the package and the
//! platform (and, for uv.lock, `required-environments`). Small hand-written locks; no download.

use std::collections::BTreeMap;

use llb_gen::plan::{BuildOptions, Plan, StepKind};
use llb_gen::platform::Platform;
use llb_gen::source::SourceFile;

fn h(n: u8) -> String {
    format!("{n:x}").repeat(64).chars().take(64).collect()
}

const CPU: &str = "https://download.pytorch.org/whl/cpu";
const CU121: &str = "https://download.pytorch.org/whl/cu121";

/// A uv.lock (uv's PyTorch guide shape: the project's `cpu`/`cu121` extras name the builds)
/// with torch 2.5.1 as `+cpu` (x86_64), plain (aarch64) and `+cu121` (x86_64, with an
/// nvidia dependency), all depending on filelock.
fn uv_lock() -> String {
    let w = |name: &str, n: u8| {
        format!(
            "{{ url = \"https://files.example/{name}\", hash = \"sha256:{}\", size = {} }}",
            h(n),
            1000 * n as u64
        )
    };
    format!(
        r#"version = 1
requires-python = ">=3.11"
required-markers = ["platform_machine == 'x86_64' and sys_platform == 'linux'"]

[[package]]
name = "app"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [{{ name = "numpy" }}]

[package.optional-dependencies]
cpu = [
    {{ name = "torch", version = "2.5.1", source = {{ registry = "{CPU}" }}, marker = "platform_machine == 'aarch64'" }},
    {{ name = "torch", version = "2.5.1+cpu", source = {{ registry = "{CPU}" }}, marker = "platform_machine != 'aarch64'" }},
]
cu121 = [
    {{ name = "torch", version = "2.5.1+cu121", source = {{ registry = "{CU121}" }} }},
]

[[package]]
name = "numpy"
version = "2.1.0"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [
    {np_x86},
    {np_arm},
]

[[package]]
name = "filelock"
version = "3.16.1"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{filelock}]

[[package]]
name = "torch"
version = "2.5.1"
source = {{ registry = "{CPU}" }}
dependencies = [{{ name = "filelock" }}]
wheels = [{torch_arm}]

[[package]]
name = "torch"
version = "2.5.1+cpu"
source = {{ registry = "{CPU}" }}
dependencies = [{{ name = "filelock" }}]
wheels = [{torch_cpu}]

[[package]]
name = "torch"
version = "2.5.1+cu121"
source = {{ registry = "{CU121}" }}
dependencies = [
    {{ name = "filelock" }},
    {{ name = "nvidia-cublas-cu12", marker = "platform_machine == 'x86_64' and sys_platform == 'linux'" }},
]
wheels = [{torch_cu}]

[[package]]
name = "nvidia-cublas-cu12"
version = "12.1.3.1"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{cublas}]
"#,
        np_x86 = w("numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl", 1),
        np_arm = w("numpy-2.1.0-cp312-cp312-manylinux_2_17_aarch64.whl", 2),
        filelock = w("filelock-3.16.1-py3-none-any.whl", 3),
        torch_arm = w("torch-2.5.1-cp312-cp312-manylinux_2_17_aarch64.whl", 4),
        torch_cpu = w("torch-2.5.1%2Bcpu-cp312-cp312-linux_x86_64.whl", 5),
        torch_cu = w("torch-2.5.1%2Bcu121-cp312-cp312-linux_x86_64.whl", 6),
        cublas = w(
            "nvidia_cublas_cu12-12.1.3.1-py3-none-manylinux1_x86_64.whl",
            7
        ),
    )
}

/// A pylock.toml with only the `+cpu` build of torch (x86_64), without markers.
fn pylock_cpu_only() -> String {
    format!(
        "lock-version = '1.0'\nrequires-python = '>=3.11'\ncreated-by = 'test'\n\
         [[packages]]\nname = 'torch'\nversion = '2.5.1+cpu'\nindex = '{CPU}'\n\
         [[packages.wheels]]\nurl = 'https://files.example/torch-2.5.1%2Bcpu-cp312-cp312-linux_x86_64.whl'\nsize = 5000\nhashes = {{sha256 = '{}'}}\n\
         [[packages]]\nname = 'filelock'\nversion = '3.16.1'\n\
         [[packages.wheels]]\nurl = 'https://files.example/filelock-3.16.1-py3-none-any.whl'\nsize = 3000\nhashes = {{sha256 = '{}'}}\n",
        h(5),
        h(3)
    )
}

/// `[torch]` and two services on the lock: `cpu` (the default backend) and `gpu` (cuda).
fn stack(lock: &str, torch_index: &str) -> String {
    format!(
        "[torch]\npackages = {{ torch = \"2.5.1\" }}\ncuda = \"cu121\"\n{torch_index}\n\
         [services.cpu]\nfrom = \"python:3.12-slim\"\nlock = \"{lock}\"\ntorch = true\n\n\
         [services.gpu]\nfrom = \"python:3.12-slim\"\nlock = \"{lock}\"\ntorch = true\ntorch-backend = \"cuda\"\n"
    )
}

fn plan(
    stack_text: &str,
    lock: &str,
    lock_text: &str,
    target: &str,
    platform: Platform,
) -> Result<Plan, String> {
    let file = SourceFile::new("stack.toml", stack_text);
    let mut lock_files = BTreeMap::new();
    lock_files.insert(lock.to_string(), Some(lock_text.to_string()));
    let o = BuildOptions {
        target: Some(target.into()),
        platform,
        lock_files,
        ..BuildOptions::default()
    };
    llb_gen::load(&file, &o)
        .map(|(_, p)| p)
        .map_err(|e| e.diagnostics.render(&e.file))
}

/// The image's steps: (kind, and for the lock step "group: name version, …" per group).
fn lock_groups(p: &Plan) -> (usize, Vec<String>) {
    let img = p.images.last().unwrap();
    let mut pips = 0;
    let mut groups = vec![];
    for s in &img.steps {
        match &s.kind {
            StepKind::Pip(_) => pips += 1,
            StepKind::Lock(l) => {
                for g in &l.groups {
                    let names: Vec<String> = g
                        .files
                        .iter()
                        .map(|f| format!("{} {} {}", f.name, f.version, f.filename))
                        .collect();
                    groups.push(format!("{}: {}", g.id, names.join(", ")));
                }
            }
            _ => {}
        }
    }
    (pips, groups)
}

fn arm64() -> Platform {
    Platform::parse("linux/arm64").unwrap()
}

#[test]
fn the_lock_build_of_torch_follows_the_backend_and_the_platform() {
    let s = stack("uv.lock", "");
    let lock = uv_lock();
    // amd64, cpu: +cpu from the cpu index, with its dependency; numpy from the project.
    let (pips, groups) =
        lock_groups(&plan(&s, "uv.lock", &lock, "cpu", Platform::linux_amd64()).unwrap());
    assert_eq!(pips, 0, "no pip step for torch: {groups:?}");
    let torch = groups
        .iter()
        .find(|g| g.starts_with("torch:"))
        .expect("a torch group");
    assert_eq!(
        torch,
        "torch: torch 2.5.1+cpu torch-2.5.1+cpu-cp312-cp312-linux_x86_64.whl"
    );
    let all = groups.join("\n");
    assert!(all.contains("filelock 3.16.1"), "torch's dependency: {all}");
    assert!(
        all.contains("numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
        "{all}"
    );
    assert!(!all.contains("nvidia"), "{all}");

    // amd64, cuda: +cu121 and its nvidia dependency, in the torch family group.
    let (_, groups) =
        lock_groups(&plan(&s, "uv.lock", &lock, "gpu", Platform::linux_amd64()).unwrap());
    let torch = groups.iter().find(|g| g.starts_with("torch:")).unwrap();
    assert_eq!(
        torch,
        "torch: nvidia-cublas-cu12 12.1.3.1 nvidia_cublas_cu12-12.1.3.1-py3-none-manylinux1_x86_64.whl, \
         torch 2.5.1+cu121 torch-2.5.1+cu121-cp312-cp312-linux_x86_64.whl"
    );

    // arm64, cpu: the plain build with the aarch64 wheel.
    let (_, groups) = lock_groups(&plan(&s, "uv.lock", &lock, "cpu", arm64()).unwrap());
    let torch = groups.iter().find(|g| g.starts_with("torch:")).unwrap();
    assert_eq!(
        torch,
        "torch: torch 2.5.1 torch-2.5.1-cp312-cp312-manylinux_2_17_aarch64.whl"
    );
    assert!(
        groups
            .join("\n")
            .contains("numpy-2.1.0-cp312-cp312-manylinux_2_17_aarch64.whl")
    );

    // arm64, cuda: no such build, said at planning time (as without a lock).
    let err = plan(&s, "uv.lock", &lock, "gpu", arm64()).unwrap_err();
    assert!(
        err.contains("PyTorch has no `cu121` builds for linux/arm64"),
        "{err}"
    );
}

#[test]
fn a_lock_without_the_build_or_its_wheel_fails_at_planning_naming_package_and_platform() {
    // pylock with only +cpu (x86_64): the cuda service has no build to install.
    let s = stack("pylock.toml", "");
    let lock = pylock_cpu_only();
    let err = plan(&s, "pylock.toml", &lock, "gpu", Platform::linux_amd64()).unwrap_err();
    assert!(
        err.contains("wants `torch` 2.5.1+cu121, which the lock does not have (it has: 2.5.1+cpu)"),
        "{err}"
    );
    assert!(
        err.contains("stack.toml:12"),
        "at the gpu service's lock line: {err}"
    );
    // arm64 CPU: neither 2.5.1 nor an aarch64 wheel of 2.5.1+cpu.
    let err = plan(&s, "pylock.toml", &lock, "cpu", arm64()).unwrap_err();
    assert!(
        err.contains("no wheel or sdist of `torch` 2.5.1+cpu fits linux/arm64"),
        "{err}"
    );
    assert!(err.contains("linux_x86_64"), "the platforms it has: {err}");
    // amd64 CPU plans: the +cpu wheel, without the pylock's markers deciding.
    let (pips, groups) =
        lock_groups(&plan(&s, "pylock.toml", &lock, "cpu", Platform::linux_amd64()).unwrap());
    assert_eq!(pips, 0);
    assert!(
        groups
            .iter()
            .any(|g| g.starts_with("torch: torch 2.5.1+cpu ")),
        "{groups:?}"
    );

    // uv.lock whose aarch64 torch is missing: the hint names required-environments.
    let lock = uv_lock().replace(
        "torch-2.5.1-cp312-cp312-manylinux_2_17_aarch64.whl",
        "torch-2.5.1-cp312-cp312-macosx_11_0_arm64.whl",
    );
    let err = plan(&stack("uv.lock", ""), "uv.lock", &lock, "cpu", arm64()).unwrap_err();
    assert!(
        err.contains("no wheel or sdist of `torch` 2.5.1 fits linux/arm64"),
        "{err}"
    );
    assert!(err.contains("required-environments"), "{err}");
}

#[test]
fn the_build_must_come_from_the_backends_index() {
    // [torch.index] says a mirror; the lock has the cu121 build from download.pytorch.org.
    let s = stack(
        "uv.lock",
        "[torch.index]\ncuda = \"https://mirror.example/torch/{cuda}\"\n",
    );
    let err = plan(&s, "uv.lock", &uv_lock(), "gpu", Platform::linux_amd64()).unwrap_err();
    assert!(
        err.contains(&format!(
            "`torch` 2.5.1+cu121 in the lock comes from {CU121}, but [torch] (backend cu121 on linux/amd64) takes it from https://mirror.example/torch/cu121"
        )),
        "{err}"
    );
    // The same index with a trailing slash is the same index.
    let s = stack("uv.lock", &format!("[torch.index]\ncpu = \"{CPU}/\"\n"));
    plan(&s, "uv.lock", &uv_lock(), "cpu", Platform::linux_amd64()).unwrap();
}

#[test]
fn a_variant_picks_its_build_from_the_same_lock() {
    let s = "[torch]\npackages = { torch = \"2.5.1\" }\ncuda = \"cu121\"\n\n\
             [variants.cpu]\ntorch = \"cpu\"\ndefault = true\n\n\
             [variants.cuda]\nplatforms = [\"linux/amd64\"]\ntorch = \"cuda\"\n\n\
             [services.ml]\nfrom = \"python:3.12-slim\"\nlock = \"uv.lock\"\ntorch = true\n";
    let lock = uv_lock();
    let torch_of = |target: &str, platform: Platform| {
        let (pips, groups) = lock_groups(&plan(s, "uv.lock", &lock, target, platform).unwrap());
        assert_eq!(pips, 0, "{groups:?}");
        groups
            .into_iter()
            .find(|g| g.starts_with("torch:"))
            .expect("a torch group")
    };
    assert!(torch_of("ml", Platform::linux_amd64()).contains("torch 2.5.1+cpu "));
    assert!(
        torch_of("ml@cpu", arm64())
            .contains("torch 2.5.1 torch-2.5.1-cp312-cp312-manylinux_2_17_aarch64.whl")
    );
    let cuda = torch_of("ml@cuda", Platform::linux_amd64());
    assert!(
        cuda.contains("torch 2.5.1+cu121 ") && cuda.contains("nvidia-cublas-cu12"),
        "{cuda}"
    );
}
