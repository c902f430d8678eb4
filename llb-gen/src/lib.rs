//! layerstack core: stack.toml → validated model → build plan → LLB, all pure (no I/O).
//!
//! The pipeline: [`stack::parse`] (TOML with spans) → [`plan::plan`] (interpolated, ordered,
//! named steps for one target and platform) → [`convert::convert`] (the only module that sees
//! both the plan and LLB) → [`llb::Graph::marshal`] (deterministic `pb::Definition`).

pub mod convert;
pub mod diag;
pub mod image;
pub mod interp;
pub mod lint;
pub mod llb;
pub mod lock;
pub mod pb;
pub mod plan;
pub mod platform;
pub mod report;
pub mod source;
pub mod stack;
pub mod version;

use diag::{Diagnostics, StackError};
use source::SourceFile;

/// The one door into the core: parse a stack file and, when it has errors, report them the
/// same way for every consumer (CLI, library, frontend build and subrequests): with TOML
/// syntax errors, only those and what precedes the first (no follow-on noise); with other
/// errors, those plus the stack-wide checks. Ok carries the parse warnings.
pub fn parse_checked(file: &SourceFile) -> Result<(stack::Stack, Diagnostics), StackError> {
    let (stack, mut diags) = stack::parse(file);
    if let Some(d) = syntax_errors_only(&diags) {
        return Err(StackError {
            file: file.clone(),
            diagnostics: d,
        });
    }
    if diags.has_errors() {
        diags.extend(plan::check_stack(&stack));
        return Err(StackError {
            file: file.clone(),
            diagnostics: diags.sorted(),
        });
    }
    Ok((stack, diags))
}

/// Parse and plan in one go (through [`parse_checked`]): what both the CLI and the frontend
/// do first.
pub fn load(
    file: &SourceFile,
    opts: &plan::BuildOptions,
) -> Result<(stack::Stack, plan::Plan), StackError> {
    let (stack, mut diags) = parse_checked(file)?;
    // Stack-wide errors come before any target's (the same first error as `outline` and
    // `check` report, whichever target is asked for).
    let wide = plan::check_stack(&stack);
    if wide.has_errors() {
        diags.extend(wide);
        return Err(StackError {
            file: file.clone(),
            diagnostics: diags.sorted(),
        });
    }
    match plan::plan(&stack, opts) {
        Ok(mut p) => {
            let mut all = diags;
            all.extend(std::mem::take(&mut p.warnings));
            p.warnings = all.sorted();
            Ok((stack, p))
        }
        Err(d) => {
            let mut all = diags;
            all.extend(d);
            Err(StackError {
                file: file.clone(),
                diagnostics: all.sorted(),
            })
        }
    }
}

/// The build platform's twin of a plan: the same target planned for the build platform, on
/// whose images cross-installs for a foreign platform run. None when the plan is for the
/// build platform or the target cannot be planned there.
pub fn twin_plan(stack: &stack::Stack, opts: &plan::BuildOptions) -> Option<plan::Plan> {
    if opts.platform == opts.build_platform {
        return None;
    }
    let twin = plan::BuildOptions {
        platform: opts.build_platform.clone(),
        ..opts.clone()
    };
    plan::plan(stack, &twin).ok()
}

/// Everything `llb-gen check` reports: parse errors, stack-wide checks and a plan of every
/// target with the default options.
pub fn check(file: &SourceFile, opts: &plan::BuildOptions) -> Diagnostics {
    let (stack, mut diags) = match parse_checked(file) {
        Ok(ok) => ok,
        Err(e) => return e.diagnostics,
    };
    let mut seen = Diagnostics::default();
    // Every target, in every variant, on every platform that variant is built for: impossible
    // combinations (a CUDA variant on arm64) are errors here, before any build.
    let mut combos: Vec<(Option<String>, platform::Platform)> = vec![];
    // The platforms of platform overlays are planned too, where the variant allows them.
    let mut overlaid: Vec<platform::Platform> = vec![];
    let overlays = stack
        .images
        .iter()
        .chain(stack.variants.iter().flat_map(|v| v.images.iter()))
        .flat_map(|i| i.platforms.iter());
    for o in overlays {
        if o.platform != opts.platform && !overlaid.contains(&o.platform) {
            overlaid.push(o.platform.clone());
        }
    }
    if stack.variants.is_empty() {
        combos.push((None, opts.platform.clone()));
        combos.extend(overlaid.iter().map(|p| (None, p.clone())));
    }
    for v in &stack.variants {
        let platforms: Vec<platform::Platform> = v
            .platforms
            .iter()
            .filter_map(|p| platform::Platform::parse(&p.value).ok())
            .collect();
        if platforms.is_empty() {
            combos.push((Some(v.name.value.clone()), opts.platform.clone()));
            combos.extend(
                overlaid
                    .iter()
                    .map(|p| (Some(v.name.value.clone()), p.clone())),
            );
        }
        for p in platforms {
            combos.push((Some(v.name.value.clone()), p));
        }
    }
    for (variant, platform) in combos {
        if stack.images.is_empty() {
            break;
        }
        // Every image of the variant in one plan: each planned once, the stack-wide checks
        // run once (near-linear in the size of the stack).
        let o = plan::BuildOptions {
            target: variant.as_ref().map(|v| format!("@{v}")),
            platform: platform.clone(),
            ..opts.clone()
        };
        match plan::plan_every(&stack, &o) {
            Ok(p) => seen.extend(p.warnings),
            Err(d) => seen.extend(d),
        }
    }
    if stack.images.is_empty() {
        seen.extend(plan::check_stack(&stack));
    }
    // Tag templates (used by `llb-gen bake`) are checked here too.
    seen.extend(report::bake::check_tags(&stack, opts));
    if stack.syntax.is_none() {
        seen.push(
            diag::Diagnostic::warning("line 1 has no `# syntax=` directive; `docker buildx build -f` will read this file as a Dockerfile")
                .at(source::Span::new(0, 0))
                .hint("start the file with `# syntax=<layerstack frontend image>`"),
        );
    }
    diags.extend(seen);
    diags.sorted()
}

/// With TOML syntax errors, what follows the first one is parsed by guesswork: report the
/// syntax errors and only the findings before the first of them (no follow-on noise). A file
/// over the size limit is not parsed at all: that error alone is reported.
fn syntax_errors_only(diags: &Diagnostics) -> Option<Diagnostics> {
    if let Some(d) = diags
        .items
        .iter()
        .find(|d| d.message.starts_with("the stack file is"))
    {
        return Some(Diagnostics {
            items: vec![d.clone()],
        });
    }
    let first = diags
        .items
        .iter()
        .filter(|d| d.message.starts_with("invalid TOML"))
        .filter_map(|d| d.span)
        .map(|s| s.start)
        .min()?;
    let mut out = Diagnostics::default();
    for d in &diags.items {
        if d.message.starts_with("invalid TOML") || d.span.is_some_and(|s| s.start < first) {
            out.push(d.clone());
        }
    }
    Some(out.sorted())
}
