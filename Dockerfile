# Parley: `parley run` as a non-root user in a slim Python image.
#
#   docker build -t parley .
#   docker run -d --env-file .env -p 8080:8080 -v parley-data:/data --stop-timeout 30 parley
#
# The build stage installs Parley (with the PostgreSQL driver) into a venv with
# scripts/install.sh, the same script CI runs (.ci/docker-check.sh); the runtime stage gets that
# venv and nothing else from the build. Both stages must use the same base image: the venv points
# at its interpreter by path. See docs/deploy.md.

FROM python:3.11-slim AS build
WORKDIR /src
# .dockerignore admits only what the install needs (an allow list), so tests, venvs, caches,
# .git and any .env stay out of the build context.
COPY . .
RUN sh scripts/install.sh /opt/venv postgres

FROM python:3.11-slim
# A fixed numeric uid/gid: volume ownership stays stable across rebuilds, and orchestrators that
# require a non-root user (runAsNonRoot) can verify it from USER.
RUN groupadd --system --gid 10001 parley \
 && useradd --system --uid 10001 --gid parley --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin parley \
 && mkdir /data \
 && chown parley:parley /data
COPY --from=build /opt/venv /opt/venv
COPY scripts/healthcheck.py /opt/parley/healthcheck.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PARLEY_HTTP_HOST=0.0.0.0 \
    PARLEY_HTTP_PORT=8080 \
    DATABASE_URL=sqlite+aiosqlite:////data/parley.db
# The working directory is the data volume, so a parley.toml placed there is read too.
WORKDIR /data
VOLUME /data
USER 10001:10001
EXPOSE 8080
# start-period covers start-up migrations and the adapters connecting.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/opt/parley/healthcheck.py"]
# Exec form: parley is PID 1 and gets SIGTERM itself, then finishes in-flight replies
# (PARLEY_SHUTDOWN_DEADLINE, 20 s by default: give `docker stop` more than that).
ENTRYPOINT ["parley"]
CMD ["run"]
