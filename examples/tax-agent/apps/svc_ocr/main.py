"""svc-ocr: text and page images from PDFs (poppler-utils + pdf2image + Pillow + pypdf)."""
import io
import subprocess
import tempfile

from fastapi import Request
from pdf2image import convert_from_path
from pypdf import PdfReader

from libs.app import create_app, json_response

app = create_app("svc-ocr")


def ocr(pdf: bytes) -> dict:
    reader = PdfReader(io.BytesIO(pdf))
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        text = subprocess.run(["pdftotext", "-layout", f.name, "-"], capture_output=True, text=True, check=True).stdout
        pages = convert_from_path(f.name, dpi=50)  # runs pdftoppm; PIL images
    return {
        "pages": len(reader.pages),
        "title": (reader.metadata or {}).get("/Title"),
        "engine": "pdftotext",
        "lines": [line.strip() for line in text.splitlines() if line.strip()],
        "pypdf_agrees": "P60 End of Year Certificate" in reader.pages[0].extract_text(),
        "images": [{"size": list(p.size), "mode": p.mode} for p in pages],
    }


@app.post("/v1/ocr")
async def ocr_endpoint(request: Request):
    return json_response(ocr(await request.body()))
