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
# Ports: 8080 the public API; 9181 health and metrics (/healthz, /readyz, /metrics), not public.
FROM runtime AS api
# curl only for the compose healthcheck (GET /readyz).
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/enconvert-api /usr/local/bin/enconvert-api
ENV ENCONVERT_STORAGE_DIR=/data/files \
    ENCONVERT_MAIL_DIR=/data/mail \
    ENCONVERT_API_ADDR=0.0.0.0:8080 \
    ENCONVERT_API_OPS_ADDR=0.0.0.0:9181
VOLUME /data
USER 10001:10001
EXPOSE 8080 9181
ENTRYPOINT ["/usr/local/bin/enconvert-api"]

# ---------------------------------------------------------------------------------------------
# Port 9183: health and metrics (/healthz, /readyz, /metrics).
FROM runtime AS notifier
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/enconvert-notifier /usr/local/bin/enconvert-notifier
ENV ENCONVERT_STORAGE_DIR=/data/files \
    ENCONVERT_MAIL_DIR=/data/mail \
    ENCONVERT_NOTIFIER_OPS_ADDR=0.0.0.0:9183
VOLUME /data
USER 10001:10001
EXPOSE 9183
ENTRYPOINT ["/usr/local/bin/enconvert-notifier"]

# ---------------------------------------------------------------------------------------------
# Chromium + fonts (Latin, CJK, emoji); tini reaps the browser's child processes.
# Port 9182: health and metrics (/healthz, /readyz, /metrics).
FROM runtime AS worker
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        chromium \
        curl \
        fonts-dejavu-core \
        fonts-liberation \
        fonts-noto-cjk \
        fonts-noto-color-emoji \
        ca-certificates \
        tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/enconvert-worker /usr/local/bin/enconvert-worker
# glibc's allocator: two arenas, freed memory trimmed, large buffers (PDFs, screenshots) in
# their own mappings. What headless_chrome's per-tab threads held then goes back to the
# system when the browser is recycled, instead of staying in the worker's RSS
# (docs/performance.md, (e)).
ENV ENCONVERT_STORAGE_DIR=/data/files \
    ENCONVERT_MAIL_DIR=/data/mail \
    ENCONVERT_CHROMIUM_PATH=/usr/bin/chromium \
    ENCONVERT_WORKER_OPS_ADDR=0.0.0.0:9182 \
    MALLOC_ARENA_MAX=2 \
    MALLOC_TRIM_THRESHOLD_=0 \
    MALLOC_MMAP_THRESHOLD_=65536
VOLUME /data
USER 10001:10001
EXPOSE 9182
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/enconvert-worker"]
