# wasmbot: the host binary and the bundled plugins in a small, non-root image.
# Build: docker build -t wasmbot .   (docker compose builds it for you)

FROM rust:1.95-bookworm AS builder
WORKDIR /src
RUN rustup target add wasm32-wasip2
COPY . .
# The host in release, then every plugins/*/ for wasm32-wasip2 into plugins/dist.
RUN cargo build --release --locked --bin wasmbot \
 && scripts/build-plugins.sh plugins plugins/dist

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /app wasmbot
WORKDIR /app
COPY --from=builder /src/target/release/wasmbot /usr/local/bin/wasmbot
COPY --from=builder /src/plugins/dist /app/plugins/dist
RUN mkdir -p /app/data && chown wasmbot:wasmbot /app/data
USER wasmbot
ENV PLUGINS_DIR=/app/plugins/dist \
    PLUGIN_CACHE_DIR=/app/data/plugin-cache \
    HTTP_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["wasmbot", "health", "--http"]
CMD ["wasmbot", "run"]
