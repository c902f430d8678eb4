//! The lint rules, each a function over the stack, one plan ([`PlanView`]) or all plans.

use std::collections::{BTreeMap, BTreeSet};

use super::reqs::{ReqFile, is_cuda_build, is_cuda_label, is_cuda_wheel, parse_spec};
use super::{Facts, Finding, LARGE_CONTEXT, Level, Req, Rule};
use crate::plan::{Base, Network, PipStep, Plan, StepKind};
use crate::source::Span;
use crate::stack::Stack;

pub static CUDA_WHEELS_IN_CPU_IMAGE: Rule = Rule {
    name: "CudaWheelsInCpuImage",
    description: "A CPU variant or image installs a CUDA build of torch or nvidia-* CUDA wheels",
    level: Level::Warning,
};
pub static TORCH_INSTALLED_TWICE: Rule = Rule {
    name: "TorchInstalledTwice",
    description: "torch is installed by two layers of one image",
    level: Level::Warning,
};
pub static CUDA_INSTALLED_TWICE: Rule = Rule {
    name: "CudaInstalledTwice",
    description: "A CUDA base image and CUDA wheels: the CUDA runtime is in the image twice",
    level: Level::Warning,
};
pub static CUDA_ON_ARM64: Rule = Rule {
    name: "CudaOnArm64",
    description: "A CUDA variant is built for linux/arm64",
    level: Level::Warning,
};
pub static CONFLICTING_PINS: Rule = Rule {
    name: "ConflictingPins",
    description: "A package pinned in a base is pinned again, to another version, on top of it",
    level: Level::Warning,
};
pub static UNPINNED_REQUIREMENTS: Rule = Rule {
    name: "UnpinnedRequirements",
    description: "A lock file or a pinned requirements file has entries without `==`",
    level: Level::Info,
};
pub static LARGE_CONTEXT_WITHOUT_DOCKERIGNORE: Rule = Rule {
    name: "LargeContextWithoutDockerignore",
    description: "A copied directory of the context is large or holds .git/.venv/node_modules, and there is no .dockerignore",
    level: Level::Info,
};
pub static NETWORK_HOST_NEEDED: Rule = Rule {
    name: "NetworkHostNeeded",
    description: "Install steps need a network the build's network mode does not give them",
    level: Level::Warning,
};

/// One requirement an image of a plan installs, and where it comes from.
#[derive(Clone, Debug)]
pub struct Installed {
    /// Index into `plan.images`.
    pub image: usize,
    pub req: Req,
    /// The stack.toml text of the step.
    pub span: Span,
    /// `libs/requirements-ml.txt line 3`, `[torch]` or `pip`.
    pub origin: String,
    /// From the `[torch]` package set.
    pub torch_set: bool,
}

/// A plan with every requirement its images install, resolved through requirements files.
pub struct PlanView<'a> {
    pub stack: &'a Stack,
    pub plan: &'a Plan,
    pub installed: Vec<Installed>,
}

impl<'a> PlanView<'a> {
    pub fn new(stack: &'a Stack, plan: &'a Plan, files: &BTreeMap<&str, ReqFile>) -> Self {
        let torch_spans = torch_spans(stack);
        let mut installed = vec![];
        // Images the target only copies artifacts from are other images: their packages
        // are not the target's.
        let in_target = plan.in_target();
        for (i, img) in plan.images.iter().enumerate() {
            if !in_target[i] {
                continue;
            }
            let mut pips: Vec<(&PipStep, Span)> = vec![];
            if let Some(v) = &img.venv {
                pips.push((&v.pip, v.pip_span));
            }
            for s in &img.steps {
                if let StepKind::Pip(p) = &s.kind {
                    pips.push((p, s.span));
                }
            }
            for (p, span) in pips {
                let torch_set = torch_spans.contains(&span);
                for spec in &p.specs {
                    if let Some(req) = parse_spec(spec, 0) {
                        let origin = if torch_set { "[torch]" } else { "pip" };
                        installed.push(Installed {
                            image: i,
                            req,
                            span,
                            origin: origin.into(),
                            torch_set,
                        });
                    }
                }
                for path in &p.requirements {
                    for req in files.get(path.as_str()).map(|f| &f.reqs[..]).unwrap_or(&[]) {
                        installed.push(Installed {
                            image: i,
                            req: req.clone(),
                            span,
                            origin: format!(
                                "{} line {}",
                                crate::plan::ctxpath::display(path),
                                req.line
                            ),
                            torch_set: false,
                        });
                    }
                }
            }
        }
        PlanView {
            stack,
            plan,
            installed,
        }
    }

