# Outcome Loop worker image: `outcomeloop worker` by default; any other subcommand works too,
# e.g. `docker run --rm <image> migrate`. Used by docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# LightGBM loads the OpenMP runtime at import.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# Non-root runtime user. Its home, /var/lib/outcomeloop, is the only writable place the
# worker needs: OL_DATA_DIR points there (the worker keeps Faust's data directory under it).
RUN groupadd --system --gid 10001 outcomeloop \
    && useradd --system --uid 10001 --gid outcomeloop \
        --home-dir /var/lib/outcomeloop --create-home --shell /usr/sbin/nologin outcomeloop \
    && install -d -o outcomeloop -g outcomeloop /var/lib/outcomeloop/registry
# (The registry folder exists in the image, owned by the runtime user, so a named volume
# mounted there starts with that owner and the worker can write model versions into it.)

WORKDIR /app

# Dependencies first, in their own layer, so editing the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, editable, so the layout stays /app/{workers,schemas,migrations,config}:
# workers/settings.py finds migrations/ and config/ next to the package (REPO_ROOT = /app).
# "README.m[d]" copies README.md (pyproject's readme) when it exists and matches nothing
# otherwise; pyproject.toml is listed again so the COPY always has a source.
COPY pyproject.toml README.m[d] ./
COPY workers ./workers
COPY schemas ./schemas
COPY migrations ./migrations
COPY config ./config
RUN pip install --no-cache-dir -e .

# The two paths are explicit too, so a different install layout cannot silently lose them.
# The data directory must be writable by the runtime user, and the web server (metrics)
# must listen beyond loopback to be reachable from outside the container.
ENV OL_CONFIG_FILE=/app/config/demo.toml \
    OL_MIGRATIONS_DIR=/app/migrations \
    OL_DATA_DIR=/var/lib/outcomeloop \
    OL_WORKER__WEB_HOST=0.0.0.0 \
    OL_WORKER__WEB_PORT=6066

USER 10001:10001
WORKDIR /var/lib/outcomeloop

EXPOSE 6066
ENTRYPOINT ["outcomeloop"]
CMD ["worker"]
