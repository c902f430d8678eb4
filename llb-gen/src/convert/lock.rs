//! Lock steps ([`crate::plan::LockStep`]): every wheel an `llb.HTTP` source with its sha256
//! (BuildKit downloads, verifies and caches it by checksum; an sdist is built into a wheel on
//! the target platform first, `sdist.rs`), each package group installed by
//! `lock_install.py` on the build platform into its own scratch output, without network, and
//! the groups merged onto the image (MergeOp; chained copies without it).
//!
//! A group's install depends only on the root base image (its interpreter, on the build
//! platform), the script and the group's wheels — not on the image it lands in — so the same
//! group in two images is the same vertex and the same layer.

use crate::llb::{Exec, FileAction, Mount, NetMode, Output, VertexMeta};
use crate::lock::select::{FileKind, LockedFile};
use crate::plan::{Base, LockStep, PlanImage};
use crate::source::Span;

use super::*;

/// Where the lock installer script is written (into the runner's root).
pub const LOCK_DIR: &str = "/run/layerstack/lock";
/// Where a group's wheels are mounted (`/run/layerstack/wheels/N/FILENAME`).
pub const LOCK_WHEELS: &str = "/run/layerstack/wheels";
/// The scratch output a group is installed into, with the files' final absolute paths.
pub const LOCK_OUT: &str = "/run/layerstack/out";

/// Installs wheels into a scratch output (see `lock_install.py`).
const LOCK_SCRIPT: &str = include_str!("lock_install.py");

