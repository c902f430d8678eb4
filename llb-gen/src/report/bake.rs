//! `llb-gen bake`: a `docker-bake.json` for `docker buildx bake` — one target per service (in
//! the `default` group) and per layer (in the `bases` group), each building the stack file
//! with `--target NAME`, tagged from the stack's `tags` template. `build-only` images get no
//! target: they are built as a part of the images that copy from or build on them.
//!
//! Tag templates (`[stack] tags = ["${REGISTRY}/${OWNER}/${NAME}:${VERSION}"]`): `${NAME}` is
//! the image's name, `${HASH}` its content hash (12 hex characters, see [`super::hash`]), any
//! other `${…}` a stack arg (after `--build-arg`). Bake evaluates JSON strings as HCL
//! templates, so every `${` we write is escaped as `$${`.
//!
//! [`BakeFormat::Compose`] writes the same targets as a compose file (`services.NAME.build`),
//! because buildx before 0.17.0 drops a bake file's `network` without a word (its `Target`
//! reads `network` from compose files only) and rejects `--set '*.network=…'` with `unknown
//! key: network`. Next to the JSON file (`docker buildx bake -f docker-bake.json -f
//! docker-bake.network.yml`) bake takes the groups and targets from the JSON and the network
//! from the compose file.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::interp::{Unknown, interpolate};
use crate::plan::{self, BuildOptions, PlanImage};
use crate::source::Span;
use crate::stack::{Kind, Sp, Stack};

/// What the bake file says besides the stack: where the context and the stack file are.
#[derive(Clone, Debug, Default)]
pub struct BakeOptions {
    /// The build context, as bake should read it (relative to where bake runs).
    pub context: String,
    /// The stack file, relative to the context (bake joins the two).
    pub dockerfile: String,
    /// Platform ids for every target; empty = let the builder choose.
    pub platforms: Vec<String>,
    /// `network` of every target (`host` needs `--allow network.host` from buildx 0.17.0 on).
    pub network: Option<String>,
    /// What to write: a bake JSON file or a compose file.
    pub format: BakeFormat,
    /// Named directory contexts (`--build-context NAME=DIR`), NAME → DIR as bake should
    /// read it: written as `contexts` (compose: `additional_contexts`) into every target
    /// whose image, or an image it needs, reads NAME.
    pub contexts: BTreeMap<String, String>,
}

/// For each image of `images` (one plan of every image), the named contexts it reads itself
/// or through the images it is built on, its venv builder and the images it copies from.
fn contexts_read(images: &[PlanImage]) -> Vec<std::collections::BTreeSet<String>> {
    let own: Vec<std::collections::BTreeSet<String>> = images
        .iter()
        .map(|i| {
            i.context_reads()
                .into_iter()
                .filter_map(|r| r.context)
                .collect()
        })
        .collect();
    (0..images.len())
        .map(|start| {
            let mut out = std::collections::BTreeSet::new();
            let mut seen = vec![false; images.len()];
            let mut todo = vec![start];
            while let Some(i) = todo.pop() {
                if i >= images.len() || std::mem::replace(&mut seen[i], true) {
                    continue;
                }
                out.extend(own[i].iter().cloned());
                let img = &images[i];
                let bases = std::iter::once(&img.base)
                    .chain(img.venv.as_ref().map(|v| &v.builder))
                    .chain(img.copy_sources());
                for b in bases {
                    if let plan::Base::Layer { index, .. } = b {
                        todo.push(*index);
                    }
                }
            }
            out
        })
        .collect()
}

/// The file `llb-gen bake` writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BakeFormat {
    /// `docker-bake.json`: the targets and the groups `default`, `bases` and `variants`.
    #[default]
    Json,
    /// A compose file with the same targets as services (`build.context`, `dockerfile`,
    /// `target`, `args`, `tags`, `network`, and `x-bake.platforms`) and no groups. It is JSON,
    /// which is YAML: bake reads it as compose when its name ends in `.yml` or `.yaml`.
    Compose,
}

/// The first buildx whose bake reads `network` from a bake (HCL/JSON) file and accepts
/// `--set '*.network=…'` and `--allow` (docker/buildx#2671). Before it, only compose files'
/// `build.network` reaches the build.
pub const BUILDX_BAKE_NETWORK: &str = "0.17.0";