    /// `service api`, `layer ml`.
    fn image_label(&self, i: usize) -> String {
        self.plan.images[i].label()
    }

    /// `api@cuda on linux/amd64`, the build a finding is about.
    fn build(&self) -> String {
        let t = match &self.plan.variant {
            Some(v) => format!("{}@{v}", self.plan.target),
            None => self.plan.target.clone(),
        };
        format!("{t} on {}", self.plan.platform)
    }
}

/// The spans of every `torch = …` key (images and variant overlays): a pip step at one of
/// them installs the `[torch]` set.
fn torch_spans(stack: &Stack) -> BTreeSet<Span> {
    let mut out: BTreeSet<Span> = stack
        .images
        .iter()
        .filter_map(|i| i.torch.as_ref().map(|t| t.span))
        .collect();
    for v in &stack.variants {
        out.extend(
            v.images
                .iter()
                .filter_map(|i| i.torch.as_ref().map(|t| t.span)),
        );
    }
    out
}

fn spec_text(r: &Req) -> String {
    match &r.pin {
        Some(p) => format!("{}=={p}", r.name),
        None => r.name.clone(),
    }
}

// ---------------------------------------------------------------------------------------------

/// Why a plan is a CPU build: a variant with `torch = "cpu"` or named like one, or `[torch]`
/// packages resolved to `+cpu` builds.
fn cpu_reason(v: &PlanView) -> Option<String> {
    if let Some(name) = &v.plan.variant
        && let Some(var) = v.stack.variant(name)
    {
        match var.torch.as_ref().map(|t| t.value.as_str()) {
            Some("cpu") => return Some(format!("the CPU variant `{name}`")),
            None if name.to_ascii_lowercase().contains("cpu") => {
                return Some(format!("the CPU variant `{name}`"));
            }
            _ => {}
        }
    }
    v.installed
        .iter()
        .find(|i| i.torch_set && i.req.local.as_deref() == Some("cpu"))
        .map(|i| {
            format!(
                "a CPU image ({} installs `{}`)",
                v.image_label(i.image),
                spec_text(&i.req)
            )
        })
}

pub fn cuda_in_cpu_image(v: &PlanView, out: &mut Vec<Finding>) {
    let Some(reason) = cpu_reason(v) else {
        return;
    };
    for (image, span, list) in per_step(v, |r| is_cuda_build(r) || is_cuda_wheel(r)) {
        // An image whose own (or inherited) `torch-backend` is a GPU one is a GPU image in a
        // CPU stack on purpose.
        let gpu_image = v.plan.images[image]
            .torch_backend
            .as_ref()
            .is_some_and(|(b, _, _)| b != "cpu");
        if gpu_image {
            continue;
        }
        out.push(Finding {
            rule: &CUDA_WHEELS_IN_CPU_IMAGE,
            detail: format!(
                "{} installs CUDA builds or CUDA runtime wheels in {reason}: {list}",
                v.image_label(image)
            ),
            span,
            builds: vec![v.build()],
        });
    }
}

/// The requirements matching `pred`, grouped by the step that installs them:
/// (image, step span, "`torch==2.3.1+cu121` ([torch]), `nvidia-…` (reqs.txt line 2)").
fn per_step(v: &PlanView, pred: impl Fn(&Req) -> bool) -> Vec<(usize, Span, String)> {
    let mut steps: BTreeMap<(usize, Span), Vec<String>> = BTreeMap::new();
    for i in v.installed.iter().filter(|i| pred(&i.req)) {
        steps.entry((i.image, i.span)).or_default().push(format!(
            "`{}` ({})",
            spec_text(&i.req),
            i.origin
        ));
    }
    steps
        .into_iter()
        .map(|((image, span), l)| (image, span, l.join(", ")))
        .collect()
}

pub fn torch_twice(v: &PlanView, out: &mut Vec<Finding>) {
    let mut first: Option<&Installed> = None;
    for i in v.installed.iter().filter(|i| i.req.name == "torch") {
        match first {
            None => first = Some(i),
            Some(f) if f.image != i.image => out.push(Finding {
                rule: &TORCH_INSTALLED_TWICE,
                detail: format!(
                    "{} installs `{}` ({}) over `{}` from {} ({}): torch is in two layers of the image",
                    v.image_label(i.image),
                    spec_text(&i.req),
                    i.origin,
                    spec_text(&f.req),
                    v.image_label(f.image),
                    f.origin,
                ),
                span: i.span,
                builds: vec![v.build()],
            }),
            Some(_) => {}
        }
    }
}

