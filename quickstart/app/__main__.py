"""Serve /health and / on port 8000 (or print one greeting with --once)."""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import humanize


def greeting() -> dict:
    return {
        "service": "layerstack-quickstart-api",
        "user": os.environ.get("USER") or str(os.getuid()),
        "uptime": humanize.naturaldelta(0),
        "python": sys.version.split()[0],
    }


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/health" else (json.dumps(greeting()) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain" if self.path == "/health" else "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("api: " + fmt % args + "\n")


if __name__ == "__main__":
    if "--once" in sys.argv:
        print(json.dumps(greeting()))
    else:
        HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
