"""`--once` for every service: serve the app on loopback for a moment and call it over HTTP.

This exercises the same stack as production (uvicorn, FastAPI, the service's handlers) without
needing any network beyond 127.0.0.1, so it works under `docker run --network=none`.
"""
import json
import socket
import threading
import time
import urllib.request

import uvicorn


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(app, requests):
    """requests: [(method, path, body_bytes_or_None, headers)] → [(status, headers, body)]."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    out = []
    try:
        for method, path, body, headers in requests:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers or {})
            with urllib.request.urlopen(req, timeout=10) as r:
                out.append((r.status, dict(r.headers), r.read()))
    finally:
        server.should_exit = True
        thread.join(5)
    return out


def get_json(app, *paths):
    return [json.loads(body) for _, _, body in call(app, [("GET", p, None, None) for p in paths])]
