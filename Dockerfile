# mcp-warden: the gateway on Node 24, which runs the TypeScript sources directly (type stripping), so
# there is no build step: the first stage only installs the production dependencies.
# The image writes nothing at run time: it works with a read-only root filesystem. The config comes
# from a mounted ConfigMap, the gateway signing key (mode 0400/0600) from a mounted Secret.
# Base images are pinned by major; pin them by digest (node:24-slim@sha256:…) for reproducible builds.

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (the node@24 devDependency and the test tools stay out). No runtime
# dependency needs an install script, so none gets to run one.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-slim AS runtime
ENV NODE_ENV=production
# A package manager is not needed to run, and is one tool less for whoever gets code execution.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
    /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
WORKDIR /app
# Everything is owned by root and only readable by the gateway's user: it cannot alter its own code.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY config ./config
# Numeric, so that Kubernetes can verify runAsNonRoot without an /etc/passwd entry.
USER 10001:10001
# 8080: traffic (MCP clients). 9090: admin (/metrics, /healthz, /readyz).
EXPOSE 8080 9090
# No curl in slim images: the gateway's own `health` command asks /healthz on the admin listener the
# config names (admin.host/port), so the check follows a changed admin port. Liveness only, like the
# Kubernetes liveness probe; readiness (/readyz) is for load balancers. A config mounted elsewhere than
# the CMD's path needs the same path here (docker run --health-cmd, or a derived image).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/bin/mcp-warden.js", "health", "--config", "/etc/mcp-warden/config.yaml"]
ENTRYPOINT ["node", "/app/bin/mcp-warden.js"]
CMD ["serve", "--config", "/etc/mcp-warden/config.yaml"]
