import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config, UpstreamConfig } from '../config/compile.ts';

const PRM_PREFIX = '/.well-known/oauth-protected-resource';
export const GATEWAY_JWKS_PATH = '/.well-known/jwks.json';

export interface WellKnown {
  /** Serves a public document and returns true, or returns false when the path is not one. */
  (req: IncomingMessage, res: ServerResponse, path: string): boolean;
}

/**
 * The only endpoints served without a token: RFC 9728 metadata per upstream (and the root form when
 * there is exactly one upstream) and the gateway's public signing keys. Every URL in them comes from
 * configuration, never from Host or X-Forwarded-* (a client must not be able to steer discovery).
 */
export function createWellKnown(config: Config, publicJwks: unknown): WellKnown {
  const documents = new Map<string, string>();
  for (const u of config.upstreams) documents.set(u.resourceMetadataPath, JSON.stringify(metadata(u)));
  if (config.upstreams.length === 1) documents.set(PRM_PREFIX, JSON.stringify(metadata(config.upstreams[0] as UpstreamConfig)));
  const jwks = JSON.stringify(publicJwks);
  return function serve(req, res, path) {
    let body: string | undefined;
    let cache = 'public, max-age=300';
    if (path === GATEWAY_JWKS_PATH) {
      body = jwks;
      cache = 'public, max-age=60'; // short, so a rotated gateway key is seen quickly
    } else {
      body = documents.get(path);
    }
    if (body === undefined) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' });
      res.end();
      return true;
    }
    res.writeHead(200, {
      'content-type': 'application/json',
      'cache-control': cache,
      // Public metadata: browser-based MCP clients must be able to read it (no credentials involved).
      'access-control-allow-origin': '*',
      'content-length': String(Buffer.byteLength(body)),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}

function metadata(u: UpstreamConfig): Record<string, unknown> {
  const scopes = new Set(u.allScopes);
  const doc: Record<string, unknown> = {
    resource: u.audience,
    authorization_servers: [...new Set(u.issuers.map((i) => i.issuer))],
    bearer_methods_supported: ['header'],
    resource_name: u.name,
  };
  // RFC 9728 §2: a cnf-bound token is checked on every upstream, so every one supports DPoP proofs.
  doc['dpop_signing_alg_values_supported'] = [...u.dpopAlgorithms];
  if (u.dpopRequired) doc['dpop_bound_access_tokens_required'] = true;
  // RFC 9728 §2 / RFC 8705 §3.4: certificate-bound tokens are checked here (listener CA or trusted hop).
  if (u.certificateBoundTokens) doc['tls_client_certificate_bound_access_tokens'] = true;
  // RFC 9728 §3.2: zero-valued parameters are omitted.
  if (scopes.size > 0) doc['scopes_supported'] = [...scopes];
  return doc;
}
