# mcp-warden: the gateway on Node 24 (which runs the TypeScript sources directly), non-root, and fine
# with a read-only root filesystem: it writes nothing but what a mounted volume holds.

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the node@24 devDependency and test tools stay out of the image.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY config ./config
# Config from a ConfigMap at /etc/mcp-warden/config.yaml; the gateway key (0600) from a Secret, e.g.
# /etc/mcp-warden/keys/gateway.jwk, referenced by identity.signingKeyFile.
USER 10001:10001
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/mcp-warden.js"]
CMD ["serve", "--config", "/etc/mcp-warden/config.yaml"]
