# svc-ocr: the seed's ML service pattern (FROM the pre-built base-ml image).
ARG REGISTRY=gitea.example.com
ARG OWNER=harkon
ARG BASE_VERSION=v1.0.1
FROM ${REGISTRY}/${OWNER}/base-ml:${BASE_VERSION}
ARG REGISTRY
ARG OWNER
ARG BASE_VERSION
ARG BENCH_NONCE=
USER root
WORKDIR /app
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends poppler-utils
# Service-specific deps (only what base-ml lacks)
COPY apps/svc_ocr/requirements.txt /tmp/service-requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    PIP_DEFAULT_TIMEOUT=60 PIP_DISABLE_PIP_VERSION_CHECK=1 pip install -r /tmp/service-requirements.txt
# App code last. The seed copies, then runs `chown -R appuser:appuser /app`; COPY --chown does
# the same without an extra layer (the stronger baseline).
COPY --chown=appuser:appuser libs/ ./libs/
COPY --chown=appuser:appuser apps/svc_ocr/ ./apps/svc_ocr/
USER appuser
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD curl -fsS http://localhost:8000/healthz || exit 1
EXPOSE 8000
LABEL org.opencontainers.image.title="svc-ocr" \
      org.opencontainers.image.base.name="${REGISTRY}/${OWNER}/base-ml:${BASE_VERSION}"
CMD ["uvicorn", "apps.svc_ocr.main:app", "--host", "0.0.0.0", "--port", "8000"]
