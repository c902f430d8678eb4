//! Images defined by a Dockerfile (`dockerfile = …`): what the edge asks BuildKit's
//! Dockerfile frontend (`dockerfile.v0`, solved through the gateway) — its frontend options
//! and its two inputs, the Dockerfile and the context directory, as LLB made here. The answer
//! comes back as [`super::DockerfileResult`] and is spliced in by [`super::convert`].

use std::collections::BTreeMap;

use crate::llb::{FileAction, Graph, VertexMeta};
use crate::pb;
use crate::plan::{BuildOptions, ContextOptions, DockerfileBuild, Network};
use crate::platform::Platform;

use super::exec::local_source;
use super::{meta, names};

/// The frontend BuildKit builds Dockerfiles with.
pub const DOCKERFILE_FRONTEND: &str = "dockerfile.v0";

/// One Solve request for the Dockerfile frontend.
#[derive(Clone, Debug)]
pub struct DockerfileRequest {
    /// `filename`, `target`, `platform`, `build-arg:NAME`, `image-resolve-mode`,
    /// `force-network-mode`, `add-hosts`, `no-cache`.
    pub frontend_opts: BTreeMap<String, String>,
    /// `dockerfile` (the Dockerfile at `filename`) and `context` (the context directory at
    /// the root), the frontend inputs the Dockerfile frontend reads instead of its locals.
    pub inputs: BTreeMap<String, pb::Definition>,
}

