//! Requirements files that include others (`-r base.txt`, `-c constraints.txt`,
//! `--requirement`, `--constraint`, nested, relative to the including file).
//!
//! The planner is pure, so the edge (the CLI, the frontend) reads the files and this module
//! only parses them: [`gather`] walks the includes of the files read so far and says which
//! files it still needs; the edge reads those and calls it again until nothing is missing
//! (at most [`MAX_INCLUDE_ROUNDS`] rounds; a file is visited once, so cycles end). The result,
//! [`RequirementIncludes`], travels in `BuildOptions`: the planner stages the included files
//! with the pip step (so the context check and the step's files include them) and turns an
//! include that is not in the context into an error at the stack line that names the file.

use std::collections::{BTreeMap, BTreeSet};

/// The edge stops asking for more files after this many rounds (an include chain deeper
/// than this is not followed further).
pub const MAX_INCLUDE_ROUNDS: usize = 32;

/// At most this many files are read for one build.
pub const MAX_INCLUDE_FILES: usize = 512;

/// One `-r`/`-c` line of a requirements file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    /// 1-based line of the including file.
    pub line: usize,
    /// The option and its argument as written (`-r base.txt`).
    pub text: String,
    /// The included file as a context path, or why it cannot be one.
    pub path: Result<String, String>,
}

/// An include that cannot be staged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncludeError {
    /// The including file (a context path).
    pub file: String,
    pub line: usize,
    /// `-r base.txt`
    pub text: String,
    pub message: String,
}

/// What the edge found: for every requirements file read, the files it includes, directly or
/// not; and the includes that are missing, by the file that names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequirementIncludes {
    pub closure: BTreeMap<String, BTreeSet<String>>,
    pub errors: BTreeMap<String, Vec<IncludeError>>,
}

impl RequirementIncludes {
    /// The files `root` includes (not `root` itself), and the errors of `root` and of every
    /// file it includes.
    pub fn of(&self, root: &str) -> (Vec<String>, Vec<IncludeError>) {
        let files: Vec<String> = self
            .closure
            .get(root)
            .map(|s| s.iter().filter(|f| *f != root).cloned().collect())
            .unwrap_or_default();
        let errors = std::iter::once(root)
            .chain(files.iter().map(String::as_str))
            .flat_map(|f| self.errors.get(f).into_iter().flatten().cloned())
            .collect();
        (files, errors)
    }
}

/// The `-r`/`-c` includes of a requirements file at context path `path` (comments and `\`
/// continuations handled; URLs, which pip fetches itself, left out).
pub fn includes(path: &str, text: &str) -> Vec<Include> {
    // An include is in the context of the file that includes it (a named one's too).
    let (context, path) = super::ctxpath::split(path);
    let dir = match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    };
    let mut out = vec![];
    for (start, full) in logical_lines(text) {
        let mut words = full.split_whitespace();
        while let Some(w) = words.next() {
            let (opt, arg) = match w {
                "-r" | "--requirement" | "-c" | "--constraint" => (w, words.next()),
                _ => {
                    if let Some(v) = w
                        .strip_prefix("--requirement=")
                        .or_else(|| w.strip_prefix("--constraint="))
                    {
                        (w.split('=').next().unwrap_or(w), Some(v))
                    } else if let Some(v) = w.strip_prefix("-r").or_else(|| w.strip_prefix("-c")) {
                        if v.is_empty() || v.starts_with('-') {
                            continue;
                        }
                        (&w[..2], Some(v.trim_start_matches('=')))
                    } else {
                        continue;
                    }
                }
            };
            let Some(arg) = arg else { continue };
            if arg.contains("://") {
                continue;
            }
            out.push(Include {
                line: start,
                text: format!("{opt} {arg}"),
                path: resolve(dir, arg).map(|p| super::ctxpath::join(context, &p)),
            });
        }
    }
    out
}

