//! Index lookups for hash-pinned requirements: which simple-API pages (PEP 503 HTML, PEP 691
//! JSON) the edge fetches, how a page is read, and how a pin's hashes become files with URLs.
//!
//! A requirements file (`pip-compile --generate-hashes`, `uv export`) pins `name==version` and
//! the sha256 of every file it accepts, but not where the files are. The edge fetches the
//! project page of every pinned package on every index the file names (`--index-url`,
//! `--extra-index-url`; PyPI when it names none) and [`fill`] keeps the files whose sha256 is
//! one of the pin's: a file is accepted by its content, so looking on several indexes cannot
//! substitute one. The package then has wheels (and an sdist) like a pylock package, and the
//! rest of the lock path (selection for the target, groups, checksummed HTTP sources) is the same.

use std::collections::BTreeMap;

use url::Url;

use super::{Dist, Lock, LockFormat, Package};

/// Where pip looks when a requirements file names no index.
pub const PYPI_SIMPLE: &str = "https://pypi.org/simple/";

/// The most files one project page may list (PyPI's largest projects list a few thousand).
const MAX_FILES: usize = 100_000;

/// The indexes a requirements file looks on, in order: its own, else PyPI.
pub fn indexes(lock: &Lock) -> Vec<String> {
    if lock.index_urls.is_empty() {
        vec![PYPI_SIMPLE.to_string()]
    } else {
        lock.index_urls.clone()
    }
}

/// The project page of `name` (normalized) on `index`: `INDEX/NAME/`.
pub fn page_url(index: &str, name: &str) -> String {
    format!("{}/{name}/", index.trim_end_matches('/'))
}

/// Whether `p` needs a lookup: pinned by hash, with no file of its own.
pub fn needs_lookup(p: &Package) -> bool {
    !p.hashes.is_empty() && p.wheels.is_empty() && p.sdist.is_none()
}

/// The pages a requirements lock needs (none for other formats), each once, in file order.
pub fn pages(lock: &Lock) -> Vec<String> {
    if lock.format != LockFormat::Requirements {
        return vec![];
    }
    let idx = indexes(lock);
    let mut out: Vec<String> = vec![];
    for p in lock.packages.iter().filter(|p| needs_lookup(p)) {
        for i in &idx {
            let u = page_url(i, &p.name);
            if !out.contains(&u) {
                out.push(u);
            }
        }
    }
    out
}

/// One file a project page lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    pub filename: String,
    /// Absolute, without the fragment.
    pub url: String,
    /// Lower-case hex, from the URL's `#sha256=` (HTML) or `hashes.sha256` (JSON).
    pub sha256: Option<String>,
}

/// The files a project page lists. `page_url` resolves relative links. A PEP 691 JSON page
/// (it starts with `{`) is read as JSON, anything else as PEP 503 HTML (only `<a>` tags).
pub fn parse(text: &str, page_url: &str) -> Result<Vec<IndexFile>, String> {
    let base = Url::parse(page_url).map_err(|e| format!("`{page_url}` is not a URL: {e}"))?;
    let files = if text.trim_start().starts_with('{') {
        parse_json(text, &base)?
    } else {
        parse_html(text, &base)?
    };
    if files.len() > MAX_FILES {
        return Err(format!(
            "the page lists {} files (at most {MAX_FILES})",
            files.len()
        ));
    }
    Ok(files)
}

fn parse_json(text: &str, base: &Url) -> Result<Vec<IndexFile>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a PEP 691 JSON page: {e}"))?;
    let files = v
        .get("files")
        .and_then(|f| f.as_array())
        .ok_or("not a PEP 691 JSON page: no `files` list")?;
    let mut out = vec![];
    for f in files {
        let (Some(name), Some(href)) = (
            f.get("filename").and_then(|x| x.as_str()),
            f.get("url").and_then(|x| x.as_str()),
        ) else {
            continue;
        };
        let Some((url, frag_sha)) = absolute(base, href) else {
            continue;
        };
        let sha = f
            .get("hashes")
            .and_then(|h| h.get("sha256"))
            .and_then(|x| x.as_str())
            .and_then(sha256_hex)
            .or(frag_sha);
        out.push(IndexFile {
            filename: name.to_string(),
            url,
            sha256: sha,
        });
    }
    Ok(out)
}

