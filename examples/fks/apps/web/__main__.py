"""fks web (CPU service): serves the dashboard that Node built in the build-only web-build layer.

GET /health -> ok; GET /api/indicators -> the ta-lite indicators; anything else -> dist/.
`--once` prints what would be served (assets, the Node version that built them, whether Node.js
is in this image: it should not be, only dist/ was copied out of the builder) and exits.
"""
import functools
import json
import os
import shutil
import sys
from http.server import HTTPServer, SimpleHTTPRequestHandler

import fks_ta

DIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dist")


def summary():
    with open(os.path.join(DIST, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(DIST, "index.html")) as f:
        html = f.read()
    asset = manifest["src/app.js"]["file"]
    return {
        "service": "web",
        "node_in_image": shutil.which("node") is not None,
        "built_with_node": manifest["node"],
        "asset": asset,
        "asset_linked": f'src="/{asset}"' in html,
        "title": html.split("<title>")[1].split("</title>")[0],
        "ta_lite": fks_ta.VERSION,
    }


class Handler(SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path in ("/health", "/api/indicators"):
            prices = fks_ta.sample_prices()
            data = {"sma_10": fks_ta.sma(prices, 10)[-1], "rsi_14": fks_ta.rsi(prices, 14)[-1]}
            body = b"ok\n" if self.path == "/health" else json.dumps(data).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()


if __name__ == "__main__":
    if "--once" in sys.argv:
        print(json.dumps(summary()))
    else:
        HTTPServer(("0.0.0.0", 3000), functools.partial(Handler, directory=DIST)).serve_forever()
