//! stack.toml text → [`Stack`]: TOML with spans, every unknown key and wrong type reported at once.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::limits::*;
use super::model::*;
use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::source::{SourceFile, Span};
use crate::version::Requirement;

const TOP_KEYS: &[&str] = &[
    "stack", "args", "layers", "services", "torch", "variants", "secrets",
];
const SECRET_KEYS: &[&str] = &["env", "target", "required"];
const CONDA_KEYS: &[&str] = &["file", "channels", "installer", "cache", "env"];
const DOCKERFILE_KEYS: &[&str] = &["file", "context", "target", "args"];
const TORCH_KEYS: &[&str] = &["packages", "cuda", "index"];
const TORCH_INDEX_KEYS: &[&str] = &["cpu", "cuda", "default"];
const VARIANT_KEYS: &[&str] = &[
    "description",
    "platforms",
    "torch",
    "env",
    "default",
    "layers",
    "services",
];
const STACK_KEYS: &[&str] = &[
    "name",
    "description",
    "default",
    "python",
    "installer",
    "platforms",
    "install-env",
    "tags",
    "cross-install",
    "resolve",
    "requires",
];
const IMAGE_KEYS: &[&str] = &[
    "description",
    "from",
    "apt",
    "apt-recommends",
    "apt-sources",
    "user",
    "workdir",
    "run",
    "requirements",
    "pip",
    "index-url",
    "extra-index-urls",
    "install-env",
    "env",
    "copy",
    "cmd",
    "entrypoint",
    "expose",
    "healthcheck",
    "labels",
    "stop-signal",
    "venv",
    "torch",
    "installer",
    "conda",
    "lock",
    "cross-install",
    "resolve",
    "build-only",
    "dockerfile",
    "python",
    "torch-backend",
    "tags",
    "platforms",
];
/// Keys an image has but a platform overlay cannot set: what is per image, not per platform.
pub(super) const NOT_PER_PLATFORM: &[&str] = &["platforms", "tags", "build-only"];
const USER_KEYS: &[&str] = &["name", "uid", "gid", "home", "shell", "create"];
const COPY_KEYS: &[&str] = &[
    "from", "context", "src", "dest", "chown", "mode", "exclude", "at", "optional",
];
const APT_SOURCE_KEYS: &[&str] = &[
    "name",
    "types",
    "uris",
    "suites",
    "components",
    "architectures",
    "key",
    "signed-by",
];
const RUN_KEYS: &[&str] = &["cmd", "context", "at"];
const HEALTH_KEYS: &[&str] = &["cmd", "interval", "timeout", "start-period", "retries"];
const VENV_KEYS: &[&str] = &["path", "builder", "builder-apt"];
const ARG_KEYS: &[&str] = &["default", "description"];
const LOCK_KEYS: &[&str] = &[
    "file",
    "groups",
    "extras",
    "python-version",
    "auth-secret",
    "member",
];

pub(super) type Value<'a> = Spanned<DeValue<'a>>;

/// Parse a stack file. Returns the model (as complete as the input allows) and diagnostics.
pub fn parse(file: &SourceFile) -> (Stack, Diagnostics) {
    let mut p = Parser {
        diags: Diagnostics::default(),
        image_index: std::collections::HashMap::new(),
    };
    if file.text.len() > MAX_FILE_BYTES {
        p.diags.push(
            Diagnostic::error(format!(
                "the stack file is {} bytes; the limit is {MAX_FILE_BYTES} bytes",
                file.text.len()
            ))
            .at(Span::new(0, 0))
            .hint("split it, or move long scripts and lists into files in the build context"),
        );
        return (Stack::default(), p.diags);
    }
    let mut stack = Stack {
        syntax: syntax_directive(&file.text),
        ..Stack::default()
    };
    let (root, errors) = DeTable::parse_recoverable(&file.text);
    for e in errors {
        let message = e.message().trim();
        let mut d = Diagnostic::error(format!("invalid TOML: {message}"));
        match e.span() {
            Some(span) => {
                let span: Span = span.into();
                if message == "duplicate key" {
                    // Name the key: the span is the repeated key as written.
                    let key = file.text.get(span.start..span.end).unwrap_or("").trim();
                    d = Diagnostic::error(format!("invalid TOML: duplicate key `{key}`"))
                        .hint("each key may appear once in a table; remove or rename one");
                }
                d = d.at(span);
            }
            None if message == "recursion limit" => {
                if let Some((span, parts)) = deep_key(&file.text) {
                    let key = file.text.get(span.start..span.end).unwrap_or("");
                    d = Diagnostic::error(format!(
                        "invalid TOML: a dotted key of {parts} parts; the limit is {MAX_KEY_DEPTH}"
                    ))
                    .at(span)
                    .key(key.to_string())
                    .hint("no stack key has more than a few parts");
                }
            }
            None => {}
        }
        p.diags.push(d);
    }
    let root_span: Span = root.span().into();
    let root = root.into_inner();
    for (k, v) in root.iter() {
        let key = k.get_ref().as_ref();
        let kspan: Span = k.span().into();
        match key {
            "stack" => p.stack_table(v, &mut stack),
            "args" => p.args(v, &mut stack),
            "layers" => p.images(v, Kind::Layer, &mut stack),
            "services" => p.images(v, Kind::Service, &mut stack),
            "torch" => stack.torch = p.torch(v),
            "variants" => p.variants(v, &mut stack),
            "secrets" => p.secrets(v, &mut stack),
            other => p.unknown_key(other, kspan, "", TOP_KEYS),
        }
    }
    let _ = root_span;
    // A stack for a newer frontend: its other keys may mean nothing here, so that is the one
    // error (and the model is left empty rather than half-understood).
    match crate::version::check_requires(&stack) {
        Requirement::Unmet(d) => {
            let stack = Stack {
                syntax: stack.syntax,
                requires: stack.requires,
                ..Stack::default()
            };
            return (stack, Diagnostics { items: vec![d] });
        }
        Requirement::Invalid(d) => p.diags.push(d),
        Requirement::Met | Requirement::Unset => {}
    }
    (stack, p.diags)
}

