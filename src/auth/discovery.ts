import type { IssuerConfig } from '../config/compile.ts';
import { parseUrl } from '../config/urls.ts';
import { FetchFailed, fetchJson } from './fetch-json.ts';

/**
 * RFC 8414 §3 then OpenID Connect Discovery §4: the metadata's `issuer` must equal the configured issuer
 * exactly (RFC 8414 §3.3), and its jwks_uri must be on the issuer's own origin: the document only
 * proves what the issuer's origin says, and keys elsewhere (another host, scheme or port, another
 * loopback port included) would let whoever answers there sign for this issuer. An IdP that publishes
 * its keys on another origin is configured with an explicit jwksUri.
 */
export async function discoverJwksUri(issuer: IssuerConfig): Promise<string> {
  const url = new URL(issuer.issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  const candidates = [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ];
  let last: unknown;
  for (const candidate of candidates) {
    try {
      const { body } = await fetchJson(candidate, issuer.jwks.timeoutMs, issuer.jwks.maxBytes);
      const where = { url: candidate };
      if (typeof body !== 'object' || body === null) throw new FetchFailed('metadata', 'metadata is not an object', where);
      const meta = body as { issuer?: unknown; jwks_uri?: unknown };
      if (meta.issuer !== issuer.issuer) {
        // Both values, so a trailing slash on either side is visible in the one log line.
        throw new FetchFailed('metadata', `metadata issuer does not match the configured issuer (metadata ${JSON.stringify(String(meta.issuer).slice(0, 200))}, configured ${JSON.stringify(issuer.issuer)})`, where);
      }
      const jwksUri = typeof meta.jwks_uri === 'string' ? parseUrl(meta.jwks_uri) : undefined;
      if (jwksUri === undefined) throw new FetchFailed('metadata', 'metadata jwks_uri is missing', where);
      // The issuer itself is https or loopback (lint), so the same origin is too.
      if (jwksUri.origin !== url.origin || jwksUri.username !== '' || jwksUri.password !== '') {
        throw new FetchFailed('metadata', "metadata jwks_uri is not on the issuer's origin; name jwksUri in the config to use it", where);
      }
      return jwksUri.href;
    } catch (err) {
      last = err;
      // A metadata document with the wrong issuer is an answer, not an outage: do not try the other form.
      if (err instanceof FetchFailed && err.code === 'metadata' && err.message.startsWith('metadata issuer')) throw err;
    }
  }
  throw last instanceof Error ? last : new FetchFailed('network', 'discovery failed');
}
