//! Lint rules for stacks (`docker buildx build --check`, `llb-gen check`): mistakes no
//! Dockerfile linter can see — CUDA in CPU images, torch twice, conflicting pins, unpinned
//! locks, contexts without `.dockerignore`, loopback indexes without `--network=host`.
//!
//! Pure: the rules read the [`Stack`] and the [`Plan`]s of every target, variant and
//! platform (as `check` does), plus [`Facts`] about the build context that the edge gathers
//! (the CLI from the disk, the frontend through the gateway): which files it needs is
//! [`wanted`]'s answer.

mod reqs;
mod rules;

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, Diagnostics};
use crate::plan::{self, BuildOptions, Network, Plan, StepKind};
use crate::platform::Platform;
use crate::source::Span;
use crate::stack::Stack;

pub use reqs::{Req, ReqFile, parse_file, parse_spec};

/// Where the rules are documented.
pub const DOCS: &str = "https://github.com/layerstack/layerstack/blob/main/docs/stack-toml.md";

/// How much a finding matters (all lint findings are warnings to BuildKit; the level orders
/// them in the docs and the CLI's hint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The image is wrong or much bigger than it should be.
    Warning,
    /// A reproducibility or hygiene problem.
    Info,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Info => "info",
        }
    }
}

/// A rule: a stable name, a one-line description and its docs anchor.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub description: &'static str,
    pub level: Level,
}

impl Rule {
    /// `…/docs/stack-toml.md#cudawheelsincpuimage` (GitHub's anchor of the rule's heading).
    pub fn url(&self) -> String {
        format!("{DOCS}#{}", self.name.to_ascii_lowercase())
    }
}

/// One finding: the rule, what exactly is wrong, and where in stack.toml.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static Rule,
    pub detail: String,
    pub span: Span,
    /// The builds (`api@cuda on linux/amd64`) it was found in; [`lint`] merges the same
    /// finding of several builds and names them at the end of the detail.
    pub builds: Vec<String>,
}

impl Finding {
    /// As a `check` diagnostic: `RuleName: detail`, with the description and URL as the hint.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::warning(format!("{}: {}", self.rule.name, self.detail))
            .at(self.span)
            .hint(format!(
                "{} ({}; {})",
                self.rule.description,
                self.rule.level.as_str(),
                self.rule.url()
            ))
    }
}

/// What the rules know about one copied directory of the context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirFacts {
    /// Total size of the files under it (None: not known, e.g. inside a frontend).
    pub bytes: Option<u64>,
    /// Directories under it that never belong in a context (`.git`, `.venv`, `node_modules`).
    pub heavy: Vec<String>,
}

/// Facts about the build, gathered at the edge.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Requirements files by context path (one the edge could not read is absent).
    pub files: BTreeMap<String, String>,
    /// The build has `.dockerignore` patterns.
    pub dockerignore: bool,
    /// Copied directories by copy source (`.` is the whole context).
    pub dirs: BTreeMap<String, DirFacts>,
    /// The network mode of the build's RUN steps.
    pub network: Network,
}

/// Directory names that make a context large and never belong in an image.
pub const HEAVY_DIRS: &[&str] = &[
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
];

/// A context this big (of copied directories, without `.dockerignore`) is worth a warning.
pub const LARGE_CONTEXT: u64 = 100 * 1024 * 1024;

/// The context paths the rules want to know about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Requirements files to read.
    pub files: BTreeSet<String>,
    /// Copy sources (files or directories) to look into.
    pub copies: BTreeSet<String>,
}

