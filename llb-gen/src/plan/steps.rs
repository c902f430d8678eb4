//! The steps of one image, in build order (apt, user, python, copies, runs), and the
//! validators of apt packages, users and absolute paths.

use crate::diag::Diagnostic;
use crate::interp::Unknown;
use crate::source::Span;
use crate::stack::{Chown, ImageDef, Sp};

use super::*;

impl<'a> Planner<'a> {
    pub(super) fn add_new(&mut self, img: &'a ImageDef) -> Option<usize> {
        let key = img.key();
        let from = img.from.as_ref()?;
        let base = self.base(from, &format!("{key}.from"));
        let mut steps = vec![];
        let step = |kind: StepKind, span: Span| Step { kind, span };

        // 1. System packages.
        let apt = self.packages(&img.apt, &format!("{key}.apt"));
        if !apt.is_empty() {
            steps.push(step(
                StepKind::Apt { packages: apt },
                img.apt
                    .iter()
                    .map(|s| s.span)
                    .reduce(Span::join)
                    .unwrap_or(img.span),
            ));
        }
        // 2. The user.
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
        let user_name = user
            .as_ref()
            .and_then(|(u, _)| u.as_ref().map(|u| u.name.clone()));
        // The effective declared user: own, or inherited from a layer of this stack.
        let effective_user = user_name.clone().or_else(|| match &base {
            Some(Base::Layer { index, .. }) => self.images[*index].declared_user.clone(),
            _ => None,
        });
        let owner = effective_user.clone().filter(|u| u != "root" && u != "0");
        // 3. The workdir.
        let workdir = img.workdir.as_ref().map(|w| {
            let v = self.text(w, &format!("{key}.workdir"));
            if !v.starts_with('/') {
                self.diags.push(
                    Diagnostic::error(format!("workdir `{v}` must be an absolute path"))
                        .at(w.span)
                        .key(format!("{key}.workdir")),
                );
            }
            (v, w.span)
        });
        if let Some((path, span)) = &workdir {
            steps.push(step(
                StepKind::Mkdir {
                    path: path.clone(),
                    owner: owner.clone(),
                },
                *span,
            ));
        }
        // 4. Commands.
        for (i, r) in img.run.iter().enumerate() {
            let rk = format!("{key}.run[{i}]");
            let command = self.shell_text(&r.cmd, &rk);
            let context = r
                .context
                .iter()
                .enumerate()
                .map(|(j, p)| self.context_path(p, &format!("{rk}.context[{j}]")))
                .collect();
            steps.push(step(StepKind::Run { command, context }, r.span));
        }
        // 5. A conda environment, then Python deps (pip installs into it).
        if let Some(c) = &img.conda {
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
            steps.push(step(
                StepKind::Conda(CondaStep {
                    file,
                    channels,
                    installer,
                    cache,
                    env,
                }),
                c.span,
            ));
        }
        let requirements: Vec<String> = img
            .requirements
            .iter()
            .enumerate()
            .map(|(i, r)| self.context_path(r, &format!("{key}.requirements[{i}]")))
            .collect();
        // `./path` entries are local packages: context directories pip builds and installs.
        let mut specs = vec![];
        let mut local = vec![];
        for (i, entry) in img.pip.iter().enumerate() {
            let k = format!("{key}.pip[{i}]");
            let text = self.text(entry, &k);
            if text == "." || text.starts_with("./") || text.starts_with("../") {
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
        let index_url = img
            .index_url
            .as_ref()
            .map(|u| self.text(u, &format!("{key}.index-url")));
        let extra_index_urls =
            self.texts(&img.extra_index_urls, &format!("{key}.extra-index-urls"));
        let installer = self.installer(img, &key);
        let torch_step = match &img.torch {
            Some(usage) => {
                self.torch_step(usage, &key, index_url.clone(), extra_index_urls.clone())
            }
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
        let has_pip = !requirements.is_empty() || !specs.is_empty() || !local.is_empty();
        let pip_span = img
            .requirements
            .iter()
            .chain(img.pip.iter())
            .map(|s| s.span)
            .reduce(Span::join)
            .unwrap_or(img.span);
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
                    requirements: requirements.clone(),
                    specs: specs.clone(),
                    local: local.clone(),
                    index_url: index_url.clone(),
                    extra_index_urls: extra_index_urls.clone(),
                    python: format!("{path}/bin/python"),
                    installer: installer.clone(),
                };
                venv = Some(VenvPlan {
                    builder,
                    python: self.python.clone(),
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
                    specs,
                    local,
                    index_url,
                    extra_index_urls,
                    python: self.python.clone(),
                    installer,
                }),
                pip_span,
            ));
        }
        // 6. Files.
        for (i, c) in img.copy.iter().enumerate() {
            let ck = format!("{key}.copy[{i}]");
            let dest = c.dest.as_ref().map(|d| self.text(d, &format!("{ck}.dest")));
            let mode = self.copy_mode(c.mode.as_ref(), &ck);
            let exclude = self.texts(&c.exclude, &format!("{ck}.exclude"));
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
                    steps.push(step(
                        StepKind::CopyFrom {
                            from,
                            src,
                            dest,
                            owner,
                            mode,
                            exclude,
                        },
                        c.span,
                    ));
                }
                continue;
            }
            let src = self.context_path(&c.src, &format!("{ck}.src"));
            let owner = match &c.chown {
                Chown::Default => owner.clone(),
                Chown::No => None,
                Chown::To(s) => Some(self.chown(s, &ck)),
            };
            steps.push(step(
                StepKind::Copy {
                    src,
                    dest,
                    owner,
                    mode,
                    exclude,
                },
                c.span,
            ));
        }

        let config = self.config(img, &key, user_name, workdir.map(|w| w.0));
        let mut install_env = self.stack_install_env.clone();
        install_env.extend(self.env_list(
            &img.install_env,
            &format!("{key}.install-env"),
            Unknown::Error,
        ));
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
            declared_user: effective_user,
            build_only: img.is_build_only(),
            cross_install: img
                .cross_install
                .as_ref()
                .or(self.stack.cross_install.as_ref())
                .is_none_or(|c| c.value),
        });
        self.index.insert(img.name.value.clone(), idx);
        Some(idx)
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
