"""`python -m apps.svc_ingestion --once`: upload a document over HTTP (multipart), read it back."""
import json
import sys
import uuid

import python_multipart
import uvicorn

from libs import selftest
from apps.svc_ingestion.main import app

if "--once" in sys.argv:
    boundary = uuid.uuid4().hex
    content = b"Employer PAYE reference: 123/AB456\n"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\np60\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p60.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    ((status, _, created),) = selftest.call(app, [
        ("POST", "/v1/documents", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})])
    doc = json.loads(created)
    (fetched,) = selftest.get_json(app, f"/v1/documents/{doc['id']}")
    print(json.dumps({"service": "svc-ingestion", "status": status, "python": sys.executable,
                      "python_multipart": python_multipart.__version__, "roundtrip": fetched == doc, **doc}))
else:
    uvicorn.run(app, host="0.0.0.0", port=8000)
