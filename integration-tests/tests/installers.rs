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

/// A stack whose layer pip-installs a local package of the build context (`./libs/common`, a
/// pyproject.toml project) next to an index package. Build isolation is off so the image's own
/// setuptools builds it (the test index has no setuptools).
fn local_stack(installer: &str, index: &str) -> String {
    format!(
        "# syntax={}\n[stack]\ninstaller = \"{installer}\"\n\
         install-env = {{ UV_NATIVE_TLS = \"1\", PIP_TRUSTED_HOST = \"127.0.0.1\", \
         PIP_NO_BUILD_ISOLATION = \"0\", UV_NO_BUILD_ISOLATION = \"1\" }}\n\
         [layers.deps]\nfrom = \"python:3.12-slim\"\nindex-url = \"{index}\"\n\
         pip = [\"./libs/common\", \"lsdemo-a==1.0\"]\n\
         [services.app]\nfrom = \"deps\"\ncmd = [\"python3\", \"-c\", \"import common_lib, lsdemo_a, os; \
         print(common_lib.VALUE, lsdemo_a.__version__, any(f for _, _, f in os.walk('/run/layerstack')))\"]\n",
        frontend_image()
    )
}

fn common_lib(value: &str) -> [(&'static str, String); 2] {
    [
        (
            "libs/common/pyproject.toml",
            "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
             [project]\nname = \"common-lib\"\nversion = \"0.1.0\"\n\n\
             [tool.setuptools]\npackages = [\"common_lib\"]\n"
                .to_string(),
        ),
        (
            "libs/common/common_lib/__init__.py",
            format!("VALUE = {value:?}\n"),
        ),
    ]
}

#[test]
fn a_local_package_is_built_and_installed_by_pip_and_uv() {
    let test = "a_local_package_is_built_and_installed_by_pip_and_uv";
    let Some(engine) = engine_with_frontend(test) else {
        return;
    };
    let index = PackageIndex::serve(&[Wheel::pure("lsdemo-a", "1.0")]);
    for installer in ["pip", "uv"] {
        let mut ctx = Context::new().file("stack.toml", &local_stack(installer, &index.url()));
        for (path, text) in common_lib("one") {
            ctx = ctx.file(path, &text);
        }
        let tag = engine.unique_tag(&format!("local-{installer}"));
        let args = [
            "--network=host",
            "-f",
            &ctx.join("stack.toml"),
            "-t",
            &tag,
            ctx.path_str(),
        ];
        let build = engine.buildx_build(&args);
        build.assert_vertex("install lsdemo-a==1.0 ./libs/common");
        assert_eq!(
            engine.docker_run(&tag, &[]).trim(),
            "one 1.0 False",
            "{installer}: the package is installed, no file of its source mount is in the image"
        );
        // A change to the package re-runs the install (its files are the step's input).
        let (path, text) = common_lib("two")[1].clone();
        std::fs::write(ctx.path().join(path), text).unwrap();
        let build = engine.buildx_build(&args);
        let step = build
            .vertex("install lsdemo-a==1.0 ./libs/common")
            .expect("the install step");
        assert!(
            !step.cached,
            "{installer}: the changed package must be rebuilt"
        );
        assert_eq!(
            engine.docker_run(&tag, &[]).trim(),
            "two 1.0 False",
            "{installer}"
        );
        engine.remove_image(&tag);
    }
}