fn parse_html(text: &str, base: &Url) -> Result<Vec<IndexFile>, String> {
    let mut out = vec![];
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<a") {
        let start = at + i + 2;
        // `<a` followed by whitespace or `>` (not `<abbr>`).
        if !lower[start..].starts_with(|c: char| c.is_ascii_whitespace() || c == '>') {
            at = start;
            continue;
        }
        let Some(end) = tag_end(&text[start..]) else {
            break;
        };
        let attrs = attributes(&text[start..start + end]);
        let body_start = start + end + 1;
        // The anchor's text ends at the next tag (`</a>`): searching for the next `<` keeps
        // the whole scan linear, however many anchors are never closed.
        let body_end = lower[body_start..]
            .find('<')
            .map_or(text.len(), |j| body_start + j);
        at = body_end;
        let Some(href) = attrs.get("href") else {
            continue;
        };
        let Some((url, sha)) = absolute(base, href) else {
            continue;
        };
        let mut filename = decode_entities(text[body_start..body_end].trim());
        if filename.is_empty() || filename.contains('<') {
            filename = super::url_file_name(&url);
        }
        out.push(IndexFile {
            filename,
            url,
            sha256: sha,
        });
    }
    Ok(out)
}

/// The offset of the `>` that ends a tag whose attributes start at `s` (quotes respected).
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// A tag's attributes (names lower-cased, values entity-decoded).
fn attributes(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let n0 = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let name = s[n0..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let v0 = i + 1;
                i = v0;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = s[v0..i.min(b.len())].to_string();
                i += 1;
            } else {
                let v0 = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s[v0..i].to_string();
            }
        }
        if !name.is_empty() {
            out.entry(name).or_insert_with(|| decode_entities(&value));
        }
    }
    out
}

