//! Images defined by a Dockerfile (`dockerfile = …`): what the edge asks BuildKit's
//! Dockerfile frontend (`dockerfile.v0`, solved through the gateway) — its frontend options
//! and its two inputs, the Dockerfile and the context directory, as LLB made here. The answer
//! comes back as [`super::DockerfileResult`] and is spliced in by [`super::convert`].

use std::collections::BTreeMap;

use crate::llb::{FileAction, Graph, VertexMeta};
use crate::pb;
use crate::plan::{BuildOptions, ContextOptions, DockerfileBuild};
use crate::platform::Platform;

use super::exec::local_source;
use super::{meta, names};

/// The frontend BuildKit builds Dockerfiles with.
pub const DOCKERFILE_FRONTEND: &str = "dockerfile.v0";

/// One Solve request for the Dockerfile frontend.
#[derive(Clone, Debug)]
pub struct DockerfileRequest {
    /// `filename`, `target`, `platform`, `build-arg:NAME`, `image-resolve-mode`.
    pub frontend_opts: BTreeMap<String, String>,
    /// `dockerfile` (the Dockerfile at `filename`) and `context` (the context directory at
    /// the root), the frontend inputs the Dockerfile frontend reads instead of its locals.
    pub inputs: BTreeMap<String, pb::Definition>,
}

/// The request that builds `build` for `platform`. `context_excludes` are the patterns of the
/// context directory's own `.dockerignore` (relative to it), which the edge reads; a context
/// directory other than the root gets only those, as `docker build DIR` would.
pub fn dockerfile_request(
    opts: &BuildOptions,
    build: &DockerfileBuild,
    platform: &Platform,
    context_excludes: &[String],
) -> DockerfileRequest {
    let mut fo = BTreeMap::new();
    fo.insert("filename".to_string(), build.file.clone());
    if let Some(t) = &build.target {
        fo.insert("target".to_string(), t.clone());
    }
    fo.insert("platform".to_string(), platform.id());
    for (k, v) in &build.args {
        fo.insert(format!("build-arg:{k}"), v.clone());
    }
    if let Some(m) = opts.image_resolve_mode.as_deref().filter(|m| !m.is_empty()) {
        fo.insert("image-resolve-mode".to_string(), m.to_string());
    }
    let mut inputs = BTreeMap::new();
    inputs.insert("dockerfile".to_string(), dockerfile_input(opts, build));
    inputs.insert(
        "context".to_string(),
        context_input(opts, build, platform, context_excludes),
    );
    DockerfileRequest {
        frontend_opts: fo,
        inputs,
    }
}

/// The Dockerfile alone, at its path (the `filename` option names it there).
fn dockerfile_input(opts: &BuildOptions, build: &DockerfileBuild) -> pb::Definition {
    let mut g = Graph::new();
    let out = local_source(
        &mut g,
        &opts.context,
        std::slice::from_ref(&build.file),
        true,
        meta(
            names::internal(format!("load Dockerfile {}", build.file)),
            build.span,
        ),
    );
    g.marshal(out, None)
}

/// The context directory at the root of a state; `.` is the whole build context with the
/// root `.dockerignore`.
fn context_input(
    opts: &BuildOptions,
    build: &DockerfileBuild,
    platform: &Platform,
    excludes: &[String],
) -> pb::Definition {
    let mut g = Graph::new();
    let m = meta(
        names::internal(format!("load Dockerfile context {}", build.context)),
        build.span,
    );
    if build.context == "." {
        let ctx = ContextOptions {
            exclude_patterns: if excludes.is_empty() {
                opts.context.exclude_patterns.clone()
            } else {
                excludes.to_vec()
            },
            ..opts.context.clone()
        };
        let out = local_source(&mut g, &ctx, &[".".to_string()], true, m);
        return g.marshal(out, None);
    }
    let ctx = ContextOptions {
        exclude_patterns: excludes
            .iter()
            .map(|p| match p.strip_prefix('!') {
                Some(rest) => format!("!{}/{}", build.context, rest.trim_start_matches('/')),
                None => format!("{}/{}", build.context, p.trim_start_matches('/')),
            })
            .collect(),
        ..opts.context.clone()
    };
    let src = local_source(
        &mut g,
        &ctx,
        std::slice::from_ref(&build.context),
        true,
        m.clone(),
    );
    let out = g.file(
        None,
        vec![FileAction::Copy {
            from: src,
            src: format!("/{}", build.context),
            dest: "/".into(),
            owner: None,
            mode: None,
            dir_contents: true,
            exclude: vec![],
            wildcard: false,
            allow_empty: false,
        }],
        platform,
        VertexMeta {
            name: names::internal(format!("context {}", build.context)),
            ..m
        },
    );
    g.marshal(out, None)
}
