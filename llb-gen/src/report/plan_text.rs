//! A plan as readable text, one fact a line with stack.toml line numbers: the plan snapshots
//! (`tests/snapshots/*.plan.txt`) that show in a diff what a change does to the planner.

use std::fmt::Write;

use crate::plan::{Base, Plan, StepKind};
use crate::source::{SourceFile, Span};

fn line(file: &SourceFile, span: Span) -> usize {
    file.line_col(span.start).line
}

fn base(b: &Base, file: &SourceFile) -> String {
    match b {
        Base::Image { reference, span } => {
            format!("image {reference} (line {})", line(file, *span))
        }
        Base::Layer { name, span, .. } => format!("layer {name} (line {})", line(file, *span)),
        Base::Context { name, span } => {
            format!("named context {name} (line {})", line(file, *span))
        }
        Base::Dockerfile(d) => format!(
            "{} (context {}, args {:?}, line {})",
            d.describe(),
            d.context,
            d.args,
            line(file, d.span)
        ),
    }
}

/// A step as its `Debug` form, leaving out the fields at their defaults that were added later
/// (`activate: None` of a run, `optional: false` of a copy), so older snapshots still read
/// the same and a diff shows only the steps that use them.
fn step_kind(k: &StepKind) -> String {
    match k {
        StepKind::Run {
            command,
            context,
            activate: None,
        } => format!("Run {{ command: {command:?}, context: {context:?} }}"),
        StepKind::Copy {
            src,
            dest,
            owner,
            mode,
            exclude,
            optional: false,
        } => format!(
            "Copy {{ src: {src:?}, dest: {dest:?}, owner: {owner:?}, mode: {mode:?}, exclude: {exclude:?} }}"
        ),
        k => format!("{k:?}"),
    }
}

/// Render `plan` (planned from `file`).
pub fn render(plan: &Plan, file: &SourceFile) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "target {}", plan.target);
    let _ = writeln!(w, "platform {}", plan.platform);
    if let Some(v) = &plan.variant {
        let _ = writeln!(w, "variant {v}");
    }
    for s in &plan.secrets {
        let _ = writeln!(w, "secret {s:?}");
    }
    for img in &plan.images {
        let _ = writeln!(
            w,
            "\n[{}] {} (line {})",
            img.label(),
            img.key,
            line(file, img.span)
        );
        let _ = writeln!(w, "  from {}", base(&img.base, file));
        if let Some(v) = &img.venv {
            let _ = writeln!(w, "  venv builder from {}", base(&v.builder, file));
            let _ = writeln!(w, "    python {} path {} apt {:?}", v.python, v.path, v.apt);
            let _ = writeln!(
                w,
                "    line {}: {}",
                line(file, v.pip_span),
                v.pip.describe()
            );
            let _ = writeln!(
                w,
                "      {}",
                without_empty_includes(format!("{:?}", v.pip))
            );
        }
        if !img.install_env.is_empty() {
            let _ = writeln!(w, "  install-env {:?}", img.install_env);
        }
        if let Some(u) = &img.declared_user {
            let _ = writeln!(w, "  user {u}");
        }
        let _ = writeln!(w, "  cross-install {}", img.cross_install);
        for s in &img.steps {
            let _ = writeln!(w, "  line {}: {}", line(file, s.span), s.kind.describe());
            let _ = writeln!(w, "    {}", step_text(&s.kind));
        }
        let _ = writeln!(w, "  config {:?}", img.config);
    }
    let _ = writeln!(w, "\ncaches");
    for c in plan.caches() {
        let _ = writeln!(
            w,
            "  {} at {} ({:?}) first used by {} (line {})",
            c.id,
            c.dest,
            c.sharing,
            c.key,
            line(file, c.span)
        );
    }
    let _ = writeln!(w, "\ncontext reads");
    for r in plan.context_reads() {
        let _ = write!(
            w,
            "  {} (line {}): {}",
            r.key,
            line(file, r.span),
            r.paths.join(" ")
        );
        if !r.exclude.is_empty() {
            let _ = write!(w, " excluding {}", r.exclude.join(" "));
        }
        let _ = writeln!(w);
    }
    out
}

/// A step as the snapshots have always shown it: a plain apt list and a pip step without
/// includes read as they did before apt options and requirement includes existed.
fn step_text(k: &crate::plan::StepKind) -> String {
    use crate::plan::{AptStep, StepKind};
    match k {
        StepKind::Apt(a) if *a == AptStep::plain(a.packages.clone()) => {
            format!("Apt {{ packages: {:?} }}", a.packages)
        }
        k => without_empty_includes(step_kind(k)),
    }
}

fn without_empty_includes(s: String) -> String {
    s.replace("includes: [], ", "")
}
