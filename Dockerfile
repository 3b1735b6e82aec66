# Image for compose.yaml's services (api, router, workers, ledger). The dashboard is built
# in a first stage and served by the API.
FROM node:20-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.13-slim
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY apps/ apps/
COPY cli/ cli/
COPY nats/ nats/
RUN uv sync --frozen --no-dev
COPY --from=frontend /src/frontend/dist frontend/dist
ENV PATH="/app/.venv/bin:$PATH"
USER nobody
CMD ["python", "-m", "apps.api.main"]