/// HTML character references: the five named ones pages use and numeric ones.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => ent
                    .strip_prefix("#x")
                    .or_else(|| ent.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `href` resolved against the page, without its fragment, and the fragment's sha256.
/// None for a link that is not http(s).
fn absolute(base: &Url, href: &str) -> Option<(String, Option<String>)> {
    let mut u = base.join(href.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let sha = u.fragment().and_then(|f| {
        f.split('&')
            .find_map(|kv| kv.strip_prefix("sha256="))
            .and_then(sha256_hex)
    });
    u.set_fragment(None);
    Some((u.to_string(), sha))
}

fn sha256_hex(s: &str) -> Option<String> {
    super::uv::valid_sha256(s).then(|| s.to_ascii_lowercase())
}

/// What became of one pinned package's lookup when none of its hashes matched a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missed {
    /// The page was read; none of its files has one of the pin's hashes.
    NoMatch { pages: Vec<String> },
    /// A page could not be read (not found, not reachable, not a simple-API page).
    Unreadable { page: String, why: String },
    /// The edge did not look the page up (the CLI is offline).
    NotLookedUp { page: String },
}

/// Fill every pinned requirement of `lock` with the files its hashes name on the pages the
/// edge read (`pages`: page URL → text, None when it could not be read). Wheels become the
/// package's wheels, the first sdist its sdist. Packages left without a file are returned with
/// why, by package index; the caller reports those the target installs.
pub fn fill(lock: &mut Lock, pages: &BTreeMap<String, Option<String>>) -> BTreeMap<usize, Missed> {
    let mut missed = BTreeMap::new();
    if lock.format != LockFormat::Requirements {
        return missed;
    }
    let idx = indexes(lock);
    for (n, p) in lock.packages.iter_mut().enumerate() {
        if !needs_lookup(p) {
            continue;
        }
        let mut found: Vec<IndexFile> = vec![];
        let mut problem = None;
        let mut read = vec![];
        for i in &idx {
            let u = page_url(i, &p.name);
            let files = match pages.get(&u) {
                None => {
                    problem.get_or_insert(Missed::NotLookedUp { page: u.clone() });
                    continue;
                }
                Some(None) => {
                    problem.get_or_insert(Missed::Unreadable {
                        page: u.clone(),
                        why: "it could not be fetched (not found or not reachable)".into(),
                    });
                    continue;
                }
                Some(Some(text)) => parse(text, &u),
            };
            match files {
                Ok(files) => {
                    read.push(u.clone());
                    for f in files {
                        let hit = f.sha256.as_ref().is_some_and(|h| p.hashes.contains(h));
                        if hit && !found.iter().any(|x| x.sha256 == f.sha256) {
                            found.push(f);
                        }
                    }
                }
                Err(why) => {
                    problem.get_or_insert(Missed::Unreadable {
                        page: u.clone(),
                        why,
                    });
                }
            }
        }
        for f in found {
            let dist = Dist {
                filename: f.filename.clone(),
                url: Some(f.url),
                sha256: f.sha256,
                size: None,
                upload_time: None,
                span: p.span,
                key: p.key.clone(),
            };
            if f.filename.ends_with(".whl") {
                p.wheels.push(dist);
            } else if p.sdist.is_none() && is_archive(&f.filename) {
                p.sdist = Some(dist);
            }
        }
        if p.wheels.is_empty() && p.sdist.is_none() {
            missed.insert(
                n,
                match problem {
                    Some(m) if read.is_empty() => m,
                    _ => Missed::NoMatch { pages: read },
                },
            );
        }
    }
    missed
}

fn is_archive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".tar.gz") || n.ends_with(".zip")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const H3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

    fn req(text: &str) -> Lock {
        super::super::requirements::read(&SourceFile::new("requirements.txt", text)).unwrap()
    }

    #[test]
    fn html_pages_resolve_relative_links_entities_and_fragments() {
        let page = format!(
            "<!DOCTYPE html><html><body>\n<h1>Links for six</h1>\n\
             <A HREF=\"../../packages/six-1.16.0-py2.py3-none-any.whl#sha256={H1}\" data-requires-python=\"&gt;=2.7\">six-1.16.0-py2.py3-none-any.whl</A><br/>\n\
             <a href='/files/six-1.16.0.tar.gz#md5=abc&amp;sha256={H2}'>six-1.16.0.tar.gz</a>\n\
             <abbr>not a link</abbr><a name=\"x\">no href</a>\n\
             <a href=\"https://files.example/p/six%2B1.whl\"></a>\n</body></html>"
        );
        let files = parse(&page, "https://idx.example/simple/six/").unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(
            files[0].url,
            "https://idx.example/packages/six-1.16.0-py2.py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some(H1));
        assert_eq!(files[1].url, "https://idx.example/files/six-1.16.0.tar.gz");
        assert_eq!(files[1].sha256.as_deref(), Some(H2));
        assert_eq!(files[2].filename, "six+1.whl");
        assert_eq!(files[2].sha256, None);
    }

    #[test]
    fn json_pages_take_the_hashes_object() {
        let page = format!(
            r#"{{"meta":{{"api-version":"1.1"}},"name":"six","files":[
              {{"filename":"six-1.16.0-py2.py3-none-any.whl","url":"/p/six.whl","hashes":{{"sha256":"{}"}}}},
              {{"filename":"odd","url":"file:///etc/passwd","hashes":{{}}}}]}}"#,
            H1.to_uppercase()
        );
        let files = parse(&page, "http://127.0.0.1:9/simple/six/").unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].url, "http://127.0.0.1:9/p/six.whl");
        assert_eq!(files[0].sha256.as_deref(), Some(H1));
        assert!(parse("{\"x\":1}", "http://h/simple/six/").is_err());
        assert!(parse("<a href=x>", "not a url").is_err());
    }

    #[test]
    fn pins_take_the_files_their_hashes_name_on_every_index() {
        let mut lock = req(&format!(
            "--index-url http://a/simple\n--extra-index-url http://b/simple/\n\
             six==1.16.0 --hash=sha256:{H1} --hash=sha256:{H2}\n\
             attrs==23.1.0 --hash=sha256:{H3}\n"
        ));
        assert_eq!(
            pages(&lock),
            vec![
                "http://a/simple/six/",
                "http://b/simple/six/",
                "http://a/simple/attrs/",
                "http://b/simple/attrs/"
            ]
        );
        let mut got = BTreeMap::new();
        got.insert(
            "http://a/simple/six/".to_string(),
            Some(format!(
                "<a href=\"/f/six-1.16.0-py2.py3-none-any.whl#sha256={H1}\">six-1.16.0-py2.py3-none-any.whl</a>\
                 <a href=\"/f/six-1.16.0-evil.whl#sha256={H3}\">six-1.16.0-evil.whl</a>"
            )),
        );
        got.insert(
            "http://b/simple/six/".to_string(),
            Some(format!(
                "<a href=\"/g/six-1.16.0.tar.gz#sha256={H2}\">six-1.16.0.tar.gz</a>"
            )),
        );
        got.insert("http://a/simple/attrs/".to_string(), None);
        got.insert(
            "http://b/simple/attrs/".to_string(),
            Some("<html></html>".into()),
        );
        let missed = fill(&mut lock, &got);
        let six = &lock.packages[0];
        assert_eq!(six.wheels.len(), 1);
        assert_eq!(
            six.wheels[0].url.as_deref(),
            Some("http://a/f/six-1.16.0-py2.py3-none-any.whl")
        );
        assert_eq!(
            six.sdist.as_ref().and_then(|s| s.url.as_deref()),
            Some("http://b/g/six-1.16.0.tar.gz")
        );
        // attrs: one page unreadable, the other read without a match: no match is the reason.
        assert_eq!(
            missed.get(&1),
            Some(&Missed::NoMatch {
                pages: vec!["http://b/simple/attrs/".into()]
            })
        );
        assert_eq!(missed.len(), 1);
        // Filled packages need no lookup any more.
        assert!(pages(&lock).iter().all(|p| p.contains("attrs")));
    }

    #[test]
    fn pages_not_looked_up_or_unreadable_say_so() {
        let mut lock = req(&format!("six==1.16.0 --hash=sha256:{H1}\n"));
        assert_eq!(pages(&lock), vec!["https://pypi.org/simple/six/"]);
        let missed = fill(&mut lock.clone(), &BTreeMap::new());
        assert!(matches!(missed[&0], Missed::NotLookedUp { .. }));
        let mut got = BTreeMap::new();
        got.insert("https://pypi.org/simple/six/".to_string(), None);
        assert!(matches!(
            fill(&mut lock, &got)[&0],
            Missed::Unreadable { .. }
        ));
    }

    #[test]
    fn a_page_of_unclosed_anchors_is_read_and_a_huge_one_refused() {
        // Each anchor's text ends at the next tag, so this is one pass (searching for `</a`
        // from every anchor made it quadratic in the page size).
        let page = "<a href=x>".repeat(100_000);
        let files = parse(&page, "http://h/simple/x/").unwrap();
        assert_eq!(files.len(), 100_000);
        assert!(files.iter().all(|f| f.url == "http://h/simple/x/x"));
        let err = parse(&"<a href=x>".repeat(MAX_FILES + 1), "http://h/simple/x/").unwrap_err();
        assert!(err.contains("at most"), "{err}");
        assert!(
            parse(&"<a ".repeat(1000), "http://h/simple/x/")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn entities_and_attributes() {
        assert_eq!(
            decode_entities("a&amp;b&#38;c&#x26;d&bogus;e&"),
            "a&b&c&d&bogus;e&"
        );
        let a = attributes(r#" href = "x y" data-yanked class=z HREF='ignored'"#);
        assert_eq!(a["href"], "x y");
        assert_eq!(a["data-yanked"], "");
        assert_eq!(a["class"], "z");
    }
}
