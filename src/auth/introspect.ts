import type { IssuerConfig, UpstreamConfig } from '../config/compile.ts';
import { deny, type Denial } from '../reasons.ts';
import { FetchFailed, fetchJson, loggableUrl } from './fetch-json.ts';
import { principalFrom, type Principal } from './principal.ts';
import { timeClaimsProblem } from './time-claims.ts';
import { evictOldest } from '../lib/evict.ts';

export interface Introspector {
  (token: string, tokenHash: string, issuer: IssuerConfig, upstream: UpstreamConfig): Promise<Principal | Denial>;
}

interface Cached {
  readonly response: Record<string, unknown>;
  readonly untilMs: number;
}

/**
 * RFC 7662 token introspection for opaque tokens. The gateway authenticates itself to the endpoint
 * (§2.1: the endpoint must require authorization, so tokens cannot be scanned); the answer must say
 * `active: true` and still passes the same iss / aud / exp / nbf / scope checks as a JWT (MCP "Token
 * Handling"). Answers are cached by token hash for at most cacheTtlSeconds and never past `exp` (§4).
 * Any failure to get an answer refuses the request (503): never accept on error.
 */
/** A failed introspection in the operator's terms (logged by the caller on change). */
export interface IntrospectionFailure {
  readonly error: string;
  readonly url?: string;
  readonly status?: number;
}

export function createIntrospector(now: () => number, onResult?: (issuer: string, result: string, failure?: IntrospectionFailure) => void): Introspector {
  const cache = new Map<string, Cached>();
  return async function introspect(token, tokenHash, issuer, upstream) {
    const cfg = issuer.introspection;
    if (cfg === undefined) return deny('internal_error');
    const key = issuer.name + '|' + tokenHash;
    let nowMs = now();
    let response = cache.get(key);
    if (response === undefined || response.untilMs <= nowMs) {
      cache.delete(key);
      const basic = Buffer.from(`${encodeURIComponent(cfg.clientId)}:${encodeURIComponent(cfg.clientSecret)}`).toString('base64');
      let body: unknown;
      try {
        ({ body } = await fetchJson(cfg.endpoint, cfg.timeoutMs, 64 * 1024, {
          form: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
          headers: { authorization: `Basic ${basic}` },
        }));
        onResult?.(issuer.name, 'ok');
      } catch (err) {
        onResult?.(issuer.name, err instanceof FetchFailed ? err.code : 'network', failureOf(err, cfg.endpoint));
        return deny('introspection_unavailable');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        onResult?.(issuer.name, 'invalid_shape', { error: 'the answer is not a JSON object', url: loggableUrl(cfg.endpoint) });
        return deny('introspection_unavailable');
      }
      nowMs = now();
      const exp = (body as { exp?: unknown }).exp;
      const ttlEnd = nowMs + cfg.cacheTtlSeconds * 1000;
      response = { response: body as Record<string, unknown>, untilMs: typeof exp === 'number' && Number.isFinite(exp) ? Math.min(ttlEnd, exp * 1000) : nowMs };
      if (cfg.cacheTtlSeconds > 0 && response.untilMs > nowMs) {
        evictOldest(cache, 10_000, 1);
        cache.set(key, response);
      }
    }
    return check(response.response, issuer, upstream, tokenHash, Math.floor(nowMs / 1000));
  };
}

function check(r: Record<string, unknown>, issuer: IssuerConfig, upstream: UpstreamConfig, tokenHash: string, nowS: number): Principal | Denial {
  // §2.2: `active` is REQUIRED; anything but true is an inactive token.
  if (r['active'] !== true) return deny('token_inactive');
  if (r['iss'] !== undefined && r['iss'] !== issuer.issuer) return deny('iss_unknown');
  const aud = r['aud'];
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  // MCP: the audience must be this upstream; an introspection answer without aud proves nothing.
  if (!auds.includes(upstream.audience)) return deny('aud_mismatch');
  // The same time rules as a JWT: finite NumericDates, skew, iat not in the future, maximum lifetime.
  const timeProblem = timeClaimsProblem(r, issuer, nowS);
  if (timeProblem !== undefined) return deny(timeProblem);
  // §2.2: `username` names the resource owner when the answer has no `sub`.
  const claims = r['sub'] === undefined && r['username'] !== undefined ? { ...r, sub: r['username'] } : r;
  return principalFrom(claims, issuer, tokenHash) ?? deny('claims_invalid');
}

function failureOf(err: unknown, endpoint: string): IntrospectionFailure {
  if (!(err instanceof FetchFailed)) return { error: 'introspection failed', url: loggableUrl(endpoint) };
  return { error: err.message, url: err.url ?? loggableUrl(endpoint), ...(err.status === undefined ? {} : { status: err.status }) };
}
