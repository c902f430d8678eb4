//! Named build contexts: the `context:NAME` frontend options that
//! `docker buildx build --build-context NAME=VALUE` (and bake `contexts`) send.
//!
//! A value is `TYPE:REST` (facts from BuildKit's Dockerfile frontend, see
//! `../shared/docs/buildkit-protocol-facts.md`): `local:DIR` (a local source the
//! client serves under the name `DIR`), `docker-image://REF[@DIGEST]`,
//! `input:NAME` (another bake target's result, from the gateway inputs),
//! `oci-layout://REF@DIGEST`, `git://…` / `git@…` and `http(s)://…` URLs. A key may
//! carry a platform, `context:NAME::os/arch`. Parsing is a pure function of the
//! option map; which contexts the stack uses is decided by the build.

use std::collections::BTreeMap;
use std::fmt;

/// Where a named context comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `local:DIR`: a directory the client serves as local source `DIR`.
    Local(String),
    /// `docker-image://REF[@DIGEST]`: an image, its filesystem and config.
    Image(String),
    /// `input:NAME`: the result of another bake target (gateway inputs).
    Input(String),
    /// `oci-layout://REF@DIGEST`: an image in an OCI layout the client serves.
    OciLayout(String),
    /// `git://…`, `git@…`: a git repository.
    Git(String),
    /// `http://…` / `https://…`: a remote file or tarball.
    Http(String),
}

impl Source {
    /// The kind with its article (`an image`), for diagnostics.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Local(_) => "a local directory",
            Source::Image(_) => "an image",
            Source::Input(_) => "a bake target input",
            Source::OciLayout(_) => "an OCI layout image",
            Source::Git(_) => "a git repository",
            Source::Http(_) => "an HTTP source",
        }
    }
}

/// One `context:NAME[::PLATFORM]=VALUE` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedContext {
    /// The context name (`svc-api`, `python:3.12-slim`).
    pub name: String,
    /// The platform suffix of the key (`linux/amd64`), if any.
    pub platform: Option<String>,
    /// The value as given.
    pub value: String,
    /// The parsed value.
    pub source: Source,
}

impl fmt::Display for NamedContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--build-context {}={}", self.name, self.value)
    }
}

/// Parses one option: `key` without the `context:` prefix, and its value.
/// An error names the option and says what is wrong with it.
pub fn parse_one(key: &str, value: &str) -> Result<NamedContext, String> {
    let (name, platform) = match key.split_once("::") {
        Some((n, p)) => (n, Some(p.to_string())),
        None => (key, None),
    };
    if name.is_empty() {
        return Err(format!(
            "frontend option `context:{key}`: the named context has no name"
        ));
    }
    let bad = |why: &str| {
        Err(format!(
            "`--build-context {name}={value}` (frontend option `context:{key}`): {why}"
        ))
    };
    let Some((ty, rest)) = value.split_once(':') else {
        return bad(
            "invalid context specifier; expected TYPE:VALUE (`local:DIR`, `docker-image://REF`, `input:TARGET`, a git or http URL)",
        );
    };
    let source = if ty.starts_with("git@") {
        Source::Git(value.to_string())
    } else {
        match ty {
            "local" | "input" if rest.is_empty() => {
                return bad(&format!("`{ty}:` needs a name"));
            }
            "local" => Source::Local(rest.to_string()),
            "input" => Source::Input(rest.to_string()),
            "docker-image" | "oci-layout" => {
                let r = rest.strip_prefix("//").unwrap_or(rest);
                if r.is_empty() {
                    return bad(&format!("`{ty}://` needs an image reference"));
                }
                if ty == "oci-layout" && !r.contains('@') {
                    return bad("an `oci-layout://` reference needs a digest (`REF@sha256:…`)");
                }
                if ty == "docker-image" {
                    Source::Image(r.to_string())
                } else {
                    Source::OciLayout(r.to_string())
                }
            }
            "git" => Source::Git(value.to_string()),
            "http" | "https" => Source::Http(value.to_string()),
            other => return bad(&format!("unsupported context source `{other}`")),
        }
    };
    Ok(NamedContext {
        name: name.to_string(),
        platform,
        value: value.to_string(),
        source,
    })
}

