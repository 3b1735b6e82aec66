# The image of compose.yaml's copier services: api, router, worker-deriv, ledger, the
# one-shot nats-setup and, in the dev profile, sim-deriv. It holds the project's runtime
# dependencies only: not the servers `copier up` embeds (dependency group `embedded`:
# nats-server, valkey-server, the MongoDB stand-in), which compose runs from their own
# images, and not the dev tools. It runs as an unprivileged user. The dashboard is built
# in a first stage and served by the API.
FROM node:20-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.13-slim
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
# The locked dependencies first, so that a change of the sources rebuilds only what
# follows. --no-default-groups: the project's own dependencies, without the `dev` and
# `embedded` groups that `uv sync` installs on a workstation.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-default-groups --no-install-project
COPY apps/ apps/
COPY cli/ cli/
COPY nats/ nats/
# The project is installed editable (uv's default): the services find nats/ next to apps/.
RUN uv sync --frozen --no-default-groups
COPY --from=frontend /src/frontend/dist frontend/dist
# DATA_DIR is the one place a service may write (the simulator's accounts); a named
# volume mounted there starts out owned by this user.
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home copier \
    && mkdir /data && chown copier:copier /data
ENV PATH="/app/.venv/bin:$PATH" DATA_DIR=/data
USER copier
EXPOSE 8000
# Healthy: the API answers /ready, i.e. NATS, Valkey and MongoDB all answer it now.
# compose.yaml gives the services without an HTTP API a check of their own.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('API_PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "apps.api.main"]
