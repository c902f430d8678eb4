//! Frontend options: what BuildKit passes to the frontend container.
//!
//! BuildKit sets one `BUILDKIT_FRONTEND_OPT_<i>=<key>=<value>` environment
//! variable per option (in random order), plus `BUILDKIT_SESSION_ID` and
//! `BUILDKIT_WORKERS` (JSON). The keys follow docker/buildx and BuildKit's
//! Dockerfile frontend (`filename`, `target`, `platform`, `build-arg:NAME`,
//! ...). Parsing is a pure function of the (name, value) pairs
//! ([`FrontendOpts::from_env_vars`]) or of the option map
//! ([`FrontendOpts::from_opts`]); [`FrontendOpts::from_env`] reads the
//! process environment.

use std::collections::BTreeMap;
use std::fmt;

/// Default file name of the build definition (`filename` opt).
pub const DEFAULT_FILENAME: &str = "stack.toml";
/// Default local name / key of the build context (`contextkey` opt).
pub const DEFAULT_CONTEXT_KEY: &str = "context";
/// Default local name of the directory holding the definition
/// (`dockerfilekey` opt).
pub const DEFAULT_DOCKERFILE_KEY: &str = "dockerfile";

const OPT_ENV_PREFIX: &str = "BUILDKIT_FRONTEND_OPT_";

/// An invalid option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptsError(pub String);

impl fmt::Display for OptsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptsError {}

fn err<T>(msg: impl Into<String>) -> Result<T, OptsError> {
    Err(OptsError(msg.into()))
}

/// The most characters of an option value an error repeats.
const MAX_SHOWN_CHARS: usize = 120;

/// An option value as an error shows it: quoted and escaped (a newline or a bidi override in a
/// value can't break or disguise the message), at most [`MAX_SHOWN_CHARS`] characters of it.
fn shown(v: &str) -> String {
    format!("{:?}", llb_gen::diag::truncate(v, MAX_SHOWN_CHARS))
}

/// A cache to import (`cache-imports` JSON entries, or `cache-from` refs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheImport {
    /// Cache type: `registry`, `local`, `gha`, ...
    pub r#type: String,
    /// Type-specific attributes (`ref`, `src`, ...).
    pub attrs: BTreeMap<String, String>,
}

impl From<CacheImport> for crate::pb::gateway::CacheOptionsEntry {
    fn from(c: CacheImport) -> Self {
        crate::pb::gateway::CacheOptionsEntry {
            r#type: c.r#type,
            attrs: c.attrs,
        }
    }
}

/// Typed frontend options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendOpts {
    /// `filename`: the definition's file name (default `stack.toml`).
    pub filename: String,
    /// `target`: the stage/image to build; `None` if unset or empty.
    pub target: Option<String>,
    /// `platform`: target platforms as given (comma list, trimmed, empty
    /// entries dropped); empty = the default platform.
    pub platforms: Vec<String>,
    /// `build-arg:NAME` values.
    pub build_args: BTreeMap<String, String>,
    /// `label:NAME` values.
    pub labels: BTreeMap<String, String>,
    /// `force-network-mode`: `host`, `none` or `sandbox`.
    pub force_network_mode: Option<String>,
    /// `add-hosts`: (host, ip) pairs from the CSV `host=ip,...`.
    pub add_hosts: Vec<(String, String)>,
    /// `no-cache`: `None` = not set; `Some([])` = no cache for anything;
    /// `Some(names)` = for those stages only.
    pub no_cache: Option<Vec<String>>,
    /// `image-resolve-mode`: `default`, `pull` or `local`.
    pub image_resolve_mode: Option<String>,
    /// Whether the result must be a multi-platform index: more than one
    /// platform, or `multi-platform` / `build-arg:BUILDKIT_MULTI_PLATFORM`
    /// true.
    pub multi_platform: bool,
    /// `contextkey`: the key of the build context (default `context`). In
    /// BuildKit's Dockerfile frontend the opt with this name may carry a
    /// remote (git/http) context URL, see [`FrontendOpts::remote_context`].
    pub context_key: String,
    /// `dockerfilekey`: local name of the definition's directory (default
    /// `dockerfile`).
    pub dockerfile_key: String,
    /// The value of the opt named by `context_key`, if set: a git or http
    /// URL used as the build context instead of the `context` local.
    pub remote_context: Option<String>,
    /// `requestid`: a subrequest (`frontend.outline`, `frontend.targets`,
    /// `frontend.subrequests.describe`, `frontend.lint`, ...).
    pub request_id: Option<String>,
    /// `BUILDKIT_SESSION_ID` (empty if unset).
    pub session_id: String,
    /// `build-arg:SOURCE_DATE_EPOCH`, parsed.
    pub source_date_epoch: Option<i64>,
    /// `hostname` / `build-arg:BUILDKIT_SANDBOX_HOSTNAME`.
    pub hostname: Option<String>,
    /// `context:NAME` named contexts (value as given, e.g.
    /// `docker-image://...`, `local:NAME`, `input:NAME`, a URL).
    pub named_contexts: BTreeMap<String, String>,
    /// `local-sessionid:NAME`: session ids for specific locals.
    pub local_session_ids: BTreeMap<String, String>,
    /// `cache-imports` as given (JSON `[{"Type":..,"Attrs":{..}}]`).
    pub cache_imports_raw: Option<String>,
    /// Parsed `cache-imports`, then the legacy `cache-from` (comma list of
    /// registry refs).
    pub cache_imports: Vec<CacheImport>,
    /// Platforms of the workers from `BUILDKIT_WORKERS` (`os/arch[/variant]`),
    /// first worker first.
    pub worker_platforms: Vec<String>,
    /// BuildKit version reported by the first worker (`v0.13.2`), if any
    /// (BuildKit >= v0.11 reports it).
    pub buildkit_version: Option<String>,
    /// Every frontend opt, as given.
    pub raw: BTreeMap<String, String>,
}

