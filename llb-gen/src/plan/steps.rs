//! The steps of one image, in build order (apt, user, workdir, runs, conda, python, copies;
//! `run`/`copy` entries with `at` go to their named slot, see [`RunAt`] and [`CopyAt`]), and
//! the validators of apt packages, users and absolute paths.

use crate::diag::{Diagnostic, did_you_mean};
use crate::source::Span;
use crate::stack::{Chown, CondaDef, DockerfileDef, ImageDef, Sp};

use super::*;

impl<'a> Planner<'a> {
    /// Plan `img` (its base already planned) and add it to the plan's images: its steps in
    /// build order (module doc), its config and install env. None when its base is unknown.
    pub(super) fn add_new(&mut self, img: &'a ImageDef) -> Option<usize> {
        let key = img.key();
        if let Some(df) = &img.dockerfile {
            return self.add_dockerfile(img, df, &key);
        }
        let from = img.from.as_ref()?;
        let base = self.base(from, &format!("{key}.from"));
        let base_layer = match &base {
            Some(Base::Layer { index, .. }) => self.images.get(*index),
            _ => None,
        };
        // Per-image settings, inherited down `from` chains: own, else the base layer's.
        let inherited_python = base_layer.map(|b| b.python.clone());
        let inherited_backend = base_layer.and_then(|b| b.torch_backend.clone());
        // The image differs from its build-platform twin (where cross-installs run) in its
        // interpreter when an overlay for either platform sets `from` or `python`.
        let platform_specific = img.platforms.iter().any(|o| {
            (o.platform == self.platform || o.platform == self.build_platform)
                && (o.image.from.is_some() || o.image.python.is_some())
        }) || base_layer.is_some_and(|b| b.platform_specific);
        // A value a platform overlay set is reported under the overlay's key.
        let key_of = |span: Span, name: &str, field: fn(&ImageDef) -> Option<Span>| {
            img.platforms
                .iter()
                .find(|o| field(&o.image) == Some(span))
                .map(|o| format!("{}.{name}", o.key))
                .unwrap_or_else(|| format!("{key}.{name}"))
        };
        let python = match &img.python {
            Some(p) => {
                let k = key_of(p.span, "python", |i| i.python.as_ref().map(|v| v.span));
                self.text(p, &k)
            }
            None => inherited_python.unwrap_or_else(|| self.python.clone()),
        };
        let torch_backend = match &img.torch_backend {
            Some(b) => {
                let k = key_of(b.span, "torch-backend", |i| {
                    i.torch_backend.as_ref().map(|v| v.span)
                });
                Some((self.text(b, &k), b.span, k))
            }
            None => inherited_backend,
        };
        let mut steps = vec![];
        // `run` entries, in list order, each with its slot; pushed at the slots below.
        let mut runs = self.run_entries(img, &key);
        // 0. Commands that prepare the apt step.
        push_runs(&mut steps, &mut runs, RunAt::BeforeApt);
        // 1. System packages.
        let apt = self.apt_step(img, &key);
        if !apt.packages.is_empty() || !apt.debs.is_empty() || !apt.sources.is_empty() {
            steps.push(step(
                StepKind::Apt(apt),
                img.apt
                    .iter()
                    .map(|s| s.span)
                    .chain(img.apt_sources.iter().map(|s| s.span))
                    .reduce(Span::join)
                    .unwrap_or(img.span),
            ));
        }
        // 2. The user.
        let user = self.user_step(img, &key, &base, &mut steps);
        // 3. The workdir.
        let workdir = self.workdir_step(img, &key, &user.owner, &mut steps);
        // 4. Commands at their default place (after apt, user and workdir).
        push_runs(&mut steps, &mut runs, RunAt::AfterApt);
        // 5. A conda environment, then Python deps (pip installs into it).
        if let Some(c) = &img.conda {
            let conda = self.conda_step(c, &key, &mut runs);
            steps.push(conda);
        }
        push_runs(&mut steps, &mut runs, RunAt::AfterConda);
        // Copies the Python installs need (`at = "before-python"`).
        let mut copies: Vec<(CopyAt, Step)> = self.copies(img, &key, &user.owner);
        let before: Vec<Step> = copies
            .extract_if(.., |(a, _)| *a == CopyAt::BeforePython)
            .map(|(_, s)| s)
            .collect();
        steps.extend(before);
        let venv = self.python_steps(img, &key, &base, &python, &torch_backend, &mut steps);
        push_runs(&mut steps, &mut runs, RunAt::AfterPython);
        // 6. Files, then the commands over them.
        steps.extend(copies.drain(..).map(|(_, s)| s));
        push_runs(&mut steps, &mut runs, RunAt::AfterCopy);

        let config = self.config(img, &key, user.name, workdir);
        let mut install_env = self.stack_install_env.clone();
        install_env.extend(self.install_env_list(&img.install_env, &format!("{key}.install-env")));
        let base = base?;
        let idx = self.images.len();
        self.images.push(PlanImage {
            name: img.name.value.clone(),
            kind: img.kind,
            key,
            span: img.span,
            description: img.description.as_ref().map(|d| d.value.clone()),
            base,
            steps,
            config,
            venv,
            install_env,
            declared_user: user.effective,
            build_only: img.is_build_only(),
            cross_install: !platform_specific
                && img
                    .cross_install
                    .as_ref()
                    .or(self.stack.cross_install.as_ref())
                    .is_none_or(|c| c.value),
            resolve: img
                .resolve
                .as_ref()
                .or(self.stack.resolve.as_ref())
                .is_some_and(|c| c.value),
            python,
            torch_backend,
            platform_specific,
        });
        self.index.insert(img.name.value.clone(), idx);
        Some(idx)
    }

