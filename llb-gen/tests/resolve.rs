//! Unlocked requirements for a foreign platform take the lock path: the resolve step (the
//! cross-install probe, on the build platform) writes a `pylock.toml`, the edge hands it back
//! as [`CrossVerdict::Resolved`], and the converter renders the step like a `lock` step — every
//! wheel a checksummed HTTP source, each group installed on the build platform without network,
//! merged onto the image — with the resolve's output mounted into every group install (so it is
//! in the image's graph and cache exports) and nothing run on the target platform.

use std::collections::BTreeMap;

use llb_gen::convert::{
    CROSS_PROBE, Converted, CrossEnv, CrossVerdict, NoImages, ResolvedLock, convert_cross,
};
use llb_gen::plan::BuildOptions;
use llb_gen::platform::Platform;
use llb_gen::source::SourceFile;

const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

const STACK: &str = "[layers.base]\nfrom = \"python:3.12-slim\"\napt = [\"file\"]\n\n\
     [services.api]\nfrom = \"base\"\npip = [\"lsdemo-app==1.0\"]\n";

/// What `cross_install.py` writes for arm64: a pure wheel and an aarch64 one.
fn pylock() -> String {
    format!(
        "# Resolved by layerstack for linux/arm64, CPython 3.12.7.\n\
         lock-version = \"1.0\"\ncreated-by = \"layerstack\"\nrequires-python = \"==3.12.*\"\n\n\
         [[packages]]\nname = \"lsdemo-app\"\nversion = \"1.0\"\n\
         wheels = [{{ url = \"http://127.0.0.1:9/files/lsdemo_app-1.0-py3-none-any.whl\", hashes = {{ sha256 = \"{H1}\" }} }}]\n\n\
         [[packages]]\nname = \"lsdemo-native\"\nversion = \"1.0\"\n\
         wheels = [{{ url = \"http://127.0.0.1:9/files/lsdemo_native-1.0-cp312-cp312-manylinux_2_17_aarch64.whl\", hashes = {{ sha256 = \"{H2}\" }} }}]\n"
    )
}

fn resolved(pylock: String) -> CrossVerdict {
    CrossVerdict::Resolved(ResolvedLock {
        pylock,
        python: "3.12.7".into(),
        libc: "glibc2.36".into(),
        executable: "/usr/local/bin/python3".into(),
    })
}

fn opts(merge: bool) -> BuildOptions {
    BuildOptions {
        target: Some("api".into()),
        platform: Platform::parse("linux/arm64").unwrap(),
        merge,
        cross_install: true,
        ..BuildOptions::default()
    }
}

/// Convert for arm64, answering the one probe with `verdict`.
fn convert_answered(verdict: CrossVerdict, merge: bool) -> (Converted, String) {
    convert_stack(STACK, verdict, merge)
}

fn convert_stack(stack: &str, verdict: CrossVerdict, merge: bool) -> (Converted, String) {
    let file = SourceFile::new("stack.toml", stack);
    let o = opts(merge);
    let (stack, plan) = llb_gen::load(&file, &o).expect("valid stack");
    let twin = llb_gen::twin_plan(&stack, &o).expect("plans for the build platform");
    let convert_with = |verdicts: &BTreeMap<String, CrossVerdict>| {
        let cross = CrossEnv {
            twin: Some(&twin),
            verdicts,
            ask: true,
        };
        convert_cross(&plan, &o, &NoImages, &file, Some(cross)).expect("converts")
    };
    let asked = convert_with(&BTreeMap::new());
    assert_eq!(asked.probes.len(), 1, "one resolve per pip step");
    assert!(
        asked.probes[0]
            .name
            .ends_with(": resolve for linux/arm64 (on linux/amd64)"),
        "{}",
        asked.probes[0].name
    );
    let mut verdicts = BTreeMap::new();
    verdicts.insert(asked.probes[0].key.clone(), verdict);
    let answered = convert_with(&verdicts);
    assert!(answered.probes.is_empty());
    let text = llb_gen::llb::dump(&answered.definition);
    (answered, text)
}

/// The ops of a dump (each starts with `v`).
fn ops(text: &str) -> Vec<&str> {
    text.split("\nv").collect()
}

#[test]
fn a_resolved_lock_installs_like_a_lock_step_on_the_build_platform() {
    let (_, text) = convert_answered(resolved(pylock()), true);
    for (file, h) in [
        ("lsdemo_app-1.0-py3-none-any.whl", H1),
        (
            "lsdemo_native-1.0-cp312-cp312-manylinux_2_17_aarch64.whl",
            H2,
        ),
    ] {
        assert!(
            text.contains(&format!("source http://127.0.0.1:9/files/{file}\n")),
            "{file}:\n{text}"
        );
        assert!(
            text.contains(&format!("http.checksum: sha256:{h}\n")),
            "{text}"
        );
    }
    // Every group installs with the interpreter the resolve named, on linux/amd64, without
    // network, with the resolve's output mounted.
    let installs: Vec<&str> = ops(&text)
        .into_iter()
        .filter(|op| op.contains("exec ") && op.contains("lock_install.py"))
        .collect();
    assert!(!installs.is_empty(), "{text}");
    let mount = format!("mount {CROSS_PROBE} ←");
    for op in &installs {
        assert!(op.contains("/usr/local/bin/python3 "), "{op}");
        assert!(op.contains(&mount), "the resolve is mounted: {op}");
        assert!(op.contains("network: none"), "{op}");
        assert!(
            op.contains("(resolved for linux/arm64, installed on linux/amd64)")
                || op.contains("lock group"),
            "{op}"
        );
    }
    assert!(
        text.contains(
            "[service api 1/1] pip install lsdemo-app==1.0 (resolved for linux/arm64, installed on linux/amd64) (merge)"
        ),
        "{text}"
    );
    // Nothing installs with the cross-install script, and no Python install runs on the target
    // platform (its apt step does: that is the image's own).
    assert!(!text.contains("cross_install.py install"), "{text}");
    for op in ops(&text) {
        if op.contains("exec  [linux/arm64]") {
            assert!(
                op.contains("apt-get install file"),
                "an exec on arm64: {op}"
            );
        }
    }
    // Without MergeOp the groups are copied onto the image.
    let (_, copied) = convert_answered(resolved(pylock()), false);
    assert!(!copied.contains("(merge)"), "{copied}");
    assert!(copied.contains("lock group"), "{copied}");
}

