import type { UpstreamConfig } from '../config/compile.ts';

export type RouteResult =
  /** query: the target's query parameters, undefined when it has none (most requests: no parser built). */
  | { readonly kind: 'upstream'; readonly upstream: UpstreamConfig; readonly upstreamPath: string; readonly query: URLSearchParams | undefined }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'unknown' };

// A path the gateway routes must be plain: no percent-encoding (hides `/`, `\`, `.` and NUL from a
// prefix check: SC-118/119/121), no `\`, no `;` parameters (SC-124), no empty or dot segments
// (SC-116/117), printable ASCII only. Anything else is refused with 400 rather than normalised, so the
// path the policy saw is byte for byte the path the upstream receives.
const SAFE_PATH = /^(\/[A-Za-z0-9\-._~!$&'()*+,=:@]+)+\/?$/;

export function isSafePath(path: string): boolean {
  if (!SAFE_PATH.test(path)) return false;
  // A dot segment is "/." or "/.." followed by "/" or the end (SAFE_PATH leaves no empty segment).
  for (let i = path.indexOf('/.'); i !== -1; i = path.indexOf('/.', i + 1)) {
    const next = path.charCodeAt(i + 2); // NaN past the end
    if (Number.isNaN(next) || next === SLASH) return false;
    if (next === DOT) {
      const after = path.charCodeAt(i + 3);
      if (Number.isNaN(after) || after === SLASH) return false;
    }
  }
  return true;
}

const SLASH = 0x2f;
const DOT = 0x2e;

export interface Router {
  (requestTarget: string): RouteResult;
}

const INVALID: RouteResult = Object.freeze({ kind: 'invalid' });
const UNKNOWN: RouteResult = Object.freeze({ kind: 'unknown' });

/** Compiles the routing table once: exact prefix or prefix + '/', case-sensitive (RFC 3986 §6.2.2.1). */
export function createRouter(upstreams: readonly UpstreamConfig[]): Router {
  // Longest prefix first; what a match needs of its upstream (prefix + '/', the target's base path) made here.
  const byLength = [...upstreams].sort((a, b) => b.path.length - a.path.length).map((upstream) => ({
    upstream,
    path: upstream.path,
    below: upstream.path + '/',
    base: upstream.target.pathname === '/' ? '' : upstream.target.pathname.replace(/\/$/, ''),
  }));
  return function route(requestTarget) {
    // Origin-form only (RFC 9112 §3.2.1); absolute-form and asterisk-form are not ours to serve.
    if (!requestTarget.startsWith('/')) return INVALID;
    const q = requestTarget.indexOf('?');
    const path = q === -1 ? requestTarget : requestTarget.slice(0, q);
    const rawQuery = q === -1 ? '' : requestTarget.slice(q + 1);
    if (!isSafePath(path)) return INVALID;
    for (const r of byLength) {
      if (path === r.path || path.startsWith(r.below)) {
        const rest = path.slice(r.path.length);
        const upstreamPath = (r.base + rest || '/') + (rawQuery === '' ? '' : '?' + rawQuery);
        return { kind: 'upstream', upstream: r.upstream, upstreamPath, query: rawQuery === '' ? undefined : new URLSearchParams(rawQuery) };
      }
    }
    return UNKNOWN;
  };
}