/// The two placeholders a tag template has besides stack args.
pub const NAME_VAR: &str = "NAME";
pub const HASH_VAR: &str = "HASH";

/// Whether some tag template uses `${HASH}` (then hashes must be computed, reading the context).
pub fn uses_hash(stack: &Stack) -> bool {
    stack
        .tags
        .iter()
        .chain(stack.images.iter().flat_map(|i| i.tags.iter().flatten()))
        .any(|t| t.value.contains(&format!("${{{HASH_VAR}}}")))
}

/// The tag templates of `image` with the key of each: its own `tags` when it sets them (an
/// empty list: no tags), else `[stack] tags`.
fn templates<'s>(stack: &'s Stack, image: &str) -> Vec<(&'s Sp<String>, String)> {
    match stack
        .image(image)
        .and_then(|i| i.tags.as_ref().map(|t| (i, t)))
    {
        Some((img, own)) => own
            .iter()
            .enumerate()
            .map(|(i, t)| (t, format!("{}.tags[{i}]", img.key())))
            .collect(),
        None => stack
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t, format!("stack.tags[{i}]")))
            .collect(),
    }
}

/// Whether the tag templates of `image` use `${HASH}`.
fn image_uses_hash(stack: &Stack, image: &str) -> bool {
    templates(stack, image)
        .iter()
        .any(|(t, _)| t.value.contains(&format!("${{{HASH_VAR}}}")))
}

/// The tags of image `image` (named `name` in the tags: the image, or `NAME-VARIANT`): every
/// template of its own `tags`, else of `[stack] tags`, interpolated with the args (`vars`,
/// from [`plan::arg_values`]), `${NAME}` and `${HASH}`.
pub fn tags(
    stack: &Stack,
    vars: &BTreeMap<String, String>,
    image: &str,
    name: &str,
    hash: Option<&str>,
) -> Result<Vec<String>, Diagnostics> {
    let mut vars = vars.clone();
    vars.insert(NAME_VAR.into(), name.into());
    if let Some(h) = hash {
        vars.insert(HASH_VAR.into(), h.into());
    }
    let mut diags = Diagnostics::default();
    let mut out = vec![];
    for (t, key) in templates(stack, image) {
        match interpolate(&t.value, &vars, Unknown::Error) {
            Ok(tag) => match plan::normalize_image_ref(&tag) {
                Ok(_) if tag.contains('@') => diags.push(
                    Diagnostic::error(format!("tag `{tag}` of `{name}` has a digest"))
                        .at(t.span)
                        .key(key)
                        .hint("a tag is `registry/repository:tag`"),
                ),
                Ok(_) => {
                    if !out.contains(&tag) {
                        out.push(tag)
                    }
                }
                Err(e) => diags.push(
                    Diagnostic::error(format!(
                        "tag `{tag}` of `{name}` is not a valid image reference: {e}"
                    ))
                    .at(t.span)
                    .key(key)
                    .hint(
                        "tags look like \"ghcr.io/org/${NAME}:${VERSION}\"; check the args it uses",
                    ),
                ),
            },
            Err(undef) => {
                for u in undef {
                    let start = (t.span.start + 1 + u.start).min(t.span.end);
                    let end = (t.span.start + 1 + u.end).min(t.span.end);
                    let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                    let hint = match did_you_mean(&u.name, known.iter().copied()) {
                        Some(s) => format!("did you mean `${{{s}}}`?"),
                        None => format!(
                            "tags can use ${{NAME}}, ${{HASH}} and the args of [args]; declare {} = \"…\" there",
                            u.name
                        ),
                    };
                    diags.push(
                        Diagnostic::error(format!("`${{{}}}` is not defined", u.name))
                            .at(Span::new(start, end))
                            .key(key.clone())
                            .hint(hint),
                    );
                }
            }
        }
    }
    if diags.has_errors() {
        Err(diags.sorted())
    } else {
        Ok(out)
    }
}

