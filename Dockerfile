# syntax=docker/dockerfile:1
# Troupe as one image for every part of a deployment: the command picks the part
# (`orchestrator`, `worker <domain>`, `worker --agent <name>`, `model serve`, `run`, …).
#   docker build -t troupe .
#   docker run --rm -e NATS_URL=nats://nats:4222 troupe worker calc

# Build: the package exactly as npm would publish it.
FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# bin/build directly: the checkout's npm scripts go through bin/toolchain, which would fetch a Node.
RUN PATH="/src/node_modules/.bin:$PATH" bash bin/build \
 && npm pack --ignore-scripts --pack-destination /tmp/package \
 && mv /tmp/package/troupe-*.tgz /tmp/package/troupe.tgz

# Run: the packed package with production dependencies only, as a user installs it.
FROM node:24-slim
ENV NODE_ENV=production \
    TROUPE_WORKSPACE=/workspace
WORKDIR /app
COPY --from=build /tmp/package/troupe.tgz /tmp/troupe.tgz
RUN npm init -y >/dev/null \
 && npm install --omit=dev --no-audit --no-fund /tmp/troupe.tgz @modelcontextprotocol/server-everything@2026.8.31 \
 && rm /tmp/troupe.tgz \
 && npm cache clean --force \
 && mkdir -p /workspace && chown node:node /workspace
USER node
ENTRYPOINT ["/app/node_modules/.bin/troupe"]
CMD ["--help"]
