"""`python -m apps.svc_ocr --once`: OCR the sample P60 through the HTTP API and print the result."""
import json
import os
import sys

import PIL
import uvicorn

from libs import selftest
from apps.svc_ocr.main import app

if "--once" in sys.argv:
    with open(os.path.join(os.path.dirname(__file__), "samples", "p60.pdf"), "rb") as f:
        pdf = f.read()
    (_, _, health), (_, headers, body) = selftest.call(app, [
        ("GET", "/healthz", None, None),
        ("POST", "/v1/ocr", pdf, {"Content-Type": "application/pdf"}),
    ])
    result = json.loads(body)
    print(json.dumps({"service": "svc-ocr", "health": json.loads(health)["status"], "pillow": PIL.__version__,
                      "request_id": len(headers.get("x-request-id", "")) == 26, **result}))
else:
    uvicorn.run(app, host="0.0.0.0", port=8000)
