//! The build context as the hash sees it: a [`Context`] to read (the CLI gives the real
//! directory, tests an in-memory one), `.dockerignore` matching ([`Ignore`], BuildKit's
//! pattern semantics on top of `globset`) and the deterministic walk of the files one path of
//! the stack reads.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest, Sha256};

/// What is at a path of the context, without following symlinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Missing,
    Dir,
    File { executable: bool },
    Symlink { target: String },
}

/// Read access to a build context. Paths are relative, `/`-separated and clean; `""` is the
/// root.
pub trait Context {
    fn stat(&self, path: &str) -> Result<Entry, String>;
    /// The names of a directory's entries, in any order.
    fn list(&self, path: &str) -> Result<Vec<String>, String>;
    /// The sha256 (lowercase hex) of a file's content.
    fn sha256(&self, path: &str) -> Result<String, String>;
}

/// `sha256` of bytes as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An in-memory context: files (and symlinks) by path; directories are implied.
#[derive(Clone, Debug, Default)]
pub struct MemContext {
    entries: BTreeMap<String, MemEntry>,
}

#[derive(Clone, Debug)]
enum MemEntry {
    File { data: Vec<u8>, executable: bool },
    Symlink(String),
}

impl MemContext {
    pub fn new() -> MemContext {
        MemContext::default()
    }

    /// Add (or replace) a file.
    pub fn file(mut self, path: &str, data: impl Into<Vec<u8>>) -> MemContext {
        self.set(path, data);
        self
    }

    pub fn set(&mut self, path: &str, data: impl Into<Vec<u8>>) {
        self.entries.insert(
            clean(path),
            MemEntry::File {
                data: data.into(),
                executable: false,
            },
        );
    }

    pub fn executable(mut self, path: &str, data: impl Into<Vec<u8>>) -> MemContext {
        self.entries.insert(
            clean(path),
            MemEntry::File {
                data: data.into(),
                executable: true,
            },
        );
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> MemContext {
        self.entries
            .insert(clean(path), MemEntry::Symlink(target.to_string()));
        self
    }

    pub fn remove(&mut self, path: &str) {
        self.entries.remove(&clean(path));
    }
}

impl Context for MemContext {
    fn stat(&self, path: &str) -> Result<Entry, String> {
        match self.entries.get(path) {
            Some(MemEntry::File { executable, .. }) => Ok(Entry::File {
                executable: *executable,
            }),
            Some(MemEntry::Symlink(t)) => Ok(Entry::Symlink { target: t.clone() }),
            None => {
                let prefix = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}/")
                };
                if self.entries.keys().any(|k| k.starts_with(&prefix)) || path.is_empty() {
                    Ok(Entry::Dir)
                } else {
                    Ok(Entry::Missing)
                }
            }
        }
    }

    fn list(&self, path: &str) -> Result<Vec<String>, String> {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let mut out: Vec<String> = self
            .entries
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        out.dedup();
        Ok(out)
    }

    fn sha256(&self, path: &str) -> Result<String, String> {
        match self.entries.get(path) {
            Some(MemEntry::File { data, .. }) => Ok(sha256_hex(data)),
            _ => Err(format!("{path}: not a file")),
        }
    }
}

/// A lexically cleaned context path: no `.`, empty or trailing components; `""` for the root.
/// (`..` is rejected by the planner before we get here; it is dropped with its parent.)
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Patterns like `.dockerignore`'s (and `copy.exclude`'s): Go `filepath.Match` globs where `*`
/// stays within one path component, `**` crosses them, a pattern that matches a directory
/// matches everything under it, `!` re-includes, and the last matching pattern wins (the
/// semantics of moby/patternmatcher, which BuildKit uses).
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    patterns: Vec<(GlobMatcher, bool)>,
}

