//! MergeOp app layers: a service's files are copied onto scratch and merged onto its base, so
//! a changed base re-runs only the base steps and the merge, never the service's copies; and
//! the fallback (plain chaining, as on engines without the `mergeop` cap) re-runs them.

use integration_tests::{Context, Engine, frontend_image};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

fn stack(base_step: &str) -> String {
    format!(
        "# syntax={}\n[layers.base]\nfrom = \"debian:bookworm-slim\"\nuser = {{ name = \"appuser\", uid = 1234, gid = 1234 }}\nworkdir = \"/app\"\nrun = [\"echo {base_step} > /base-version\"]\n\
         [services.app]\nfrom = \"base\"\ncopy = [\"src\"]\ncmd = [\"sh\", \"-c\", \"cat /base-version /app/src/main.txt; stat -c '%u %n' /app /app/src/main.txt\"]\n",
        frontend_image()
    )
}

fn rebuild_after_base_change(
    engine: &Engine,
    extra: &[&str],
) -> (integration_tests::Build, String) {
    let nonce = integration_tests::nonce();
    let ctx = Context::new()
        .file("stack.toml", &stack(&format!("v1-{nonce}")))
        .file("src/main.txt", "app code\n");
    let tag = engine.unique_tag("merge");
    let mut args: Vec<String> = vec![
        "-f".into(),
        ctx.join("stack.toml"),
        "-t".into(),
        tag.clone(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(ctx.path_str().into());
    let build =
        |a: &[String]| engine.buildx_build(&a.iter().map(String::as_str).collect::<Vec<_>>());
    build(&args);
    std::fs::write(ctx.path().join("stack.toml"), stack(&format!("v2-{nonce}"))).unwrap();
    let second = build(&args);
    let out = engine.docker_run(&tag, &[]);
    engine.remove_image(&tag);
    assert!(
        out.contains(&format!("v2-{nonce}")),
        "the new base is in the image:\n{out}"
    );
    assert!(out.contains("app code"), "{out}");
    assert!(
        out.contains("1234 /app\n") && out.contains("1234 /app/src/main.txt"),
        "ownership survives the merge:\n{out}"
    );
    (second, out)
}

fn exact<'b>(build: &'b integration_tests::Build, name: &str) -> &'b integration_tests::Vertex {
    build
        .progress
        .vertices
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vertex named {name:?}:\n{}", build.progress.summary()))
}

#[test]
fn with_mergeop_a_new_base_does_not_rerun_the_service_copy() {
    let Some(engine) = engine("with_mergeop_a_new_base_does_not_rerun_the_service_copy") else {
        return;
    };
    let (second, _) = rebuild_after_base_change(engine, &[]);
    if engine.is_old() {
        // BuildKit v0.8 (dockerd 20.10) has no `mergeop` cap: the frontend chains instead.
        assert!(
            second.vertex("(merge)").is_none(),
            "no merge vertex without the mergeop cap:\n{}",
            second.progress.summary()
        );
        let copy = exact(&second, "[service app 1/1] copy src");
        assert!(
            !copy.cached,
            "chained on the new base (fallback), the copy runs again: {copy:?}"
        );
        return;
    }
    let copy = exact(&second, "[service app 1/1] copy src");
    assert!(
        copy.cached,
        "the service's copy must come from the cache after a base change: {copy:?}"
    );
    let merge = second.vertex("copy src (merge)").expect("the merge vertex");
    assert!(!merge.cached, "only the merge re-runs: {merge:?}");
    let base = second
        .vertex("[layer base 3/3] run")
        .expect("the base step");
    assert!(!base.cached, "{base:?}");
}

#[test]
fn without_mergeop_the_copy_is_chained_and_reruns() {
    let Some(engine) = engine("without_mergeop_the_copy_is_chained_and_reruns") else {
        return;
    };
    let (second, _) = rebuild_after_base_change(engine, &["--build-arg", "LAYERSTACK_MERGE=false"]);
    assert!(
        second.vertex("(merge)").is_none(),
        "no merge vertex in the fallback"
    );
    let copy = exact(&second, "[service app 1/1] copy src");
    assert!(
        !copy.cached,
        "chained on the new base, the copy runs again: {copy:?}"
    );
}