/// Every plan `check` makes: every image as a target, in every variant, on every platform of
/// that variant (or `opts.platform`). Plans that fail are left out (`check` reports them).
pub fn plans(stack: &Stack, opts: &BuildOptions) -> Vec<Plan> {
    let mut combos: Vec<(Option<String>, Platform)> = vec![];
    if stack.variants.is_empty() {
        combos.push((None, opts.platform.clone()));
    }
    for v in &stack.variants {
        let platforms: Vec<Platform> = v
            .platforms
            .iter()
            .filter_map(|p| Platform::parse(&p.value).ok())
            .collect();
        if platforms.is_empty() {
            combos.push((Some(v.name.value.clone()), opts.platform.clone()));
        }
        for p in platforms {
            combos.push((Some(v.name.value.clone()), p));
        }
    }
    let mut out = vec![];
    for (variant, platform) in combos {
        for img in &stack.images {
            let target = match &variant {
                Some(v) => format!("{}@{v}", img.name.value),
                None => img.name.value.clone(),
            };
            let o = BuildOptions {
                target: Some(target),
                platform: platform.clone(),
                ..opts.clone()
            };
            if let Ok(p) = plan::plan(stack, &o) {
                out.push(p);
            }
        }
    }
    out
}

/// The requirements files and copy sources of these plans.
pub fn wanted(plans: &[Plan]) -> Wanted {
    let mut w = Wanted::default();
    for p in plans {
        for img in &p.images {
            if let Some(v) = &img.venv {
                w.files.extend(v.pip.requirements.iter().cloned());
            }
            for s in &img.steps {
                match &s.kind {
                    StepKind::Pip(pip) => w.files.extend(pip.requirements.iter().cloned()),
                    StepKind::Copy { src, .. } => {
                        w.copies.insert(src.clone());
                    }
                    _ => {}
                }
            }
        }
    }
    w
}

/// Run every rule. Findings are de-duplicated and sorted by position, then rule name.
pub fn lint(stack: &Stack, plans: &[Plan], facts: &Facts) -> Vec<Finding> {
    let mut out: Vec<Finding> = vec![];
    rules::cuda_on_arm64(stack, &mut out);
    let mut files: BTreeMap<&str, ReqFile> = BTreeMap::new();
    for (path, text) in &facts.files {
        files.insert(path.as_str(), parse_file(path, text));
    }
    for p in plans {
        let view = rules::PlanView::new(stack, p, &files);
        rules::cuda_in_cpu_image(&view, &mut out);
        rules::torch_twice(&view, &mut out);
        rules::cuda_twice(&view, &mut out);
        rules::conflicting_pins(&view, &mut out);
        rules::network_host(&view, facts.network, &mut out);
    }
    rules::unpinned(plans, &files, &mut out);
    rules::large_context(plans, facts, &mut out);
    // One finding per rule, place and detail, naming every build it was found in.
    let mut merged: BTreeMap<(usize, usize, &'static str, String), Finding> = BTreeMap::new();
    for f in out {
        let key = (f.span.start, f.span.end, f.rule.name, f.detail.clone());
        match merged.get_mut(&key) {
            Some(m) => {
                for b in f.builds {
                    if !m.builds.contains(&b) {
                        m.builds.push(b);
                    }
                }
            }
            None => {
                merged.insert(key, f);
            }
        }
    }
    merged
        .into_values()
        .map(|mut f| {
            if !f.builds.is_empty() {
                let n = f.builds.len();
                let mut shown: Vec<String> = f.builds.iter().take(3).cloned().collect();
                if n > 3 {
                    shown.push(format!("{} more", n - 3));
                }
                f.detail = format!("{} (in {})", f.detail, shown.join(", "));
            }
            f
        })
        .collect()
}

/// The findings as `check` diagnostics.
pub fn diagnostics(findings: &[Finding]) -> Diagnostics {
    let mut d = Diagnostics::default();
    for f in findings {
        d.push(f.diagnostic());
    }
    d
}

/// Every rule, in the order of the docs.
pub fn all_rules() -> [&'static Rule; 8] {
    [
        &rules::CUDA_WHEELS_IN_CPU_IMAGE,
        &rules::TORCH_INSTALLED_TWICE,
        &rules::CUDA_INSTALLED_TWICE,
        &rules::CUDA_ON_ARM64,
        &rules::CONFLICTING_PINS,
        &rules::UNPINNED_REQUIREMENTS,
        &rules::LARGE_CONTEXT_WITHOUT_DOCKERIGNORE,
        &rules::NETWORK_HOST_NEEDED,
    ]
}

#[cfg(test)]
mod tests;
