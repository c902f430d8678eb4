//! The JSON Schema of stack.toml (`llb-gen schema`), built from the parser's own key tables.
//!
//! Every object in the schema lists exactly the keys [`super::parse`] accepts for that table
//! (`KEY_TABLES`), with `additionalProperties: false`; this module only adds each key's type
//! and a one-line description. A key the parser gains without a type here makes [`schema`]
//! fail (and its test), so the schema cannot silently fall behind the parser. The committed
//! copy, `schema/stack.schema.json`, is compared with the generated one by a test.
//!
//! Draft-07, which taplo (VS Code "Even Better TOML") and check-jsonschema both understand.
//! Stacks reference it with a `#:schema` comment right under the `# syntax=` line.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::parse::KEY_TABLES;

/// Where the committed schema lives in the repository.
pub const SCHEMA_PATH: &str = "schema/stack.schema.json";

/// The schema's `$id`: the committed file on the default branch.
pub const SCHEMA_ID: &str =
    "https://raw.githubusercontent.com/layerstack/layerstack/main/schema/stack.schema.json";

/// Layer, service and variant names (as `valid_image_name` in the parser).
const IMAGE_NAME: &str = "^[a-z][a-z0-9._-]*$";
/// `[args]` names (as `valid_arg_name`).
const ARG_NAME: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
/// `[secrets]` ids.
const SECRET_ID: &str = "^[A-Za-z0-9._-]+$";
/// `env`, `install-env` and `labels` names: anything without `=`.
const ENV_NAME: &str = "^[^=]+$";

