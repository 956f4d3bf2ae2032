import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { sendJson } from '../lib/json-response.ts';

export interface AdminDeps {
  readonly ready: () => boolean | Promise<boolean>;
  /** The /readyz body beside `ready`: draining and each issuer's key status (each worker's, under `serve --workers`). */
  readonly readiness: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** One registry, or under `serve --workers` the primary's aggregation of every worker's. */
  readonly metrics: { readonly registry: { readonly contentType: string; metrics(): Promise<string> } };
  /** Further admin endpoints (the RFC 8935 SSF push receiver); true when it answered. */
  readonly extra?: (req: IncomingMessage, res: ServerResponse, path: string) => boolean;
}

/** The admin listener: liveness, readiness and Prometheus metrics; nothing else answers there. */
export function createAdminServer(deps: AdminDeps): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      void Promise.all([deps.ready(), deps.readiness()]).then(
        ([ready, readiness]) => sendJson(res, ready ? 200 : 503, { ready, ...readiness }),
        () => sendJson(res, 503, { ready: false }),
      );
      return;
    }
    if (path === '/metrics') {
      void deps.metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
          res.end(text);
        },
        () => sendJson(res, 503, { error: 'metrics_unavailable' }),
      );
      return;
    }
    if (deps.extra?.(req, res, path ?? '') === true) return;
    return sendJson(res, 404, { error: 'not_found' });
  });
}
