//! One build request: read the stack and `.dockerignore`, plan and convert each platform,
//! resolve base images, solve, and assemble the result the image exporter expects.

use std::collections::BTreeMap;

use llb_gen::convert::{
    CrossEnv, CrossVerdict, NoImages, Probe, ResolvedImages, convert, convert_cross,
};
use llb_gen::diag::StackError;
use llb_gen::llb::{Graph, VertexMeta};
use llb_gen::plan::{BuildOptions, ContextOptions, Network};
use llb_gen::platform::Platform;
use llb_gen::source::SourceFile;
use llb_gen::{pb, plan};

use crate::gateway::{Gateway, GatewayError, ResultBuilder, source_detail};
use crate::opts::FrontendOpts;

/// A failed build: the message buildx prints and optional error details (source location).
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub details: Vec<prost_types::Any>,
}

impl Failure {
    pub fn plain(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            details: vec![],
        }
    }

    /// All diagnostics in the message; the first error's location as the source detail, so
    /// buildx shows the stack.toml excerpt.
    pub fn from_stack(e: &StackError) -> Failure {
        let mut message = String::new();
        let errors: Vec<String> = e
            .diagnostics
            .errors()
            .map(|d| d.one_line(&e.file))
            .collect();
        message.push_str(&errors.join("\n"));
        let mut details = vec![];
        if let Some(span) = e.primary().and_then(|d| d.span) {
            let info = source_info(&e.file);
            let range = llb_gen::llb::source_range(&e.file, span);
            details.push(source_detail(&info, &[range]));
        }
        Failure { message, details }
    }
}

impl From<GatewayError> for Failure {
    fn from(e: GatewayError) -> Failure {
        Failure::plain(e.message)
    }
}

pub fn source_info(file: &SourceFile) -> pb::SourceInfo {
    pb::SourceInfo {
        filename: file.name.clone(),
        data: file.text.clone().into_bytes(),
        definition: None,
        language: "toml".into(),
    }
}

/// The stack file and the context's ignore patterns, read through the gateway.
pub struct Inputs {
    pub file: SourceFile,
    pub exclude_patterns: Vec<String>,
    /// The digest of the vertex that loaded the stack file (warnings attach to it).
    pub file_vertex: String,
}

/// Solve a small definition that loads a local source and return its ref.
async fn load_local(
    gw: &Gateway,
    name: &str,
    attrs: BTreeMap<String, String>,
    display: String,
) -> Result<(String, String), Failure> {
    let mut g = Graph::new();
    let out = g.local(
        name,
        attrs,
        VertexMeta {
            name: display,
            ..Default::default()
        },
    );
    let def = g.marshal(out, None);
    let digest = llb_gen::llb::op_digests(&def)
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok((gw.solve(def).await?, digest))
}

