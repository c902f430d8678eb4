//! `llb-gen plan`: the layer tree as readable text — every image under what it is built from,
//! with its steps and config, and which services each layer ends up in.

use std::collections::BTreeMap;

use super::hash::{bases, same_base};
use super::short_ref;
use crate::plan::{Base, ConfigChanges, PlanImage};
use crate::platform::Platform;
use crate::stack::{Kind, Stack};

/// Render `shown` (the whole stack, or one target's images) as trees from each external base
/// image down. `all` is every image of the stack that could be planned: it tells which
/// services use each layer.
pub fn render(
    stack: &Stack,
    shown: &[PlanImage],
    all: &[PlanImage],
    platform: &Platform,
    target: Option<&str>,
) -> String {
    let mut out = String::new();
    let layers = shown.iter().filter(|i| i.kind == Kind::Layer).count();
    let services = shown.len() - layers;
    match target.and_then(|t| shown.iter().find(|i| i.name == t)) {
        Some(t) => out.push_str(&format!(
            "target {} ({}) on {platform}: {}\n",
            t.name,
            t.kind.as_str(),
            count(shown.len(), "image", "images")
        )),
        None => out.push_str(&format!(
            "stack {}: {}, {} ({platform})\n",
            stack
                .name
                .as_ref()
                .map(|n| n.value.as_str())
                .unwrap_or("(unnamed)"),
            count(layers, "layer", "layers"),
            count(services, "service", "services"),
        )),
    }
    if !stack.install_env.is_empty() {
        let env: Vec<String> = stack
            .install_env
            .iter()
            .map(|e| format!("{}={}", e.name.value, e.value.value))
            .collect();
        out.push_str(&format!(
            "install-env (every install step): {}\n",
            env.join(" ")
        ));
    }

    // Children by parent layer; roots by external image, in order of first appearance.
    let mut children: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut roots: Vec<(String, Vec<usize>)> = vec![];
    for (i, img) in shown.iter().enumerate() {
        match &img.base {
            Base::Layer { name, .. } if shown.iter().any(|s| s.name == *name) => {
                children.entry(name.as_str()).or_default().push(i)
            }
            Base::Layer { name, .. } => root(&mut roots, name.clone(), i),
            Base::Image { reference, .. } => root(&mut roots, reference.clone(), i),
            Base::Dockerfile(d) => root(&mut roots, d.describe(), i),
            Base::Context { name, .. } => root(&mut roots, format!("context {name}"), i),
        }
    }
    let stack_env = stack.install_env.len();
    for (reference, kids) in &roots {
        out.push('\n');
        let short = short_ref(reference);
        if short == reference {
            out.push_str(&format!("{reference}\n"));
        } else {
            out.push_str(&format!("{short}  ({reference})\n"));
        }
        for (n, &k) in kids.iter().enumerate() {
            node(
                &mut out,
                shown,
                &children,
                k,
                "",
                n + 1 == kids.len(),
                stack_env,
            );
        }
    }

    // Which services each shown layer ends up in.
    let usage = usage(all);
    let shown_layers: Vec<&PlanImage> = shown.iter().filter(|i| i.kind == Kind::Layer).collect();
    if !shown_layers.is_empty() {
        out.push_str("\nshared layers:\n");
        let width = shown_layers
            .iter()
            .map(|l| l.name.chars().count())
            .max()
            .unwrap_or(0);
        for l in shown_layers {
            let (services, via) = usage
                .get(l.name.as_str())
                .cloned()
                .unwrap_or((vec![], vec![]));
            let used = if services.is_empty() {
                "used by no service".to_string()
            } else {
                format!("used by {}", services.join(", "))
            };
            let via = if via.is_empty() {
                String::new()
            } else {
                format!(" (via {})", via.join(", "))
            };
            out.push_str(&format!("  {:width$}  {used}{via}\n", l.name));
        }
    }
    out
}