/// An image reference that carries CUDA (`nvidia/cuda:12.1.1-runtime-ubuntu22.04`,
/// `pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime`).
pub fn is_cuda_base(reference: &str) -> bool {
    let r = reference.to_ascii_lowercase();
    let repo_tag = r.rsplit('/').next().unwrap_or(&r);
    r.contains("nvidia/cuda")
        || repo_tag.contains("cuda")
        || repo_tag.split([':', '-', '.']).any(is_cuda_label)
}

pub fn cuda_twice(v: &PlanView, out: &mut Vec<Finding>) {
    let in_target = v.plan.in_target();
    let Some((base_img, reference)) = v
        .plan
        .images
        .iter()
        .enumerate()
        .filter(|(n, _)| in_target[*n])
        .find_map(|(n, img)| match &img.base {
            Base::Image { reference, .. } if is_cuda_base(reference) => Some((n, reference)),
            _ => None,
        })
    else {
        return;
    };
    for (image, span, list) in per_step(v, |r| is_cuda_build(r) || is_cuda_wheel(r)) {
        if image < base_img {
            continue;
        }
        out.push(Finding {
            rule: &CUDA_INSTALLED_TWICE,
            detail: format!(
                "{} installs wheels that bring their own CUDA runtime ({list}), and {} is built on the CUDA image `{reference}`",
                v.image_label(image),
                v.image_label(base_img),
            ),
            span,
            builds: vec![v.build()],
        });
    }
}

/// Why a variant is a CUDA variant, if it is one.
fn cuda_variant(var: &crate::stack::VariantDef) -> Option<String> {
    if let Some(t) = &var.torch
        && (t.value == "cuda" || is_cuda_label(&t.value))
    {
        return Some(format!("torch = \"{}\"", t.value));
    }
    for img in &var.images {
        if let Some(f) = img.from.as_ref().filter(|f| is_cuda_base(&f.value)) {
            return Some(format!("{} from `{}`", img.key(), f.value));
        }
        if let Some(r) = img
            .pip
            .iter()
            .filter_map(|p| parse_spec(&p.value, 0))
            .find(|r| is_cuda_wheel(r) || is_cuda_build(r))
        {
            return Some(format!("{} installs `{}`", img.key(), spec_text(&r)));
        }
    }
    None
}

pub fn cuda_on_arm64(stack: &Stack, out: &mut Vec<Finding>) {
    for var in &stack.variants {
        let Some(why) = cuda_variant(var) else {
            continue;
        };
        let own = !var.platforms.is_empty();
        let platforms = if own {
            &var.platforms
        } else {
            &stack.platforms
        };
        for p in platforms {
            let arm =
                crate::platform::Platform::parse(&p.value).is_ok_and(|p| p.architecture == "arm64");
            if !arm {
                continue;
            }
            let whose = if own {
                "its platforms".to_string()
            } else {
                "the stack's platforms".to_string()
            };
            out.push(Finding {
                rule: &CUDA_ON_ARM64,
                detail: format!(
                    "variant `{}` is a CUDA variant ({why}) and {whose} include `{}`: CUDA wheels and images are built for linux/amd64",
                    var.name.value, p.value
                ),
                span: if own { p.span } else { var.name.span },
                builds: vec![],
            });
        }
    }
}

pub fn conflicting_pins(v: &PlanView, out: &mut Vec<Finding>) {
    let mut pinned: BTreeMap<&str, &Installed> = BTreeMap::new();
    for i in &v.installed {
        let Some(pin) = &i.req.pin else { continue };
        match pinned.get(i.req.name.as_str()) {
            None => {
                pinned.insert(&i.req.name, i);
            }
            Some(f) if f.image < i.image && f.req.pin.as_ref() != Some(pin) => {
                out.push(Finding {
                    rule: &CONFLICTING_PINS,
                    detail: format!(
                        "{} pins `{}=={pin}` ({}) but its base {} pins `{}` ({})",
                        v.image_label(i.image),
                        i.req.name,
                        i.origin,
                        v.image_label(f.image),
                        spec_text(&f.req),
                        f.origin,
                    ),
                    span: i.span,
                    builds: vec![v.build()],
                });
            }
            Some(_) => {}
        }
    }
}