impl FrontendOpts {
    /// Options the frontend accepts but does not implement yet, as an error naming the
    /// first: a build must not silently ignore `--build-context` or a sandbox hostname.
    pub fn unsupported(&self) -> Option<String> {
        // A malformed value is reported as such first. Images override bases
        // (`from`); other kinds name their kind (stack.toml cannot reference them yet).
        match crate::named_contexts::parse_all(&self.named_contexts) {
            Err(e) => return Some(e),
            Ok(all) => {
                let any = llb_gen::platform::Platform::linux_amd64();
                if let Err(e) = crate::named_contexts::image_overrides(&all, &any)
                    .and_then(|_| crate::named_contexts::image_contexts(&all, &any))
                {
                    return Some(e);
                }
                for c in &all {
                    if let crate::named_contexts::Source::Input(n) = &c.source
                        && let Err(e) = crate::named_contexts::input_config(&self.raw, n)
                    {
                        return Some(e);
                    }
                }
                let other = all.iter().find(|c| {
                    !matches!(
                        c.source,
                        crate::named_contexts::Source::Image(_)
                            | crate::named_contexts::Source::Local(_)
                            | crate::named_contexts::Source::Input(_)
                    )
                });
                if let Some(c) = other {
                    return Some(format!(
                        "`{c}` (frontend option `context:{}`, {}) is not supported by layerstack yet; remove it (local directories, `docker-image://` images and bake `target:` results (`input:`) are)",
                        c.name,
                        c.source.kind()
                    ));
                }
            }
        }
        if let Some(h) = &self.hostname {
            return Some(format!(
                "the sandbox hostname `{h}` (frontend option `hostname` / build arg BUILDKIT_SANDBOX_HOSTNAME) is not supported by layerstack yet; remove it"
            ));
        }
        None
    }

    /// Reads the options from the process environment.
    pub fn from_env() -> Result<FrontendOpts, OptsError> {
        Self::from_env_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Parses environment variables (name, value): `BUILDKIT_FRONTEND_OPT_<i>`,
    /// `BUILDKIT_SESSION_ID`, `BUILDKIT_WORKERS`; others are ignored.
    pub fn from_env_vars<I, K, V>(vars: I) -> Result<FrontendOpts, OptsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut indexed: Vec<(u64, String, String)> = Vec::new();
        let mut session_id = String::new();
        let mut workers = None;
        for (k, v) in vars {
            let (k, v) = (k.as_ref(), v.as_ref());
            if let Some(idx) = k.strip_prefix(OPT_ENV_PREFIX) {
                let idx = idx.parse::<u64>().unwrap_or(u64::MAX);
                // Split once, on the first '=': values may contain '='.
                let (key, value) = v.split_once('=').unwrap_or((v, ""));
                indexed.push((idx, key.to_string(), value.to_string()));
            } else if k == "BUILDKIT_SESSION_ID" {
                session_id = v.to_string();
            } else if k == "BUILDKIT_WORKERS" {
                workers = Some(v.to_string());
            }
        }
        // The env order is random; BuildKit's keys are unique anyway, but
        // make any duplicate resolve deterministically (highest index wins).
        indexed.sort();
        let opts: BTreeMap<String, String> = indexed.into_iter().map(|(_, k, v)| (k, v)).collect();

        let mut out = Self::from_opts(&opts)?;
        out.session_id = session_id;
        if let Some(w) = workers {
            let (platforms, version) = parse_workers(&w)?;
            out.worker_platforms = platforms;
            out.buildkit_version = version;
        }
        Ok(out)
    }

