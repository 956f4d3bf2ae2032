import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Metrics } from './metrics.ts';

export interface AdminDeps {
  readonly ready: () => boolean;
  /** The /readyz body beside `ready`: draining and each issuer's key status. */
  readonly readiness: () => Record<string, unknown>;
  readonly metrics: Metrics;
  /** Further admin endpoints (the RFC 8935 SSF push receiver); true when it answered. */
  readonly extra?: (req: IncomingMessage, res: ServerResponse, path: string) => boolean;
}

/** The admin listener: liveness, readiness and Prometheus metrics; nothing else answers there. */
export function createAdminServer(deps: AdminDeps): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const ready = deps.ready();
      return json(res, ready ? 200 : 503, { ready, ...deps.readiness() });
    }
    if (path === '/metrics') {
      void deps.metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
        res.end(text);
      });
      return;
    }
    if (deps.extra?.(req, res, path ?? '') === true) return;
    return json(res, 404, { error: 'not_found' });
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}
