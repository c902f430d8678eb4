"""The API: serves /health and / on port 8000; --once prints the greeting and exits."""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import humanize
import six

from libs.common import GREETING


def payload():
    return {"service": "api", "greeting": GREETING, "six": six.__version__, "size": humanize.naturalsize(1 << 20)}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/health" else (json.dumps(payload()) + "\n").encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    if "--once" in sys.argv:
        print(json.dumps(payload()))
    else:
        HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