#[test]
fn copies_outside_the_workdir_are_chained_so_parents_keep_their_owner() {
    let Some(engine) = engine("copies_outside_the_workdir_are_chained_so_parents_keep_their_owner")
    else {
        return;
    };
    let stack = format!(
        "# syntax={}\n[layers.base]\nfrom = \"debian:bookworm-slim\"\nuser = {{ name = \"appuser\", uid = 1234, gid = 1234 }}\nworkdir = \"/app\"\n\
         [services.app]\nfrom = \"base\"\ncopy = [{{ src = \"conf\", dest = \"/etc/app\" }}, {{ src = \"src\", chown = false }}]\ncmd = [\"stat\", \"-c\", \"%u %n\", \"/etc\", \"/etc/app\", \"/app\", \"/app/src\"]\n",
        frontend_image()
    );
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("conf/app.ini", "x=1\n")
        .file("src/main.txt", "code\n");
    let tag = engine.unique_tag("merge-parents");
    let build = engine.buildx_build(&["-f", &ctx.join("stack.toml"), "-t", &tag, ctx.path_str()]);
    // Neither copy may be merged: one leaves the workdir, the other has another owner.
    assert!(
        build.vertex("(merge)").is_none(),
        "{}",
        build.progress.summary()
    );
    let out = engine.docker_run(&tag, &[]);
    engine.remove_image(&tag);
    assert!(out.contains("0 /etc\n"), "/etc must stay root's:\n{out}");
    assert!(out.contains("1234 /etc/app\n"), "{out}");
    assert!(
        out.contains("1234 /app\n"),
        "the workdir keeps its owner:\n{out}"
    );
    assert!(
        out.contains("0 /app/src"),
        "chown = false copies as root:\n{out}"
    );
}

/// Debian has a group `operator` (gid 37) and no such user: `user = { name = "operator",
/// uid = 1000 }` joins that group, as `useradd -g operator` in a Dockerfile would, and the
/// service's copies get gid 37 too (not a guessed 1000 that exists nowhere), so they are
/// chained and owned by name. With an explicit gid the group is that gid and the copy merges.
#[test]
fn copies_get_the_group_the_user_really_has() {
    let Some(engine) = engine("copies_get_the_group_the_user_really_has") else {
        return;
    };
    for (name, user, want, merged) in [
        (
            "operator",
            "{ name = \"operator\", uid = 1000 }",
            "1000 37",
            false,
        ),
        (
            "app",
            "{ name = \"app\", uid = 1000, gid = 1001 }",
            "1000 1001",
            true,
        ),
    ] {
        let stack = format!(
            "# syntax={}\n[layers.base]\nfrom = \"debian:bookworm-slim\"\nuser = {user}\nworkdir = \"/app\"\n\
             [services.app]\nfrom = \"base\"\ncopy = [\"src\"]\ncmd = [\"sh\", \"-c\", \"id -g {name}; stat -c '%u %g' /app/src/main.txt\"]\n",
            frontend_image()
        );
        let ctx = Context::new()
            .file("stack.toml", &stack)
            .file("src/main.txt", "code\n");
        let tag = engine.unique_tag("merge-group");
        let build =
            engine.buildx_build(&["-f", &ctx.join("stack.toml"), "-t", &tag, ctx.path_str()]);
        let out = engine.docker_run(&tag, &[]);
        engine.remove_image(&tag);
        let gid = want.split(' ').nth(1).unwrap();
        assert_eq!(out, format!("{gid}\n{want}\n"), "{user}");
        if !engine.is_old() {
            assert_eq!(
                build.vertex("copy src (merge)").is_some(),
                merged,
                "{user}:\n{}",
                build.progress.summary()
            );
        }
    }
}