    /// Parses the frontend option map (key → value).
    pub fn from_opts(opts: &BTreeMap<String, String>) -> Result<FrontendOpts, OptsError> {
        let get = |k: &str| opts.get(k).map(String::as_str);
        let non_empty = |k: &str| get(k).filter(|v| !v.is_empty()).map(str::to_string);

        let platforms: Vec<String> = get("platform")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();

        let force_network_mode = match get("force-network-mode") {
            None | Some("") => None,
            Some(m @ ("host" | "none" | "sandbox")) => Some(m.to_string()),
            Some(m) => {
                return err(format!(
                    "invalid force-network-mode {} (want host, none or sandbox)",
                    shown(m)
                ));
            }
        };

        let image_resolve_mode = match get("image-resolve-mode") {
            None | Some("") => None,
            Some(m @ ("default" | "pull" | "local")) => Some(m.to_string()),
            Some(m) => {
                return err(format!(
                    "invalid image-resolve-mode {} (want default, pull or local)",
                    shown(m)
                ));
            }
        };

        let add_hosts = match get("add-hosts") {
            None | Some("") => Vec::new(),
            Some(v) => parse_add_hosts(v)?,
        };

        let no_cache = get("no-cache").map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        });

        let mut multi_platform = platforms.len() > 1;
        // Named in errors as the user set it: `--build-arg BUILDKIT_MULTI_PLATFORM=…` or the
        // `multi-platform` option.
        let mp = non_empty("build-arg:BUILDKIT_MULTI_PLATFORM")
            .map(|v| ("BUILDKIT_MULTI_PLATFORM", v))
            .or_else(|| non_empty("multi-platform").map(|v| ("multi-platform", v)));
        if let Some((name, v)) = mp {
            let b = parse_go_bool(&v).ok_or_else(|| {
                OptsError(format!(
                    "invalid boolean value for {name}: {} (want true or false)",
                    shown(&v)
                ))
            })?;
            if !b && multi_platform {
                return err(
                    "conflicting config: returning multiple target platforms is not allowed",
                );
            }
            multi_platform = b;
        }

        let context_key = get("contextkey").unwrap_or(DEFAULT_CONTEXT_KEY).to_string();
        let dockerfile_key = get("dockerfilekey")
            .unwrap_or(DEFAULT_DOCKERFILE_KEY)
            .to_string();
        let remote_context = non_empty(&context_key);

        let source_date_epoch = match non_empty("build-arg:SOURCE_DATE_EPOCH") {
            None => None,
            Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
                OptsError(format!(
                    "invalid SOURCE_DATE_EPOCH: {} (want seconds since 1970)",
                    shown(&v)
                ))
            })?),
        };

        let cache_imports_raw = non_empty("cache-imports");
        let mut cache_imports = match &cache_imports_raw {
            Some(raw) => parse_cache_imports(raw)?,
            None => Vec::new(),
        };
        if let Some(from) = non_empty("cache-from") {
            for r in from.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                cache_imports.push(CacheImport {
                    r#type: "registry".into(),
                    attrs: [("ref".to_string(), r.to_string())].into_iter().collect(),
                });
            }
        }

        Ok(FrontendOpts {
            filename: non_empty("filename").unwrap_or_else(|| DEFAULT_FILENAME.to_string()),
            target: non_empty("target"),
            platforms,
            build_args: with_prefix(opts, "build-arg:"),
            labels: with_prefix(opts, "label:"),
            force_network_mode,
            add_hosts,
            no_cache,
            image_resolve_mode,
            multi_platform,
            context_key,
            dockerfile_key,
            remote_context,
            request_id: non_empty("requestid"),
            session_id: String::new(),
            source_date_epoch,
            hostname: non_empty("build-arg:BUILDKIT_SANDBOX_HOSTNAME")
                .or_else(|| non_empty("hostname")),
            named_contexts: with_prefix(opts, "context:"),
            local_session_ids: with_prefix(opts, "local-sessionid:"),
            cache_imports_raw,
            cache_imports,
            worker_platforms: Vec::new(),
            buildkit_version: None,
            raw: opts.clone(),
        })
    }

    /// The session id to use for a local source named `name`.
    pub fn session_for_local(&self, name: &str) -> &str {
        self.local_session_ids
            .get(name)
            .map_or(&self.session_id, String::as_str)
    }
}