pub fn unpinned(plans: &[Plan], files: &BTreeMap<&str, ReqFile>, out: &mut Vec<Finding>) {
    for p in plans {
        for img in &p.images {
            let mut pips: Vec<(&PipStep, Span)> = vec![];
            if let Some(v) = &img.venv {
                pips.push((&v.pip, v.pip_span));
            }
            for s in &img.steps {
                if let StepKind::Pip(pip) = &s.kind {
                    pips.push((pip, s.span));
                }
            }
            for (pip, span) in pips {
                for path in &pip.requirements {
                    let Some(f) = files.get(path.as_str()) else {
                        continue;
                    };
                    let loose: Vec<&Req> = f.reqs.iter().filter(|r| !r.is_pinned()).collect();
                    let pinned = f.reqs.len() - loose.len();
                    if loose.is_empty() || (!f.locked && pinned == 0) {
                        continue;
                    }
                    let why = if f.locked {
                        "is a lock".to_string()
                    } else {
                        format!("pins {pinned} of {} requirements", f.reqs.len())
                    };
                    let list: Vec<String> = loose
                        .iter()
                        .map(|r| format!("{} (line {})", r.name, r.line))
                        .collect();
                    out.push(Finding {
                        rule: &UNPINNED_REQUIREMENTS,
                        detail: format!(
                            "`{}` {why}; not pinned: {}",
                            crate::plan::ctxpath::display(path),
                            list.join(", ")
                        ),
                        span,
                        builds: vec![],
                    });
                }
            }
        }
    }
}

pub fn large_context(plans: &[Plan], facts: &Facts, out: &mut Vec<Finding>) {
    if facts.dockerignore {
        return;
    }
    for p in plans {
        for img in &p.images {
            for s in &img.steps {
                let StepKind::Copy { src, .. } = &s.kind else {
                    continue;
                };
                let Some(d) = facts.dirs.get(src) else {
                    continue;
                };
                let big = d.bytes.filter(|b| *b >= LARGE_CONTEXT);
                if d.heavy.is_empty() && big.is_none() {
                    continue;
                }
                let mut what = vec![];
                if let Some(b) = big {
                    what.push(format!("{} MiB", b / (1024 * 1024)));
                }
                if !d.heavy.is_empty() {
                    what.push(format!("with {}", d.heavy.join(", ")));
                }
                out.push(Finding {
                    rule: &LARGE_CONTEXT_WITHOUT_DOCKERIGNORE,
                    detail: format!(
                        "{} copies `{src}` ({}) and the context has no .dockerignore: all of it is sent to BuildKit and copied into the image",
                        img.label(),
                        what.join(" ")
                    ),
                    span: s.span,
                    builds: vec![],
                });
            }
        }
    }
}

/// The host of a URL when it is a loopback address (`localhost`, `127.0.0.0/8`, `::1`).
pub fn loopback_host(u: &str) -> Option<String> {
    let url = url::Url::parse(u.trim()).ok()?;
    let loop_ = match url.host()? {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    };
    loop_.then(|| url.host_str().unwrap_or_default().to_string())
}

pub fn network_host(v: &PlanView, network: Network, out: &mut Vec<Finding>) {
    if network == Network::Host {
        return;
    }
    for img in &v.plan.images {
        let mut installs: Vec<(String, Span, Vec<String>)> = vec![];
        let urls_of = |p: &PipStep| {
            let mut u: Vec<String> = p.index_url.iter().cloned().collect();
            u.extend(p.extra_index_urls.iter().cloned());
            u
        };
        if let Some(vp) = &img.venv {
            installs.push((vp.pip.describe(), vp.pip_span, urls_of(&vp.pip)));
        }
        for s in &img.steps {
            match &s.kind {
                StepKind::Pip(p) => installs.push((p.describe(), s.span, urls_of(p))),
                StepKind::Apt(_) | StepKind::Conda(_) => {
                    installs.push((s.kind.describe(), s.span, vec![]))
                }
                _ => {}
            }
        }
        if network == Network::None {
            for (what, span, _) in &installs {
                out.push(Finding {
                    rule: &NETWORK_HOST_NEEDED,
                    detail: format!(
                        "{}: `{what}` downloads packages but the build runs with --network=none",
                        img.label()
                    ),
                    span: *span,
                    builds: vec![v.build()],
                });
            }
            continue;
        }
        // Install env (`PIP_INDEX_URL`, proxies; the stack's and the image's, interpolated)
        // applies to every install step of the image.
        let env_urls: Vec<String> = img.install_env.iter().map(|(_, v)| v.clone()).collect();
        for (what, span, urls) in &installs {
            let hit = urls
                .iter()
                .chain(env_urls.iter())
                .find_map(|u| loopback_host(u).map(|h| (u.clone(), h)));
            if let Some((u, host)) = hit {
                out.push(Finding {
                    rule: &NETWORK_HOST_NEEDED,
                    detail: format!(
                        "{}: `{what}` reads `{u}`, on the loopback host `{host}`: in the build's own network namespace that is not this machine; build with --network=host",
                        img.label()
                    ),
                    span: *span,
                    builds: vec![v.build()],
                });
            }
        }
    }
}
