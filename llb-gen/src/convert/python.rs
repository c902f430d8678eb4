//! Python installs: pip/uv steps, conda environments and the uv tool state.

use crate::llb::{Mount, Output, VertexMeta};
use crate::plan::resources::{CacheKind, PIP_CACHE_DIR, UV_CACHE_DIR};
use crate::plan::{CondaStep, Installer, PipStep, PlanImage, ctxpath};
use crate::source::Span;

use super::*;

impl<'a> Converter<'a> {
    /// A pip step: on the image's own platform, or, for a foreign platform (and for the build
    /// platform with `resolve`), resolved into a lock on the build platform and installed as
    /// lock groups when the stack and the resolve step allow it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pip(
        &mut self,
        st: &State,
        pip: &PipStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        m: VertexMeta,
        step: Option<usize>,
    ) -> Output {
        let mut m = m;
        let foreign = st.platform != self.opts.build_platform;
        if let Some((verdicts, ask)) = self
            .verdicts
            .filter(|_| foreign || self.opts.resolve || img.resolve)
        {
            let why = if let Some(step) =
                step.filter(|_| self.opts.cross_install && img.cross_install)
            {
                self.cross_pip(st, pip, img, label, span, &m, step, verdicts, ask)
            } else if step.is_none() {
                Err("a venv builder installs under emulation".to_string())
            } else if !self.opts.cross_install {
                Err("cross-install is off for this build".to_string())
            } else if img.platform_specific {
                Err(format!(
                    "a platform overlay sets `from` or `python` of {} or a layer it is built on",
                    img.label()
                ))
            } else {
                Err(format!("`cross-install = false` for {}", img.label()))
            };
            match why {
                Ok(out) => return out,
                Err(reason) if foreign => {
                    m.name = format!("{} (emulated on {}: {reason})", m.name, st.platform);
                }
                Err(reason) => m.name = format!("{} (not resolved: {reason})", m.name),
            }
        }
        let parts = self.pip_parts(st, pip, img, label, span, &self.cache_slug());
        let mut args = parts.command;
        args.extend(parts.args);
        self.run(st, args, img, true, &parts.env, parts.mounts, m)
    }

    /// What a pip step runs: the installer command (up to `install`), its arguments, mounts
    /// and env. The tool (uv) runs on `st`'s platform; downloads are cached under `slug`.
    pub(super) fn pip_parts(
        &mut self,
        st: &State,
        pip: &PipStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        slug: &str,
    ) -> PipParts {
        let uv = match &pip.installer {
            Installer::Pip => None,
            Installer::Uv { version } => {
                Some(self.uv_tool(st, img, &pip.python, version.as_deref(), label, span))
            }
        };
        let command = match uv {
            None => vec![
                pip.python.clone(),
                "-m".into(),
                "pip".into(),
                "install".into(),
            ],
            Some(_) => {
                let mut a = vec![
                    uv_bin(),
                    "pip".into(),
                    "install".into(),
                    "--python".into(),
                    pip.python.clone(),
                ];
                // Outside a venv (our venvs' interpreters are `<venv>/bin/python`) uv needs
                // to be told to install into the interpreter's own environment.
                if !pip.python.ends_with("/bin/python") {
                    a.push("--system".into());
                }
                a
            }
        };
        let mut args = vec![];
        if let Some(u) = &pip.index_url {
            args.push("--index-url".into());
            args.push(u.clone());
        }
        for u in &pip.extra_index_urls {
            args.push("--extra-index-url".into());
            args.push(u.clone());
        }
        let mut mounts = match uv {
            None => vec![Self::cache(CacheKind::Pip, slug, "")],
            Some(tool) => vec![
                Self::cache(CacheKind::Uv, slug, ""),
                Mount::Bind {
                    input: tool,
                    selector: UV_DIR.into(),
                    dest: UV_DIR.into(),
                },
            ],
        };
        if !pip.requirements.is_empty() {
            let staged: Vec<String> = pip
                .requirements
                .iter()
                .chain(&pip.includes)
                .cloned()
                .collect();
            let files = self.staged_files(&staged, label, "requirements", span);
            mounts.push(Mount::Bind {
                input: files,
                selector: String::new(),
                dest: REQUIREMENTS_DIR.into(),
            });
            for r in &pip.requirements {
                args.push("-r".into());
                args.push(format!("{REQUIREMENTS_DIR}/{}", ctxpath::staged(r)));
            }
        }
        args.extend(pip.specs.iter().cloned());
        if !pip.local.is_empty() {
            let files = self.staged_files(&pip.local, label, "packages", span);
            mounts.push(Mount::Output {
                input: Some(files),
                dest: PACKAGES_DIR.into(),
            });
            args.extend(
                pip.local
                    .iter()
                    .map(|p| format!("{PACKAGES_DIR}/{}", ctxpath::staged(p))),
            );
        }
        let env: Vec<(&'static str, String)> = match uv {
            None => vec![
                ("PIP_CACHE_DIR", PIP_CACHE_DIR.into()),
                ("PIP_DISABLE_PIP_VERSION_CHECK", "1".into()),
            ],
            Some(_) => vec![
                ("UV_CACHE_DIR", UV_CACHE_DIR.into()),
                // The cache is a mount: copy out of it, never hard-link into it.
                ("UV_LINK_MODE", "copy".into()),
                ("UV_COMPILE_BYTECODE", "1".into()),
                // Like pip on the official images: install into the interpreter given.
                ("UV_BREAK_SYSTEM_PACKAGES", "1".into()),
            ],
        };
        PipParts {
            command,
            args,
            mounts,
            env,
        }
    }

    /// `micromamba install -y -n ENV -f FILE` with the package cache as a locked cache mount.
    pub(super) fn conda(
        &mut self,
        st: &State,
        c: &CondaStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        m: VertexMeta,
    ) -> Output {
        let files = self.staged_files(std::slice::from_ref(&c.file), label, "environment", span);
        let file = format!("{CONDA_DIR}/{}", ctxpath::staged(&c.file));
        // micromamba: `install` into base, `create` for another env; conda/mamba read an
        // environment file with `env update` (`install -f` means --force there).
        let mut args: Vec<String> = match (c.installer.as_str(), c.env.as_str()) {
            ("micromamba", "base") => vec![
                "micromamba".into(),
                "install".into(),
                "-y".into(),
                "-n".into(),
                "base".into(),
                "-f".into(),
                file,
            ],
            ("micromamba", env) => vec![
                "micromamba".into(),
                "create".into(),
                "-y".into(),
                "-n".into(),
                env.into(),
                "-f".into(),
                file,
            ],
            (tool, env) => vec![
                tool.into(),
                "env".into(),
                "update".into(),
                "-n".into(),
                env.into(),
                "-f".into(),
                file,
            ],
        };
        for ch in &c.channels {
            args.push("-c".into());
            args.push(ch.clone());
        }
        let mounts = vec![
            Self::cache(CacheKind::Conda, &self.cache_slug(), &c.cache),
            Mount::Bind {
                input: files,
                selector: String::new(),
                dest: CONDA_DIR.into(),
            },
        ];
        // Whatever the image's root prefix, the packages go to the cache mount.
        self.run(
            st,
            args,
            img,
            true,
            &[("CONDA_PKGS_DIRS", c.cache.clone())],
            mounts,
            m,
        )
    }

    /// uv, installed from PyPI with pip into a directory of a throwaway state on `st` (so it
    /// runs on the target platform), mounted read-only into install steps.
    pub(super) fn uv_tool(
        &mut self,
        st: &State,
        img: &PlanImage,
        python: &str,
        version: Option<&str>,
        label: &str,
        span: Span,
    ) -> Output {
        let spec = match version {
            Some(v) => format!("uv=={v}"),
            None => "uv".to_string(),
        };
        let args = vec![
            python.to_string(),
            "-m".into(),
            "pip".into(),
            "install".into(),
            "--target".into(),
            UV_DIR.into(),
            spec.clone(),
        ];
        let mounts = vec![Self::cache(
            CacheKind::Pip,
            &self.cache_slug_for(&st.platform),
            "",
        )];
        let env = [
            ("PIP_CACHE_DIR", PIP_CACHE_DIR.to_string()),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1".to_string()),
        ];
        self.run(
            st,
            args,
            img,
            true,
            &env,
            mounts,
            meta(names::vertex(label, format!("install {spec}")), span),
        )
    }
}