/// The value of a `# syntax=` directive on the first line(s), as BuildKit reads it.
fn syntax_directive(text: &str) -> Option<Sp<String>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            offset += line.len();
            continue;
        }
        let rest = trimmed.strip_prefix('#')?;
        let rest = rest.trim_start();
        // Leading `# key=value` lines are BuildKit directives (`syntax`, `check`, `escape`);
        // the first other line ends them.
        let (k, v) = rest.split_once('=')?;
        let k = k.trim();
        if k.eq_ignore_ascii_case("syntax") {
            let v = v.trim();
            let start = offset + line.find(v).unwrap_or(0);
            return Some(Sp::new(v.to_string(), Span::new(start, start + v.len())));
        }
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return None;
        }
        offset += line.len();
    }
    None
}

/// Which table an image body is read from: an image, a variant's overlay or a platform's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overlay {
    No,
    Variant,
    Platform,
}

pub(super) struct Parser {
    pub(super) diags: Diagnostics,
    /// Image name → index in `stack.images` (names are looked up once per image).
    image_index: std::collections::HashMap<String, usize>,
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn span_of(v: &Value<'_>) -> Span {
    v.span().into()
}

impl Parser {
    fn unknown_key(&mut self, key: &str, span: Span, prefix: &str, allowed: &[&str]) {
        let mut d = Diagnostic::error(format!(
            "unknown key `{key}`{}",
            if prefix.is_empty() {
                String::new()
            } else {
                format!(" in `{prefix}`")
            }
        ))
        .at(span)
        .key(join(prefix, key));
        d = match did_you_mean(key, allowed.iter().copied()) {
            Some(s) => d.hint(format!("did you mean `{s}`?")),
            None => d.hint(format!("allowed keys: {}", allowed.join(", "))),
        };
        self.diags.push(d);
    }

    fn type_error(&mut self, v: &Value<'_>, key: &str, expected: &str) {
        self.diags.push(
            Diagnostic::error(format!(
                "expected {expected}, found {}",
                v.get_ref().type_str()
            ))
            .at(span_of(v))
            .key(key.to_string()),
        );
    }

    fn table<'v, 'a>(&mut self, v: &'v Value<'a>, key: &str) -> Option<&'v DeTable<'a>> {
        match v.get_ref() {
            DeValue::Table(t) if self.too_many(t.len(), span_of(v), key) => None,
            DeValue::Table(t) => Some(t),
            _ => {
                self.type_error(v, key, "a table");
                None
            }
        }
    }

    pub(super) fn string(&mut self, v: &Value<'_>, key: &str) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::String(s) => self.text(s, span_of(v), key),
            _ => {
                self.type_error(v, key, "a string");
                None
            }
        }
    }

