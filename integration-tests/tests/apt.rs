//! apt beyond a package list, and requirements files that include others, on a real engine:
//! `apt-recommends` on and off (wget recommends ca-certificates, which debian:bookworm-slim
//! lacks), a local `.deb` from the context (built here with `dpkg-deb --build`) installed by
//! the same `apt-get install` that resolves its dependency, deb822 `apt-sources` signed by a
//! key from the context and by a keyring of the base image (a wrong key fails their check),
//! and a requirements file with `-r base.txt` and `-c constraints.txt` installing what both
//! say; and `install-env` with `$${PATH}`, as the hint for `${PATH}` suggests.

use integration_tests::pyindex::{PackageIndex, Wheel};
use integration_tests::{Context, engine_with_frontend, frontend_image};

const CHECK: &str = "for p in wget ca-certificates jq lsdemo-tool; do \
    printf '%s=%s\\n' $p \"$(dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -c 'install ok installed')\"; done";

fn apt_stack() -> String {
    format!(
        "# syntax={}\n\
         [services.plain]\nfrom = \"debian:bookworm-slim\"\napt = [\"wget\"]\n\n\
         [services.full]\nfrom = \"debian:bookworm-slim\"\n\
         apt = [\"wget\", \"./debs/lsdemo-tool_1.0_all.deb\"]\napt-recommends = true\n\
         apt-sources = [\n\
           {{ name = \"backports\", uris = \"http://deb.debian.org/debian\", suites = \"bookworm-backports\", components = \"main\", key = \"keys/debian-archive.gpg\" }},\n\
           {{ uris = \"http://deb.debian.org/debian\", suites = \"bookworm-proposed-updates\", components = \"main\", architectures = \"amd64 arm64\", signed-by = \"/usr/share/keyrings/debian-archive-keyring.gpg\" }},\n\
         ]\n\n\
         [services.badkey]\nfrom = \"debian:bookworm-slim\"\napt = [\"jq\"]\n\
         apt-sources = {{ name = \"bad\", uris = \"http://deb.debian.org/debian\", suites = \"bookworm-backports\", components = \"main\", key = \"keys/bad.gpg\" }}\n",
        frontend_image()
    )
}

