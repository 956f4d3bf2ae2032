import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';

// Exported as `mcp-warden/upstream`: what an MCP server behind the gateway uses to prove who is calling,
// without ever seeing the client's token. It checks the gateway's assertion: signature against the
// gateway's JWKS, typ, audience (this server), issuer (the gateway), and a lifetime of seconds.

export const ASSERTION_TYP = 'mcp-identity+jwt';

export interface IdentityVerifierOptions {
  /** The gateway's `/.well-known/jwks.json` (fetched and cached), or its public keys directly. */
  readonly jwksUrl?: string | URL;
  readonly keys?: JSONWebKeySet;
  /** This server's resource URI, as configured for it in the gateway (the assertion's aud). */
  readonly audience: string;
  /** The gateway's publicUrl origin; checked exactly when given (recommended). */
  readonly issuer?: string;
  /** Header carrying the assertion; default X-MCP-Identity. */
  readonly header?: string;
  readonly clockToleranceSeconds?: number;
  /** Gateway JWKS caching: how long keys are kept (default 60 s) and the minimum gap between refetches
   * for an unknown kid (default 5 s). The gateway publishes a new key before signing with it. */
  readonly jwksCacheMaxAgeMs?: number;
  readonly jwksCooldownMs?: number;
}

export interface VerifiedIdentity {
  readonly sub: string;
  readonly clientId: string | undefined;
  readonly scopes: readonly string[];
  /** The issuer of the client's original token. */
  readonly originalIssuer: string;
  /** Every claim of the assertion (including the extra claims the gateway policy lists). */
  readonly claims: Readonly<JWTPayload>;
}

export type IdentityErrorCode = 'assertion_missing' | 'assertion_duplicate' | 'assertion_invalid' | 'assertion_expired' | 'audience_mismatch' | 'issuer_mismatch' | 'keys_unavailable';

export type IdentityResult =
  | { readonly ok: true; readonly identity: VerifiedIdentity }
  | { readonly ok: false; readonly error: IdentityErrorCode };

type HeaderSource = { readonly headers: Headers | IncomingMessage['headers'] };

export function createIdentityVerifier(options: IdentityVerifierOptions): (request: HeaderSource) => Promise<IdentityResult> {
  if (options.jwksUrl === undefined && options.keys === undefined) throw new TypeError('jwksUrl or keys is required');
  if (typeof options.audience !== 'string' || options.audience === '') throw new TypeError('audience is required');
  const keySet = options.keys !== undefined ? createLocalJWKSet(options.keys) : createRemoteJWKSet(new URL(options.jwksUrl as string | URL), { cooldownDuration: options.jwksCooldownMs ?? 5_000, cacheMaxAge: options.jwksCacheMaxAgeMs ?? 60_000 });
  const header = (options.header ?? 'X-MCP-Identity').toLowerCase();
  return async function verify(request) {
    const values = headerValues(request.headers, header);
    if (values.length === 0) return { ok: false, error: 'assertion_missing' };
    if (values.length > 1 || (values[0] as string).includes(',')) return { ok: false, error: 'assertion_duplicate' };
    try {
      const { payload } = await jwtVerify(values[0] as string, keySet, {
        algorithms: ['EdDSA', 'Ed25519', 'ES256'],
        typ: ASSERTION_TYP,
        audience: options.audience,
        ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
        clockTolerance: options.clockToleranceSeconds ?? 5,
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub', 'jti'],
      });
      if (typeof payload.sub !== 'string' || payload.sub === '') return { ok: false, error: 'assertion_invalid' };
      const scope = typeof payload['scope'] === 'string' ? payload['scope'] : '';
      return {
        ok: true,
        identity: Object.freeze({
          sub: payload.sub,
          clientId: typeof payload['client_id'] === 'string' ? payload['client_id'] : undefined,
          scopes: Object.freeze(scope.split(' ').filter((s) => s !== '')),
          originalIssuer: String(payload['orig_iss'] ?? ''),
          claims: Object.freeze(payload),
        }),
      };
    } catch (err) {
      return { ok: false, error: errorCode(err) };
    }
  };
}

/** One-off verification; prefer createIdentityVerifier once at start-up (it caches the gateway's keys). */
export function verifyIdentityAssertion(request: HeaderSource, options: IdentityVerifierOptions): Promise<IdentityResult> {
  return createIdentityVerifier(options)(request);
}

/**
 * node:http / Express-style middleware: sets `req.identity` and calls next(), or answers 401 with a
 * JSON-RPC error and never calls next().
 */
export function requireIdentity(options: IdentityVerifierOptions): (req: IncomingMessage & { identity?: VerifiedIdentity }, res: ServerResponse, next: (err?: unknown) => void) => void {
  const verify = createIdentityVerifier(options);
  return (req, res, next) => {
    verify(req).then((result) => {
      if (result.ok) {
        req.identity = result.identity;
        next();
        return;
      }
      const body = JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: `identity assertion rejected: ${result.error}` }, id: null });
      res.writeHead(401, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    }, next);
  };
}

function headerValues(headers: HeaderSource['headers'], name: string): string[] {
  if (typeof (headers as Headers).get === 'function') {
    const v = (headers as Headers).get(name);
    return v === null ? [] : [v];
  }
  const v = (headers as IncomingMessage['headers'])[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

function errorCode(err: unknown): IdentityErrorCode {
  if (err instanceof errors.JWTExpired) return 'assertion_expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return 'audience_mismatch';
    if (err.claim === 'iss') return 'issuer_mismatch';
  }
  if (err instanceof errors.JWKSTimeout || (err instanceof errors.JOSEError && err.code === 'ERR_JWKS_INVALID')) return 'keys_unavailable';
  return 'assertion_invalid';
}