/// Check the tag templates of a stack without building anything (`${HASH}` gets a stand-in):
/// undefined args and invalid references, once per template.
pub fn check_tags(stack: &Stack, opts: &BuildOptions) -> Diagnostics {
    let vars = plan::arg_values(stack, opts);
    let name = stack
        .images
        .first()
        .map(|i| i.name.value.as_str())
        .unwrap_or("image");
    let mut diags = Diagnostics::default();
    if let Err(d) = tags(stack, &vars, "", name, Some("0123456789ab")) {
        diags.extend(d);
    }
    // The images with their own templates.
    for img in stack.images.iter().filter(|i| i.tags.is_some()) {
        let n = &img.name.value;
        if let Err(d) = tags(stack, &vars, n, n, Some("0123456789ab")) {
            diags.extend(d);
        }
    }
    diags.sorted()
}

/// `${` → `$${`, `%{` → `%%{`: bake reads JSON strings as HCL templates.
pub fn escape(s: &str) -> String {
    s.replace("${", "$${").replace("%{", "%%{")
}

/// `$` → `$$`: compose interpolates `$NAME` and `${NAME}` in every value.
pub fn escape_compose(s: &str) -> String {
    s.replace('$', "$$")
}

/// Every string in `v` (not the object keys) through `f`.
fn map_strings(v: Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| map_strings(x, f)).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, x)| (k, map_strings(x, f))).collect())
        }
        other => other,
    }
}

/// A bake target name for an image: bake allows `[a-zA-Z0-9_-]`, image names also `.`.
pub fn target_name(image: &str) -> String {
    image.replace('.', "_")
}