    /// The image's `run` entries, in list order, each with its slot (`at`).
    fn run_entries(&mut self, img: &'a ImageDef, key: &str) -> Vec<(RunAt, Step)> {
        let mut runs = vec![];
        for (i, r) in img.run.iter().enumerate() {
            let rk = format!("{key}.run[{i}]");
            let at = match &r.at {
                None => RunAt::AfterApt,
                Some(a) => match RunAt::parse(&a.value) {
                    Some(at) => at,
                    None => {
                        self.diags
                            .push(unknown_at(a, &format!("{rk}.at"), "run", RunAt::NAMES));
                        RunAt::AfterApt
                    }
                },
            };
            if at == RunAt::AfterConda && img.conda.is_none() {
                self.diags.push(
                    Diagnostic::error(
                        "`at = \"after-conda\"` needs a `conda` environment in this image",
                    )
                    .at(r.at.as_ref().map(|a| a.span).unwrap_or(r.span))
                    .key(format!("{rk}.at"))
                    .hint("add `conda = { file = … }` to this image, or use \"after-python\""),
                );
            }
            let command = self.shell_text(&r.cmd, &rk);
            let context = r
                .context
                .iter()
                .enumerate()
                .map(|(j, p)| self.context_path(p, &format!("{rk}.context[{j}]")))
                .collect();
            runs.push((
                at,
                step(
                    StepKind::Run {
                        command,
                        context,
                        activate: None,
                    },
                    r.span,
                ),
            ));
        }
        runs
    }

    /// The image's user (the `useradd` step when it creates one), and who owns its files.
    fn user_step(
        &mut self,
        img: &'a ImageDef,
        key: &str,
        base: &Option<Base>,
        steps: &mut Vec<Step>,
    ) -> ImageUser {
        let user = img
            .user
            .as_ref()
            .map(|u| (self.user(u, &format!("{key}.user")), u));
        if let Some((Some(up), u)) = &user {
            let create = u.create.as_ref().map(|c| c.value).unwrap_or(true);
            if create && up.name != "root" && !up.name.chars().all(|c| c.is_ascii_digit()) {
                steps.push(step(StepKind::CreateUser(up.clone()), u.span));
            }
        }
        let name = user
            .as_ref()
            .and_then(|(u, _)| u.as_ref().map(|u| u.name.clone()));
        // The effective declared user: own, or inherited from a layer of this stack.
        let effective = name.clone().or_else(|| match base {
            Some(Base::Layer { index, .. }) => self.images[*index].declared_user.clone(),
            _ => None,
        });
        let owner = effective.clone().filter(|u| u != "root" && u != "0");
        ImageUser {
            name,
            effective,
            owner,
        }
    }

    /// The image's working directory (the mkdir step when it sets one), validated.
    fn workdir_step(
        &mut self,
        img: &'a ImageDef,
        key: &str,
        owner: &Option<String>,
        steps: &mut Vec<Step>,
    ) -> Option<String> {
        let (path, span) = img.workdir.as_ref().map(|w| {
            let v = self.text(w, &format!("{key}.workdir"));
            if !v.starts_with('/') {
                self.diags.push(
                    Diagnostic::error(format!("workdir `{v}` must be an absolute path"))
                        .at(w.span)
                        .key(format!("{key}.workdir")),
                );
            }
            (v, w.span)
        })?;
        steps.push(step(
            StepKind::Mkdir {
                path: path.clone(),
                owner: owner.clone(),
            },
            span,
        ));
        Some(path)
    }

