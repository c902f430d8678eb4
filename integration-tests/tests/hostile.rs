//! Hostile build args in a real build (issue 14): `--build-arg X='x; touch /pwned'` must stay
//! data in `run`, shell-form `cmd` and a string `healthcheck` (it created `/pwned` and went
//! into the image's `Cmd` and `Healthcheck` as code).

use integration_tests::{Context, frontend_image, nonce};

#[test]
fn build_args_never_become_shell_code() {
    let Some(engine) =
        integration_tests::engine_with_frontend("build_args_never_become_shell_code")
    else {
        return;
    };
    let stack = format!(
        "# syntax={}\n[args]\nX = \"\"\n[services.app]\nfrom = \"debian:bookworm-slim\"\n\
         run = [\"echo {} >/dev/null; printf '%s|' ${{X}} \\\"${{X}}\\\" > /out\"]\n\
         cmd = \"echo ${{X}}\"\nhealthcheck = {{ cmd = \"test -n ${{X}}\" }}\n",
        frontend_image(),
        nonce()
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let tag = engine.unique_tag("hostile-args");
    engine.buildx_build(&[
        "--build-arg",
        "X=x; touch /pwned",
        "-f",
        &ctx.join("stack.toml"),
        "-t",
        &tag,
        ctx.path_str(),
    ]);
    let out = engine.docker_run(&tag, &["sh", "-c", "test ! -e /pwned && cat /out"]);
    assert_eq!(out.trim(), "x;|touch|/pwned|x; touch /pwned|");
    let config = &engine.image_inspect(&tag)["Config"];
    let want = "X='x; touch /pwned'; echo ${X}";
    assert_eq!(config["Cmd"], serde_json::json!(["/bin/sh", "-c", want]));
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "X='x; touch /pwned'; test -n ${X}"])
    );
    // Running the image's Cmd prints the value and creates nothing.
    let out = engine.docker_run(&tag, &[]);
    assert_eq!(out.trim(), "x; touch /pwned");
    engine.remove_image(&tag);
}