/// `a 1.0, b 2.0 (1.2 MB)`: a lock group's packages and, where the lock has them, its size.
fn lock_group(g: &crate::lock::group::Group) -> String {
    let names: Vec<String> = g
        .files
        .iter()
        .map(|f| match f.kind {
            crate::lock::select::FileKind::Sdist => {
                format!("{} {} (sdist, built on the target)", f.name, f.version)
            }
            _ => format!("{} {}", f.name, f.version),
        })
        .collect();
    match g.size_text() {
        Some(s) => format!("{} ({s})", names.join(", ")),
        None => names.join(", "),
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn root(roots: &mut Vec<(String, Vec<usize>)>, key: String, i: usize) {
    match roots.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => v.push(i),
        None => roots.push((key, vec![i])),
    }
}

/// Print image `i` and, below it, every image built on it (an explicit stack instead of
/// recursion: a chain of thousands of layers is a tree of that depth).
fn node(
    out: &mut String,
    shown: &[PlanImage],
    children: &BTreeMap<&str, Vec<usize>>,
    i: usize,
    prefix: &str,
    last: bool,
    stack_env: usize,
) {
    let mut todo: Vec<(usize, String, bool)> = vec![(i, prefix.to_string(), last)];
    while let Some((i, prefix, last)) = todo.pop() {
        let img = &shown[i];
        let title = match &img.description {
            Some(d) => format!("{} {} — {d}", img.kind.as_str(), img.name),
            None => format!("{} {}", img.kind.as_str(), img.name),
        };
        out.push_str(&format!(
            "{prefix}{}{title}\n",
            if last { "└── " } else { "├── " }
        ));
        let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
        let kids = children.get(img.name.as_str()).cloned().unwrap_or_default();
        let detail_prefix = format!(
            "{child_prefix}{}",
            if kids.is_empty() { "  " } else { "│ " }
        );
        for line in details(img, stack_env) {
            out.push_str(&format!("{detail_prefix}{line}\n"));
        }
        // Reversed: the first child is printed first.
        for (n, &k) in kids.iter().enumerate().rev() {
            todo.push((k, child_prefix.clone(), n + 1 == kids.len()));
        }
    }
}

fn base_label(b: &Base) -> String {
    match b {
        Base::Image { reference, .. } => short_ref(reference).to_string(),
        Base::Dockerfile(d) => d.describe(),
        Base::Context { name, .. } => format!("context {name}"),
        Base::Layer { name, .. } => format!("layer {name}"),
    }
}

/// The lines under an image: its venv builder, numbered steps, install env and config.
fn details(img: &PlanImage, stack_env: usize) -> Vec<String> {
    let mut lines = vec![];
    if let Some(v) = &img.venv {
        let on = if same_base(&v.builder, &img.base) {
            format!("{} (its own base)", base_label(&v.builder))
        } else {
            base_label(&v.builder)
        };
        lines.push(format!("venv {} built on {on}:", v.path));
        let mut n = 0;
        let mut step = |s: String| {
            n += 1;
            format!("  {n}. {s}")
        };
        if !v.apt.is_empty() {
            lines.push(step(format!("apt-get install {}", v.apt.join(" "))));
        }
        lines.push(step(format!("{} -m venv {}", v.python, v.path)));
        lines.push(step(v.pip.describe()));
    }
    for (n, s) in img.steps.iter().enumerate() {
        lines.push(format!("{}. {}", n + 1, s.kind.describe()));
        if let crate::plan::StepKind::Lock(l) = &s.kind {
            for g in &l.groups {
                lines.push(format!("   group {}: {}", g.id, lock_group(g)));
            }
        }
    }
    let own_env: Vec<String> = img
        .install_env
        .iter()
        .skip(stack_env)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !own_env.is_empty() {
        lines.push(format!("install-env {}", own_env.join(" ")));
    }
    lines.extend(config_lines(&img.config));
    lines
}

fn config_lines(c: &ConfigChanges) -> Vec<String> {
    let mut lines = vec![];
    let kv = |v: &[(String, String)]| {
        v.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if !c.env.is_empty() {
        lines.push(format!("env {}", kv(&c.env)));
    }
    let mut misc = vec![];
    if let Some(u) = &c.user {
        misc.push(format!("user {u}"));
    }
    if let Some(w) = &c.workdir {
        misc.push(format!("workdir {w}"));
    }
    if !c.exposed_ports.is_empty() {
        misc.push(format!("expose {}", c.exposed_ports.join(" ")));
    }
    if let Some(s) = &c.stop_signal {
        misc.push(format!("stop-signal {s}"));
    }
    if !misc.is_empty() {
        lines.push(misc.join(", "));
    }
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_default();
    // A shell form as the default shell runs it (the base image's `Shell` is not known here).
    if let Some(e) = &c.entrypoint {
        lines.push(format!("entrypoint {}", json(&e.argv(None))));
    }
    if let Some(cmd) = &c.cmd {
        lines.push(format!("cmd {}", json(&cmd.argv(None))));
    }
    match &c.healthcheck {
        None => {}
        Some(None) => lines.push("healthcheck none".into()),
        Some(Some(h)) => {
            let test = match h.test.split_first() {
                Some((kind, rest)) if kind == crate::plan::HEALTHCHECK_SHELL => rest.join(" "),
                Some((_, rest)) => json(&rest.to_vec()),
                None => String::new(),
            };
            let mut opts = vec![];
            for (name, v) in [
                ("interval", h.interval_ns),
                ("timeout", h.timeout_ns),
                ("start-period", h.start_period_ns),
            ] {
                if let Some(ns) = v {
                    opts.push(format!("{name} {}", duration(ns)));
                }
            }
            if let Some(r) = h.retries {
                opts.push(format!("retries {r}"));
            }
            if opts.is_empty() {
                lines.push(format!("healthcheck {test}"));
            } else {
                lines.push(format!("healthcheck {test} ({})", opts.join(", ")));
            }
        }
    }
    if !c.labels.is_empty() {
        lines.push(format!("labels {}", kv(&c.labels)));
    }
    lines
}

/// Nanoseconds as people write them: `15s`, `1m30s`, `500ms`.
fn duration(ns: u64) -> String {
    if !ns.is_multiple_of(1_000_000_000) {
        return format!("{}ms", ns / 1_000_000);
    }
    let s = ns / 1_000_000_000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// For each layer: the services built on it (directly or not, through `from` or a venv
/// builder) in stack order, and the layers directly built on it.
pub fn usage(all: &[PlanImage]) -> BTreeMap<&str, (Vec<String>, Vec<String>)> {
    let by_name: BTreeMap<&str, &PlanImage> = all.iter().map(|i| (i.name.as_str(), i)).collect();
    let mut out: BTreeMap<&str, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for img in all {
        for (_, b) in bases(img) {
            if let (Base::Layer { name, .. }, Kind::Layer) = (b, img.kind) {
                let e = out.entry(name.as_str()).or_default();
                if !e.1.contains(&img.name) {
                    e.1.push(img.name.clone());
                }
            }
        }
        if img.kind != Kind::Service {
            continue;
        }
        // Every layer below this service.
        let mut todo: Vec<&str> = bases(img)
            .into_iter()
            .filter_map(|(_, b)| match b {
                Base::Layer { name, .. } => Some(name.as_str()),
                Base::Image { .. } | Base::Dockerfile(_) | Base::Context { .. } => None,
            })
            .collect();
        let mut seen: Vec<&str> = vec![];
        while let Some(l) = todo.pop() {
            if seen.contains(&l) {
                continue;
            }
            seen.push(l);
            let e = out.entry(l).or_default();
            if !e.0.contains(&img.name) {
                e.0.push(img.name.clone());
            }
            if let Some(li) = by_name.get(l) {
                for (_, b) in bases(li) {
                    if let Base::Layer { name, .. } = b {
                        todo.push(name.as_str());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::report::{plan_all, plan_target};

    #[test]
    fn whole_stack_tree() {
        let s = stack(MULTI);
        let p = plan_all(&s, &opts()).unwrap();
        let text = render(&s, &p.images, &p.images, &Platform::linux_amd64(), None);
        let expected = r#"stack multi-service: 2 layers, 3 services (linux/amd64)
install-env (every install step): PIP_NO_COMPILE=0

python:3.12-slim  (docker.io/library/python:3.12-slim)
├── layer system — OS packages and the user
│   │ 1. apt-get install curl ca-certificates
│   │ 2. useradd appuser
│   │ 3. workdir /app
│   │ env PYTHONUNBUFFERED=1
│   │ user appuser, workdir /app
│   └── layer runtime
│       │ 1. pip install -r libs/requirements-base.txt
│       │ 2. copy libs/common
│       ├── service api — HTTP API
│       │     1. pip install humanize==4.11.0
│       │     2. copy apps/api
│       │     expose 8000/tcp
│       │     cmd ["python3","-m","apps.api"]
│       │     labels org.opencontainers.image.version=dev
│       └── service worker
│             1. apt-get install jq
│             2. pip install -r apps/worker/requirements.txt
│             3. copy apps/worker
│             labels org.opencontainers.image.version=dev
└── service ingest
      venv /opt/venv built on python:3.12-slim (its own base):
        1. python3 -m venv /opt/venv
        2. pip install -r libs/requirements-base.txt -r apps/ingest/requirements.txt
      1. useradd appuser
      2. workdir /srv
      3. copy venv /opt/venv
      4. copy libs/common
      5. copy apps/ingest
      user appuser, workdir /srv
      cmd ["python","-m","apps.ingest"]

shared layers:
  system   used by api, worker (via runtime)
  runtime  used by api, worker
"#;
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn one_target() {
        let s = stack(MULTI);
        let all = plan_all(&s, &opts()).unwrap();
        let mut o = opts();
        o.target = Some("worker".into());
        let t = plan_target(&s, &o).unwrap();
        let text = render(
            &s,
            &t.images,
            &all.images,
            &Platform::linux_amd64(),
            Some("worker"),
        );
        assert!(
            text.starts_with("target worker (service) on linux/amd64: 3 images\n"),
            "{text}"
        );
        assert!(text.contains("    └── layer runtime\n"), "{text}");
        assert!(text.contains("        └── service worker\n"), "{text}");
        assert!(!text.contains("api —"), "{text}");
        // Usage still counts every service of the stack.
        assert!(text.contains("runtime  used by api, worker\n"), "{text}");
    }

    #[test]
    fn usage_follows_venv_builders_and_durations_read_well() {
        let s = stack(
            "[layers.build]\nfrom = \"python:3\"\napt = [\"gcc\"]\n[layers.unused]\nfrom = \"python:3\"\n\
             [services.s]\nfrom = \"python:3-slim\"\npip = [\"x\"]\nvenv = { builder = \"build\" }\n\
             healthcheck = { cmd = [\"true\"], interval = \"1m30s\", timeout = \"500ms\" }\n",
        );
        let p = plan_all(&s, &opts()).unwrap();
        let text = render(&s, &p.images, &p.images, &Platform::linux_amd64(), None);
        assert!(text.contains("  build   used by s\n"), "{text}");
        assert!(text.contains("  unused  used by no service\n"), "{text}");
        assert!(
            text.contains("venv /opt/venv built on layer build:"),
            "{text}"
        );
        assert!(
            text.contains("healthcheck [\"true\"] (interval 1m30s, timeout 500ms)"),
            "{text}"
        );
        assert_eq!(duration(3_600_000_000_000), "1h");
        assert_eq!(duration(0), "0s");
    }
}
