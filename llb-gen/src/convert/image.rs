//! One plan image to LLB (its steps in order), owners, the venv builder and the image config.

use std::collections::BTreeSet;

use super::values::artifact_dest;
use crate::diag::Diagnostic;
use crate::image::{HistoryEntry, ImageConfig};
use crate::interp::{Unknown, interpolate_in};
use crate::llb::{FileAction, Mount, Output, Owner, VertexMeta};
use crate::plan::{Base, PlanImage, StepKind};

use super::*;

impl<'a> Converter<'a> {
    /// `appuser` → `1000:1001` when this plan creates the user with a `uid` and a `gid`;
    /// numbers as they are. Without an explicit `gid` the user's group is the group named
    /// like it, which the base image may have already (Debian's `operator` is gid 37): its
    /// number is only known at build time, so there is none here (and the copy is chained,
    /// owned by name, as a Dockerfile's `COPY --chown` would be).
    pub(super) fn numeric_owner(&self, owner: &str) -> Option<String> {
        let (user, group) = match owner.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (owner, None),
        };
        let ids = |name: &str| -> Option<(u32, u32)> {
            if let Ok(n) = name.parse::<u32>() {
                return Some((n, n));
            }
            self.plan
                .images
                .iter()
                .flat_map(|i| i.steps.iter())
                .find_map(|s| match &s.kind {
                    StepKind::CreateUser(u) if u.name == name => u.uid.zip(u.gid),
                    _ => None,
                })
        };
        let (uid, gid) = ids(user)?;
        let gid = match group {
            Some(g) => ids(g)?.1,
            None => gid,
        };
        Some(format!("{uid}:{gid}"))
    }

    pub(super) fn owner(&self, o: &Option<String>) -> Option<Owner> {
        o.as_deref().map(Owner::parse)
    }

    pub(super) fn image(&mut self, img: &PlanImage) -> State {
        let label = img.label();
        let mut st = self.base(&img.base, &label);
        if self.opts.no_cache_filter.contains(&img.name) {
            st.no_cache = true;
        }
        // An image's env applies to its own steps too (like ENV before RUN).
        for (k, v) in &img.config.env {
            // `${VAR}` refers to the env as it is here (Dockerfile ENV semantics). The env
            // map is only built for values that refer to something.
            let value = if v.contains('$') {
                let mut env = st.config.env_map();
                env.entry("PATH".into())
                    .or_insert_with(|| crate::image::DEFAULT_PATH.into());
                match interpolate_in(v, &env, Unknown::Empty, &mut self.budget) {
                    Ok(value) => value,
                    Err(f) => {
                        // `E2 = "${E1}${E1}"` … doubles per entry: stop at the cap.
                        self.diags.push(
                            Diagnostic::error(f.too_long_message().unwrap_or_default())
                                .at(img.span)
                                .key(format!("{}.env.{k}", img.key))
                                .hint("an env value that repeats another grows with every repetition; shorten the values"),
                        );
                        String::new()
                    }
                }
            } else {
                v.clone()
            };
            st.config.set_env(k, &value);
        }
        let n = img.steps.len();
        let mut log = Vec::with_capacity(n);
        for (i, step) in img.steps.iter().enumerate() {
            // The state before each step is only looked up in the twin of a cross build
            // (which converts in lean mode); cloning it for every step of every image of a
            // deep stack would cost the depth times over.
            if self.lean {
                log.push(st.clone());
            }
            if self.lean
                && matches!(
                    step.kind,
                    StepKind::Run { .. }
                        | StepKind::Pip(_)
                        | StepKind::Lock(_)
                        | StepKind::Conda(_)
                        | StepKind::CopyFrom { .. }
                )
            {
                continue;
            }
            let name = names::step(&label, i + 1, n, step.kind.describe());
            let m = meta(name.clone(), step.span);
            let created_by = format!("layerstack: {name}");
            match &step.kind {
                StepKind::Apt(a) => st.root = self.apt(&st, a, img, &label, step.span, m),
                StepKind::CreateUser(u) => {
                    st.root = self.run(
                        &st,
                        shell::sh_c(shell::useradd(u)),
                        img,
                        false,
                        &[],
                        vec![],
                        m,
                    );
                }
                StepKind::Mkdir { path, owner } => {
                    let o = self.owner(owner);
                    st.root = self.g.file(
                        Some(st.root),
                        vec![FileAction::Mkdir {
                            path: path.clone(),
                            mode: 0o755,
                            owner: o,
                        }],
                        self.platform(),
                        Self::cacheable(&st, m),
                    );
                    st.config.working_dir = path.clone();
                    st.made_workdir = Some((path.clone(), owner.clone()));
                }
                StepKind::Run {
                    command,
                    context,
                    activate,
                } => {
                    let args = match (activate, &st.config.shell) {
                        (Some((installer, env)), _) => shell::in_conda_env(installer, env, command),
                        // The base image's `SHELL` (a shell that activates an environment,
                        // like micromamba's), as a Dockerfile's shell-form RUN uses it.
                        (None, Some(sh)) => sh.iter().cloned().chain([command.clone()]).collect(),
                        (None, None) => shell::sh_c(command.clone()),
                    };
                    if context.is_empty() {
                        st.root = self.run(&st, args, img, true, &[], vec![], m);
                    } else {
                        // The files it reads, writable (builds write into their tree) but
                        // never in the image, and the command runs among them.
                        let files = self.staged_files(context, &label, "context", step.span);
                        let mounts = vec![Mount::Output {
                            input: Some(files),
                            dest: RUN_CONTEXT_DIR.into(),
                        }];
                        let mut at = st.clone();
                        at.config.working_dir = RUN_CONTEXT_DIR.into();
                        st.root = self.run(&at, args, img, true, &[], mounts, m);
                    }
                }
                StepKind::Pip(p) => st.root = self.pip(&st, p, img, &label, step.span, m, Some(i)),
                StepKind::Lock(l) => st.root = self.lock(&st, l, img, &label, step.span, m),
                StepKind::Conda(c) => st.root = self.conda(&st, c, img, &label, step.span, m),
                StepKind::Copy {
                    src,
                    dest,
                    owner,
                    mode,
                    exclude,
                    optional,
                } => {
                    let ctx = self.context(std::slice::from_ref(src), false, &label, step.span);
                    // The path in its context (a named context's `//NAME/` taken off).
                    let src = crate::plan::ctxpath::split(src).1;
                    let dest = resolve_dest(&st.config.working_dir, src, dest.as_deref());
                    // An optional copy resolves `src` as a pattern (a plain path matches
                    // itself) so that BuildKit can allow it to match nothing.
                    // (`.` always matches: nothing to allow.)
                    let optional = *optional && src != ".";
                    let wildcard = optional || src.contains(['*', '?', '[']);
                    // With MergeOp, a service's files are copied onto scratch and merged onto
                    // its base: the copy does not depend on the base, so a new base re-runs
                    // only the merge. That needs the owner as numbers (no /etc/passwd in
                    // scratch); owners this stack created with a uid have them.
                    let numeric = owner.as_deref().map(|o| self.numeric_owner(o));
                    // The merged layer restates the metadata of every parent directory the copy
                    // creates on scratch: merge only into a workdir this stack made, owned by
                    // the copy's owner, so the parents it restates are the same as the base's.
                    let safe_parents = st.made_workdir.as_ref().is_some_and(|(wd, wd_owner)| {
                        dest.starts_with(&format!("{}/", wd.trim_end_matches('/')))
                            && wd_owner == owner
                    });
                    let merge = self.opts.merge
                        && img.kind == crate::stack::Kind::Service
                        && safe_parents
                        && numeric.as_ref().is_none_or(|n| n.is_some());
                    let action = FileAction::Copy {
                        from: ctx,
                        src: if src == "." {
                            "/".into()
                        } else if optional {
                            format!("/{}", optional_src(src))
                        } else {
                            format!("/{src}")
                        },
                        dest,
                        owner: if merge {
                            numeric.flatten().map(|o| Owner::parse(&o))
                        } else {
                            self.owner(owner)
                        },
                        mode: *mode,
                        dir_contents: true,
                        exclude: exclude.clone(),
                        wildcard,
                        allow_empty: optional,
                    };
                    if merge {
                        let files = self.g.file(
                            None,
                            vec![action],
                            self.platform(),
                            Self::cacheable(&st, m.clone()),
                        );
                        let mut mm = m;
                        mm.name = format!("{} (merge)", mm.name);
                        st.root = self.g.merge(vec![st.root, files], Self::cacheable(&st, mm));
                    } else {
                        st.root = self.g.file(
                            Some(st.root),
                            vec![action],
                            self.platform(),
                            Self::cacheable(&st, m),
                        );
                    }
                }
                StepKind::CopyFrom {
                    from,
                    src,
                    dest,
                    owner,
                    mode,
                    exclude,
                } => {
                    let Base::Layer { index, .. } = from else {
                        continue;
                    };
                    let (files, picked) = self.artifact(*index, src, exclude, step.span);
                    let action = FileAction::Copy {
                        from: files,
                        src: picked,
                        dest: artifact_dest(&st.config.working_dir, src, dest.as_deref()),
                        owner: self.owner(owner),
                        mode: *mode,
                        dir_contents: true,
                        exclude: vec![],
                        wildcard: false,
                        allow_empty: false,
                    };
                    st.root = self.g.file(
                        Some(st.root),
                        vec![action],
                        self.platform(),
                        Self::cacheable(&st, m),
                    );
                }
                StepKind::CopyVenv { path, owner } => {
                    let Some(v) = &img.venv else { continue };
                    let builder = self.venv_builder(img, v);
                    let action = FileAction::Copy {
                        from: builder,
                        src: path.clone(),
                        dest: path.clone(),
                        owner: self.owner(owner),
                        mode: None,
                        dir_contents: true,
                        exclude: vec![],
                        wildcard: false,
                        allow_empty: false,
                    };
                    st.root = self.g.file(
                        Some(st.root),
                        vec![action],
                        self.platform(),
                        Self::cacheable(&st, m),
                    );
                    let old_path = st
                        .config
                        .get_env("PATH")
                        .unwrap_or(crate::image::DEFAULT_PATH)
                        .to_string();
                    st.config.set_env("PATH", &format!("{path}/bin:{old_path}"));
                    st.config.set_env("VIRTUAL_ENV", path);
                }
            }
            st.config.history.push(HistoryEntry {
                created_by,
                empty_layer: false,
                created: self.created.clone(),
            });
        }
        self.apply_config(img, &mut st.config);
        self.step_log.push(log);
        st
    }

    /// The files `src` names in image `index` of the plan, copied onto scratch: one vertex
    /// that depends only on that image and `src`/`exclude` (not on the image copying it, its
    /// destination, owner or mode), so every image copying the same artifact shares it.
    /// Returns it and the path to copy from it: `/` for a pattern (the matches sit at the
    /// root), else `/BASENAME` (a directory's contents, or one file).
    fn artifact(
        &mut self,
        index: usize,
        src: &str,
        exclude: &[String],
        span: crate::source::Span,
    ) -> (Output, String) {
        let source = &self.states[index];
        let (root, no_cache) = (source.root, source.no_cache);
        let label = self.plan.images[index].label();
        let wildcard = src.contains(['*', '?', '[']);
        let at = match src.trim_end_matches('/').rsplit_once('/') {
            Some((_, base)) if !wildcard && !base.is_empty() => format!("/{base}"),
            _ => "/".to_string(),
        };
        let mut m = meta(names::vertex(&label, format!("artifact {src}")), span);
        m.ignore_cache = no_cache;
        let files = self.g.file(
            None,
            vec![FileAction::Copy {
                from: root,
                src: src.to_string(),
                dest: at.clone(),
                owner: None,
                mode: None,
                dir_contents: true,
                exclude: exclude.to_vec(),
                wildcard,
                allow_empty: false,
            }],
            self.platform(),
            m,
        );
        (files, at)
    }

    pub(super) fn cacheable(st: &State, mut m: VertexMeta) -> VertexMeta {
        m.ignore_cache = st.no_cache;
        m
    }

    /// The builder stage of a two-stage service; returns the state holding the venv.
    pub(super) fn venv_builder(&mut self, img: &PlanImage, v: &crate::plan::VenvPlan) -> Output {
        let label = names::venv_label(&img.label());
        let mut st = self.base(&v.builder, &label);
        if self.opts.no_cache_filter.contains(&img.name) {
            st.no_cache = true;
        }
        let python = v.python.clone();
        let n = 2 + usize::from(!v.apt.is_empty());
        let mut i = 0;
        let mut next = |what: String| {
            i += 1;
            names::step(&label, i, n, what)
        };
        if !v.apt.is_empty() {
            let name = next(format!("apt-get install {}", v.apt.join(" ")));
            let apt = crate::plan::AptStep::plain(v.apt.clone());
            st.root = self.apt(&st, &apt, img, &label, v.span, meta(name, v.span));
        }
        let name = next(format!("{python} -m venv {}", v.path));
        st.root = self.run(
            &st,
            vec![python.clone(), "-m".into(), "venv".into(), v.path.clone()],
            img,
            false,
            &[],
            vec![],
            meta(name, v.span),
        );
        let name = next(v.pip.describe());
        let pip = v.pip.clone();
        st.root = self.pip(
            &st,
            &pip,
            img,
            &label,
            v.pip_span,
            meta(name, v.pip_span),
            None,
        );
        st.root
    }

    pub(super) fn apply_config(&mut self, img: &PlanImage, c: &mut ImageConfig) {
        let ch = &img.config;
        if let Some(w) = &ch.workdir {
            c.working_dir = w.clone();
        }
        if let Some(u) = &ch.user {
            c.user = u.clone();
        }
        // Like Dockerfile: a shell form runs with the image's `Shell` (inherited from its base),
        // and a new entrypoint resets an inherited cmd.
        if let Some(e) = &ch.entrypoint {
            c.entrypoint = Some(e.argv(c.shell.as_deref()));
            if ch.cmd.is_none() {
                c.cmd = None;
            }
        }
        if let Some(cmd) = &ch.cmd {
            c.cmd = Some(cmd.argv(c.shell.as_deref()));
        }
        let mut ports: BTreeSet<String> = c.exposed_ports.iter().cloned().collect();
        ports.extend(ch.exposed_ports.iter().cloned());
        c.exposed_ports = ports.into_iter().collect();
        if let Some(h) = &ch.healthcheck {
            c.healthcheck = h.clone();
        }
        for (k, v) in &ch.labels {
            c.labels.insert(k.clone(), v.clone());
        }
        if let Some(s) = &ch.stop_signal {
            c.stop_signal = Some(s.clone());
        }
        let summary = format!("layerstack: [{}] config", img.label());
        c.history.push(HistoryEntry {
            created_by: summary,
            empty_layer: true,
            created: self.created.clone(),
        });
    }
}
