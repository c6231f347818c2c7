# syntax=docker/dockerfile:1
#
# sise: one image for every stage (`sise up`, or `sise ingest|project|edge`).
#   docker build -t sise .
#   docker run --rm -p 8080:8080 -e SISE_NATS_URL=... -e SISE_REDIS_URL=... -e SISE_DATABASE_URL=... sise
# The migrations are embedded in the binary (sqlx::migrate!), the dashboard is
# served from SISE_WEB_DIR at run time.

# ---- web: the dashboard's static export (web/out) ----------------------------
FROM node:20-bookworm AS web
ENV NEXT_TELEMETRY_DISABLED=1
WORKDIR /src/web
# Lockfile first, so a change to the sources reuses the installed node_modules.
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
# Only web/ is copied: if the web ever reads a file from outside web/ at build
# time (a shared data file, the OpenAPI document), add a COPY for it here.
COPY web/ ./
RUN npm run build && test -f out/index.html

# ---- build: the sise binary -------------------------------------------------
# Bookworm on both sides, so the binary's glibc matches the runtime image.
FROM rust:1-bookworm AS build
WORKDIR /src
# sqlx's query macros, if any, use the checked-in .sqlx/ data instead of a live database.
ENV SQLX_OFFLINE=true CARGO_TERM_COLOR=never
COPY . .
# The cache mounts keep the registry and target/ between builds (BuildKit);
# target/ is a cache mount, so the binary is copied out of it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sise \
 && install -m 0755 target/release/sise /usr/local/bin/sise

# ---- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to the outside sources; curl: the container healthcheck
# (GET /readyz); tini: PID 1 that forwards SIGTERM and reaps children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sise \
 && useradd --system --uid 10001 --gid sise --home-dir /app --no-create-home --shell /usr/sbin/nologin sise
WORKDIR /app
COPY --from=build /usr/local/bin/sise /usr/local/bin/sise
COPY --from=web /src/web/out /app/web/out
ENV SISE_WEB_DIR=/app/web/out \
    SISE_HTTP_ADDR=0.0.0.0:8080
USER sise:sise
EXPOSE 8080
# Ready = NATS, Redis and PostgreSQL reachable. A container that runs a stage
# without the HTTP edge, or on another port, overrides or disables this.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sise", "up"]
