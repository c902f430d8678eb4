"""fks api (CPU service): indicators from the ta-lite C library over HTTP.

GET /health -> ok; GET /indicators -> JSON. `--once` prints the JSON and exits.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import fks_ta


def indicators():
    prices = fks_ta.sample_prices()
    return {
        "service": "api",
        "ta_lite": fks_ta.VERSION,
        "library": fks_ta.LIBRARY,
        "last_close": prices[-1],
        "sma_10": round(fks_ta.sma(prices, 10)[-1], 4),
        "ema_10": round(fks_ta.ema(prices, 10)[-1], 4),
        "rsi_14": round(fks_ta.rsi(prices, 14)[-1], 2),
    }


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body, ctype = b"ok\n", "text/plain"
        else:
            body, ctype = (json.dumps(indicators()) + "\n").encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    if "--once" in sys.argv:
        print(json.dumps(indicators()))
    else:
        HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