/// The request that builds `build` (of image `image`) for `platform`. `context_excludes` are the patterns of the
/// context directory's own `.dockerignore` (relative to it), which the edge reads; a context
/// directory other than the root gets only those, as `docker build DIR` would.
pub fn dockerfile_request(
    opts: &BuildOptions,
    image: &str,
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
    // The request's own settings apply to the Dockerfile's steps too: the RUN network
    // (`--network`), `--add-host`, `--no-cache` (all, or naming this image).
    match opts.network {
        Network::Sandbox => {}
        Network::Host => {
            fo.insert("force-network-mode".to_string(), "host".to_string());
        }
        Network::None => {
            fo.insert("force-network-mode".to_string(), "none".to_string());
        }
    }
    if !opts.extra_hosts.is_empty() {
        let hosts: Vec<String> = opts
            .extra_hosts
            .iter()
            .map(|(h, ip)| format!("{h}={ip}"))
            .collect();
        fo.insert("add-hosts".to_string(), hosts.join(","));
    }
    if opts.no_cache || opts.no_cache_filter.iter().any(|n| *n == image) {
        fo.insert("no-cache".to_string(), String::new());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{DockerfileResult, NoImages, ResolvedImages, convert};
    use crate::llb::op_digests;
    use crate::plan::{Base, Plan};
    use crate::source::SourceFile;

    const STACK: &str = r#"[args]
GREETING = "hi"

[layers.tool]
dockerfile = { file = "./services/tool/Dockerfile", target = "final", args = { GREETING = "${GREETING}!" } }

[services.api]
from = "tool"
env = { API = "1" }

[services.worker]
from = "debian:bookworm-slim"
copy = [{ from = "tool", src = "/opt/tool", dest = "/opt/tool" }]
"#;

    fn load(stack: &str, target: &str) -> (SourceFile, BuildOptions, Plan) {
        let file = SourceFile::new("stack.toml", stack);
        let opts = BuildOptions {
            target: Some(target.into()),
            ..Default::default()
        };
        let (_, plan) = crate::load(&file, &opts).expect("valid stack");
        (file, opts, plan)
    }

    /// What the Dockerfile frontend would answer: some other graph's Definition, as Go marshals
    /// it (ours encodes ops the same way), and a config.
    fn answer() -> DockerfileResult {
        let mut g = Graph::new();
        let base = g.image(
            "docker.io/library/debian:bookworm-slim",
            &Platform::linux_amd64(),
            None,
            VertexMeta {
                name: "[final 1/2] FROM debian".into(),
                ..Default::default()
            },
        );
        let out = g.file(
            Some(base),
            vec![FileAction::Mkdir {
                path: "/opt/tool".into(),
                mode: 0o755,
                owner: None,
            }],
            &Platform::linux_amd64(),
            VertexMeta {
                name: "[final 2/2] WORKDIR /opt/tool".into(),
                ..Default::default()
            },
        );
        let source = SourceFile::new("Dockerfile", "FROM debian\nWORKDIR /opt/tool\n");
        let mut definition = g.marshal(out, None);
        definition.source = Some(pb::Source {
            locations: BTreeMap::from([(
                op_digests(&definition)[1].clone(),
                pb::Locations {
                    locations: vec![pb::Location {
                        source_index: 0,
                        ranges: vec![crate::llb::source_range(&source, Span::new(12, 28))],
                    }],
                },
            )]),
            infos: vec![pb::SourceInfo {
                filename: "Dockerfile".into(),
                data: source.text.clone().into_bytes(),
                definition: None,
                language: "Dockerfile".into(),
            }],
        });
        DockerfileResult {
            definition,
            config: br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin","TOOL_HOME=/opt/tool"],"WorkingDir":"/opt/tool"},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec(),
        }
    }

    use crate::source::Span;

    #[test]
    fn the_plan_carries_the_dockerfile_build_and_its_context_reads() {
        let (_, _, plan) = load(STACK, "api");
        let tool = &plan.images[0];
        let Base::Dockerfile(b) = &tool.base else {
            panic!("{:?}", tool.base)
        };
        assert_eq!(b.file, "services/tool/Dockerfile");
        // The context defaults to the Dockerfile's directory; args are interpolated.
        assert_eq!(b.context, "services/tool");
        assert_eq!(b.target.as_deref(), Some("final"));
        assert_eq!(b.args, vec![("GREETING".to_string(), "hi!".to_string())]);
        assert!(tool.steps.is_empty());
        let reads: Vec<(Vec<String>, String)> = tool
            .context_reads()
            .into_iter()
            .map(|r| (r.paths, r.key))
            .collect();
        assert_eq!(
            reads,
            vec![
                (
                    vec!["services/tool/Dockerfile".to_string()],
                    "layers.tool.dockerfile.file".to_string()
                ),
                (
                    vec!["services/tool".to_string()],
                    "layers.tool.dockerfile.context".to_string()
                ),
            ]
        );
        assert_eq!(plan.dockerfile_builds().len(), 1);
    }

    #[test]
    fn the_request_names_the_file_target_args_platform_and_both_inputs() {
        let (_, opts, plan) = load(STACK, "api");
        let Base::Dockerfile(b) = &plan.images[0].base else {
            panic!()
        };
        let mut opts = opts;
        opts.network = Network::Host;
        opts.no_cache_filter = vec!["tool".into()];
        let req = dockerfile_request(
            &opts,
            "tool",
            b,
            &plan.platform,
            &["*.log".into(), "!keep.log".into()],
        );
        let o = &req.frontend_opts;
        assert_eq!(o["filename"], "services/tool/Dockerfile");
        assert_eq!(o["target"], "final");
        assert_eq!(o["build-arg:GREETING"], "hi!");
        assert_eq!(o["platform"], plan.platform.id());
        assert_eq!(o["force-network-mode"], "host");
        assert_eq!(o["no-cache"], "");
        assert_eq!(
            req.inputs.keys().collect::<Vec<_>>(),
            ["context", "dockerfile"]
        );
        let text = crate::llb::dump(&req.inputs["context"]);
        // The context directory, with its own .dockerignore's patterns under it, copied to
        // the root of the input.
        assert!(text.contains("services/tool"), "{text}");
        assert!(text.contains("services/tool/*.log"), "{text}");
        assert!(text.contains("!services/tool/keep.log"), "{text}");
        let text = crate::llb::dump(&req.inputs["dockerfile"]);
        assert!(text.contains("services/tool/Dockerfile"), "{text}");
    }

    #[test]
    fn the_answer_is_spliced_byte_for_byte_and_its_config_is_the_base_config() {
        let (file, opts, plan) = load(STACK, "api");
        let Base::Dockerfile(b) = &plan.images[0].base else {
            panic!()
        };
        let answer = answer();
        let mut images = ResolvedImages::default();
        images
            .dockerfiles
            .insert((b.key(), plan.platform.id()), answer.clone());
        let out = convert(&plan, &opts, &images, &file).expect("converts");
        let def = &out.definition;
        // Every op of the answer (not its terminal) is in ours, with the same bytes…
        let (_, theirs) = answer.definition.def.split_last().unwrap();
        for op in theirs {
            assert!(def.def.contains(op), "an op of the answer is missing");
        }
        // …with its metadata, and its source map after ours (index 1).
        let digests = op_digests(&answer.definition);
        assert_eq!(
            def.metadata[&digests[1]].description["llb.customname"],
            "[final 2/2] WORKDIR /opt/tool"
        );
        let src = def.source.as_ref().expect("a source map");
        assert_eq!(src.infos[0].filename, "stack.toml");
        assert_eq!(src.infos[1].filename, "Dockerfile");
        assert_eq!(src.locations[&digests[1]].locations[0].source_index, 1);
        // The service's config starts from the Dockerfile image's.
        let config: serde_json::Value = serde_json::from_slice(&out.image_config).unwrap();
        let env = config["config"]["Env"].to_string();
        assert!(
            env.contains("TOOL_HOME=/opt/tool") && env.contains("API=1"),
            "{env}"
        );
        assert_eq!(config["config"]["WorkingDir"], "/opt/tool");
        // Deterministic.
        let again = convert(&plan, &opts, &images, &file).unwrap();
        assert_eq!(again.definition, out.definition);

        // An artifact source too: the worker copies out of the spliced result.
        let (file, opts, plan) = load(STACK, "worker");
        let out = convert(&plan, &opts, &images, &file).expect("converts");
        let text = crate::llb::dump(&out.definition);
        assert!(text.contains("WORKDIR /opt/tool"), "{text}");
        assert!(text.contains("artifact /opt/tool"), "{text}");
    }

    #[test]
    fn offline_there_is_no_stand_in_but_a_located_error() {
        let (file, opts, plan) = load(STACK, "api");
        let err = convert(&plan, &opts, &NoImages, &file).unwrap_err();
        let d = &err.items[0];
        assert!(d.message.contains("Dockerfile frontend"), "{}", d.message);
        assert_eq!(file.line_col(d.span.unwrap().start).line, 5);
    }

    #[test]
    fn a_malformed_answer_is_an_error() {
        let (file, opts, plan) = load(STACK, "api");
        let Base::Dockerfile(b) = &plan.images[0].base else {
            panic!()
        };
        let mut bad = answer();
        // Drop the base image op: the next op's input is unknown.
        bad.definition.def.remove(0);
        let mut images = ResolvedImages::default();
        images
            .dockerfiles
            .insert((b.key(), plan.platform.id()), bad);
        let err = convert(&plan, &opts, &images, &file).unwrap_err();
        assert!(
            err.items[0].message.contains("not usable LLB"),
            "{}",
            err.items[0].message
        );
    }

    #[test]
    fn dockerfile_images_take_no_other_build_keys() {
        let file = SourceFile::new(
            "stack.toml",
            "[layers.tool]\ndockerfile = \"Dockerfile\"\napt = [\"curl\"]\nfrom = \"debian\"\n",
        );
        let diags = crate::check(&file, &BuildOptions::default());
        let keys: Vec<_> = diags
            .items
            .iter()
            .filter(|d| d.message.contains("cannot be combined"))
            .map(|d| d.key.clone().unwrap_or_default())
            .collect();
        assert_eq!(keys, ["layers.tool.apt", "layers.tool.from"], "{diags:?}");
        // A table needs `file`; unknown keys are named.
        let file = SourceFile::new(
            "stack.toml",
            "[layers.tool]\ndockerfile = { context = \"x\", targett = \"y\" }\n",
        );
        let diags = crate::check(&file, &BuildOptions::default());
        let text: Vec<_> = diags.items.iter().map(|d| d.message.clone()).collect();
        assert!(text.iter().any(|m| m.contains("needs `file`")), "{text:?}");
        assert!(text.iter().any(|m| m.contains("targett")), "{text:?}");
    }
}