    /// A string, or an integer/bool written without quotes (arg defaults, labels, ports).
    fn scalar(&mut self, v: &Value<'_>, key: &str) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::String(s) => self.text(s, span_of(v), key),
            DeValue::Integer(i) => {
                // `0x2A` is 42: write integers in decimal whatever their TOML radix.
                let digits = i.as_str().replace('_', "");
                let digits = digits
                    .trim_start_matches("0x")
                    .trim_start_matches("0o")
                    .trim_start_matches("0b");
                match i64::from_str_radix(digits, i.radix()) {
                    Ok(n) => Some(Sp::new(n.to_string(), span_of(v))),
                    Err(_) => Some(Sp::new(i.as_str().to_string(), span_of(v))),
                }
            }
            DeValue::Boolean(b) => Some(Sp::new(b.to_string(), span_of(v))),
            DeValue::Float(f) => Some(Sp::new(f.as_str().to_string(), span_of(v))),
            _ => {
                self.type_error(v, key, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value<'_>, key: &str) -> Option<Sp<bool>> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, span_of(v))),
            _ => {
                self.type_error(v, key, "true or false");
                None
            }
        }
    }

    fn u32(&mut self, v: &Value<'_>, key: &str) -> Option<Sp<u32>> {
        let parsed = v.get_ref().as_integer().and_then(|i| {
            let s = i.as_str().replace('_', "");
            match i.radix() {
                10 => s.parse::<u32>().ok(),
                r => u32::from_str_radix(
                    s.trim_start_matches("0x")
                        .trim_start_matches("0o")
                        .trim_start_matches("0b"),
                    r,
                )
                .ok(),
            }
        });
        match parsed {
            Some(n) => Some(Sp::new(n, span_of(v))),
            None => {
                if v.get_ref().is_integer() {
                    self.diags.push(
                        Diagnostic::error("expected a whole number from 0 to 4294967295")
                            .at(span_of(v))
                            .key(key.to_string()),
                    );
                } else {
                    self.type_error(v, key, "an integer");
                }
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a list of one.
    fn strings(&mut self, v: &Value<'_>, key: &str) -> Vec<Sp<String>> {
        match v.get_ref() {
            DeValue::String(_) => self.string(v, key).into_iter().collect(),
            DeValue::Array(a) if self.too_many(a.len(), span_of(v), key) => vec![],
            DeValue::Array(a) => {
                let mut out = vec![];
                for (i, item) in a.iter().enumerate() {
                    if let Some(s) = self.string(item, &format!("{key}[{i}]")) {
                        out.push(s);
                    }
                }
                out
            }
            _ => {
                self.type_error(v, key, "a list of strings");
                vec![]
            }
        }
    }

    fn env_table(&mut self, v: &Value<'_>, key: &str) -> Vec<EnvVar> {
        let mut out = vec![];
        let Some(t) = self.table(v, key) else {
            return out;
        };
        for (k, val) in t.iter() {
            let name = k.get_ref().to_string();
            let kkey = join(key, &name);
            if name.is_empty() || name.contains(['=', '\0']) || name.len() > MAX_STRING_BYTES {
                self.diags.push(
                    Diagnostic::error(format!("invalid variable name `{}`", name.escape_debug()))
                        .at(k.span().into())
                        .key(kkey.clone()),
                );
                continue;
            }
            if let Some(value) = self.scalar(val, &kkey) {
                out.push(EnvVar {
                    name: Sp::new(name, k.span().into()),
                    value,
                });
            }
        }
        out
    }

    fn command(&mut self, v: &Value<'_>, key: &str) -> Option<Sp<Command>> {
        match v.get_ref() {
            DeValue::String(_) => {
                let s = self.string(v, key)?;
                Some(Sp::new(Command::Shell(s.value), s.span))
            }
            DeValue::Array(_) => {
                let items = self.strings(v, key);
                Some(Sp::new(
                    Command::Exec(items.into_iter().map(|s| s.value).collect()),
                    span_of(v),
                ))
            }
            _ => {
                self.type_error(
                    v,
                    key,
                    "a list of strings (exec form) or a string (shell form)",
                );
                None
            }
        }
    }

    fn stack_table(&mut self, v: &Value<'_>, stack: &mut Stack) {
        let Some(t) = self.table(v, "stack") else {
            return;
        };
        for (k, val) in t.iter() {
            let key = k.get_ref().as_ref();
            let path = join("stack", key);
            match key {
                "name" => stack.name = self.string(val, &path),
                "description" => stack.description = self.string(val, &path),
                "default" => stack.default_target = self.string(val, &path),
                "python" => stack.python = self.nonempty(val, &path, "a Python version or path"),
                "installer" => stack.installer = self.nonempty(val, &path, "an installer"),
                "platforms" => stack.platforms = self.strings(val, &path),
                "install-env" => stack.install_env = self.env_table(val, &path),
                "tags" => stack.tags = self.strings(val, &path),
                "cross-install" => stack.cross_install = self.boolean(val, &path),
                "resolve" => stack.resolve = self.boolean(val, &path),
                "requires" => stack.requires = self.string(val, &path),
                other => self.unknown_key(other, k.span().into(), "stack", STACK_KEYS),
            }
        }
    }

    fn args(&mut self, v: &Value<'_>, stack: &mut Stack) {
        let Some(t) = self.table(v, "args") else {
            return;
        };
        for (k, val) in t.iter() {
            let name = k.get_ref().to_string();
            let path = join("args", &name);
            if !valid_arg_name(&name) {
                self.diags.push(
                    Diagnostic::error(format!("invalid arg name `{name}`"))
                        .at(k.span().into())
                        .key(path.clone())
                        .hint("use letters, digits and `_`, not starting with a digit"),
                );
                continue;
            }
            let name = Sp::new(name, k.span().into());
            match val.get_ref() {
                DeValue::Table(at) => {
                    let mut arg = ArgDef {
                        name,
                        default: None,
                        description: None,
                    };
                    for (ak, av) in at.iter() {
                        let akey = ak.get_ref().as_ref();
                        let apath = join(&path, akey);
                        match akey {
                            "default" => arg.default = self.scalar(av, &apath),
                            "description" => arg.description = self.string(av, &apath),
                            other => self.unknown_key(other, ak.span().into(), &path, ARG_KEYS),
                        }
                    }
                    stack.args.push(arg);
                }
                _ => {
                    let default = self.scalar(val, &path);
                    stack.args.push(ArgDef {
                        name,
                        default,
                        description: None,
                    });
                }
            }
        }
    }

    fn images(&mut self, v: &Value<'_>, kind: Kind, stack: &mut Stack) {
        let table_key = kind.table();
        let Some(t) = self.table(v, table_key) else {
            return;
        };
        for (k, val) in t.iter() {
            let name = k.get_ref().to_string();
            let kspan: Span = k.span().into();
            let path = join(table_key, &name);
            if !valid_image_name(&name) {
                self.diags.push(
                    Diagnostic::error(format!("invalid {} name `{name}`", kind.as_str()))
                        .at(kspan)
                        .key(path.clone())
                        .hint("use lowercase letters, digits, `-`, `_` and `.`, starting with a letter"),
                );
            }
            if stack.images.len() >= MAX_IMAGES {
                self.diags.push(
                    Diagnostic::error(format!(
                        "more than {MAX_IMAGES} layers and services; the limit is {MAX_IMAGES}"
                    ))
                    .at(kspan)
                    .key(path.clone())
                    .hint("split the stack into several files"),
                );
                return;
            }
            if let Some(prev) = self.image_index.get(&name).map(|&i| &stack.images[i]) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{name}` is defined twice (as {} `{}` already)",
                        prev.kind.as_str(),
                        prev.name.value
                    ))
                    .at(kspan)
                    .key(path.clone())
                    .hint("layer and service names share one namespace; rename one"),
                );
                continue;
            }
            let Some(body) = self.table(val, &path) else {
                continue;
            };
            let mut img = ImageDef::new(kind, Sp::new(name, kspan), kspan);
            self.image_body(body, &path, &mut img, Overlay::No);
            self.image_index
                .insert(img.name.value.clone(), stack.images.len());
            stack.images.push(img);
        }
    }

    fn image_body(&mut self, t: &DeTable<'_>, path: &str, img: &mut ImageDef, overlay: Overlay) {
        for (k, val) in t.iter() {
            let key = k.get_ref().as_ref();
            let kp = join(path, key);
            if overlay == Overlay::Platform && NOT_PER_PLATFORM.contains(&key) {
                self.diags.push(
                    Diagnostic::error(format!("`{key}` cannot be set per platform"))
                        .at(k.span().into())
                        .key(kp.clone())
                        .hint(format!(
                            "set it on the image itself; a platform overlay takes the other image keys (not {})",
                            NOT_PER_PLATFORM.join(", ")
                        )),
                );
                continue;
            }
            if overlay == Overlay::Variant && key == "tags" {
                self.diags.push(
                    Diagnostic::error("`tags` cannot be set in a variant overlay")
                        .at(k.span().into())
                        .key(kp.clone())
                        .hint("set `tags` on the image itself; its variant targets use the same templates with ${NAME} = NAME-VARIANT"),
                );
                continue;
            }
            match key {
                "description" => img.description = self.string(val, &kp),
                "from" => img.from = self.string(val, &kp),
                "apt" => {
                    img.apt = self.strings(val, &kp);
                    self.no_empty_items(&img.apt, &kp, "a Debian package name");
                }
                "apt-recommends" => img.apt_recommends = self.boolean(val, &kp),
                "apt-sources" => img.apt_sources = self.apt_sources(val, &kp),
                "user" => img.user = self.user(val, &kp),
                "workdir" => img.workdir = self.nonempty(val, &kp, "an absolute directory"),
                "run" => img.run = self.runs(val, &kp),
                "requirements" => {
                    img.requirements = self.strings(val, &kp);
                    self.no_empty_items(
                        &img.requirements,
                        &kp,
                        "a requirements file in the context",
                    );
                }
                "pip" => {
                    img.pip = self.strings(val, &kp);
                    self.no_empty_items(&img.pip, &kp, "a requirement");
                }
                "index-url" => img.index_url = self.nonempty(val, &kp, "a package index URL"),
                "extra-index-urls" => {
                    img.extra_index_urls = self.strings(val, &kp);
                    self.no_empty_items(&img.extra_index_urls, &kp, "a package index URL");
                }
                "install-env" => img.install_env = self.env_table(val, &kp),
                "env" => img.env = self.env_table(val, &kp),
                "copy" => img.copy = self.copies(val, &kp),
                "cmd" => img.cmd = self.command(val, &kp),
                "entrypoint" => img.entrypoint = self.command(val, &kp),
                "expose" => img.expose = self.ports(val, &kp),
                "healthcheck" => img.healthcheck = self.healthcheck(val, &kp),
                "labels" => img.labels = self.env_table(val, &kp),
                "stop-signal" => img.stop_signal = self.scalar(val, &kp),
                "torch" => img.torch = self.torch_use(val, &kp),
                "installer" => img.installer = self.nonempty(val, &kp, "an installer"),
                "conda" => img.conda = self.conda(val, &kp),
                "lock" => img.lock = self.lock(val, &kp),
                "cross-install" => img.cross_install = self.boolean(val, &kp),
                "resolve" => img.resolve = self.boolean(val, &kp),
                "build-only" => img.build_only = self.boolean(val, &kp),
                "dockerfile" => img.dockerfile = self.dockerfile(val, &kp),
                "python" => img.python = self.nonempty(val, &kp, "a Python interpreter"),
                "torch-backend" => img.torch_backend = self.nonempty(val, &kp, "a PyTorch backend"),
                "tags" => img.tags = Some(self.strings(val, &kp)),
                "platforms" => img.platforms = self.platform_overlays(val, &kp, img),
                "venv" => {
                    if img.kind == Kind::Layer {
                        self.diags.push(
                            Diagnostic::error("`venv` is only for services")
                                .at(k.span().into())
                                .key(kp.clone())
                                .hint("a two-stage venv build makes a deployable image; move it to a [services.*] table"),
                        );
                    }
                    img.venv = self.venv(val, &kp);
                }
                other => self.unknown_key(other, k.span().into(), path, IMAGE_KEYS),
            }
        }
    }

    /// `platforms = { "linux/arm64" = { … } }` (usually written as
    /// `[services.api.platforms."linux/arm64"]`): one overlay per platform.
    fn platform_overlays(
        &mut self,
        v: &Value<'_>,
        key: &str,
        img: &ImageDef,
    ) -> Vec<PlatformOverlay> {
        let mut out: Vec<PlatformOverlay> = vec![];
        let Some(t) = self.table(v, key) else {
            return out;
        };
        for (k, val) in t.iter() {
            let written = k.get_ref().to_string();
            let kspan: Span = k.span().into();
            let plain = !written.is_empty()
                && written
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            let okey = if plain {
                join(key, &written)
            } else {
                format!("{key}.\"{}\"", written.escape_debug())
            };
            let platform = match crate::platform::Platform::parse(&written) {
                Ok(p) => p,
                Err(e) => {
                    self.diags.push(
                        Diagnostic::error(e)
                            .at(kspan)
                            .key(okey)
                            .hint("a platform overlay is named by its platform: [services.api.platforms.\"linux/arm64\"] (a lone architecture like \"arm64\" means linux/arm64)"),
                    );
                    continue;
                }
            };
            if let Some(prev) = out.iter().find(|o| o.platform == platform) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{written}` and `{}` are the same platform ({platform})",
                        prev.written.value
                    ))
                    .at(kspan)
                    .key(okey)
                    .hint("merge the two overlays into one"),
                );
                continue;
            }
            let Some(body) = self.table(val, &okey) else {
                continue;
            };
            let mut o = ImageDef::new(img.kind, img.name.clone(), kspan);
            self.image_body(body, &okey, &mut o, Overlay::Platform);
            out.push(PlatformOverlay {
                written: Sp::new(written, kspan),
                platform,
                key: okey,
                image: o,
            });
        }
        out
    }