impl Ignore {
    /// Compile patterns as [`crate::plan::dockerignore_patterns`] returns them.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Ignore, String> {
        let mut out = vec![];
        for p in patterns {
            let p = p.as_ref().trim();
            let (negate, pat) = match p.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, p),
            };
            let pat = clean(pat);
            if pat.is_empty() {
                continue;
            }
            out.push((compile(&pat)?, negate));
        }
        Ok(Ignore { patterns: out })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether some pattern re-includes (`!`): then an excluded directory must still be walked.
    pub fn has_negations(&self) -> bool {
        self.patterns.iter().any(|(_, n)| *n)
    }

    /// Whether `path` (relative, clean) is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let mut matched = false;
        for (glob, negate) in &self.patterns {
            // An exclusion can only change an unmatched path, a negation a matched one.
            if *negate != matched {
                continue;
            }
            let hit = glob.is_match(path) || ancestors(path).any(|a| glob.is_match(a));
            if hit {
                matched = !negate;
            }
        }
        matched
    }
}

/// `a/b/c` → `a`, `a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

fn compile(pat: &str) -> Result<GlobMatcher, String> {
    let build = |p: &str| {
        GlobBuilder::new(p)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map(|g| g.compile_matcher())
    };
    match build(pat) {
        Ok(m) => Ok(m),
        // globset accepts `**` only as a whole path component; patternmatcher anywhere.
        // Elsewhere it is taken as `*` (with parent matching the difference is rarely visible).
        Err(_) if pat.contains("**") => {
            let mut fixed = pat.to_string();
            while fixed.contains("***") {
                fixed = fixed.replace("***", "**");
            }
            let parts: Vec<String> = fixed
                .split('/')
                .map(|c| {
                    if c == "**" {
                        c.to_string()
                    } else {
                        c.replace("**", "*")
                    }
                })
                .collect();
            build(&parts.join("/")).map_err(|e| format!("invalid pattern `{pat}`: {e}"))
        }
        Err(e) => Err(format!("invalid pattern `{pat}`: {e}")),
    }
}

/// One context file that an image reads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileInput {
    File {
        path: String,
        sha256: String,
        executable: bool,
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl FileInput {
    /// The same input with its path as `NAME:PATH`: a file of the named context NAME.
    pub fn in_context(self, name: &str) -> FileInput {
        match self {
            FileInput::File {
                path,
                sha256,
                executable,
            } => FileInput::File {
                path: format!("{name}:{path}"),
                sha256,
                executable,
            },
            FileInput::Symlink { path, target } => FileInput::Symlink {
                path: format!("{name}:{path}"),
                target,
            },
        }
    }

    pub fn path(&self) -> &str {
        match self {
            FileInput::File { path, .. } | FileInput::Symlink { path, .. } => path,
        }
    }
}

/// Whether a copy source is a wildcard pattern (as the converter decides).
pub fn is_wildcard(src: &str) -> bool {
    src.contains(['*', '?', '['])
}

/// The files a step reads at context path `src`: the file itself, or every file under a
/// directory (sorted), or for a wildcard every match and every file under matched
/// directories. `ignore` is the `.dockerignore`; `exclude` the step's own excludes, relative
/// to the source (as BuildKit's copy applies them). Directories themselves are not inputs, so
/// an empty directory that git would not keep does not change a hash.
pub fn files_at(
    ctx: &dyn Context,
    src: &str,
    ignore: &Ignore,
    exclude: &Ignore,
    out: &mut Vec<FileInput>,
) -> Result<(), String> {
    let src = clean(src);
    if is_wildcard(&src) {
        let comps: Vec<&str> = src.split('/').collect();
        let split = comps
            .iter()
            .position(|c| is_wildcard(c))
            .unwrap_or(comps.len());
        let base = comps[..split].join("/");
        let rest = comps[split..].join("/");
        let glob = GlobBuilder::new(&rest)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("copy source `{src}`: {e}"))?
            .compile_matcher();
        let before = out.len();
        match ctx.stat(&base)? {
            Entry::Dir => wildcard_walk(ctx, &base, &base, &glob, ignore, exclude, out)?,
            _ => {
                return Err(format!(
                    "copy source `{src}`: `{}` is not a directory in the context",
                    if base.is_empty() { "." } else { &base }
                ));
            }
        }
        if out.len() == before {
            return Err(format!(
                "copy source `{src}` matches no file in the context"
            ));
        }
        return Ok(());
    }
    if !src.is_empty() && ignore.excluded(&src) && !ignore.has_negations() {
        return Err(format!("`{src}` is excluded by .dockerignore"));
    }
    match ctx.stat(&src)? {
        Entry::Missing => Err(format!(
            "`{}` does not exist in the context",
            if src.is_empty() { "." } else { &src }
        )),
        Entry::File { executable } => {
            if ignore.excluded(&src) {
                return Err(format!("`{src}` is excluded by .dockerignore"));
            }
            out.push(FileInput::File {
                sha256: ctx.sha256(&src)?,
                path: src,
                executable,
            });
            Ok(())
        }
        Entry::Symlink { target } => {
            if ignore.excluded(&src) {
                return Err(format!("`{src}` is excluded by .dockerignore"));
            }
            out.push(FileInput::Symlink { path: src, target });
            Ok(())
        }
        Entry::Dir => walk(ctx, &src, &src, ignore, exclude, out),
    }
}