fn with_prefix(opts: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    opts.iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
        .collect()
}

/// Go's strconv.ParseBool.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Splits one CSV record (commas, double quotes with `""` escapes).
fn csv_fields(s: &str) -> Result<Vec<String>, OptsError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => in_quotes = false,
            ('"', false) if cur.trim().is_empty() => {
                cur.clear();
                in_quotes = true;
            }
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if in_quotes {
        return err(format!("unterminated quote in {}", shown(s)));
    }
    out.push(cur);
    Ok(out)
}

fn parse_add_hosts(v: &str) -> Result<Vec<(String, String)>, OptsError> {
    let mut out = Vec::new();
    let fields = csv_fields(v).map_err(|e| OptsError(format!("add-hosts: {}", e.0)))?;
    for field in fields {
        let field = field.trim().to_lowercase();
        if field.is_empty() {
            continue;
        }
        let Some((host, ip)) = field.split_once('=') else {
            return err(format!(
                "add-hosts: {} is not a HOST=IP key-value pair",
                shown(&field)
            ));
        };
        if ip.parse::<std::net::IpAddr>().is_err() {
            return err(format!(
                "add-hosts: {} is not an IP address (in {})",
                shown(ip),
                shown(&field)
            ));
        }
        out.push((host.to_string(), ip.to_string()));
    }
    Ok(out)
}

