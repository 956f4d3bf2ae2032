import type { OutgoingHttpHeaders } from 'node:http';

const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate']);

/** Upstream response headers → client, without hop-by-hop fields (and those the upstream's Connection names). */
export function clientResponseHeaders(headers: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const listed = new Set<string>();
  const conn = headers['connection'];
  if (conn !== undefined) for (const name of String(conn).split(',')) listed.add(name.trim().toLowerCase());
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || RESPONSE_DROP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}
