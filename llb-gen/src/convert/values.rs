//! Small pure helpers: copy destinations, RFC 3339 timestamps.

/// Where a copy lands: an explicit absolute dest, a dest relative to the workdir, or the
/// source path under the workdir.
pub(super) fn resolve_dest(workdir: &str, src: &str, dest: Option<&str>) -> String {
    let wd = if workdir.is_empty() { "/" } else { workdir };
    let join = |rel: &str| -> String {
        let rel = rel.trim_start_matches("./");
        if rel.is_empty() || rel == "." {
            return format!("{}/", wd.trim_end_matches('/'));
        }
        format!("{}/{}", wd.trim_end_matches('/'), rel)
    };
    match dest {
        Some(d) if d.starts_with('/') => d.to_string(),
        Some(d) => join(d),
        None if src == "." => join("."),
        // `scripts/*.sh` lands in `<workdir>/scripts/`.
        None if src.contains(['*', '?', '[']) => match src.rsplit_once('/') {
            Some((dir, _)) => format!("{}/", join(dir).trim_end_matches('/')),
            None => join("."),
        },
        None => join(src.trim_end_matches('/')),
    }
}

/// The FileOp source of an optional copy (`optional = true`), relative to the context root:
/// `src` with its first path component made a pattern that matches only itself
/// (`conf/local.toml` → `con[f]/local.toml`), unless it is one already. BuildKit resolves a
/// wildcard source below the directory before its first pattern component, and some
/// versions fail when that directory is missing (`"/conf": not found` while computing the
/// cache key) instead of copying nothing; with the pattern in the first component that
/// directory is the root, which always exists.
pub(super) fn optional_src(src: &str) -> String {
    let src = src.trim_start_matches("./");
    let (first, rest) = match src.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (src, None),
    };
    let first = if first.contains(['*', '?', '[']) {
        first.to_string()
    } else {
        match first.char_indices().last() {
            Some((i, c)) => {
                let esc = if matches!(c, ']' | '\\' | '^' | '-' | '!') {
                    "\\"
                } else {
                    ""
                };
                format!("{}[{esc}{c}]", &first[..i])
            }
            None => first.to_string(),
        }
    };
    match rest {
        Some(r) => format!("{first}/{r}"),
        None => first,
    }
}

/// Where an artifact copied from another image lands: an explicit dest as for context copies
/// (absolute, or relative to the workdir); by default where it was, a pattern's matches in
/// the pattern's directory.
pub(super) fn artifact_dest(workdir: &str, src: &str, dest: Option<&str>) -> String {
    match dest {
        Some(d) => resolve_dest(workdir, src, Some(d)),
        None if src.contains(['*', '?', '[']) => match src.rsplit_once('/') {
            Some((dir, _)) => format!("{}/", dir.trim_end_matches('/')),
            None => "/".into(),
        },
        None => match src.trim_end_matches('/') {
            "" => "/".into(),
            s => s.to_string(),
        },
    }
}

/// RFC 3339 in UTC for a unix timestamp (for `SOURCE_DATE_EPOCH`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}
