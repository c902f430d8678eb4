//! Value parsers with no planner state: `.dockerignore` patterns, image references, ports
//! and durations.

/// Patterns of a `.dockerignore` file, as BuildKit's `local.excludepatterns` expects them:
/// comments and blank lines dropped, paths cleaned, a leading `/` removed, `!` kept.
pub fn dockerignore_patterns(text: &str) -> Vec<String> {
    let mut out = vec![];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (neg, pat) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let cleaned = clean_path(pat);
        if cleaned.is_empty() {
            continue;
        }
        out.push(if neg { format!("!{cleaned}") } else { cleaned });
    }
    out
}

/// Lexical path cleaning (like Go's `path.Clean`), relative, without a leading `/`.
pub(crate) fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// `python:3.12-slim` → `docker.io/library/python:3.12-slim` (tag `latest` when none).
pub fn normalize_image_ref(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("empty reference".into());
    }
    let r = oci_spec::distribution::Reference::try_from(s).map_err(|e| e.to_string())?;
    let mut out = format!("{}/{}", r.registry(), r.repository());
    match (r.tag(), r.digest()) {
        (Some(t), Some(d)) => out.push_str(&format!(":{t}@{d}")),
        (Some(t), None) => out.push_str(&format!(":{t}")),
        (None, Some(d)) => out.push_str(&format!("@{d}")),
        (None, None) => out.push_str(":latest"),
    }
    Ok(out)
}

pub(crate) fn normalize_port(s: &str) -> Result<String, String> {
    let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let n: u16 = num.parse().map_err(|_| format!("invalid port `{s}`"))?;
    if n == 0 {
        return Err(format!("invalid port `{s}`"));
    }
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol `{proto}` in port `{s}`"));
    }
    Ok(format!("{n}/{proto}"))
}

/// Go-style durations: `30s`, `1m30s`, `500ms`, `2h`. Returns nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let err = || format!("invalid duration `{s}`");
    if s.is_empty() {
        return Err(err());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}
