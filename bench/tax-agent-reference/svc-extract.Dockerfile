# svc-extract: the seed's "Non-ML Service Dockerfile Pattern": a venv built in a builder stage from
# python slim, copied into a fresh python slim. (The seed's builder also apt-installs
# build-essential and curl; examples/tax-agent dropped that because every dependency has a
# wheel, so it is dropped here too.)
ARG PYTHON_VERSION=3.12
# The python slim image; bench/run.py pins it to a private tag for the whole run.
ARG PYTHON_IMAGE=python:${PYTHON_VERSION}-slim
FROM ${PYTHON_IMAGE} AS builder
ARG BENCH_NONCE=
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"
COPY libs/requirements-base.txt /tmp/libs-requirements.txt
COPY apps/svc_extract/requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    PIP_DEFAULT_TIMEOUT=60 PIP_DISABLE_PIP_VERSION_CHECK=1 pip install -r /tmp/libs-requirements.txt -r /tmp/requirements.txt

# Production stage
FROM ${PYTHON_IMAGE}
ARG BASE_VERSION=v1.0.1
ARG OWNER=harkon
ARG BENCH_NONCE=
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN groupadd -g 1000 appuser && useradd --no-log-init -m -u 1000 -g appuser appuser
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH" VIRTUAL_ENV=/opt/venv
COPY --chown=appuser:appuser libs/ ./libs/
COPY --chown=appuser:appuser apps/svc_extract/ ./apps/svc_extract/
USER appuser
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/healthz', timeout=3)"]
EXPOSE 8000
LABEL org.opencontainers.image.title="svc-extract" \
      org.opencontainers.image.version="${BASE_VERSION}" \
      org.opencontainers.image.vendor="${OWNER}"
CMD ["uvicorn", "apps.svc_extract.main:app", "--host", "0.0.0.0", "--port", "8000"]
