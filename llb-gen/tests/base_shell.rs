//! A base image's `SHELL` (the `Shell` of its config, e.g. micromamba's
//! `/usr/local/bin/_dockerfile_shell.sh`, which activates the environment): `run` entries of
//! the images built on it run through it, as a Dockerfile's shell-form `RUN` does; the
//! converter's own scripts (apt, useradd) keep `/bin/sh -c`, and the output config keeps the
//! `Shell`. Without one (or offline), `run` is `/bin/sh -c`.

use llb_gen::convert::{NoImages, ResolvedImages, convert};
use llb_gen::plan::BuildOptions;
use llb_gen::source::SourceFile;

const STACK: &str = r#"# syntax=layerstack:dev
[layers.env]
from = "mambaorg/micromamba:1.5"
apt = ["curl"]
run = "python -c 'import numpy'"

[services.app]
from = "env"
run = "echo ready"
"#;

const MAMBA: &str = "docker.io/mambaorg/micromamba:1.5";

fn args_lines(dump: &str) -> Vec<String> {
    dump.lines()
        .filter_map(|l| l.trim_start().strip_prefix("args: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn run_entries_use_the_base_images_shell() {
    let file = SourceFile::new("stack.toml", STACK);
    let o = BuildOptions {
        target: Some("app".into()),
        ..BuildOptions::default()
    };
    let (_, plan) = llb_gen::load(&file, &o).expect("valid stack");
    let mut images = ResolvedImages::default();
    images.configs.insert(
        (MAMBA.to_string(), "linux/amd64".to_string()),
        br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/opt/conda/bin:/usr/bin:/bin"],"Shell":["/usr/local/bin/_dockerfile_shell.sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec(),
    );
    let out = convert(&plan, &o, &images, &file).expect("converts");
    let args = args_lines(&llb_gen::llb::dump(&out.definition));
    assert!(
        args.contains(
            &"/usr/local/bin/_dockerfile_shell.sh \"python -c 'import numpy'\"".to_string()
        ),
        "{args:#?}"
    );
    // Inherited by the image built on the layer.
    assert!(
        args.contains(&"/usr/local/bin/_dockerfile_shell.sh \"echo ready\"".to_string()),
        "{args:#?}"
    );
    // The apt script is ours: /bin/sh.
    assert!(
        args.iter()
            .any(|a| a.starts_with("/bin/sh -c") && a.contains("apt-get")),
        "{args:#?}"
    );
    let config: serde_json::Value = serde_json::from_slice(&out.image_config).unwrap();
    assert_eq!(
        config["config"]["Shell"],
        serde_json::json!(["/usr/local/bin/_dockerfile_shell.sh"])
    );

    // Offline (no config): /bin/sh -c.
    let out = convert(&plan, &o, &NoImages, &file).expect("converts");
    let args = args_lines(&llb_gen::llb::dump(&out.definition));
    assert!(
        args.contains(&"/bin/sh -c \"echo ready\"".to_string()),
        "{args:#?}"
    );
}
