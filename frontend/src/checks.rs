//! Checks before anything runs: every context path the plan reads exists, and the engine has
//! the capabilities the plan needs.

use llb_gen::diag::StackError;
use llb_gen::plan;
use llb_gen::plan::BuildOptions;

use crate::gateway::Gateway;
use crate::request::{Failure, Inputs};

/// Every context path the plan reads (requirements, environment files, copy sources) must
/// exist before any install runs: each group of paths a step reads is loaded by its context
/// source alone (the same vertex the build then reuses) and its paths are looked up; a
/// required copy source that is a pattern in its last component (`scripts/*.sh`) must match
/// something in its directory. Optional copies (`optional = true`) are left out. All
/// missing paths are reported at once, at the stack.toml lines that name them.
pub async fn check_context(
    gw: &Gateway,
    bo: &BuildOptions,
    plan: &plan::Plan,
    inputs: &Inputs,
) -> Result<(), Failure> {
    let reads: Vec<_> = plan
        .context_reads()
        .into_iter()
        // Image contexts have no local source to look in: a missing path there fails the
        // copy itself, at its line.
        .filter(|r| {
            !r.optional
                && !r
                    .context
                    .as_ref()
                    .is_some_and(|c| plan.image_contexts.contains_key(c))
        })
        .collect();
    let mut checked = std::collections::BTreeSet::new();
    let mut sources = vec![];
    for read in &reads {
        let paths: Vec<Lookup> = read
            .include_patterns()
            .into_iter()
            // Literal paths (escaped where they hold `[`, `*`, …) are looked up; patterns
            // in their last component are listed; other patterns not.
            .filter_map(|p| match plan::resources::literal_pattern(&p) {
                Some(path) if path != "**" => Some(Lookup::Path(path)),
                Some(_) => None,
                None => plan::resources::last_component_pattern(&p).map(|(dir, pattern)| {
                    Lookup::Pattern {
                        src: p,
                        dir,
                        pattern,
                    }
                }),
            })
            .filter(|l| checked.insert((read.context.clone(), l.clone())))
            .collect();
        if !paths.is_empty() {
            sources.push((
                llb_gen::convert::context_definition(bo, read),
                read.context.clone(),
                paths,
            ));
        }
    }
    // Every source is solved and looked up at once: one round trip, not one per source.
    let lookups = sources.into_iter().map(|(one, context, paths)| async move {
        let r = gw.solve(one).await.map_err(|e| Failure::plain(e.message))?;
        let found = futures_util::future::try_join_all(paths.iter().map(|l| {
            let r = &r;
            async move {
                Ok::<bool, Failure>(match l {
                    Lookup::Path(p) => gw.stat_file(r, p).await?.is_some(),
                    Lookup::Pattern { dir, pattern, .. } => gw
                        .read_dir(r, dir, pattern)
                        .await?
                        .is_some_and(|entries| !entries.is_empty()),
                })
            }
        }))
        .await?;
        let absent: Vec<(Option<String>, String)> = paths
            .into_iter()
            .zip(found)
            .filter(|(_, found)| !found)
            .map(|(l, _)| (context.clone(), l.source()))
            .collect();
        Ok::<_, Failure>(absent)
    });
    let absent = futures_util::future::try_join_all(lookups).await?;
    let mut missing = llb_gen::diag::Diagnostics::default();
    for (context, p) in absent.into_iter().flatten() {
        let pattern = plan::resources::literal_pattern(&p).is_none();
        let reading = |r: &&plan::ContextRead| r.context == context && r.paths.contains(&p);
        for read in reads.iter().filter(reading) {
            // A named context has its own .dockerignore.
            let excludes = match &context {
                None => &inputs.exclude_patterns,
                Some(c) => bo
                    .named_contexts
                    .get(c)
                    .map(|o| &o.exclude_patterns)
                    .unwrap_or(&inputs.exclude_patterns),
            };
            let excluded = excludes
                .iter()
                .any(|x| x == &p || p.starts_with(&format!("{}/", x.trim_end_matches('/'))));
            let (shown, ctx_name, relative) = match &context {
                None => (
                    p.clone(),
                    "the build context".to_string(),
                    "the build context, the directory given last to docker buildx build"
                        .to_string(),
                ),
                Some(c) => (
                    format!("{c}:{p}"),
                    format!("the named build context `{c}`"),
                    format!("the directory given with --build-context {c}=DIR"),
                ),
            };
            let hint = if excluded {
                let which = match &context {
                    None => ".dockerignore".to_string(),
                    Some(c) => format!("the .dockerignore of the context `{c}`"),
                };
                format!("it is excluded by {which}; remove it from there or from the stack")
            } else {
                format!("paths are relative to {relative}")
            };
            let (message, hint) = if pattern {
                (
                    format!("`{shown}` matches nothing in {ctx_name}"),
                    format!("{hint}; add `optional = true` to the copy if it may match nothing"),
                )
            } else {
                (format!("`{shown}` is not in {ctx_name}"), hint)
            };
            missing.push(
                llb_gen::diag::Diagnostic::error(message)
                    .at(read.span)
                    .key(read.key.clone())
                    .hint(hint),
            );
        }
    }
    if missing.has_errors() {
        return Err(Failure::from_stack(&StackError {
            file: inputs.file.clone(),
            diagnostics: missing.sorted(),
        }));
    }
    Ok(())
}