    /// The conda step; the `after-conda` entries of `runs` are set to run inside its
    /// environment.
    fn conda_step(&mut self, c: &'a CondaDef, key: &str, runs: &mut [(RunAt, Step)]) -> Step {
        let ck = format!("{key}.conda");
        let file = self.context_path(&c.file, &format!("{ck}.file"));
        let channels = self.texts(&c.channels, &format!("{ck}.channels"));
        let installer = c
            .installer
            .as_ref()
            .map(|i| self.text(i, &format!("{ck}.installer")))
            .unwrap_or_else(|| "micromamba".into());
        if !matches!(installer.as_str(), "micromamba" | "mamba" | "conda") {
            self.diags.push(
                Diagnostic::error(format!("unknown conda installer `{installer}`"))
                    .at(c.installer.as_ref().map(|i| i.span).unwrap_or(c.span))
                    .key(format!("{ck}.installer"))
                    .hint("use \"micromamba\", \"mamba\" or \"conda\""),
            );
        }
        let cache = c
            .cache
            .as_ref()
            .map(|p| self.abs_path(p, &format!("{ck}.cache")))
            .unwrap_or_else(|| "/opt/conda/pkgs".into());
        let env = c
            .env
            .as_ref()
            .map(|e| self.text(e, &format!("{ck}.env")))
            .unwrap_or_else(|| "base".into());
        // Commands placed after conda run inside its environment.
        for (at, s) in runs.iter_mut() {
            if let (RunAt::AfterConda, StepKind::Run { activate, .. }) = (at, &mut s.kind) {
                *activate = Some((installer.clone(), env.clone()));
            }
        }
        step(
            StepKind::Conda(CondaStep {
                file,
                channels,
                installer,
                cache,
                env,
            }),
            c.span,
        )
    }

    /// The Python steps: torch, then either one pip step or (with `venv`) the copy of the venv
    /// built in a builder, whose plan is returned.
    fn python_steps(
        &mut self,
        img: &'a ImageDef,
        key: &str,
        base: &Option<Base>,
        python: &str,
        torch_backend: &Option<(String, Span, String)>,
        steps: &mut Vec<Step>,
    ) -> Option<VenvPlan> {
        let deps = self.python_deps(img, key);
        let index_url = img
            .index_url
            .as_ref()
            .map(|u| self.text(u, &format!("{key}.index-url")));
        let extra_index_urls =
            self.texts(&img.extra_index_urls, &format!("{key}.extra-index-urls"));
        let installer = self.installer(img, key);
        // With a lock, `[torch]` picks the lock's build for the platform and backend: pins of
        // the lock step instead of a pip step.
        let torch_in_lock = img.lock.is_some() && img.venv.is_none();
        let mut torch_pins = vec![];
        let torch_step = match &img.torch {
            Some(usage) if torch_in_lock => {
                torch_pins = self
                    .torch_pins(usage, key, index_url.clone(), torch_backend.clone())
                    .unwrap_or_default();
                None
            }
            Some(usage) => self.torch_step(
                usage,
                key,
                index_url.clone(),
                extra_index_urls.clone(),
                torch_backend.clone(),
                python,
            ),
            None => None,
        };
        if img.torch.is_some() && img.venv.is_some() {
            self.diags.push(
                Diagnostic::error("`torch` is not supported in a two-stage `venv` service")
                    .at(img.torch.as_ref().map(|t| t.span).unwrap_or(img.span))
                    .key(format!("{key}.torch"))
                    .hint("install torch in a layer and build the service on it"),
            );
        }
        if let (Some(mut t), Some(usage)) = (torch_step, &img.torch) {
            t.installer = installer.clone();
            steps.push(step(StepKind::Pip(t), usage.span));
        }
        if img.lock.is_some() && img.venv.is_some() {
            self.diags.push(
                Diagnostic::error("`lock` is not supported in a two-stage `venv` service")
                    .at(img.lock.as_ref().map(|l| l.span).unwrap_or(img.span))
                    .key(format!("{key}.lock"))
                    .hint("install the lock in a layer and build the service on it"),
            );
        } else if let Some(mut l) = self.lock_step(img, key, base.as_ref(), torch_pins) {
            l.index_url = index_url.clone();
            l.extra_index_urls = extra_index_urls.clone();
            let span = img.lock.as_ref().map(|d| d.span).unwrap_or(img.span);
            steps.push(step(StepKind::Lock(l), span));
        }
        let has_pip =
            !deps.requirements.is_empty() || !deps.specs.is_empty() || !deps.local.is_empty();
        let pip_span = img
            .requirements
            .iter()
            .chain(img.pip.iter())
            .map(|s| s.span)
            .reduce(Span::join)
            .unwrap_or(img.span);
        let PythonDeps {
            requirements,
            includes,
            specs,
            local,
        } = deps;
        let mut venv = None;
        if let Some(vd) = &img.venv {
            let path = vd
                .path
                .as_ref()
                .map(|p| self.text(p, &format!("{key}.venv.path")))
                .unwrap_or_else(|| "/opt/venv".into());
            if !path.starts_with('/') {
                self.diags.push(
                    Diagnostic::error(format!("venv path `{path}` must be absolute"))
                        .at(vd.span)
                        .key(format!("{key}.venv.path")),
                );
            }
            let builder = match &vd.builder {
                Some(b) => self.base(b, &format!("{key}.venv.builder")),
                None => base.clone(),
            };
            let bapt = self.packages(&vd.builder_apt, &format!("{key}.venv.builder-apt"));
            if let Some(builder) = builder {
                let pip = PipStep {
                    requirements,
                    includes,
                    specs,
                    local,
                    index_url,
                    extra_index_urls,
                    python: format!("{path}/bin/python"),
                    installer,
                };
                // The venv is created by the builder's interpreter: a builder layer's own.
                let builder_python = match &builder {
                    Base::Layer { index, .. } if vd.builder.is_some() => self
                        .images
                        .get(*index)
                        .map(|b| b.python.clone())
                        .unwrap_or_else(|| python.to_string()),
                    _ => python.to_string(),
                };
                venv = Some(VenvPlan {
                    builder,
                    python: builder_python,
                    apt: bapt,
                    path: path.clone(),
                    pip,
                    span: vd.span,
                    pip_span,
                });
            }
            steps.push(step(StepKind::CopyVenv { path, owner: None }, vd.span));
        } else if has_pip {
            steps.push(step(
                StepKind::Pip(PipStep {
                    requirements,
                    includes,
                    specs,
                    local,
                    index_url,
                    extra_index_urls,
                    python: python.to_string(),
                    installer,
                }),
                pip_span,
            ));
        }
        venv
    }