/// The schema, or the keys the parser accepts that have no type here.
pub fn schema() -> Result<Value, String> {
    let mut g = Gen::default();
    let mut defs = Map::new();
    defs.insert("string".into(), json!({ "type": "string" }));
    defs.insert(
        "strings".into(),
        json!({
            "description": "A string or a list of strings.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        }),
    );
    defs.insert(
        "scalar".into(),
        json!({ "type": ["string", "integer", "number", "boolean"] }),
    );
    defs.insert(
        "env".into(),
        json!({
            "type": "object",
            "propertyNames": { "pattern": ENV_NAME },
            "additionalProperties": { "$ref": "#/definitions/scalar" }
        }),
    );
    defs.insert(
        "command".into(),
        json!({
            "description": "A list of strings (exec form) or a string (shell form).",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        }),
    );
    defs.insert(
        "uint32".into(),
        json!({ "type": "integer", "minimum": 0, "maximum": 4294967295u64 }),
    );
    defs.insert(
        "user".into(),
        json!({ "anyOf": [ { "type": "string" }, g.object("user", &[], &["name"]) ] }),
    );
    let run_entry = json!({ "anyOf": [ { "type": "string" }, g.object("run", &[], &["cmd"]) ] });
    defs.insert("run".into(), one_or_many(run_entry));
    let copy_entry = json!({ "anyOf": [ { "type": "string" }, g.object("copy", &[], &["src"]) ] });
    defs.insert("copy".into(), one_or_many(copy_entry));
    defs.insert(
        "ports".into(),
        one_or_many(json!({ "type": ["string", "integer"] })),
    );
    defs.insert(
        "healthcheck".into(),
        json!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } },
                g.object("healthcheck", &[], &["cmd"])
            ]
        }),
    );
    defs.insert(
        "venv".into(),
        json!({ "anyOf": [ { "type": "boolean" }, g.object("venv", &[], &[]) ] }),
    );
    defs.insert("conda".into(), g.object("conda", &[], &["file"]));
    defs.insert(
        "lock".into(),
        json!({ "anyOf": [ { "type": "string" }, g.object("lock", &[], &["file"]) ] }),
    );
    defs.insert(
        "dockerfile".into(),
        json!({ "anyOf": [ { "type": "string" }, g.object("dockerfile", &[], &["file"]) ] }),
    );
    let source = g.object("apt-source", &[], &["uris", "suites"]);
    defs.insert("apt-sources".into(), one_or_many(source));
    defs.insert(
        "torch-use".into(),
        json!({
            "anyOf": [
                { "type": "boolean" },
                { "type": "array", "items": { "type": "string" } }
            ]
        }),
    );
    // Layers cannot have `venv` (the parser says so); overlays need no `from`.
    // An image needs `from`, or is built from a `dockerfile`.
    let from_or_dockerfile = |mut o: Value| {
        o["anyOf"] = json!([{ "required": ["from"] }, { "required": ["dockerfile"] }]);
        o
    };
    defs.insert(
        "layer".into(),
        from_or_dockerfile(g.object("image", &["venv"], &[])),
    );
    defs.insert(
        "service".into(),
        from_or_dockerfile(g.object("image", &[], &[])),
    );
    // A variant overlay cannot set `tags`; a platform overlay none of NOT_PER_PLATFORM.
    defs.insert(
        "layer-overlay".into(),
        g.object("image", &["venv", "tags"], &[]),
    );
    defs.insert("service-overlay".into(), g.object("image", &["tags"], &[]));
    defs.insert(
        "platform-overlay".into(),
        g.object("image", super::parse::NOT_PER_PLATFORM, &[]),
    );
    defs.insert(
        "platform-overlays".into(),
        json!({
            "type": "object",
            "propertyNames": { "pattern": "^[a-z0-9_]+(/[a-z0-9_]+){0,2}$" },
            "additionalProperties": reference("platform-overlay")
        }),
    );
    defs.insert(
        "arg".into(),
        json!({ "anyOf": [ { "$ref": "#/definitions/scalar" }, g.object("arg", &[], &[]) ] }),
    );
    defs.insert("stack".into(), g.object("stack", &[], &[]));
    defs.insert("torch".into(), g.object("torch", &[], &["packages"]));
    defs.insert("torch-index".into(), g.object("torch-index", &[], &[]));
    defs.insert("variant".into(), g.object("variant", &[], &[]));
    defs.insert("secret".into(), g.object("secret", &[], &[]));
    let top = g.object("top", &[], &[]);
    let unvisited: Vec<&str> = KEY_TABLES
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| !g.visited.contains(t))
        .collect();
    if !g.missing.is_empty() || !unvisited.is_empty() {
        let mut msg = String::new();
        if !g.missing.is_empty() {
            msg.push_str(&format!(
                "keys the parser accepts but the schema has no type for: {}",
                g.missing.join(", ")
            ));
        }
        if !unvisited.is_empty() {
            msg.push_str(&format!(
                "{}parser key tables the schema does not use: {}",
                if msg.is_empty() { "" } else { "; " },
                unvisited.join(", ")
            ));
        }
        return Err(msg);
    }
    let mut root = Map::new();
    root.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    root.insert("$id".into(), json!(SCHEMA_ID));
    root.insert("title".into(), json!("layerstack stack.toml"));
    root.insert(
        "description".into(),
        json!(
            "A layerstack stack: layers and services of Python/ML images, built by the \
             layerstack BuildKit frontend. Generated by `llb-gen schema`; see docs/stack-toml.md."
        ),
    );
    if let Value::Object(top) = top {
        root.extend(top);
    }
    root.insert("definitions".into(), Value::Object(defs));
    Ok(Value::Object(root))
}

/// The schema as committed: indented JSON and a final newline.
pub fn schema_json() -> Result<String, String> {
    let v = schema()?;
    let mut s = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
    s.push('\n');
    Ok(s)
}

fn one_or_many(item: Value) -> Value {
    json!({ "anyOf": [ item.clone(), { "type": "array", "items": item } ] })
}

fn reference(def: &str) -> Value {
    json!({ "$ref": format!("#/definitions/{def}") })
}

fn map_of(def: &str, names: &str) -> Value {
    json!({
        "type": "object",
        "propertyNames": { "pattern": names },
        "additionalProperties": reference(def)
    })
}

#[derive(Default)]
struct Gen {
    missing: Vec<String>,
    visited: BTreeSet<&'static str>,
}

impl Gen {
    /// A closed object with the parser's keys of `table` (except `skip`).
    fn object(&mut self, table: &'static str, skip: &[&str], required: &[&str]) -> Value {
        self.visited.insert(table);
        let keys = KEY_TABLES
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, k)| *k)
            .unwrap_or_else(|| {
                self.missing.push(format!("{table} (no such key table)"));
                &[]
            });
        let mut props = Map::new();
        for key in keys.iter().filter(|k| !skip.contains(k)) {
            match key_schema(table, key) {
                Some((mut s, doc)) => {
                    if let Value::Object(o) = &mut s {
                        o.insert("description".into(), json!(doc));
                    }
                    props.insert(key.to_string(), s);
                }
                None => self.missing.push(format!("{table}.{key}")),
            }
        }
        let mut o = json!({
            "type": "object",
            "additionalProperties": false,
            "properties": props
        });
        if !required.is_empty() {
            o["required"] = json!(required);
        }
        o
    }
}

