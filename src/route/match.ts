import type { UpstreamConfig } from '../config/compile.ts';

export type RouteResult =
  | { readonly kind: 'upstream'; readonly upstream: UpstreamConfig; readonly upstreamPath: string; readonly query: URLSearchParams }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'unknown' };

// A path the gateway routes must be plain: no percent-encoding (hides `/`, `\`, `.` and NUL from a
// prefix check: SC-118/119/121), no `\`, no `;` parameters (SC-124), no empty or dot segments
// (SC-116/117), printable ASCII only. Anything else is refused with 400 rather than normalised, so the
// path the policy saw is byte for byte the path the upstream receives.
const SAFE_PATH = /^(\/[A-Za-z0-9\-._~!$&'()*+,=:@]+)+\/?$/;

export function isSafePath(path: string): boolean {
  if (!SAFE_PATH.test(path)) return false;
  for (const seg of path.split('/')) if (seg === '.' || seg === '..') return false;
  return true;
}

export interface Router {
  (requestTarget: string): RouteResult;
}

/** Compiles the routing table once: exact prefix or prefix + '/', case-sensitive (RFC 3986 §6.2.2.1). */
export function createRouter(upstreams: readonly UpstreamConfig[]): Router {
  const byLength = [...upstreams].sort((a, b) => b.path.length - a.path.length);
  return function route(requestTarget) {
    // Origin-form only (RFC 9112 §3.2.1); absolute-form and asterisk-form are not ours to serve.
    if (!requestTarget.startsWith('/')) return { kind: 'invalid' };
    const q = requestTarget.indexOf('?');
    const path = q === -1 ? requestTarget : requestTarget.slice(0, q);
    const rawQuery = q === -1 ? '' : requestTarget.slice(q + 1);
    if (!isSafePath(path)) return { kind: 'invalid' };
    for (const upstream of byLength) {
      if (path === upstream.path || path.startsWith(upstream.path + '/')) {
        const rest = path.slice(upstream.path.length);
        const base = upstream.target.pathname === '/' ? '' : upstream.target.pathname.replace(/\/$/, '');
        const upstreamPath = (base + rest || '/') + (rawQuery === '' ? '' : '?' + rawQuery);
        return { kind: 'upstream', upstream, upstreamPath, query: new URLSearchParams(rawQuery) };
      }
    }
    return { kind: 'unknown' };
  };
}
