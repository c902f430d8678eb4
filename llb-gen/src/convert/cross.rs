//! Cross-installs: pip steps for a foreign platform installed on the build platform's twin
//! and merged onto the target, with probes deciding when that is possible.

use std::collections::BTreeMap;

use crate::llb::{FileAction, Mount, Output, VertexMeta};
use crate::plan::{Installer, LockStep, PipStep, PlanImage, ctxpath};
use crate::source::Span;

use super::*;

impl<'a> Converter<'a> {
    /// `root` with `data` written to `dir/file` (one FileOp, named `[internal] WHAT`).
    ///
    /// Helper scripts go into the root of the exec that runs them rather than being mounted
    /// from a file on scratch: a mounted dependency with no inputs of its own finishes before
    /// the other dependencies' keys arrive from an imported cache, and BuildKit then stops
    /// matching the exec against that cache (solver/edge.go `checkDepMatchPossible`: a
    /// content-hashed dependency whose key was not found yet) and runs it (issue 13: the
    /// two-platform local-cache round trip missed in 8 of 20 runs).
    pub(super) fn with_file(
        &mut self,
        root: Output,
        platform: &Platform,
        dir: &str,
        file: &str,
        data: &str,
        what: &str,
    ) -> Output {
        self.g.file(
            Some(root),
            vec![
                FileAction::Mkdir {
                    path: dir.into(),
                    mode: 0o755,
                    owner: None,
                },
                FileAction::Mkfile {
                    path: format!("{dir}/{file}"),
                    mode: 0o644,
                    data: data.as_bytes().to_vec(),
                    owner: None,
                },
            ],
            platform,
            VertexMeta {
                name: names::internal(what),
                ..Default::default()
            },
        )
    }