/// Every file under `dir` (not excluded), in name order. `root` is the copy source that
/// `exclude` patterns are relative to.
fn walk(
    ctx: &dyn Context,
    dir: &str,
    root: &str,
    ignore: &Ignore,
    exclude: &Ignore,
    out: &mut Vec<FileInput>,
) -> Result<(), String> {
    let mut names = ctx.list(dir)?;
    names.sort();
    names.dedup();
    for name in names {
        let path = join(dir, &name);
        let rel = if root.is_empty() {
            path.as_str()
        } else {
            &path[root.len() + 1..]
        };
        let ignored = ignore.excluded(&path);
        let excluded = exclude.excluded(rel);
        match ctx.stat(&path)? {
            Entry::Missing => {}
            Entry::Dir => {
                if (ignored && !ignore.has_negations()) || (excluded && !exclude.has_negations()) {
                    continue;
                }
                walk(ctx, &path, root, ignore, exclude, out)?;
            }
            Entry::File { executable } => {
                if ignored || excluded {
                    continue;
                }
                out.push(FileInput::File {
                    sha256: ctx.sha256(&path)?,
                    path,
                    executable,
                });
            }
            Entry::Symlink { target } => {
                if ignored || excluded {
                    continue;
                }
                out.push(FileInput::Symlink { path, target });
            }
        }
    }
    Ok(())
}

