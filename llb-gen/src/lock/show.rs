//! `llb-gen lock show`: read a lock, select for a target, group, and print it all as text.

use super::group::{self, GroupKind, Rules};
use super::select::{self, Choice, FileKind};
use super::target::Target;
use super::{LockFormat, read};
use crate::source::SourceFile;

/// What `lock show` was asked for.
#[derive(Clone, Debug, Default)]
pub struct ShowOptions {
    pub platform: String,
    pub python: String,
    pub libc: String,
    pub choice: Choice,
}

/// The report, or every diagnostic as `file:line:col: error: key: message` lines.
pub fn show(file: &SourceFile, opts: &ShowOptions) -> Result<String, String> {
    let render = |ds: Vec<crate::diag::Diagnostic>| {
        ds.iter()
            .map(|d| d.one_line(file))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let target = Target::parse(&opts.platform, &opts.python, &opts.libc)?;
    let lock = read(file).map_err(render)?;
    let sel = select::select(&lock, &target, &opts.choice).map_err(render)?;
    let format = match lock.format {
        LockFormat::Uv => "uv",
        LockFormat::Pylock => "PEP 751",
        LockFormat::Requirements => "hashed requirements",
    };
    let mut out = format!("lock: {} ({format}), target {target}\n", file.name);
    if !sel.local.is_empty() {
        out.push_str(&format!(
            "local (not installed from the lock): {}\n",
            sel.local.join(", ")
        ));
    }
    for inc in &lock.includes {
        let what = if inc.constraint { "-c" } else { "-r" };
        let note = if inc.constraint {
            "ignored: the lock is pinned"
        } else {
            "a lock must be one file: an error in a build"
        };
        out.push_str(&format!("include ({note}): {what} {}\n", inc.path));
    }
    if !sel.pinned.is_empty() {
        out.push_str(&format!(
            "pinned: {} (no URLs: an index lookup maps each to a file)\n",
            sel.pinned.len()
        ));
        for p in &sel.pinned {
            out.push_str(&format!(
                "  {}=={}  {} sha256 hash(es)\n",
                p.name,
                p.version,
                p.hashes.len()
            ));
        }
    }
    if lock.format == LockFormat::Requirements {
        return Ok(out);
    }
    let wheels = sel
        .files
        .iter()
        .filter(|f| matches!(f.kind, FileKind::Wheel { .. }))
        .count();
    let pure = sel.files.iter().filter(|f| f.pure).count();
    let sdists = sel.files.len() - wheels;
    let total: u64 = sel.files.iter().filter_map(|f| f.size).sum();
    out.push_str(&format!(
        "files: {} ({wheels} wheel(s), {pure} pure; {sdists} sdist(s) to build), {}\n",
        sel.files.len(),
        human(total)
    ));
    for f in &sel.files {
        let kind = match f.kind {
            FileKind::Wheel { .. } if f.pure => "wheel, pure",
            FileKind::Wheel { .. } => "wheel",
            FileKind::Sdist => "SDIST (built on the target)",
        };
        out.push_str(&format!(
            "  {} {}  {}  {}  {kind}  sha256:{}\n    {}\n",
            f.name,
            f.version,
            f.filename,
            f.size.map(human).unwrap_or_else(|| "size ?".into()),
            &f.sha256[..12],
            f.url
        ));
    }
    let rules = Rules::default();
    let groups = group::group(&sel.files, &rules);
    out.push_str(&format!(
        "groups: {} (at most {})\n",
        groups.len(),
        rules.max_groups()
    ));
    for g in &groups {
        let kind = match g.kind {
            GroupKind::Family => "family",
            GroupKind::Large => "large",
            GroupKind::Bucket => "bucket",
        };
        let names: Vec<&str> = g.files.iter().map(|f| f.name.as_str()).collect();
        let partial = if g.size_partial { "+" } else { "" };
        out.push_str(&format!(
            "  {} ({kind}, {} file(s), {}{partial}): {}\n",
            g.id,
            g.files.len(),
            human(g.size),
            names.join(", ")
        ));
    }
    Ok(out)
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
