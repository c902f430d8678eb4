//! Context paths that name their build context. A stack reads the main build context with a
//! plain path (`requirements.txt`) and a named one (`--build-context svc-api=../api`) with
//! `NAME:PATH` (`svc-api:requirements.txt`, `svc-api:./libs/x` for a local package); a copy
//! may say `context = "svc-api"` instead.
//!
//! In the plan, a path of a named context is `//NAME/PATH` (a main-context path never starts
//! with `/`: the planner rejects absolute paths), so every place that carries a context path
//! as a string carries its context too. [`split`] takes it apart; [`display`] is the form
//! people read (`svc-api:requirements.txt`, in vertex names and diagnostics) and [`staged`]
//! where a step sees the file under its mount directory (`@svc-api/requirements.txt`).

/// A name a stack may give a named context: `[A-Za-z0-9][A-Za-z0-9._-]*` (a local directory
/// context is looked up by it; image-reference names are only for `from` overrides).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `NAME:PATH` as the stack writes it: Some((NAME, PATH)) when the part before the first `:`
/// is a valid context name. `./a:b` and `dir/a:b` are main-context paths.
pub fn parse_user(text: &str) -> Option<(&str, &str)> {
    let (name, path) = text.split_once(':')?;
    valid_name(name).then_some((name, path))
}

/// The plan's form of `path` (clean, relative) in context `name` (None: the main context).
pub fn join(name: Option<&str>, path: &str) -> String {
    match name {
        Some(n) => format!("//{n}/{path}"),
        None => path.to_string(),
    }
}

/// A plan context path as (context name, path in that context); None = the main context.
pub fn split(p: &str) -> (Option<&str>, &str) {
    match p.strip_prefix("//").and_then(|r| r.split_once('/')) {
        Some((name, path)) => (Some(name), path),
        None => (None, p),
    }
}

/// The context a plan path reads (None: the main context).
pub fn context_of(p: &str) -> Option<&str> {
    split(p).0
}

/// A plan context path as the stack writes it: `svc-api:requirements.txt`, or the plain path.
pub fn display(p: &str) -> String {
    match split(p) {
        (Some(n), path) => format!("{n}:{path}"),
        (None, path) => path.to_string(),
    }
}

/// Where a step sees the file under the directory its context files are mounted at:
/// the path itself for the main context, `@NAME/PATH` for a named one (`@NAME` alone for the
/// whole context `.`).
pub fn staged(p: &str) -> String {
    match split(p) {
        (Some(n), ".") => format!("@{n}"),
        (Some(n), path) => format!("@{n}/{path}"),
        (None, path) => path.to_string(),
    }
}

/// The paths of `paths` grouped by context, the main context first, then named ones in order
/// of first appearance; each group keeps its paths' order (and the plan form).
pub fn group(paths: &[String]) -> Vec<(Option<String>, Vec<String>)> {
    let mut out: Vec<(Option<String>, Vec<String>)> = vec![];
    for p in paths {
        let ctx = context_of(p).map(str::to_string);
        match out.iter_mut().find(|(c, _)| *c == ctx) {
            Some((_, v)) => v.push(p.clone()),
            None => out.push((ctx, vec![p.clone()])),
        }
    }
    out.sort_by_key(|(c, _)| c.is_some());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_form_plan_form_and_back() {
        assert_eq!(
            parse_user("svc-api:requirements.txt"),
            Some(("svc-api", "requirements.txt"))
        );
        assert_eq!(
            parse_user("svc_1.x:./libs/a"),
            Some(("svc_1.x", "./libs/a"))
        );
        // Main-context paths with a colon: a directory before it, or `./`.
        assert_eq!(parse_user("./a:b"), None);
        assert_eq!(parse_user("dir/a:b"), None);
        assert_eq!(parse_user("plain.txt"), None);
        assert_eq!(parse_user(":x"), None);
        let p = join(Some("svc-api"), "reqs/base.txt");
        assert_eq!(p, "//svc-api/reqs/base.txt");
        assert_eq!(split(&p), (Some("svc-api"), "reqs/base.txt"));
        assert_eq!(display(&p), "svc-api:reqs/base.txt");
        assert_eq!(staged(&p), "@svc-api/reqs/base.txt");
        assert_eq!(staged(&join(Some("a"), ".")), "@a");
        assert_eq!(split("app/x"), (None, "app/x"));
        assert_eq!(staged("app/x"), "app/x");
        assert_eq!(display("."), ".");
    }

    #[test]
    fn names() {
        for ok in ["svc-api", "a", "A1._-x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "a/b", "a b", "python:3.12"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn grouping_puts_the_main_context_first() {
        let g = group(&[
            "//b/x".to_string(),
            "m1".to_string(),
            "//a/y".to_string(),
            "//b/z".to_string(),
            "m2".to_string(),
        ]);
        assert_eq!(
            g,
            vec![
                (None, vec!["m1".to_string(), "m2".to_string()]),
                (Some("b".into()), vec!["//b/x".into(), "//b/z".into()]),
                (Some("a".into()), vec!["//a/y".into()]),
            ]
        );
    }
}