    /// What the image's pip step installs: its requirements files (and the files they
    /// include, as the edge read them), specifiers and local packages (`./path` entries).
    fn python_deps(&mut self, img: &'a ImageDef, key: &str) -> PythonDeps {
        let requirements: Vec<String> = img
            .requirements
            .iter()
            .enumerate()
            .map(|(i, r)| self.context_path(r, &format!("{key}.requirements[{i}]")))
            .collect();
        // The files they include (`-r`, `-c`), as the edge read them: staged with them.
        let mut includes = std::collections::BTreeSet::new();
        for (i, r) in requirements.iter().enumerate() {
            let (files, errors) = self.includes.of(r);
            includes.extend(files);
            for e in errors {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` (line {} of `{}`, included by `{r}`): {}",
                        e.text, e.line, e.file, e.message
                    ))
                    .at(img.requirements[i].span)
                    .key(format!("{key}.requirements[{i}]"))
                    .hint("an included file is read relative to the file that includes it and must be in the build context (and not in .dockerignore)"),
                );
            }
        }
        let includes: Vec<String> = includes
            .into_iter()
            .filter(|f| !requirements.contains(f))
            .collect();
        // `./path` entries are local packages: context directories pip builds and installs.
        let mut specs = vec![];
        let mut local = vec![];
        for (i, entry) in img.pip.iter().enumerate() {
            let k = format!("{key}.pip[{i}]");
            let text = self.text(entry, &k);
            let named_local = ctxpath::parse_user(&text).is_some_and(|(_, p)| {
                // `/…`: a package in an image context (`tools:/opt/pkg`).
                p == "." || p.starts_with("./") || p.starts_with("../") || p.starts_with('/')
            });
            if text == "." || text.starts_with("./") || text.starts_with("../") || named_local {
                local.push(self.context_path(entry, &k));
            } else if let Some(path) = text
                .strip_prefix("-e ")
                .or_else(|| text.strip_prefix("--editable "))
                .filter(|p| p.trim_start().starts_with('.'))
            {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{text}`: an editable install would point at a source that is not in the image"
                    ))
                    .at(entry.span)
                    .key(k)
                    .hint(format!(
                        "install it as a package (`\"{}\"`), or copy it and set PYTHONPATH",
                        path.trim()
                    )),
                );
            } else {
                specs.push(text);
            }
        }
        PythonDeps {
            requirements,
            includes,
            specs,
            local,
        }
    }

    /// An image BuildKit's Dockerfile frontend builds: no steps and no config of its own (the
    /// Dockerfile has them); the context defaults to the Dockerfile's directory.
    fn add_dockerfile(
        &mut self,
        img: &'a ImageDef,
        df: &'a DockerfileDef,
        key: &str,
    ) -> Option<usize> {
        let dk = format!("{key}.dockerfile");
        let before = self.diags.error_count();
        let file = self.context_path_in(&df.file, &format!("{dk}.file"), false);
        if file == "." {
            self.diags.push(
                Diagnostic::error("`dockerfile` names the context itself, not a file")
                    .at(df.file.span)
                    .key(format!("{dk}.file"))
                    .hint("name the file: \"services/auth/Dockerfile\""),
            );
        }
        let context = match &df.context {
            Some(c) => self.context_path_in(c, &format!("{dk}.context"), false),
            None => match file.rsplit_once('/') {
                Some((dir, _)) => dir.to_string(),
                None => ".".into(),
            },
        };
        let target = df
            .target
            .as_ref()
            .map(|t| self.text(t, &format!("{dk}.target")));
        let args = df
            .args
            .iter()
            .map(|a| {
                let v = self.text(&a.value, &format!("{dk}.args.{}", a.name.value));
                (a.name.value.clone(), v)
            })
            .collect();
        if self.diags.error_count() > before {
            return None;
        }
        let idx = self.images.len();
        self.images.push(PlanImage {
            name: img.name.value.clone(),
            kind: img.kind,
            key: key.to_string(),
            span: img.span,
            description: img.description.as_ref().map(|d| d.value.clone()),
            base: Base::Dockerfile(DockerfileBuild {
                file,
                context,
                target,
                args,
                span: df.span,
            }),
            steps: vec![],
            config: ConfigChanges::default(),
            venv: None,
            install_env: vec![],
            // The Dockerfile's USER is known only once it is built.
            declared_user: None,
            build_only: img.is_build_only(),
            cross_install: false,
            resolve: false,
            python: self.python.clone(),
            torch_backend: None,
            platform_specific: false,
        });
        self.index.insert(img.name.value.clone(), idx);
        Some(idx)
    }

    /// The image's `copy` entries, in list order, each with its slot.
    fn copies(
        &mut self,
        img: &'a ImageDef,
        key: &str,
        owner: &Option<String>,
    ) -> Vec<(CopyAt, Step)> {
        let mut out = vec![];
        for (i, c) in img.copy.iter().enumerate() {
            let ck = format!("{key}.copy[{i}]");
            let dest = c.dest.as_ref().map(|d| self.text(d, &format!("{ck}.dest")));
            let mode = self.copy_mode(c.mode.as_ref(), &ck);
            let exclude = self.texts(&c.exclude, &format!("{ck}.exclude"));
            let at = match &c.at {
                None => CopyAt::AfterPython,
                Some(a) => match CopyAt::parse(&a.value) {
                    Some(at) => at,
                    None => {
                        self.diags
                            .push(unknown_at(a, &format!("{ck}.at"), "copy", CopyAt::NAMES));
                        CopyAt::AfterPython
                    }
                },
            };
            let optional = c.optional.as_ref().is_some_and(|o| o.value);
            if let (Some(_), Some(ctx)) = (&c.from, &c.context) {
                self.diags.push(
                    Diagnostic::error("a copy comes `from` an image or from a named `context`, not both")
                        .at(ctx.span)
                        .key(format!("{ck}.context"))
                        .hint("remove `context` to copy out of the image, or `from` to copy from the named context"),
                );
                continue;
            }
            if let Some(from) = &c.from {
                // An artifact from another image: by default its files keep the owner they
                // have there (root for what apt and run made).
                let owner = match &c.chown {
                    Chown::Default | Chown::No => None,
                    Chown::To(s) => Some(self.chown(s, &ck)),
                };
                let src = self.text(&c.src, &format!("{ck}.src"));
                if !src.starts_with('/') {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "`{src}` is not an absolute path; a copy `from` an image names a path in that image"
                        ))
                        .at(c.src.span)
                        .key(format!("{ck}.src"))
                        .hint(format!("e.g. src = \"/{}\"", src.trim_start_matches("./"))),
                    );
                }
                if let Some(o) = c.optional.as_ref().filter(|o| o.value) {
                    self.diags.push(
                        Diagnostic::error("`optional` is for copies from the build context")
                            .at(o.span)
                            .key(format!("{ck}.optional"))
                            .hint("an artifact copy must match: the image it comes from is built by this stack"),
                    );
                }
                if dest.is_none()
                    && src
                        .rsplit_once('/')
                        .is_some_and(|(dir, _)| dir.contains(['*', '?', '[']))
                {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "`{src}` has a pattern in a directory: where its files go needs `dest`"
                        ))
                        .at(c.src.span)
                        .key(format!("{ck}.dest"))
                        .hint("add dest = \"/some/dir/\""),
                    );
                }
                if let Some(from) = self.copy_source(from, &format!("{ck}.from")) {
                    out.push((
                        at,
                        Step {
                            kind: StepKind::CopyFrom {
                                from,
                                src,
                                dest,
                                owner,
                                mode,
                                exclude,
                            },
                            span: c.span,
                        },
                    ));
                }
                continue;
            }
            let src = match &c.context {
                Some(ctx) => self.named_context_path(ctx, &c.src, &ck),
                None => self.context_path(&c.src, &format!("{ck}.src")),
            };
            let owner = match &c.chown {
                Chown::Default => owner.clone(),
                Chown::No => None,
                Chown::To(s) => Some(self.chown(s, &ck)),
            };
            out.push((
                at,
                Step {
                    kind: StepKind::Copy {
                        src,
                        dest,
                        owner,
                        mode,
                        exclude,
                        optional,
                    },
                    span: c.span,
                },
            ));
        }

        out
    }

    /// `apt`, `apt-recommends` and `apt-sources` of one image: `./x.deb` entries of `apt`
    /// are context files, the others package names.
    fn apt_step(&mut self, img: &ImageDef, key: &str) -> AptStep {
        let apt_key = format!("{key}.apt");
        let mut names = vec![];
        let mut debs = vec![];
        for (i, entry) in img.apt.iter().enumerate() {
            let k = format!("{apt_key}[{i}]");
            let trimmed = entry.value.trim();
            let named_deb = ctxpath::parse_user(trimmed).is_some_and(|(_, p)| {
                p.starts_with("./") || p.starts_with("../") || p.starts_with('/')
            });
            if trimmed.starts_with("./")
                || trimmed.starts_with("../")
                || trimmed.starts_with('/')
                || named_deb
            {
                let path = self.context_path(entry, &k);
                if !path.ends_with(".deb") {
                    self.diags.push(
                        Diagnostic::error(format!("`{path}` is not a .deb file"))
                            .at(entry.span)
                            .key(k)
                            .hint("local entries of `apt` are .deb files in the build context, like \"./debs/tool_1.0_amd64.deb\""),
                    );
                    continue;
                }
                debs.push(path);
            } else {
                names.push(entry.clone());
            }
        }
        let packages = self.packages(&names, &apt_key);
        let mut sources = vec![];
        for (i, d) in img.apt_sources.iter().enumerate() {
            let k = format!("{key}.apt-sources[{i}]");
            if let Some(s) = self.apt_source(d, &k, &format!("{}-{}", img.name.value, i + 1)) {
                if sources.iter().any(|o: &AptSource| o.name == s.name) {
                    self.diags.push(
                        Diagnostic::error(format!("two apt sources are named `{}`", s.name))
                            .at(d.span)
                            .key(k)
                            .hint("give each source its own `name`"),
                    );
                    continue;
                }
                sources.push(s);
            }
        }
        AptStep {
            packages,
            debs,
            recommends: img.apt_recommends.as_ref().is_some_and(|r| r.value),
            sources,
        }
    }

    /// One deb822 source; every value a single line of safe characters.
    fn apt_source(
        &mut self,
        d: &crate::stack::AptSourceDef,
        key: &str,
        default_name: &str,
    ) -> Option<AptSource> {
        let before = self.diags.error_count();
        let name = match &d.name {
            Some(n) => self.text(n, &format!("{key}.name")),
            None => default_name.to_string(),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            self.diags.push(
                Diagnostic::error(format!("`{name}` is not a valid apt source name"))
                    .at(d.name.as_ref().map(|n| n.span).unwrap_or(d.span))
                    .key(format!("{key}.name"))
                    .hint("letters, digits, `.`, `_` and `-`: it names /etc/apt/sources.list.d/layerstack-NAME.sources"),
            );
        }
        let mut words = |list: &[Sp<String>], field: &str, ok: &dyn Fn(&str) -> bool| {
            let mut out = vec![];
            for s in list {
                let v = self.text(s, &format!("{key}.{field}"));
                for w in v.split_whitespace() {
                    if ok(w) {
                        out.push(w.to_string());
                    } else {
                        self.diags.push(
                            Diagnostic::error(format!("`{w}` is not valid in `{field}`"))
                                .at(s.span)
                                .key(format!("{key}.{field}")),
                        );
                    }
                }
            }
            out
        };
        let plain = |w: &str| {
            w.chars()
                .all(|c| c.is_ascii_graphic() && !"#'\"\\`$".contains(c))
        };
        let mut types = words(&d.types, "types", &|w: &str| w == "deb" || w == "deb-src");
        if types.is_empty() {
            types.push("deb".into());
        }
        let uris = words(&d.uris, "uris", &|w: &str| plain(w) && w.contains(':'));
        let suites = words(&d.suites, "suites", &plain);
        let components = words(&d.components, "components", &plain);
        let architectures = words(&d.architectures, "architectures", &|w: &str| {
            w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
        let exact = suites.iter().any(|s| s.ends_with('/'));
        if exact && !components.is_empty() {
            self.diags.push(
                Diagnostic::error("a suite ending in `/` is an exact path: it takes no components")
                    .at(d.span)
                    .key(format!("{key}.components")),
            );
        } else if !exact && components.is_empty() && !suites.is_empty() {
            self.diags.push(
                Diagnostic::error(
                    "an apt source needs `components` (or an exact suite path ending in `/`)",
                )
                .at(d.span)
                .key(format!("{key}.components"))
                .hint("components = \"main\""),
            );
        }
        let signed_by = match (&d.key, &d.signed_by) {
            (Some(k), Some(_)) => {
                self.diags.push(
                    Diagnostic::error("an apt source takes `key` or `signed-by`, not both")
                        .at(k.span)
                        .key(format!("{key}.key")),
                );
                SignedBy::None
            }
            (Some(k), None) => SignedBy::Context(self.context_path(k, &format!("{key}.key"))),
            (None, Some(s)) => {
                let v = self.text(s, &format!("{key}.signed-by"));
                let v = v.trim();
                if v.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
                    && v.ends_with("-----END PGP PUBLIC KEY BLOCK-----")
                    && v.chars()
                        .all(|c| c == '\n' || (c.is_ascii() && !c.is_ascii_control()))
                {
                    SignedBy::Inline(v.to_string())
                } else if v.starts_with('/') {
                    SignedBy::Path(self.abs_path(s, &format!("{key}.signed-by")))
                } else {
                    self.diags.push(
                        Diagnostic::error("`signed-by` is a keyring path in the image or an armored key")
                            .at(s.span)
                            .key(format!("{key}.signed-by"))
                            .hint("signed-by = \"/usr/share/keyrings/debian-archive-keyring.gpg\", or `key = \"keys/x.asc\"` for a file in the build context"),
                    );
                    SignedBy::None
                }
            }
            (None, None) => SignedBy::None,
        };
        (self.diags.error_count() == before).then_some(AptSource {
            name,
            types,
            uris,
            suites,
            components,
            architectures,
            signed_by,
        })
    }

    /// `copy[i].chown = "user[:group]"`, validated.
    fn chown(&mut self, s: &Sp<String>, ck: &str) -> String {
        let v = self.text(s, &format!("{ck}.chown"));
        let ok_part = |p: &str| {
            !p.is_empty()
                && (p.chars().all(|c| c.is_ascii_digit())
                    || (p.len() <= 32
                        && p.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                        })))
        };
        let valid = match v.split_once(':') {
            Some((u, g)) => ok_part(u) && ok_part(g),
            None => ok_part(&v),
        };
        if !valid {
            self.diags.push(
                Diagnostic::error(format!("invalid owner `{v}`"))
                    .at(s.span)
                    .key(format!("{ck}.chown"))
                    .hint("use \"user\", \"user:group\" or numeric ids like \"1000:1000\""),
            );
        }
        v
    }

    /// `copy[i].mode`, an octal mode.
    fn copy_mode(&mut self, m: Option<&Sp<String>>, ck: &str) -> Option<u32> {
        let m = m?;
        match u32::from_str_radix(m.value.trim_start_matches("0o"), 8) {
            Ok(v) if v <= 0o7777 => Some(v),
            _ => {
                self.diags.push(
                    Diagnostic::error(format!("invalid mode `{}`", m.value))
                        .at(m.span)
                        .key(format!("{ck}.mode"))
                        .hint("an octal mode like \"0755\""),
                );
                None
            }
        }
    }

    /// The image a `copy.from` names (a layer or service of this stack), planned.
    fn copy_source(&mut self, from: &Sp<String>, key: &str) -> Option<Base> {
        let before = self.diags.error_count();
        let name = self.text(from, key);
        if self.diags.error_count() > before {
            return None;
        }
        let Some(src) = self.stack.image(&name) else {
            let d =
                super::check::unknown_copy_source(self.stack, &name, from.span, key.to_string());
            self.diags.push(d);
            return None;
        };
        let index = self.add(src)?;
        Some(Base::Layer {
            index,
            name,
            span: from.span,
        })
    }

    pub(super) fn packages(&mut self, list: &[Sp<String>], key: &str) -> Vec<String> {
        let mut out = vec![];
        for p in list {
            let before = self.diags.error_count();
            let v = self.text(p, key);
            if self.diags.error_count() > before {
                continue; // an undefined ${ARG}: one error is enough
            }
            for word in v.split_whitespace() {
                if word.starts_with('-')
                    || !word
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.:=_~*".contains(c))
                {
                    self.diags.push(
                        Diagnostic::error(format!("`{word}` is not an apt package name"))
                            .at(p.span)
                            .key(key.to_string())
                            .hint("list package names like \"curl\" or \"libpq-dev=15.*\"; use `run` for other apt-get options"),
                    );
                } else {
                    out.push(word.to_string());
                }
            }
        }
        out
    }

    pub(super) fn user(&mut self, u: &crate::stack::UserDef, key: &str) -> Option<UserPlan> {
        let name = self.text(&u.name, &format!("{key}.name"));
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            self.diags.push(
                Diagnostic::error(format!("invalid user name `{name}`"))
                    .at(u.name.span)
                    .key(key.to_string())
                    .hint("lowercase letters, digits, `_` and `-`, at most 32 characters"),
            );
            return None;
        }
        Some(UserPlan {
            name,
            uid: u.uid.as_ref().map(|v| v.value),
            gid: u.gid.as_ref().map(|v| v.value),
            home: u
                .home
                .as_ref()
                .map(|h| self.abs_path(h, &format!("{key}.home"))),
            shell: u
                .shell
                .as_ref()
                .map(|h| self.abs_path(h, &format!("{key}.shell"))),
        })
    }

    /// An absolute path made of safe characters (it ends up in a shell command).
    pub(super) fn abs_path(&mut self, s: &Sp<String>, key: &str) -> String {
        let v = self.text(s, key);
        let safe = v.starts_with('/')
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
        if !safe {
            self.diags.push(
                Diagnostic::error(format!("`{v}` is not an absolute path"))
                    .at(s.span)
                    .key(key.to_string())
                    .hint("use a path like /home/appuser or /bin/bash (letters, digits, `/._-+`)"),
            );
        }
        v
    }
}

