"""PlantUML → SVG/PNG through Graphviz.

The real image runs `java -jar plantuml.jar` (a JRE, ~50 MB of apt packages, plus the jar);
PlantUML itself lays most diagrams out with Graphviz's `dot`. This converter handles the
component/activity subset (`[A] --> [B] : label`, `title …`), writes the DOT and runs `dot`.
"""
import os
import re
import subprocess
import xml.etree.ElementTree as ET

ARROW = re.compile(r"^\s*(\[[^\]]+\]|\w+)\s*(-+>|\.+>)\s*(\[[^\]]+\]|\w+)\s*(?::\s*(.*))?$")


def to_dot(source: str) -> tuple:
    title, nodes, edges = None, [], []
    for line in source.splitlines():
        line = line.strip()
        if not line or line.startswith("'") or line in ("@startuml", "@enduml"):
            continue
        if line.startswith("title "):
            title = line[6:].strip()
            continue
        m = ARROW.match(line)
        if not m:
            raise ValueError(f"unsupported PlantUML line: {line!r}")
        a, arrow, b, label = m.groups()
        a, b = a.strip("[]"), b.strip("[]")
        for n in (a, b):
            if n not in nodes:
                nodes.append(n)
        edges.append((a, b, label, arrow.startswith(".")))
    q = lambda s: '"' + s.replace('"', '\\"') + '"'
    dot = ["digraph G {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    if title:
        dot.append(f"  label={q(title)}; labelloc=t;")
    dot += [f"  {q(n)};" for n in nodes]
    for a, b, label, dashed in edges:
        attrs = [f"label={q(label)}"] if label else []
        attrs += ["style=dashed"] if dashed else []
        dot.append(f"  {q(a)} -> {q(b)} [{', '.join(attrs)}];")
    dot.append("}")
    return "\n".join(dot) + "\n", nodes, edges


def convert(job):
    with open(job.input_file, encoding="utf-8") as f:
        dot, nodes, edges = to_dot(f.read())
    base = os.path.splitext(job.output_file)[0]
    outputs = {}
    for fmt in ("svg", "png"):
        subprocess.run(["dot", f"-T{fmt}", "-o", f"{base}.{fmt}"], input=dot, text=True, check=True, capture_output=True)
        outputs[fmt] = os.path.getsize(f"{base}.{fmt}")
    texts = {t.text for t in ET.parse(f"{base}.svg").iter("{http://www.w3.org/2000/svg}text")}
    version = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr.strip()
    return {"graphviz": version, "nodes": nodes, "edges": len(edges), "bytes": outputs,
            "svg_has_nodes": all(n in texts for n in nodes), "output": f"{base}.svg"}
