"""`python -m apps.svc_extract --once`: extract fields from the sample invoice over HTTP."""
import json
import os
import sys

import stdnum
import uvicorn

from libs import selftest
from apps.svc_extract.main import app

if "--once" in sys.argv:
    with open(os.path.join(os.path.dirname(__file__), "samples", "invoice.txt"), encoding="utf-8") as f:
        text = f.read()
    ((_, _, body),) = selftest.call(app, [
        ("POST", "/v1/extract", json.dumps({"text": text}).encode(), {"Content-Type": "application/json"})])
    print(json.dumps({"service": "svc-extract", "python": sys.executable, "stdnum": stdnum.__version__, **json.loads(body)}))
else:
    uvicorn.run(app, host="0.0.0.0", port=8000)