/// Where a `run` entry runs among an image's steps (`at = "…"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunAt {
    /// First, before `apt`: apt configuration, `dpkg --add-architecture`, missing man dirs.
    BeforeApt,
    /// After apt, user and workdir, before the Python deps (the default).
    AfterApt,
    /// Right after the image's `conda` step, inside that environment.
    AfterConda,
    /// After torch, the pip step or the venv copy, before the copies.
    AfterPython,
    /// Last, after the copies: re-runs whenever a copied file changes.
    AfterCopy,
}

impl RunAt {
    pub const NAMES: &[&str] = &[
        "before-apt",
        "after-apt",
        "after-conda",
        "after-python",
        "after-copy",
    ];

    pub fn parse(s: &str) -> Option<RunAt> {
        Some(match s {
            "before-apt" => RunAt::BeforeApt,
            "after-apt" => RunAt::AfterApt,
            "after-conda" => RunAt::AfterConda,
            "after-python" => RunAt::AfterPython,
            "after-copy" => RunAt::AfterCopy,
            _ => return None,
        })
    }
}

/// Where a `copy` entry happens among an image's steps (`at = "…"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyAt {
    /// After conda and its commands, before torch and the pip step (files an install needs).
    BeforePython,
    /// After the Python deps (the default): code copied last never re-runs an install.
    AfterPython,
}

