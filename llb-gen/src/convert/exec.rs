//! Bases, the build context, execs and apt: the converter's basic vertices.

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::image::ImageConfig;
use crate::llb::{CacheSharing, Exec, Graph, Mount, NetMode, Output, VertexMeta};
use crate::plan::resources::{self, CacheKind, Sharing};
use crate::plan::{
    AptStep, Base, BuildOptions, ContextOptions, DockerfileBuild, ImageContext, Network, PlanImage,
    ctxpath,
};
use crate::platform::Platform;
use crate::source::Span;

use super::*;

impl<'a> Converter<'a> {
    pub(super) fn platform(&self) -> &'a Platform {
        &self.plan.platform
    }

    pub(super) fn base(&mut self, base: &Base, label: &str) -> State {
        match base {
            Base::Layer { index, .. } => self.states[*index].clone(),
            Base::Dockerfile(d) => self.dockerfile_base(d, label),
            Base::Image { reference, span } => {
                let (root, config) = self.image_source(
                    reference,
                    *span,
                    names::vertex(label, format!("from {reference}")),
                );
                self.state(root, config)
            }
            Base::Context { name, span } => {
                let (root, config) = self.named_image(name, *span, label);
                self.state(root, config)
            }
        }
    }

    fn state(&self, root: Output, config: ImageConfig) -> State {
        State {
            root,
            platform: self.platform().clone(),
            config,
            no_cache: self.opts.no_cache,
            made_workdir: None,
        }
    }

    /// A registry image for the plan's platform, pinned to the digest the edge resolved, and
    /// its config (empty when unknown, offline).
    fn image_source(&mut self, reference: &str, span: Span, name: String) -> (Output, ImageConfig) {
        let platform = self.platform();
        let config = match self.images.config(reference, platform) {
            Some(bytes) => match ImageConfig::from_json(&bytes) {
                Ok(c) => c,
                Err(e) => {
                    self.diags
                        .push(Diagnostic::error(format!("image `{reference}`: {e}")).at(span));
                    ImageConfig::default()
                }
            },
            None => ImageConfig::default(),
        };
        let source = match self.images.digest(reference, platform) {
            Some(digest) => match pinned_reference(reference, &digest) {
                Ok(pinned) => pinned,
                Err(e) => {
                    self.diags
                        .push(Diagnostic::error(format!("image `{reference}`: {e}")).at(span));
                    reference.to_string()
                }
            },
            None => reference.to_string(),
        };
        let mut m = meta(name, span);
        m.ignore_cache = false;
        let root = self.g.image(
            &source,
            platform,
            self.opts.image_resolve_mode.as_deref(),
            m,
        );
        (root, config)
    }

    /// The image of a named context ([`crate::plan::Plan::image_contexts`]): a registry image
    /// (`docker-image://`) or a frontend input spliced in as it came (another bake target's
    /// result), and its config. One vertex per context, whoever reads it. An input the edge
    /// did not supply (offline) is an error at `span`.
    pub(super) fn named_image(
        &mut self,
        name: &str,
        span: Span,
        label: &str,
    ) -> (Output, ImageConfig) {
        let key = vec![format!("//{name}//image")];
        let source = self.plan.image_contexts.get(name).cloned();
        match source {
            Some(ImageContext::Image(reference)) => {
                if let Some(o) = self.contexts.get(&key) {
                    let config = self
                        .images
                        .config(&reference, self.platform())
                        .and_then(|b| ImageConfig::from_json(&b).ok())
                        .unwrap_or_default();
                    return (*o, config);
                }
                let (o, config) = self.image_source(
                    &reference,
                    span,
                    names::vertex(label, format!("context {name}: {reference}")),
                );
                self.contexts.insert(key, o);
                (o, config)
            }
            Some(ImageContext::Input(input)) => {
                // After an error the conversion fails: this stand-in is never marshalled.
                let empty =
                    |g: &mut Graph| g.local("context", BTreeMap::new(), VertexMeta::default());
                let Some(r) = self.images.input(&input) else {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "the named context `{name}` is the frontend input `{input}` (another target's result), which only exists inside a build"
                        ))
                        .at(span)
                        .hint("build it with `docker buildx bake`; llb-gen cannot produce its LLB"),
                    );
                    return (empty(&mut self.g), ImageConfig::default());
                };
                let config = if r.config.is_empty() {
                    ImageConfig::default()
                } else {
                    match ImageConfig::from_json(&r.config) {
                        Ok(c) => c,
                        Err(e) => {
                            self.diags.push(
                                Diagnostic::error(format!(
                                    "the image config of the named context `{name}`: {e}"
                                ))
                                .at(span),
                            );
                            ImageConfig::default()
                        }
                    }
                };
                if let Some(o) = self.contexts.get(&key) {
                    return (*o, config);
                }
                let o = match self.g.splice(&r.definition) {
                    Ok(o) => o,
                    Err(e) => {
                        self.diags.push(
                            Diagnostic::error(format!(
                                "the named context `{name}` (frontend input `{input}`) is not usable LLB: {e}"
                            ))
                            .at(span),
                        );
                        empty(&mut self.g)
                    }
                };
                self.contexts.insert(key, o);
                (o, config)
            }
            None => {
                self.diags.push(
                    Diagnostic::error(format!(
                        "the named context `{name}` is not an image of this build"
                    ))
                    .at(span),
                );
                let o = self
                    .g
                    .local("context", BTreeMap::new(), VertexMeta::default());
                (o, ImageConfig::default())
            }
        }
    }

    /// An image the Dockerfile frontend built: its definition spliced in, its config as the
    /// base config. Without an answer (offline) an error: nothing stands in for it.
    fn dockerfile_base(&mut self, d: &DockerfileBuild, label: &str) -> State {
        let platform = self.platform().clone();
        // After an error the conversion fails: this stand-in is never marshalled.
        let empty = |g: &mut Graph| g.local("context", BTreeMap::new(), VertexMeta::default());
        let (root, config) = match self.images.dockerfile(&d.key(), &platform) {
            None => {
                self.diags.push(
                    Diagnostic::error(format!(
                        "{label} is built from `{}` by BuildKit's Dockerfile frontend, which only runs inside a build; llb-gen cannot produce its LLB",
                        d.file
                    ))
                    .at(d.span)
                    .hint("build it with `docker buildx build`; `llb-gen plan`, `check`, `targets`, `graph` and `bake` show this image without building it"),
                );
                (empty(&mut self.g), ImageConfig::default())
            }
            Some(r) => {
                let root = match self.g.splice(&r.definition) {
                    Ok(o) => o,
                    Err(e) => {
                        self.diags.push(
                            Diagnostic::error(format!(
                                "the Dockerfile frontend's result for `{}` is not usable LLB: {e}",
                                d.file
                            ))
                            .at(d.span),
                        );
                        empty(&mut self.g)
                    }
                };
                let config = match ImageConfig::from_json(&r.config) {
                    Ok(c) => c,
                    Err(e) => {
                        self.diags.push(
                            Diagnostic::error(format!(
                                "the image config the Dockerfile frontend built from `{}`: {e}",
                                d.file
                            ))
                            .at(d.span),
                        );
                        ImageConfig::default()
                    }
                };
                (root, config)
            }
        };
        State {
            root,
            platform,
            config,
            no_cache: self.opts.no_cache,
            made_workdir: None,
        }
    }

    /// The build context restricted to `paths` (plus `.dockerignore` excludes): plan context
    /// paths of one context, the main one or a named one ([`ctxpath`]). With `literal`, the
    /// paths are file names, not patterns (see [`resources::escape_pattern`]).
    pub(super) fn context(
        &mut self,
        paths: &[String],
        literal: bool,
        label: &str,
        span: Span,
    ) -> Output {
        let context = paths.first().and_then(|p| ctxpath::context_of(p));
        // An image context: the image itself (paths are absolute in it, the plan keeps them
        // without the leading `/`).
        if let Some(c) = context
            && self.plan.image_contexts.contains_key(c)
        {
            return self.named_image(c, span, label).0;
        }
        let inner: Vec<String> = paths
            .iter()
            .map(|p| ctxpath::split(p).1.to_string())
            .collect();
        let key = resources::source_key(&inner);
        let mut cache_key = resources::include_patterns(&key, literal);
        if let Some(c) = context {
            // Not a pattern: `//` never starts one, so keys of contexts never meet.
            cache_key.insert(0, format!("//{c}"));
        }
        if let Some(o) = self.contexts.get(&cache_key) {
            return *o;
        }
        let ctx = context_options(self.opts, context);
        let out = local_source(
            &mut self.g,
            &ctx,
            &key,
            literal,
            meta(names::vertex(label, load_context_text(context, &key)), span),
        );
        self.contexts.insert(cache_key, out);
        out
    }

    pub(super) fn network(&self) -> Option<NetMode> {
        match self.opts.network {
            Network::Sandbox => None,
            Network::Host => Some(NetMode::Host),
            Network::None => Some(NetMode::None),
        }
    }

    /// An exec as root with the image's env; install steps (apt, run, pip) also get the
    /// image's `install-env`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run(
        &mut self,
        st: &State,
        args: Vec<String>,
        img: &PlanImage,
        install: bool,
        extra_env: &[(&str, String)],
        mounts: Vec<Mount>,
        m: VertexMeta,
    ) -> Output {
        let mut config = st.config.clone();
        if install {
            // `${PATH}` in a value is the env as it is here (Dockerfile ENV semantics);
            // `$${X}` a literal `${X}`.
            for (k, v) in &img.install_env {
                let value = if v.contains('$') {
                    let mut env = config.env_map();
                    env.entry("PATH".into())
                        .or_insert_with(|| crate::image::DEFAULT_PATH.into());
                    crate::interp::interpolate_in(
                        v,
                        &env,
                        crate::interp::Unknown::Empty,
                        &mut self.budget,
                    )
                    .unwrap_or_else(|_| v.clone())
                } else {
                    v.clone()
                };
                config.set_env(k, &value);
            }
        }
        for (k, v) in extra_env {
            config.set_env(k, v);
        }
        if config.get_env("HOME").is_none() {
            config.set_env("HOME", "/root");
        }
        // Reproducible builds: the steps see the build's SOURCE_DATE_EPOCH.
        if let Some(epoch) = self.opts.build_args.get("SOURCE_DATE_EPOCH") {
            config.set_env("SOURCE_DATE_EPOCH", epoch);
        }
        let mut mounts = mounts;
        let mut secret_env = vec![];
        if install {
            for sec in &self.plan.secrets {
                if let Some(target) = &sec.target {
                    mounts.push(Mount::Secret {
                        id: sec.id.clone(),
                        dest: target.clone(),
                        optional: !sec.required,
                    });
                }
                if let Some(env) = &sec.env {
                    secret_env.push((env.clone(), sec.id.clone(), !sec.required));
                }
            }
        }
        let exec = Exec {
            args,
            env: config.process_env(),
            cwd: if st.config.working_dir.is_empty() {
                "/".into()
            } else {
                st.config.working_dir.clone()
            },
            user: "root".into(),
            network: self.network(),
            extra_hosts: self.opts.extra_hosts.clone(),
            mounts,
            secret_env,
        };
        let mut m = m;
        m.ignore_cache = st.no_cache;
        self.g.exec(st.root, exec, &st.platform, m)
    }

    /// Cache ids are namespaced by platform and variant (see [`crate::plan::resources`]).
    pub(super) fn cache_slug(&self) -> String {
        self.cache_slug_for(self.platform())
    }

    pub(super) fn cache_slug_for(&self, platform: &Platform) -> String {
        self.plan.cache_slug(platform)
    }

    /// The cache mount of `kind`, as the plan names it.
    pub(super) fn cache(kind: CacheKind, slug: &str, conda_dir: &str) -> Mount {
        let (id, dest, sharing) = resources::cache_mount(kind, slug, conda_dir);
        Mount::Cache {
            id,
            dest,
            sharing: match sharing {
                Sharing::Shared => CacheSharing::Shared,
                Sharing::Locked => CacheSharing::Locked,
            },
        }
    }

    pub(super) fn apt_mounts(&self) -> Vec<Mount> {
        let slug = self.cache_slug();
        vec![
            Self::cache(CacheKind::AptArchives, &slug, ""),
            Self::cache(CacheKind::AptLists, &slug, ""),
        ]
    }

    /// An apt step: sources (and their context keys) written, then one `apt-get update` and
    /// one `apt-get install` of packages and the context's `.deb` files (staged and mounted at
    /// [`APT_FILES_DIR`]), under the locked apt caches.
    pub(super) fn apt(
        &mut self,
        st: &State,
        apt: &AptStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        m: VertexMeta,
    ) -> Output {
        let mut mounts = self.apt_mounts();
        let files = apt.context_files();
        if !files.is_empty() {
            let staged = self.staged_files(&files, label, "apt files", span);
            mounts.push(Mount::Bind {
                input: staged,
                selector: String::new(),
                dest: APT_FILES_DIR.into(),
            });
        }
        self.run(
            st,
            shell::sh_c(shell::apt_step(apt, APT_FILES_DIR)),
            img,
            true,
            &[("DEBIAN_FRONTEND", "noninteractive".into())],
            mounts,
            m,
        )
    }
}

