# syntax=docker/dockerfile:1
# Qatysu server image.
#   docker build -t qatysu .
#   docker run -p 8080:8080 -e QATYSU_JWT_SECRET=... -e QATYSU_IIN_HASH_SECRET=... qatysu
# The server refuses to start without both secrets (32 bytes or more each); for a throwaway trial
# only: docker run -p 8080:8080 qatysu qatysu serve --host 0.0.0.0 --demo

# ---- build: install the locked dependencies and the project into a virtualenv --------------
FROM python:3.11-slim AS build

# The same uv as the Makefile's UV_VERSION, so the image installs exactly what CI tested.
ARG UV_VERSION=0.13.10
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

WORKDIR /src
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
# Dependencies first, from uv.lock alone (exact versions, hashes checked), in a layer that only
# a change of the lock rebuilds; every one of them ships manylinux wheels, so no compiler.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project --no-editable --no-cache
COPY core/ core/
COPY plugins/ plugins/
RUN uv sync --locked --no-editable --no-cache

# ---- runtime: the virtualenv, the default config, and nothing else -------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QATYSU_SERVER__DATA_DIR=/app/var

RUN groupadd --system --gid 10001 qatysu \
 && useradd --system --uid 10001 --gid qatysu --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin qatysu

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Settings read config/default.toml relative to the working directory.
COPY config/ config/
# The only writable place: SQLite database, WAL and anything else the server persists.
RUN mkdir -p /app/var && chown qatysu:qatysu /app/var
VOLUME ["/app/var"]

USER 10001:10001
EXPOSE 8080

# python:3.11-slim has no curl; urlopen raises on connection errors and non-2xx answers, which
# makes the exit status non-zero. The port follows QATYSU_SERVER__PORT if it is overridden.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('QATYSU_SERVER__PORT', '8080') + '/healthz', timeout=2)"]

# Exec form keeps qatysu as PID 1, so `docker stop`'s SIGTERM reaches it and triggers the
# graceful drain (readiness off, in-flight requests finish, writer flushes).
STOPSIGNAL SIGTERM
CMD ["qatysu", "serve", "--host", "0.0.0.0"]