/// The bake file for every image of the stack (`images`, as [`super::plan_all`] gives them).
/// `hashes`: short content hashes by image name, needed when a template uses `${HASH}`.
pub fn render(
    stack: &Stack,
    images: &[PlanImage],
    opts: &BuildOptions,
    bake: &BakeOptions,
    hashes: &BTreeMap<String, String>,
) -> Result<String, Diagnostics> {
    let vars = plan::arg_values(stack, opts);
    let mut diags = Diagnostics::default();
    let mut args = Map::new();
    for a in &stack.args {
        if plan::BUILTIN_ARGS.contains(&a.name.value.as_str()) {
            continue; // set by the build itself
        }
        if let Some(v) = vars.get(&a.name.value) {
            args.insert(a.name.value.clone(), Value::String(v.clone()));
        }
    }
    let mut targets = Map::new();
    let mut names: BTreeMap<String, &str> = BTreeMap::new();
    let (mut services, mut layers) = (vec![], vec![]);
    let reads = if bake.contexts.is_empty() {
        vec![Default::default(); images.len()]
    } else {
        contexts_read(images)
    };
    for (img, reads) in images.iter().zip(&reads) {
        if img.build_only {
            // Never shipped: built as a part of what copies from it, never tagged or pushed.
            continue;
        }
        let tn = target_name(&img.name);
        if tn == "default" || tn == "bases" {
            diags.push(
                Diagnostic::error(format!(
                    "`{}` cannot be a bake target: `default` and `bases` are the bake groups",
                    img.name
                ))
                .at(img.span)
                .key(img.key.clone())
                .hint("rename the layer or service"),
            );
            continue;
        }
        if let Some(other) = names.insert(tn.clone(), &img.name) {
            diags.push(
                Diagnostic::error(format!(
                    "`{}` and `{other}` are the same bake target `{tn}` (bake names cannot have `.`)",
                    img.name
                ))
                .at(img.span)
                .key(img.key.clone())
                .hint("rename one of them"),
            );
            continue;
        }
        let hash = hashes.get(&img.name).map(String::as_str);
        if hash.is_none() && image_uses_hash(stack, &img.name) {
            diags.push(
                Diagnostic::error(format!("no content hash for `{}`", img.name)).key("stack.tags"),
            );
            continue;
        }
        let image_tags = match tags(stack, &vars, &img.name, &img.name, hash) {
            Ok(t) => t,
            Err(d) => {
                diags.extend(d);
                continue;
            }
        };
        let mut t = Map::new();
        t.insert("context".into(), Value::String(bake.context.clone()));
        t.insert("dockerfile".into(), Value::String(bake.dockerfile.clone()));
        t.insert("target".into(), Value::String(img.name.clone()));
        if !image_tags.is_empty() {
            t.insert("tags".into(), json!(image_tags));
        }
        if !args.is_empty() {
            t.insert("args".into(), Value::Object(args.clone()));
        }
        if !bake.platforms.is_empty() {
            t.insert("platforms".into(), json!(bake.platforms));
        }
        if let Some(n) = &bake.network {
            t.insert("network".into(), Value::String(n.clone()));
        }
        let contexts: Map<String, Value> = bake
            .contexts
            .iter()
            .filter(|(n, _)| reads.contains(*n))
            .map(|(n, d)| (n.clone(), Value::String(d.clone())))
            .collect();
        if !contexts.is_empty() {
            t.insert("contexts".into(), Value::Object(contexts));
        }
        targets.insert(tn.clone(), Value::Object(t));
        match img.kind {
            Kind::Service => services.push(tn),
            Kind::Layer => layers.push(tn),
        }
    }
    // A target per service per variant (`api-cuda` building `--target api@cuda`), with the
    // variant's platforms; grouped as `variants`. Content hashes are per default variant, so
    // these targets get the templates' tags only when they do not use `${HASH}`.
    let mut variant_targets = vec![];
    for v in &stack.variants {
        for svc in &services {
            let Some(Value::Object(base)) = targets.get(svc).cloned() else {
                continue;
            };
            let image = names.get(svc).copied().unwrap_or(svc.as_str()).to_string();
            let tn = format!("{svc}-{}", target_name(&v.name.value));
            if targets.contains_key(&tn) {
                diags.push(
                    Diagnostic::error(format!("bake target `{tn}` (service `{image}` in variant `{}`) collides with an image of that name", v.name.value))
                        .at(v.span)
                        .key(format!("variants.{}", v.name.value))
                        .hint("rename the variant or the image"),
                );
                continue;
            }
            let mut t = base;
            t.insert(
                "target".into(),
                Value::String(format!("{image}@{}", v.name.value)),
            );
            if bake.platforms.is_empty() && !v.platforms.is_empty() {
                t.insert(
                    "platforms".into(),
                    json!(
                        v.platforms
                            .iter()
                            .map(|p| p.value.clone())
                            .collect::<Vec<_>>()
                    ),
                );
            }
            t.remove("tags");
            if !image_uses_hash(stack, &image) {
                match tags(stack, &vars, &image, &tn, None) {
                    Ok(list) if !list.is_empty() => {
                        t.insert("tags".into(), json!(list));
                    }
                    Ok(_) => {}
                    Err(d) => diags.extend(d),
                }
            }
            targets.insert(tn.clone(), Value::Object(t));
            variant_targets.push(tn);
        }
    }
    if diags.has_errors() {
        return Err(diags.sorted());
    }
    if bake.format == BakeFormat::Compose {
        return Ok(compose_file(targets));
    }
    let targets = map_strings(Value::Object(targets), &escape);
    let mut groups = Map::new();
    if !variant_targets.is_empty() {
        groups.insert("variants".into(), json!({ "targets": variant_targets }));
    }
    let default = if services.is_empty() {
        layers.clone()
    } else {
        services
    };
    groups.insert("default".into(), json!({ "targets": default }));
    if !layers.is_empty() {
        groups.insert("bases".into(), json!({ "targets": layers }));
    }
    let file = json!({ "group": groups, "target": targets });
    let mut s = serde_json::to_string_pretty(&file).expect("JSON values");
    s.push('\n');
    Ok(s)
}

/// The bake targets as a compose file: a service per target whose `build` has the target's
/// keys (`platforms` under `x-bake`, where bake reads them in compose files), every `$` as
/// `$$`.
fn compose_file(targets: Map<String, Value>) -> String {
    let mut services = Map::new();
    for (name, t) in targets {
        let Value::Object(mut t) = map_strings(t, &escape_compose) else {
            continue;
        };
        if let Some(p) = t.remove("platforms") {
            t.insert("x-bake".into(), json!({ "platforms": p }));
        }
        if let Some(c) = t.remove("contexts") {
            t.insert("additional_contexts".into(), c);
        }
        services.insert(name, json!({ "build": t }));
    }
    let mut s =
        serde_json::to_string_pretty(&json!({ "services": services })).expect("JSON values");
    s.push('\n');
    s
}

