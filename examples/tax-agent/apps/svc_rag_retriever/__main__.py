"""`python -m apps.svc_rag_retriever --once [QUERY]`: search the corpus over HTTP, print the hits."""
import json
import sys
import urllib.parse

import uvicorn

from libs import selftest
from apps.svc_rag_retriever.main import app

if "--once" in sys.argv:
    words = [a for a in sys.argv[1:] if a != "--once"]
    query = " ".join(words) or "persnal alowance"
    (result,) = selftest.get_json(app, "/v1/search?" + urllib.parse.urlencode({"q": query}))
    print(json.dumps({"service": "svc-rag-retriever", **result}))
else:
    uvicorn.run(app, host="0.0.0.0", port=8000)
