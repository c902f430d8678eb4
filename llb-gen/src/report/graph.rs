//! `llb-gen graph`: the image DAG — external base images, layers and services, with an edge
//! from each image to what is built on it — as Graphviz DOT or a Mermaid flowchart.
//! Deterministic: nodes and edges in stack order, external images in order of first use.

use std::collections::BTreeSet;

use super::hash::bases;
use super::short_ref;
use crate::plan::{Base, PlanImage};
use crate::stack::Kind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Dot,
    Mermaid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeKind {
    Image,
    Layer,
    Service,
}

impl NodeKind {
    fn as_str(self) -> &'static str {
        match self {
            NodeKind::Image => "image",
            NodeKind::Layer => "layer",
            NodeKind::Service => "service",
        }
    }
}

struct Node {
    id: String,
    label: String,
    kind: NodeKind,
    /// The lock groups installed in this image, each with its size where the lock has it
    /// (`lock groups: small-03 (1.2 MB), torch (2.4 GB)`), if any.
    groups: Option<String>,
}

struct Edge {
    from: usize,
    to: usize,
    /// Not `from` (dashed, labelled): `venv builder` or `copy` (artifacts copied from it).
    role: Option<&'static str>,
}

struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl Graph {
    fn new(images: &[PlanImage]) -> Graph {
        let mut g = Graph {
            nodes: vec![],
            edges: vec![],
        };
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut unique = |base: String| {
            let mut id = base.clone();
            let mut n = 2;
            while !ids.insert(id.clone()) {
                id = format!("{base}_{n}");
                n += 1;
            }
            id
        };
        // External images first, in order of first use; then layers and services.
        let mut refs: Vec<String> = vec![];
        for img in images {
            for (_, b) in bases(img) {
                let external = match b {
                    Base::Image { reference, .. } => reference.clone(),
                    // Built by the Dockerfile frontend: a root of the graph like an image.
                    Base::Dockerfile(d) => d.describe(),
                    // Another target's result: a root too.
                    Base::Context { name, .. } => format!("context {name}"),
                    Base::Layer { .. } => continue,
                };
                if !refs.contains(&external) {
                    refs.push(external);
                }
            }
        }
        for (i, r) in refs.iter().enumerate() {
            g.nodes.push(Node {
                id: unique(format!("image_{}", i + 1)),
                label: short_ref(r).to_string(),
                kind: NodeKind::Image,
                groups: None,
            });
        }
        for img in images {
            let kind = match img.kind {
                Kind::Layer => NodeKind::Layer,
                Kind::Service => NodeKind::Service,
            };
            let groups: Vec<String> = img
                .steps
                .iter()
                .filter_map(|s| match &s.kind {
                    crate::plan::StepKind::Lock(l) => Some(l),
                    _ => None,
                })
                .flat_map(|l| l.groups.iter().map(|g| g.label()))
                .collect();
            g.nodes.push(Node {
                id: unique(format!("{}_{}", kind.as_str(), sanitize(&img.name))),
                label: img.name.clone(),
                kind,
                groups: (!groups.is_empty()).then(|| format!("lock groups: {}", groups.join(", "))),
            });
        }
        let image_node = |g: &Graph, name: &str| {
            g.nodes
                .iter()
                .position(|n| n.kind != NodeKind::Image && n.label == name)
        };
        for (i, img) in images.iter().enumerate() {
            let to = refs.len() + i;
            for (role, b) in bases(img) {
                let from = match b {
                    Base::Image { reference, .. } => refs.iter().position(|r| r == reference),
                    Base::Dockerfile(d) => refs.iter().position(|r| *r == d.describe()),
                    Base::Context { name, .. } => {
                        refs.iter().position(|r| *r == format!("context {name}"))
                    }
                    Base::Layer { name, .. } => image_node(&g, name),
                };
                if let Some(from) = from {
                    g.edges.push(Edge {
                        from,
                        to,
                        role: (role != "from").then_some(match role {
                            "venv-builder" => "venv builder",
                            other => other,
                        }),
                    });
                }
            }
        }
        g
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Render the graph of `images` (every image of a stack, or one target's).
pub fn render(images: &[PlanImage], title: &str, format: Format) -> String {
    let g = Graph::new(images);
    match format {
        Format::Dot => dot(&g, title),
        Format::Mermaid => mermaid(&g),
    }
}

fn dot_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dot(g: &Graph, title: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "// {title}: images of a layerstack stack (llb-gen graph)\n"
    ));
    out.push_str(&format!("digraph {} {{\n", dot_str(title)));
    out.push_str("  rankdir=TB;\n");
    out.push_str("  nodesep=0.35;\n  ranksep=0.5;\n");
    out.push_str(
        "  node [fontname=\"Helvetica,Arial,sans-serif\", fontsize=12, shape=box, style=\"rounded,filled\", penwidth=1.2];\n",
    );
    out.push_str("  edge [color=\"#4b5563\", arrowsize=0.7];\n");
    for n in &g.nodes {
        let (attrs, sub) = match n.kind {
            NodeKind::Image => (
                "shape=box, style=\"rounded,dashed\", color=\"#6b7280\", fontcolor=\"#374151\"",
                "base image",
            ),
            NodeKind::Layer => ("fillcolor=\"#dbeafe\", color=\"#1d4ed8\"", "layer"),
            NodeKind::Service => (
                "shape=component, style=\"filled,bold\", fillcolor=\"#fef3c7\", color=\"#b45309\"",
                "service",
            ),
        };
        out.push_str(&format!(
            "  {} [label={}, {attrs}];\n",
            dot_str(&n.id),
            dot_str(&match &n.groups {
                Some(gr) => format!("{}\n{sub}\n{gr}", n.label),
                None => format!("{}\n{sub}", n.label),
            }),
        ));
    }
    for e in &g.edges {
        let style = match e.role {
            Some(role) => format!(
                " [style=dashed, label=\"{role}\", fontsize=10, fontname=\"Helvetica,Arial,sans-serif\"]"
            ),
            None => String::new(),
        };
        out.push_str(&format!(
            "  {} -> {}{style};\n",
            dot_str(&g.nodes[e.from].id),
            dot_str(&g.nodes[e.to].id)
        ));
    }
    out.push_str("}\n");
    out
}

fn mermaid_label(s: &str) -> String {
    // Inside "…" Mermaid takes everything but `"`, which is written as an entity.
    format!("\"{}\"", s.replace('"', "#quot;"))
}

fn mermaid(g: &Graph) -> String {
    let mut out = String::from("flowchart TD\n");
    for n in &g.nodes {
        let label = match &n.groups {
            Some(gr) => mermaid_label(&format!("{}<br/>{gr}", n.label)),
            None => mermaid_label(&n.label),
        };
        let shape = match n.kind {
            NodeKind::Image => format!("([{label}])"),
            NodeKind::Layer => format!("[{label}]"),
            NodeKind::Service => format!("[[{label}]]"),
        };
        out.push_str(&format!("  {}{shape}\n", n.id));
    }
    for e in &g.edges {
        let arrow = match e.role {
            Some(role) => format!(" -. {role} .-> "),
            None => " --> ".to_string(),
        };
        out.push_str(&format!(
            "  {}{arrow}{}\n",
            g.nodes[e.from].id, g.nodes[e.to].id
        ));
    }
    out.push_str(
        "  classDef image fill:#f9fafb,stroke:#6b7280,stroke-dasharray:4 3,color:#374151\n",
    );
    out.push_str("  classDef layer fill:#dbeafe,stroke:#1d4ed8,color:#1e3a8a\n");
    out.push_str("  classDef service fill:#fef3c7,stroke:#b45309,stroke-width:2px,color:#78350f\n");
    for kind in [NodeKind::Image, NodeKind::Layer, NodeKind::Service] {
        let ids: Vec<&str> = g
            .nodes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| n.id.as_str())
            .collect();
        if !ids.is_empty() {
            out.push_str(&format!("  class {} {}\n", ids.join(","), kind.as_str()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::report::plan_all;

    #[test]
    fn mermaid_of_the_multi_service_shape() {
        let s = stack(MULTI);
        let p = plan_all(&s, &opts()).unwrap();
        let m = render(&p.images, "multi-service", Format::Mermaid);
        let expected = r#"flowchart TD
  image_1(["python:3.12-slim"])
  layer_system["system"]
  layer_runtime["runtime"]
  service_api[["api"]]
  service_worker[["worker"]]
  service_ingest[["ingest"]]
  image_1 --> layer_system
  layer_system --> layer_runtime
  layer_runtime --> service_api
  layer_runtime --> service_worker
  image_1 --> service_ingest
  classDef image fill:#f9fafb,stroke:#6b7280,stroke-dasharray:4 3,color:#374151
  classDef layer fill:#dbeafe,stroke:#1d4ed8,color:#1e3a8a
  classDef service fill:#fef3c7,stroke:#b45309,stroke-width:2px,color:#78350f
  class image_1 image
  class layer_system,layer_runtime layer
  class service_api,service_worker,service_ingest service
"#;
        assert_eq!(m, expected, "\n{m}");
        assert_eq!(m, render(&p.images, "multi-service", Format::Mermaid));
    }

    #[test]
    fn dot_styles_kinds_and_builders() {
        let s = stack(
            "[layers.build-env]\nfrom = \"python:3\"\n[layers.build_env]\nfrom = \"python:3\"\n\
             [services.s]\nfrom = \"ghcr.io/o/slim:1\"\npip = [\"x\"]\nvenv = { builder = \"build-env\" }\n",
        );
        let p = plan_all(&s, &opts()).unwrap();
        let d = render(&p.images, "t\"q", Format::Dot);
        assert!(d.contains("digraph \"t\\\"q\" {"), "{d}");
        assert!(
            d.contains("\"image_1\" [label=\"python:3\\nbase image\""),
            "{d}"
        );
        assert!(
            d.contains("\"image_2\" [label=\"ghcr.io/o/slim:1\\nbase image\""),
            "{d}"
        );
        assert!(
            d.contains("\"layer_build_env\" [label=\"build-env\\nlayer\""),
            "{d}"
        );
        assert!(
            d.contains("\"layer_build_env_2\" [label=\"build_env\\nlayer\""),
            "{d}"
        );
        assert!(
            d.contains("\"service_s\" [label=\"s\\nservice\", shape=component"),
            "{d}"
        );
        assert!(d.contains("\"image_2\" -> \"service_s\";\n"), "{d}");
        assert!(
            d.contains("\"layer_build_env\" -> \"service_s\" [style=dashed"),
            "{d}"
        );
        let m = render(&p.images, "t", Format::Mermaid);
        assert!(
            m.contains("  layer_build_env -. venv builder .-> service_s\n"),
            "{m}"
        );
    }
}