/// `to` relative to directory `from`, both absolute and clean (`/`-separated): `a/b`,
/// `../x/stack.toml`.
pub fn relative_path(from_dir: &str, to: &str) -> String {
    let f: Vec<&str> = from_dir.split('/').filter(|c| !c.is_empty()).collect();
    let t: Vec<&str> = to.split('/').filter(|c| !c.is_empty()).collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; f.len() - common];
    parts.extend(&t[common..]);
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::report::plan_all;

    const TAGGED: &str = r#"
[stack]
tags = ["${REGISTRY}/${OWNER}/${NAME}:${BASE_VERSION}", "${REGISTRY}/${OWNER}/${NAME}:${HASH}"]
[args]
REGISTRY = "gitea.example.com"
OWNER = "harkon"
BASE_VERSION = "v1.0.1"
[layers.base-ml]
from = "python:3.12-slim"
pip = ["numpy"]
[services.svc-ocr]
from = "base-ml"
copy = ["apps/ocr"]
"#;

    fn bake_opts() -> BakeOptions {
        BakeOptions {
            context: ".".into(),
            dockerfile: "stack.toml".into(),
            platforms: vec![],
            network: None,
            format: BakeFormat::Json,
            contexts: BTreeMap::new(),
        }
    }

    #[test]
    fn targets_get_the_named_contexts_their_images_read() {
        let s = stack(
            "[layers.deps]\nfrom = \"python:3.12-slim\"\nrequirements = [\"svc-api:r.txt\"]\n\
             [services.api]\nfrom = \"deps\"\ncopy = [{ context = \"web\", src = \"dist\" }]\n\
             [services.plain]\nfrom = \"python:3.12-slim\"\ncopy = [\"main.py\"]\n",
        );
        let mut o = opts();
        for n in ["svc-api", "web", "unused"] {
            o.named_contexts.insert(n.into(), Default::default());
        }
        let p = plan_all(&s, &o).unwrap();
        let b = BakeOptions {
            contexts: [("svc-api", "../api"), ("web", "../web"), ("unused", "../x")]
                .into_iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect(),
            ..bake_opts()
        };
        let v: Value =
            serde_json::from_str(&render(&s, &p.images, &o, &b, &BTreeMap::new()).unwrap())
                .unwrap();
        assert_eq!(
            v["target"]["deps"]["contexts"],
            json!({ "svc-api": "../api" })
        );
        // Its own and its base layer's.
        assert_eq!(
            v["target"]["api"]["contexts"],
            json!({ "svc-api": "../api", "web": "../web" })
        );
        assert!(v["target"]["plain"].get("contexts").is_none(), "{v}");
        let compose = BakeOptions {
            format: BakeFormat::Compose,
            ..b
        };
        let v: Value =
            serde_json::from_str(&render(&s, &p.images, &o, &compose, &BTreeMap::new()).unwrap())
                .unwrap();
        assert_eq!(
            v["services"]["api"]["build"]["additional_contexts"],
            json!({ "svc-api": "../api", "web": "../web" })
        );
    }

    #[test]
    fn a_target_per_image_with_tags_from_the_template() {
        let s = stack(TAGGED);
        let p = plan_all(&s, &opts()).unwrap();
        let hashes: BTreeMap<String, String> = [
            ("base-ml".to_string(), "aaaaaaaaaaaa".to_string()),
            ("svc-ocr".to_string(), "bbbbbbbbbbbb".to_string()),
        ]
        .into();
        let mut o = opts();
        o.build_args.insert("BASE_VERSION".into(), "v1.0.2".into());
        let b = BakeOptions {
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            ..bake_opts()
        };
        let text = render(&s, &p.images, &o, &b, &hashes).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["group"]["default"]["targets"], json!(["svc-ocr"]));
        assert_eq!(v["group"]["bases"]["targets"], json!(["base-ml"]));
        let t = &v["target"]["base-ml"];
        assert_eq!(t["context"], ".");
        assert_eq!(t["dockerfile"], "stack.toml");
        assert_eq!(t["target"], "base-ml");
        assert_eq!(
            t["tags"],
            json!([
                "gitea.example.com/harkon/base-ml:v1.0.2",
                "gitea.example.com/harkon/base-ml:aaaaaaaaaaaa"
            ])
        );
        assert_eq!(
            t["args"],
            json!({"REGISTRY": "gitea.example.com", "OWNER": "harkon", "BASE_VERSION": "v1.0.2"})
        );
        assert_eq!(t["platforms"], json!(["linux/amd64", "linux/arm64"]));
        assert_eq!(
            v["target"]["svc-ocr"]["tags"][1],
            "gitea.example.com/harkon/svc-ocr:bbbbbbbbbbbb"
        );
        // Deterministic.
        assert_eq!(text, render(&s, &p.images, &o, &b, &hashes).unwrap());
    }

    #[test]
    fn a_target_per_service_per_variant() {
        let s = stack(
            "[variants.cpu]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n[variants.cuda]\nplatforms = [\"linux/amd64\"]\n[layers.base]\nfrom = \"python:3\"\n[services.api]\nfrom = \"base\"\n",
        );
        let p = plan_all(&s, &opts()).unwrap();
        let text = render(&s, &p.images, &opts(), &bake_opts(), &BTreeMap::new()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["group"]["variants"]["targets"],
            json!(["api-cpu", "api-cuda"])
        );
        assert_eq!(v["target"]["api-cuda"]["target"], "api@cuda");
        assert_eq!(v["target"]["api-cuda"]["platforms"], json!(["linux/amd64"]));
        assert_eq!(
            v["target"]["api-cpu"]["platforms"],
            json!(["linux/amd64", "linux/arm64"])
        );
        assert_eq!(v["group"]["default"]["targets"], json!(["api"]));
    }

    #[test]
    fn no_template_no_tags_and_escaped_strings() {
        let s = stack("[args]\nX = \"x\"\n[services.\"a.b\"]\nfrom = \"python:3\"\n");
        let mut o = opts();
        o.build_args.insert("X".into(), "${HOME}".into());
        let p = plan_all(&s, &o).unwrap();
        let text = render(&s, &p.images, &o, &bake_opts(), &BTreeMap::new()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let t = &v["target"]["a_b"];
        assert_eq!(t["target"], "a.b");
        assert!(t.get("tags").is_none());
        assert!(t.get("platforms").is_none());
        // The arg's value is `${HOME}`; bake must not evaluate it.
        assert_eq!(t["args"]["X"], "$${HOME}");
        assert!(v["group"].get("bases").is_none());
    }

    #[test]
    fn template_errors_point_into_the_template() {
        let src = "[stack]\ntags = [\"reg/${NAME}:${VERSON}\"]\n[args]\nVERSION = \"1\"\n[services.a]\nfrom = \"x\"\n";
        let s = stack(src);
        let d = check_tags(&s, &opts());
        assert_eq!(d.error_count(), 1);
        let e = &d.items[0];
        let span = e.span.unwrap();
        assert_eq!(&src[span.start..span.end], "${VERSON}");
        assert!(e.hint.as_deref().unwrap().contains("${VERSION}"), "{e:?}");
        let s = stack("[stack]\ntags = [\"Bad Tag/${NAME}\"]\n[services.a]\nfrom = \"x\"\n");
        assert!(
            check_tags(&s, &opts()).items[0]
                .message
                .contains("not a valid image reference")
        );
        let s = stack("[stack]\ntags = [\"r/${NAME}:${HASH}\"]\n[services.a]\nfrom = \"x\"\n");
        assert!(uses_hash(&s));
        assert!(!check_tags(&s, &opts()).has_errors());
    }

    #[test]
    fn an_image_with_its_own_tags_replaces_the_stack_templates() {
        let s = stack(
            "[stack]\ntags = [\"reg/${NAME}:${V}\"]\n[args]\nV = \"1\"\n[variants.cpu]\n\
             [layers.base]\nfrom = \"python:3\"\ntags = []\n\
             [services.api]\nfrom = \"base\"\ntags = [\"other.io/team/api:${V}\", \"other.io/team/api:${HASH}\"]\n\
             [services.web]\nfrom = \"base\"\n",
        );
        assert!(uses_hash(&s), "an image's template uses ${{HASH}}");
        let p = plan_all(&s, &opts()).unwrap();
        let hashes: BTreeMap<String, String> = [
            ("base".to_string(), "aaaaaaaaaaaa".to_string()),
            ("api".to_string(), "bbbbbbbbbbbb".to_string()),
            ("web".to_string(), "cccccccccccc".to_string()),
        ]
        .into();
        let text = render(&s, &p.images, &opts(), &bake_opts(), &hashes).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["target"]["base"].get("tags").is_none(), "tags = []: none");
        assert_eq!(
            v["target"]["api"]["tags"],
            json!(["other.io/team/api:1", "other.io/team/api:bbbbbbbbbbbb"])
        );
        assert_eq!(v["target"]["web"]["tags"], json!(["reg/web:1"]));
        // Variant targets: the image's templates; none when they use ${HASH}.
        assert!(v["target"]["api-cpu"].get("tags").is_none());
        assert_eq!(v["target"]["web-cpu"]["tags"], json!(["reg/web-cpu:1"]));
        // check reports an image's template at its own key.
        let s = stack("[services.a]\nfrom = \"x\"\ntags = [\"Bad Tag/${NAME}\"]\n");
        let d = check_tags(&s, &opts());
        assert_eq!(d.items[0].key.as_deref(), Some("services.a.tags[0]"));
    }

    #[test]
    fn reserved_and_colliding_names() {
        let s = stack(
            "[layers.bases]\nfrom = \"x\"\n[services.\"a.b\"]\nfrom = \"x\"\n[services.a_b]\nfrom = \"x\"\n",
        );
        let p = plan_all(&s, &opts()).unwrap();
        let e = render(&s, &p.images, &opts(), &bake_opts(), &BTreeMap::new()).unwrap_err();
        assert_eq!(e.error_count(), 2, "{:?}", e.items);
    }

    #[test]
    fn the_same_targets_as_a_compose_file() {
        let s = stack(
            "[stack]\ntags = [\"reg/${NAME}:${V}\"]\n[args]\nV = \"1\"\nW = \"w\"\n[variants.cpu]\nplatforms = [\"linux/amd64\"]\n\
             [layers.base]\nfrom = \"python:3\"\n[services.\"a.b\"]\nfrom = \"base\"\n",
        );
        let mut o = opts();
        o.build_args.insert("W".into(), "$HOME-${X}-%{y}".into());
        let p = plan_all(&s, &o).unwrap();
        let json_opts = BakeOptions {
            network: Some("host".into()),
            ..bake_opts()
        };
        let compose_opts = BakeOptions {
            format: BakeFormat::Compose,
            ..json_opts.clone()
        };
        let bake: Value =
            serde_json::from_str(&render(&s, &p.images, &o, &json_opts, &BTreeMap::new()).unwrap())
                .unwrap();
        let text = render(&s, &p.images, &o, &compose_opts, &BTreeMap::new()).unwrap();
        let compose: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            compose.as_object().unwrap().len(),
            1,
            "only `services`: {compose}"
        );
        let services = compose["services"].as_object().unwrap();
        // A service per bake target, variant targets included.
        let names: Vec<&str> = services.keys().map(String::as_str).collect();
        assert_eq!(names, ["a_b", "a_b-cpu", "base"]);
        for (name, svc) in services {
            let b = &svc["build"];
            let t = &bake["target"][name];
            for key in ["context", "dockerfile", "target", "network"] {
                assert_eq!(b[key], t[key], "{name}.{key}");
            }
            assert_eq!(b["network"], "host");
        }
        let b = &services["a_b"]["build"];
        assert_eq!(b["target"], "a.b");
        // Compose interpolates every `$`; HCL only `${` and `%{`.
        assert_eq!(b["args"]["W"], "$$HOME-$${X}-%{y}");
        assert_eq!(bake["target"]["a_b"]["args"]["W"], "$HOME-$${X}-%%{y}");
        assert_eq!(b["tags"], json!(["reg/a.b:1"]));
        let cpu = &services["a_b-cpu"]["build"];
        assert_eq!(cpu["target"], "a.b@cpu");
        assert_eq!(cpu["x-bake"]["platforms"], json!(["linux/amd64"]));
        assert!(cpu.get("platforms").is_none());
        assert_eq!(
            text,
            render(&s, &p.images, &o, &compose_opts, &BTreeMap::new()).unwrap()
        );
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative_path("/w/ex", "/w/ex/stack.toml"), "stack.toml");
        assert_eq!(relative_path("/w/ex", "/w/stack.toml"), "../stack.toml");
        assert_eq!(relative_path("/", "/a/b"), "a/b");
        assert_eq!(relative_path("/a/b", "/a/b"), ".");
    }
}
