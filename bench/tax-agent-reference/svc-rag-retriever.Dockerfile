# svc-rag-retriever: the seed's ML service pattern (FROM the pre-built base-ml image).
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
# Service-specific deps (only what base-ml lacks)
COPY apps/svc_rag_retriever/requirements.txt /tmp/service-requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    PIP_DEFAULT_TIMEOUT=60 PIP_DISABLE_PIP_VERSION_CHECK=1 pip install -r /tmp/service-requirements.txt
# App code last. The seed copies, then runs `chown -R appuser:appuser /app`; COPY --chown does
# the same without an extra layer (the stronger baseline).
COPY --chown=appuser:appuser libs/ ./libs/
COPY --chown=appuser:appuser apps/svc_rag_retriever/ ./apps/svc_rag_retriever/
USER appuser
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD curl -fsS http://localhost:8000/healthz || exit 1
EXPOSE 8000
LABEL org.opencontainers.image.title="svc-rag-retriever" \
      org.opencontainers.image.base.name="${REGISTRY}/${OWNER}/base-ml:${BASE_VERSION}"
CMD ["uvicorn", "apps.svc_rag_retriever.main:app", "--host", "0.0.0.0", "--port", "8000"]