/// Each key's type (a `$ref` or an inline schema) and description, by table.
fn key_schema(table: &str, key: &str) -> Option<(Value, &'static str)> {
    let r = reference;
    Some(match (table, key) {
        ("top", "stack") => (r("stack"), "Stack-wide settings."),
        ("top", "args") => (
            map_of("arg", ARG_NAME),
            "Build arguments: NAME = default, or NAME = { default, description }; `${NAME}` in values, overridden with --build-arg.",
        ),
        ("top", "layers") => (
            map_of("layer", IMAGE_NAME),
            "Shared base images, built on each other (`from` names a layer or an image).",
        ),
        ("top", "services") => (
            map_of("service", IMAGE_NAME),
            "Deployable images, built on layers or images.",
        ),
        ("top", "torch") => (
            r("torch"),
            "The PyTorch package set, resolved per platform and variant.",
        ),
        ("top", "variants") => (
            map_of("variant", IMAGE_NAME),
            "Flavours of the whole stack (e.g. cpu, cuda): build one with --target NAME@VARIANT.",
        ),
        ("top", "secrets") => (
            map_of("secret", SECRET_ID),
            "BuildKit secrets (--secret id=NAME,...) given to every install step.",
        ),

        ("stack", "name") => (r("string"), "Informational; the build doesn't use it."),
        ("stack", "description") => (r("string"), "Informational; the build doesn't use it."),
        ("stack", "default") => (
            r("string"),
            "The target built without --target: a layer or service (default: the first service, else the last layer).",
        ),
        ("stack", "python") => (
            r("string"),
            "The interpreter that runs pip and venv (default \"python3\").",
        ),
        ("stack", "installer") => (
            r("string"),
            "What installs Python packages: \"pip\" (default), \"uv\" or \"uv==VERSION\".",
        ),
        ("stack", "platforms") => (
            r("strings"),
            "Platforms built when --platform is not given, e.g. [\"linux/amd64\", \"linux/arm64\"].",
        ),
        ("stack", "install-env") => (
            r("env"),
            "Env for every install step of every image (never written to an image).",
        ),
        ("stack", "tags") => (
            r("strings"),
            "Tag templates for `llb-gen bake`: ${NAME}, ${HASH} and args.",
        ),
        ("stack", "cross-install") => (
            json!({ "type": "boolean" }),
            "Install wheels for a foreign platform on the build platform instead of under emulation (default true).",
        ),
        ("stack", "resolve") => (
            json!({ "type": "boolean" }),
            "Resolve pip steps for the build platform into a lock in the build and install it as layer groups, like a foreign platform's (default false).",
        ),
        ("stack", "requires") => (
            r("string"),
            "The layerstack versions this stack needs, a semver requirement such as \">=0.2\"; an older frontend stops with that error.",
        ),

        ("arg", "default") => (r("scalar"), "The value when no --build-arg gives one."),
        ("arg", "description") => (r("string"), "What the argument is for."),

        ("image", "description") => (
            r("string"),
            "Shown by `llb-gen targets` and --call targets.",
        ),
        ("image", "from") => (
            r("string"),
            "The base: a layer of this stack, or an image reference.",
        ),
        ("image", "apt") => (
            r("strings"),
            "Debian packages and ./local .deb files from the context, one apt-get install step.",
        ),
        ("image", "apt-recommends") => (
            json!({ "type": "boolean" }),
            "Install recommended packages too (default false: --no-install-recommends).",
        ),
        ("image", "apt-sources") => (
            r("apt-sources"),
            "Extra apt repositories (deb822 sources with Signed-By), written before apt-get update.",
        ),
        ("image", "user") => (
            r("user"),
            "The user: a name, or { name, uid, gid, home, shell, create }; created unless root or numeric.",
        ),
        ("image", "workdir") => (r("string"), "The working directory (absolute), created."),
        ("image", "run") => (
            r("run"),
            "Commands, one step each: strings or { cmd, context, at } tables.",
        ),
        ("image", "requirements") => (
            r("strings"),
            "Requirements files in the build context (NAME:PATH in a named context), installed with pip install -r.",
        ),
        ("image", "pip") => (
            r("strings"),
            "Requirement specifiers (or ./local packages, NAME:./path in a named context), installed in one pip step.",
        ),
        ("image", "index-url") => (r("string"), "--index-url for the pip and torch steps."),
        ("image", "extra-index-urls") => (
            r("strings"),
            "One --extra-index-url each, for the pip and torch steps.",
        ),
        ("image", "install-env") => (
            r("env"),
            "Env for this image's install steps only; not inherited, not in the image.",
        ),
        ("image", "env") => (r("env"), "Written to the image config's Env; inherited."),
        ("image", "copy") => (
            r("copy"),
            "Copies from the build context or another image (last unless `at`): paths or { from, src, dest, chown, mode, exclude, at, optional }.",
        ),
        ("image", "cmd") => (r("command"), "The image config's Cmd."),
        ("image", "entrypoint") => (
            r("command"),
            "The image config's Entrypoint (resets an inherited cmd).",
        ),
        ("image", "expose") => (r("ports"), "Ports: 8000 or \"53/udp\", or a list."),
        ("image", "healthcheck") => (
            r("healthcheck"),
            "A command, { cmd, interval, timeout, start-period, retries }, or \"none\" to remove an inherited one.",
        ),
        ("image", "labels") => (r("env"), "Merged into the image config's Labels."),
        ("image", "stop-signal") => (
            json!({ "type": ["string", "integer"] }),
            "The image config's StopSignal.",
        ),
        ("image", "venv") => (
            r("venv"),
            "Services only: install Python deps into a venv in a builder stage, copy it in. true or { path, builder, builder-apt }.",
        ),
        ("image", "torch") => (
            r("torch-use"),
            "Install the [torch] packages (true) or some of them (a list of names).",
        ),
        ("image", "installer") => (
            r("string"),
            "What runs this image's pip steps: \"pip\", \"uv\" or \"uv==VERSION\".",
        ),
        ("image", "conda") => (
            r("conda"),
            "Install a conda environment file with micromamba: { file, channels, installer, cache, env }.",
        ),
        ("image", "lock") => (
            r("lock"),
            "Install the packages of a lock file (uv.lock, pylock.toml): \"uv.lock\" or { file, groups, extras, python-version, auth-secret, member }.",
        ),
        ("image", "cross-install") => (
            json!({ "type": "boolean" }),
            "Whether this image's pip steps for a foreign platform may install on the build platform.",
        ),
        ("image", "resolve") => (
            json!({ "type": "boolean" }),
            "Whether this image's pip steps for the build platform are resolved into a lock and installed as layer groups (overrides [stack] resolve).",
        ),
        ("image", "python") => (
            r("string"),
            "The interpreter of this image's pip steps (overrides [stack] python); inherited by images built on it.",
        ),
        ("image", "torch-backend") => (
            r("string"),
            "The PyTorch backend of this image's torch step: \"cpu\", \"cuda\", \"cu121\", \"rocm5.6\"; overrides the variant's; inherited by images built on it.",
        ),
        ("image", "tags") => (
            r("strings"),
            "Tag templates of this image for `llb-gen bake` (replace [stack] tags; [] = none).",
        ),
        ("image", "platforms") => (
            r("platform-overlays"),
            "Per-platform overlays: { \"linux/arm64\" = { from = …, apt = … } }, merged in when planning that platform.",
        ),
        ("image", "build-only") => (
            json!({ "type": "boolean" }),
            "Never shipped: only built to copy artifacts from or to build on (no bake target, not the default target; --target still builds it).",
        ),

        ("user", "name") => (r("string"), "The user name."),
        ("user", "uid") => (r("uint32"), "The user id."),
        ("user", "gid") => (r("uint32"), "The group id (default: uid if given)."),
        ("user", "home") => (r("string"), "The home directory (default /home/NAME)."),
        ("user", "shell") => (r("string"), "The login shell."),
        ("user", "create") => (
            json!({ "type": "boolean" }),
            "false: the user exists in the base already.",
        ),

        ("apt-source", "name") => (
            r("string"),
            "The file name: /etc/apt/sources.list.d/layerstack-NAME.sources (default: the image and index).",
        ),
        ("apt-source", "types") => (r("strings"), "\"deb\" (default) and/or \"deb-src\"."),
        ("apt-source", "uris") => (r("strings"), "The repository URIs."),
        ("apt-source", "suites") => (
            r("strings"),
            "Suites (\"bookworm\"), or an exact path ending in / (then no components).",
        ),
        ("apt-source", "components") => (r("strings"), "Components, e.g. \"main\"."),
        ("apt-source", "architectures") => (r("strings"), "Limit to these architectures."),
        ("apt-source", "key") => (
            r("string"),
            "The signing key, a file in the build context (.asc armored or .gpg binary).",
        ),
        ("apt-source", "signed-by") => (
            r("string"),
            "The signing key: a keyring path in the image (/usr/share/keyrings/…) or an inline armored key.",
        ),

        ("run", "cmd") => (r("string"), "The command (/bin/sh -c)."),
        ("run", "context") => (
            r("strings"),
            "Build-context paths (NAME:PATH in a named context, mounted at @NAME/PATH) mounted (writable, discarded) for the step, its working directory.",
        ),
        ("run", "at") => (
            json!({ "enum": ["before-apt", "after-apt", "after-conda", "after-python", "after-copy"] }),
            "Where the command runs among the image's steps (default \"after-apt\").",
        ),

        ("copy", "from") => (
            r("string"),
            "A layer or service of this stack to copy from (its final state, same platform) instead of the build context; src is then an absolute path in it.",
        ),
        ("copy", "context") => (
            r("string"),
            "A named build context (--build-context NAME=DIR) that src is a path in.",
        ),
        ("copy", "src") => (
            r("string"),
            "A path in the build context (NAME:PATH in a named context), or an absolute path in the `from` image (wildcards allowed).",
        ),
        ("copy", "dest") => (
            r("string"),
            "Absolute, or relative to the working directory (default: <workdir>/<src>).",
        ),
        ("copy", "chown") => (
            json!({ "type": ["boolean", "string"] }),
            "true (the image's user), false (root) or \"user[:group]\".",
        ),
        ("copy", "mode") => (
            json!({ "type": ["string", "integer"] }),
            "File mode, octal: \"0644\", 0o755 or 755.",
        ),
        ("copy", "exclude") => (r("strings"), "Patterns excluded, relative to src."),
        ("copy", "at") => (
            json!({ "enum": ["before-python", "after-python"] }),
            "Where the copy happens (default \"after-python\": last, after the Python deps).",
        ),
        ("copy", "optional") => (
            json!({ "type": "boolean" }),
            "true: copy nothing, instead of failing, when src matches nothing.",
        ),

        ("healthcheck", "cmd") => (r("command"), "The check command."),
        ("healthcheck", "interval") => (r("string"), "e.g. \"30s\"."),
        ("healthcheck", "timeout") => (r("string"), "e.g. \"5s\"."),
        ("healthcheck", "start-period") => (r("string"), "e.g. \"10s\"."),
        ("healthcheck", "retries") => (r("uint32"), "Failures before unhealthy."),

        ("venv", "path") => (
            r("string"),
            "Where the venv lives (absolute; default /opt/venv).",
        ),
        ("venv", "builder") => (
            r("string"),
            "What the builder stage starts from: a layer or an image (default: the service's from).",
        ),
        ("venv", "builder-apt") => (r("strings"), "apt packages for the builder only."),

        ("conda", "file") => (
            r("string"),
            "The environment file, a path in the build context.",
        ),
        ("lock", "file") => (
            r("string"),
            "The lock file, a path in the build context (uv.lock, pylock.toml, pylock.NAME.toml).",
        ),
        ("lock", "groups") => (r("strings"), "Dependency groups to install."),
        ("lock", "extras") => (r("strings"), "Extras of the project to install."),
        ("lock", "python-version") => (
            r("string"),
            "The image's CPython version (\"3.12\"); default: from a python:X.Y base image tag.",
        ),
        ("lock", "member") => (
            r("string"),
            "uv workspaces: install this member's dependencies only (default: every member's).",
        ),
        ("lock", "auth-secret") => (
            r("string"),
            "A [secrets.NAME] whose value is the Authorization header of every wheel download (a private index).",
        ),
        ("conda", "channels") => (r("strings"), "One -c CHANNEL each."),
        ("conda", "installer") => (
            json!({ "enum": ["micromamba", "mamba", "conda"] }),
            "micromamba (default), mamba or conda.",
        ),
        ("conda", "cache") => (
            r("string"),
            "The package cache directory, a cache mount (default /opt/conda/pkgs).",
        ),
        ("conda", "env") => (
            r("string"),
            "The environment to install into (default base).",
        ),
        ("image", "dockerfile") => (
            r("dockerfile"),
            "Build this image from a Dockerfile with BuildKit's Dockerfile frontend: a path in the context, or { file, context, target, args }. No other build key applies.",
        ),
        ("dockerfile", "file") => (r("string"), "The Dockerfile, a path in the build context."),
        ("dockerfile", "context") => (
            r("string"),
            "The context directory it builds with (default: the Dockerfile's directory; \".\" = the whole build context).",
        ),
        ("dockerfile", "target") => (r("string"), "The stage to build (default: the last)."),
        ("dockerfile", "args") => (r("env"), "Build args (--build-arg), ${ARG} interpolated."),

        ("torch", "packages") => (
            json!({
                "type": "object",
                "minProperties": 1,
                "additionalProperties": { "type": "string" }
            }),
            "name = version, without a local part: { torch = \"2.1.2\", torchvision = \"0.16.2\" }.",
        ),
        ("torch", "cuda") => (
            r("string"),
            "The CUDA flavour a variant's torch = \"cuda\" means (default cu118).",
        ),
        ("torch", "index") => (r("torch-index"), "Where the builds come from."),
        ("torch-index", "cpu") => (r("string"), "The index of the +cpu builds."),
        ("torch-index", "cuda") => (
            r("string"),
            "The index of the GPU builds; {cuda} is replaced by the flavour.",
        ),
        ("torch-index", "default") => (r("string"), "The index of the regular (arm64 CPU) builds."),

        ("variant", "description") => (r("string"), "Shown by `llb-gen targets`."),
        ("variant", "platforms") => (r("strings"), "The platforms this variant is built for."),
        ("variant", "torch") => (
            r("string"),
            "The PyTorch backend: \"cpu\" (default), \"cuda\", a flavour such as \"cu121\", or \"rocm5.6\".",
        ),
        ("variant", "env") => (r("env"), "Added to the env of every image in this variant."),
        ("variant", "default") => (
            json!({ "type": "boolean" }),
            "The variant built when the target names none (default: the first).",
        ),
        ("variant", "layers") => (
            map_of("layer-overlay", IMAGE_NAME),
            "Overlays merged into the layers of those names.",
        ),
        ("variant", "services") => (
            map_of("service-overlay", IMAGE_NAME),
            "Overlays merged into the services of those names.",
        ),

        ("secret", "env") => (
            r("string"),
            "Expose the secret as this environment variable.",
        ),
        ("secret", "target") => (
            r("string"),
            "Mount the secret as this file (default /run/secrets/NAME when env is not set).",
        ),
        ("secret", "required") => (
            json!({ "type": "boolean" }),
            "false makes the file mount optional (default true).",
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parser_key_has_a_type() {
        let s = schema().unwrap();
        assert_eq!(s["additionalProperties"], false);
        let stack = &s["definitions"]["stack"]["properties"];
        assert!(stack.get("requires").is_some());
        // A closed object per parser table, with exactly the parser's keys.
        let service = s["definitions"]["service"]["properties"]
            .as_object()
            .unwrap();
        let (_, image_keys) = KEY_TABLES.iter().find(|(t, _)| *t == "image").unwrap();
        let mut names: Vec<&str> = service.keys().map(String::as_str).collect();
        names.sort();
        let mut expected: Vec<&str> = image_keys.to_vec();
        expected.sort();
        assert_eq!(names, expected);
        let layer = s["definitions"]["layer"]["properties"].as_object().unwrap();
        assert!(!layer.contains_key("venv"), "venv is for services only");
        assert_eq!(layer.len(), image_keys.len() - 1);
    }

    #[test]
    fn a_key_without_a_type_fails_generation() {
        let mut g = Gen::default();
        assert_eq!(key_schema("stack", "no-such-key"), None);
        g.object("no-such-table", &[], &[]);
        assert_eq!(g.missing, ["no-such-table (no such key table)"]);
    }

    #[test]
    fn deterministic_and_newline_terminated() {
        let a = schema_json().unwrap();
        assert_eq!(a, schema_json().unwrap());
        assert!(a.ends_with("}\n"));
    }
}