/// Case-insensitive lookup of a JSON object key.
fn get_ci<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn parse_cache_imports(raw: &str) -> Result<Vec<CacheImport>, OptsError> {
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
        OptsError(format!(
            "failed to unmarshal cache-imports ({}): {e}",
            shown(raw)
        ))
    })?;
    let Some(entries) = v.as_array() else {
        return err(format!(
            "failed to unmarshal cache-imports ({}): not a list",
            shown(raw)
        ));
    };
    let mut out = Vec::new();
    for e in entries {
        let r#type = get_ci(e, "type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string();
        let attrs = get_ci(e, "attrs")
            .and_then(|a| a.as_object())
            .map(|a| {
                a.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), String::from),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(CacheImport { r#type, attrs });
    }
    Ok(out)
}

/// `BUILDKIT_WORKERS` → (platform ids of all workers, first worker's
/// BuildKit version). Keys are matched case-insensitively: older BuildKit
/// writes `ID`/`Platforms`, newer `id`/`platforms`.
fn parse_workers(raw: &str) -> Result<(Vec<String>, Option<String>), OptsError> {
    if raw.trim().is_empty() {
        return Ok((Vec::new(), None));
    }
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| OptsError(format!("invalid BUILDKIT_WORKERS: {e}")))?;
    let mut platforms = Vec::new();
    let mut version = None;
    for (i, w) in v
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        for p in get_ci(w, "platforms")
            .and_then(|p| p.as_array())
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let s = |k: &str| get_ci(p, k).and_then(|x| x.as_str()).unwrap_or_default();
            let (os, arch, variant) = (s("os"), s("architecture"), s("variant"));
            if os.is_empty() || arch.is_empty() {
                continue;
            }
            let id = if variant.is_empty() {
                format!("{os}/{arch}")
            } else {
                format!("{os}/{arch}/{variant}")
            };
            if !platforms.contains(&id) {
                platforms.push(id);
            }
        }
        if i == 0 {
            version = get_ci(w, "buildkitVersion")
                .and_then(|b| get_ci(b, "version"))
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty())
                .map(String::from);
        }
    }
    Ok((platforms, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(opts: &[&str]) -> Vec<(String, String)> {
        opts.iter()
            .enumerate()
            .map(|(i, o)| (format!("BUILDKIT_FRONTEND_OPT_{i}"), o.to_string()))
            .collect()
    }

    fn parse(opts: &[&str]) -> FrontendOpts {
        FrontendOpts::from_env_vars(env(opts)).unwrap()
    }

    fn parse_err(opts: &[&str]) -> String {
        FrontendOpts::from_env_vars(env(opts)).unwrap_err().0
    }

    #[test]
    fn defaults() {
        let o = FrontendOpts::from_env_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(o.filename, "stack.toml");
        assert_eq!(o.target, None);
        assert!(o.platforms.is_empty());
        assert!(!o.multi_platform);
        assert_eq!(o.no_cache, None);
        assert_eq!(o.context_key, "context");
        assert_eq!(o.dockerfile_key, "dockerfile");
        assert_eq!(o.remote_context, None);
        assert_eq!(o.request_id, None);
        assert_eq!(o.session_id, "");
        assert!(o.raw.is_empty());
    }

    #[test]
    fn typical_buildx_opts() {
        let mut vars = env(&[
            "build-arg:VERSION=1.2=3",
            "filename=app.toml",
            "target=runtime",
            "platform=linux/amd64, linux/arm64,,",
            "label:org.opencontainers.image.title=demo",
            "image-resolve-mode=local",
            "build-arg:SOURCE_DATE_EPOCH=1700000000",
            "context:base=docker-image://alpine:3.20",
            "local-sessionid:context=abc",
            "requestid=frontend.outline",
            "cmdline=ghcr.io/layerstack/layerstack:1",
        ]);
        vars.reverse(); // random env order must not matter
        vars.push(("BUILDKIT_SESSION_ID".into(), "sess1".into()));
        vars.push(("PATH".into(), "/usr/bin".into()));
        let o = FrontendOpts::from_env_vars(vars).unwrap();
        assert_eq!(o.filename, "app.toml");
        assert_eq!(o.target.as_deref(), Some("runtime"));
        assert_eq!(o.platforms, ["linux/amd64", "linux/arm64"]);
        assert!(o.multi_platform);
        assert_eq!(o.build_args["VERSION"], "1.2=3");
        assert_eq!(o.build_args["SOURCE_DATE_EPOCH"], "1700000000");
        assert_eq!(o.source_date_epoch, Some(1_700_000_000));
        assert_eq!(o.labels["org.opencontainers.image.title"], "demo");
        assert_eq!(o.image_resolve_mode.as_deref(), Some("local"));
        assert_eq!(o.named_contexts["base"], "docker-image://alpine:3.20");
        assert_eq!(o.request_id.as_deref(), Some("frontend.outline"));
        assert_eq!(o.session_id, "sess1");
        assert_eq!(o.session_for_local("context"), "abc");
        assert_eq!(o.session_for_local("dockerfile"), "sess1");
        assert_eq!(o.raw["cmdline"], "ghcr.io/layerstack/layerstack:1");
        assert_eq!(o.raw.len(), 11);
    }

    #[test]
    fn empty_values() {
        let o = parse(&[
            "target=",
            "platform=",
            "filename=",
            "no-cache=",
            "requestid=",
        ]);
        assert_eq!(o.target, None);
        assert!(o.platforms.is_empty());
        assert_eq!(o.filename, "stack.toml");
        assert_eq!(o.no_cache, Some(vec![]));
        assert_eq!(o.request_id, None);
        // An opt with no '=' at all is a key with an empty value.
        assert_eq!(parse(&["no-cache"]).no_cache, Some(vec![]));
    }

    #[test]
    fn no_cache_list() {
        assert_eq!(
            parse(&["no-cache=build, test"]).no_cache,
            Some(vec!["build".into(), "test".into()])
        );
    }

    #[test]
    fn network_mode() {
        assert_eq!(
            parse(&["force-network-mode=host"])
                .force_network_mode
                .as_deref(),
            Some("host")
        );
        assert_eq!(
            parse(&["force-network-mode=none"])
                .force_network_mode
                .as_deref(),
            Some("none")
        );
        assert_eq!(parse(&["force-network-mode="]).force_network_mode, None);
        assert!(parse_err(&["force-network-mode=bridge"]).contains("bridge"));
    }

    #[test]
    fn resolve_mode_validated() {
        assert!(parse_err(&["image-resolve-mode=always"]).contains("image-resolve-mode"));
    }

    #[test]
    fn add_hosts() {
        let o = parse(&["add-hosts=Example.com=10.0.0.1,\"db=::1\""]);
        assert_eq!(
            o.add_hosts,
            [
                ("example.com".to_string(), "10.0.0.1".to_string()),
                ("db".to_string(), "::1".to_string())
            ]
        );
        assert!(parse_err(&["add-hosts=foo"]).contains("key-value"));
        assert!(parse_err(&["add-hosts=foo=notanip"]).contains("IP"));
    }

    #[test]
    fn multi_platform() {
        assert!(!parse(&["platform=linux/amd64"]).multi_platform);
        assert!(parse(&["platform=linux/amd64", "multi-platform=true"]).multi_platform);
        assert!(parse(&["build-arg:BUILDKIT_MULTI_PLATFORM=1"]).multi_platform);
        assert!(
            parse_err(&["platform=linux/amd64,linux/arm64", "multi-platform=false"])
                .contains("conflicting")
        );
        assert!(parse_err(&["multi-platform=maybe"]).contains("multi-platform"));
    }

    #[test]
    fn keys_and_remote_context() {
        let o = parse(&[
            "contextkey=ctx",
            "dockerfilekey=df",
            "ctx=https://github.com/x/y.git#main",
        ]);
        assert_eq!(o.context_key, "ctx");
        assert_eq!(o.dockerfile_key, "df");
        assert_eq!(
            o.remote_context.as_deref(),
            Some("https://github.com/x/y.git#main")
        );
        assert_eq!(
            parse(&["context=git://h/r.git"]).remote_context.as_deref(),
            Some("git://h/r.git")
        );
    }

    #[test]
    fn cache_imports() {
        let o = parse(&[
            r#"cache-imports=[{"Type":"registry","Attrs":{"ref":"r/x:cache"}},{"type":"local","attrs":{"src":"/c"}}]"#,
            "cache-from=r/y:1,r/z:2",
        ]);
        assert_eq!(o.cache_imports.len(), 4);
        assert_eq!(o.cache_imports[0].r#type, "registry");
        assert_eq!(o.cache_imports[0].attrs["ref"], "r/x:cache");
        assert_eq!(o.cache_imports[1].r#type, "local");
        assert_eq!(o.cache_imports[1].attrs["src"], "/c");
        assert_eq!(o.cache_imports[3].attrs["ref"], "r/z:2");
        assert!(o.cache_imports_raw.unwrap().starts_with('['));
        assert!(parse_err(&["cache-imports={"]).contains("cache-imports"));
    }

    #[test]
    fn accepted_but_unimplemented_options_are_errors_naming_them() {
        assert_eq!(parse(&[]).unsupported(), None);
        // Images override bases, local directories are read as `NAME:PATH`; other kinds
        // are not supported yet.
        assert_eq!(
            parse(&["context:base=docker-image://alpine:3.20"]).unsupported(),
            None
        );
        assert_eq!(parse(&["context:svc=local:svc"]).unsupported(), None);
        assert_eq!(parse(&["context:t=input:base"]).unsupported(), None);
        let e = parse(&["context:t=oci-layout://store/app@sha256:ab"])
            .unsupported()
            .unwrap();
        assert!(e.contains("--build-context t=oci-layout://"), "{e}");
        assert!(e.contains("context:t"), "{e}");
        assert!(e.contains("an OCI layout image"), "{e}");
        let e = parse(&["context:t=git://h/r.git"]).unsupported().unwrap();
        assert!(e.contains("a git repository"), "{e}");
        let e = parse(&["context:t=input:b", "input-metadata:b=nope"])
            .unsupported()
            .unwrap();
        assert!(e.contains("input-metadata:b"), "{e}");
        let e = parse(&["context:base=docker-image://Bad Ref"])
            .unsupported()
            .unwrap();
        assert!(e.contains("not a valid image reference"), "{e}");
        let e = parse(&["context:svc=ftp://x"]).unsupported().unwrap();
        assert!(e.contains("unsupported context source `ftp`"), "{e}");
        let e = parse(&["hostname=box"]).unsupported().unwrap();
        assert!(e.contains("`box`") && e.contains("hostname"), "{e}");
    }

    /// Found by `fuzz-frontend` (the invariant that an option error names the option): the
    /// errors for `add-hosts` said "additional hosts", a bad `BUILDKIT_MULTI_PLATFORM` build
    /// arg was reported as `multi-platform`, and values were pasted raw — a newline or a bidi
    /// override in a value broke or disguised the message, and a long value was repeated whole.
    #[test]
    fn option_errors_name_the_option_as_given_and_show_values_quoted_and_short() {
        let e = parse_err(&["add-hosts=input:other"]);
        assert!(
            e.contains("add-hosts") && e.contains("\"input:other\""),
            "{e}"
        );
        let e = parse_err(&["add-hosts=\"db=::1"]);
        assert!(e.starts_with("add-hosts: unterminated quote"), "{e}");
        let e = parse_err(&["build-arg:BUILDKIT_MULTI_PLATFORM=maybe"]);
        assert!(
            e.contains("BUILDKIT_MULTI_PLATFORM") && !e.contains("multi-platform"),
            "{e}"
        );
        assert!(parse_err(&["multi-platform=maybe"]).contains("for multi-platform:"));
        for opt in [
            "build-arg:SOURCE_DATE_EPOCH=1\n\u{202e}2",
            "image-resolve-mode=pull\n\u{202e}x",
            "force-network-mode=host\r\n",
            "multi-platform=\u{202e}true",
            "add-hosts=a\n\u{202e}b",
            "cache-imports=\n\u{202e}",
        ] {
            let e = parse_err(&[opt]);
            assert!(
                !e.chars()
                    .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
                "{opt:?}: {e:?}"
            );
        }
        for key in [
            "build-arg:SOURCE_DATE_EPOCH",
            "image-resolve-mode",
            "add-hosts",
            "cache-imports",
        ] {
            let long = format!("{key}={}", "x".repeat(100_000));
            let e = parse_err(&[long.as_str()]);
            assert!(
                e.len() < 600 && e.contains("more bytes"),
                "{key}: {} bytes",
                e.len()
            );
        }
    }

    #[test]
    fn source_date_epoch_invalid() {
        assert!(
            parse_err(&["build-arg:SOURCE_DATE_EPOCH=yesterday"]).contains("SOURCE_DATE_EPOCH")
        );
    }

    #[test]
    fn workers_any_key_case() {
        let new = r#"[{"id":"w1","labels":{},"platforms":[{"architecture":"amd64","os":"linux"},
            {"architecture":"arm","os":"linux","variant":"v7"}],"buildkitVersion":{"package":"github.com/moby/buildkit","version":"v0.13.2","revision":"x"}}]"#;
        let old =
            r#"[{"ID":"w1","Labels":{},"Platforms":[{"architecture":"arm64","os":"linux"}]}]"#;
        let o = FrontendOpts::from_env_vars([("BUILDKIT_WORKERS", new)]).unwrap();
        assert_eq!(o.worker_platforms, ["linux/amd64", "linux/arm/v7"]);
        assert_eq!(o.buildkit_version.as_deref(), Some("v0.13.2"));
        let o = FrontendOpts::from_env_vars([("BUILDKIT_WORKERS", old)]).unwrap();
        assert_eq!(o.worker_platforms, ["linux/arm64"]);
        assert_eq!(o.buildkit_version, None);
        assert!(FrontendOpts::from_env_vars([("BUILDKIT_WORKERS", "nope")]).is_err());
    }

    #[test]
    fn duplicate_keys_resolve_deterministically() {
        let vars = vec![
            (
                "BUILDKIT_FRONTEND_OPT_7".to_string(),
                "target=b".to_string(),
            ),
            (
                "BUILDKIT_FRONTEND_OPT_2".to_string(),
                "target=a".to_string(),
            ),
        ];
        assert_eq!(
            FrontendOpts::from_env_vars(vars).unwrap().target.as_deref(),
            Some("b")
        );
    }

    #[test]
    fn csv() {
        assert_eq!(csv_fields("a,b").unwrap(), ["a", "b"]);
        assert_eq!(csv_fields(r#""a,b",c"#).unwrap(), ["a,b", "c"]);
        assert_eq!(csv_fields(r#""say ""hi""""#).unwrap(), [r#"say "hi""#]);
        assert!(csv_fields("\"open").is_err());
    }
}
