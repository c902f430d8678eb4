//! Request reading: the frontend options' stack file and `.dockerignore` read through the
//! gateway, the platforms asked for, the build options of one platform, and the `Failure`
//! every part of a request returns. Shared by the build and the subrequests.

use std::collections::BTreeMap;

use llb_gen::diag::StackError;
use llb_gen::llb::{Graph, VertexMeta};
use llb_gen::plan::{BuildOptions, ContextOptions, Network};
use llb_gen::platform::Platform;
use llb_gen::source::SourceFile;
use llb_gen::{pb, plan};

use crate::gateway::{Gateway, GatewayError, source_detail};
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
        // Each line is bounded (`one_line` cuts long texts) and so is their number: the
        // message must fit in one gRPC message however many errors there are.
        let max = llb_gen::diag::MAX_RENDERED;
        let mut errors: Vec<String> = e
            .diagnostics
            .errors()
            .take(max)
            .map(|d| d.one_line(&e.file))
            .collect();
        let count = e.diagnostics.error_count();
        if count > max {
            errors.push(format!(
                "{}: … and {} more errors",
                e.file.name,
                count - max
            ));
        }
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
    /// The named directory contexts (`--build-context NAME=DIR`, `context:NAME=local:DIR`):
    /// NAME → the local source `DIR`, its session and its own `.dockerignore`.
    pub named_contexts: BTreeMap<String, ContextOptions>,
    /// The digest of the vertex that loaded the stack file (warnings attach to it).
    pub file_vertex: String,
}

/// Solve a small definition that loads a local source and return its ref.
pub(crate) async fn load_local(
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
    // At most one byte over the limit is read: a larger file is an error, not a gRPC message
    // over the size limit.
    let limit = llb_gen::stack::MAX_FILE_BYTES;
    let bytes = match gw.read_file(&r, &base, Some((0, limit as i64 + 1))).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(Failure::plain(format!(
                "stack file `{base}` not found in the build definition directory (give it with -f path/to/stack.toml)"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if bytes.len() > limit {
        return Err(Failure::plain(format!(
            "{base}: the stack file is larger than {limit} bytes, the limit (split it, or move long scripts and lists into files in the build context)"
        )));
    }
    // Invalid UTF-8 is reported at the line and column of the first bad byte.
    let text = llb_gen::source::SourceFile::from_bytes(base.clone(), bytes)
        .map_err(Failure::plain)?
        .text;
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
    let named_contexts = read_named_contexts(gw, opts).await?;
    Ok(Inputs {
        file: SourceFile::new(base, text),
        exclude_patterns,
        named_contexts,
        file_vertex,
    })
}

/// Every `local:DIR` named context, with its own `.dockerignore` read from it (as the
/// Dockerfile frontend does: a `local` source of DIR following only `.dockerignore`, under
/// the session `local-sessionid:DIR` names, else the build's). Platform-suffixed keys
/// (`NAME::os/arch`) are for images and are left out; malformed values were rejected
/// before ([`FrontendOpts::unsupported`]).
async fn read_named_contexts(
    gw: &Gateway,
    opts: &FrontendOpts,
) -> Result<BTreeMap<String, ContextOptions>, Failure> {
    let mut out = BTreeMap::new();
    let all = crate::named_contexts::parse_all(&opts.named_contexts).unwrap_or_default();
    for c in all {
        let crate::named_contexts::Source::Local(dir) = &c.source else {
            continue;
        };
        if c.platform.is_some() {
            continue;
        }
        let session_id = opts.session_for_local(dir).to_string();
        let mut attrs = BTreeMap::new();
        attrs.insert("local.followpaths".into(), "[\".dockerignore\"]".into());
        attrs.insert("local.includepattern".into(), "[\".dockerignore\"]".into());
        attrs.insert(
            "local.sharedkeyhint".into(),
            format!("context:{}-.dockerignore", c.name),
        );
        if !session_id.is_empty() {
            attrs.insert("local.session".into(), session_id.clone());
        }
        let display = format!("[context {}] load .dockerignore", c.name);
        let (r, _) = load_local(gw, dir, attrs, display).await?;
        let exclude_patterns = match gw.read_file(&r, ".dockerignore", None).await {
            Ok(b) => plan::dockerignore_patterns(&String::from_utf8_lossy(&b)),
            Err(e) if e.is_not_found() => vec![],
            Err(e) => return Err(e.into()),
        };
        out.insert(
            c.name.clone(),
            ContextOptions {
                name: dir.clone(),
                session_id,
                exclude_patterns,
            },
        );
    }
    Ok(out)
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
    // Malformed named contexts were rejected before (`FrontendOpts::unsupported`).
    let all = crate::named_contexts::parse_all(&opts.named_contexts).unwrap_or_default();
    let image_overrides =
        crate::named_contexts::image_overrides(&all, &platform).unwrap_or_default();
    let image_contexts = crate::named_contexts::image_contexts(&all, &platform).unwrap_or_default();
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
        resolve: false,
        requirement_includes: Default::default(),
        lock_files: Default::default(),
        index_pages: Default::default(),
        image_overrides,
        named_contexts: inputs.named_contexts.clone(),
        image_contexts,
    }
}
