# Gatewayz gateway image: the package installed from this checkout, served by the CLI.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what `pip install .` needs, listed by hand: there is no .dockerignore, and
# a blanket COPY would drag a local .venv and .git into the build context layer.
COPY pyproject.toml ./
COPY domain ./domain
COPY application ./application
COPY adapters ./adapters
COPY projections ./projections
COPY entrypoints ./entrypoints
COPY migrations ./migrations

RUN pip install . \
    && useradd --system --uid 10001 --no-create-home gatewayz \
    && mkdir -p /data && chown gatewayz /data && chmod 0700 /data

# The data directory holds the serve lock (and, without DATABASE_URL, the SQLite files);
# /app belongs to root, so it lives in a directory the service user owns.
ENV GATEWAYZ_DATA_DIR=/data
USER gatewayz

EXPOSE 8080

CMD ["gatewayz", "serve", "--host", "0.0.0.0", "--port", "8080"]