    /// A pip step for a foreign platform, installed on the build platform's twin of this
    /// image (same interpreter, same paths; its own run, conda and pip steps skipped: the
    /// target's installed packages are read from the target) for the target's wheel tags,
    /// and merged onto the target. Err(reason) when it must be emulated instead: no twin, a platform without wheel
    /// tags, or a probe that found a source build or a conflict.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cross_pip(
        &mut self,
        st: &State,
        pip: &PipStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        m: &VertexMeta,
        step: usize,
        verdicts: &BTreeMap<String, CrossVerdict>,
        ask: bool,
    ) -> Result<Output, String> {
        let machine = st
            .platform
            .wheel_machine()
            .ok_or_else(|| format!("no wheel platform tags are known for {}", st.platform))?;
        // The build platform's own image (`resolve`) is its own runner: same interpreter, and
        // its steps so far are the ones a twin would repeat.
        let runner = if st.platform == self.opts.build_platform {
            st.clone()
        } else {
            self.twin_before(img, step).ok_or_else(|| {
                format!(
                    "{} cannot be planned for the build platform {}",
                    img.label(),
                    self.opts.build_platform
                )
            })?
        };
        let slug = self.cache_slug();
        let parts = self.pip_parts(&runner, pip, img, label, span, &slug);
        let installer = match pip.installer {
            Installer::Pip => "pip",
            Installer::Uv { .. } => "uv",
        };
        let runner = State {
            root: self.with_file(
                runner.root,
                &runner.platform,
                CROSS_DIR,
                "cross_install.py",
                &cross_script(),
                "layerstack cross-install script",
            ),
            ..runner
        };
        let command = |mode: &str| -> Vec<String> {
            let mut a = vec![
                pip.python.clone(),
                format!("{CROSS_DIR}/cross_install.py"),
                mode.into(),
                installer.into(),
                machine.into(),
                st.platform.id(),
                pip.python.clone(),
                "--".into(),
            ];
            a.extend(parts.args.iter().cloned());
            a
        };
        let mut mounts = parts.mounts.clone();
        mounts.push(Mount::Bind {
            input: st.root,
            selector: String::new(),
            dest: CROSS_TARGET.into(),
        });
        let build = runner.platform.clone();
        // An exec on the runner whose result is one scratch mount at `dest` (the runner's
        // root is thrown away).
        let on_runner =
            |c: &mut Self, mode: &str, dest: &str, name: String, probe: Option<Output>| -> Output {
                let mut mounts = mounts.clone();
                if let Some(input) = probe {
                    mounts.push(Mount::Bind {
                        input,
                        selector: String::new(),
                        dest: CROSS_PROBE.into(),
                    });
                }
                mounts.push(Mount::Output {
                    input: None,
                    dest: dest.into(),
                });
                let exec = c.run(
                    &runner,
                    command(mode),
                    img,
                    true,
                    &parts.env,
                    mounts,
                    meta(name, span),
                );
                c.g.mount_output(exec, dest)
                    .expect("the exec was just built with an output mount at dest")
            };
        // The resolve (the probe): resolve for the target, say whether every distribution has
        // a wheel and, with pip, write them as a pylock.toml.
        let probe_name = format!("{}: resolve for {} (on {build})", m.name, st.platform);
        let probe = on_runner(self, "probe", CROSS_STATUS, probe_name.clone(), None);
        let definition = self.g.marshal(probe, Some(self.file));
        let key = root_digest(&definition);
        // An answered probe is mounted into the install (see CROSS_PROBE); an assumed verdict
        // (no probe asked: the CLI) leaves the install as it was.
        let mut name = format!("{} (cross-install on {build} for {})", m.name, st.platform);
        let answered = match verdicts.get(&key) {
            Some(CrossVerdict::Emulate(reason)) => return Err(reason.clone()),
            Some(CrossVerdict::Cross) => Some(probe),
            Some(CrossVerdict::Resolved(r)) => match self.secrets_for_installs() {
                // The lock's downloads carry no credentials an index may need.
                Some(ids) => {
                    name = format!(
                        "{name} (the resolved lock is not used: install steps get the secret(s) {ids})"
                    );
                    Some(probe)
                }
                None => match resolved_step(r, pip, &st.platform) {
                    Ok(l) => {
                        // Installed like a `lock` step, on the twin (it has the interpreter), with
                        // the resolve's output mounted into every group install.
                        let extra = vec![Mount::Bind {
                            input: probe,
                            selector: String::new(),
                            dest: CROSS_PROBE.into(),
                        }];
                        let mut lm = m.clone();
                        lm.name = format!(
                            "{} (resolved for {}, installed on {build})",
                            m.name, st.platform
                        );
                        return Ok(self.install_groups(st, &l, img, runner.root, extra, span, lm));
                    }
                    Err(why) => {
                        name = format!("{name} (the resolved lock is unusable: {why})");
                        Some(probe)
                    }
                },
            },
            None if ask => {
                self.probes.push(Probe {
                    key,
                    definition,
                    name: probe_name,
                });
                None
            }
            None => None,
        };
        let files = on_runner(self, "install", CROSS_OUT, name.clone(), answered);
        let merged = if self.opts.merge {
            self.g.merge(
                vec![st.root, files],
                Self::cacheable(st, meta(format!("{name} (merge)"), span)),
            )
        } else {
            self.g.file(
                Some(st.root),
                vec![FileAction::copy_tree(files)],
                &st.platform,
                Self::cacheable(st, meta(format!("{name} (copy)"), span)),
            )
        };
        Ok(merged)
    }

    /// The ids of the secrets install steps get (`[secrets.NAME]`), when there are any: an
    /// index may need them, and a resolved lock's downloads would go without.
    fn secrets_for_installs(&self) -> Option<String> {
        let ids: Vec<&str> = self.plan.secrets.iter().map(|s| s.id.as_str()).collect();
        (!ids.is_empty()).then(|| ids.join(", "))
    }

    /// The build platform's twin of `img` as it is before step `step`, converting the twin
    /// plan's images up to it on first use. None when the twin plan has no such image or its
    /// steps differ in kind.
    pub(super) fn twin_before(&mut self, img: &PlanImage, step: usize) -> Option<State> {
        let mut twin = self.twin.take()?;
        let idx = twin.plan.images.iter().position(|i| i.name == img.name);
        let aligned = idx.is_some_and(|i| {
            let t = &twin.plan.images[i];
            t.steps.len() == img.steps.len()
                && t.steps.iter().zip(&img.steps).all(|(a, b)| {
                    std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind)
                })
        });
        if let (Some(idx), true) = (idx, aligned) {
            let plan = std::mem::replace(&mut self.plan, twin.plan);
            std::mem::swap(&mut self.states, &mut twin.states);
            std::mem::swap(&mut self.step_log, &mut twin.step_log);
            let verdicts = self.verdicts.take();
            self.lean = true;
            while self.states.len() <= idx {
                let twin_plan = self.plan;
                let st = self.image(&twin_plan.images[self.states.len()]);
                self.states.push(st);
            }
            self.lean = false;
            self.verdicts = verdicts;
            self.plan = plan;
            std::mem::swap(&mut self.states, &mut twin.states);
            std::mem::swap(&mut self.step_log, &mut twin.step_log);
        }
        let found = if aligned {
            idx.and_then(|i| twin.step_log.get(i))
                .and_then(|steps| steps.get(step))
                .cloned()
        } else {
            None
        };
        self.twin = Some(twin);
        found
    }

    /// Context files copied onto scratch (keeping their paths), to mount read-only into a step:
    /// the step's cache key then depends on exactly these files.
    pub(super) fn staged_files(
        &mut self,
        paths: &[String],
        label: &str,
        what: &str,
        span: Span,
    ) -> Output {
        // Each context's files from its own source; a named context's under `@NAME/`.
        let mut actions = vec![];
        for (_, group) in ctxpath::group(paths) {
            let ctx = self.context(&group, true, label, span);
            actions.extend(group.iter().map(|r| FileAction::Copy {
                from: ctx,
                src: format!("/{}", ctxpath::split(r).1),
                dest: format!("/{}", ctxpath::staged(r)),
                owner: None,
                mode: None,
                dir_contents: false,
                exclude: vec![],
                wildcard: false,
                allow_empty: false,
            }));
        }
        let shown: Vec<String> = paths.iter().map(|p| ctxpath::display(p)).collect();
        self.g.file(
            None,
            actions,
            self.platform(),
            meta(
                names::vertex(label, format!("{what} {}", shown.join(" "))),
                span,
            ),
        )
    }
}

