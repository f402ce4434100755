# syntax=docker/dockerfile:1
# One image for every backend service (api, mcp, worker-cpu, worker-io, beat); compose picks the
# command. Default: the API. TA-Lib's C library comes inside the ta-lib wheel, so no system package.
FROM python:3.12-slim

COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /uvx /usr/local/bin/

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH

WORKDIR /app

# Dependencies first (cached until pyproject.toml or uv.lock changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

COPY apps/ apps/
COPY packages/ packages/
COPY env/ env/
COPY scripts/ scripts/
COPY alembic.ini ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# Run unprivileged; /app/var (data folder: beat schedule, market data) is the one writable place.
RUN useradd --system --create-home --uid 10001 minsy \
    && mkdir -p /app/var/beat \
    && chown -R minsy:minsy /app/var
USER minsy

EXPOSE 8000 8110
# In a container the servers listen on every interface (the env files' dev default is 127.0.0.1).
ENV API_HOST=0.0.0.0 \
    MCP_HOST=0.0.0.0
# `minsy serve` execs uvicorn with the flags of the settings; X-Forwarded-For is believed only from
# the proxies in API_TRUSTED_PROXIES (none by default).
CMD ["minsy", "serve", "api"]