pub async fn read_inputs(gw: &Gateway, opts: &FrontendOpts) -> Result<Inputs, Failure> {
    let filename = if opts.filename.is_empty() {
        "stack.toml".to_string()
    } else {
        opts.filename.clone()
    };
    let base = filename.rsplit('/').next().unwrap_or(&filename).to_string();
    let key = opts.dockerfile_key.clone();
    let mut attrs = BTreeMap::new();
    attrs.insert(
        "local.followpaths".into(),
        serde_json::to_string(&[base.clone(), format!("{base}.dockerignore")]).expect("strings"),
    );
    attrs.insert("local.sharedkeyhint".into(), base.clone());
    let sid = opts.session_for_local(&key);
    if !sid.is_empty() {
        attrs.insert("local.session".into(), sid.to_string());
    }
    let (r, file_vertex) = load_local(
        gw,
        &key,
        attrs,
        format!("[internal] load build definition from {base}"),
    )
    .await?;
    let bytes = match gw.read_file(&r, &base, None).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(Failure::plain(format!(
                "stack file `{base}` not found in the build definition directory (give it with -f path/to/stack.toml)"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let text =
        String::from_utf8(bytes).map_err(|_| Failure::plain(format!("{base}: not valid UTF-8")))?;
    // `<file>.dockerignore` beside the stack wins over the context's `.dockerignore`.
    let mut ignore = match gw
        .read_file(&r, &format!("{base}.dockerignore"), None)
        .await
    {
        Ok(b) => Some(b),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    if ignore.is_none() && opts.remote_context.is_none() {
        let ctx = opts.context_key.clone();
        let mut attrs = BTreeMap::new();
        attrs.insert("local.followpaths".into(), "[\".dockerignore\"]".into());
        attrs.insert("local.includepattern".into(), "[\".dockerignore\"]".into());
        attrs.insert("local.sharedkeyhint".into(), format!("{ctx}-dockerignore"));
        let sid = opts.session_for_local(&ctx);
        if !sid.is_empty() {
            attrs.insert("local.session".into(), sid.to_string());
        }
        let (r, _) = load_local(gw, &ctx, attrs, "[internal] load .dockerignore".into()).await?;
        ignore = match gw.read_file(&r, ".dockerignore", None).await {
            Ok(b) => Some(b),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
    }
    let exclude_patterns = ignore
        .map(|b| plan::dockerignore_patterns(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    Ok(Inputs {
        file: SourceFile::new(base, text),
        exclude_patterns,
        file_vertex,
    })
}

/// The platforms a stack asks for when `--platform` is not given: `[stack] platforms`, else
/// (when the worker's platform is not one of them) the first platform of the selected variant.
pub fn stack_platforms(opts: &FrontendOpts, stack: &llb_gen::stack::Stack) -> Vec<String> {
    let variant = plan::select_variant(stack, opts.target.as_deref())
        .ok()
        .flatten();
    let vplatforms: Vec<Platform> = variant
        .map(|v| {
            v.platforms
                .iter()
                .filter_map(|p| Platform::parse(&p.value).ok())
                .collect()
        })
        .unwrap_or_default();
    if !stack.platforms.is_empty() {
        // The stack's platforms, limited to the ones the selected variant is built for.
        let all: Vec<String> = stack.platforms.iter().map(|p| p.value.clone()).collect();
        if vplatforms.is_empty() {
            return all;
        }
        let kept: Vec<String> = all
            .into_iter()
            .filter(|p| Platform::parse(p).is_ok_and(|p| vplatforms.contains(&p)))
            .collect();
        return if kept.is_empty() {
            vec![vplatforms[0].id()]
        } else {
            kept
        };
    }
    let worker = build_platform(opts);
    match vplatforms.first() {
        Some(first) if !vplatforms.contains(&worker) => vec![first.id()],
        _ => vec![],
    }
}

/// The platforms to build: `--platform`, else the stack's, else the worker's default.
pub fn platforms(
    opts: &FrontendOpts,
    stack_platforms: &[String],
) -> Result<Vec<Platform>, Failure> {
    let requested: Vec<String> = if !opts.platforms.is_empty() {
        opts.platforms.clone()
    } else {
        stack_platforms.to_vec()
    };
    let mut out: Vec<Platform> = vec![];
    for p in requested {
        let parsed = Platform::parse(&p).map_err(|e| Failure::plain(format!("--platform: {e}")))?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    if out.is_empty() {
        out.push(build_platform(opts));
    }
    Ok(out)
}

fn build_platform(opts: &FrontendOpts) -> Platform {
    opts.worker_platforms
        .first()
        .and_then(|p| Platform::parse(p).ok())
        .unwrap_or_else(Platform::linux_amd64)
}

/// Build options for one platform from the frontend opts.
pub fn build_options(opts: &FrontendOpts, inputs: &Inputs, platform: Platform) -> BuildOptions {
    let network = match opts.force_network_mode.as_deref() {
        Some("host") => Network::Host,
        Some("none") => Network::None,
        _ => Network::Sandbox,
    };
    let target = opts.target.clone();
    // `--no-cache` is an empty list (everything); `--no-cache-filter a,b` names images.
    let (no_cache, no_cache_filter) = match &opts.no_cache {
        None => (false, vec![]),
        Some(list) => (list.is_empty(), list.clone()),
    };
    BuildOptions {
        target,
        platform,
        build_platform: build_platform(opts),
        build_args: opts.build_args.clone(),
        labels: opts.labels.clone(),
        network,
        extra_hosts: opts.add_hosts.clone(),
        no_cache,
        no_cache_filter,
        context: ContextOptions {
            name: opts.context_key.clone(),
            session_id: opts.session_for_local(&opts.context_key).to_string(),
            exclude_patterns: inputs.exclude_patterns.clone(),
        },
        image_resolve_mode: opts.image_resolve_mode.clone(),
        merge: false,
        cross_install: true,
    }
}

/// The whole request: a subrequest answer or a built image.
pub async fn build(gw: &Gateway) -> Result<ResultBuilder, Failure> {
    let opts = FrontendOpts::from_env()
        .map_err(|e| Failure::plain(format!("invalid frontend options: {e}")))?;
    // Before anything is read: a git/URL context has no local sources to read from.
    if let Some(url) = &opts.remote_context {
        return Err(Failure::plain(format!(
            "layerstack builds from a local context; the remote context `{url}` is not supported (clone it and pass the directory)"
        )));
    }
    let pong = gw.ping().await?;
    let inputs = read_inputs(gw, &opts).await?;
    if let Some(req) = opts.request_id.as_deref().filter(|r| !r.is_empty()) {
        return crate::subrequests::answer(req, &opts, &inputs);
    }
    let (stack, parse_diags) = llb_gen::stack::parse(&inputs.file);
    if parse_diags.has_errors() {
        let mut d = parse_diags;
        d.extend(plan::check_stack(&stack));
        return Err(Failure::from_stack(&StackError {
            file: inputs.file.clone(),
            diagnostics: d.sorted(),
        }));
    }
    let stack_platforms = stack_platforms(&opts, &stack);
    let platforms = platforms(&opts, &stack_platforms)?;
    let multi = platforms.len() > 1 || opts.multi_platform;

    // Plan every platform first (errors and warnings before any work), check the context
    // once, then convert and solve the platforms concurrently.
    let mut prepared = vec![];
    for (i, platform) in platforms.into_iter().enumerate() {
        let mut bo = build_options(&opts, &inputs, platform.clone());
        // MergeOp where the engine has it (BuildKit ≥ 0.10), plain chaining otherwise;
        // `--build-arg LAYERSTACK_MERGE=false` opts out.
        bo.merge = pong.llb_caps.contains("mergeop")
            && !plan::switched_off(&opts.build_args, "LAYERSTACK_MERGE");
        bo.cross_install = !plan::switched_off(&opts.build_args, "LAYERSTACK_CROSS");
        let (stack, plan) =
            llb_gen::load(&inputs.file, &bo).map_err(|e| Failure::from_stack(&e))?;
        missing_caps(&pong.llb_caps, &stack, &plan, &inputs)?;
        if i == 0 {
            if pong.frontend_caps.contains("gateway.warnings") {
                warn_all(gw, &inputs, &plan.warnings).await;
            } else {
                // Engines before BuildKit 0.13 have no Warn call: the log is all we have.
                for d in &plan.warnings.items {
                    eprintln!("layerstack: {}", d.one_line(&inputs.file));
                }
            }
            // Every context path must exist before anything is installed (the sources do not
            // depend on base images: converted without them).
            let plain = convert(&plan, &bo, &NoImages, &inputs.file).map_err(|d| {
                Failure::from_stack(&StackError {
                    file: inputs.file.clone(),
                    diagnostics: d,
                })
            })?;
            check_context(gw, &plain.definition, &plan, &inputs).await?;
        }
        let twin = if bo.cross_install {
            llb_gen::twin_plan(&stack, &bo)
        } else {
            None
        };
        prepared.push(Prepared {
            platform,
            bo,
            plan,
            twin,
        });
    }
    let cache_imports: Vec<_> = opts.cache_imports.iter().cloned().map(Into::into).collect();
    let builds = prepared
        .iter()
        .map(|p| build_one(gw, &inputs, p, cache_imports.clone()));
    let built = futures_util::future::try_join_all(builds).await?;

    let mut result = ResultBuilder::new();
    let mut described = vec![];
    for (p, (r, image_config)) in prepared.iter().zip(built) {
        if multi {
            result.add_ref(p.platform.id(), r);
            result.add_metadata(
                format!("containerimage.config/{}", p.platform.id()),
                image_config,
            );
        } else {
            result.set_ref(r);
            result.add_metadata("containerimage.config", image_config);
        }
        described.push(p.platform.clone());
    }
    if multi {
        let list: Vec<serde_json::Value> = described
            .iter()
            .map(|p| {
                let mut plat = serde_json::json!({ "architecture": p.architecture, "os": p.os });
                if let Some(v) = &p.variant {
                    plat["variant"] = serde_json::Value::from(v.clone());
                }
                serde_json::json!({ "ID": p.id(), "Platform": plat })
            })
            .collect();
        result.add_metadata(
            "refs.platforms",
            serde_json::to_vec(&serde_json::json!({ "Platforms": list })).expect("json"),
        );
    }
    Ok(result)
}

/// One platform's plan, ready to convert.
struct Prepared {
    platform: Platform,
    bo: BuildOptions,
    plan: plan::Plan,
    /// The same target planned for the build platform, when this platform is foreign and
    /// cross-installs are on.
    twin: Option<plan::Plan>,
}

/// Resolve one platform's base images, convert it (answering cross-install probes by solving
/// them) and solve it: the result's ref and its image config.
async fn build_one(
    gw: &Gateway,
    inputs: &Inputs,
    p: &Prepared,
    cache_imports: Vec<crate::pb::gateway::CacheOptionsEntry>,
) -> Result<(String, Vec<u8>), Failure> {
    // Base image configs, resolved through the gateway before the pure conversion; a
    // foreign platform's twin needs its bases for the build platform too.
    let mut images = ResolvedImages::default();
    let mode =
        p.bo.image_resolve_mode
            .clone()
            .unwrap_or_else(|| "default".into());
    let mut wanted: Vec<(String, Platform)> = p
        .plan
        .image_refs()
        .into_iter()
        .map(|r| (r, p.platform.clone()))
        .collect();
    if let Some(twin) = &p.twin {
        wanted.extend(
            twin.image_refs()
                .into_iter()
                .map(|r| (r, twin.platform.clone())),
        );
    }
    let mode = &mode;
    let resolved = futures_util::future::try_join_all(wanted.into_iter().map(
        |(reference, platform)| async move {
            let (digest, config) = gw
                .resolve_image_config(
                    &reference,
                    Some(llb_gen::llb::pb_platform(&platform)),
                    mode,
                    &format!("[internal] load metadata for {reference}"),
                )
                .await
                .map_err(|e| {
                    Failure::plain(format!(
                        "{}: cannot resolve base image `{reference}` for {platform}: {}",
                        inputs.file.name, e.message
                    ))
                })?;
            Ok::<_, Failure>(((reference, platform.id()), digest, config))
        },
    ))
    .await?;
    for (key, digest, config) in resolved {
        // Engines answer an empty digest when they cannot tell (then the tag stays unpinned).
        if !digest.is_empty() {
            images.digests.insert(key.clone(), digest);
        }
        images.configs.insert(key, config);
    }
    let mut verdicts = BTreeMap::new();
    let converted = loop {
        let cross = CrossEnv {
            twin: p.twin.as_ref(),
            verdicts: &verdicts,
            ask: true,
        };
        let converted =
            convert_cross(&p.plan, &p.bo, &images, &inputs.file, Some(cross)).map_err(|d| {
                Failure::from_stack(&StackError {
                    file: inputs.file.clone(),
                    diagnostics: d,
                })
            })?;
        // Each answer changes at most the steps after it: ask until none is left.
        let Some(probe) = converted.probes.first().cloned() else {
            break converted;
        };
        let verdict = probe_cross_install(gw, &probe, &cache_imports).await?;
        verdicts.insert(probe.key, verdict);
    };
    let r = gw
        .solve_with_cache_imports(converted.definition, cache_imports)
        .await
        .map_err(|e| Failure::plain(e.message))?;
    Ok((r, converted.image_config))
}

/// Solve a cross-install probe and read its verdict (`status.json`). The probe shares its steps
/// (base image, apt, the build platform's installs) with the final solve, so it imports the same
/// caches: BuildKit applies a solve's cache imports to that solve only, and a step the probe ran
/// without them is not looked up in the imported cache again by the final solve.
async fn probe_cross_install(
    gw: &Gateway,
    probe: &Probe,
    cache_imports: &[crate::pb::gateway::CacheOptionsEntry],
) -> Result<CrossVerdict, Failure> {
    let r = gw
        .solve_with_cache_imports(probe.definition.clone(), cache_imports.to_vec())
        .await
        .map_err(|e| Failure::plain(e.message))?;
    let bytes = gw
        .read_file(&r, "status.json", None)
        .await
        .map_err(|e| Failure::plain(format!("{}: no verdict ({})", probe.name, e.message)))?;
    let status: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::plain(format!("{}: unreadable verdict: {e}", probe.name)))?;
    Ok(if status["cross"].as_bool() == Some(true) {
        CrossVerdict::Cross
    } else {
        let reason = status["reason"]
            .as_str()
            .unwrap_or("the probe found no way to cross-install")
            .to_string();
        eprintln!(
            "layerstack: {}: {reason}; installing under emulation",
            probe.name
        );
        CrossVerdict::Emulate(reason)
    })
}

/// Planner warnings (undeclared build args, likely typos) as BuildKit warnings, shown by buildx
/// with the stack.toml location. Engines without the Warn call (before v0.13) just skip them.
async fn warn_all(gw: &Gateway, inputs: &Inputs, warnings: &llb_gen::diag::Diagnostics) {
    let file = &inputs.file;
    for d in &warnings.items {
        let source = d.span.map(|span| {
            let range = llb_gen::llb::source_range(file, span);
            (source_info(file), vec![range])
        });
        let mut short = d.message.clone();
        if let Some(k) = &d.key {
            short = format!("{k}: {short}");
        }
        let detail = d.hint.iter().map(|h| h.clone().into_bytes()).collect();
        if let Err(e) = gw
            .warn(&inputs.file_vertex, 1, &short, detail, "", source)
            .await
        {
            eprintln!("layerstack: warning not delivered ({}): {short}", e.message);
        }
    }
}

/// Every context path the plan reads (requirements, environment files, copy sources) must
/// exist before any install runs: each `local://` source of the definition is solved on its
/// own (the same vertex the build then reuses) and its paths are looked up. All missing paths
/// are reported at once, at the stack.toml lines that name them.
async fn check_context(
    gw: &Gateway,
    def: &pb::Definition,
    plan: &plan::Plan,
    inputs: &Inputs,
) -> Result<(), Failure> {
    use prost::Message;
    let mut missing = llb_gen::diag::Diagnostics::default();
    let mut checked = std::collections::BTreeSet::new();
    let mut sources = vec![];
    for bytes in &def.def {
        let Ok(op) = pb::Op::decode(bytes.as_slice()) else {
            continue;
        };
        let Some(pb::op::Op::Source(src)) = &op.op else {
            continue;
        };
        if !src.identifier.starts_with("local://") {
            continue;
        }
        let paths: Vec<String> = src
            .attrs
            .get("local.includepattern")
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        let paths: Vec<String> = paths
            .into_iter()
            .filter(|p| !p.contains(['*', '?', '[']) && checked.insert(p.clone()))
            .collect();
        if paths.is_empty() {
            continue;
        }
        let one = pb::Definition {
            def: vec![
                bytes.clone(),
                pb::Op {
                    inputs: vec![pb::Input {
                        digest: llb_gen::llb::op_digests(&pb::Definition {
                            def: vec![bytes.clone()],
                            ..Default::default()
                        })[0]
                            .clone(),
                        index: 0,
                    }],
                    ..Default::default()
                }
                .encode_to_vec(),
            ],
            ..Default::default()
        };
        sources.push((one, paths));
    }
    // Every source is solved and stat'ed at once: one round trip, not one per source.
    let lookups = sources.into_iter().map(|(one, paths)| async move {
        let r = gw.solve(one).await.map_err(|e| Failure::plain(e.message))?;
        let stats =
            futures_util::future::try_join_all(paths.iter().map(|p| gw.stat_file(&r, p))).await?;
        let absent: Vec<String> = paths
            .into_iter()
            .zip(stats)
            .filter(|(_, st)| st.is_none())
            .map(|(p, _)| p)
            .collect();
        Ok::<_, Failure>(absent)
    });
    let absent = futures_util::future::try_join_all(lookups).await?;
    for p in absent.into_iter().flatten() {
        for (key, span) in reads_of(plan, &p) {
            let excluded = inputs
                .exclude_patterns
                .iter()
                .any(|x| x == &p || p.starts_with(&format!("{}/", x.trim_end_matches('/'))));
            let hint = if excluded {
                "it is excluded by .dockerignore; remove it from there or from the stack"
                    .to_string()
            } else {
                "paths are relative to the build context, the directory given last to docker buildx build".to_string()
            };
            missing.push(
                llb_gen::diag::Diagnostic::error(format!("`{p}` is not in the build context"))
                    .at(span)
                    .key(key)
                    .hint(hint),
            );
        }
    }
    if missing.has_errors() {
        return Err(Failure::from_stack(&StackError {
            file: inputs.file.clone(),
            diagnostics: missing.sorted(),
        }));
    }
    Ok(())
}

/// The steps that read a context path: (key, span) for diagnostics.
fn reads_of(plan: &plan::Plan, path: &str) -> Vec<(String, llb_gen::source::Span)> {
    let mut out = vec![];
    for img in &plan.images {
        // Which key of a pip step names the path: `requirements` or (a local package) `pip`.
        let pip_key = |p: &plan::PipStep| {
            if p.requirements.iter().any(|r| r == path) {
                Some(format!("{}.requirements", img.key))
            } else if p.local.iter().any(|r| r == path) {
                Some(format!("{}.pip", img.key))
            } else {
                None
            }
        };
        if let Some(v) = &img.venv {
            if let Some(k) = pip_key(&v.pip) {
                out.push((k, v.pip_span));
            }
        }
        for s in &img.steps {
            let hit = match &s.kind {
                plan::StepKind::Pip(p) => pip_key(p),
                plan::StepKind::Conda(c) => {
                    (c.file == path).then(|| format!("{}.conda.file", img.key))
                }
                plan::StepKind::Run { context, .. } => context
                    .iter()
                    .any(|c| c == path)
                    .then(|| format!("{}.run", img.key)),
                plan::StepKind::Copy { src, .. } => {
                    (src == path).then(|| format!("{}.copy", img.key))
                }
                _ => None,
            };
            if let Some(k) = hit {
                out.push((k, s.span));
            }
        }
    }
    out
}

/// Features this plan uses that the engine lacks (from Ping's LLB caps) fail the build here,
/// at the stack.toml line that asks for them — never ignored by an old BuildKit.
fn missing_caps(
    caps: &std::collections::BTreeSet<String>,
    stack: &llb_gen::stack::Stack,
    plan: &plan::Plan,
    inputs: &Inputs,
) -> Result<(), Failure> {
    use llb_gen::diag::{Diagnostic, Diagnostics};
    let mut d = Diagnostics::default();
    if !caps.contains("exec.secretenv") {
        for s in stack.secrets.iter().filter(|s| s.env.is_some()) {
            d.push(
                Diagnostic::error(format!("this engine's BuildKit lacks the `exec.secretenv` capability: secret `{}` cannot be given as an env var", s.name.value))
                    .at(s.env.as_ref().map(|e| e.span).unwrap_or(s.span))
                    .key(format!("secrets.{}.env", s.name.value))
                    .hint("use a file secret (`target = \"/run/secrets/...\"`) or BuildKit >= 0.12 (dockerd >= 24)"),
            );
        }
    }
    if !caps.contains("file.copy.includeexcludepatterns") {
        for img in &plan.images {
            for st in &img.steps {
                if let plan::StepKind::Copy { exclude, .. } = &st.kind {
                    if !exclude.is_empty() {
                        d.push(
                            Diagnostic::error("this engine's BuildKit lacks the `file.copy.includeexcludepatterns` capability: copy `exclude` would be ignored")
                                .at(st.span)
                                .key(format!("{}.copy", img.key))
                                .hint("exclude the files with .dockerignore, or use BuildKit >= 0.9"),
                        );
                    }
                }
            }
        }
    }
    if d.has_errors() {
        return Err(Failure::from_stack(&StackError {
            file: inputs.file.clone(),
            diagnostics: d.sorted(),
        }));
    }
    Ok(())
}
