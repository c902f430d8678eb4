//! Dockerfile images (`dockerfile = …`): each Dockerfile build of a plan is solved by
//! BuildKit's own Dockerfile frontend through the gateway (a Solve with `frontend =
//! dockerfile.v0`, its options and its two inputs, both made by `llb_gen::convert`). Its
//! answer — a Definition this module never looks inside, and the image config — goes to the
//! converter through `ResolvedImages::dockerfiles`, which splices it into the graph.

use std::collections::{BTreeMap, BTreeSet};

use llb_gen::convert::{DOCKERFILE_FRONTEND, DockerfileResult, ResolvedImages, dockerfile_request};
use llb_gen::diag::{Diagnostic, Diagnostics, StackError};
use llb_gen::plan::{self, BuildOptions, DockerfileBuild, Plan};

use crate::gateway::Gateway;
use crate::request::{Failure, Inputs, load_local};

/// The gateway capabilities a Dockerfile build needs: the Dockerfile frontend reads its
/// context and Dockerfile from frontend inputs, the result must come back with its
/// Definition (ref arrays) and its metadata (the image config).
pub const NEEDED_CAPS: &[&str] = &[
    "frontend.inputs",
    "proto.refarray",
    "gateway.solve.metadata",
];

/// A located error for each Dockerfile image when the engine lacks a capability it needs.
pub fn missing_caps(caps: &BTreeSet<String>, plan: &Plan, inputs: &Inputs) -> Result<(), Failure> {
    let missing: Vec<&str> = NEEDED_CAPS
        .iter()
        .copied()
        .filter(|c| !caps.contains(*c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut d = Diagnostics::default();
    for (i, b) in plan.dockerfile_builds() {
        d.push(
            Diagnostic::error(format!(
                "this engine's BuildKit lacks the gateway capabilities {} that building `{}` with the Dockerfile frontend needs",
                missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
                b.file
            ))
            .at(b.span)
            .key(format!("{}.dockerfile", plan.images[i].key))
            .hint("use a newer engine (Docker 28, or BuildKit v0.13 and later), or build this image with docker build and name it in `from`"),
        );
    }
    if d.has_errors() {
        return Err(Failure::from_stack(&StackError {
            file: inputs.file.clone(),
            diagnostics: d.sorted(),
        }));
    }
    Ok(())
}

/// Solve every Dockerfile build of `plans` (each once per platform) and record the answers in
/// `images`.
pub async fn solve_all(
    gw: &Gateway,
    inputs: &Inputs,
    bo: &BuildOptions,
    plans: &[&Plan],
    cache_imports: &[crate::pb::gateway::CacheOptionsEntry],
    images: &mut ResolvedImages,
) -> Result<(), Failure> {
    let mut todo: BTreeMap<(String, String), (&Plan, usize, &DockerfileBuild)> = BTreeMap::new();
    for p in plans {
        for (i, b) in p.dockerfile_builds() {
            todo.entry((b.key(), p.platform.id())).or_insert((*p, i, b));
        }
    }
    let solves = todo.into_iter().map(|(key, (p, i, b))| async move {
        let excludes = context_ignore(gw, bo, b).await?;
        let req = dockerfile_request(bo, &p.images[i].name, b, &p.platform, &excludes);
        let located = |message: String| {
            Failure::from_stack(&StackError {
                file: inputs.file.clone(),
                diagnostics: Diagnostics {
                    items: vec![
                        Diagnostic::error(message)
                            .at(b.span)
                            .key(format!("{}.dockerfile", p.images[i].key)),
                    ],
                },
            })
        };
        let r = gw
            .solve_frontend(
                DOCKERFILE_FRONTEND,
                req.frontend_opts,
                req.inputs,
                cache_imports.to_vec(),
            )
            .await
            .map_err(|e| {
                located(format!(
                    "building `{}`{} with the Dockerfile frontend: {}",
                    b.file,
                    b.target
                        .as_ref()
                        .map(|t| format!(" (target `{t}`)"))
                        .unwrap_or_default(),
                    e.message
                ))
            })?;
        let Some(config) = r.image_config().cloned() else {
            return Err(located(format!(
                "the Dockerfile frontend answered no image config for `{}`",
                b.file
            )));
        };
        Ok::<_, Failure>((
            key,
            DockerfileResult {
                definition: r.definition,
                config,
            },
        ))
    });
    for (key, result) in futures_util::future::try_join_all(solves).await? {
        images.dockerfiles.insert(key, result);
    }
    Ok(())
}

/// The patterns of the context directory's own `.dockerignore` (none for the whole context,
/// whose `.dockerignore` the request read already).
async fn context_ignore(
    gw: &Gateway,
    bo: &BuildOptions,
    b: &DockerfileBuild,
) -> Result<Vec<String>, Failure> {
    if b.context == "." {
        return Ok(vec![]);
    }
    let path = format!("{}/.dockerignore", b.context);
    let ctx = &bo.context;
    let mut attrs = BTreeMap::new();
    let list = serde_json::to_string(&[&path]).expect("strings");
    attrs.insert("local.followpaths".into(), list.clone());
    attrs.insert("local.includepattern".into(), list);
    attrs.insert(
        "local.sharedkeyhint".into(),
        format!("{}-dockerignore-{}", ctx.name, b.context),
    );
    if !ctx.session_id.is_empty() {
        attrs.insert("local.session".into(), ctx.session_id.clone());
    }
    let (r, _) = load_local(gw, &ctx.name, attrs, format!("[internal] load {path}")).await?;
    match gw.read_file(&r, &path, None).await {
        Ok(bytes) => Ok(plan::dockerignore_patterns(&String::from_utf8_lossy(
            &bytes,
        ))),
        Err(e) if e.is_not_found() => Ok(vec![]),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llb_gen::source::SourceFile;

    #[test]
    fn an_engine_without_the_caps_fails_at_the_dockerfile_line() {
        let text = "[layers.tool]\ndockerfile = \"tools/Dockerfile\"\n\n[services.api]\nfrom = \"python:3.12-slim\"\n";
        let file = SourceFile::new("stack.toml", text);
        let inputs = Inputs {
            file: file.clone(),
            exclude_patterns: vec![],
            file_vertex: String::new(),
            named_contexts: Default::default(),
        };
        let bo = BuildOptions {
            target: Some("tool".into()),
            ..Default::default()
        };
        let (_, plan) = llb_gen::load(&file, &bo).expect("valid");
        // BuildKit 0.8 (dockerd 20.10): no gateway.solve.metadata.
        let old: BTreeSet<String> = ["frontend.inputs", "proto.refarray"]
            .into_iter()
            .map(String::from)
            .collect();
        let err = missing_caps(&old, &plan, &inputs).unwrap_err();
        assert!(err.message.contains("stack.toml:2"), "{}", err.message);
        assert!(
            err.message.contains("gateway.solve.metadata"),
            "{}",
            err.message
        );
        let all: BTreeSet<String> = NEEDED_CAPS.iter().map(|c| c.to_string()).collect();
        assert!(missing_caps(&all, &plan, &inputs).is_ok());
        // A plan without Dockerfile images needs none of them.
        let bo = BuildOptions {
            target: Some("api".into()),
            ..Default::default()
        };
        let (_, plan) = llb_gen::load(&file, &bo).expect("valid");
        assert!(missing_caps(&BTreeSet::new(), &plan, &inputs).is_ok());
    }
}
