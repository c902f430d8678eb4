//! One build request: read the stack and `.dockerignore`, plan and convert each platform,
//! resolve base images, solve, and assemble the result the image exporter expects.

use std::collections::BTreeMap;

use llb_gen::convert::{
    CrossEnv, CrossVerdict, Probe, ResolvedImages, ResolvedLock, convert_cross,
};
use llb_gen::diag::StackError;
use llb_gen::plan;
use llb_gen::plan::BuildOptions;
use llb_gen::platform::Platform;

use crate::checks::{check_context, missing_caps};
use crate::gateway::{Gateway, ResultBuilder};
use crate::opts::FrontendOpts;
use crate::request::{
    Failure, Inputs, build_options, platforms, read_inputs, source_info, stack_platforms,
};
use crate::subrequests::REQUEST_LOCK;

/// The whole request: a subrequest answer or a built image.
pub async fn build(gw: &Gateway) -> Result<ResultBuilder, Failure> {
    let opts = FrontendOpts::from_env()
        .map_err(|e| Failure::plain(format!("invalid frontend options: {e}")))?;
    if let Some(e) = opts.unsupported() {
        return Err(Failure::plain(e));
    }
    // Before anything is read: a git/URL context has no local sources to read from.
    if let Some(url) = &opts.remote_context {
        return Err(Failure::plain(format!(
            "layerstack builds from a local context; the remote context `{url}` is not supported (clone it and pass the directory)"
        )));
    }
    let pong = gw.ping().await?;
    let inputs = read_inputs(gw, &opts).await?;
    if let Some(req) = opts.request_id.as_deref().filter(|r| !r.is_empty()) {
        if req == crate::lint::REQUEST_LINT {
            return crate::lint::answer(gw, &opts, &inputs).await;
        }
        // `--call lock` runs the build up to its resolve steps (below).
        if req != REQUEST_LOCK {
            return crate::subrequests::answer(req, &opts, &inputs);
        }
    }
    let lock_only = opts.request_id.as_deref() == Some(REQUEST_LOCK);
    let (stack, _) = llb_gen::parse_checked(&inputs.file).map_err(|e| Failure::from_stack(&e))?;
    let stack_platforms = stack_platforms(&opts, &stack);
    let platforms = platforms(&opts, &stack_platforms)?;
    let multi = platforms.len() > 1 || opts.multi_platform;

    // Plan every platform first (errors and warnings before any work), check the context
    // once, then convert and solve the platforms concurrently.
    let mut prepared = vec![];
    // What requirements files include (`-r`, `-c`): read once, staged with them.
    // Lock files (`lock = …`): read once; each platform selects its own wheels.
    // Hash-pinned requirements locks: the index pages that map their hashes to files.
    let (includes, lock_files, index_pages) = match platforms.first() {
        Some(p) => {
            let bo = build_options(&opts, &inputs, p.clone());
            let locks = crate::lint::lock_files(gw, &inputs, &bo).await?;
            let pages = crate::index_pages::fetch(gw, &inputs, &locks).await?;
            (
                crate::lint::requirement_includes(gw, &inputs, &bo).await?,
                locks,
                pages,
            )
        }
        None => Default::default(),
    };
    for (i, platform) in platforms.into_iter().enumerate() {
        let mut bo = build_options(&opts, &inputs, platform.clone());
        bo.requirement_includes = includes.clone();
        bo.lock_files = lock_files.clone();
        bo.index_pages = index_pages.clone();
        // MergeOp where the engine has it (BuildKit ≥ 0.10), plain chaining otherwise;
        // `--build-arg LAYERSTACK_MERGE=false` opts out.
        bo.merge = pong.llb_caps.contains("mergeop")
            && !plan::switched_off(&opts.build_args, "LAYERSTACK_MERGE");
        bo.cross_install = !plan::switched_off(&opts.build_args, "LAYERSTACK_CROSS");
        // `--call lock` resolves the build platform's own pip steps too, so a team can commit
        // a lock for every platform; a build does with LAYERSTACK_RESOLVE=true.
        bo.resolve = lock_only || plan::switched_on(&opts.build_args, "LAYERSTACK_RESOLVE");
        let (stack, plan) =
            llb_gen::load(&inputs.file, &bo).map_err(|e| Failure::from_stack(&e))?;
        missing_caps(&pong.llb_caps, &stack, &plan, &inputs)?;
        crate::dockerfile::missing_caps(&pong.frontend_caps, &plan, &inputs)?;
        if i == 0 {
            if pong.frontend_caps.contains("gateway.warnings") {
                warn_all(gw, &inputs, &plan.warnings).await;
            } else {
                // Engines before BuildKit 0.13 have no Warn call: the log is all we have.
                for d in &plan.warnings.items {
                    eprintln!("layerstack: {}", d.one_line(&inputs.file));
                }
            }
            // Every context path must exist before anything is installed (read from the plan;
            // the sources do not depend on base images).
            check_context(gw, &bo, &plan, &inputs).await?;
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
    let frontend_inputs = frontend_inputs(gw, &opts, &prepared).await?;
    let builds = prepared.iter().map(|p| {
        build_one(
            gw,
            &inputs,
            p,
            &frontend_inputs,
            cache_imports.clone(),
            lock_only,
        )
    });
    let built = futures_util::future::try_join_all(builds).await?;
    if lock_only {
        return resolved_locks(&prepared, &built);
    }

    let mut result = ResultBuilder::new();
    let mut described = vec![];
    for (p, b) in prepared.iter().zip(built) {
        let (r, image_config) = (b.reference.unwrap_or_default(), b.image_config);
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

/// The frontend inputs the plans build on or read (named contexts `input:NAME`, what buildx
/// sends for bake's `contexts = { x = "target:other" }`): each one's Definition, taken as it
/// came, and the image config of its `input-metadata:NAME` option. Asked for only when a plan
/// uses one; one the client did not send is an error naming the context.
async fn frontend_inputs(
    gw: &Gateway,
    opts: &FrontendOpts,
    prepared: &[Prepared],
) -> Result<BTreeMap<String, llb_gen::convert::DockerfileResult>, Failure> {
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for p in prepared {
        for plan in std::iter::once(&p.plan).chain(p.twin.as_ref()) {
            for (name, c) in &plan.image_contexts {
                if let plan::ImageContext::Input(input) = c {
                    wanted.insert(input.clone(), name.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let mut sent = gw.inputs().await.map_err(|e| {
        Failure::plain(format!(
            "cannot read the frontend inputs (named contexts from other targets): {}",
            e.message
        ))
    })?;
    for (input, name) in wanted {
        let Some(definition) = sent.remove(&input) else {
            return Err(Failure::plain(format!(
                "the named context `{name}` is the frontend input `{input}`, which the client did not send (inputs sent: {})",
                if sent.is_empty() {
                    "none".to_string()
                } else {
                    sent.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            )));
        };
        let config =
            crate::named_contexts::input_config(&opts.raw, &input).map_err(Failure::plain)?;
        out.insert(
            input,
            llb_gen::convert::DockerfileResult { definition, config },
        );
    }
    Ok(out)
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

/// One platform built: its result's ref (None for `--call lock`, which stops before the final
/// solve), its image config and the locks its resolve steps wrote (probe name, lock).
struct Built {
    reference: Option<String>,
    image_config: Vec<u8>,
    locks: Vec<(String, ResolvedLock)>,
}

/// `--call lock`: every resolved lock of every platform, as `pylock.toml` text.
fn resolved_locks(prepared: &[Prepared], built: &[Built]) -> Result<ResultBuilder, Failure> {
    let mut txt = String::new();
    let mut list = vec![];
    for (p, b) in prepared.iter().zip(built) {
        for (step, l) in &b.locks {
            txt.push_str(&format!(
                "# {} — {step}\n{}\n",
                p.platform,
                l.pylock.trim_end()
            ));
            list.push(serde_json::json!({
                "platform": p.platform.id(),
                "step": step,
                "python": l.python,
                "pylock": l.pylock,
            }));
        }
    }
    if list.is_empty() {
        txt.push_str("no resolve step wrote a lock: nothing installs for a foreign platform with pip or uv, or every step installs under emulation\n");
    }
    crate::subrequests::respond(&list, txt)
}

/// Resolve one platform's base images, convert it (answering cross-install probes by solving
/// them) and solve it (unless `lock_only`): the result's ref, its image config and the locks
/// its resolve steps wrote.
async fn build_one(
    gw: &Gateway,
    inputs: &Inputs,
    p: &Prepared,
    frontend_inputs: &BTreeMap<String, llb_gen::convert::DockerfileResult>,
    cache_imports: Vec<crate::pb::gateway::CacheOptionsEntry>,
    lock_only: bool,
) -> Result<Built, Failure> {
    // Base image configs, resolved through the gateway before the pure conversion; a
    // foreign platform's twin needs its bases for the build platform too.
    let mut images = ResolvedImages {
        inputs: frontend_inputs.clone(),
        ..Default::default()
    };
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
    // Images built from a Dockerfile: solved by the Dockerfile frontend, spliced in by the
    // converter.
    let plans: Vec<&plan::Plan> = std::iter::once(&p.plan).chain(p.twin.as_ref()).collect();
    crate::dockerfile::solve_all(gw, inputs, &p.bo, &plans, &cache_imports, &mut images).await?;
    let mut verdicts = BTreeMap::new();
    let mut locks = vec![];
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
        if let CrossVerdict::Resolved(l) = &verdict {
            locks.push((probe.name.clone(), l.clone()));
        }
        verdicts.insert(probe.key, verdict);
    };
    let reference = if lock_only {
        None
    } else {
        Some(
            gw.solve_with_cache_imports(converted.definition, cache_imports)
                .await
                .map_err(|e| Failure::plain(e.message))?,
        )
    };
    Ok(Built {
        reference,
        image_config: converted.image_config,
        locks,
    })
}

/// Solve a cross-install probe (the resolve step) and read its verdict (`status.json`) and the
/// lock it resolved (`pylock.toml`, when it wrote one). The probe shares its steps
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
        match status["lock"].as_str() {
            // The resolve wrote the target's wheels as a lock: read it back through the
            // gateway; the converter installs it like a `lock` step.
            Some(path) => {
                let pylock = gw.read_file(&r, path, None).await.map_err(|e| {
                    Failure::plain(format!(
                        "{}: no resolved lock `{path}` ({})",
                        probe.name, e.message
                    ))
                })?;
                let field = |k: &str| status[k].as_str().unwrap_or_default().to_string();
                CrossVerdict::Resolved(ResolvedLock {
                    pylock: String::from_utf8_lossy(&pylock).into_owned(),
                    python: field("python"),
                    libc: field("libc"),
                    executable: field("executable"),
                })
            }
            None => CrossVerdict::Cross,
        }
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
