# The relay image used by compose.yaml (scaled mode: Kafka bus + Redis mailboxes).
# Build: docker build -t chat-p2p-relay .     Run: see compose.yaml.
ARG DENO_VERSION=2.9.6
FROM denoland/deno:${DENO_VERSION}

WORKDIR /app
# Dependencies first (cached layer): npm packages pinned by deno.json + deno.lock.
COPY deno.json deno.lock ./
COPY shared/ shared/
COPY relay/ relay/
RUN deno cache --frozen relay/main.ts \
  && mkdir -p /app/relay-data \
  && chown deno:deno /app/relay-data

USER deno
ENV RELAY_HOST=0.0.0.0 \
    RELAY_PORT=8080 \
    RELAY_DATA_DIR=/app/relay-data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD deno eval "const r = await fetch('http://127.0.0.1:8080/readyz'); Deno.exit(r.ok ? 0 : 1)"
CMD ["deno", "task", "relay"]
