import type { OutgoingHttpHeaders } from 'node:http';

const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate']);

/**
 * Upstream response headers → client, without hop-by-hop fields (and those the upstream's Connection
 * names), and without the upstream's CORS headers: the gateway alone answers which origins may read
 * (route/cors.ts); an upstream's `*` or Allow-Credentials would otherwise reach the browser.
 */
export function clientResponseHeaders(headers: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  // No Set and no entry arrays per response unless the upstream sent Connection (issue 25 profile), nor
  // for `Connection: keep-alive`, which Node upstreams send on every answer and which names only a field
  // dropped anyway.
  const conn = headers['connection'];
  const listed = conn === undefined || conn === 'keep-alive' ? undefined : new Set(String(conn).split(',').map((name) => name.trim().toLowerCase()));
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || RESPONSE_DROP.has(name) || listed?.has(name) === true || name.startsWith('access-control-')) continue;
    out[name] = value;
  }
  return out;
}