/// The env of a group's install: fixed, so the vertex does not depend on the image.
const LOCK_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl<'a> Converter<'a> {
    /// A locked file as a checksummed HTTP source (`[internal] fetch NAME`), with the lock's
    /// auth secret as its `Authorization` header.
    pub(super) fn fetch_locked(&mut self, l: &LockStep, f: &LockedFile, span: Span) -> Output {
        self.g.http(
            &f.url,
            &format!("sha256:{}", f.sha256),
            &f.filename,
            l.auth_secret.as_deref(),
            VertexMeta {
                name: names::internal(format!("fetch {}", f.filename)),
                span: Some(span),
                ..Default::default()
            },
        )
    }

    /// The registry image `img` is built on at the bottom of its `from` chain.
    fn root_reference(&self, img: &PlanImage) -> Option<(String, Span)> {
        let mut b = &img.base;
        for _ in 0..=self.plan.images.len() {
            match b {
                Base::Image { reference, span } => return Some((reference.clone(), *span)),
                Base::Layer { index, .. } => b = &self.plan.images.get(*index)?.base,
                // The planner refuses a lock on a chain built from a Dockerfile.
                Base::Dockerfile(_) | Base::Context { .. } => return None,
            }
        }
        None
    }

    /// The root base image on the build platform: what runs the installs.
    fn lock_runner(&mut self, img: &PlanImage, label: &str) -> Output {
        let platform = self.opts.build_platform.clone();
        let Some((reference, span)) = self.root_reference(img) else {
            // Unreachable from a plan (the planner reports it); never a panic.
            self.diags.push(
                Diagnostic::error(format!(
                    "{label}: a lock step needs a registry image at the bottom of the `from` chain"
                ))
                .at(img.span),
            );
            return self
                .g
                .local("context", Default::default(), VertexMeta::default());
        };
        let source = self
            .images
            .digest(&reference, &platform)
            .and_then(|d| pinned_reference(&reference, &d).ok())
            .unwrap_or_else(|| reference.clone());
        let mut m = meta(names::vertex(label, format!("from {reference}")), span);
        m.ignore_cache = false;
        self.g.image(
            &source,
            &platform,
            self.opts.image_resolve_mode.as_deref(),
            m,
        )
    }

    /// Fetch every wheel, install each group, merge the groups onto `st`.
    pub(super) fn lock(
        &mut self,
        st: &State,
        l: &LockStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        m: VertexMeta,
    ) -> Output {
        let runner = self.lock_runner(img, label);
        self.install_groups(st, l, img, runner, vec![], span, m)
    }

    /// Fetch every wheel of `l`, install each group on `runner` (an image on the build
    /// platform with `l.python`; `extra` mounted into every install), merge the groups onto
    /// `st`. Shared by `lock` steps and the locks resolve steps write (`cross.rs`). An sdist is
    /// built into a wheel on `st` first (`sdist.rs`) and that wheel installed with its group.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn install_groups(
        &mut self,
        st: &State,
        l: &LockStep,
        img: &PlanImage,
        runner: Output,
        extra: Vec<Mount>,
        span: Span,
        m: VertexMeta,
    ) -> Output {
        let build = self.opts.build_platform.clone();
        let runner = self.with_file(
            runner,
            &build,
            LOCK_DIR,
            "lock_install.py",
            LOCK_SCRIPT,
            "layerstack lock installer",
        );
        let mut env = vec![LOCK_PATH.to_string(), "HOME=/root".to_string()];
        if let Some(epoch) = self.opts.build_args.get("SOURCE_DATE_EPOCH") {
            env.push(format!("SOURCE_DATE_EPOCH={epoch}"));
        }
        // `[layer ml 3/5]`: the step's part of the name, for the group vertices.
        let head = match m.name.split_once("] ") {
            Some((h, _)) => format!("{h}]"),
            None => m.name.clone(),
        };
        let mut outs = vec![];
        for g in &l.groups {
            let mut mounts = extra.clone();
            let mut args = vec![
                l.python.clone(),
                format!("{LOCK_DIR}/lock_install.py"),
                LOCK_OUT.into(),
                l.python_version.clone(),
            ];
            for (i, f) in g.files.iter().enumerate() {
                let dir = format!("{LOCK_WHEELS}/{i}");
                let input = if f.kind == FileKind::Sdist {
                    // A directory with the one wheel the sdist built into.
                    args.push(dir.clone());
                    self.build_sdist(st, img, l, f, &head, span)
                } else {
                    args.push(format!("{dir}/{}", f.filename));
                    self.fetch_locked(l, f, span)
                };
                mounts.push(Mount::Bind {
                    input,
                    selector: String::new(),
                    dest: dir,
                });
            }
            mounts.push(Mount::Output {
                input: None,
                dest: LOCK_OUT.into(),
            });
            let name = format!(
                "{head} lock group {}: {} (install on {build})",
                g.id,
                packages(g)
            );
            let exec = Exec {
                args,
                env: env.clone(),
                cwd: "/".into(),
                user: "root".into(),
                network: Some(NetMode::None),
                extra_hosts: vec![],
                mounts,
                secret_env: vec![],
            };
            let mut gm = meta(name, span);
            gm.ignore_cache = st.no_cache;
            let done = self.g.exec(runner, exec, &build, gm);
            // Output 0 is the runner's root (thrown away); 1 is the scratch output.
            outs.push((g, Output { index: 1, ..done }));
        }
        if outs.is_empty() {
            return st.root;
        }
        if self.opts.merge {
            let mut inputs = vec![st.root];
            inputs.extend(outs.iter().map(|(_, o)| *o));
            self.g.merge(
                inputs,
                Self::cacheable(st, meta(format!("{} (merge)", m.name), span)),
            )
        } else {
            let mut root = st.root;
            for (g, files) in outs {
                root = self.g.file(
                    Some(root),
                    vec![FileAction::copy_tree(files)],
                    &st.platform,
                    Self::cacheable(st, meta(format!("{head} lock group {} (copy)", g.id), span)),
                );
            }
            root
        }
    }
}

/// `a 1.0, b 2.0` (the first eight packages, then how many more).
fn packages(g: &crate::lock::group::Group) -> String {
    let mut parts: Vec<String> = g
        .files
        .iter()
        .take(8)
        .map(|f| format!("{} {}", f.name, f.version))
        .collect();
    if g.files.len() > 8 {
        parts.push(format!("+{} more", g.files.len() - 8));
    }
    parts.join(", ")
}
