# base-runtime: the seed's infra/docker/base-runtime.Dockerfile, reduced to the packages of
# examples/tax-agent (libs/requirements-base.txt, curl, appuser). Builtin Dockerfile frontend:
# no `# syntax=` line (no image can be pulled here). Context: examples/tax-agent (or a copy).
ARG PYTHON_VERSION=3.12
# The python slim image; bench/run.py pins it to a private tag for the whole run.
ARG PYTHON_IMAGE=python:${PYTHON_VERSION}-slim
FROM ${PYTHON_IMAGE}
ARG BASE_VERSION=v1.0.1
ARG OWNER=harkon
ARG PYTHON_VERSION
# Benchmark only: a per-run nonce that is in the env of every RUN, so a "cold" run misses the
# build cache at every step (bench/run.py). Empty by default; the same on both sides.
ARG BENCH_NONCE=
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# apt with BuildKit cache mounts, as seed 004 recommends (sharing=locked). docker-clean is
# removed so the downloaded .debs stay in the cache mount.
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
    && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache \
    && apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl
RUN groupadd -g 1000 appuser && useradd --no-log-init -m -u 1000 -g appuser appuser
WORKDIR /app
COPY libs/requirements-base.txt /tmp/requirements-base.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    PIP_DEFAULT_TIMEOUT=60 PIP_DISABLE_PIP_VERSION_CHECK=1 pip install -r /tmp/requirements-base.txt
LABEL org.opencontainers.image.title="base-runtime" \
      org.opencontainers.image.version="${BASE_VERSION}" \
      org.opencontainers.image.vendor="${OWNER}" \
      org.opencontainers.image.base.name="docker.io/library/python:${PYTHON_VERSION}-slim"
USER appuser