/// Like BuildKit's wildcard copy: walk `base`, match the rest of the pattern against paths
/// relative to it; a matched directory is copied whole.
fn wildcard_walk(
    ctx: &dyn Context,
    dir: &str,
    base: &str,
    glob: &GlobMatcher,
    ignore: &Ignore,
    exclude: &Ignore,
    out: &mut Vec<FileInput>,
) -> Result<(), String> {
    let mut names = ctx.list(dir)?;
    names.sort();
    names.dedup();
    for name in names {
        let path = join(dir, &name);
        let rel = if base.is_empty() {
            path.as_str()
        } else {
            &path[base.len() + 1..]
        };
        let entry = ctx.stat(&path)?;
        if ignore.excluded(&path) && (entry != Entry::Dir || !ignore.has_negations()) {
            continue;
        }
        if glob.is_match(rel) {
            match entry {
                Entry::Dir => walk(ctx, &path, &path, ignore, exclude, out)?,
                Entry::File { executable } => out.push(FileInput::File {
                    sha256: ctx.sha256(&path)?,
                    path,
                    executable,
                }),
                Entry::Symlink { target } => out.push(FileInput::Symlink { path, target }),
                Entry::Missing => {}
            }
        } else if entry == Entry::Dir {
            wildcard_walk(ctx, &path, base, glob, ignore, exclude, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(ctx: &MemContext, src: &str, ignore: &[&str], exclude: &[&str]) -> Vec<String> {
        let mut out = vec![];
        files_at(
            ctx,
            src,
            &Ignore::new(ignore).unwrap(),
            &Ignore::new(exclude).unwrap(),
            &mut out,
        )
        .unwrap();
        out.iter().map(|f| f.path().to_string()).collect()
    }

    fn ctx() -> MemContext {
        MemContext::new()
            .file("apps/api/__init__.py", "")
            .file("apps/api/main.py", "print()")
            .file("apps/api/__pycache__/main.cpython-312.pyc", "x")
            .file("apps/api/static/a.css", "a")
            .file("apps/api/keep.pyc", "k")
            .file("apps/worker/w.py", "w")
            .file("secrets.txt", "s")
            .file("README.md", "r")
            .symlink("apps/api/link", "../worker")
    }

    #[test]
    fn dockerignore_semantics() {
        let i = Ignore::new(&["**/__pycache__", "*.md", "!keep.md", "secrets.txt"]).unwrap();
        assert!(i.excluded("README.md"));
        assert!(!i.excluded("keep.md"));
        assert!(!i.excluded("docs/README.md"), "`*` stays in one component");
        assert!(i.excluded("apps/api/__pycache__"));
        assert!(i.excluded("apps/api/__pycache__/x.pyc"), "parent matches");
        assert!(i.excluded("secrets.txt"));
        assert!(!i.excluded("apps/secrets.txt"), "patterns are anchored");
        let i = Ignore::new(&["apps", "!apps/api"]).unwrap();
        assert!(i.excluded("apps/worker/w.py"));
        assert!(!i.excluded("apps/api/main.py"));
        // The last matching pattern wins.
        let i = Ignore::new(&["!a.txt", "*.txt"]).unwrap();
        assert!(i.excluded("a.txt"));
        // `**` inside a component is tolerated.
        let i = Ignore::new(&["**.pyc"]).unwrap();
        assert!(i.excluded("x.pyc"));
    }

    #[test]
    fn walks_directories_in_order_honouring_ignores() {
        let c = ctx();
        assert_eq!(
            paths(&c, "apps/api", &["**/__pycache__", "**/*.pyc"], &[]),
            [
                "apps/api/__init__.py",
                "apps/api/link",
                "apps/api/main.py",
                "apps/api/static/a.css"
            ]
        );
        // A re-included file inside an excluded pattern.
        assert_eq!(
            paths(
                &c,
                "apps/api/",
                &["**/*.pyc", "!apps/api/keep.pyc"],
                &["static", "link"]
            ),
            [
                "apps/api/__init__.py",
                "apps/api/keep.pyc",
                "apps/api/main.py"
            ]
        );
        // The whole context.
        let all = paths(&c, ".", &["secrets.txt", "apps/api"], &["*.md"]);
        assert_eq!(all, ["apps/worker/w.py"]);
    }

    #[test]
    fn files_wildcards_and_errors() {
        let c = ctx();
        assert_eq!(paths(&c, "./README.md", &[], &[]), ["README.md"]);
        assert_eq!(paths(&c, "apps/*/w*.py", &[], &[]), ["apps/worker/w.py"]);
        assert_eq!(
            paths(&c, "apps/w*", &[], &[]),
            ["apps/worker/w.py"],
            "a matched directory is taken whole"
        );
        let mut out = vec![];
        let none = Ignore::default();
        let e = files_at(&c, "nope.txt", &none, &none, &mut out).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let ig = Ignore::new(&["secrets.txt"]).unwrap();
        let e = files_at(&c, "secrets.txt", &ig, &none, &mut out).unwrap_err();
        assert!(e.contains(".dockerignore"), "{e}");
        let e = files_at(&c, "apps/*.nothing", &none, &none, &mut out).unwrap_err();
        assert!(e.contains("matches no file"), "{e}");
    }

    #[test]
    fn mem_context() {
        let c = ctx();
        assert_eq!(c.stat("").unwrap(), Entry::Dir);
        assert_eq!(c.stat("apps").unwrap(), Entry::Dir);
        assert_eq!(c.stat("app").unwrap(), Entry::Missing);
        assert_eq!(
            c.stat("secrets.txt").unwrap(),
            Entry::File { executable: false }
        );
        assert_eq!(c.list("apps").unwrap(), ["api", "worker"]);
        assert_eq!(c.sha256("secrets.txt").unwrap(), sha256_hex(b"s"));
        assert_eq!(clean("./a//b/./c/"), "a/b/c");
        assert_eq!(clean("."), "");
    }
}
