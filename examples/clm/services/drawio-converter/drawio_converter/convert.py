"""draw.io (.drawio, compressed or plain) → PNG (Pillow) and SVG.

Reads the mxGraphModel, draws vertices as labelled boxes and edges as lines between their
centres, in DejaVu Sans (apt: fonts-dejavu-core).
"""
import base64
import os
import urllib.parse
import xml.etree.ElementTree as ET
import zlib
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def graph_model(path):
    root = ET.parse(path).getroot()
    diagram = root.find("diagram")
    model = diagram.find("mxGraphModel")
    if model is not None:
        return model, False
    # Compressed: base64 → raw deflate → URL-encoded XML (draw.io's default file format).
    xml = urllib.parse.unquote(zlib.decompress(base64.b64decode(diagram.text.strip()), -15).decode())
    return ET.fromstring(xml), True


def read(path):
    model, compressed = graph_model(path)
    vertices, edges = {}, []
    for cell in model.iter("mxCell"):
        if cell.get("vertex") == "1":
            g = cell.find("mxGeometry")
            vertices[cell.get("id")] = (cell.get("value", ""), *(float(g.get(k, 0)) for k in ("x", "y", "width", "height")))
        elif cell.get("edge") == "1":
            edges.append((cell.get("source"), cell.get("target")))
    return vertices, edges, compressed


def convert(job):
    vertices, edges, compressed = read(job.input_file)
    width = int(max(x + w for _, x, _, w, _ in vertices.values()) + 20)
    height = int(max(y + h for _, _, y, _, h in vertices.values()) + 20)
    centre = {k: (x + w / 2, y + h / 2) for k, (_, x, y, w, h) in vertices.items()}

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 13)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    for src, dst in edges:
        (x1, y1), (x2, y2) = centre[src], centre[dst]
        draw.line([(x1, y1), (x2, y2)], fill="black", width=2)
        svg.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="black"/>')
    for label, x, y, w, h in vertices.values():
        draw.rectangle([x, y, x + w, y + h], fill="#dae8fc", outline="#6c8ebf", width=2)
        draw.text((x + w / 2, y + h / 2), label, fill="black", font=font, anchor="mm")
        svg.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#dae8fc" stroke="#6c8ebf"/>'
                   f'<text x="{x + w / 2}" y="{y + h / 2}" text-anchor="middle">{escape(label)}</text>')
    svg.append("</svg>")

    base = os.path.splitext(job.output_file)[0]
    img.save(base + ".png")
    with open(base + ".svg", "w") as f:
        f.write("\n".join(svg))
    return {"compressed": compressed, "vertices": sorted(v[0] for v in vertices.values()), "edges": len(edges),
            "png": base + ".png", "png_size": list(img.size), "svg_bytes": os.path.getsize(base + ".svg")}
