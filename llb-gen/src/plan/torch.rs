//! `[torch]`: the pip step installing the build for the platform and the variant's backend.

use crate::diag::Diagnostic;
use crate::source::Span;
use crate::stack::{Sp, TorchDef, TorchUse};

use super::*;

impl<'a> Planner<'a> {
    /// The pip step installing an image's `[torch]` packages: the build for this platform and
    /// the variant's backend, from the backend's index.
    pub(super) fn torch_step(
        &mut self,
        usage: &Sp<TorchUse>,
        key: &str,
        index_url: Option<String>,
        extra: Vec<String>,
        own_backend: Option<(String, Span, String)>,
        python: &str,
    ) -> Option<PipStep> {
        let (t, _, local, specs) = self.torch_selection(usage, key, own_backend)?;
        let (index_url, mut extra_index_urls) = self.torch_indexes(t, local.as_deref(), index_url);
        extra_index_urls.extend(extra);
        Some(PipStep {
            requirements: vec![],
            includes: vec![],
            specs,
            local: vec![],
            index_url,
            extra_index_urls,
            python: python.to_string(),
            installer: Installer::Pip,
        })
    }

    /// The `[torch]` packages of an image that also has a `lock`: not a pip step but pins of
    /// the lock's selection (`torch 2.1.2+cu121` from the cu121 index), so the lock's build for
    /// the platform and backend is installed with the lock's groups. None after an error.
    pub(super) fn torch_pins(
        &mut self,
        usage: &Sp<TorchUse>,
        key: &str,
        index_url: Option<String>,
        own_backend: Option<(String, Span, String)>,
    ) -> Option<Vec<crate::lock::select::Want>> {
        let (t, backend, local, specs) = self.torch_selection(usage, key, own_backend)?;
        let (index, extra) = self.torch_indexes(t, local.as_deref(), index_url);
        // The backend's own index (cpu/cuda); plain versions come from `index.default` (or the
        // image's index), which is only checked when it is set.
        let index = match local {
            Some(_) => extra.into_iter().next(),
            None => t.index_default.as_ref().and(index),
        };
        let arch = self.platform.architecture.clone();
        let why = format!("[torch] (backend {} on {})", backend.name, self.platform);
        Some(
            specs
                .into_iter()
                .filter_map(|spec| {
                    let (name, version) = spec.split_once("==")?;
                    let mut versions = vec![version.to_string()];
                    // Recent CPU builds for aarch64 are published as `+cpu` too.
                    if local.is_none() && arch == "arm64" {
                        versions.push(format!("{version}+cpu"));
                    }
                    Some(crate::lock::select::Want {
                        name: name.to_string(),
                        versions,
                        index: index.clone(),
                        why: why.clone(),
                    })
                })
                .collect(),
        )
    }

    /// What both ways of installing `[torch]` start from: the table, the image's backend, the
    /// local version label of its build (`cpu`, `cu121`, none) and the `name==version` specs.
    /// None after an error (reported at `usage`).
    fn torch_selection(
        &mut self,
        usage: &Sp<TorchUse>,
        key: &str,
        own_backend: Option<(String, Span, String)>,
    ) -> Option<(&'a TorchDef, Backend, Option<String>, Vec<String>)> {
        let Some(t) = self.stack.torch.as_ref() else {
            self.diags.push(
                Diagnostic::error("`torch` is used but the stack has no [torch] table")
                    .at(usage.span)
                    .key(format!("{key}.torch"))
                    .hint("add [torch] packages = { torch = \"2.1.2\" }"),
            );
            return None;
        };
        let backend = self.torch_backend(t, usage, key, own_backend)?;
        let names = self.torch_packages(t, usage, key);
        let local = self.torch_local(&backend, usage, key)?;
        let specs = self.torch_specs(names, local.as_deref());
        Some((t, backend, local, specs))
    }

    /// The backend: the image's own (or inherited) `torch-backend`, else the variant's `torch`
    /// (`cpu` without either; `cuda` is the `[torch] cuda` flavour), validated; None after an
    /// error.
    fn torch_backend(
        &mut self,
        t: &TorchDef,
        usage: &Sp<TorchUse>,
        key: &str,
        own_backend: Option<(String, Span, String)>,
    ) -> Option<Backend> {
        let variant_backend = self.variant.and_then(|v| v.torch.as_ref().map(|b| (v, b)));
        let (name, span, key) = match (own_backend, variant_backend) {
            (Some(own), _) => own,
            (None, Some((v, b))) => (
                b.value.clone(),
                b.span,
                format!("variants.{}.torch", v.name.value),
            ),
            (None, None) => ("cpu".to_string(), usage.span, format!("{key}.torch")),
        };
        let name = if name == "cuda" {
            t.cuda
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_else(|| "cu118".into())
        } else {
            name
        };
        let valid = name == "cpu"
            || name
                .strip_prefix("cu")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            || name.strip_prefix("rocm").is_some_and(|n| {
                !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.')
            });
        if !valid {
            self.diags.push(
                Diagnostic::error(format!("unknown torch backend `{name}`"))
                    .at(span)
                    .key(key)
                    .hint("use \"cpu\", \"cuda\" (the [torch] cuda flavour) or a flavour like \"cu118\", \"cu121\", \"rocm5.6\""),
            );
            return None;
        }
        Some(Backend { name, span, key })
    }