impl CopyAt {
    pub const NAMES: &[&str] = &["before-python", "after-python"];

    pub fn parse(s: &str) -> Option<CopyAt> {
        Some(match s {
            "before-python" => CopyAt::BeforePython,
            "after-python" => CopyAt::AfterPython,
            _ => return None,
        })
    }
}

/// ``unknown `at` value `X` for a run entry``, with the closest name as a hint.
fn unknown_at(a: &Sp<String>, key: &str, what: &str, names: &[&str]) -> Diagnostic {
    let d = Diagnostic::error(format!(
        "unknown `at` value `{}` for a {what} entry",
        a.value
    ))
    .at(a.span)
    .key(key.to_string());
    let all = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    match did_you_mean(&a.value, names.iter().copied()) {
        Some(s) => d.hint(format!("did you mean \"{s}\"? (one of {all})")),
        None => d.hint(format!("one of {all}")),
    }
}

/// One plan step declared at `span`.
fn step(kind: StepKind, span: Span) -> Step {
    Step { kind, span }
}

/// Move the `run` entries placed `at` out of `runs` onto the end of `steps`, in list order.
fn push_runs(steps: &mut Vec<Step>, runs: &mut Vec<(RunAt, Step)>, at: RunAt) {
    let (here, rest): (Vec<_>, Vec<_>) = runs.drain(..).partition(|(a, _)| *a == at);
    *runs = rest;
    steps.extend(here.into_iter().map(|(_, s)| s));
}

/// An image's user as its steps and config see it.
struct ImageUser {
    /// Its own `user` (validated).
    name: Option<String>,
    /// Its own or the one inherited from a layer of this stack.
    effective: Option<String>,
    /// Who owns its created and copied files: the effective user unless root.
    owner: Option<String>,
}

/// The inputs of an image's pip step.
struct PythonDeps {
    requirements: Vec<String>,
    includes: Vec<String>,
    specs: Vec<String>,
    local: Vec<String>,
}
