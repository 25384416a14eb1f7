# The relay image used by compose.yaml (scaled mode: Kafka bus + Redis mailboxes).
# Build: `docker compose build` (takes DENO_VERSION from .env, where it is pinned), or
#   docker build --build-arg DENO_VERSION="$(sed -n 's/^DENO_VERSION=//p' .env)" -t chat-p2p-relay .
ARG DENO_VERSION
FROM denoland/deno:${DENO_VERSION}

WORKDIR /app
# Dependencies first (cached layer): npm packages pinned by deno.json + deno.lock.
# Deno loads the whole workspace (root deno.json "workspace") before it runs anything, so every
# member's deno.json is copied; the relay needs only the protocol package's code besides its own.
COPY deno.json deno.lock ./
COPY protocol/ protocol/
COPY client/deno.json client/
COPY cli/deno.json cli/
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