/// `arg` relative to the directory `dir` of the including file, as a clean context path.
fn resolve(dir: &str, arg: &str) -> Result<String, String> {
    let arg = arg.strip_prefix("file:").unwrap_or(arg);
    if arg.starts_with('/') {
        return Err("an absolute path is not in the build context".into());
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for c in arg.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("it points outside the build context".into());
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err("it names no file".into());
    }
    Ok(parts.join("/"))
}

/// The logical lines of a requirements file, as pip reads them: `#` comments (at the start
/// or after whitespace) removed and `\` continuations joined; each with the number of its
/// first physical line (1-based). Every reader of requirements text goes through this.
pub fn logical_lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    let mut pending = String::new();
    let mut start = 0;
    let mut lines = text.lines().enumerate();
    std::iter::from_fn(move || {
        for (i, raw) in lines.by_ref() {
            if pending.is_empty() {
                start = i + 1;
            }
            let line = strip_comment(raw);
            if let Some(rest) = line.trim_end().strip_suffix('\\') {
                pending.push_str(rest);
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            return Some((start, std::mem::take(&mut pending)));
        }
        // A file ending in `\`: what is pending is the last line.
        (!pending.is_empty()).then(|| (start, std::mem::take(&mut pending)))
    })
}

fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// Walk the includes of `roots` through `files` (a context path → its text, or None when it
/// is not in the context). `Err` lists the files still to read; `Ok` is the whole answer. A
/// root that is missing is not an include error (the context check reports it).
pub fn gather(
    roots: &[String],
    files: &BTreeMap<String, Option<String>>,
) -> Result<RequirementIncludes, Vec<String>> {
    let mut need = BTreeSet::new();
    let mut direct: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut errors: BTreeMap<String, Vec<IncludeError>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut queue: Vec<String> = roots.to_vec();
    while let Some(f) = queue.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        let Some(entry) = files.get(&f) else {
            need.insert(f);
            continue;
        };
        let Some(text) = entry else { continue };
        for inc in includes(&f, text) {
            let err = |message: String| IncludeError {
                file: f.clone(),
                line: inc.line,
                text: inc.text.clone(),
                message,
            };
            match &inc.path {
                Err(why) => errors.entry(f.clone()).or_default().push(err(why.clone())),
                Ok(p) => match files.get(p) {
                    Some(None) => errors.entry(f.clone()).or_default().push(err(format!(
                        "`{}` is not in the build context",
                        super::ctxpath::display(p)
                    ))),
                    _ => {
                        direct.entry(f.clone()).or_default().push(p.clone());
                        queue.push(p.clone());
                    }
                },
            }
        }
    }
    if !need.is_empty() && files.len() < MAX_INCLUDE_FILES {
        return Err(need.into_iter().collect());
    }
    let mut closure = BTreeMap::new();
    for f in files.keys().filter(|f| seen.contains(*f)) {
        let mut all = BTreeSet::new();
        let mut stack = vec![f.clone()];
        while let Some(x) = stack.pop() {
            for d in direct.get(&x).into_iter().flatten() {
                if all.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        closure.insert(f.clone(), all);
    }
    Ok(RequirementIncludes { closure, errors })
}

/// [`gather`] with a synchronous reader (the CLI reads the context directory).
pub fn gather_with(
    roots: &[String],
    mut read: impl FnMut(&str) -> Option<String>,
) -> RequirementIncludes {
    let mut files = BTreeMap::new();
    for _ in 0..MAX_INCLUDE_ROUNDS {
        match gather(roots, &files) {
            Ok(r) => return r,
            Err(need) => {
                for p in need {
                    let text = read(&p);
                    files.insert(p, text);
                }
            }
        }
    }
    // Too deep: what was read so far (unread files count as present).
    let mut partial = files.clone();
    if let Err(need) = gather(roots, &files) {
        for p in need {
            partial.insert(p, Some(String::new()));
        }
    }
    gather(roots, &partial).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_lines_join_continuations_and_drop_comments() {
        let text =
            "a==1 # pinned\n#x\nb \\\n  >=2 \\\n  ; python_version>'3' \nc#not-a-comment\nd \\";
        let got: Vec<(usize, String)> = logical_lines(text)
            .map(|(n, l)| (n, l.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect();
        assert_eq!(
            got,
            [
                (1, "a==1".to_string()),
                (2, String::new()),
                (3, "b >=2 ; python_version>'3'".to_string()),
                (6, "c#not-a-comment".to_string()),
                (7, "d".to_string()),
            ]
        );
    }

    #[test]
    fn options_in_every_spelling_relative_to_the_including_file() {
        let text = "flask\n-r base.txt\n# -r commented.txt\n--requirement=../common/x.txt\n-c constraints.txt \\\n  # cont\n--constraint ./sub/c.txt\n-rtight.txt\n-e .\n-r https://example.org/r.txt\n";
        let inc = includes("app/requirements.txt", text);
        let got: Vec<(usize, &str, Result<&str, &str>)> = inc
            .iter()
            .map(|i| {
                (
                    i.line,
                    i.text.as_str(),
                    i.path.as_deref().map_err(|e| e.as_str()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "-r base.txt", Ok("app/base.txt")),
                (4, "--requirement ../common/x.txt", Ok("common/x.txt")),
                (5, "-c constraints.txt", Ok("app/constraints.txt")),
                (7, "--constraint ./sub/c.txt", Ok("app/sub/c.txt")),
                (8, "-r tight.txt", Ok("app/tight.txt")),
            ]
        );
        assert!(includes("r.txt", "-r ../x.txt\n")[0].path.is_err());
        assert!(includes("r.txt", "-r /etc/x.txt\n")[0].path.is_err());
    }

    #[test]
    fn includes_stay_in_the_named_context_of_the_including_file() {
        let inc = includes(
            "//svc-api/reqs/r.txt",
            "-r base.txt\n-c ../c.txt\n-r ../../x.txt\n",
        );
        assert_eq!(inc[0].path.as_deref(), Ok("//svc-api/reqs/base.txt"));
        assert_eq!(inc[1].path.as_deref(), Ok("//svc-api/c.txt"));
        assert!(inc[2].path.is_err(), "`..` cannot leave the named context");
        let r = gather_with(&["//svc-api/r.txt".into()], |p| match p {
            "//svc-api/r.txt" => Some("-r gone.txt\n".into()),
            _ => None,
        });
        let (_, errs) = r.of("//svc-api/r.txt");
        assert!(
            errs[0]
                .message
                .contains("`svc-api:gone.txt` is not in the build context"),
            "{errs:?}"
        );
    }

    #[test]
    fn nested_includes_cycles_and_missing_files() {
        let files: BTreeMap<String, String> = [
            ("req.txt", "-r base.txt\n-c c.txt\nflask\n"),
            ("base.txt", "-r req.txt\n-r deep/more.txt\n"),
            ("deep/more.txt", "-r ../gone.txt\nx\n"),
            ("c.txt", "flask<4\n"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut reads = 0;
        let r = gather_with(&["req.txt".into()], |p| {
            reads += 1;
            files.get(p).cloned()
        });
        assert_eq!(reads, 5, "each file read once, the cycle ends");
        let (inc, errs) = r.of("req.txt");
        assert_eq!(inc, vec!["base.txt", "c.txt", "deep/more.txt"]);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].file, "deep/more.txt");
        assert_eq!(errs[0].line, 1);
        assert_eq!(errs[0].text, "-r ../gone.txt");
        assert!(
            errs[0]
                .message
                .contains("`gone.txt` is not in the build context")
        );
        // A missing root is the context check's business.
        let r = gather_with(&["nope.txt".into()], |_| None);
        assert!(r.errors.is_empty());
    }
}
