# base-ml: the seed's infra/docker/base-ml.Dockerfile: base-runtime + libs/requirements-ml.txt.
ARG REGISTRY=gitea.example.com
ARG OWNER=harkon
ARG BASE_VERSION=v1.0.1
FROM ${REGISTRY}/${OWNER}/base-runtime:${BASE_VERSION}
ARG REGISTRY
ARG OWNER
ARG BASE_VERSION
ARG BENCH_NONCE=
USER root
WORKDIR /app
COPY libs/requirements-ml.txt /tmp/requirements-ml.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    PIP_DEFAULT_TIMEOUT=60 PIP_DISABLE_PIP_VERSION_CHECK=1 pip install -r /tmp/requirements-ml.txt
LABEL org.opencontainers.image.title="base-ml" \
      org.opencontainers.image.base.name="${REGISTRY}/${OWNER}/base-runtime:${BASE_VERSION}"
USER appuser
