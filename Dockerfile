# syntax=docker/dockerfile:1
# One image per process: `docker build --target api|worker|notifier .`

# ---------------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /app
COPY . .
# target/ lives in a cache mount, so the binaries are copied out to /out in the same step.
RUN --mount=type=cache,id=enconvert-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=enconvert-target,target=/app/target,sharing=locked \
    cargo build --release --locked \
        -p enconvert-api -p enconvert-worker -p enconvert-notifier -p enconvert-admin \
 && mkdir -p /out \
 && for bin in enconvert-api enconvert-worker enconvert-notifier enconvert-admin; do \
        cp "target/release/$bin" /out/ || { echo "missing binary $bin" >&2; exit 1; }; \
    done

# ---------------------------------------------------------------------------------------------
# Shared runtime base: CA roots, the non-root user, /data owned by it.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 enconvert \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/enconvert --shell /usr/sbin/nologin enconvert \
 && mkdir -p /data/files /data/mail \
 && chown -R enconvert:enconvert /data
COPY --from=build /out/enconvert-admin /usr/local/bin/enconvert-admin

# ---------------------------------------------------------------------------------------------
FROM runtime AS api
# curl only for the compose healthcheck (GET /healthz).
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/enconvert-api /usr/local/bin/enconvert-api
ENV ENCONVERT_STORAGE_DIR=/data/files \
    ENCONVERT_MAIL_DIR=/data/mail \
    ENCONVERT_API_ADDR=0.0.0.0:8080
VOLUME /data
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/enconvert-api"]

# ---------------------------------------------------------------------------------------------
# No HTTP port yet (health endpoints for the notifier are planned), so nothing to EXPOSE.
FROM runtime AS notifier
COPY --from=build /out/enconvert-notifier /usr/local/bin/enconvert-notifier
ENV ENCONVERT_STORAGE_DIR=/data/files \
    ENCONVERT_MAIL_DIR=/data/mail
VOLUME /data
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/enconvert-notifier"]

# ---------------------------------------------------------------------------------------------
# Chromium + fonts; tini reaps the browser's child processes. No HTTP port yet (planned).
FROM runtime AS worker
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        chromium \
        fonts-dejavu-core \
        fonts-liberation \
        fonts-noto-cjk \
        fonts-noto-color-emoji \
        ca-certificates \
        tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/enconvert-worker /usr/local/bin/enconvert-worker
ENV ENCONVERT_STORAGE_DIR=/data/files \
    ENCONVERT_MAIL_DIR=/data/mail \
    ENCONVERT_CHROMIUM_PATH=/usr/bin/chromium
VOLUME /data
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/enconvert-worker"]
