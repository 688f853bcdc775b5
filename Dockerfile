# syntax=docker/dockerfile:1
# The amiflow worker. Multi-stage: compile TypeScript with the dev dependencies, then run the
# compiled JavaScript with production dependencies only, as the unprivileged `node` user.
# Debian (glibc), not Alpine: the Temporal worker's native core ships glibc builds.
# Node 24 LTS (Node 22 is supported too: NODE_IMAGE=node:22.x-bookworm-slim).
ARG NODE_IMAGE=node:24.19.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY contracts ./contracts
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY client ./client
COPY shared ./shared
COPY scripts/bundle-workflows.ts scripts/ec2-client-subset.ts ./scripts/
RUN npm run build

FROM ${NODE_IMAGE} AS production-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# The workflow bundle built by `npm run build`: no webpack at start, less memory.
ENV AMIFLOW_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
# Lean runtime (docs/sizing.md): a 1 MB young generation and two glibc arenas trimmed at 128 KB
# take an idle worker from ~226 MB to ~160 MB for a little more GC work. Not --jitless or
# --lite-mode: the workflow sandbox needs WebAssembly. MALLOC_MMAP_THRESHOLD_=32768: V8's compiler
# zones take 32 KB segments from malloc and free them after each compile; in the arenas they left
# holes glibc never returned (~25 MB on Node 24), mmapped they are unmapped on free.
# Where memory is scarcer than CPU: AMIFLOW_V8_MEMORY_SAVER=on (V8's memory saver; ~230 MB instead of
# 330-425 MB with 1,000 waits, ~70 ms instead of 41-50 ms worker CPU per run; docs/sizing.md).
ENV NODE_OPTIONS=--max-semi-space-size=1 MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072 MALLOC_MMAP_THRESHOLD_=32768
# Metrics (Prometheus) and health probes; logs are JSON lines (stdout is not a terminal here).
ENV AMIFLOW_METRICS_ADDRESS=0.0.0.0:9464 AMIFLOW_HEALTH_ADDRESS=0.0.0.0:8080
EXPOSE 9464 8080
WORKDIR /app
COPY --from=production-deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
USER node
# Worker.run() shuts down gracefully on SIGTERM: in-flight activities get AMIFLOW_SHUTDOWN_GRACE_MS.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# --heap-growing-percent=20 is a lean setting too (heaps grow 1.2x after a full collection, not up
# to 4x: 250-270 MB instead of 330-450 MB with 1,000 waits; docs/sizing.md). Node 24 refuses it in
# NODE_OPTIONS, so it goes here; the Kubernetes Deployment repeats this command.
CMD ["node", "--heap-growing-percent=20", "dist/worker/main.js"]