/// One lookup of the context check.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Lookup {
    /// A literal path, stat'ed.
    Path(String),
    /// A copy source whose last component is a pattern: `dir` listed for names matching
    /// `pattern`.
    Pattern {
        src: String,
        dir: String,
        pattern: String,
    },
}

impl Lookup {
    /// The path or pattern as the stack names it (a `ContextRead` path).
    fn source(self) -> String {
        match self {
            Lookup::Path(p) => p,
            Lookup::Pattern { src, .. } => src,
        }
    }
}

/// Features this plan uses that the engine lacks (from Ping's LLB caps) fail the build here,
/// at the stack.toml line that asks for them — never ignored by an old BuildKit.
pub fn missing_caps(
    caps: &std::collections::BTreeSet<String>,
    stack: &llb_gen::stack::Stack,
    plan: &plan::Plan,
    inputs: &Inputs,
) -> Result<(), Failure> {
    use llb_gen::diag::{Diagnostic, Diagnostics};
    let mut d = Diagnostics::default();
    if !caps.contains("exec.secretenv") {
        for s in stack.secrets.iter().filter(|s| s.env.is_some()) {
            d.push(
                Diagnostic::error(format!("this engine's BuildKit lacks the `exec.secretenv` capability: secret `{}` cannot be given as an env var", s.name.value))
                    .at(s.env.as_ref().map(|e| e.span).unwrap_or(s.span))
                    .key(format!("secrets.{}.env", s.name.value))
                    .hint("use a file secret (`target = \"/run/secrets/...\"`) or BuildKit >= 0.12 (dockerd >= 24)"),
            );
        }
    }
    if !caps.contains("file.copy.includeexcludepatterns") {
        for img in &plan.images {
            for st in &img.steps {
                if let plan::StepKind::Copy { exclude, .. } = &st.kind
                    && !exclude.is_empty()
                {
                    d.push(
                            Diagnostic::error("this engine's BuildKit lacks the `file.copy.includeexcludepatterns` capability: copy `exclude` would be ignored")
                                .at(st.span)
                                .key(format!("{}.copy", img.key))
                                .hint("exclude the files with .dockerignore, or use BuildKit >= 0.9"),
                        );
                }
            }
        }
    }
    if !caps.contains("source.http.checksum") {
        for img in &plan.images {
            for st in &img.steps {
                if matches!(&st.kind, plan::StepKind::Lock(l) if !l.groups.is_empty()) {
                    d.push(
                        Diagnostic::error("this engine's BuildKit lacks the `source.http.checksum` capability: the lock's wheels cannot be fetched as checksummed sources")
                            .at(st.span)
                            .key(format!("{}.lock", img.key))
                            .hint("use a newer BuildKit, or install with `requirements` instead"),
                    );
                }
            }
        }
    }
    if !caps.contains("source.http.auth") {
        for img in &plan.images {
            for st in &img.steps {
                if let plan::StepKind::Lock(l) = &st.kind
                    && let Some(id) = &l.auth_secret
                    && !l.groups.is_empty()
                {
                    d.push(
                        Diagnostic::error(format!("this engine's BuildKit lacks the `source.http.auth` capability: the lock's wheels cannot be downloaded with the `Authorization` header of secret `{id}`"))
                            .at(st.span)
                            .key(format!("{}.lock", img.key))
                            .hint("use a newer BuildKit, or an index that needs no credentials"),
                    );
                }
            }
        }
    }
    if d.has_errors() {
        return Err(Failure::from_stack(&StackError {
            file: inputs.file.clone(),
            diagnostics: d.sorted(),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llb_gen::source::SourceFile;

    /// A lock with `auth-secret` needs `source.http.auth` (besides `source.http.checksum`):
    /// without it the build stops at the `lock` line, naming the cap and the secret.
    #[test]
    fn a_lock_with_an_auth_secret_needs_the_http_auth_cap() {
        let text = "[secrets.pypi]\n\n[services.app]\nfrom = \"python:3.12-slim\"\n\
                    lock = { file = \"pylock.toml\", auth-secret = \"pypi\" }\n";
        let lock = "lock-version = '1.0'\ncreated-by = 't'\n[[packages]]\nname = 'a'\nversion = '1.0'\n\
                    [[packages.wheels]]\nurl = 'https://files.example/a-1.0-py3-none-any.whl'\n\
                    hashes = {sha256 = '1111111111111111111111111111111111111111111111111111111111111111'}\n";
        let file = SourceFile::new("stack.toml", text);
        let mut opts = BuildOptions::default();
        opts.lock_files
            .insert("pylock.toml".into(), Some(lock.to_string()));
        let (stack, plan) = llb_gen::load(&file, &opts).expect("plans");
        let inputs = Inputs {
            file,
            exclude_patterns: vec![],
            file_vertex: String::new(),
            named_contexts: Default::default(),
        };
        let caps = |c: &[&str]| c.iter().map(|s| s.to_string()).collect();
        let err = missing_caps(
            &caps(&["source.http", "source.http.checksum"]),
            &stack,
            &plan,
            &inputs,
        )
        .expect_err("no source.http.auth");
        assert!(
            err.message
                .contains("lacks the `source.http.auth` capability")
                && err.message.contains("secret `pypi`")
                && err.message.contains("stack.toml:5"),
            "{}",
            err.message
        );
        missing_caps(
            &caps(&["source.http", "source.http.checksum", "source.http.auth"]),
            &stack,
            &plan,
            &inputs,
        )
        .expect("every cap there");
    }
}
