"""The FastAPI app every service starts from: /healthz, /metrics and request ids."""
import time

import orjson
import ulid
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest


def json_response(data, status_code=200):
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def create_app(service: str, version: str = "dev") -> FastAPI:
    app = FastAPI(title=service, version=version)
    registry = CollectorRegistry()
    requests = Counter("http_requests", "HTTP requests served", ["path"], registry=registry)
    started = time.time()

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        response = await call_next(request)
        response.headers["x-request-id"] = str(ulid.new())
        requests.labels(request.url.path).inc()
        return response

    @app.get("/healthz")
    def healthz():
        return json_response({"status": "ok", "service": service, "uptime_s": round(time.time() - started, 3)})

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