#[test]
fn an_unusable_resolved_lock_falls_back_to_the_cross_install_script_and_says_why() {
    // A lock whose only wheel is for another machine: select finds nothing for arm64.
    let wrong = pylock().replace("aarch64", "x86_64");
    let (_, text) = convert_answered(resolved(wrong), true);
    assert!(text.contains("cross_install.py install"), "{text}");
    assert!(
        text.contains("(the resolved lock is unusable: "),
        "the name says why:\n{text}"
    );
    assert!(!text.contains("lock_install.py"), "{text}");
}

#[test]
fn without_a_lock_the_verdict_installs_with_the_script_and_a_refusal_emulates() {
    let (_, text) = convert_answered(CrossVerdict::Cross, true);
    assert!(text.contains("cross_install.py install"), "{text}");
    assert!(!text.contains("lock_install.py"), "{text}");
    let (_, text) = convert_answered(
        CrossVerdict::Emulate("lsdemo-src 1.0 has no wheel for the target platform".into()),
        true,
    );
    assert!(
        text.contains(
            "(emulated on linux/arm64: lsdemo-src 1.0 has no wheel for the target platform)"
        ),
        "{text}"
    );
}

#[test]
fn a_resolved_lock_is_not_used_when_install_steps_get_secrets() {
    // An index may need the secret; the lock's downloads would go without it.
    let stack = format!("{STACK}\n[secrets.pip-index]\nenv = \"PIP_INDEX_URL\"\n");
    let (_, text) = convert_stack(&stack, resolved(pylock()), true);
    assert!(text.contains("cross_install.py install"), "{text}");
    assert!(
        text.contains("(the resolved lock is not used: install steps get the secret(s) pip-index)"),
        "{text}"
    );
    assert!(!text.contains("lock_install.py"), "{text}");
}

/// The script's own writer and the converter's reader agree: `write_pylock` (run with the
/// machine's python3 on what a resolve returns) gives a lock the converter installs, and
/// `lockable` refuses what the build could not fetch by checksum. Skipped without python3.
#[test]
fn the_resolve_scripts_lock_is_what_the_converter_reads() {
    let dir = std::env::temp_dir().join(format!("layerstack-resolve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("cross_install.py");
    std::fs::write(&script, include_str!("../src/convert/cross_install.py")).unwrap();
    let program = format!(
        r#"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("ci", {script:?})
ci = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ci)
base = "http://127.0.0.1:9/files/"
new = [
    ("LsDemo_App", "1.0", [base + "lsdemo_app-1.0-py3-none-any.whl#sha256={H1}"]),
    ("lsdemo-native", "1.0", [
        base + "lsdemo_native-1.0-cp312-cp312-manylinux_2_17_x86_64.whl#sha256={H1}",
        base + "lsdemo_native-1.0-cp312-cp312-manylinux_2_17_aarch64.whl#sha256={H2}",
    ]),
]
assert ci.lockable(new, ["--index-url", "http://127.0.0.1:9/simple", "lsdemo-app"]) is None
assert "credentials" in ci.lockable(new, ["--index-url", "https://u:t@h/simple"])
assert "sha256" in ci.lockable([("a", "1", [base + "a-1-py3-none-any.whl"])], [])
assert "not an index" in ci.lockable([("a", "1", ["file:///w/a-1-py3-none-any.whl#sha256={H1}"])], [])
# The lock names the interpreter's version: say it is the CPython 3.12.7 of `resolved`.
import types
ci.sys = types.SimpleNamespace(version_info=(3, 12, 7))
ci.write_pylock(new, "linux/arm64", {out:?})
"#,
        script = script.to_string_lossy(),
        out = dir.join("pylock.toml").to_string_lossy(),
    );
    let ran = match std::process::Command::new("python3")
        .args(["-c", &program])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED: no python3 ({e})");
            return;
        }
    };
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let text = std::fs::read_to_string(dir.join("pylock.toml")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let (_, llb) = convert_answered(resolved(text.clone()), true);
    assert!(
        llb.contains("source http://127.0.0.1:9/files/lsdemo_app-1.0-py3-none-any.whl\n"),
        "{text}\n{llb}"
    );
    // The converter picks the target's wheel of the two the lock lists.
    assert!(
        llb.contains(
            "source http://127.0.0.1:9/files/lsdemo_native-1.0-cp312-cp312-manylinux_2_17_aarch64.whl\n"
        ),
        "{llb}"
    );
    assert!(!llb.contains("x86_64.whl"), "{llb}");
    assert!(
        llb.contains(&format!("http.checksum: sha256:{H2}\n")),
        "{llb}"
    );
    assert!(!llb.contains("cross_install.py install"), "{llb}");
}