    /// The `[torch]` packages the image asks for: all, or the ones it names (an unknown name is
    /// an error and left out).
    fn torch_packages<'t>(
        &mut self,
        t: &'t TorchDef,
        usage: &Sp<TorchUse>,
        key: &str,
    ) -> Vec<&'t (Sp<String>, Sp<String>)> {
        match &usage.value {
            TorchUse::All => t.packages.iter().collect(),
            TorchUse::Only(list) => {
                let mut out = vec![];
                for n in list {
                    match t.packages.iter().find(|(p, _)| p.value == *n) {
                        Some(p) => out.push(p),
                        None => self.diags.push(
                            Diagnostic::error(format!("`{n}` is not a package of [torch]"))
                                .at(usage.span)
                                .key(format!("{key}.torch"))
                                .hint(format!(
                                    "[torch] packages: {}",
                                    t.packages
                                        .iter()
                                        .map(|(p, _)| p.value.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )),
                        ),
                    }
                }
                out
            }
        }
    }

    /// The local version part of the builds for this platform: `Some(backend)` on amd64,
    /// `Some(None)` (plain versions) for CPU builds on arm64; None after an error (no such
    /// builds for the platform).
    fn torch_local(
        &mut self,
        backend: &Backend,
        usage: &Sp<TorchUse>,
        key: &str,
    ) -> Option<Option<String>> {
        let platform = &self.platform;
        match (platform.architecture.as_str(), backend.name.as_str()) {
            ("amd64", b) => Some(Some(b.to_string())),
            ("arm64", "cpu") => Some(None),
            ("arm64", b) => {
                let d = Diagnostic::error(format!("PyTorch has no `{b}` builds for {platform}"))
                    .at(backend.span)
                    .key(backend.key.clone())
                    .hint("GPU builds exist for linux/amd64 only: build this for linux/amd64, or set torch-backend = \"cpu\" for arm64 (a [layers.NAME.platforms.\"linux/arm64\"] overlay, or a variant with torch = \"cpu\")");
                self.diags.push(d);
                None
            }
            _ => {
                let d = Diagnostic::error(format!("PyTorch publishes no wheels for {platform}"))
                    .at(usage.span)
                    .key(format!("{key}.torch"))
                    .hint("torch images can be built for linux/amd64 and linux/arm64");
                self.diags.push(d);
                None
            }
        }
    }

    /// `name==version+local` for each package (a version written with a local part is an error
    /// and left out).
    fn torch_specs(
        &mut self,
        names: Vec<&(Sp<String>, Sp<String>)>,
        local: Option<&str>,
    ) -> Vec<String> {
        let arch = self.platform.architecture.clone();
        let platform = self.platform.clone();
        let mut specs = vec![];
        for (name, version) in names {
            let v = self.text(version, &format!("torch.packages.{}", name.value));
            if let Some((_, l)) = v.split_once('+') {
                let msg = if l == "cpu" && arch == "arm64" {
                    format!("`{}` has no `+cpu` build for {platform}", name.value)
                } else {
                    format!(
                        "write the version of `{}` without a local part (`+{l}`)",
                        name.value
                    )
                };
                self.diags.push(
                    Diagnostic::error(msg)
                        .at(version.span)
                        .key(format!("torch.packages.{}", name.value))
                        .hint("layerstack adds +cpu/+cuXXX per platform and variant"),
                );
                continue;
            }
            specs.push(match local {
                Some(l) => format!("{}=={v}+{l}", name.value),
                None => format!("{}=={v}", name.value),
            });
        }
        specs
    }

    /// The index URL and extra index URLs of the torch step: the backend's index as an extra
    /// index (the image's index stays the main one), or `[torch] index.default` for plain
    /// versions.
    fn torch_indexes(
        &mut self,
        t: &TorchDef,
        local: Option<&str>,
        index_url: Option<String>,
    ) -> (Option<String>, Vec<String>) {
        // Index URLs may use args (`cpu = "${TORCH_CPU_INDEX}"`), like every other string.
        let cpu_index = match &t.index_cpu {
            Some(u) => self.text(u, "torch.index.cpu"),
            None => "https://download.pytorch.org/whl/cpu".to_string(),
        };
        let cuda_index = match &t.index_cuda {
            Some(u) => self.text(u, "torch.index.cuda"),
            None => "https://download.pytorch.org/whl/{cuda}".to_string(),
        };
        let default_index = t
            .index_default
            .as_ref()
            .map(|u| self.text(u, "torch.index.default"));
        match local {
            Some("cpu") => (index_url, vec![cpu_index]),
            Some(l) => (
                index_url,
                vec![cuda_index.replace("{cuda}", l).replace("{backend}", l)],
            ),
            None => (default_index.or(index_url), vec![]),
        }
    }
}

/// The torch backend of a plan, with where it was set (the variant's `torch` or the image's).
struct Backend {
    name: String,
    span: crate::source::Span,
    key: String,
}
