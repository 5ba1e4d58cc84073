# chaintape: one image for every service (collectors, migrate, verify, backfill).
#   docker build -t chaintape .
# The base is the official Python image, pinned by tag and digest; tests build the same file
# with only PYTHON_IMAGE replaced by a local stand-in (tests/docker/build_images.sh).
ARG PYTHON_IMAGE=python:3.13.7-slim-trixie@sha256:5f55cdf0c5d9dc1a415637a5ccc4a9e18663ad203673173b8cda8f8dcacef689

# --- builder: the dependencies into a virtualenv (wheels only: nothing is compiled) -----------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY pyproject.toml ./
# The runtime dependencies exactly as pyproject.toml lists them (not the dev extras).
RUN python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies']))" > requirements.txt \
    && python -m venv /opt/chaintape \
    && /opt/chaintape/bin/pip install --no-cache-dir --only-binary=:all: -r requirements.txt

# --- runtime: the venv, the code and the schema; no build tools, no secrets ------------------
FROM ${PYTHON_IMAGE}
ARG CHAINTAPE_UID=10001
LABEL org.opencontainers.image.title="chaintape" \
      org.opencontainers.image.description="Deribit options market data recorder into TimescaleDB" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/chaintape/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SPOOL_DIR=/var/lib/chaintape/spool \
    PG_BIN_DIR=/usr/lib/postgresql/17/bin
RUN groupadd --system --gid "${CHAINTAPE_UID}" chaintape \
    && useradd --system --uid "${CHAINTAPE_UID}" --gid chaintape --home-dir /app --no-create-home --shell /usr/sbin/nologin chaintape \
    && mkdir -p /var/lib/chaintape/spool \
    && chown -R chaintape:chaintape /var/lib/chaintape
# pg_dump/pg_restore of PostgreSQL 17, the timescaledb image's major version (the backup
# refuses any other); called by path, so Debian's wrapper scripts are not involved.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-17 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /opt/chaintape /opt/chaintape
WORKDIR /app
COPY scripts ./scripts
COPY schema ./schema
# The spool (rows waiting for the database, status files for the health check, trade
# coverage marks) must outlive the container: compose mounts a named volume here.
VOLUME ["/var/lib/chaintape/spool"]
USER ${CHAINTAPE_UID}:${CHAINTAPE_UID}
# SIGTERM drains buffers within DRAIN_DEADLINE_S (20 s); compose waits stop_grace_period (60 s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=30s --start-period=120s --retries=3 \
    CMD ["python", "-m", "scripts.healthcheck"]
CMD ["python", "-m", "scripts.ws_tick_collector_multi"]