/// Base-image overrides for `platform`: every `docker-image://` context whose name is
/// an image reference maps the normalised name to the normalised value (the planner builds
/// on the value wherever the stack's `from` names the name). A `NAME::PLATFORM` key applies
/// to that platform only and wins over a plain `NAME`. A name no `from` uses changes nothing,
/// as the Dockerfile frontend ignores named contexts no `FROM` asks for.
pub fn image_overrides(
    contexts: &[NamedContext],
    platform: &llb_gen::platform::Platform,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    // Plain keys first, platform-specific ones then overwrite them.
    let mut ordered: Vec<&NamedContext> = contexts.iter().collect();
    ordered.sort_by_key(|c| c.platform.is_some());
    for c in ordered {
        let Source::Image(value) = &c.source else {
            continue;
        };
        // Every value is checked, whichever platform it is for.
        let to = llb_gen::plan::normalize_image_ref(value)
            .map_err(|e| format!("`{c}`: `{value}` is not a valid image reference: {e}"))?;
        if let Some(p) = &c.platform {
            match llb_gen::platform::Platform::parse(p) {
                Ok(p) if p == *platform => {}
                Ok(_) => continue,
                Err(e) => return Err(format!("`{c}`: invalid platform `{p}`: {e}")),
            }
        }
        let Ok(name) = llb_gen::plan::normalize_image_ref(&c.name) else {
            continue;
        };
        out.insert(name, to);
    }
    Ok(out)
}

/// The named contexts that are images, for `platform`: `docker-image://` contexts whose name
/// a stack can read (`copy = { context = "tools", … }`, `tools:/opt/x`; see
/// `llb_gen::plan::ctxpath::valid_name`) and every `input:` context (bake's `target:OTHER`,
/// which a stack also names in `from`). A `NAME::PLATFORM` key applies to that platform only
/// and wins over a plain `NAME` (buildx sends a multi-platform target result as one input per
/// platform, `context:NAME::os/arch=input:KEY::os/arch`).
pub fn image_contexts(
    contexts: &[NamedContext],
    platform: &llb_gen::platform::Platform,
) -> Result<BTreeMap<String, llb_gen::plan::ImageContext>, String> {
    use llb_gen::plan::ImageContext;
    let mut out = BTreeMap::new();
    let mut ordered: Vec<&NamedContext> = contexts.iter().collect();
    ordered.sort_by_key(|c| c.platform.is_some());
    for c in ordered {
        let source =
            match &c.source {
                Source::Image(value) if llb_gen::plan::ctxpath::valid_name(&c.name) => {
                    ImageContext::Image(llb_gen::plan::normalize_image_ref(value).map_err(|e| {
                        format!("`{c}`: `{value}` is not a valid image reference: {e}")
                    })?)
                }
                Source::Input(name) => ImageContext::Input(name.clone()),
                _ => continue,
            };
        if let Some(p) = &c.platform {
            match llb_gen::platform::Platform::parse(p) {
                Ok(p) if p == *platform => {}
                Ok(_) => continue,
                Err(e) => return Err(format!("`{c}`: invalid platform `{p}`: {e}")),
            }
        }
        out.insert(c.name.clone(), source);
    }
    Ok(out)
}