/// The options of the main build context (None) or of a named one. A named context the build
/// was not given (the planner reports it) loads the local source of that name.
pub(super) fn context_options<'o>(
    opts: &'o BuildOptions,
    context: Option<&str>,
) -> std::borrow::Cow<'o, ContextOptions> {
    use std::borrow::Cow;
    match context {
        None => Cow::Borrowed(&opts.context),
        Some(c) => match opts.named_contexts.get(c) {
            Some(o) => Cow::Borrowed(o),
            None => Cow::Owned(ContextOptions {
                name: c.to_string(),
                ..ContextOptions::default()
            }),
        },
    }
}

/// `load context a b` (main context) or `load context svc-api:a svc-api:b`.
pub(super) fn load_context_text(context: Option<&str>, key: &[String]) -> String {
    match context {
        None => format!("load context {}", key.join(" ")),
        Some(c) => {
            let named: Vec<String> = key.iter().map(|p| format!("{c}:{p}")).collect();
            format!("load context {}", named.join(" "))
        }
    }
}

/// The context source loading `key` (sorted, deduplicated paths): the build's vertex, and the
/// one the frontend's context check solves alone ([`super::context_definition`]).
pub(super) fn local_source(
    g: &mut Graph,
    ctx: &ContextOptions,
    key: &[String],
    literal: bool,
    m: VertexMeta,
) -> Output {
    let name = if ctx.name.is_empty() {
        "context"
    } else {
        ctx.name.as_str()
    };
    let mut attrs = BTreeMap::new();
    let include = resources::include_patterns(key, literal);
    attrs.insert(
        "local.includepattern".to_string(),
        serde_json::to_string(&include).expect("strings"),
    );
    if !ctx.exclude_patterns.is_empty() {
        attrs.insert(
            "local.excludepatterns".to_string(),
            serde_json::to_string(&ctx.exclude_patterns).expect("strings"),
        );
    }
    attrs.insert(
        "local.sharedkeyhint".to_string(),
        format!("{name}:{}", key.join(",")),
    );
    if !ctx.session_id.is_empty() {
        attrs.insert("local.session".to_string(), ctx.session_id.clone());
    }
    g.local(name, attrs, m)
}