fn installed(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn apt_recommends_local_debs_and_signed_sources() {
    let Some(engine) = engine_with_frontend("apt_recommends_local_debs_and_signed_sources") else {
        return;
    };
    let keyring = std::fs::read("/usr/share/keyrings/debian-archive-keyring.gpg");
    let ctx = Context::new()
        .file("stack.toml", &apt_stack())
        // A nonce: the steps that read the context must run, not come from the cache, so
        // their logs can be read.
        .file(
            "keys/bad.gpg",
            &format!("not a keyring {}\n", integration_tests::nonce()),
        );
    integration_tests::deb::Deb {
        package: "lsdemo-tool",
        depends: Some("jq"),
        prints: "lsdemo-tool-ok",
    }
    .build(&ctx.path().join("debs/lsdemo-tool_1.0_all.deb"));
    match keyring {
        Ok(bytes) => std::fs::write(ctx.path().join("keys/debian-archive.gpg"), bytes).unwrap(),
        Err(e) => panic!("the host's /usr/share/keyrings/debian-archive-keyring.gpg: {e}"),
    }

    // Recommends off (the default): wget without ca-certificates.
    let (tag, build) = engine.build_target("apt", ctx.path(), "plain", &[]);
    build.assert_vertex("[service plain 1/1] apt-get install wget");
    let plain = installed(&engine.docker_run(&tag, &["sh", "-c", CHECK]));
    engine.remove_image(&tag);
    assert_eq!(plain["wget"], "1", "{plain:?}");
    assert_eq!(
        plain["ca-certificates"], "0",
        "no recommends by default: {plain:?}"
    );

    // Recommends on, a local .deb (its dependency jq resolved in the same step), two signed
    // sources written before apt-get update.
    let (tag, build) = engine.build_target("apt", ctx.path(), "full", &[]);
    build.assert_vertex(
        "[service full] apt files debs/lsdemo-tool_1.0_all.deb keys/debian-archive.gpg",
    );
    build.assert_vertex("[service full 1/1] apt sources backports full-2; apt-get install wget");
    let log = &build
        .vertex("[service full 1/1] apt sources backports full-2")
        .expect("the apt step")
        .logs;
    assert!(
        log.contains("bookworm-backports InRelease")
            && log.contains("bookworm-proposed-updates InRelease")
            && !log.contains("NO_PUBKEY")
            && !log.contains("Err:"),
        "both sources are fetched and verified with their keys:\n{log}"
    );
    let full = installed(&engine.docker_run(&tag, &["sh", "-c", CHECK]));
    assert_eq!(full["wget"], "1", "{full:?}");
    assert_eq!(
        full["ca-certificates"], "1",
        "recommends installed: {full:?}"
    );
    assert_eq!(full["lsdemo-tool"], "1", "the local .deb: {full:?}");
    assert_eq!(
        full["jq"], "1",
        "its dependency, from the repository: {full:?}"
    );
    assert_eq!(
        engine.docker_run(&tag, &["lsdemo-tool"]).trim(),
        "lsdemo-tool-ok"
    );
    let files = engine.docker_run(
        &tag,
        &[
            "sh",
            "-c",
            "cat /etc/apt/sources.list.d/layerstack-backports.sources /etc/apt/sources.list.d/layerstack-full-2.sources; \
             cmp /etc/apt/keyrings/layerstack-backports.gpg /usr/share/keyrings/debian-archive-keyring.gpg >/dev/null && echo same-key; \
             find /run/layerstack -type f 2>/dev/null | wc -l",
        ],
    );
    engine.remove_image(&tag);
    for want in [
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /etc/apt/keyrings/layerstack-backports.gpg\n",
        "Suites: bookworm-proposed-updates\nComponents: main\nArchitectures: amd64 arm64\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        "same-key\n0\n",
    ] {
        assert!(files.contains(want), "{want:?} in:\n{files}");
    }

    // A key that does not sign the repository: apt-get update reports it for that source (and
    // ignores the source), so the file is really read with its Signed-By.
    let (tag, build) = engine.build_target("apt", ctx.path(), "badkey", &[]);
    engine.remove_image(&tag);
    let log = &build
        .vertex("[service badkey 1/1] apt sources bad; apt-get install jq")
        .expect("the apt step")
        .logs;
    assert!(
        log.contains("bookworm-backports InRelease") && log.contains("NO_PUBKEY"),
        "a wrong key fails the signature check of its source:\n{log}"
    );
}

#[test]
fn requirements_includes_are_staged() {
    let Some(engine) = engine_with_frontend("requirements_includes_are_staged") else {
        return;
    };
    let index = PackageIndex::serve(&[
        Wheel::pure("lsdemo-a", "1.0"),
        Wheel::pure("lsdemo-a", "2.0"),
        Wheel::pure("lsdemo-b", "1.0"),
        Wheel::pure("lsdemo-b", "2.0"),
    ]);
    let stack = format!(
        "# syntax={}\n[services.app]\nfrom = \"python:3.12-slim\"\nrequirements = [\"app/requirements.txt\"]\n\
         index-url = \"{}\"\ninstall-env = {{ PIP_TRUSTED_HOST = \"127.0.0.1\" }}\n\
         cmd = [\"python3\", \"-c\", \"import lsdemo_a, lsdemo_b; print(lsdemo_a.__version__, lsdemo_b.__version__)\"]\n",
        frontend_image(),
        index.url()
    );
    let ctx = Context::new()
        .file("stack.toml", &stack)
        // `-r` relative to the including file, nested; `-c` caps what the top file asks for.
        .file(
            "app/requirements.txt",
            "-r ../common/base.txt\n-c constraints.txt\nlsdemo-a\n",
        )
        .file("common/base.txt", "--requirement pins.txt\n")
        .file("common/pins.txt", "lsdemo-b==1.0\n")
        .file("app/constraints.txt", "lsdemo-a<2\n");
    let (tag, build) = engine.build_target("reqinc", ctx.path(), "app", &[]);
    build.assert_vertex("[service app 1/1] pip install -r app/requirements.txt");
    let out = engine.docker_run(&tag, &[]);
    engine.remove_image(&tag);
    assert_eq!(
        out.trim(),
        "1.0 1.0",
        "both the include and the constraint apply"
    );

    // A missing include stops the build before any step runs, naming the including file.
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file(
            "app/requirements.txt",
            "-r ../common/base.txt\n-c constraints.txt\nlsdemo-a\n",
        )
        .file("common/base.txt", "lsdemo-b==1.0\n");
    let tag = engine.unique_tag("reqinc-missing");
    let failed = engine
        .try_buildx_build(&[
            "--network=host",
            "-f",
            &ctx.join("stack.toml"),
            "-t",
            &tag,
            ctx.path_str(),
        ])
        .expect_err("a missing include is an error");
    let report = failed.failure_report();
    assert!(
        report.contains("line 2 of `app/requirements.txt`")
            && report.contains("`app/constraints.txt` is not in the build context"),
        "{report}"
    );
    assert!(failed.vertex("pip install").is_none(), "{report}");
}

/// `install-env = { PATH = "/opt/tools/bin:$${PATH}" }`, what the hint for `${PATH}` suggests:
/// install steps see the tools directory in front of the image's PATH (python3 still found),
/// never a literal `${PATH}`.
#[test]
fn install_env_path_as_the_hint_suggests() {
    let Some(engine) = engine_with_frontend("install_env_path_as_the_hint_suggests") else {
        return;
    };
    let stack = format!(
        "# syntax={}\n[layers.app]\nfrom = \"python:3.12-slim\"\n\
         install-env = {{ PATH = \"/opt/tools/bin:$${{PATH}}\" }}\n\
         run = [\"mkdir -p /opt/tools/bin && printf '#!/bin/sh\\\\necho tool-ok\\\\n' > /opt/tools/bin/tool && chmod +x /opt/tools/bin/tool\", \
         \"echo \\\"$PATH\\\" > /install-path; tool > /tool-out; python3 -c 'print(1)' > /py-out\"]\n",
        frontend_image()
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let (tag, _) = engine.build_target("installenv", ctx.path(), "app", &[]);
    let out = engine.docker_run(
        &tag,
        &[
            "sh",
            "-c",
            "cat /install-path /tool-out /py-out; echo \"$PATH\"",
        ],
    );
    engine.remove_image(&tag);
    let lines: Vec<&str> = out.lines().collect();
    assert!(!out.contains("${PATH}"), "{out}");
    assert_eq!(&lines[1..3], ["tool-ok", "1"], "{out}");
    // The image's PATH (without install-env) behind the tools directory.
    assert!(lines[3].contains("/usr/local/bin"), "{out}");
    assert_eq!(
        lines[0],
        format!("/opt/tools/bin:{}", lines[3]),
        "install steps get the image's PATH behind the tools: {out}"
    );
}
