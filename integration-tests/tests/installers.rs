//! The installer choice: pip (default) and uv (from PyPI, run from a mounted tool state) give
//! the same packages; uv itself never lands in the image and has its own cache mount.

use integration_tests::pyindex::{PackageIndex, Wheel};
use integration_tests::{Context, engine_with_frontend, frontend_image};

fn stack(installer: &str, index: &str) -> String {
    format!(
        "# syntax={}\n[stack]\ninstaller = \"{installer}\"\ninstall-env = {{ UV_NATIVE_TLS = \"1\", PIP_TRUSTED_HOST = \"127.0.0.1\" }}\n\
         [layers.deps]\nfrom = \"python:3.12-slim\"\nrequirements = [\"requirements.txt\"]\nindex-url = \"{index}\"\n\
         [services.app]\nfrom = \"deps\"\ncmd = [\"python3\", \"-c\", \"import lsdemo_a, lsdemo_b, shutil; print(lsdemo_a.__version__, lsdemo_b.__version__, shutil.which('uv'))\"]\n",
        frontend_image()
    )
}

#[test]
fn pip_and_uv_install_the_same_packages() {
    let Some(engine) = engine_with_frontend("pip_and_uv_install_the_same_packages") else {
        return;
    };
    let index = PackageIndex::serve(&[
        Wheel::pure("lsdemo-a", "1.0"),
        Wheel::pure("lsdemo-b", "2.0"),
    ]);
    let mut outputs = vec![];
    for installer in ["pip", "uv"] {
        let ctx = Context::new()
            .file("stack.toml", &stack(installer, &index.url()))
            .file("requirements.txt", "lsdemo-a==1.0\nlsdemo-b==2.0\n");
        let tag = engine.unique_tag(&format!("installer-{installer}"));
        let build = engine.buildx_build(&[
            "--network=host",
            "-f",
            &ctx.join("stack.toml"),
            "-t",
            &tag,
            ctx.path_str(),
        ]);
        let step = if installer == "uv" {
            "uv pip install -r requirements.txt"
        } else {
            "] pip install -r requirements.txt"
        };
        assert!(
            build.vertex(step).is_some(),
            "{installer}: no {step:?} step:\n{}",
            build.progress.summary()
        );
        if installer == "uv" {
            assert!(
                build.vertex("install uv").is_some(),
                "uv comes from a tool step:\n{}",
                build.progress.summary()
            );
        }
        outputs.push(engine.docker_run(&tag, &[]).trim().to_string());
        engine.remove_image(&tag);
    }
    assert_eq!(outputs[0], "1.0 2.0 None", "pip: {}", outputs[0]);
    assert_eq!(
        outputs[1], "1.0 2.0 None",
        "uv must give the same packages and stay out of the image: {}",
        outputs[1]
    );
}