    fn secrets(&mut self, v: &Value<'_>, stack: &mut Stack) {
        let Some(t) = self.table(v, "secrets") else {
            return;
        };
        for (k, val) in t.iter() {
            let name = k.get_ref().to_string();
            let path = join("secrets", &name);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                self.diags.push(
                    Diagnostic::error(format!("invalid secret id `{name}`"))
                        .at(k.span().into())
                        .key(path.clone())
                        .hint("letters, digits, `-`, `_` and `.`"),
                );
                continue;
            }
            let mut d = SecretDef {
                name: Sp::new(name, k.span().into()),
                env: None,
                target: None,
                required: None,
                span: span_of(val),
            };
            let Some(body) = self.table(val, &path) else {
                continue;
            };
            for (sk, sv) in body.iter() {
                let key = sk.get_ref().as_ref();
                let kp = join(&path, key);
                match key {
                    "env" => d.env = self.nonempty(sv, &kp, "an environment variable name"),
                    "target" => d.target = self.nonempty(sv, &kp, "an absolute file path"),
                    "required" => d.required = self.boolean(sv, &kp),
                    other => self.unknown_key(other, sk.span().into(), &path, SECRET_KEYS),
                }
            }
            stack.secrets.push(d);
        }
    }

    /// `lock = "uv.lock"` or `lock = { file = …, groups = […], extras = […], python-version = …,
    /// auth-secret = …, member = … }`.
    fn lock(&mut self, v: &Value<'_>, key: &str) -> Option<LockDef> {
        let mut d = LockDef {
            file: Sp::new(String::new(), span_of(v)),
            groups: vec![],
            extras: vec![],
            python_version: None,
            auth_secret: None,
            member: None,
            span: span_of(v),
        };
        if let DeValue::String(_) = v.get_ref() {
            d.file = self.nonempty(v, key, "a lock file in the context")?;
            return Some(d);
        }
        let t = self.table(v, key)?;
        let mut file = None;
        for (k, val) in t.iter() {
            let kk = k.get_ref().as_ref();
            let kp = join(key, kk);
            match kk {
                "file" => file = self.nonempty(val, &kp, "a lock file in the context"),
                "groups" => {
                    d.groups = self.strings(val, &kp);
                    self.no_empty_items(&d.groups, &kp, "a dependency group name");
                }
                "extras" => {
                    d.extras = self.strings(val, &kp);
                    self.no_empty_items(&d.extras, &kp, "an extra name");
                }
                "python-version" => {
                    d.python_version = self.nonempty(val, &kp, "a Python version like \"3.12\"")
                }
                "auth-secret" => {
                    d.auth_secret = self.nonempty(val, &kp, "the name of a [secrets.NAME]")
                }
                "member" => d.member = self.nonempty(val, &kp, "a workspace member's name"),
                other => self.unknown_key(other, k.span().into(), key, LOCK_KEYS),
            }
        }
        d.file = self.required_file(
            file,
            v,
            key,
            "lock",
            "a lock file in the context",
            "lock = { file = \"uv.lock\", groups = [\"prod\"] }",
        )?;
        Some(d)
    }

    /// The `file` of a `{ file, … }` table (`lock`, `conda`, `dockerfile`), or an error at the
    /// table saying that `what` needs one (`is`: what the file is; `example`: the hint).
    fn required_file(
        &mut self,
        file: Option<Sp<String>>,
        v: &Value<'_>,
        key: &str,
        what: &str,
        is: &str,
        example: &str,
    ) -> Option<Sp<String>> {
        if file.is_none() {
            self.diags.push(
                Diagnostic::error(format!("`{what}` needs `file` ({is})"))
                    .at(span_of(v))
                    .key(key.to_string())
                    .hint(example.to_string()),
            );
        }
        file
    }

    fn conda(&mut self, v: &Value<'_>, key: &str) -> Option<CondaDef> {
        let t = self.table(v, key)?;
        let mut file = None;
        let mut d = CondaDef {
            file: Sp::new(String::new(), span_of(v)),
            channels: vec![],
            installer: None,
            cache: None,
            env: None,
            span: span_of(v),
        };
        for (k, val) in t.iter() {
            let kk = k.get_ref().as_ref();
            let kp = join(key, kk);
            match kk {
                "file" => file = self.nonempty(val, &kp, "an environment file in the context"),
                "channels" => {
                    d.channels = self.strings(val, &kp);
                    self.no_empty_items(&d.channels, &kp, "a channel name or URL");
                }
                "installer" => d.installer = self.nonempty(val, &kp, "an installer"),
                "cache" => d.cache = self.nonempty(val, &kp, "a cache mode"),
                "env" => d.env = self.nonempty(val, &kp, "an environment name"),
                other => self.unknown_key(other, k.span().into(), key, CONDA_KEYS),
            }
        }
        d.file = self.required_file(
            file,
            v,
            key,
            "conda",
            "an environment file in the context",
            "conda = { file = \"packages.yaml\" }",
        )?;
        Some(d)
    }

    /// `dockerfile = "path"` or `{ file, context, target, args }`.
    fn dockerfile(&mut self, v: &Value<'_>, key: &str) -> Option<DockerfileDef> {
        let what = "a Dockerfile in the build context";
        if let DeValue::String(_) = v.get_ref() {
            let file = self.nonempty(v, key, what)?;
            return Some(DockerfileDef {
                file,
                context: None,
                target: None,
                args: vec![],
                span: span_of(v),
            });
        }
        let t = self.table(v, key)?;
        let mut file = None;
        let mut d = DockerfileDef {
            file: Sp::new(String::new(), span_of(v)),
            context: None,
            target: None,
            args: vec![],
            span: span_of(v),
        };
        for (k, val) in t.iter() {
            let kk = k.get_ref().as_ref();
            let kp = join(key, kk);
            match kk {
                "file" => file = self.nonempty(val, &kp, what),
                "context" => {
                    d.context = self.nonempty(val, &kp, "a directory of the build context")
                }
                "target" => d.target = self.nonempty(val, &kp, "a stage name of the Dockerfile"),
                "args" => d.args = self.env_table(val, &kp),
                other => self.unknown_key(other, k.span().into(), key, DOCKERFILE_KEYS),
            }
        }
        d.file = self.required_file(
            file,
            v,
            key,
            "dockerfile",
            "a Dockerfile in the context",
            "dockerfile = { file = \"services/auth/Dockerfile\", context = \"services/auth\" }",
        )?;
        Some(d)
    }

    /// A file mode as octal digits: `"0755"`, `0o755` (TOML octal) and `755` all give `755`.
    fn mode(&mut self, v: &Value<'_>, key: &str) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::Integer(i) if i.radix() == 8 => {
                let digits = i.as_str().replace('_', "");
                let digits = digits.trim_start_matches("0o");
                Some(Sp::new(digits.to_string(), span_of(v)))
            }
            DeValue::Integer(i) if i.radix() == 10 => {
                Some(Sp::new(i.as_str().replace('_', ""), span_of(v)))
            }
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                let digits = digits.trim_start_matches("0x").trim_start_matches("0b");
                match u32::from_str_radix(digits, i.radix()) {
                    Ok(n) => Some(Sp::new(format!("{n:o}"), span_of(v))),
                    Err(_) => Some(Sp::new(i.as_str().to_string(), span_of(v))),
                }
            }
            _ => self.string(v, key),
        }
    }

    fn torch_use(&mut self, v: &Value<'_>, key: &str) -> Option<Sp<TorchUse>> {
        match v.get_ref() {
            DeValue::Boolean(true) => Some(Sp::new(TorchUse::All, span_of(v))),
            DeValue::Boolean(false) => None,
            DeValue::Array(_) => {
                let names = self.strings(v, key).into_iter().map(|s| s.value).collect();
                Some(Sp::new(TorchUse::Only(names), span_of(v)))
            }
            _ => {
                self.type_error(v, key, "true or a list of [torch] package names");
                None
            }
        }
    }

    fn torch(&mut self, v: &Value<'_>) -> Option<TorchDef> {
        let t = self.table(v, "torch")?;
        let mut d = TorchDef {
            packages: vec![],
            cuda: None,
            index_cpu: None,
            index_cuda: None,
            index_default: None,
            span: span_of(v),
        };
        for (k, val) in t.iter() {
            let key = k.get_ref().as_ref();
            let path = join("torch", key);
            match key {
                "packages" => {
                    let Some(pt) = self.table(val, &path) else {
                        continue;
                    };
                    for (pk, pv) in pt.iter() {
                        let name = pk.get_ref().to_string();
                        if let Some(ver) = self.string(pv, &join(&path, &name)) {
                            d.packages.push((Sp::new(name, pk.span().into()), ver));
                        }
                    }
                }
                "cuda" => d.cuda = self.string(val, &path),
                "index" => {
                    let Some(it) = self.table(val, &path) else {
                        continue;
                    };
                    for (ik, iv) in it.iter() {
                        let ikey = ik.get_ref().as_ref();
                        let ip = join(&path, ikey);
                        match ikey {
                            "cpu" => d.index_cpu = self.string(iv, &ip),
                            "cuda" => d.index_cuda = self.string(iv, &ip),
                            "default" => d.index_default = self.string(iv, &ip),
                            other => {
                                self.unknown_key(other, ik.span().into(), &path, TORCH_INDEX_KEYS)
                            }
                        }
                    }
                }
                other => self.unknown_key(other, k.span().into(), "torch", TORCH_KEYS),
            }
        }
        if d.packages.is_empty() {
            self.diags.push(
                Diagnostic::error("`[torch]` lists no packages")
                    .at(span_of(v))
                    .key("torch.packages")
                    .hint("e.g. packages = { torch = \"2.1.2\", torchvision = \"0.16.2\" }"),
            );
        }
        Some(d)
    }

    fn variants(&mut self, v: &Value<'_>, stack: &mut Stack) {
        let Some(t) = self.table(v, "variants") else {
            return;
        };
        for (k, val) in t.iter() {
            let name = k.get_ref().to_string();
            let kspan: Span = k.span().into();
            let path = join("variants", &name);
            if !valid_image_name(&name) {
                self.diags.push(
                    Diagnostic::error(format!("invalid variant name `{name}`"))
                        .at(kspan)
                        .key(path.clone())
                        .hint("use lowercase letters, digits, `-`, `_` and `.`, starting with a letter"),
                );
            }
            let Some(body) = self.table(val, &path) else {
                continue;
            };
            let mut var = VariantDef {
                name: Sp::new(name, kspan),
                description: None,
                platforms: vec![],
                torch: None,
                env: vec![],
                default: None,
                images: vec![],
                span: kspan,
            };
            for (vk, vv) in body.iter() {
                let key = vk.get_ref().as_ref();
                let kp = join(&path, key);
                match key {
                    "description" => var.description = self.string(vv, &kp),
                    "platforms" => var.platforms = self.strings(vv, &kp),
                    "torch" => var.torch = self.string(vv, &kp),
                    "env" => var.env = self.env_table(vv, &kp),
                    "default" => var.default = self.boolean(vv, &kp),
                    "layers" | "services" => {
                        let kind = if key == "layers" {
                            Kind::Layer
                        } else {
                            Kind::Service
                        };
                        let Some(it) = self.table(vv, &kp) else {
                            continue;
                        };
                        for (ik, iv) in it.iter() {
                            let iname = ik.get_ref().to_string();
                            let ip = join(&kp, &iname);
                            let Some(ib) = self.table(iv, &ip) else {
                                continue;
                            };
                            let mut img = ImageDef::new(
                                kind,
                                Sp::new(iname, ik.span().into()),
                                ik.span().into(),
                            );
                            self.image_body(ib, &ip, &mut img, Overlay::Variant);
                            var.images.push(img);
                        }
                    }
                    other => self.unknown_key(other, vk.span().into(), &path, VARIANT_KEYS),
                }
            }
            stack.variants.push(var);
        }
    }

    fn user(&mut self, v: &Value<'_>, key: &str) -> Option<UserDef> {
        match v.get_ref() {
            DeValue::String(_) => Some(UserDef {
                name: self.string(v, key)?,
                uid: None,
                gid: None,
                home: None,
                shell: None,
                create: None,
                span: span_of(v),
            }),
            DeValue::Table(t) => {
                let mut name = None;
                let mut u = UserDef {
                    name: Sp::new(String::new(), span_of(v)),
                    uid: None,
                    gid: None,
                    home: None,
                    shell: None,
                    create: None,
                    span: span_of(v),
                };
                for (k, val) in t.iter() {
                    let kk = k.get_ref().as_ref();
                    let kp = join(key, kk);
                    match kk {
                        "name" => name = self.string(val, &kp),
                        "uid" => u.uid = self.u32(val, &kp),
                        "gid" => u.gid = self.u32(val, &kp),
                        "home" => u.home = self.string(val, &kp),
                        "shell" => u.shell = self.string(val, &kp),
                        "create" => u.create = self.boolean(val, &kp),
                        other => self.unknown_key(other, k.span().into(), key, USER_KEYS),
                    }
                }
                match name {
                    Some(n) => u.name = n,
                    None => {
                        self.diags.push(
                            Diagnostic::error("`user` needs a `name`")
                                .at(span_of(v))
                                .key(key.to_string()),
                        );
                        return None;
                    }
                }
                Some(u)
            }
            _ => {
                self.type_error(
                    v,
                    key,
                    "a user name or a table { name, uid, gid, home, shell, create }",
                );
                None
            }
        }
    }

    /// `run`: a string, a `{ cmd, context }` table, or a list of them.
    fn apt_sources(&mut self, v: &Value<'_>, key: &str) -> Vec<AptSourceDef> {
        let items: Vec<&Value<'_>> = match v.get_ref() {
            DeValue::Array(a) if self.too_many(a.len(), span_of(v), key) => return vec![],
            DeValue::Array(a) => a.iter().collect(),
            DeValue::Table(_) => vec![v],
            _ => {
                self.type_error(v, key, "a list of { uris, suites, components, key } tables");
                return vec![];
            }
        };
        let mut out = vec![];
        for (i, item) in items.into_iter().enumerate() {
            let ik = format!("{key}[{i}]");
            let Some(t) = self.table(item, &ik) else {
                continue;
            };
            let mut d = AptSourceDef {
                name: None,
                types: vec![],
                uris: vec![],
                suites: vec![],
                components: vec![],
                architectures: vec![],
                key: None,
                signed_by: None,
                span: span_of(item),
            };
            for (k, val) in t.iter() {
                let kk = k.get_ref().as_ref();
                let kp = join(&ik, kk);
                match kk {
                    "name" => d.name = self.nonempty(val, &kp, "a file name"),
                    "types" => d.types = self.strings(val, &kp),
                    "uris" => d.uris = self.strings(val, &kp),
                    "suites" => d.suites = self.strings(val, &kp),
                    "components" => d.components = self.strings(val, &kp),
                    "architectures" => d.architectures = self.strings(val, &kp),
                    "key" => d.key = self.nonempty(val, &kp, "a key file in the context"),
                    "signed-by" => {
                        d.signed_by = self.nonempty(val, &kp, "a keyring path or an armored key")
                    }
                    other => self.unknown_key(other, k.span().into(), &ik, APT_SOURCE_KEYS),
                }
            }
            for (what, list) in [("uris", &d.uris), ("suites", &d.suites)] {
                if list.is_empty() {
                    self.diags.push(
                        Diagnostic::error(format!("an apt source needs `{what}`"))
                            .at(d.span)
                            .key(ik.clone())
                            .hint("apt-sources = [{ uris = \"https://example.org/debian\", suites = \"stable\", components = \"main\", key = \"keys/example.asc\" }]"),
                    );
                }
            }
            out.push(d);
        }
        out
    }

    fn runs(&mut self, v: &Value<'_>, key: &str) -> Vec<RunDef> {
        let items: Vec<&Value<'_>> = match v.get_ref() {
            DeValue::Array(a) if self.too_many(a.len(), span_of(v), key) => return vec![],
            DeValue::Array(a) => a.iter().collect(),
            DeValue::String(_) | DeValue::Table(_) => vec![v],
            _ => {
                self.type_error(v, key, "a list of commands or { cmd, context } tables");
                return vec![];
            }
        };
        let mut out = vec![];
        for (i, item) in items.into_iter().enumerate() {
            let ik = format!("{key}[{i}]");
            match item.get_ref() {
                DeValue::String(_) => {
                    if let Some(cmd) = self.string(item, &ik) {
                        out.push(RunDef {
                            cmd,
                            context: vec![],
                            at: None,
                            span: span_of(item),
                        })
                    }
                }
                DeValue::Table(t) => {
                    let mut cmd = None;
                    let mut context = vec![];
                    let mut at = None;
                    for (k, val) in t.iter() {
                        let kk = k.get_ref().as_ref();
                        let kp = join(&ik, kk);
                        match kk {
                            "cmd" => cmd = self.string(val, &kp),
                            "context" => context = self.strings(val, &kp),
                            "at" => at = self.string(val, &kp),
                            other => self.unknown_key(other, k.span().into(), &ik, RUN_KEYS),
                        }
                    }
                    match cmd {
                        Some(cmd) => out.push(RunDef {
                            cmd,
                            context,
                            at,
                            span: span_of(item),
                        }),
                        None => self.diags.push(
                            Diagnostic::error("a run entry needs `cmd`")
                                .at(span_of(item))
                                .key(ik),
                        ),
                    }
                }
                _ => self.type_error(item, &ik, "a command or a { cmd, context } table"),
            }
        }
        out
    }

    fn copies(&mut self, v: &Value<'_>, key: &str) -> Vec<CopyDef> {
        let items: Vec<&Value<'_>> = match v.get_ref() {
            DeValue::Array(a) if self.too_many(a.len(), span_of(v), key) => return vec![],
            DeValue::Array(a) => a.iter().collect(),
            DeValue::String(_) | DeValue::Table(_) => vec![v],
            _ => {
                self.type_error(v, key, "a list of paths or { src, dest } tables");
                return vec![];
            }
        };
        let mut out = vec![];
        for (i, item) in items.into_iter().enumerate() {
            let ik = format!("{key}[{i}]");
            match item.get_ref() {
                DeValue::String(_) => out.push(CopyDef {
                    from: None,
                    context: None,
                    src: match self.string(item, &ik) {
                        Some(s) => s,
                        None => continue,
                    },
                    dest: None,
                    chown: Chown::Default,
                    mode: None,
                    exclude: vec![],
                    at: None,
                    optional: None,
                    span: span_of(item),
                }),
                DeValue::Table(t) => {
                    let mut src = None;
                    let mut c = CopyDef {
                        from: None,
                        context: None,
                        src: Sp::new(String::new(), span_of(item)),
                        dest: None,
                        chown: Chown::Default,
                        mode: None,
                        exclude: vec![],
                        at: None,
                        optional: None,
                        span: span_of(item),
                    };
                    for (k, val) in t.iter() {
                        let kk = k.get_ref().as_ref();
                        let kp = join(&ik, kk);
                        match kk {
                            "from" => c.from = self.nonempty(val, &kp, "a layer or service name"),
                            "context" => {
                                c.context = self.nonempty(val, &kp, "a named context's name")
                            }
                            "src" => src = self.string(val, &kp),
                            "dest" => c.dest = self.string(val, &kp),
                            "chown" => match val.get_ref() {
                                DeValue::Boolean(true) => c.chown = Chown::Default,
                                DeValue::Boolean(false) => c.chown = Chown::No,
                                DeValue::String(_) => {
                                    if let Some(s) = self.string(val, &kp) {
                                        c.chown = Chown::To(s)
                                    }
                                }
                                _ => self.type_error(val, &kp, "true, false or \"user[:group]\""),
                            },
                            "mode" => c.mode = self.mode(val, &kp),
                            "exclude" => c.exclude = self.strings(val, &kp),
                            "at" => c.at = self.string(val, &kp),
                            "optional" => c.optional = self.boolean(val, &kp),
                            other => self.unknown_key(other, k.span().into(), &ik, COPY_KEYS),
                        }
                    }
                    match src {
                        Some(s) => {
                            c.src = s;
                            out.push(c);
                        }
                        None => self.diags.push(
                            Diagnostic::error("a copy entry needs `src`")
                                .at(span_of(item))
                                .key(ik),
                        ),
                    }
                }
                _ => self.type_error(item, &ik, "a path or a { src, dest } table"),
            }
        }
        out
    }

    fn ports(&mut self, v: &Value<'_>, key: &str) -> Vec<Sp<String>> {
        let items: Vec<&Value<'_>> = match v.get_ref() {
            DeValue::Array(a) if self.too_many(a.len(), span_of(v), key) => return vec![],
            DeValue::Array(a) => a.iter().collect(),
            _ => vec![v],
        };
        let mut out = vec![];
        for (i, item) in items.into_iter().enumerate() {
            if let Some(s) = self.scalar(item, &format!("{key}[{i}]")) {
                out.push(s);
            }
        }
        out
    }

    fn healthcheck(&mut self, v: &Value<'_>, key: &str) -> Option<HealthcheckDef> {
        let mut h = HealthcheckDef {
            test: None,
            interval: None,
            timeout: None,
            start_period: None,
            retries: None,
            span: span_of(v),
        };
        match v.get_ref() {
            DeValue::String(s) if s.as_ref() == "none" => Some(h),
            DeValue::String(_) | DeValue::Array(_) => {
                h.test = self.command(v, key);
                h.test.as_ref()?;
                Some(h)
            }
            DeValue::Table(t) => {
                for (k, val) in t.iter() {
                    let kk = k.get_ref().as_ref();
                    let kp = join(key, kk);
                    match kk {
                        "cmd" => h.test = self.command(val, &kp),
                        "interval" => h.interval = self.string(val, &kp),
                        "timeout" => h.timeout = self.string(val, &kp),
                        "start-period" => h.start_period = self.string(val, &kp),
                        "retries" => h.retries = self.u32(val, &kp),
                        other => self.unknown_key(other, k.span().into(), key, HEALTH_KEYS),
                    }
                }
                if h.test.is_none() {
                    self.diags.push(
                        Diagnostic::error("`healthcheck` needs `cmd`")
                            .at(span_of(v))
                            .key(key.to_string())
                            .hint(
                                "write healthcheck = \"none\" to disable an inherited healthcheck",
                            ),
                    );
                    return None;
                }
                Some(h)
            }
            _ => {
                self.type_error(
                    v,
                    key,
                    "a table { cmd, interval, timeout, start-period, retries } or \"none\"",
                );
                None
            }
        }
    }

    fn venv(&mut self, v: &Value<'_>, key: &str) -> Option<VenvDef> {
        let mut d = VenvDef {
            path: None,
            builder: None,
            builder_apt: vec![],
            span: span_of(v),
        };
        match v.get_ref() {
            DeValue::Boolean(true) => Some(d),
            DeValue::Boolean(false) => None,
            DeValue::Table(t) => {
                for (k, val) in t.iter() {
                    let kk = k.get_ref().as_ref();
                    let kp = join(key, kk);
                    match kk {
                        "path" => d.path = self.string(val, &kp),
                        "builder" => d.builder = self.string(val, &kp),
                        "builder-apt" => d.builder_apt = self.strings(val, &kp),
                        other => self.unknown_key(other, k.span().into(), key, VENV_KEYS),
                    }
                }
                Some(d)
            }
            _ => {
                self.type_error(v, key, "true or a table { path, builder, builder-apt }");
                None
            }
        }
    }
}

/// Every table's keys as the parser accepts them, by the schema's name for the table: what
/// [`super::schema`] builds the JSON Schema from, so the two cannot drift apart.
pub(super) const KEY_TABLES: &[(&str, &[&str])] = &[
    ("top", TOP_KEYS),
    ("stack", STACK_KEYS),
    ("arg", ARG_KEYS),
    ("image", IMAGE_KEYS),
    ("user", USER_KEYS),
    ("apt-source", APT_SOURCE_KEYS),
    ("run", RUN_KEYS),
    ("copy", COPY_KEYS),
    ("healthcheck", HEALTH_KEYS),
    ("venv", VENV_KEYS),
    ("conda", CONDA_KEYS),
    ("lock", LOCK_KEYS),
    ("dockerfile", DOCKERFILE_KEYS),
    ("torch", TORCH_KEYS),
    ("torch-index", TORCH_INDEX_KEYS),
    ("variant", VARIANT_KEYS),
    ("secret", SECRET_KEYS),
];

pub(crate) fn valid_arg_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_image_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
        })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