/// The lock a resolve step wrote, read, selected for `platform` and grouped like a `lock`
/// step's: Err(why) when it cannot be used (it is the script's own output, so only a bug or
/// an unexpected interpreter makes it so).
pub(super) fn resolved_step(
    r: &ResolvedLock,
    pip: &PipStep,
    platform: &Platform,
) -> Result<LockStep, String> {
    use crate::lock::{group, pylock, select, target::Target};
    let first = |ds: Vec<Diagnostic>| {
        ds.first()
            .map(|d| d.message.clone())
            .unwrap_or_else(|| "no reason given".into())
    };
    let file = SourceFile::new(RESOLVED_LOCK, r.pylock.clone());
    let lock = pylock::read(&file).map_err(first)?;
    let target = Target::parse(&platform.id(), &r.python, &r.libc)?;
    let sel = select::select(&lock, &target, &select::Choice::default()).map_err(first)?;
    let (major, minor, _) = target.python;
    let python = if r.executable.starts_with('/') {
        r.executable.clone()
    } else {
        pip.python.clone()
    };
    Ok(LockStep {
        file: RESOLVED_LOCK.into(),
        python,
        python_version: format!("{major}.{minor}"),
        groups: group::group(&sel.files, &group::Rules::default()),
        auth_secret: None,
        index_url: pip.index_url.clone(),
        extra_index_urls: pip.extra_index_urls.clone(),
    })
}

/// The name a resolved lock goes by (diagnostics, `LockStep::file`).
pub const RESOLVED_LOCK: &str = "pylock.toml (resolved)";

/// The digest of a definition's root vertex: the input of its terminal op (the key a probe's
/// verdict is filed under), read from the terminal rather than counted from the end.
fn root_digest(def: &pb::Definition) -> String {
    use prost::Message;
    def.def
        .last()
        .and_then(|b| pb::Op::decode(b.as_slice()).ok())
        .and_then(|op| op.inputs.first().map(|i| i.digest.clone()))
        .expect("a marshalled definition ends with a terminal op naming its root")
}