/// The image config buildx sent for frontend input `name` (`input-metadata:NAME`, a JSON
/// object of base64 values, `containerimage.config` among them), or empty when it sent none.
pub fn input_config(raw: &BTreeMap<String, String>, name: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let Some(meta) = raw.get(&format!("input-metadata:{name}")) else {
        return Ok(vec![]);
    };
    let bad = |why: String| format!("frontend option `input-metadata:{name}`: {why}");
    let v: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(meta).map_err(|e| bad(format!("not a JSON object: {e}")))?;
    match v.get("containerimage.config") {
        None => Ok(vec![]),
        Some(serde_json::Value::String(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| bad(format!("`containerimage.config` is not base64: {e}"))),
        Some(_) => Err(bad("`containerimage.config` is not a string".into())),
    }
}

/// Parses every named context of the option map (keys without the
/// `context:` prefix), in key order; the first malformed one is an error.
pub fn parse_all(contexts: &BTreeMap<String, String>) -> Result<Vec<NamedContext>, String> {
    contexts.iter().map(|(k, v)| parse_one(k, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(v: &str) -> Source {
        parse_one("x", v).unwrap().source
    }

    #[test]
    fn every_value_kind_buildx_sends() {
        assert_eq!(src("local:svc-api"), Source::Local("svc-api".into()));
        assert_eq!(
            src("docker-image://python:3.12-slim@sha256:ab"),
            Source::Image("python:3.12-slim@sha256:ab".into())
        );
        assert_eq!(src("docker-image:alpine"), Source::Image("alpine".into()));
        assert_eq!(src("input:base"), Source::Input("base".into()));
        assert_eq!(
            src("oci-layout://store/app@sha256:cd"),
            Source::OciLayout("store/app@sha256:cd".into())
        );
        assert_eq!(
            src("git@github.com:o/r.git"),
            Source::Git("git@github.com:o/r.git".into())
        );
        assert_eq!(src("git://h/r.git"), Source::Git("git://h/r.git".into()));
        assert_eq!(
            src("https://h/a.tar"),
            Source::Http("https://h/a.tar".into())
        );
    }

    #[test]
    fn platform_suffix_and_display() {
        let c = parse_one("base::linux/arm64", "docker-image://alpine").unwrap();
        assert_eq!(c.name, "base");
        assert_eq!(c.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(c.to_string(), "--build-context base=docker-image://alpine");
        assert_eq!(c.source.kind(), "an image");
    }

    #[test]
    fn malformed_values_are_errors_naming_the_option() {
        for (v, want) in [
            ("nocolon", "invalid context specifier"),
            ("ftp://x", "unsupported context source `ftp`"),
            ("local:", "needs a name"),
            ("input:", "needs a name"),
            ("docker-image://", "needs an image reference"),
            ("oci-layout://store/app", "needs a digest"),
        ] {
            let e = parse_one("svc", v).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
            assert!(e.contains(&format!("--build-context svc={v}")), "{e}");
            assert!(e.contains("context:svc"), "{e}");
        }
        assert!(parse_one("", "local:x").unwrap_err().contains("no name"));
    }

    #[test]
    fn image_contexts_override_bases_by_normalised_name() {
        let amd = llb_gen::platform::Platform::linux_amd64();
        let arm = llb_gen::platform::Platform::parse("linux/arm64").unwrap();
        let cs = vec![
            parse_one("python:3.12-slim", "docker-image://ghcr.io/o/py:1").unwrap(),
            parse_one("alpine::linux/arm64", "docker-image://busybox").unwrap(),
            parse_one("alpine", "docker-image://debian").unwrap(),
            parse_one("svc", "local:svc").unwrap(),
        ];
        let o = image_overrides(&cs, &amd).unwrap();
        assert_eq!(o["docker.io/library/python:3.12-slim"], "ghcr.io/o/py:1");
        assert_eq!(
            o["docker.io/library/alpine:latest"],
            "docker.io/library/debian:latest"
        );
        assert_eq!(o.len(), 2, "{o:?}");
        let o = image_overrides(&cs, &arm).unwrap();
        assert_eq!(
            o["docker.io/library/alpine:latest"],
            "docker.io/library/busybox:latest"
        );
        let bad = vec![parse_one("a", "docker-image://UPPER:x").unwrap()];
        assert!(
            image_overrides(&bad, &amd)
                .unwrap_err()
                .contains("--build-context a=")
        );
    }

    #[test]
    fn image_and_input_contexts_by_platform() {
        use llb_gen::plan::ImageContext;
        let amd = llb_gen::platform::Platform::linux_amd64();
        let arm = llb_gen::platform::Platform::parse("linux/arm64").unwrap();
        let cs = vec![
            parse_one("tools", "docker-image://alpine:3.20").unwrap(),
            parse_one("base::linux/amd64", "input:0-base::linux/amd64").unwrap(),
            parse_one("base::linux/arm64", "input:0-base::linux/arm64").unwrap(),
            parse_one("other", "input:1-other").unwrap(),
            // An image-reference name only overrides `from`; a directory is not an image.
            parse_one("python:3.12", "docker-image://debian").unwrap(),
            parse_one("svc", "local:svc").unwrap(),
        ];
        let m = image_contexts(&cs, &amd).unwrap();
        assert_eq!(
            m["tools"],
            ImageContext::Image("docker.io/library/alpine:3.20".into())
        );
        assert_eq!(m["base"], ImageContext::Input("0-base::linux/amd64".into()));
        assert_eq!(m["other"], ImageContext::Input("1-other".into()));
        assert_eq!(m.len(), 3, "{m:?}");
        let m = image_contexts(&cs, &arm).unwrap();
        assert_eq!(m["base"], ImageContext::Input("0-base::linux/arm64".into()));
        let bad = vec![parse_one("t", "docker-image://Bad Ref").unwrap()];
        assert!(
            image_contexts(&bad, &amd)
                .unwrap_err()
                .contains("--build-context t=")
        );
    }

    #[test]
    fn input_metadata_gives_the_config() {
        let mut raw = BTreeMap::new();
        assert_eq!(input_config(&raw, "0-base").unwrap(), Vec::<u8>::new());
        // {"containerimage.config": base64(`{"config":{}}`)}, as buildx marshals map[string][]byte.
        raw.insert(
            "input-metadata:0-base".to_string(),
            r#"{"containerimage.config":"eyJjb25maWciOnt9fQ==","containerimage.buildinfo":"e30="}"#
                .to_string(),
        );
        assert_eq!(input_config(&raw, "0-base").unwrap(), br#"{"config":{}}"#);
        raw.insert("input-metadata:x".to_string(), "[1]".to_string());
        assert!(
            input_config(&raw, "x")
                .unwrap_err()
                .contains("input-metadata:x")
        );
    }

    #[test]
    fn parse_all_in_key_order() {
        let m: BTreeMap<String, String> = [
            ("b".to_string(), "local:b".to_string()),
            ("a".to_string(), "input:t".to_string()),
        ]
        .into_iter()
        .collect();
        let v = parse_all(&m).unwrap();
        assert_eq!(v[0].name, "a");
        assert_eq!(v[1].source, Source::Local("b".into()));
    }
}
